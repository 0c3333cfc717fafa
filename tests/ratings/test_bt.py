"""Bradley-Terry / Davidson fits: the scale, Newton vs MM, the published evalica scores, awkward data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import spearmanr

from ratings import SCALE, PairCounts, compute_leaderboard, fit_bradley_terry
from ratings.simulate import simulate_battles


def sim_counts(rng, n_models=12, n_votes=6000, ties="davidson", sd=150.0):
    true = rng.normal(0, sd, n_models)
    names = [f"m{i:02d}" for i in range(n_models)]
    a, b, o = simulate_battles(true + 1000, n_votes, rng=rng, ties=ties)
    return PairCounts.from_battles(a, b, o, models=names), true - true.mean()


def test_the_scale_is_elo_points_per_log_odds():
    # 30 wins to 10: the MLE log-odds is ln 3, i.e. 400*log10(3) = 190.8 Elo points apart.
    counts = PairCounts.from_battles(["a"] * 40, ["b"] * 40, ["model_a"] * 30 + ["model_b"] * 10)
    fit = fit_bradley_terry(counts, ties="half")
    ratings = fit.ratings()
    assert ratings[0] - ratings[1] == pytest.approx(400 * math.log10(3), abs=1e-4)
    assert ratings.mean() == pytest.approx(1000.0)
    assert pytest.approx(400 / math.log(10)) == SCALE
    anchored = fit.ratings(anchor=("b", 1200.0))
    assert anchored[1] == pytest.approx(1200.0) and anchored[0] - anchored[1] == pytest.approx(190.8485, abs=1e-3)


@pytest.mark.parametrize("ties", ["half", "davidson"])
def test_newton_and_mm_agree(rng, ties):
    counts, _ = sim_counts(rng)
    newton = fit_bradley_terry(counts, ties=ties, method="newton")
    mm = fit_bradley_terry(counts, ties=ties, method="mm")
    assert newton.iterations < 15
    np.testing.assert_allclose(newton.theta, mm.theta, atol=1e-6)
    if ties == "davidson":
        assert newton.nu == pytest.approx(mm.nu, rel=1e-6)
    assert newton.log_likelihood == pytest.approx(mm.log_likelihood, abs=1e-6)


def test_half_win_fit_reproduces_evalica_bradley_terry(llmfao):
    """evalica's bradley_terry scores are strengths p normalised to sum 1, ties as half wins:
    log p equals our theta up to an additive constant."""
    counts = PairCounts.from_battles(llmfao["a"], llmfao["b"], llmfao["outcome"])
    fit = fit_bradley_terry(counts, ties="half")
    golden = llmfao["golden"]["bradley_terry"]
    assert sorted(golden) == sorted(fit.models)
    expected = np.log([golden[m] for m in fit.models])
    expected -= expected.mean()
    np.testing.assert_allclose(fit.theta, expected, rtol=0, atol=1e-6)
    ours = sorted(fit.models, key=lambda m: -fit.theta[fit.models.index(m)])
    theirs = sorted(golden, key=lambda m: -golden[m])
    assert ours == theirs


def test_davidson_on_real_data_keeps_the_order_and_widens_the_scale(llmfao):
    counts = PairCounts.from_battles(llmfao["a"], llmfao["b"], llmfao["outcome"])
    half = fit_bradley_terry(counts, ties="half")
    davidson = fit_bradley_terry(counts, ties="davidson")
    assert davidson.nu > 1  # 39% ties in this data
    assert spearmanr(half.theta, davidson.theta).statistic > 0.99
    slope = np.polyfit(half.theta, davidson.theta, 1)[0]
    assert slope > 1.5  # half-win compresses the scale when ties are frequent


def test_davidson_without_ties_is_plain_bradley_terry(rng):
    counts, _ = sim_counts(rng, ties="none")
    assert counts.ties.sum() == 0
    davidson = fit_bradley_terry(counts, ties="davidson")
    half = fit_bradley_terry(counts, ties="half")
    assert davidson.nu == 0.0
    np.testing.assert_allclose(davidson.theta, half.theta, atol=1e-12)


def test_davidson_recovers_the_true_ratings_and_tie_parameter(rng):
    true = rng.normal(0, 150, 10)
    a, b, o = simulate_battles(true + 1000, 100_000, rng=rng, ties="davidson", nu=0.6)
    fit = fit_bradley_terry(PairCounts.from_battles(a, b, o, models=[f"m{i}" for i in range(10)]))
    assert fit.nu == pytest.approx(0.6, rel=0.05)
    np.testing.assert_allclose(SCALE * fit.theta, true - true.mean(), atol=15)
    half = fit_bradley_terry(PairCounts.from_battles(a, b, o, models=[f"m{i}" for i in range(10)]), ties="half")
    assert np.polyfit(true, SCALE * half.theta, 1)[0] < 0.85  # the documented compression


def test_ranking_is_recovered_at_a_million_votes():
    rng = np.random.default_rng(7)
    true = rng.normal(1000, 150, 100)
    a, b, o = simulate_battles(true, 1_000_000, rng=rng, ties="davidson", nu=0.22)
    counts = PairCounts.from_battles(a, b, o, models=[f"m{i:03d}" for i in range(100)])
    fit = fit_bradley_terry(counts)
    assert 0.07 < (o == 2).mean() < 0.13
    assert spearmanr(fit.theta, true).statistic >= 0.998


def test_perfect_separation_stays_finite():
    # "a" never loses: the MLE is at infinity; the tiny ridge keeps it finite and ordered.
    counts = PairCounts.from_battles(
        ["a", "a", "b", "c"], ["b", "c", "c", "b"], ["model_a", "model_a", "model_a", "model_a"]
    )
    board = compute_leaderboard(counts, bootstrap=200, min_votes=0)
    rows = {r.model: r for r in board.rows}
    assert all(math.isfinite(r.rating) and math.isfinite(r.ci_low) and math.isfinite(r.ci_high) for r in board.rows)
    assert rows["a"].rating > rows["b"].rating and rows["a"].rating > rows["c"].rating
    sandwich = compute_leaderboard(counts, intervals="sandwich", min_votes=0)
    assert all(math.isfinite(r.ci_low) and math.isfinite(r.ci_high) for r in sandwich.rows)


def test_disconnected_pieces_are_centred_separately_and_flagged():
    a = ["a"] * 30 + ["c"] * 30
    b = ["b"] * 30 + ["d"] * 30
    o = ["model_a"] * 20 + ["model_b"] * 10 + ["model_a"] * 15 + ["model_b"] * 15
    board = compute_leaderboard(PairCounts.from_battles(a, b, o), bootstrap=100, min_votes=0)
    rows = {r.model: r for r in board.rows}
    assert board.n_components == 2
    assert any("disconnected" in w for w in board.warnings)
    assert rows["a"].rating + rows["b"].rating == pytest.approx(2000, abs=1e-6)
    assert rows["c"].rating == pytest.approx(1000, abs=1e-6) == rows["d"].rating
    assert all(math.isfinite(r.ci_low) for r in board.rows)


def test_both_bad_can_be_excluded():
    a, b = ["x"] * 10, ["y"] * 10
    o = ["model_a"] * 4 + ["model_b"] * 2 + ["tie (bothbad)"] * 4
    counts = PairCounts.from_battles(a, b, o)
    as_tie = fit_bradley_terry(counts, ties="half", both_bad="tie")
    excluded = fit_bradley_terry(counts, ties="half", both_bad="exclude")
    # Excluded: 4-2, log-odds ln 2. As ties: 6-4 in half-win points, log-odds ln 1.5.
    assert excluded.theta[0] - excluded.theta[1] == pytest.approx(math.log(2), abs=1e-5)
    assert as_tie.theta[0] - as_tie.theta[1] == pytest.approx(math.log(1.5), abs=1e-5)


def test_models_without_fitted_votes_are_left_out():
    counts = PairCounts.from_battles(["x", "y", "x"], ["z", "z", "z"], ["model_a", "tie (bothbad)", "model_b"])
    fit = fit_bradley_terry(counts, both_bad="exclude")
    assert fit.models == ("x", "z")
    board = compute_leaderboard(counts, both_bad="exclude", bootstrap=50, min_votes=0)
    y = next(r for r in board.rows if r.model == "y")
    assert y.rating is None and y.rank is None and y.votes == 1
    assert board.rows[-1].model == "y"


def test_fit_rejects_unknown_options():
    counts = PairCounts.from_battles(["x"], ["y"], ["tie"])
    with pytest.raises(ValueError, match="ties"):
        fit_bradley_terry(counts, ties="elo")
    with pytest.raises(ValueError, match="both_bad"):
        fit_bradley_terry(counts, both_bad="drop")
    with pytest.raises(ValueError, match="method"):
        fit_bradley_terry(counts, method="gradient")
