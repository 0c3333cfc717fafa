"""Active pair sampling does what it promises: unvoted pairs first, then close pairs with few votes, and
narrower intervals than uniform sampling for the same number of votes."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest

from arena.core.errors import NothingToVoteOn
from arena.leaderboards.snapshots import compute_snapshots
from arena.models import Battle, Campaign, Item, ModelEntry, Prompt, Response, Voter
from arena.services.active_sampling import (
    VARIANCE_FLOOR,
    active_weights,
    draw_pair,
    forget_pair_states,
    pair_state,
    vote_variance,
)
from arena.services.battles import open_battle
from arena.services.imports import load_campaign
from arena.services.items import create_items
from arena.services.profiles import campaign_profile, forget_profiles
from arena.services.votes import record_vote
from bench.sampling import expected_total_variance, simulate_sampling
from ratings import compute_leaderboard
from tests.factories import make_campaign


@pytest.fixture(autouse=True)
def _fresh_pair_states():
    forget_pair_states()
    yield
    forget_pair_states()


# --- the weights, as plain functions -------------------------------------------------------------


def test_close_pairs_with_few_votes_outweigh_settled_ones():
    close, far = vote_variance(np.array([0.0, 3.0]))  # log-odds gaps: a coin flip, and 95% to 5%
    assert close == pytest.approx(0.25) and far < 0.06
    few_close, many_close, few_far, many_far = active_weights(votes=[5, 50, 5, 50], variance=[close, close, far, far])
    assert few_close > many_close and few_close > few_far
    assert many_close > many_far and few_far > many_far
    # The rule itself: sqrt(S/n) - sqrt(S/(n+1)).
    assert few_close == pytest.approx(np.sqrt(close / 5) - np.sqrt(close / 6))


def test_ties_lower_the_variance_of_a_vote_and_nothing_goes_below_the_floor():
    assert vote_variance(np.array([0.0]), nu=1.0)[0] == pytest.approx(1 / 6)  # 1 / (2 (2 + nu))
    assert vote_variance(np.array([50.0]))[0] == VARIANCE_FLOOR


def test_pairs_never_voted_on_get_all_the_weight():
    weights = active_weights(votes=[0, 10, 0, 3], variance=[0.25] * 4)
    assert weights[1] == weights[3] == 0 and weights[0] == weights[2] > 0


def test_model_weights_scale_the_draw_and_zero_everywhere_is_ignored():
    weights = active_weights(votes=[4, 4, 4], variance=[0.25] * 3, prior=[2.0, 1.0, 0.0])
    assert weights[0] == pytest.approx(2 * weights[1]) and weights[2] == 0
    # A pair left out by its prior is not "never voted": it does not pre-empt the others.
    assert active_weights(votes=[0, 4], variance=[0.25] * 2, prior=[0.0, 1.0])[1] > 0
    assert (active_weights(votes=[4, 4], variance=[0.25] * 2, prior=[0.0, 0.0]) > 0).all()


def test_active_sampling_gives_narrower_intervals_than_uniform_for_the_same_votes():
    """Simulated voters judging 10 models with known ratings 500..1500, 1,500 votes, 6 seeds each."""
    true = np.linspace(500, 1500, 10)
    width, variance = {}, {}
    for strategy in ("uniform", "active"):
        runs = [simulate_sampling(true, 1500, strategy, seed=seed) for seed in range(6)]
        boards = [compute_leaderboard(counts, intervals="sandwich") for counts in runs]
        width[strategy] = np.mean([np.mean([r.ci_high - r.ci_low for r in board.rows]) for board in boards])
        variance[strategy] = np.mean([expected_total_variance(counts, true) for counts in runs])
    assert width["active"] < width["uniform"]
    assert variance["active"] < 0.96 * variance["uniform"]


# --- the hand-out, on the database ---------------------------------------------------------------


def vote_on(item: Item, voter: Voter, verdict: str) -> None:
    """A battle on this very item, voted through the real vote path (lo model shown left)."""
    battle = Battle.objects.create(
        campaign_id=item.campaign_id,
        voter=voter,
        prompt_id=item.prompt_id,
        item=item,
        left_id=item.response_lo_id,
        right_id=item.response_hi_id,
    )
    record_vote(battle.id, voter, verdict)


def pair_of(battle_id: str) -> tuple[str, str]:
    item = Item.objects.select_related("model_lo", "model_hi").get(battles__id=battle_id)
    return tuple(sorted((item.model_lo.name, item.model_hi.name)))


@pytest.mark.django_db
def test_a_new_model_is_explored_before_anything_else(db):
    campaign = make_campaign(slug="act-new", models=("A", "B", "C"), prompts=4, sampling="active")
    for item in Item.objects.filter(campaign=campaign):
        vote_on(item, Voter.objects.create(), "tie")
    compute_snapshots(campaign)  # what the recompute task does after these votes
    newcomer = ModelEntry.objects.create(name="D")
    campaign.contenders.add(newcomer)
    for prompt in Prompt.objects.filter(campaign=campaign):
        Response.objects.create(prompt=prompt, model=newcomer, content="D's answer.", status=Response.Status.DONE)
    create_items(campaign, campaign.prompts.values_list("id", flat=True))
    voter = Voter.objects.create()
    shown = []
    for _ in range(3):
        battle = open_battle(campaign_profile("act-new"), voter.pk)
        shown.append(pair_of(battle.id))
        record_vote(battle.id, voter, "left")
    assert sorted(shown) == [("A", "D"), ("B", "D"), ("C", "D")]


@pytest.mark.django_db
def test_close_pairs_with_few_votes_are_handed_out_before_settled_ones(db):
    campaign = make_campaign(slug="act-close", models=("Top", "Mid1", "Mid2"), prompts=20, sampling="active")
    voter = Voter.objects.create()
    items = Item.objects.filter(campaign=campaign).select_related("model_lo", "model_hi")
    seen: Counter = Counter()
    for item in items:
        pair = {item.model_lo.name, item.model_hi.name}
        if "Top" in pair:  # settled: Top wins all 20 votes against each
            vote_on(item, voter, "left" if item.model_lo.name == "Top" else "right")
        elif seen["close"] < 4:  # close: two votes each way, and few of them
            vote_on(item, voter, "left" if seen["close"] % 2 else "right")
            seen["close"] += 1
    compute_snapshots(campaign)
    state = pair_state(campaign_profile("act-close"))
    weights = dict(zip(state.pairs, state.weights(), strict=True))
    mids = tuple(sorted(ModelEntry.objects.filter(name__in=["Mid1", "Mid2"]).values_list("id", flat=True)))
    variance = dict(zip(state.pairs, state.variance, strict=True))
    assert variance[mids] > 0.15 and all(v < 0.05 for pair, v in variance.items() if pair != mids)  # from the snapshot
    assert all(weights[mids] > 10 * w for pair, w in weights.items() if pair != mids)
    random.seed(5)
    shown = Counter()
    for _ in range(10):
        battle = open_battle(campaign_profile("act-close"), Voter.objects.create().pk)
        shown[pair_of(battle.id)] += 1
    # Each hand-out lowers the close pair's gain (n grows), yet it stays well ahead of the settled ones.
    assert shown[("Mid1", "Mid2")] >= 7


@pytest.mark.django_db
def test_active_keeps_k_votes_per_item_and_never_shows_a_voter_an_item_twice(db):
    campaign = make_campaign(slug="act-k", models=("A", "B", "C", "D"), prompts=3, sampling="active", votes_per_item=2)
    seen: list[tuple[int, int]] = []
    for _ in range(12):  # a voter judges at most two disjoint pairs per prompt blind: 6 of the 36 slots
        voter = Voter.objects.create()
        while True:
            try:
                battle = open_battle(campaign_profile("act-k"), voter.pk)
            except NothingToVoteOn:
                break
            seen.append((voter.pk, Battle.objects.get(pk=battle.id).item_id))
            record_vote(battle.id, voter, "tie")
    assert len(seen) == len(set(seen)) == 36  # 18 items x 2 votes, no voter twice on one item
    assert set(Item.objects.filter(campaign=campaign).values_list("vote_count", flat=True)) == {2}


@pytest.mark.django_db
def test_within_a_pair_items_stay_even_and_every_last_one_is_found(db):
    """Items are looked up on a few random prompts first (fewest votes among them), then in the whole list."""
    campaign = make_campaign(slug="act-even", models=("A", "B"), prompts=40, sampling="active")
    random.seed(7)
    for _ in range(4):
        voter = Voter.objects.create()
        for _ in range(20):
            battle = open_battle(campaign_profile("act-even"), voter.pk)
            record_vote(battle.id, voter, "tie")
    counts = list(Item.objects.filter(campaign=campaign).values_list("vote_count", flat=True))
    assert sum(counts) == 80 and max(counts) - min(counts) <= 2
    campaign.votes_per_item = 3
    campaign.save(update_fields=["votes_per_item"])
    voter = Voter.objects.create()
    handed = 0
    with pytest.raises(NothingToVoteOn):
        while True:  # the last items left with a free slot are found even when random prompts miss them
            record_vote(open_battle(campaign_profile("act-even"), voter.pk).id, voter, "tie")
            handed += 1
    assert handed == sum(1 for n in counts if n < 3)


@pytest.mark.django_db
def test_a_model_weighted_zero_is_left_out_of_active_sampling(db):
    campaign = make_campaign(slug="act-w", models=("A", "B", "Muted"), prompts=4, sampling="active")
    ModelEntry.objects.filter(name="Muted").update(weight=0.0)
    forget_profiles()
    voter = Voter.objects.create()
    for _ in range(4):
        battle = open_battle(campaign_profile("act-w"), voter.pk)
        assert "Muted" not in pair_of(battle.id)
        record_vote(battle.id, voter, "tie")
    assert campaign.items.filter(vote_count__gt=0).count() == 4


@pytest.mark.django_db
def test_draw_pair_returns_none_when_every_pair_is_used_up(db):
    make_campaign(slug="act-dry", models=("A", "B"), prompts=1, sampling="active")
    state = pair_state(campaign_profile("act-dry"))
    assert draw_pair(state) == 0
    state.dry.add(0)
    assert draw_pair(state) is None


@pytest.mark.django_db
def test_campaign_files_and_the_admin_form_accept_active_sampling(db, staff_client):
    campaign, _ = load_campaign({"slug": "act-file", "title": "Active", "sampling": "active"})
    assert campaign.sampling == Campaign.Sampling.ACTIVE
    page = staff_client.get(f"/admin/arena/campaign/{campaign.pk}/change/")
    assert page.status_code == 200
    assert b'<option value="active" selected>' in page.content
