"""Handing out battles: which prompt and pair a voter sees next, and on which side."""

from __future__ import annotations

import random
import secrets

from django.db.models import Exists, OuterRef

from arena.models import Battle, Campaign, Item, Voter
from arena.services.errors import NotFound, NothingToVoteOn

# How many of the front-most candidates to draw from; enough to spread concurrent voters.
CANDIDATES = 32


def _candidate_items(campaign: Campaign, voter: Voter) -> list[Item]:
    """Items this voter has not been shown yet, fewest votes first.

    One indexed query: it walks (campaign, vote_count, shuffle) and stops after CANDIDATES rows,
    so its cost does not grow with the number of votes in the campaign.
    """
    seen = Battle.objects.filter(voter=voter, item=OuterRef("pk"))
    query = (
        Item.objects.filter(campaign=campaign, model_lo__is_active=True, model_hi__is_active=True)
        .exclude(Exists(seen))
        .select_related("model_lo", "model_hi")
    )
    if campaign.votes_per_item:
        query = query.filter(vote_count__lt=campaign.votes_per_item)
    if campaign.sampling == Campaign.Sampling.BALANCED:
        query = query.order_by("vote_count", "shuffle")
    else:
        # Start at a random point of the shuffled order, wrapping around once.
        start = random.randrange(2**31)
        items = list(query.filter(shuffle__gte=start).order_by("shuffle")[:CANDIDATES])
        if len(items) < CANDIDATES:
            items += list(query.filter(shuffle__lt=start).order_by("shuffle")[: CANDIDATES - len(items)])
        return items
    return list(query[:CANDIDATES])


def _pair_weight(item: Item) -> float:
    return max(item.model_lo.weight, 0.0) * max(item.model_hi.weight, 0.0)


def choose_item(campaign: Campaign, candidates: list[Item]) -> Item:
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
    weights = [_pair_weight(item) for item in candidates]
    if sum(weights) <= 0:
        return random.choice(candidates)
    return random.choices(candidates, weights=weights, k=1)[0]


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
        return current
    candidates = _candidate_items(campaign, voter)
    if not candidates:
        raise NothingToVoteOn("You have judged everything available in this campaign. Thank you!")
    item = choose_item(campaign, candidates)
    left_id, right_id = item.response_lo_id, item.response_hi_id
    if secrets.randbelow(2):
        left_id, right_id = right_id, left_id
    return Battle.objects.create(
        campaign=campaign, voter=voter, prompt_id=item.prompt_id, item=item, left_id=left_id, right_id=right_id
    )


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
