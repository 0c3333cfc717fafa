"""Recording a vote: one per battle, in one transaction, then the names may be revealed."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from arena.models import Battle, Campaign, Dimension, ModelEntry, Response, Vote, Voter
from arena.services import hot_sql
from arena.services.access import check_open, check_vote_limits
from arena.services.errors import ArenaError, Conflict, NotFound
from arena.services.profiles import campaign_profile

log = logging.getLogger(__name__)

MAX_DURATION_MS = 24 * 3600 * 1000
ALREADY_VOTED = "You have already voted on this battle; your first vote counts."


def clean_verdict(campaign: Campaign, verdict: str) -> str:
    if verdict not in Vote.Verdict.values:
        raise ArenaError("Please choose A, B, tie or both bad.")
    if verdict == Vote.Verdict.TIE and not campaign.allow_tie:
        raise ArenaError("This campaign does not allow ties.")
    if verdict == Vote.Verdict.BOTH_BAD and not campaign.allow_both_bad:
        raise ArenaError('This campaign does not allow "both are bad".')
    return verdict


def clean_scores(dimensions: Iterable[Dimension], scores: dict[str, Any] | None) -> dict[str, dict[str, int]]:
    """Validate optional per-dimension scores: {key: {"left": n, "right": m}} within each scale.

    A dimension may be scored on one side only, or not at all.
    """
    if not scores:
        return {}
    if not isinstance(scores, dict):
        raise ArenaError("Scores must be an object keyed by dimension.")
    by_key = {d.key: d for d in dimensions}
    cleaned: dict[str, dict[str, int]] = {}
    for key, sides in scores.items():
        dimension = by_key.get(key)
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
                raise ArenaError(f"{dimension.label}: scores go from {dimension.scale_min} to {dimension.scale_max}.")
            cleaned.setdefault(key, {})[side] = number
    return cleaned


@dataclass(frozen=True)
class RecordedVote:
    """A stored vote and what the voter may now see: the two model names."""

    vote: Vote
    campaign_slug: str
    left_name: str
    right_name: str


_BATTLE_SQL = """
SELECT b.status, b.voter_id, b.campaign_id, b.prompt_id, b.item_id, l.model_id, r.model_id, l.status, r.status,
       c.slug, c.status, c.allow_tie, c.allow_both_bad, c.vote_limit, c.daily_vote_limit
FROM arena_battle b
JOIN arena_response l ON l.id = b.left_id
JOIN arena_response r ON r.id = b.right_id
JOIN arena_campaign c ON c.id = b.campaign_id
WHERE b.id = %s
"""

# PostgreSQL: claim the battle (open -> voted), store the vote and count it on its item in ONE
# statement, hence one round trip and one implicit transaction. Of two concurrent votes on a battle
# exactly one matches the open row; the one-to-one key of Vote is the last line of defence.
_RECORD_SQL_POSTGRES = """
WITH claimed AS (
    UPDATE arena_battle SET status = 'voted' WHERE id = %(battle)s AND status = 'open' RETURNING id
), stored AS (
    INSERT INTO arena_vote (battle_id, campaign_id, voter_id, prompt_id, left_model_id, right_model_id, winner_id,
                            verdict, scores, duration_ms, created_at, folded)
    SELECT id, %(campaign)s::bigint, %(voter)s::bigint, %(prompt)s::bigint, %(left)s::bigint, %(right)s::bigint,
           %(winner)s::bigint, %(verdict)s::text, %(scores)s::jsonb, %(duration)s::integer, %(now)s::timestamptz, false
    FROM claimed
    RETURNING battle_id
), counted AS (
    UPDATE arena_item SET vote_count = vote_count + 1, shuffle = %(shuffle)s::integer
    WHERE id = %(item)s::bigint AND EXISTS (SELECT 1 FROM claimed)
)
SELECT count(*) FROM stored
"""
# Elsewhere (SQLite, the embedded default) the same three writes, in one transaction.
_CLAIM_SQL = "UPDATE arena_battle SET status = 'voted' WHERE id = %(battle)s AND status = 'open'"
_INSERT_VOTE_SQL = """
INSERT INTO arena_vote (battle_id, campaign_id, voter_id, prompt_id, left_model_id, right_model_id, winner_id,
                        verdict, scores, duration_ms, created_at, folded)
VALUES (%(battle)s, %(campaign)s, %(voter)s, %(prompt)s, %(left)s, %(right)s, %(winner)s, %(verdict)s, %(scores)s,
        %(duration)s, %(now)s, false)
"""
_COUNT_ITEM_SQL = "UPDATE arena_item SET vote_count = vote_count + 1, shuffle = %(shuffle)s WHERE id = %(item)s"


def record_vote(
    battle_id: str,
    voter: Voter,
    verdict: str,
    scores: dict[str, Any] | None = None,
    duration_ms: int | None = None,
) -> RecordedVote:
    """Store the voter's verdict on their battle. A second vote is refused and changes nothing.

    Two round trips on PostgreSQL: one read of the battle with its campaign's current rules, then one
    statement that claims the battle and stores the vote atomically. Plain SQL: this runs for every
    vote, and the ORM's statement building cost more than the statements.
    """
    row = hot_sql.fetchone(_BATTLE_SQL, [battle_id])
    if row is None or row[1] != voter.pk:
        raise NotFound("No such battle.")
    status, _, campaign_id, prompt_id, item_id, left_model_id, right_model_id, *sides = row[:9]
    slug, campaign_status, allow_tie, allow_both_bad, vote_limit, daily_vote_limit = row[9:]
    if status == Battle.Status.VOID:
        raise Conflict("This battle was cancelled and cannot be voted on.")
    if status == Battle.Status.OPEN and any(side != Response.Status.DONE for side in sides):
        raise Conflict("Please wait until both answers are complete before you vote.")
    if status != Battle.Status.OPEN:
        raise Conflict(ALREADY_VOTED)
    # The campaign's rules as stored now (not the cached profile's), for the checks below.
    campaign = Campaign(
        pk=campaign_id, slug=slug, status=campaign_status, allow_tie=allow_tie, allow_both_bad=allow_both_bad,
        vote_limit=vote_limit, daily_vote_limit=daily_vote_limit,
    )  # fmt: skip
    check_open(campaign)
    check_vote_limits(campaign, voter)
    verdict = clean_verdict(campaign, verdict)
    profile = campaign_profile(slug)
    cleaned_scores = clean_scores(profile.dimensions if profile else Campaign(pk=campaign_id).dimensions.all(), scores)
    if duration_ms is not None:
        duration_ms = max(0, min(int(duration_ms), MAX_DURATION_MS))
    winner_id = {"left": left_model_id, "right": right_model_id}.get(verdict)
    now = timezone.now()
    params = {
        "battle": battle_id, "campaign": campaign_id, "voter": voter.pk, "prompt": prompt_id, "left": left_model_id,
        "right": right_model_id, "winner": winner_id, "verdict": verdict, "scores": json.dumps(cleaned_scores),
        "duration": duration_ms, "now": now, "item": item_id, "shuffle": random.randrange(2**31),
    }  # fmt: skip
    try:
        stored = _store(params)
    except IntegrityError:
        raise Conflict(ALREADY_VOTED) from None
    if not stored:
        raise Conflict(ALREADY_VOTED)
    transaction.on_commit(lambda: _after_vote(campaign_id))
    names = profile.names if profile else {}
    vote = Vote(
        battle_id=battle_id, campaign_id=campaign_id, voter_id=voter.pk, prompt_id=prompt_id,
        left_model_id=left_model_id, right_model_id=right_model_id, winner_id=winner_id, verdict=verdict,
        scores=cleaned_scores, duration_ms=duration_ms, created_at=now,
    )  # fmt: skip
    return RecordedVote(
        vote=vote,
        campaign_slug=slug,
        left_name=names.get(left_model_id) or _model_name(left_model_id),
        right_name=names.get(right_model_id) or _model_name(right_model_id),
    )


def _store(params: dict[str, Any]) -> bool:
    """Claim the battle and store the vote; False if the battle was no longer open."""
    if connection.vendor == "postgresql":
        # One statement commits on its own; inside a caller's transaction, a savepoint keeps that
        # transaction usable should the statement fail.
        guard = transaction.atomic() if connection.in_atomic_block else nullcontext()
        with guard:
            return hot_sql.fetchone(_RECORD_SQL_POSTGRES, params)[0] == 1
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL, params)
        if cursor.rowcount != 1:
            return False
        cursor.execute(_INSERT_VOTE_SQL, params)
        if params["item"]:
            cursor.execute(_COUNT_ITEM_SQL, params)
    return True


def _model_name(model_id: int) -> str:
    return ModelEntry.objects.filter(pk=model_id).values_list("name", flat=True).first() or ""


def _after_vote(campaign_id: int) -> None:
    """Ask for a leaderboard recompute. Never fails the vote: beat recomputes on a schedule anyway."""
    from ratings.scheduling import request_recompute

    try:
        request_recompute(campaign_id)
    except Exception:  # the broker or cache may be down; the vote is already stored
        log.warning("could not schedule a recompute for campaign %s", campaign_id, exc_info=True)
