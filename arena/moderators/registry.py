"""Moderators by kind, each imported on first use (:class:`backends.plugins.Registry`): a web process
without torch can still use the rules and the HTTP moderators."""

from __future__ import annotations

from arena.moderators.base import Moderator, ModeratorConfigError
from backends.plugins import Registry

MODERATORS: dict[str, str] = {
    "rules": "arena.moderators.rules:RulesModerator",
    "openai": "arena.moderators.openai_moderation:OpenAIModerator",
    "transformers": "arena.moderators.transformers_classifier:TransformersModerator",
    "none": "arena.moderators.rules:NoModerator",
}
_registry = Registry(
    Moderator, MODERATORS, noun="moderator", unknown=lambda message: ModeratorConfigError("moderator", message)
)
available_kinds = _registry.kinds  # the registered kinds, sorted
moderator_class = _registry.cls  # the class for a kind (imports its module); unknown: ModeratorConfigError
get_moderator = _registry.create  # a moderator of a kind built from its settings (no network, no model load)
