"""Moderation of voters' live prompts, before any generation: the campaign's moderator decides.

``moderate(campaign, voter, text)`` returns when the prompt may go to the models. A refused prompt is
stored for staff (RefusedPrompt: the text's first 2,000 characters, the reason, the moderator) and
raises PromptRefused, whose message tells the voter why in plain words; no generation runs. When the
moderator fails (its service is down, a timeout, a broken model) the campaign's
``moderation_fail_open`` decides: open lets the prompt through (logged), closed refuses it with
"try again later" and stores it with the error as the reason.

Moderators are built once per process for each (kind, settings) and reused (the HTTP one keeps its
connection pool, the transformers one its model).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from arena.core.errors import ArenaError
from arena.models import Campaign, RefusedPrompt, Voter
from arena.moderators import Moderator, ModeratorError, get_moderator
from arena.moderators.base import ModeratorConfigError

log = logging.getLogger(__name__)

STORED_CHARS = 2000


class PromptRefused(ArenaError):
    status = 422
    code = "prompt_refused"


class ModerationUnavailable(ArenaError):
    status = 503
    code = "moderation_unavailable"


_moderators: dict[tuple[str, str], Moderator] = {}
_lock = threading.Lock()


def moderator_for(kind: str, settings: dict[str, Any]) -> Moderator:
    """The process's moderator for these settings (built on first use)."""
    key = (kind, json.dumps(settings, sort_keys=True, default=str))
    with _lock:
        moderator = _moderators.get(key)
        if moderator is None:
            moderator = _moderators[key] = get_moderator(kind, settings)
        return moderator


def moderate(campaign: Campaign, voter: Voter | None, text: str) -> None:
    """Let the prompt through, or refuse it (PromptRefused, ModerationUnavailable) and record why."""
    kind = campaign.moderator or "rules"
    started = time.perf_counter()
    try:
        settings = campaign.moderator_settings or {}
        if not isinstance(settings, dict):  # saved around the form's check
            raise ModeratorConfigError("moderator_settings", "must be a JSON object")
        verdict = moderator_for(kind, settings).check(text)
    except (ModeratorError, ModeratorConfigError) as error:
        if campaign.moderation_fail_open:
            log.warning("moderator %s failed, prompt let through (fail open): %s", kind, error)
            return
        log.warning("moderator %s failed, prompt refused (fail closed): %s", kind, error)
        _record(campaign, voter, text, f"moderator unavailable: {error}", kind)
        raise ModerationUnavailable(
            "Your prompt could not be checked right now, so it was not sent to the models. "
            "Please try again in a few minutes."
        ) from None
    log.debug("moderator %s decided in %.2f ms", kind, (time.perf_counter() - started) * 1000)
    if not verdict.allowed:
        _record(campaign, voter, text, verdict.reason, kind)
        raise PromptRefused(f"Your prompt was not sent to the models: {verdict.public}. Please write another one.")


def _record(campaign: Campaign, voter: Voter | None, text: str, reason: str, kind: str) -> None:
    RefusedPrompt.objects.create(
        campaign=campaign,
        voter=voter if voter is not None and voter.pk else None,
        text=text[:STORED_CHARS],
        reason=reason[:300],
        moderator=kind[:32],
    )


def reset() -> None:
    """Forget the built moderators (tests)."""
    with _lock:
        _moderators.clear()
