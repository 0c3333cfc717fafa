"""The ratings engine inside the site: incremental aggregates, snapshots, leaderboard pages."""

from __future__ import annotations

import random

import pytest
from django.core.management import call_command

from arena.leaderboards.aggregation import fold_new_votes
from arena.leaderboards.models import LeaderboardSnapshot, PairAggregate
from arena.leaderboards.snapshots import compute_snapshots
from arena.models import Battle, Vote, Voter
from ratings.counts import PairCounts
from tests.factories import make_campaign

pytestmark = pytest.mark.django_db


def cast_votes(campaign, n: int, seed: int = 1, scored: bool = False) -> None:
    """Votes written straight through the domain function, from several voters (about five votes
    each; a voter who has judged everything they can judge blind hands over to a new one)."""
    from arena.core.errors import NothingToVoteOn
    from arena.services.battles import open_battle
    from arena.services.profiles import campaign_profile
    from arena.services.votes import record_vote

    rng = random.Random(seed)
    voters = [Voter.objects.create() for _ in range(max(1, n // 5))]
    for i in range(n):
        while True:
            voter = voters[i % len(voters)]
            try:
                battle = open_battle(campaign_profile(campaign.slug), voter.pk)
                break
            except NothingToVoteOn:
                voters[i % len(voters)] = Voter.objects.create()
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
    # A fixed number of statements whatever the number of votes: one read of the votes, one write per
    # touched key (three here: overall and two categories), and the first fold creates the rows.
    with django_assert_max_num_queries(16):  # rows created on the first fold
        assert fold_new_votes(campaign) == 10
    assert fold_new_votes(campaign) == 0
    cast_votes(campaign, 30, seed=9)
    with django_assert_max_num_queries(11):  # 9 statements and the savepoint around them (in a test)
        assert fold_new_votes(campaign) == 30
    assert aggregate_counts(campaign).n_votes == 40


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
    assert {
        ("", "", "davidson"),
        ("", "", "half"),
        ("", "", "elo"),
        ("helpfulness", "", "davidson"),
        ("", "coding", "davidson"),
        ("", "facts", "davidson"),
    } <= keys
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
    assert csv_text.splitlines()[0].startswith("dimension,category,method,rank,model,rating,ci_low,ci_high")
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
    from arena.leaderboards.snapshots import compute_style_snapshot
    from arena.models import Response

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


# --- folding: gold battles, batches, the reference computation, concurrency -------------------------------


def direct_vote(campaign, voter, prompt, verdict: str, *, gold=None, reverse: bool = False) -> Vote:
    """A battle and its vote written as rows (no hand-out): the first two answers of the prompt."""
    left, right = prompt.responses.order_by("model__name")[:2]
    if reverse:
        left, right = right, left
    battle = Battle.objects.create(
        campaign=campaign, voter=voter, prompt=prompt, left=left, right=right, status="voted", gold=gold
    )
    return Vote.objects.create(
        battle=battle,
        campaign=campaign,
        voter=voter,
        prompt=prompt,
        left_model=left.model,
        right_model=right.model,
        verdict=verdict,
    )


def test_votes_on_gold_battles_never_enter_the_ratings(db):
    from arena.leaderboards.models import EloState
    from arena.models import GoldBattle

    campaign = make_campaign(slug="goldfold", models=("A", "B"), prompts=2)
    prompt = campaign.prompts.order_by("id").first()
    first, second = prompt.responses.order_by("model__name")[:2]
    gold = GoldBattle.objects.create(campaign=campaign, prompt=prompt, first=first, second=second, expected="first")
    voter = Voter.objects.create()
    for _ in range(3):
        direct_vote(campaign, voter, prompt, "left")  # A beats B
    for verdict in ("right", "right", "tie", "both_bad", "left"):
        direct_vote(campaign, voter, prompt, verdict, gold=gold)
    assert fold_new_votes(campaign) == 8
    assert not Vote.objects.filter(campaign=campaign, folded=False).exists()  # gold votes are marked folded

    def check() -> None:
        counts = aggregate_counts(campaign)
        assert counts.models == ("A", "B") and counts.n_votes == 3
        assert counts.wins.tolist() == [[0, 3], [0, 0]] and not counts.ties.any() and not counts.both_bad.any()
        state = EloState.objects.get(campaign=campaign)
        assert state.n_votes == 3 and state.tallies == {"left": 3}
        assert state.ratings["A"] > 1000 > state.ratings["B"]

    check()
    call_command("rebuild_ratings", "goldfold")
    check()


def reference_state(campaign) -> tuple[dict, dict, dict]:
    """Aggregates, Elo ratings and tallies computed vote by vote from the ORM (the definition)."""
    from collections import defaultdict

    from ratings.counts import Outcome
    from ratings.elo import update_elo

    code = {"left": Outcome.A_WINS, "right": Outcome.B_WINS, "tie": Outcome.TIE, "both_bad": Outcome.BOTH_BAD}
    votes = (
        Vote.objects.filter(campaign=campaign, voter__excluded=False, battle__flagged=False, battle__gold__isnull=True)
        .order_by("id")
        .values_list(
            "left_model__name",
            "right_model__name",
            "verdict",
            "scores",
            "prompt__category",
            "battle__left__content",
            "battle__right__content",
        )
    )
    groups: dict = defaultdict(lambda: ([], [], []))
    ordered, tallies = [], defaultdict(int)
    for a, b, verdict, scores, category, left_text, right_text in votes:
        keys = [("", "")] + ([("", category)] if category else [])
        for key in keys:
            for column, value in zip(groups[key], (a, b, code[verdict]), strict=True):
                column.append(value)
        for dimension, sides in scores.items():
            outcome = 0 if sides["left"] > sides["right"] else 1 if sides["left"] < sides["right"] else 2
            for column, value in zip(groups[(dimension, "")], (a, b, outcome), strict=True):
                column.append(value)
        ordered.append((a, b, code[verdict]))
        tallies[verdict] += 1
        if verdict in ("left", "right") and len(left_text) != len(right_text):
            tallies["longer_won" if (len(left_text) > len(right_text)) == (verdict == "left") else "shorter_won"] += 1
    counts = {key: PairCounts.from_battles(*columns) for key, columns in groups.items()}
    return counts, update_elo({}, ordered), dict(tallies)


def stored_state(campaign) -> tuple[dict, dict, dict]:
    from arena.leaderboards.models import EloState

    state = EloState.objects.get(campaign=campaign)
    counts = {(a.dimension, a.category): a.pair_counts() for a in campaign.pair_aggregates.all()}
    return counts, state.ratings, state.tallies


def test_folding_in_batches_gives_the_vote_by_vote_numbers_and_a_rebuild_gives_them_again(db):
    from arena.leaderboards.aggregation import rebuild_aggregates
    from arena.models import Response

    campaign = make_campaign(slug="ref", models=("A", "B", "C", "D"), prompts=6, dimensions=("helpfulness",))
    Response.objects.filter(model__name="C").update(content="a much longer answer " * 20)
    cast_votes(campaign, 25, seed=4, scored=True)
    assert fold_new_votes(campaign, batch=4) == 25  # seven batches of at most four votes
    cast_votes(campaign, 12, seed=5, scored=True)
    assert fold_new_votes(campaign, batch=5) == 12
    reference = reference_state(campaign)
    counts, ratings, tallies = stored_state(campaign)
    assert counts == reference[0]
    assert ratings == reference[1]  # the same floats: same votes, same order, same arithmetic
    assert tallies == reference[2] and tallies["longer_won"] + tallies["shorter_won"] > 0
    assert set(counts) >= {("", ""), ("", "coding"), ("", "facts"), ("helpfulness", "")}
    assert rebuild_aggregates(campaign, batch=6) == 37
    assert stored_state(campaign) == (counts, ratings, tallies)
    assert Vote.objects.filter(campaign=campaign, folded=True).count() == 37  # a rebuild rewrites no vote


def test_a_rebuild_drops_keys_that_lost_all_their_votes_and_folds_unfolded_votes(db):
    from arena.leaderboards.aggregation import rebuild_aggregates

    campaign = make_campaign(slug="drop", models=("A", "B"), prompts=2)
    voter, other = Voter.objects.create(), Voter.objects.create()
    facts = campaign.prompts.get(category="facts")
    coding = campaign.prompts.get(category="coding")
    direct_vote(campaign, voter, coding, "left")
    direct_vote(campaign, other, facts, "right")
    fold_new_votes(campaign)
    assert {(a.dimension, a.category) for a in campaign.pair_aggregates.all()} == {
        ("", ""),
        ("", "coding"),
        ("", "facts"),
    }
    Voter.objects.filter(pk=voter.pk).update(excluded=True)
    direct_vote(campaign, other, facts, "tie")  # not folded yet
    assert rebuild_aggregates(campaign) == 3
    assert {(a.dimension, a.category) for a in campaign.pair_aggregates.all()} == {("", ""), ("", "facts")}
    counts = aggregate_counts(campaign)
    assert counts.n_votes == 2 and counts.wins[1, 0] == 1 and counts.ties[0, 1] == 1
    # The command also drops the boards of a category that lost all its counted votes.
    Voter.objects.filter(pk=voter.pk).update(excluded=False)
    call_command("rebuild_ratings", "drop")
    assert LeaderboardSnapshot.objects.filter(campaign=campaign, category="coding").exists()
    Voter.objects.filter(pk=voter.pk).update(excluded=True)
    call_command("rebuild_ratings", "drop")
    assert not LeaderboardSnapshot.objects.filter(campaign=campaign, category="coding").exists()
    assert LeaderboardSnapshot.objects.filter(campaign=campaign, category="facts").exists()


@pytest.mark.django_db(transaction=True)
def test_two_folds_at_once_count_each_vote_exactly_once():
    import threading

    from django.db import connection

    from arena.leaderboards.models import EloState

    campaign = make_campaign(slug="race", prompts=4)
    cast_votes(campaign, 40, seed=8)  # committed, so their recomputes ran: start the folding again
    PairAggregate.objects.filter(campaign=campaign).delete()
    EloState.objects.filter(campaign=campaign).delete()
    Vote.objects.filter(campaign=campaign).update(folded=False)
    barrier, results, errors = threading.Barrier(2), [], []

    def fold() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(fold_new_votes(campaign, batch=3))
        except Exception as error:  # reported by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=fold) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors and sum(results) == 40
    assert aggregate_counts(campaign).n_votes == 40
    assert EloState.objects.get(campaign=campaign).n_votes == 40
    assert reference_state(campaign)[0][("", "")] == aggregate_counts(campaign)


# --- snapshots: sandwich after votes, bootstrap from beat, nothing rewritten when nothing changed ----------


def test_after_vote_boards_carry_sandwich_intervals_until_beat_replaces_them(alice, db, settings):
    from arena.leaderboards.tasks import recompute_active_campaigns, recompute_campaign

    campaign = make_campaign(slug="iv", models=("A", "B", "C"), prompts=4)
    cast_votes(campaign, 30)
    assert recompute_campaign(campaign.pk) == 5  # after votes: davidson, half, elo; one board per category
    overall = LeaderboardSnapshot.objects.filter(campaign=campaign, dimension="", category="")
    for method in ("davidson", "half"):
        snapshot = overall.get(method=method)
        assert snapshot.intervals == "sandwich" and snapshot.data["intervals"] == "sandwich"
        assert snapshot.data["bootstrap_rounds"] == 0 and snapshot.n_votes == 30
    assert b"sandwich (robust normal) intervals" in alice.get("/c/iv/leaderboard/").content
    assert alice.get("/c/iv/leaderboard.json").json()["intervals"] == "sandwich"
    before = overall.get(method="davidson").computed_at
    assert compute_snapshots(campaign, intervals="sandwich") == 0  # nothing new: nothing refitted or written
    assert overall.get(method="davidson").computed_at == before

    assert campaign.pk in recompute_active_campaigns()  # beat: runs the bootstrap (in-process in tests)
    snapshot = overall.get(method="davidson")
    assert snapshot.intervals == "bootstrap" and snapshot.data["bootstrap_rounds"] == settings.ARENA_BOOTSTRAP_ROUNDS
    assert overall.get(method="half").intervals == "bootstrap"
    page = alice.get("/c/iv/leaderboard/").content
    assert f"95% bootstrap intervals ({settings.ARENA_BOOTSTRAP_ROUNDS} rounds)".encode() in page
    assert campaign.pk not in recompute_active_campaigns()  # nothing left to refine
    assert compute_snapshots(campaign) == 0

    cast_votes(campaign, 2, seed=11)
    touched = set(Vote.objects.order_by("-id")[:2].values_list("prompt__category", flat=True))
    assert compute_snapshots(campaign, intervals="sandwich") == 3 + len(touched)  # untouched categories stay
    assert overall.get(method="davidson").n_votes == 32


def test_bootstrap_rounds_of_zero_keep_sandwich_boards_without_asking_beat_to_refine(db, settings):
    from arena.leaderboards.tasks import recompute_active_campaigns

    settings.ARENA_BOOTSTRAP_ROUNDS = 0
    campaign = make_campaign(slug="nob", models=("A", "B", "C"), prompts=4)
    cast_votes(campaign, 10)
    compute_snapshots(campaign)
    assert set(
        LeaderboardSnapshot.objects.filter(campaign=campaign, method="davidson").values_list("intervals", flat=True)
    ) == {"sandwich"}
    assert campaign.pk not in recompute_active_campaigns()


def test_matrices_are_stored_as_bytes_and_served_as_json(alice, db):
    campaign = make_campaign(slug="mat", models=("A", "B", "C"), prompts=4)
    cast_votes(campaign, 30, seed=2)
    compute_snapshots(campaign, intervals="sandwich")
    snapshot = LeaderboardSnapshot.objects.get(campaign=campaign, dimension="", category="", method="davidson")
    assert len(snapshot.matrices) == 3 * 8 * 3 * 3 and set(snapshot.data["matrices"]) == {"models"}
    served = alice.get("/c/mat/leaderboard.json").json()["matrices"]
    order = [row["model"] for row in snapshot.data["rows"]]
    assert served["models"] == order
    counts = aggregate_counts(campaign)
    a, b = order[0], order[1]
    ia, ib = counts.models.index(a), counts.models.index(b)
    assert served["battles"][0][1] == counts.battles[ia, ib]
    decisive = counts.wins[ia, ib] + counts.wins[ib, ia]
    assert served["win_rate"][0][1] == pytest.approx(counts.wins[ia, ib] / decisive)
    assert served["win_rate"][0][0] is None
    rating = {row["model"]: row["rating"] for row in snapshot.data["rows"]}
    predicted = served["predicted_win_rate"][0][1]
    assert predicted == pytest.approx(1 / (1 + 10 ** ((rating[b] - rating[a]) / 400)))
    assert predicted + served["predicted_win_rate"][1][0] == pytest.approx(1)
    page = alice.get("/c/mat/leaderboard/").content
    assert b'class="heat"' in page and b"heat-none" in page
    # A snapshot written before the matrices moved (they sit in its JSON) reads the same.
    LeaderboardSnapshot.objects.filter(pk=snapshot.pk).update(data={**snapshot.data, "matrices": served}, matrices=b"")
    assert alice.get("/c/mat/leaderboard.json").json()["matrices"] == served
    assert b'class="heat"' in alice.get("/c/mat/leaderboard/").content
