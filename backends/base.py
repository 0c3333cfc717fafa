"""The backend protocol: messages in, text out, streamed or whole.

Every backend is built from a plain settings mapping (stored on a model entry) and offers:

- ``generate(messages, params) -> GenerationResult``;
- ``stream(messages, params) -> StreamingGeneration``: iterate it for text deltas; after the last delta
  ``.result`` holds the same :class:`GenerationResult` that ``generate`` would have returned. Closing it
  early (``close()`` or leaving a ``with`` block) cancels the request or the local generation.

``messages`` is an OpenAI-style list of ``{"role": "system"|"user"|"assistant", "content": str}``; the
last message must be from the user. ``params`` is a :class:`~backends.params.DecodingParams`, a plain
mapping (validated with ``DecodingParams.from_dict``) or ``None`` for defaults.

Construction validates settings and never touches the network or loads a model, so it is cheap and can
back an admin form's validation. All failures are :class:`~backends.errors.BackendError`.
"""

from __future__ import annotations

import abc
import difflib
import math
import time
from collections.abc import Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Literal, TypedDict

from backends.errors import BackendError, InvalidRequest
from backends.params import DecodingParams

Role = Literal["system", "user", "assistant"]
ROLES: frozenset[str] = frozenset({"system", "user", "assistant"})


class Message(TypedDict):
    """One chat turn."""

    role: Role
    content: str


@dataclass(frozen=True)
class GenerationResult:
    """A finished generation.

    ``finish_reason`` is normalised to ``"stop"`` (natural end or a stop string) or ``"length"``
    (``max_new_tokens`` or the backend's response-length guard); other provider values pass through.
    Token counts are ``None`` when the provider did not report them. ``latency_s`` is the wall time of
    the whole call (including retries); ``ttft_s`` the time to the first text delta, set by ``stream``
    only (``None`` for ``generate``, which sees the text at once).
    """

    text: str
    finish_reason: str
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_s: float
    ttft_s: float | None = None
    model: str | None = None
    attempts: int = 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data."""
        return {
            "text": self.text,
            "finish_reason": self.finish_reason,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "latency_s": self.latency_s,
            "ttft_s": self.ttft_s,
            "model": self.model,
            "attempts": self.attempts,
        }


class StreamingGeneration(Iterator[str]):
    """An iterator of text deltas that exposes the final :class:`GenerationResult` once exhausted.

    ::

        with backend.stream(messages, params) as s:
            for delta in s:
                push_to_browser(delta)
        store(s.result)

    Errors raise from the iteration. ``close()`` stops the generation and releases its connection.
    """

    def __init__(self, source: Generator[str, None, GenerationResult]) -> None:
        self._source = source
        self._result: GenerationResult | None = None
        self._parts: list[str] = []

    def __iter__(self) -> StreamingGeneration:
        return self

    def __next__(self) -> str:
        if self._result is not None:
            raise StopIteration
        try:
            delta = next(self._source)
        except StopIteration as stop:
            self._result = stop.value
            raise StopIteration from None
        self._parts.append(delta)
        return delta

    @property
    def done(self) -> bool:
        """True once the stream ended normally and ``result`` is available."""
        return self._result is not None

    @property
    def result(self) -> GenerationResult:
        """The final result; only after the iteration has finished."""
        if self._result is None:
            raise RuntimeError("the stream has not finished; iterate it to the end (or call finish())")
        return self._result

    @property
    def text_so_far(self) -> str:
        """The text of the deltas yielded so far."""
        return "".join(self._parts)

    def finish(self) -> GenerationResult:
        """Consume the remaining deltas and return the result."""
        for _ in self:
            pass
        return self.result

    def close(self) -> None:
        """Stop early: cancels the request / local generation. Safe to call twice."""
        self._source.close()

    def __enter__(self) -> StreamingGeneration:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# Fields every backend accepts; subclasses add what their provider supports.
COMMON_PARAMS: frozenset[str] = frozenset({"max_new_tokens", "do_sample"})


class Backend(abc.ABC):
    """Base class: validation and the public API; subclasses implement ``_generate`` and ``_stream``."""

    kind: ClassVar[str]
    #: Decoding fields this backend accepts with a non-default value (an instance may widen it).
    supported_params: frozenset[str] = COMMON_PARAMS

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        self.settings: dict[str, Any] = dict(settings or {})

    # -- public API ---------------------------------------------------------------------------------

    def generate(
        self, messages: list[Message] | list[dict[str, Any]], params: DecodingParams | Mapping[str, Any] | None = None
    ) -> GenerationResult:
        """Generate the whole reply to ``messages``."""
        msgs, p = self.prepare(messages, params)
        return self._generate(msgs, p)

    def stream(
        self, messages: list[Message] | list[dict[str, Any]], params: DecodingParams | Mapping[str, Any] | None = None
    ) -> StreamingGeneration:
        """Stream the reply to ``messages``; validation errors raise here, before any request."""
        msgs, p = self.prepare(messages, params)
        return StreamingGeneration(self._stream(msgs, p))

    def generate_many(
        self,
        conversations: list[list[Message]] | list[list[dict[str, Any]]],
        params: DecodingParams | Mapping[str, Any] | None = None,
    ) -> list[GenerationResult]:
        """Replies to several conversations (one after another here; local backends batch them)."""
        return [self.generate(c, params) for c in conversations]

    def prepare(
        self, messages: Any, params: DecodingParams | Mapping[str, Any] | None
    ) -> tuple[list[Message], DecodingParams]:
        """Validate and normalise messages and params (raises :class:`InvalidRequest`)."""
        p = params if isinstance(params, DecodingParams) else DecodingParams.from_dict(params)
        self.check_params(p)
        return normalize_messages(messages), p

    def check_params(self, params: DecodingParams) -> None:
        """Reject any parameter set to a non-default value that this backend does not support."""
        for name in params.non_default():
            if name not in self.supported_params:
                raise InvalidRequest(
                    name,
                    f"not supported by the {self.kind!r} backend (supported: "
                    f"{', '.join(sorted(self.supported_params))})",
                )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} kind={self.kind!r}>"

    # -- to implement -------------------------------------------------------------------------------

    @abc.abstractmethod
    def _generate(self, messages: list[Message], params: DecodingParams) -> GenerationResult:
        """Generate with validated inputs."""

    @abc.abstractmethod
    def _stream(self, messages: list[Message], params: DecodingParams) -> Generator[str, None, GenerationResult]:
        """A generator yielding deltas and returning the result (its ``finally`` runs on close)."""


def normalize_messages(messages: Any) -> list[Message]:
    """Validate an OpenAI-style message list and return a clean copy.

    Content may be a string or a list of ``{"type": "text", "text": ...}`` parts (joined); other part
    types (images) are rejected. The conversation needs at least one user turn and must end with one.
    """
    if not isinstance(messages, list | tuple) or not messages:
        raise InvalidRequest("messages", "must be a non-empty list of {role, content} objects")
    out: list[Message] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, Mapping):
            raise InvalidRequest(where, f"must be an object with role and content, got {type(message).__name__}")
        role = message.get("role")
        if role not in ROLES:
            raise InvalidRequest(f"{where}.role", f"must be one of system, user, assistant; got {role!r}")
        content = message.get("content")
        if isinstance(content, list):
            texts = []
            for j, part in enumerate(content):
                if not isinstance(part, Mapping) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                    raise InvalidRequest(f"{where}.content[{j}]", "only text parts are supported")
                texts.append(part["text"])
            content = "".join(texts)
        if not isinstance(content, str):
            raise InvalidRequest(f"{where}.content", f"must be a string, got {type(content).__name__}")
        out.append({"role": role, "content": content})
    if out[-1]["role"] != "user":
        raise InvalidRequest("messages", f"the last message must be from the user, not {out[-1]['role']!r}")
    return out


def last_user_text(messages: list[Message]) -> str:
    """The content of the last user message."""
    return next(m["content"] for m in reversed(messages) if m["role"] == "user")


class StopFilter:
    """Cuts a stream of text deltas at the first stop string or at a character budget.

    Holds back the longest tail that could still become a stop string, so no delta ever shows text that
    a later stop string would remove. ``push`` returns what is safe to emit; ``flush`` the held-back rest
    at the natural end. After a stop or the budget, ``stopped`` is set and ``reason`` says why.
    """

    def __init__(self, stop: tuple[str, ...] = (), max_chars: int | None = None) -> None:
        self.stop = tuple(s for s in stop if s)
        self.max_chars = max_chars
        self._buffer = ""
        self.emitted = 0
        self.stopped = False
        self.reason: Literal["stop", "length"] | None = None

    def push(self, delta: str) -> str:
        if self.stopped:
            return ""
        self._buffer += delta
        cut = _find_stop(self._buffer, self.stop)
        if cut is not None:
            self._buffer, self.stopped, self.reason = self._buffer[:cut], True, "stop"
            return self._take(len(self._buffer))
        return self._take(len(self._buffer) - self._partial_stop_len())

    def _partial_stop_len(self) -> int:
        """Length of the longest buffer suffix that is a proper prefix of a stop string."""
        best = 0
        for s in self.stop:
            for k in range(min(len(s) - 1, len(self._buffer)), best, -1):
                if self._buffer.endswith(s[:k]):
                    best = k
                    break
        return best

    def flush(self) -> str:
        return "" if self.stopped and self.reason == "length" else self._take(len(self._buffer))

    def _take(self, n: int) -> str:
        n = max(n, 0)
        if self.max_chars is not None and self.emitted + n > self.max_chars:
            n = self.max_chars - self.emitted
            self.stopped, self.reason = True, "length"
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        self.emitted += len(out)
        return out


class ShownText:
    """What a stream has shown its caller: deltas pass a :class:`StopFilter`, the visible parts are
    kept, and ``ttft`` is the time from ``start`` (a ``time.monotonic()`` value) to the first visible
    character, the one definition of time to first token for every backend.
    """

    def __init__(self, start: float, stop: tuple[str, ...] = (), max_chars: int | None = None) -> None:
        self.start = start
        self.filter = StopFilter(stop, max_chars)
        self.parts: list[str] = []
        self.ttft: float | None = None

    @property
    def stopped(self) -> bool:
        return self.filter.stopped

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def push(self, delta: str) -> str:
        """The part of ``delta`` that may be shown now ("" while held back or after a stop)."""
        return self._shown(self.filter.push(delta))

    def through(self, deltas: Iterable[str]) -> Iterator[str]:
        """The visible part of each delta until a stop, then the held-back rest; a stop ends the
        reading (no further delta is asked for)."""
        for delta in deltas:
            out = self.push(delta)
            if out:
                yield out
            if self.stopped:
                break
        tail = self._shown(self.filter.flush())
        if tail:
            yield tail

    def _shown(self, out: str) -> str:
        if out:
            if self.ttft is None:
                self.ttft = time.monotonic() - self.start
            self.parts.append(out)
        return out


def _find_stop(text: str, stop: tuple[str, ...]) -> int | None:
    positions = [i for i in (text.find(s) for s in stop) if i >= 0]
    return min(positions) if positions else None


def truncate_at_stop(text: str, stop: tuple[str, ...]) -> tuple[str, bool]:
    """``text`` cut before the first stop string, and whether one was found."""
    cut = _find_stop(text, stop)
    return (text, False) if cut is None else (text[:cut], True)


class SettingsReader:
    """Typed access to a backend's settings mapping with errors naming ``settings.<key>``.

    Call :meth:`finish` last: it rejects keys nobody asked for (typos), with a suggestion.
    """

    def __init__(self, settings: Mapping[str, Any] | None, kind: str) -> None:
        if settings is not None and not isinstance(settings, Mapping):
            raise InvalidRequest("settings", f"expected an object, got {type(settings).__name__}")
        self._settings = dict(settings or {})
        self._kind = kind
        self._seen: set[str] = set()

    def _get(self, key: str, required: bool) -> Any:
        self._seen.add(key)
        value = self._settings.get(key)
        if value is None and required:
            raise InvalidRequest(f"settings.{key}", f"is required for the {self._kind!r} backend")
        return value

    def str(self, key: str, default: str | None = None, *, required: bool = False) -> Any:
        value = self._get(key, required)
        if value is None:
            return default
        if not isinstance(value, str) or not value.strip():
            raise InvalidRequest(f"settings.{key}", f"must be a non-empty string, got {value!r}")
        return value.strip()

    def choice(self, key: str, choices: tuple[str | None, ...], default: str | None) -> Any:
        value = self._get(key, False)
        value = default if value is None else value
        if value not in choices:
            shown = ", ".join(repr(c) for c in choices)
            raise InvalidRequest(f"settings.{key}", f"must be one of {shown}; got {value!r}")
        return value

    def bool(self, key: str, default: bool) -> bool:
        value = self._get(key, False)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise InvalidRequest(f"settings.{key}", f"must be true or false, got {value!r}")
        return value

    def number(self, key: str, default: float | None, *, low: float = 0.0, high: float = math.inf) -> Any:
        value = self._get(key, False)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InvalidRequest(f"settings.{key}", f"must be a number, got {value!r}")
        if not low <= value <= high:
            raise InvalidRequest(f"settings.{key}", f"must be between {low} and {high}, got {value}")
        return float(value)

    def int(self, key: str, default: int | None, *, low: int = 0, high: int = 2**31) -> Any:
        value = self._get(key, False)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidRequest(f"settings.{key}", f"must be an integer, got {value!r}")
        if not low <= value <= high:
            raise InvalidRequest(f"settings.{key}", f"must be between {low} and {high}, got {value}")
        return value

    def str_dict(self, key: str) -> dict[str, str]:
        value = self._get(key, False)
        if value is None:
            return {}
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise InvalidRequest(f"settings.{key}", "must be an object of string keys and string values")
        return dict(value)

    def raw(self, key: str) -> Any:
        return self._get(key, False)

    def finish(self) -> None:
        for key in self._settings:
            if key not in self._seen:
                close = difflib.get_close_matches(key, sorted(self._seen), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else f"; known: {', '.join(sorted(self._seen))}"
                raise InvalidRequest(f"settings.{key}", f"unknown setting for the {self._kind!r} backend{hint}")


__all__ = [
    "COMMON_PARAMS",
    "Backend",
    "BackendError",
    "GenerationResult",
    "Message",
    "SettingsReader",
    "ShownText",
    "StopFilter",
    "StreamingGeneration",
    "last_user_text",
    "normalize_messages",
    "truncate_at_stop",
]
