"""Pair sampling strategies do what they promise."""

from __future__ import annotations

from collections import Counter

import pytest

from arena.models import Campaign, Item, ModelEntry, Voter
from arena.services.battles import open_battle
from arena.services.profiles import campaign_profile, forget_profiles
from arena.services.votes import record_vote
from tests.factories import make_campaign

pytestmark = pytest.mark.django_db


def run_voters(campaign: Campaign, voters: int, votes_each: int) -> Counter:
    """Voters each judging votes_each battles; returns how often each model pair was shown."""
    shown: Counter = Counter()
    for _ in range(voters):
        voter = Voter.objects.create()
        for _ in range(votes_each):
            battle = open_battle(campaign_profile(campaign.slug), voter.pk)
            item = Item.objects.get(battles__id=battle.id)
            shown[(item.model_lo.name, item.model_hi.name)] += 1
            record_vote(battle.id, voter, "tie")
    return shown


def test_balanced_keeps_every_prompt_and_pair_within_one_vote(db):
    campaign = make_campaign(slug="bal", models=("A", "B", "C", "D"), prompts=5, sampling="balanced")
    run_voters(campaign, voters=9, votes_each=10)  # 90 votes over 30 items
    counts = list(Item.objects.filter(campaign=campaign).values_list("vote_count", flat=True))
    assert sum(counts) == 90
    assert max(counts) - min(counts) <= 1


def test_weighted_follows_the_models_weights(db):
    campaign = make_campaign(slug="wtd", models=("Heavy", "L1", "L2"), prompts=40, sampling="weighted")
    ModelEntry.objects.filter(name="Heavy").update(weight=4.0)
    forget_profiles()
    shown = run_voters(campaign, voters=6, votes_each=25)
    with_heavy = sum(n for pair, n in shown.items() if "Heavy" in pair)
    # Pair weights: Heavy-L1 = Heavy-L2 = 4, L1-L2 = 1, so 8/9 of battles include Heavy.
    assert with_heavy / sum(shown.values()) > 0.75


def test_uniform_gives_every_pair_a_fair_share(db):
    campaign = make_campaign(slug="uni", models=("A", "B", "C"), prompts=40, sampling="uniform")
    ModelEntry.objects.filter(name="A").update(weight=10.0)  # ignored by uniform sampling
    forget_profiles()
    shown = run_voters(campaign, voters=6, votes_each=25)
    shares = [n / sum(shown.values()) for n in shown.values()]
    assert len(shown) == 3 and all(0.2 < s < 0.47 for s in shares)


def test_zero_weights_everywhere_still_hand_out_battles(db):
    campaign = make_campaign(slug="zero", models=("A", "B"), prompts=2, sampling="weighted")
    ModelEntry.objects.filter(name__in=["A", "B"]).update(weight=0.0)
    forget_profiles()
    assert sum(run_voters(campaign, voters=1, votes_each=2).values()) == 2
