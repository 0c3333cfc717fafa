"""AlpacaEval-style win rates against a reference model, raw and length-controlled (no database).

For each model, every pairing against the reference that the judge decided gives a preference for
the model: 1 (won), 0.5 (tie, both bad, or the two orders disagreeing), 0 (lost).

- win rate: the mean preference, in percent, with a normal 95% interval (mean +- 1.96 standard
  errors, clipped to 0-100), as AlpacaEval reports it;
- length-controlled win rate (after AlpacaEval 2.0): a logistic regression of the preference on the
  length difference, ``logit P(model preferred) = b0 + b1 * tanh((len_model - len_ref) / s)`` with
  ``s`` the standard deviation of the length differences over all models' pairings; the rate at equal
  length is ``sigmoid(b0)``, its interval from b0's standard error. AlpacaEval 2.0 also fits an
  instruction-difficulty term shared by all models; with the few hundred prompts of a campaign this
  per-model version is the sturdier choice. A judge that favours longer answers gets a positive b1,
  and the length-controlled rate takes that advantage away.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

Z95 = 1.959963984540054
RIDGE = 0.01  # a weak prior: keeps all-wins data finite without pulling the rate visibly


@dataclass(frozen=True)
class WinRate:
    model: str
    n: int
    win_rate: float | None
    ci_low: float | None
    ci_high: float | None
    lc_win_rate: float | None
    lc_ci_low: float | None
    lc_ci_high: float | None
    length_slope: float | None

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def raw_win_rate(prefs: Sequence[float]) -> tuple[float | None, float | None, float | None]:
    p = np.asarray(prefs, float)
    if p.size == 0:
        return None, None, None
    mean = float(p.mean())
    if p.size < 2:
        return 100 * mean, None, None
    half = Z95 * float(p.std(ddof=1)) / math.sqrt(p.size)
    return 100 * mean, 100 * max(0.0, mean - half), 100 * min(1.0, mean + half)


def _sigmoid(x: np.ndarray | float) -> np.ndarray | float:
    return 1 / (1 + np.exp(-x))


def fit_logistic(
    x: np.ndarray, y: np.ndarray, ridge: float = RIDGE, iterations: int = 50
) -> tuple[np.ndarray, np.ndarray]:
    """Newton's method for a logistic regression with fractional outcomes ``y`` in [0, 1] and a small
    ridge; returns the coefficients and their covariance (the inverse Hessian)."""
    beta = np.zeros(x.shape[1])
    hessian = np.eye(x.shape[1]) * ridge
    for _ in range(iterations):
        mu = _sigmoid(x @ beta)
        gradient = x.T @ (y - mu) - ridge * beta
        hessian = (x.T * (mu * (1 - mu))) @ x + ridge * np.eye(x.shape[1])
        step = np.linalg.solve(hessian, gradient)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    return beta, np.linalg.inv(hessian)


def length_controlled(
    prefs: Sequence[float], length_diff: Sequence[float], scale: float
) -> tuple[float, float, float, float]:
    """(rate, low, high, slope) in percent at equal length; see the module docstring."""
    y = np.asarray(prefs, float)
    feature = np.tanh(np.asarray(length_diff, float) / scale) if scale > 0 else np.zeros(y.size)
    x = np.column_stack([np.ones(y.size), feature])
    beta, cov = fit_logistic(x, y)
    se = math.sqrt(max(cov[0, 0], 0.0))
    b0 = float(beta[0])
    return (
        100 * float(_sigmoid(b0)),
        100 * float(_sigmoid(b0 - Z95 * se)),
        100 * float(_sigmoid(b0 + Z95 * se)),
        float(beta[1]),
    )


def win_rates(battles: dict[str, list[tuple[float, float, float]]]) -> list[WinRate]:
    """``battles[model]`` = (preference for the model, its answer's length, the reference's length)
    per pairing against the reference; rows sorted by length-controlled win rate."""
    diffs = [lm - lr for rows in battles.values() for _, lm, lr in rows]
    scale = float(np.std(diffs)) if len(diffs) > 1 else 0.0
    out = []
    for model, rows in battles.items():
        prefs = [p for p, _, _ in rows]
        rate, low, high = raw_win_rate(prefs)
        if len(rows) >= 2:
            lc, lc_low, lc_high, slope = length_controlled(prefs, [lm - lr for _, lm, lr in rows], scale)
        else:
            lc = lc_low = lc_high = slope = None
        out.append(WinRate(model, len(rows), rate, low, high, lc, lc_low, lc_high, slope))
    return sorted(out, key=lambda r: -(r.lc_win_rate if r.lc_win_rate is not None else -1))
