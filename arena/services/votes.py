"""Recording a vote: one per battle, in one transaction, then the names may be revealed."""

from __future__ import annotations

import logging
import random
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F

from arena.models import Battle, Campaign, Item, Vote, Voter
from arena.services.access import check_open, check_vote_limits
from arena.services.errors import ArenaError, Conflict, NotFound

log = logging.getLogger(__name__)

MAX_DURATION_MS = 24 * 3600 * 1000


def clean_verdict(campaign: Campaign, verdict: str) -> str:
    if verdict not in Vote.Verdict.values:
        raise ArenaError("Please choose A, B, tie or both bad.")
    if verdict == Vote.Verdict.TIE and not campaign.allow_tie:
        raise ArenaError("This campaign does not allow ties.")
    if verdict == Vote.Verdict.BOTH_BAD and not campaign.allow_both_bad:
        raise ArenaError('This campaign does not allow "both are bad".')
    return verdict


def clean_scores(campaign: Campaign, scores: dict[str, Any] | None) -> dict[str, dict[str, int]]:
    """Validate optional per-dimension scores: {key: {"left": n, "right": m}} within each scale.

    A dimension may be scored on one side only, or not at all.
    """
    if not scores:
        return {}
    if not isinstance(scores, dict):
        raise ArenaError("Scores must be an object keyed by dimension.")
    dimensions = {d.key: d for d in campaign.dimensions.all()}
    cleaned: dict[str, dict[str, int]] = {}
    for key, sides in scores.items():
        dimension = dimensions.get(key)
        if dimension is None:
            raise ArenaError(f"Unknown dimension {key!r}.")
        if not isinstance(sides, dict) or set(sides) - {"left", "right"}:
            raise ArenaError(f"Scores for {dimension.label} must give 'left' and/or 'right'.")
        for side, value in sides.items():
            if value in (None, ""):
                continue
            try:
                number = int(value)
            except (TypeError, ValueError):
                raise ArenaError(f"{dimension.label}: {value!r} is not a whole number.") from None
            if not dimension.scale_min <= number <= dimension.scale_max:
                raise ArenaError(
                    f"{dimension.label}: scores go from {dimension.scale_min} to {dimension.scale_max}."
                )
            cleaned.setdefault(key, {})[side] = number
    return cleaned


def record_vote(
    battle_id: str,
    voter: Voter,
    verdict: str,
    scores: dict[str, Any] | None = None,
    duration_ms: int | None = None,
) -> Vote:
    """Store the voter's verdict on their battle. A second vote is refused and changes nothing."""
    with transaction.atomic():
        battle = (
            Battle.objects.select_for_update(of=("self",))
            .select_related("campaign", "left__model", "right__model")
            .filter(pk=battle_id)
            .first()
        )
        if battle is None or battle.voter_id != voter.id:
            raise NotFound("No such battle.")
        if battle.status == Battle.Status.VOTED:
            raise Conflict("You have already voted on this battle; your first vote counts.")
        if battle.status == Battle.Status.VOID:
            raise Conflict("This battle was cancelled and cannot be voted on.")
        campaign = battle.campaign
        check_open(campaign)
        check_vote_limits(campaign, voter)
        verdict = clean_verdict(campaign, verdict)
        cleaned_scores = clean_scores(campaign, scores)
        if duration_ms is not None:
            duration_ms = max(0, min(int(duration_ms), MAX_DURATION_MS))
        winner_id = {"left": battle.left.model_id, "right": battle.right.model_id}.get(verdict)
        try:  # the row lock above makes this a last line of defence; the whole transaction rolls back
            vote = Vote.objects.create(
                battle=battle,
                campaign=campaign,
                voter=voter,
                prompt_id=battle.prompt_id,
                left_model_id=battle.left.model_id,
                right_model_id=battle.right.model_id,
                winner_id=winner_id,
                verdict=verdict,
                scores=cleaned_scores,
                duration_ms=duration_ms,
            )
        except IntegrityError:
            raise Conflict("You have already voted on this battle; your first vote counts.") from None
        Battle.objects.filter(pk=battle.pk).update(status=Battle.Status.VOTED)
        if battle.item_id:
            Item.objects.filter(pk=battle.item_id).update(
                vote_count=F("vote_count") + 1, shuffle=random.randrange(2**31)
            )
        transaction.on_commit(lambda: _after_vote(campaign.pk))
    return vote


def _after_vote(campaign_id: int) -> None:
    """Ask for a leaderboard recompute. Never fails the vote: beat recomputes on a schedule anyway."""
    from ratings.scheduling import request_recompute

    try:
        request_recompute(campaign_id)
    except Exception:  # the broker or cache may be down; the vote is already stored
        log.warning("could not schedule a recompute for campaign %s", campaign_id, exc_info=True)
