"""Intervals: reproducible bootstrap, agreement of the estimators, and coverage of the true ratings."""

from __future__ import annotations

import numpy as np
import pytest

from ratings import PairCounts, compute_leaderboard, fit_bradley_terry
from ratings.intervals import (
    batched_chord,
    batched_newton,
    bootstrap_params,
    centre_pieces,
    chord_inverse,
    sandwich_covariance,
)
from ratings.simulate import simulate_battles

NAMES = [f"m{i:02d}" for i in range(20)]


def simulated(seed: int, n_votes: int = 3000, ties: str = "davidson"):
    rng = np.random.default_rng(seed)
    true = rng.normal(0, 100, len(NAMES))
    true -= true.mean()
    a, b, o = simulate_battles(true + 1000, n_votes, rng=rng, ties=ties, nu=0.5, tau=0.4)
    return PairCounts.from_battles(a, b, o, models=NAMES), true + 1000


def test_bootstrap_is_reproducible_with_a_seed_whatever_the_threads():
    counts, _ = simulated(1)
    fit = fit_bradley_terry(counts)
    one = bootstrap_params(fit, rounds=300, seed=5, workers=1)
    two = bootstrap_params(fit, rounds=300, seed=5, workers=2)
    np.testing.assert_array_equal(one, two)
    other = bootstrap_params(fit, rounds=300, seed=6)
    assert not np.allclose(one, other)
    first = compute_leaderboard(counts, bootstrap=200, seed=3).to_dict()
    assert compute_leaderboard(counts, bootstrap=200, seed=3).to_dict() == first
    assert compute_leaderboard(counts, bootstrap=200, seed=4).to_dict()["rows"] != first["rows"]


def test_batched_bootstrap_fits_match_single_fits():
    counts, _ = simulated(2)
    fit = fit_bradley_terry(counts)
    samples = bootstrap_params(fit, rounds=3, seed=0)
    # Refit round 0 from scratch on the same resampled counts.
    rows = fit.rows
    rng = np.random.default_rng(np.random.SeedSequence(0).spawn(3)[0])
    cells = np.stack([rows.win, rows.loss, rows.tie]).ravel()
    drawn = np.zeros_like(cells)
    nz = np.flatnonzero(cells > 0)
    drawn[nz] = rng.poisson(cells[nz])
    win, loss, tie = drawn.reshape(3, -1)
    pairs = [(fit.models[i], fit.models[j]) for i, j in zip(rows.ia, rows.ib, strict=True)]
    a, b, o, w = [], [], [], []
    for (x, y), cw, cl, ct in zip(pairs, win, loss, tie, strict=True):
        for code, count in ((0, cw), (1, cl), (2, ct)):
            if count:
                a.append(x)
                b.append(y)
                o.append(code)
                w.append(count)
    refit = fit_bradley_terry(PairCounts.from_battles(a, b, o, weights=w))
    np.testing.assert_allclose(samples[0, :-1], refit.theta, atol=1e-5)
    assert np.exp(samples[0, -1]) == pytest.approx(refit.nu, rel=1e-5)


def test_sandwich_and_bootstrap_agree_when_the_model_is_right():
    counts, _ = simulated(3, n_votes=20_000)
    fit = fit_bradley_terry(counts)
    sd_boot = bootstrap_params(fit, rounds=1000, seed=0)[:, :20].std(0)
    sd_sandwich = np.sqrt(np.diag(sandwich_covariance(fit))[:20])
    np.testing.assert_allclose(sd_boot, sd_sandwich, rtol=0.12)
    multinomial = bootstrap_params(fit, rounds=1000, seed=0, resample="multinomial")[:, :20].std(0)
    np.testing.assert_allclose(multinomial, sd_sandwich, rtol=0.12)


@pytest.mark.slow
def test_default_intervals_cover_the_truth_95_percent_and_half_wins_do_not():
    """Davidson ties, 20 models, 3,000 votes: the default (Davidson, bootstrap) covers 93-97%;
    counting ties as half wins shrinks the scale and covers far less (docs/ratings.md)."""
    covered, covered_half = [], []
    for seed in range(60):
        counts, truth = simulated(100 + seed)
        board = compute_leaderboard(counts, seed=seed, min_votes=0)
        row = {r.model: r for r in board.rows}
        lo = np.array([row[m].ci_low for m in NAMES])
        hi = np.array([row[m].ci_high for m in NAMES])
        covered.append((lo <= truth) & (truth <= hi))
        if seed < 20:
            half = {
                r.model: r for r in compute_leaderboard(counts, ties="half", intervals="sandwich", min_votes=0).rows
            }
            covered_half.append([half[m].ci_low <= t <= half[m].ci_high for m, t in zip(NAMES, truth, strict=True)])
    assert 0.93 <= np.mean(covered) <= 0.97
    assert np.mean(covered_half) < 0.85


def test_tie_generation_that_favours_half_wins_is_covered_by_half_wins():
    """When ties keep each side's expected score at the BT probability, half-win is the right
    model: its sandwich intervals cover the truth (Davidson's do not; see docs)."""
    covered = []
    for seed in range(10):
        counts, truth = simulated(500 + seed, n_votes=4000, ties="score")
        rows = {r.model: r for r in compute_leaderboard(counts, ties="half", intervals="sandwich", min_votes=0).rows}
        covered += [rows[m].ci_low <= t <= rows[m].ci_high for m, t in zip(NAMES, truth, strict=True)]
    assert np.mean(covered) >= 0.9


def _poisson_rounds(fit, rounds: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = fit.rows
    rng = np.random.default_rng(seed)
    drawn = rng.poisson(np.stack([rows.win, rows.loss, rows.tie])[None], size=(rounds, 3, len(rows.ia)))
    return drawn[:, 0].astype(float), drawn[:, 1].astype(float), drawn[:, 2].astype(float)


@pytest.mark.parametrize("ties", ["davidson", "half"])
def test_chord_refits_equal_newton_to_a_thousandth_of_an_elo_point(ties):
    counts, _ = simulated(2)
    fit = fit_bradley_terry(counts, ties=ties)
    rows, nu = fit.rows, fit.fits_nu
    win, loss, tie = _poisson_rounds(fit, 40, 1)
    exact = batched_newton(rows, win, loss, tie, fit.params, fit_nu=nu, ridge=fit.ridge, tol=1e-12)
    inverse = chord_inverse(rows, fit.params, fit_nu=nu, ridge=fit.ridge)
    chord, settled = batched_chord(rows, win, loss, tie, fit.params, inverse, fit_nu=nu, ridge=fit.ridge)
    assert settled.all()
    np.testing.assert_allclose(centre_pieces(rows, chord), exact, atol=6e-6)  # 0.001 Elo points
    _, none = batched_chord(rows, win, loss, tie, fit.params, inverse, fit_nu=nu, ridge=fit.ridge, max_iter=1)
    assert not none.any()  # one step never tells how far off it is: such rounds go to Newton


def test_rounds_the_chord_cannot_settle_go_to_newton():
    """A model that lost once in 30 votes: resamples where it never loses run off towards infinity, the
    chord's capped steps do not shrink, and Newton (with the resample's own Hessian) takes those rounds."""
    a = ["x"] * 30 + ["y"] * 40 + ["z"] * 40
    b = ["y"] * 30 + ["z"] * 40 + ["x"] * 40
    o = ["model_a"] * 29 + ["model_b"] + ["model_a", "model_b", "tie", "model_b"] * 20
    fit = fit_bradley_terry(PairCounts.from_battles(a, b, o))
    win, loss, tie = _poisson_rounds(fit, 200, 3)
    inverse = chord_inverse(fit.rows, fit.params, fit_nu=True, ridge=fit.ridge)
    _, settled = batched_chord(fit.rows, win, loss, tie, fit.params, inverse, fit_nu=True, ridge=fit.ridge)
    assert 0 < (~settled).sum() < 200
    samples = bootstrap_params(fit, rounds=200, seed=0)
    assert np.all(np.isfinite(samples))


@pytest.mark.parametrize("resample", ["poisson", "multinomial"])
def test_the_count_bootstrap_matches_resampling_the_battles_within_monte_carlo_error(resample):
    """Resampling battles with replacement and refitting each round from scratch (the public arena's
    notebook) gives the spread that drawing the aggregated cell counts gives (400 rounds each)."""
    rng = np.random.default_rng(11)
    true = rng.normal(0, 100, len(NAMES)) + 1000
    a, b, o = simulate_battles(true, 3000, rng=rng, ties="davidson", nu=0.5, tau=0.4)
    fit = fit_bradley_terry(PairCounts.from_battles(a, b, o, models=NAMES))
    rows_boot = []
    for _ in range(400):
        pick = rng.integers(0, len(o), len(o))
        refit = fit_bradley_terry(PairCounts.from_battles(a[pick], b[pick], o[pick], models=NAMES))
        rows_boot.append(refit.theta)
    by_rows = np.array(rows_boot)
    by_counts = bootstrap_params(fit, rounds=400, seed=2, resample=resample)[:, : len(NAMES)]
    ratio = by_counts.std(0) / by_rows.std(0)
    assert 0.94 < ratio.mean() < 1.06 and np.all((ratio > 0.75) & (ratio < 1.33))
    widths = [np.diff(np.quantile(s, [0.025, 0.975], axis=0), axis=0).mean() for s in (by_counts, by_rows)]
    assert widths[0] == pytest.approx(widths[1], rel=0.06)
    np.testing.assert_allclose(by_counts.mean(0), by_rows.mean(0), atol=0.3 * by_rows.std(0).mean())
