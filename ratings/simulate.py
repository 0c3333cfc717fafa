"""Synthetic battles from known ratings, for tests, benchmarks and the coverage tables in the docs."""

from __future__ import annotations

from typing import Literal

import numpy as np

from .bt import SCALE
from .counts import Outcome
from .likelihood import outcome_probs

__all__ = ["simulate_battles"]


def simulate_battles(
    ratings: np.ndarray,
    n_votes: int,
    *,
    rng: np.random.Generator,
    ties: Literal["davidson", "score", "none"] = "davidson",
    nu: float = 0.25,
    tau: float = 0.2,
    scale: float = SCALE,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Votes between uniformly drawn pairs of distinct models; returns (model_a, model_b, outcome).

    ``ties="davidson"``: Davidson's model with tie parameter ``nu`` (0.25 gives about 11% ties for
    close models). ``ties="score"``: P(tie) = ``tau`` * 4p(1-p) with p the BT probability, and
    P(a wins) = p - P(tie)/2, so each side's expected score (win + tie/2) is exactly the BT
    probability: the world in which "tie = half a win" is the right model. ``"none"``: plain BT.
    """
    theta = np.asarray(ratings, dtype=float) / scale
    n = len(theta)
    a = rng.integers(0, n, n_votes)
    b = (a + rng.integers(1, n, n_votes)) % n
    d = theta[a] - theta[b]
    if ties == "davidson":
        pw, _, pt = outcome_probs(d, nu)
    elif ties == "score":
        p = 1.0 / (1.0 + np.exp(-d))
        pt = tau * 4 * p * (1 - p)
        pw = p - pt / 2
    elif ties == "none":
        pw, _, pt = outcome_probs(d, 0.0)
    else:
        raise ValueError(f"unknown ties {ties!r}")
    u = rng.random(n_votes)
    outcome = np.where(u < pw, Outcome.A_WINS, np.where(u < 1 - pt, Outcome.B_WINS, Outcome.TIE))
    return a, b, outcome.astype(np.int8)
