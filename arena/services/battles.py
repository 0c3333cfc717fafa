"""Handing out battles: which prompt and pair a voter sees next, and on which side.

This is the hottest path of the site (every voter, every few seconds), so it speaks plain SQL, each
statement on an index: for a campaign with the default sampling, one statement finds the voter's open
battle or else the candidates, and one stores the new battle and reads its page. Django's query
building cost more than the queries themselves here (see DESIGN.md, "measured facts").

A gold battle may be handed out instead (arena.services.gold); both kinds are stored and shown by
arena.services.new_battles, with the same blind rule (``still_blind``).
"""

from __future__ import annotations

import random
import secrets
import time
from datetime import timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from arena.core import hot_sql
from arena.core.errors import NotFound, NothingToVoteOn
from arena.core.hot_sql import sql
from arena.core.identity import reveals_identity
from arena.models import Battle, Campaign, Item, Prompt, Response, Voter
from arena.services.active_sampling import draw_pair, pair_state, prompt_sample
from arena.services.gold import maybe_gold_battle
from arena.services.new_battles import (
    INSERT_BATTLE_SQL,
    PAGE_SQL,
    BattleView,
    battle_params,
    page_messages,
    still_blind,
    store_battle,
)
from arena.services.profiles import CampaignProfile

# How many of the front-most candidates to draw from; enough to spread concurrent voters.
CANDIDATES = 32
# Active sampling: how many pairs to try before falling back to "fewest votes first".
ACTIVE_TRIES = 4
# Active sampling: on how many random prompts to look for an item of the drawn pair first.
ACTIVE_PROMPTS = 16
JUDGED_EVERYTHING = (
    "You have judged everything you can judge blind in this campaign: every battle left would show you an "
    "answer whose model you have already seen. Thank you!"
)


class Candidate(NamedTuple):
    """An item that may be handed out: a row of the candidates' query. A tuple: a hand-out builds 32
    of them, 16 us less than as frozen dataclasses."""

    item_id: int
    prompt_id: int
    response_lo_id: int
    response_hi_id: int
    model_lo_id: int
    model_hi_id: int
    vote_count: int


_CANDIDATES_SQL = sql(
    """
SELECT i.id, i.prompt_id, i.response_lo_id, i.response_hi_id, i.model_lo_id, i.model_hi_id, i.vote_count
FROM {item} i
WHERE i.campaign_id = %s {extra}
  AND {blind}
ORDER BY {order}
LIMIT {limit}
""",
    Item,
)
# The statement for each kind of campaign: default and strict (one battle per prompt).
_BLIND_ITEM = {
    strict: still_blind("i.prompt_id", "i.response_lo_id", "i.response_hi_id", same="b.item_id = i.id", strict=strict)
    for strict in (False, True)
}


def _candidates_sql(campaign: Campaign, extra: str, order: str) -> str:
    """The candidates' statement; its LIMIT is a literal, not a parameter: with ``LIMIT $n`` PostgreSQL
    costs the prepared statement's generic plan for a tenth of the campaign's items, finds it dearer
    than a plan for the actual values and so plans the statement afresh on every run (0.5 ms of its
    CPU per hand-out, more than running it). tests/arena/core/test_hot_sql.py checks that no hot
    statement is planned again."""
    blind = _BLIND_ITEM[campaign.one_battle_per_prompt]
    return _CANDIDATES_SQL.format(extra=extra, order=order, blind=blind, limit=CANDIDATES)


# Slots an item has given out: votes, and open battles young enough to still become votes.
_TAKEN_SQL = sql(
    """
SELECT count(*) FROM {battle}
WHERE item_id = %s AND (status = 'voted' OR (status = 'open' AND created_at > %s))
""",
    Battle,
)
_LOCK_ITEM_SQL = sql("SELECT id FROM {item} WHERE id = %s", Item)  # + FOR UPDATE SKIP LOCKED where supported

_OPEN_BATTLE_SQL = sql(
    """
SELECT b.id, p.messages, l.html AS left_html, r.html AS right_html
FROM {battle} b
JOIN {prompt} p ON p.id = b.prompt_id
JOIN {response} l ON l.id = b.left_id
JOIN {response} r ON r.id = b.right_id
WHERE b.voter_id = %s AND b.campaign_id = %s AND b.status = 'open' AND (b.item_id IS NOT NULL OR b.gold_id IS NOT NULL)
ORDER BY b.created_at DESC
LIMIT 1
""",
    Battle,
    Prompt,
    Response,
)

# The voter's open battle and, should there be none, the candidates, in one round trip: the
# candidates' query runs only when no open battle is found (PostgreSQL evaluates the uncorrelated
# NOT EXISTS once, as a one-time filter). {candidates} is filled per call.
_OPEN_OR_CANDIDATES_SQL = sql(
    """
WITH open AS ({open})
SELECT id, messages, left_html, right_html, CAST(NULL AS bigint), CAST(NULL AS bigint), CAST(NULL AS bigint),
       CAST(NULL AS bigint), CAST(NULL AS bigint), CAST(NULL AS bigint), CAST(NULL AS integer)
FROM open
UNION ALL
SELECT NULL, NULL, NULL, NULL, c.* FROM ({candidates}) c WHERE NOT EXISTS (SELECT 1 FROM open)
""",
    open=_OPEN_BATTLE_SQL,
)

# PostgreSQL: store the battle and read what its page shows in one statement (one round trip, one
# implicit transaction): the same INSERT and page read as elsewhere. A new battle is not worth a WAL
# flush of its own: set_config(..., true) turns synchronous commit off for this statement's
# transaction only. Should the database crash within a fraction of a second after it, the voter's
# vote on that battle answers "no such battle" and the next page opens another. Votes keep the
# default (synchronous) commit.
_START_BATTLE_SQL_POSTGRES = sql(
    """
WITH no_flush AS (
    SELECT set_config('synchronous_commit', 'off', true)
), stored AS (
    {insert}
)
SELECT page.* FROM no_flush, ({page}) page
""",
    insert=INSERT_BATTLE_SQL,
    page=PAGE_SQL,
)
_FLAG_BATTLE_SQL = sql("UPDATE {battle} SET flagged = true WHERE id = %s", Battle)


def _candidate_items(profile: CampaignProfile, voter_id: int) -> list[Candidate]:
    """Items this voter has not been shown yet; balanced: fewest votes first.

    One query that walks the (campaign, vote_count, shuffle) index and stops after CANDIDATES rows,
    so its cost does not grow with the number of votes in the campaign.
    """
    campaign = profile.campaign
    extra, params = active_pairs_clause(profile)
    if campaign.votes_per_item:
        extra += " AND i.vote_count < %s"
        params.append(campaign.votes_per_item)
    drawn = []
    if campaign.sampling == Campaign.Sampling.ACTIVE:
        drawn = _active_candidates(profile, voter_id, extra, params)
        if drawn and not campaign.votes_per_item:
            return drawn
    if campaign.sampling in (Campaign.Sampling.BALANCED, Campaign.Sampling.ACTIVE):
        # Active: the drawn pair's items first; after them (or if every pair tried was used up for this
        # voter) fewest votes first, so the reservation can move on when open battles hold every slot.
        fewest = _fetch(*_fewest_votes_query(profile, voter_id, extra, params))
        return drawn + [item for item in fewest if item not in drawn]
    # Uniform and weighted: start at a random point of the shuffled order, wrapping around once.
    start = random.randrange(2**31)
    statement = _candidates_sql(campaign, extra + " AND i.shuffle >= %s", "i.shuffle")
    items = _fetch(statement, [campaign.pk, *params, start, voter_id])
    if len(items) < CANDIDATES:
        statement = _candidates_sql(campaign, extra + " AND i.shuffle < %s", "i.shuffle")
        items += _fetch(statement, [campaign.pk, *params, start, voter_id])[: CANDIDATES - len(items)]
    return items


def _fewest_votes_query(profile: CampaignProfile, voter_id: int, extra: str, params: list[Any]) -> tuple[str, list]:
    """The candidates' query of balanced sampling, and its parameters: fewest votes first."""
    statement = _candidates_sql(profile.campaign, extra, "i.vote_count, i.shuffle")
    return statement, [profile.campaign.pk, *params, voter_id]


def _open_or_candidates(profile: CampaignProfile, voter_id: int) -> tuple[BattleView | None, list[Candidate]]:
    """Balanced sampling with no gold battles and no vote cap per item (the default campaign): the
    voter's open battle, else the candidates for a new one, in one statement."""
    candidates_sql, params = _fewest_votes_query(profile, voter_id, *active_pairs_clause(profile))
    statement = _OPEN_OR_CANDIDATES_SQL.format(candidates=candidates_sql)
    rows = hot_sql.fetchall(statement, [voter_id, profile.campaign.pk, *params])
    if rows and rows[0][0] is not None:
        battle_id, messages, left_html, right_html = rows[0][:4]
        return BattleView(battle_id, page_messages(messages), left_html, right_html), []
    return None, [Candidate(*row[4:]) for row in rows]


def _active_candidates(profile: CampaignProfile, voter_id: int, extra: str, params: list[Any]) -> list[Candidate]:
    """Active sampling: a pair drawn by how much its next vote shrinks the intervals, then that pair's
    items this voter has not seen, fewest votes first (see arena.services.active_sampling).

    The items are looked up on ACTIVE_PROMPTS random prompts first (index lookups, whatever the size
    of the campaign); only if none of them has an item left is the pair's whole list read. A pair
    with nothing left at all is set aside until the next read of the pair state and another pair is
    drawn; after ACTIVE_TRIES pairs the caller falls back to "fewest votes first".
    """
    state = pair_state(profile)
    pair_sql, order = extra + " AND i.model_lo_id = %s AND i.model_hi_id = %s", "i.vote_count, i.shuffle"
    whole = _candidates_sql(profile.campaign, pair_sql, order)
    tried: set[int] = set()
    for _ in range(ACTIVE_TRIES):
        index = draw_pair(state, tried)
        if index is None:
            break
        sample = prompt_sample(state, ACTIVE_PROMPTS)
        sampled = _candidates_sql(profile.campaign, f"{pair_sql} AND i.prompt_id IN ({_marks(sample)})", order)
        head = [profile.campaign.pk, *params, *state.pairs[index]]
        items = _fetch(sampled, [*head, *sample, voter_id]) or _fetch(whole, [*head, voter_id])
        if items:
            state.handed[index] += 1
            return items
        tried.add(index)
        state.dry.add(index)
    return []


def active_pairs_clause(profile: CampaignProfile) -> tuple[str, list[int]]:
    """SQL (and its parameters) keeping the items ``i`` whose two models are both active; nothing
    when every contender is active. Shared by the battle and the ranking hand-outs."""
    if profile.all_active:
        return "", []
    active = list(profile.weights) or [0]
    marks = _marks(active)
    return f"AND i.model_lo_id IN ({marks}) AND i.model_hi_id IN ({marks})", active + active


def _marks(values: list[Any]) -> str:
    return ", ".join(["%s"] * len(values)) or "NULL"


def _reserve_item(profile: CampaignProfile, voter_id: int) -> Candidate:
    """An item with a free slot under the campaign's "K votes per item", inside the caller's transaction.

    The chosen item's row is locked before its slots are counted (FOR UPDATE SKIP LOCKED on
    PostgreSQL), so two voters asking at the same moment never both take its last slot: the second
    one skips the locked row and tries its next candidate. Only one row is locked at a time, so
    concurrent voters rarely get in each other's way. Open battles older than ARENA_BATTLE_TTL no
    longer hold a slot.
    """
    campaign = profile.campaign
    since = timezone.now() - timedelta(seconds=settings.ARENA_BATTLE_TTL)
    lock = " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    for attempt in range(5):
        candidates = _candidate_items(profile, voter_id)
        if not candidates and attempt == 0:
            if Item.objects.filter(campaign=campaign, vote_count__lt=campaign.votes_per_item).exists():
                raise NothingToVoteOn(JUDGED_EVERYTHING)
            raise NothingToVoteOn("Every prompt and pair of this campaign has all the votes it needs. Thank you!")
        if not candidates:
            break
        busy = False
        while candidates:
            item = choose_item(campaign, candidates, profile.weights)
            candidates.remove(item)
            with connection.cursor() as cursor:
                cursor.execute(_LOCK_ITEM_SQL + lock, [item.item_id])
                if cursor.fetchone() is None:  # another voter is taking a slot of it right now
                    busy = True
                    continue
                cursor.execute(_TAKEN_SQL, [item.item_id, since])
                if cursor.fetchone()[0] < campaign.votes_per_item:
                    return item
        if not busy:
            break
        time.sleep(0.005 * (attempt + 1) * random.random())
    raise NothingToVoteOn(
        "Every item you can still judge has all the votes it needs right now. Please try again in a few minutes."
    )


def _fetch(statement: str, params: list[Any]) -> list[Candidate]:
    return [Candidate(*row) for row in hot_sql.fetchall(statement, params)]


def choose_item(campaign: Campaign, candidates: list[Candidate], weights: dict[int, float]) -> Candidate:
    """Pick one candidate by the campaign's sampling strategy.

    balanced: only the candidates with the fewest votes, then weighted by the models' weights;
    active: the same among the candidates of the first one's pair (the pair drawn); weighted:
    weighted by the models' weights; uniform: equal chances. If every weight is zero the weights are
    ignored (a default that always works).
    """
    if campaign.sampling == Campaign.Sampling.ACTIVE:  # the first candidate's pair is the one drawn
        pair = (candidates[0].model_lo_id, candidates[0].model_hi_id)
        candidates = [item for item in candidates if (item.model_lo_id, item.model_hi_id) == pair]
    if campaign.sampling in (Campaign.Sampling.BALANCED, Campaign.Sampling.ACTIVE):
        fewest = min(item.vote_count for item in candidates)
        candidates = [item for item in candidates if item.vote_count == fewest]
    if campaign.sampling == Campaign.Sampling.UNIFORM:
        return random.choice(candidates)
    pair_weights = [
        max(weights.get(item.model_lo_id, 0.0), 0.0) * max(weights.get(item.model_hi_id, 0.0), 0.0)
        for item in candidates
    ]
    if sum(pair_weights) <= 0:
        return random.choice(candidates)
    return random.choices(candidates, weights=pair_weights, k=1)[0]


def open_battle(profile: CampaignProfile, voter_id: int) -> BattleView:
    """The voter's current battle in this campaign: the open one if any, else a new one.

    Reloading the page never re-rolls the pair, so a voter cannot fish for a favourite model.
    """
    campaign = profile.campaign
    if campaign.sampling == Campaign.Sampling.BALANCED and not campaign.gold_rate and not campaign.votes_per_item:
        found, candidates = _open_or_candidates(profile, voter_id)  # one round trip
        if found is not None:
            return found
    else:
        row = hot_sql.fetchone(_OPEN_BATTLE_SQL, [voter_id, campaign.pk])
        if row is not None:
            return BattleView(row[0], page_messages(row[1]), row[2], row[3])
        if campaign.gold_rate and (gold := maybe_gold_battle(profile, voter_id)) is not None:
            return gold
        if campaign.votes_per_item:
            with transaction.atomic():
                return _start_battle(profile, voter_id, _reserve_item(profile, voter_id))
        candidates = _candidate_items(profile, voter_id)
    if not candidates:
        raise NothingToVoteOn(JUDGED_EVERYTHING)
    return _start_battle(profile, voter_id, choose_item(campaign, candidates, profile.weights))


def _start_battle(profile: CampaignProfile, voter_id: int, item: Candidate) -> BattleView:
    """Create the battle, the left side drawn at random here on the server.

    A battle whose answers name a model is flagged (see arena.core.identity): still shown and
    voted on, but left out of the ratings.
    """
    left_id, right_id = item.response_lo_id, item.response_hi_id
    if secrets.randbelow(2):
        left_id, right_id = right_id, left_id
    params = battle_params(profile.campaign.pk, voter_id, item.prompt_id, left_id, right_id, item_id=item.item_id)
    if connection.vendor == "postgresql":
        # Stored unflagged: the answers that decide the flag come back from this same statement, and
        # the rare battle whose answers name a model is flagged by a second one.
        messages, left_html, right_html = hot_sql.fetchone(_START_BATTLE_SQL_POSTGRES, params)
        if reveals_identity((left_html, right_html), profile.names.values()):
            hot_sql.execute(_FLAG_BATTLE_SQL, [params["id"]])
        return BattleView(params["id"], page_messages(messages), left_html, right_html)
    return store_battle(profile, params)


def voter_battle(battle_id: str, voter: Voter | None) -> Battle:
    """A battle of this voter; another voter's battle is reported as missing, not forbidden."""
    battle = (
        Battle.objects.select_related("campaign", "prompt", "left__model", "right__model").filter(pk=battle_id).first()
    )
    if battle is None or voter is None or battle.voter_id != voter.id:
        raise NotFound("No such battle.")
    return battle
