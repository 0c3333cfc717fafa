"""The leaderboard as plain data: ranks with intervals, provisional models, matrices, JSON."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from ratings import PairCounts, compute_leaderboard, counts_by_category, outcomes_from_scores, rank_from_intervals
from ratings.simulate import simulate_battles

ROW_FIELDS = {
    "model",
    "rating",
    "ci_low",
    "ci_high",
    "rank",
    "votes",
    "wins",
    "losses",
    "ties",
    "both_bad",
    "win_rate",
    "provisional",
}


@pytest.fixture(scope="module")
def counts() -> PairCounts:
    rng = np.random.default_rng(3)
    true = np.array([1200, 1150, 1100, 1000, 990, 980, 900, 800.0])
    a, b, o = simulate_battles(true, 4000, rng=rng)
    names = ["a", "b", "c", "d", "e", "f", "g", "h"]
    return PairCounts.from_battles(a, b, o, models=names)


def test_rank_is_one_plus_models_clearly_above():
    low = np.array([10.0, 8.0, 5.0, 1.0])
    high = np.array([14.0, 12.0, 9.0, 6.0])
    # b overlaps a; c is below a (a.low 10 > c.high 9) but overlaps b; d is below a and b only.
    assert rank_from_intervals(low, high) == [1, 1, 2, 3]
    assert rank_from_intervals(low, high, eligible=np.array([False, True, True, True])) == [None, 1, 1, 2]


def test_leaderboard_rows_follow_the_rank_rule(counts):
    board = compute_leaderboard(counts, bootstrap=300)
    rows = board.rows
    assert [r.rating for r in rows] == sorted((r.rating for r in rows), reverse=True)
    for r in rows:
        assert r.ci_low <= r.rating <= r.ci_high
        assert r.rank == 1 + sum(o.ci_low > r.ci_high for o in rows)
    assert rows[0].rank == 1 and rows[-1].rank > 1
    assert np.mean([r.rating for r in rows]) == pytest.approx(1000.0)


def test_models_with_few_votes_are_provisional_and_unranked(counts):
    extra = PairCounts.from_battles(["newbie"] * 5, ["a"] * 5, ["model_a"] * 5)
    board = compute_leaderboard(counts + extra, bootstrap=200, min_votes=20)
    newbie = next(r for r in board.rows if r.model == "newbie")
    assert newbie.provisional and newbie.rank is None and newbie.votes == 5
    assert newbie.rating is not None and newbie.ci_high - newbie.ci_low > 200
    assert board.rows[-1] is newbie  # listed after the ranked models although it never lost
    ranked = [r for r in board.rows if not r.provisional]
    assert all(r.rank == 1 + sum(o.ci_low > r.ci_high for o in ranked) for r in ranked)
    assert not compute_leaderboard(counts + extra, intervals="none", min_votes=5).rows[0].provisional


def test_to_dict_is_strict_json_with_the_documented_fields(counts):
    extra = PairCounts.from_battles(["loner1"], ["loner2"], ["tie (bothbad)"])
    board = compute_leaderboard(counts + extra, both_bad="exclude", bootstrap=100)
    data = json.loads(json.dumps(board.to_dict(), allow_nan=False))
    assert set(data["rows"][0]) == ROW_FIELDS
    assert data["ties"] == "davidson" and data["tie_parameter"] > 0
    assert data["n_votes"] == 4001 and data["bootstrap_rounds"] == 100
    m = data["matrices"]
    n = len(m["models"])
    assert m["models"] == [r["model"] for r in data["rows"]]
    assert all(len(m[k]) == n and len(m[k][0]) == n for k in ("battles", "win_rate", "predicted_win_rate"))
    loner = data["rows"][-1]
    assert loner["rating"] is None and loner["rank"] is None and loner["win_rate"] is None


def test_matrices_hold_counts_observed_and_predicted_win_rates(counts):
    board = compute_leaderboard(counts, intervals="none")
    i, j = board.models.index("a"), board.models.index("h")
    ai, hi = counts.models.index("a"), counts.models.index("h")
    assert board.battles[i, j] == counts.battles[ai, hi]
    assert board.win_rate[i, j] == pytest.approx(counts.wins[ai, hi] / (counts.wins[ai, hi] + counts.wins[hi, ai]))
    ra, rh = board.rows[i].rating, board.rows[j].rating
    assert board.predicted_win_rate[i, j] == pytest.approx(1 / (1 + 10 ** ((rh - ra) / 400)))
    assert board.predicted_win_rate[i, j] + board.predicted_win_rate[j, i] == pytest.approx(1.0)
    assert math.isnan(board.win_rate[i, i])


def test_matrices_round_trip_through_bytes_exactly(counts):
    from ratings.leaderboard import matrices_from_bytes

    board = compute_leaderboard(counts + PairCounts.from_battles(["x"], ["y"], ["tie"]), intervals="sandwich")
    full, lean = board.to_dict(), board.to_dict(matrices=False)
    assert lean["matrices"] == {"models": full["matrices"]["models"]}
    assert {k: v for k, v in lean.items() if k != "matrices"} == {k: v for k, v in full.items() if k != "matrices"}
    data = board.matrices_to_bytes()
    assert len(data) == 3 * 8 * len(board.models) ** 2
    assert matrices_from_bytes(full["matrices"]["models"], data) == full["matrices"]  # None where undefined too
    with pytest.raises(ValueError, match="matrices of 3 models"):
        matrices_from_bytes(["a", "b", "c"], data)


def test_anchor_pins_one_model_and_shifts_the_rest(counts):
    free = compute_leaderboard(counts, intervals="sandwich")
    pinned = compute_leaderboard(counts, intervals="sandwich", anchor=("d", 1500.0))
    f = {r.model: r for r in free.rows}
    p = {r.model: r for r in pinned.rows}
    assert p["d"].rating == p["d"].ci_low == p["d"].ci_high == 1500.0
    assert p["a"].rating - p["d"].rating == pytest.approx(f["a"].rating - f["d"].rating)
    with pytest.raises(ValueError, match="anchor"):
        compute_leaderboard(counts, anchor=("nobody", 1000.0))


def test_half_win_and_sandwich_options_are_reported(counts):
    board = compute_leaderboard(counts, ties="half", intervals="sandwich")
    assert board.tie_parameter is None and board.to_dict()["intervals"] == "sandwich"
    fallback = compute_leaderboard(counts, bootstrap=0)
    assert fallback.intervals == "sandwich" and fallback.warnings


def test_empty_counts_give_an_empty_board():
    board = compute_leaderboard(PairCounts.empty(["x", "y"]))
    assert [r.rating for r in board.rows] == [None, None]
    assert json.dumps(board.to_dict(), allow_nan=False)


def test_per_dimension_and_per_category_boards():
    rng = np.random.default_rng(9)
    n = 3000
    names = np.array(["p", "q", "r"])
    a = rng.integers(0, 3, n)
    b = (a + rng.integers(1, 3, n)) % 3
    # Dimension "accuracy": p scores best; category "code": r wins everything it plays.
    score_a = rng.integers(1, 6, n) + (a == 0)
    score_b = rng.integers(1, 6, n) + (b == 0)
    dims = PairCounts.from_battles(names[a], names[b], outcomes_from_scores(score_a, score_b))
    board = compute_leaderboard(dims, bootstrap=100)
    assert board.rows[0].model == "p"
    category = np.where(rng.random(n) < 0.5, "code", "chat")
    outcome = np.where(category == "code", np.where(b == 2, 1, np.where(a == 2, 0, 2)), 2)
    per = counts_by_category(names[a], names[b], outcome, category)
    assert compute_leaderboard(per["code"], bootstrap=100).rows[0].model == "r"
    assert all(r.wins == 0 for r in compute_leaderboard(per["chat"], bootstrap=100).rows)
