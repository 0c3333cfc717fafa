"""Bias statistics of the voters: position bias, length bias, and tie / both-bad rates per model.

Shares come with Wilson 95% intervals (good at small counts and near 0 or 1, unlike the normal
approximation). Weights, when given, are frequency weights, as everywhere in this package.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .counts import Outcome, PairCounts, parse_outcomes
from .intervals import z_value

__all__ = ["Proportion", "length_bias", "position_bias", "tie_rates", "wilson_interval"]


@dataclass(frozen=True)
class Proportion:
    """``successes`` out of ``n`` with its share and Wilson interval (None when n is 0)."""

    share: float | None
    ci_low: float | None
    ci_high: float | None
    successes: float
    n: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "share": self.share,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "successes": self.successes,
            "n": self.n,
        }


def wilson_interval(successes: float, n: float, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial share."""
    if n <= 0:
        raise ValueError("n must be positive")
    z = z_value(confidence)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if successes <= 0 else max(0.0, centre - half)  # exact ends, not rounding noise
    high = 1.0 if successes >= n else min(1.0, centre + half)
    return low, high


def _proportion(successes: float, n: float, confidence: float) -> Proportion:
    if n <= 0:
        return Proportion(None, None, None, 0.0, 0.0)
    lo, hi = wilson_interval(successes, n, confidence)
    return Proportion(successes / n, lo, hi, float(successes), float(n))


def _weights(weights: Sequence[float] | np.ndarray | None, size: int) -> np.ndarray:
    return np.ones(size) if weights is None else np.asarray(weights, float)


def position_bias(
    outcome: Sequence[Any] | np.ndarray,
    a_on_left: Sequence[bool] | np.ndarray,
    *,
    weights: Sequence[float] | np.ndarray | None = None,
    confidence: float = 0.95,
) -> Proportion:
    """Share of decisive votes won by the response shown on the left.

    Without position bias (and with random placement) it is 0.5; an interval excluding 0.5 means
    voters favour one side. ``a_on_left[i]`` says whether model a was shown on the left.
    """
    codes = parse_outcomes(outcome)
    left = np.asarray(a_on_left, bool)
    if left.shape != codes.shape:
        raise ValueError("a_on_left must have one entry per battle")
    w = _weights(weights, len(codes))
    a_won, b_won = codes == Outcome.A_WINS, codes == Outcome.B_WINS
    left_won = (a_won & left) | (b_won & ~left)
    return _proportion(float(w[left_won].sum()), float(w[a_won | b_won].sum()), confidence)


def length_bias(
    outcome: Sequence[Any] | np.ndarray,
    length_a: Sequence[float] | np.ndarray,
    length_b: Sequence[float] | np.ndarray,
    *,
    weights: Sequence[float] | np.ndarray | None = None,
    confidence: float = 0.95,
) -> Proportion:
    """Share of decisive votes, among battles with answers of different length, won by the longer
    answer. Part of a high share can be real quality (better models write more); style control
    (`ratings.style`) separates the two."""
    codes = parse_outcomes(outcome)
    la, lb = np.asarray(length_a, float), np.asarray(length_b, float)
    if not (la.shape == lb.shape == codes.shape):
        raise ValueError("lengths must have one entry per battle")
    w = _weights(weights, len(codes))
    a_won, b_won = codes == Outcome.A_WINS, codes == Outcome.B_WINS
    counted = (a_won | b_won) & (la != lb)
    longer_won = counted & ((a_won & (la > lb)) | (b_won & (lb > la)))
    return _proportion(float(w[longer_won].sum()), float(w[counted].sum()), confidence)


def tie_rates(counts: PairCounts, *, confidence: float = 0.95) -> dict[str, dict[str, Proportion]]:
    """Per model: share of its votes that were ties, and that were "both bad"."""
    totals = counts.per_model()
    return {
        m: {
            "tie": _proportion(float(totals["ties"][i]), float(totals["votes"][i]), confidence),
            "both_bad": _proportion(float(totals["both_bad"][i]), float(totals["votes"][i]), confidence),
        }
        for i, m in enumerate(counts.models)
    }
