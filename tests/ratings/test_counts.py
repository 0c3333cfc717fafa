"""Aggregation into PairCounts: correctness, incremental folding, plain-data round trips."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from ratings import Outcome, PairCounts, counts_by_category, outcomes_from_scores, parse_outcomes

NAMES = ["alpha", "bravo", "charlie", "delta", "echo"]


def random_battles(rng: np.random.Generator, n_votes: int, names=NAMES):
    a = rng.integers(0, len(names), n_votes)
    b = (a + rng.integers(1, len(names), n_votes)) % len(names)
    outcome = rng.integers(0, 4, n_votes)
    return [names[i] for i in a], [names[i] for i in b], outcome


def naive_counts(a, b, outcome, weights=None):
    """Reference aggregation with a plain loop."""
    names = sorted(set(a) | set(b))
    idx = {m: i for i, m in enumerate(names)}
    n = len(names)
    wins, ties, both = np.zeros((n, n)), np.zeros((n, n)), np.zeros((n, n))
    for k, (x, y, o) in enumerate(zip(a, b, outcome, strict=True)):
        w = 1.0 if weights is None else weights[k]
        i, j = idx[x], idx[y]
        if o == Outcome.A_WINS:
            wins[i, j] += w
        elif o == Outcome.B_WINS:
            wins[j, i] += w
        elif o == Outcome.TIE:
            ties[i, j] += w
            ties[j, i] += w
        elif o == Outcome.BOTH_BAD:
            both[i, j] += w
            both[j, i] += w
    return names, wins, ties, both


def test_it_matches_a_plain_loop(rng):
    a, b, outcome = random_battles(rng, 2000)
    weights = rng.integers(1, 4, 2000).astype(float)
    counts = PairCounts.from_battles(a, b, outcome, weights=weights)
    names, wins, ties, both = naive_counts(a, b, outcome, weights)
    assert list(counts.models) == names
    np.testing.assert_array_equal(counts.wins, wins)
    np.testing.assert_array_equal(counts.ties, ties)
    np.testing.assert_array_equal(counts.both_bad, both)
    assert counts.n_votes == weights.sum()


def test_incremental_folding_equals_a_full_rebuild(rng):
    a, b, outcome = random_battles(rng, 3000)
    full = PairCounts.from_battles(a, b, outcome)
    # Fold in uneven batches, one of which introduces models never seen before.
    cuts = [0, 1, 17, 500, 1999, 3000]
    folded = PairCounts.empty()
    for lo, hi in itertools.pairwise(cuts):
        folded = folded + PairCounts.from_battles(a[lo:hi], b[lo:hi], outcome[lo:hi])
    assert folded == full
    # Also through the JSON form, as the Django layer stores it between folds.
    stored = PairCounts.empty()
    for lo, hi in itertools.pairwise(cuts):
        stored = PairCounts.from_dict(json.loads(json.dumps(stored.to_dict())))
        stored = stored + PairCounts.from_battles(a[lo:hi], b[lo:hi], outcome[lo:hi])
    assert stored == full


def test_a_first_batch_with_a_subset_of_models_folds_correctly():
    first = PairCounts.from_battles(["b", "c"], ["c", "b"], ["model_a", "tie"])
    second = PairCounts.from_battles(["a"], ["c"], ["model_b"])
    total = first + second
    assert total.models == ("a", "b", "c")
    assert total.wins[2, 0] == 1 and total.wins[1, 2] == 1
    assert total.ties[1, 2] == total.ties[2, 1] == 1
    assert total == PairCounts.from_battles(["b", "c", "a"], ["c", "b", "c"], ["model_a", "tie", "model_b"])


def test_dict_round_trip_is_json_and_exact(rng):
    a, b, outcome = random_battles(rng, 500)
    counts = PairCounts.from_battles(a, b, outcome, models=["zulu"])
    data = json.loads(json.dumps(counts.to_dict()))
    assert data["models"][-1] == "zulu"
    assert all(isinstance(v, int) for row in data["pairs"] for v in row)
    assert PairCounts.from_dict(data) == counts
    weighted = PairCounts.from_battles(["a"], ["b"], ["tie"], weights=[0.25])
    assert PairCounts.from_dict(json.loads(json.dumps(weighted.to_dict()))) == weighted


def test_outcome_labels_and_codes_give_the_same_counts():
    labels = ["model_a", "model_b", "tie", "tie (bothbad)", "TIE", "both_bad"]
    codes = parse_outcomes(labels)
    assert codes.tolist() == [0, 1, 2, 3, 2, 3]
    a, b = ["x"] * 6, ["y"] * 6
    assert PairCounts.from_battles(a, b, labels) == PairCounts.from_battles(a, b, codes)


def test_integer_model_indices_need_names_and_are_sorted():
    counts = PairCounts.from_battles(np.array([0, 1]), np.array([1, 2]), [0, 0], models=["zz", "aa", "mm"])
    assert counts.models == ("aa", "mm", "zz")
    assert counts.wins[2, 0] == 1  # zz beat aa
    assert counts.wins[0, 1] == 1  # aa beat mm
    with pytest.raises(ValueError, match="models"):
        PairCounts.from_battles(np.array([0]), np.array([1]), [0])


@pytest.mark.parametrize(
    ("a", "b", "outcome", "message"),
    [
        (["x"], ["x"], ["tie"], "battles itself"),
        (["x"], ["y"], ["maybe"], "invalid outcome"),
        (["x", "y"], ["y"], ["tie"], "same length"),
        ([""], ["y"], ["tie"], "non-empty"),
    ],
)
def test_it_rejects_bad_battles(a, b, outcome, message):
    with pytest.raises(ValueError, match=message):
        PairCounts.from_battles(a, b, outcome)


def test_skip_rows_are_dropped_and_empty_input_works():
    counts = PairCounts.from_battles(["x", "x"], ["y", "y"], [Outcome.SKIP, Outcome.A_WINS])
    assert counts.n_votes == 1
    empty = PairCounts.from_battles([], [], [])
    assert empty.models == () and empty.n_votes == 0
    assert empty + counts == counts


def test_scores_become_outcomes_per_dimension():
    out = outcomes_from_scores([5, 3, 4, np.nan], [4, 3, 5, 1])
    assert out.tolist() == [Outcome.A_WINS, Outcome.TIE, Outcome.B_WINS, Outcome.SKIP]
    counts = PairCounts.from_battles(["p", "p", "p", "p"], ["q", "q", "q", "q"], out)
    assert counts.n_votes == 3 and counts.wins[0, 1] == 1 and counts.wins[1, 0] == 1


def test_counts_by_category_partitions_the_votes(rng):
    a, b, outcome = random_battles(rng, 1000)
    labels = rng.choice(["code", "math", "chat"], 1000)
    per = counts_by_category(a, b, outcome, labels)
    assert sorted(per) == ["chat", "code", "math"]
    total = per["chat"] + per["code"] + per["math"]
    assert total == PairCounts.from_battles(a, b, outcome)
    mask = labels == "math"
    assert per["math"] == PairCounts.from_battles(np.array(a)[mask], np.array(b)[mask], outcome[mask])


def test_counts_are_read_only():
    counts = PairCounts.from_battles(["x"], ["y"], ["tie"])
    with pytest.raises(ValueError):
        counts.wins[0, 1] = 5


def test_binary_round_trip_is_exact_and_checked(rng):
    a, b, outcome = random_battles(rng, 3000)
    weights = rng.random(3000) * 3  # fractional frequency weights survive too
    for counts in (PairCounts.from_battles(a, b, outcome), PairCounts.from_battles(a, b, outcome, weights=weights)):
        data = counts.to_bytes()
        assert len(data) == 3 * 8 * len(NAMES) ** 2
        assert PairCounts.from_bytes(counts.models, data) == counts
        assert PairCounts.from_bytes(counts.models, memoryview(data)) == counts  # what PostgreSQL hands back
    assert PairCounts.from_bytes((), PairCounts.empty().to_bytes()) == PairCounts.empty()
    with pytest.raises(ValueError, match="do not hold counts of 4 models"):
        PairCounts.from_bytes(NAMES[:4], data)
    broken = np.frombuffer(data, "<f8").copy()
    broken[1] = -1.0  # a negative count
    with pytest.raises(ValueError, match="non-negative"):
        PairCounts.from_bytes(counts.models, broken.tobytes())
