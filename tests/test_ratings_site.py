"""The ratings engine inside the site: incremental aggregates, snapshots, leaderboard pages."""

from __future__ import annotations

import random

import pytest
from django.core.management import call_command

from arena.models import Battle, Vote, Voter
from ratings.aggregation import fold_new_votes
from ratings.counts import PairCounts
from ratings.models import LeaderboardSnapshot, PairAggregate
from ratings.snapshots import compute_snapshots
from tests.factories import make_campaign

pytestmark = pytest.mark.django_db


def cast_votes(campaign, n: int, seed: int = 1, scored: bool = False) -> None:
    """Votes written straight through the domain function, from several voters."""
    from arena.services.battles import open_battle
    from arena.services.profiles import campaign_profile
    from arena.services.votes import record_vote

    rng = random.Random(seed)
    voters = [Voter.objects.create() for _ in range(max(1, n // 5))]
    for i in range(n):
        voter = voters[i % len(voters)]
        battle = open_battle(campaign_profile(campaign.slug), voter.pk)
        scores = {"helpfulness": {"left": rng.randint(1, 5), "right": rng.randint(1, 5)}} if scored else None
        record_vote(battle.id, voter, rng.choice(["left", "left", "right", "tie", "both_bad"]), scores)


def aggregate_counts(campaign, dimension="", category="") -> PairCounts:
    return PairCounts.from_dict(
        PairAggregate.objects.get(campaign=campaign, dimension=dimension, category=category).counts
    )


def test_incremental_folding_equals_a_full_rebuild(db):
    campaign = make_campaign(slug="inc", models=("A", "B", "C", "D"), prompts=6, dimensions=("helpfulness",))
    for batch in range(3):
        cast_votes(campaign, 15, seed=batch, scored=True)
        fold_new_votes(campaign)
    incremental = {(a.dimension, a.category): PairCounts.from_dict(a.counts) for a in campaign.pair_aggregates.all()}
    assert not Vote.objects.filter(campaign=campaign, folded=False).exists()
    call_command("rebuild_ratings", "inc")
    rebuilt = {(a.dimension, a.category): PairCounts.from_dict(a.counts) for a in campaign.pair_aggregates.all()}
    assert incremental == rebuilt
    assert aggregate_counts(campaign).n_votes == 45
    assert ("helpfulness", "") in rebuilt and ("", "coding") in rebuilt


def test_a_fold_reads_only_new_votes(db, django_assert_max_num_queries):
    campaign = make_campaign(slug="watermark", prompts=4)
    cast_votes(campaign, 10)
    assert fold_new_votes(campaign) == 10
    assert fold_new_votes(campaign) == 0
    cast_votes(campaign, 3, seed=9)
    assert fold_new_votes(campaign) == 3
    assert aggregate_counts(campaign).n_votes == 13


def test_excluded_voters_are_left_out_after_a_rebuild(db):
    campaign = make_campaign(slug="excl", prompts=4)
    cast_votes(campaign, 10)
    compute_snapshots(campaign)
    cheat = Voter.objects.filter(votes__isnull=False).first()
    excluded_votes = Vote.objects.filter(voter=cheat).count()
    Voter.objects.filter(pk=cheat.pk).update(excluded=True)
    call_command("rebuild_ratings", "excl")
    assert aggregate_counts(campaign).n_votes == 10 - excluded_votes


def test_snapshots_cover_methods_dimensions_and_categories(db):
    campaign = make_campaign(slug="snap", models=("A", "B", "C"), prompts=4, dimensions=("helpfulness",))
    cast_votes(campaign, 30, scored=True)
    compute_snapshots(campaign)
    keys = set(LeaderboardSnapshot.objects.filter(campaign=campaign).values_list("dimension", "category", "method"))
    assert {("", "", "davidson"), ("", "", "half"), ("", "", "elo"), ("helpfulness", "", "davidson"),
            ("", "coding", "davidson"), ("", "facts", "davidson")} <= keys  # fmt: skip
    overall = LeaderboardSnapshot.objects.get(campaign=campaign, dimension="", category="", method="davidson")
    assert overall.n_votes == 30
    assert {row["model"] for row in overall.data["rows"]} == {"A", "B", "C"}


def test_leaderboard_page_json_and_csv_read_the_snapshot(alice, db):
    campaign = make_campaign(slug="board", models=("A", "B", "C"), prompts=4)
    assert b"No leaderboard yet" in alice.get("/c/board/leaderboard/").content
    assert alice.get("/c/board/leaderboard.json").status_code == 404
    cast_votes(campaign, 30)
    compute_snapshots(campaign)
    page = alice.get("/c/board/leaderboard/")
    assert page.status_code == 200 and b'id="leaderboard"' in page.content and b"<svg" in page.content
    data = alice.get("/c/board/leaderboard.json").json()
    assert data["n_votes"] == 30 and len(data["rows"]) == 3
    row = data["rows"][0]
    assert row["ci_low"] <= row["rating"] <= row["ci_high"]
    csv_text = alice.get("/c/board/leaderboard.csv").content.decode()
    assert csv_text.splitlines()[0].startswith("rank,model,rating,ci_low,ci_high")
    assert len(csv_text.strip().splitlines()) == 4
    half = alice.get("/c/board/leaderboard.json?method=half").json()
    assert half["ties"] == "half"


def test_votes_schedule_a_recompute_that_writes_snapshots(alice, campaign, django_capture_on_commit_callbacks):
    from django.core.cache import cache

    cache.clear()
    page = alice.get(f"/c/{campaign.slug}/vote/")
    battle = Battle.objects.get(voter__isnull=False)
    assert page.status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        alice.post(f"/b/{battle.pk}/vote", {"verdict": "left"})
    # Tasks run in-process in the test settings; the snapshot exists right after the vote.
    snapshot = LeaderboardSnapshot.objects.get(campaign=campaign, dimension="", category="", method="davidson")
    assert snapshot.n_votes == 1


def test_bias_statistics_come_from_the_folded_tallies(db):
    campaign = make_campaign(slug="bias", models=("A", "B"), prompts=30)
    cast_votes(campaign, 30, seed=3)
    compute_snapshots(campaign)
    votes = Vote.objects.filter(campaign=campaign)
    left, right = votes.filter(verdict="left").count(), votes.filter(verdict="right").count()
    bias = LeaderboardSnapshot.objects.get(campaign=campaign, dimension="", category="", method="davidson").data["bias"]
    assert bias["position"]["n"] == left + right
    assert bias["position"]["share"] == pytest.approx(left / (left + right))
    assert bias["position"]["ci_low"] < bias["position"]["share"] < bias["position"]["ci_high"]
    assert set(bias["ties"]) == {"A", "B"}


def test_the_style_board_separates_length_from_quality(alice, db):
    from arena.models import Response
    from ratings.snapshots import compute_style_snapshot

    campaign = make_campaign(slug="style", models=("Short", "Long"), prompts=60)
    Response.objects.filter(model__name="Long").update(content="word " * 300)
    cast_votes(campaign, 60, seed=5)
    assert compute_style_snapshot(campaign)
    assert not compute_style_snapshot(campaign)  # nothing new: not refitted
    data = LeaderboardSnapshot.objects.get(campaign=campaign, method="style").data
    assert {c["feature"] for c in data["coefficients"]} >= {"length"}
    assert {row["model"] for row in data["rows"]} == {"Short", "Long"}
    page = alice.get("/c/style/leaderboard/?method=style")
    assert b"Style control" in page.content and b"Raw rating" in page.content
