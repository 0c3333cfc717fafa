"""Moderators of voters' prompts, pluggable like the backends: pure Python, no Django import.

A moderator takes the prompt's text and returns a :class:`~arena.moderators.base.Verdict`;
it raises :class:`~arena.moderators.base.ModeratorError` when it cannot decide (the caller
then fails closed or open by the campaign's setting).
"""

from __future__ import annotations

from typing import Any

from arena.moderators.base import Moderator, ModeratorConfigError, ModeratorError, Verdict
from arena.moderators.registry import MODERATORS, available_kinds, get_moderator

__all__ = [
    "MODERATORS",
    "Moderator",
    "ModeratorConfigError",
    "ModeratorError",
    "Verdict",
    "available_kinds",
    "get_moderator",
    "validate",
]


def validate(kind: str, settings: Any) -> None:
    """Raise ModeratorConfigError when a campaign's moderator kind or its settings are wrong (the
    moderator is built to check them: no network call, no model load)."""
    if not isinstance(settings, dict):
        raise ModeratorConfigError("moderator_settings", "must be a JSON object")
    get_moderator(kind, settings)
