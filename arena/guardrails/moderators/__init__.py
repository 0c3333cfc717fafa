"""Moderators of voters' prompts, pluggable like the backends: pure Python, no Django import.

A moderator takes the prompt's text and returns a :class:`~arena.guardrails.moderators.base.Verdict`;
it raises :class:`~arena.guardrails.moderators.base.ModeratorError` when it cannot decide (the caller
then fails closed or open by the campaign's setting).
"""

from arena.guardrails.moderators.base import Moderator, ModeratorError, Verdict
from arena.guardrails.moderators.registry import MODERATORS, available_kinds, get_moderator

__all__ = ["MODERATORS", "Moderator", "ModeratorError", "Verdict", "available_kinds", "get_moderator"]
