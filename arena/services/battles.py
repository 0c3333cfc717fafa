"""Handing out battles: which prompt and pair a voter sees next, and on which side."""

from __future__ import annotations

import random
import secrets
import time

from django.db.models import Exists, OuterRef

from arena.models import Battle, Campaign, Item, Response, Voter
from arena.services.errors import NotFound, NothingToVoteOn

# How many of the front-most candidates to draw from; enough to spread concurrent voters.
CANDIDATES = 32
# Model weights and active flags change rarely; a few seconds of staleness is harmless.
WEIGHTS_TTL = 5.0
_WEIGHTS: dict[int, tuple[float, dict[int, float]]] = {}


def contender_weights(campaign: Campaign) -> dict[int, float]:
    """Sampling weights of the campaign's active models, cached in-process for a few seconds."""
    now = time.monotonic()
    cached = _WEIGHTS.get(campaign.pk)
    if cached is not None and now - cached[0] < WEIGHTS_TTL:
        return cached[1]
    weights = dict(campaign.contenders.filter(is_active=True).values_list("id", "weight"))
    _WEIGHTS[campaign.pk] = (now, weights)
    return weights


def _candidate_items(campaign: Campaign, voter: Voter, weights: dict[int, float]) -> list[Item]:
    """Items this voter has not been shown yet, fewest votes first.

    One indexed query: it walks (campaign, vote_count, shuffle) and stops after CANDIDATES rows,
    so its cost does not grow with the number of votes in the campaign.
    """
    seen = Battle.objects.filter(voter=voter, item=OuterRef("pk"))
    query = (
        Item.objects.filter(campaign=campaign)
        .exclude(Exists(seen))
        .only("id", "prompt_id", "response_lo_id", "response_hi_id", "model_lo_id", "model_hi_id", "vote_count")
    )
    if campaign.contenders.count() != len(weights):  # some models are inactive
        query = query.filter(model_lo_id__in=list(weights), model_hi_id__in=list(weights))
    if campaign.votes_per_item:
        query = query.filter(vote_count__lt=campaign.votes_per_item)
    if campaign.sampling == Campaign.Sampling.BALANCED:
        return list(query.order_by("vote_count", "shuffle")[:CANDIDATES])
    # Start at a random point of the shuffled order, wrapping around once.
    start = random.randrange(2**31)
    items = list(query.filter(shuffle__gte=start).order_by("shuffle")[:CANDIDATES])
    if len(items) < CANDIDATES:
        items += list(query.filter(shuffle__lt=start).order_by("shuffle")[: CANDIDATES - len(items)])
    return items


def choose_item(campaign: Campaign, candidates: list[Item], weights: dict[int, float]) -> Item:
    """Pick one candidate by the campaign's sampling strategy.

    balanced: only the candidates with the fewest votes, then weighted by the models' weights;
    weighted: weighted by the models' weights; uniform: equal chances. If every weight is zero the
    weights are ignored (a default that always works).
    """
    if campaign.sampling == Campaign.Sampling.BALANCED:
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


def open_battle(campaign: Campaign, voter: Voter) -> Battle:
    """The voter's current battle in this campaign: the open one if any, else a new one.

    Reloading the page never re-rolls the pair, so a voter cannot fish for a favourite model.
    """
    current = (
        Battle.objects.filter(voter=voter, campaign=campaign, status=Battle.Status.OPEN)
        .select_related("prompt", "left", "right")
        .order_by("-created_at")
        .first()
    )
    if current is not None:
        current.campaign = campaign
        return current
    weights = contender_weights(campaign)
    candidates = _candidate_items(campaign, voter, weights)
    if not candidates:
        raise NothingToVoteOn("You have judged everything available in this campaign. Thank you!")
    item = choose_item(campaign, candidates, weights)
    left_id, right_id = item.response_lo_id, item.response_hi_id
    if secrets.randbelow(2):
        left_id, right_id = right_id, left_id
    battle = Battle.objects.create(
        campaign=campaign, voter=voter, prompt_id=item.prompt_id, item=item, left_id=left_id, right_id=right_id
    )
    responses = Response.objects.only("id", "html", "prompt").select_related("prompt").in_bulk([left_id, right_id])
    battle.left, battle.right = responses[left_id], responses[right_id]
    battle.prompt = battle.left.prompt
    return battle


def voter_battle(battle_id: str, voter: Voter | None) -> Battle:
    """A battle of this voter; another voter's battle is reported as missing, not forbidden."""
    battle = (
        Battle.objects.select_related("campaign", "prompt", "left__model", "right__model")
        .filter(pk=battle_id)
        .first()
    )
    if battle is None or voter is None or battle.voter_id != voter.id:
        raise NotFound("No such battle.")
    return battle
