"""Online Elo (checked against evalica's published scores) and the voter bias statistics."""

from __future__ import annotations

import numpy as np
import pytest

from ratings import (
    Outcome,
    PairCounts,
    length_bias,
    online_elo,
    position_bias,
    tie_rates,
    update_elo,
    wilson_interval,
)


def test_elo_defaults_reproduce_evalica(llmfao):
    """evalica's elo uses K=4, scale 400, base 10, initial 1000, ties 0.5, in file order: so do we."""
    ours = online_elo(llmfao["a"], llmfao["b"], llmfao["outcome"])
    golden = llmfao["golden"]["elo"]
    assert sorted(ours) == sorted(golden)
    assert max(abs(ours[m] - golden[m]) for m in golden) < 1e-9


def test_elo_update_rule_and_options():
    first = online_elo(["a"], ["b"], ["model_a"])
    assert first == {"a": 1002.0, "b": 998.0}  # expected 0.5, K = 4
    custom = online_elo(["a"], ["b"], ["model_b"], k=32, initial=1500)
    assert custom == {"a": 1484.0, "b": 1516.0}
    tie = online_elo(["a", "a"], ["b", "b"], ["model_a", "tie"])
    assert tie["a"] + tie["b"] == pytest.approx(2000.0) and tie["a"] < 1002.0
    assert online_elo(["a"], ["b"], ["tie (bothbad)"], both_bad="exclude") == {}


def test_elo_depends_on_vote_order_and_folds_incrementally():
    a, b = ["x", "x", "y", "z"], ["y", "z", "z", "x"]
    o = ["model_a", "model_b", "tie", "model_a"]
    forward = online_elo(a, b, o)
    backward = online_elo(a[::-1], b[::-1], o[::-1])
    assert forward != backward
    partial = update_elo({}, zip(a[:2], b[:2], o[:2], strict=True))
    assert update_elo(partial, zip(a[2:], b[2:], [Outcome.TIE, Outcome.A_WINS], strict=True)) == forward


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)


def test_position_bias_detects_a_planted_left_preference():
    rng = np.random.default_rng(0)
    n = 4000
    a_on_left = rng.random(n) < 0.5
    left_wins = rng.random(n) < 0.6  # voters pick the left answer 60% of the time
    outcome = np.where(left_wins == a_on_left, Outcome.A_WINS, Outcome.B_WINS)
    outcome[:400] = Outcome.TIE  # ties are not decisive and do not count
    bias = position_bias(outcome, a_on_left)
    assert bias.n == n - 400
    assert 0.57 < bias.share < 0.63 and bias.ci_low > 0.5
    fair = position_bias(outcome, rng.random(n) < 0.5)
    assert fair.ci_low < 0.5 < fair.ci_high


def test_length_bias_counts_only_decisive_votes_with_different_lengths():
    outcome = [Outcome.A_WINS, Outcome.A_WINS, Outcome.B_WINS, Outcome.TIE, Outcome.A_WINS]
    la, lb = [100, 50, 10, 100, 30], [10, 80, 90, 10, 30]
    bias = length_bias(outcome, la, lb)
    assert (bias.successes, bias.n) == (2, 3)
    assert bias.share == pytest.approx(2 / 3) and bias.ci_low < 2 / 3 < bias.ci_high


def test_tie_and_both_bad_rates_per_model():
    counts = PairCounts.from_battles(
        ["a", "a", "a", "b"], ["b", "c", "b", "c"], ["tie", "tie (bothbad)", "model_a", "model_b"]
    )
    rates = tie_rates(counts)
    assert rates["a"]["tie"].share == pytest.approx(1 / 3)
    assert rates["a"]["both_bad"].share == pytest.approx(1 / 3)
    assert rates["b"]["tie"].n == 3 and rates["c"]["tie"].share == 0


def test_indexed_elo_gives_update_elo_bit_for_bit(rng):
    from ratings import update_elo
    from ratings.elo import update_elo_indexed

    names = ["m0", "m1", "m2", "m3", "m4", "m5"]
    ia = rng.integers(0, 5, 5000)  # m5 never plays
    ib = (ia + rng.integers(1, 5, 5000)) % 5
    outcome = rng.integers(-1, 4, 5000)  # skips and both-bad included
    start = {"m3": 1012.5, "m1": 990.0}
    for both_bad in ("tie", "exclude"):
        battles = [(names[i], names[j], int(o)) for i, j, o in zip(ia, ib, outcome, strict=True)]
        expected = update_elo(start, battles, both_bad=both_bad)
        got = update_elo_indexed(start, names, ia, ib, outcome, both_bad=both_bad)
        assert got == expected and list(got) == list(expected)  # same floats, same order of models
        assert "m5" not in got
        # Folding in two pieces continues exactly where the first stopped.
        half = update_elo_indexed(start, names, ia[:2500], ib[:2500], outcome[:2500], both_bad=both_bad)
        assert update_elo_indexed(half, names, ia[2500:], ib[2500:], outcome[2500:], both_bad=both_bad) == expected
    assert update_elo_indexed(start, names, ia[:0], ib[:0], outcome[:0]) == start
