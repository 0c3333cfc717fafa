"""The moderator protocol: a verdict on one prompt, or an error when no verdict can be had."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class Verdict:
    """``allowed`` False means refused. ``reason`` says why, for staff (the word or pattern that
    matched, the service's categories); ``public`` says it for the voter who wrote the prompt."""

    allowed: bool
    reason: str = ""
    public: str = ""

    @classmethod
    def allow(cls) -> Verdict:
        return cls(True)

    @classmethod
    def refuse(cls, reason: str, public: str = "") -> Verdict:
        return cls(False, reason[:300], public or "it goes against this campaign's rules")


class ModeratorError(Exception):
    """The moderator could not give a verdict (service down, timeout, unreadable answer)."""


class ModeratorConfigError(ValueError):
    """The moderator's settings are wrong; ``field`` names the setting."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class Moderator:
    """A moderator configured by a settings mapping (validated in ``__init__``, no network there)."""

    kind: ClassVar[str] = ""
    allowed_settings: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        settings = dict(settings or {})
        unknown = sorted(set(settings) - self.allowed_settings)
        if unknown:
            known = ", ".join(sorted(self.allowed_settings)) or "none"
            raise ModeratorConfigError(unknown[0], f"unknown setting for the {self.kind} moderator (known: {known})")
        self.settings = settings

    def check(self, text: str) -> Verdict:
        raise NotImplementedError
