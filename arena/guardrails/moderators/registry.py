"""Moderators by kind, each imported on first use (a web process without torch can still use the
rules and the HTTP moderators)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from arena.guardrails.moderators.base import Moderator, ModeratorConfigError

MODERATORS: dict[str, str] = {
    "rules": "arena.guardrails.moderators.rules:RulesModerator",
    "openai": "arena.guardrails.moderators.openai_moderation:OpenAIModerator",
    "transformers": "arena.guardrails.moderators.transformers_classifier:TransformersModerator",
    "none": "arena.guardrails.moderators.rules:NoModerator",
}


def available_kinds() -> list[str]:
    return sorted(MODERATORS)


def moderator_class(kind: str) -> type[Moderator]:
    target = MODERATORS.get(kind)
    if target is None:
        raise ModeratorConfigError("moderator", f"unknown moderator {kind!r}; known: {', '.join(available_kinds())}")
    module_name, _, class_name = target.partition(":")
    cls: type[Moderator] = getattr(importlib.import_module(module_name), class_name)
    return cls


def get_moderator(kind: str, settings: Mapping[str, Any] | None = None) -> Moderator:
    """A moderator of ``kind`` configured by ``settings`` (validated now; no network, no model load)."""
    return moderator_class(kind)(settings)
