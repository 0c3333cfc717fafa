"""Decoding parameters shared by every backend.

Conventions (chosen to match what users of the OpenAI API and of Hugging Face ``generate`` expect):

- ``do_sample=False`` is greedy decoding. ``temperature=0`` is accepted as the OpenAI spelling of the
  same thing and normalised to ``do_sample=False, temperature=None``.
- Sampling knobs (temperature, top_p, top_k) only make sense when sampling; setting one with
  ``do_sample=False`` is an error rather than silently ignored, so two configurations that produce the
  same text also have the same :meth:`DecodingParams.cache_key`.
- ``None`` means "the provider's default" and is never sent to a provider.
- ``stop`` strings are not part of the returned text (OpenAI semantics).

Each backend declares the fields it supports (:attr:`backends.base.Backend.supported_params`) and
rejects any other field that is set to a non-default value before sending anything.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from backends.errors import InvalidRequest

# Names used by other APIs, mapped to ours, for a helpful "did you mean" in errors.
_ALIASES = {
    "max_tokens": "max_new_tokens",
    "max_completion_tokens": "max_new_tokens",
    "max_length": "max_new_tokens",
    "stop_sequences": "stop",
    "stop_strings": "stop",
    "random_seed": "seed",
    "beams": "num_beams",
}

MAX_STOP_SEQUENCES = 16
_CACHE_KEY_VERSION = 1


@dataclass(frozen=True)
class DecodingParams:
    """How to decode. Immutable and hashable; build from untrusted data with :meth:`from_dict`."""

    max_new_tokens: int = 512
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: tuple[str, ...] = field(default_factory=tuple)
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    repetition_penalty: float | None = None
    seed: int | None = None
    do_sample: bool = True
    num_beams: int = 1

    def __post_init__(self) -> None:
        _check_int("max_new_tokens", self.max_new_tokens, low=1, high=1_000_000)
        _check_bool("do_sample", self.do_sample)
        _check_int("num_beams", self.num_beams, low=1, high=64)
        if self.temperature is not None:
            _check_float("temperature", self.temperature, low=0.0, high=100.0)
            object.__setattr__(self, "temperature", float(self.temperature))
            if self.temperature == 0.0:  # OpenAI spelling of greedy decoding
                object.__setattr__(self, "temperature", None)
                object.__setattr__(self, "do_sample", False)
        if self.top_p is not None:
            _check_float("top_p", self.top_p, low=0.0, high=1.0, low_inclusive=False)
            object.__setattr__(self, "top_p", float(self.top_p))
        if self.top_k is not None:
            _check_int("top_k", self.top_k, low=1, high=1_000_000)
        for name in ("presence_penalty", "frequency_penalty"):
            value = getattr(self, name)
            if value is not None:
                _check_float(name, value, low=-2.0, high=2.0)
                object.__setattr__(self, name, float(value))
        if self.repetition_penalty is not None:
            _check_float("repetition_penalty", self.repetition_penalty, low=0.0, high=10.0, low_inclusive=False)
            object.__setattr__(self, "repetition_penalty", float(self.repetition_penalty))
        if self.seed is not None:
            _check_int("seed", self.seed, low=0, high=2**63 - 1)
        object.__setattr__(self, "stop", _check_stop(self.stop))
        if not self.do_sample:
            for name in ("temperature", "top_p", "top_k"):
                if getattr(self, name) is not None:
                    raise InvalidRequest(
                        name, "only applies when sampling; remove it or set do_sample to true (greedy)"
                    )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> DecodingParams:
        """Build from plain data (JSON from an admin form or the API), naming the field on any error.

        Unknown keys are rejected (with a suggestion: ``max_tokens`` -> ``max_new_tokens``); ``stop`` may
        be a string or a list of strings; ``None`` values mean "default".
        """
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise InvalidRequest("params", f"expected an object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                raise InvalidRequest(str(key), f"unknown decoding parameter{_suggest(str(key), known)}")
            if value is None:
                continue
            kwargs[key] = value
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """All fields as JSON-ready plain data (``stop`` as a list); ``from_dict`` round-trips it."""
        data = dataclasses.asdict(self)
        data["stop"] = list(self.stop)
        return data

    def non_default(self) -> dict[str, Any]:
        """The fields whose value differs from the default (what a backend must support)."""
        defaults = DecodingParams()
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(defaults, f.name)
        }

    @property
    def is_deterministic(self) -> bool:
        """True when the same request should give the same text: greedy decoding or a fixed seed.

        (API providers treat seeds as best effort; the response cache accepts that.)
        """
        return not self.do_sample or self.seed is not None

    def cache_key(self) -> str:
        """A stable hex digest of all fields; equal for equal params across processes and versions."""
        payload = json.dumps({"v": _CACHE_KEY_VERSION, **self.to_dict()}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()

    def replace(self, **changes: Any) -> DecodingParams:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def _suggest(name: str, known: Iterable[str]) -> str:
    if name in _ALIASES:
        return f" (did you mean {_ALIASES[name]!r}?)"
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else f"; known: {', '.join(sorted(known))}"


def _check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise InvalidRequest(name, f"must be true or false, got {value!r}")


def _check_int(name: str, value: object, *, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(name, f"must be an integer, got {value!r}")
    if not low <= value <= high:
        raise InvalidRequest(name, f"must be between {low} and {high}, got {value}")


def _check_float(name: str, value: object, *, low: float, high: float, low_inclusive: bool = True) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest(name, f"must be a number, got {value!r}")
    if not math.isfinite(value):
        raise InvalidRequest(name, f"must be a finite number, got {value!r}")
    too_low = value < low if low_inclusive else value <= low
    if too_low or value > high:
        bracket = "[" if low_inclusive else "("
        raise InvalidRequest(name, f"must be in {bracket}{low}, {high}], got {value}")


def _check_stop(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, list | tuple):
        raise InvalidRequest("stop", f"must be a string or a list of strings, got {value!r}")
    if len(value) > MAX_STOP_SEQUENCES:
        raise InvalidRequest("stop", f"at most {MAX_STOP_SEQUENCES} stop strings, got {len(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item:
            raise InvalidRequest(f"stop[{i}]", f"must be a non-empty string, got {item!r}")
    return tuple(value)
