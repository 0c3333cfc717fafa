"""Recording a vote: one per battle, in one transaction, then the names may be revealed."""

from __future__ import annotations

import json
import logging
import random
import re
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from arena.core import hot_sql
from arena.core.errors import ArenaError, Conflict, NotAllowed, NotFound
from arena.core.hot_sql import sql
from arena.leaderboards.scheduling import request_recompute
from arena.models import Admission, Battle, Campaign, Dimension, Invite, Item, ModelEntry, Response, Vote, Voter
from arena.services.access import NOT_ADMITTED, check_open, check_vote_counts
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

    A dimension may be scored on one side only, or not at all. A score is a whole number: an integer
    (4.0 counts as 4), or text of ASCII digits with an optional sign ("4"); 3.9, True and other
    scripts' digits (U+0663 ARABIC-INDIC DIGIT THREE) are refused, not truncated or read as digits.
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
            raise ArenaError(f"Unknown dimension {_shown(key)}.")
        if not isinstance(sides, dict) or set(sides) - {"left", "right"}:
            raise ArenaError(f"Scores for {dimension.label} must give 'left' and/or 'right'.")
        for side, value in sides.items():
            if value is None or value == "":
                continue
            number = whole_number(value)
            if number is None:
                raise ArenaError(f"{dimension.label}: {_shown(value)} is not a whole number.")
            if not dimension.scale_min <= number <= dimension.scale_max:
                raise ArenaError(f"{dimension.label}: scores go from {dimension.scale_min} to {dimension.scale_max}.")
            cleaned.setdefault(key, {})[side] = number
    return cleaned


_WHOLE_NUMBER = re.compile(r"[ \t]*[+-]?[0-9]{1,9}[ \t]*")  # ASCII digits only (\d would take "٣")


def whole_number(value: Any) -> int | None:
    """An integer, an integral float, or text of at most 9 ASCII digits with an optional sign; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None  # False for 3.9, inf and nan
    if isinstance(value, str) and _WHOLE_NUMBER.fullmatch(value):
        return int(value)
    return None


def _shown(value: Any, limit: int = 20) -> str:
    """A value as the voter sent it, cut short: a message never echoes megabytes back."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}..."


@dataclass(frozen=True)
class RecordedVote:
    """A stored vote and what the voter may now see: the two model names."""

    vote: Vote
    campaign_slug: str
    left_name: str
    right_name: str


# The battle as a vote finds it: its state, its campaign's rules as stored now (not the cached
# profile's), and the voter's votes in the campaign where a vote limit asks for them. Another voter's
# battle is not found.
_STATE_SQL = sql(
    """
SELECT b.status AS battle_status, b.campaign_id, b.prompt_id, b.item_id, l.model_id AS left_model,
       r.model_id AS right_model, l.status AS left_status, r.status AS right_status, c.slug,
       c.status AS campaign_status, c.allow_tie, c.allow_both_bad, c.vote_limit, c.daily_vote_limit,
       CASE WHEN c.vote_limit > 0 THEN (
           SELECT count(*) FROM {vote} v WHERE v.campaign_id = b.campaign_id AND v.voter_id = b.voter_id
       ) ELSE 0 END AS votes_cast,
       CASE WHEN c.daily_vote_limit > 0 THEN (
           SELECT count(*) FROM {vote} v
           WHERE v.campaign_id = b.campaign_id AND v.voter_id = b.voter_id AND v.created_at >= %(since)s
       ) ELSE 0 END AS votes_today,
       CASE WHEN c.access = 'invite' THEN (
           SELECT count(*) FROM {admission} a JOIN {invite} i ON i.id = a.invite_id
           WHERE a.campaign_id = b.campaign_id AND a.voter_id = b.voter_id AND NOT i.revoked
       ) ELSE 1 END AS admitted
FROM {battle} b
JOIN {response} l ON l.id = b.left_id
JOIN {response} r ON r.id = b.right_id
JOIN {campaign} c ON c.id = b.campaign_id
WHERE b.id = %(battle)s AND b.voter_id = %(voter)s
""",
    Vote,
    Battle,
    Response,
    Campaign,
    Admission,
    Invite,
)

# A new vote: each stored field and its value, in the portable INSERT ... VALUES (below) and in
# PostgreSQL's INSERT ... SELECT (reading the CTEs of _RECORD_SQL_POSTGRES); one column list for both
# dialects. A field of Vote missing here that has neither a null nor a database default fails
# tests/arena/core/test_hot_sql_columns.py.
_NEW_VOTE = {
    "battle": ("%(battle)s", "claimed.id"),
    "campaign": ("%(campaign)s", "a.campaign_id"),
    "voter": ("%(voter)s", "%(voter)s::bigint"),
    "prompt": ("%(prompt)s", "a.prompt_id"),
    "left_model": ("%(left)s", "a.left_model"),
    "right_model": ("%(right)s", "a.right_model"),
    "winner": (
        "%(winner)s",
        "CASE %(verdict)s::text WHEN 'left' THEN a.left_model WHEN 'right' THEN a.right_model END",
    ),
    "verdict": ("%(verdict)s", "%(verdict)s::text"),
    "scores": ("%(scores)s", "%(scores)s::jsonb"),
    "duration_ms": ("%(duration)s", "%(duration)s::integer"),
    "created_at": ("%(now)s", "%(now)s::timestamptz"),
    "folded": ("false", "false"),
}
_VOTE_COLUMNS = hot_sql.columns(Vote, *_NEW_VOTE)

# PostgreSQL: read the battle, claim it (open -> voted), store the vote and count it on its item in
# ONE statement, hence one round trip and one implicit transaction. The vote is stored only when
# every rule of _check_may_store holds (the same rules, written in SQL: tests/arena/services/test_votes.py checks
# each refusal on PostgreSQL); otherwise nothing is written and the state tells the voter why. Of
# two concurrent votes on a battle exactly one matches the open row; the one-to-one key of Vote is
# the last line of defence.
_RECORD_SQL_POSTGRES = sql(
    """
WITH battle AS ({state}),
allowed AS (
    SELECT * FROM battle
    WHERE battle_status = 'open' AND left_status = 'done' AND right_status = 'done' AND campaign_status = 'active'
      AND (vote_limit = 0 OR votes_cast < vote_limit) AND (daily_vote_limit = 0 OR votes_today < daily_vote_limit)
      AND (%(verdict)s::text <> 'tie' OR allow_tie) AND (%(verdict)s::text <> 'both_bad' OR allow_both_bad)
      AND admitted > 0
), claimed AS (
    UPDATE {battle} b SET status = 'voted'
    FROM allowed a WHERE b.id = %(battle)s AND b.status = 'open'
    RETURNING b.id
), stored AS (
    INSERT INTO {vote} ({columns})
    SELECT {values}
    FROM claimed, allowed a
    RETURNING battle_id
), counted AS (
    UPDATE {item} i SET vote_count = vote_count + 1, shuffle = %(shuffle)s::integer
    FROM allowed a WHERE i.id = a.item_id AND EXISTS (SELECT 1 FROM claimed)
)
SELECT battle.*, (SELECT count(*) FROM stored) FROM battle
""",
    Battle,
    Vote,
    Item,
    state=_STATE_SQL,
    columns=_VOTE_COLUMNS,
    values=", ".join(postgres for _, postgres in _NEW_VOTE.values()),
)


@dataclass(frozen=True)
class _BattleState:
    """A row of _STATE_SQL."""

    battle_status: str
    campaign_id: int
    prompt_id: int
    item_id: int | None
    left_model: int
    right_model: int
    left_status: str
    right_status: str
    slug: str
    campaign_status: str
    allow_tie: bool
    allow_both_bad: bool
    vote_limit: int
    daily_vote_limit: int
    votes_cast: int
    votes_today: int
    admitted: int  # invite-only campaigns: admissions by an invite not revoked (1 elsewhere)

    def winner(self, verdict: str) -> int | None:
        """The winning model of this verdict (none for a tie or both bad)."""
        return {"left": self.left_model, "right": self.right_model}.get(verdict)


# Elsewhere (SQLite, the embedded default) the read, then the three writes in one transaction.
_CLAIM_SQL = sql("UPDATE {battle} SET status = 'voted' WHERE id = %(battle)s AND status = 'open'", Battle)
_INSERT_VOTE_SQL = sql(
    "INSERT INTO {vote} ({columns}) VALUES ({values})",
    Vote,
    columns=_VOTE_COLUMNS,
    values=", ".join(portable for portable, _ in _NEW_VOTE.values()),
)
_COUNT_ITEM_SQL = sql("UPDATE {item} SET vote_count = vote_count + 1, shuffle = %(shuffle)s WHERE id = %(item)s", Item)


def record_vote(
    battle_id: str,
    voter: Voter,
    verdict: str,
    scores: dict[str, Any] | None = None,
    duration_ms: int | None = None,
) -> RecordedVote:
    """Store the voter's verdict on their battle. A second vote is refused and changes nothing.

    One statement on PostgreSQL when the vote has no scores (two with scores: the scores are checked
    against the campaign's dimensions first, and only the battle says which campaign that is). Plain
    SQL: this runs for every vote, and the ORM's statement building cost more than the statements.
    """
    if verdict not in Vote.Verdict.values:
        raise ArenaError("Please choose A, B, tie or both bad.")
    params: dict[str, Any] = {"battle": battle_id, "voter": voter.pk, "since": timezone.now() - timedelta(days=1)}
    state = None
    cleaned_scores: dict[str, dict[str, int]] = {}
    if scores:
        state = _read_state(params)
        profile = campaign_profile(state.slug)
        dimensions = profile.dimensions if profile else Campaign(pk=state.campaign_id).dimensions.all()
        cleaned_scores = clean_scores(dimensions, scores)
    if duration_ms is not None:
        duration_ms = max(0, min(int(duration_ms), MAX_DURATION_MS))
    now = timezone.now()
    params.update(
        verdict=verdict,
        scores=json.dumps(cleaned_scores),
        duration=duration_ms,
        now=now,
        shuffle=random.randrange(2**31),
    )
    state = _store(params, state)
    transaction.on_commit(lambda: _after_vote(state.campaign_id))
    vote = Vote(
        battle_id=battle_id,
        campaign_id=state.campaign_id,
        voter_id=voter.pk,
        prompt_id=state.prompt_id,
        left_model_id=state.left_model,
        right_model_id=state.right_model,
        winner_id=state.winner(verdict),
        verdict=verdict,
        scores=cleaned_scores,
        duration_ms=duration_ms,
        created_at=now,
    )
    profile = campaign_profile(state.slug)
    names = profile.names if profile else {}
    return RecordedVote(
        vote=vote,
        campaign_slug=state.slug,
        left_name=names.get(state.left_model) or _model_name(state.left_model),
        right_name=names.get(state.right_model) or _model_name(state.right_model),
    )


def _read_state(params: dict[str, Any]) -> _BattleState:
    row = hot_sql.fetchone(_STATE_SQL, params)
    if row is None:
        raise NotFound("No such battle.")
    return _BattleState(*row)


def _check_may_store(state: _BattleState, verdict: str) -> None:
    """Raise the reason this vote may not be stored, in the order a voter would want to hear it."""
    if state.battle_status == Battle.Status.VOID:
        raise Conflict("This battle was cancelled and cannot be voted on.")
    sides_done = state.left_status == Response.Status.DONE and state.right_status == Response.Status.DONE
    if state.battle_status == Battle.Status.OPEN and not sides_done:
        raise Conflict("Please wait until both answers are complete before you vote.")
    if state.battle_status != Battle.Status.OPEN:
        raise Conflict(ALREADY_VOTED)
    campaign = Campaign(
        pk=state.campaign_id,
        slug=state.slug,
        status=state.campaign_status,
        allow_tie=state.allow_tie,
        allow_both_bad=state.allow_both_bad,
        vote_limit=state.vote_limit,
        daily_vote_limit=state.daily_vote_limit,
    )
    check_open(campaign)
    if not state.admitted:  # the voter's invitation was revoked since the battle was handed out
        raise NotAllowed(NOT_ADMITTED)
    check_vote_counts(campaign, state.votes_cast, state.votes_today)
    clean_verdict(campaign, verdict)


def _store(params: dict[str, Any], state: _BattleState | None) -> _BattleState:
    """Check the rules, claim the battle and store the vote; the battle's state as the vote found it."""
    if connection.vendor == "postgresql":
        # One statement commits on its own; inside a caller's transaction, a savepoint keeps that
        # transaction usable should the statement fail.
        guard = transaction.atomic() if connection.in_atomic_block else nullcontext()
        try:
            with guard:
                row = hot_sql.fetchone(_RECORD_SQL_POSTGRES, params)
        except IntegrityError:
            raise Conflict(ALREADY_VOTED) from None
        if row is None:
            raise NotFound("No such battle.")
        state, stored = _BattleState(*row[:-1]), row[-1]
        if not stored:
            _check_may_store(state, params["verdict"])
            raise Conflict(ALREADY_VOTED)  # every rule held: another vote claimed the battle first
        return state
    with transaction.atomic(), connection.cursor() as cursor:
        state = state or _read_state(params)
        _check_may_store(state, params["verdict"])
        params.update(
            campaign=state.campaign_id,
            prompt=state.prompt_id,
            left=state.left_model,
            right=state.right_model,
            item=state.item_id,
            winner=state.winner(params["verdict"]),
        )
        cursor.execute(_CLAIM_SQL, params)
        if cursor.rowcount != 1:
            raise Conflict(ALREADY_VOTED)
        try:
            cursor.execute(_INSERT_VOTE_SQL, params)
        except IntegrityError:
            raise Conflict(ALREADY_VOTED) from None
        if state.item_id:
            cursor.execute(_COUNT_ITEM_SQL, params)
    return state


def _model_name(model_id: int) -> str:
    return ModelEntry.objects.filter(pk=model_id).values_list("name", flat=True).first() or ""


def _after_vote(campaign_id: int) -> None:
    """Ask for a leaderboard recompute. Never fails the vote: beat recomputes on a schedule anyway."""
    try:
        request_recompute(campaign_id)
    except Exception:  # the broker or cache may be down; the vote is already stored
        log.warning("could not schedule a recompute for campaign %s", campaign_id, exc_info=True)
