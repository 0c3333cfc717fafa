"""Bradley-Terry maximum likelihood on aggregated counts, with two tie conventions.

``ties="davidson"`` (default) fits Davidson's tie model: a tie parameter nu is estimated from the
data, so ties are evidence of closeness and the rating scale is not compressed. ``ties="half"`` is
the public Chatbot Arena convention (a tie is half a win and half a loss); with many ties it shrinks
ratings towards the mean and its intervals become too narrow for the shrunk values (docs/ratings.md).

Ratings are ``base + SCALE * theta`` with ``SCALE = 400 / ln 10`` Elo points per unit of log-odds,
``theta`` centred (mean 0 over the fitted models) unless an anchor model is pinned to a rating.

Sanity on awkward data: a tiny L2 ridge (1e-6 on the summed log-likelihood) keeps every fit finite.
A model that never lost (perfect separation) then gets a large but finite rating with a very wide
interval; a comparison graph in several pieces gets each piece centred separately, and ratings are
only comparable inside a piece (`Fit.n_components` says how many there are). Models without any
fitted vote are left out of the fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from .counts import PairCounts
from .likelihood import Rows, outcome_probs, row_derivatives, row_loglik, solve_spd

__all__ = ["SCALE", "Fit", "fit_bradley_terry", "predicted_win_rate"]

SCALE = 400.0 / math.log(10.0)
"""Elo points per unit of log-odds (about 173.7)."""

Ties = Literal["davidson", "half"]
BothBad = Literal["tie", "exclude"]
DEFAULT_RIDGE = 1e-6


@dataclass(frozen=True, eq=False)
class Fit:
    """A fitted model. ``theta`` are centred log-strengths of ``models`` (the fitted ones only);
    ``nu`` is Davidson's tie parameter (None for half-win ties); ``beta`` holds style coefficients
    (empty for plain fits)."""

    models: tuple[str, ...]
    theta: np.ndarray
    nu: float | None
    ties: str
    both_bad: str
    method: str
    iterations: int
    log_likelihood: float
    n_components: int
    beta: np.ndarray = field(default_factory=lambda: np.zeros(0))
    rows: Rows | None = field(default=None, repr=False, compare=False)
    ridge: float = DEFAULT_RIDGE

    @property
    def fits_nu(self) -> bool:
        """Whether log nu is a fitted parameter (Davidson with at least one tie)."""
        return bool(self.nu)

    @property
    def params(self) -> np.ndarray:
        """The parameter vector ``[theta, beta, log nu]`` in the layout of `Rows`."""
        tail = [math.log(self.nu)] if self.fits_nu else []
        return np.concatenate([self.theta, self.beta, tail])

    def offset(self, *, scale: float = SCALE, base: float = 1000.0, anchor: tuple[str, float] | None = None) -> float:
        """The constant added to ``scale * theta``: ``base``, or what puts the anchor at its rating."""
        if anchor is None:
            return base
        name, value = anchor
        if name not in self.models:
            raise ValueError(f"anchor model {name!r} has no fitted votes")
        return float(value) - scale * float(self.theta[self.models.index(name)])

    def ratings(
        self, *, scale: float = SCALE, base: float = 1000.0, anchor: tuple[str, float] | None = None
    ) -> np.ndarray:
        """Ratings on the Elo-like scale (see module docstring)."""
        return scale * self.theta + self.offset(scale=scale, base=base, anchor=anchor)


def predicted_win_rate(theta: np.ndarray) -> np.ndarray:
    """P(row model beats column model | the vote is decisive) = sigmoid(theta_i - theta_j).

    The same formula holds for both tie models: Davidson's win/loss odds are ``e^(theta_i-theta_j)``.
    """
    d = theta[:, None] - theta[None, :]
    pw, pl, _ = outcome_probs(d, 0.0)
    out = pw / (pw + pl)
    np.fill_diagonal(out, np.nan)
    return out


def count_rows(counts: PairCounts, both_bad: BothBad = "tie") -> tuple[Rows, np.ndarray]:
    """Rows for a count fit (one per pair with fitted votes) and the indices of the fitted models."""
    if both_bad not in ("tie", "exclude"):
        raise ValueError(f"both_bad must be 'tie' or 'exclude', not {both_bad!r}")
    ties = counts.ties + (counts.both_bad if both_bad == "tie" else 0.0)
    total = counts.wins + counts.wins.T + ties
    active = np.flatnonzero(total.sum(1) > 0)
    pos = np.full(len(counts.models), -1)
    pos[active] = np.arange(len(active))
    iu, ju = np.nonzero(np.triu(total, 1))
    rows = Rows(len(active), pos[iu], pos[ju], counts.wins[iu, ju], counts.wins[ju, iu], ties[iu, ju])
    return rows, active


def penalty(rows: Rows, fit_nu: bool, ridge: float, l2: float) -> np.ndarray:
    """Diagonal of the L2 penalty: a tiny ridge on strengths and log nu, ``l2`` on style terms."""
    return np.concatenate([np.full(rows.n, ridge), np.full(rows.k, l2), [ridge] if fit_nu else []])


def newton(
    rows: Rows,
    *,
    fit_nu: bool,
    ridge: float = DEFAULT_RIDGE,
    l2: float = 0.0,
    start: np.ndarray | None = None,
    tol: float = 1e-10,
    max_iter: int = 200,
) -> tuple[np.ndarray, int, float]:
    """Maximise the penalised log-likelihood by Newton's method with step halving.

    Returns ``(params, iterations, log_likelihood)``. The objective is concave, so Newton converges
    quadratically near the optimum; step halving only matters far from it (e.g. separation).
    """
    n, k = rows.n, rows.k
    pen = penalty(rows, fit_nu, ridge, l2)
    if start is None:
        start = np.zeros(n + k + fit_nu)
        if fit_nu:
            tie_share = rows.tie.sum() / max((rows.win + rows.loss + rows.tie).sum(), 1e-300)
            start[-1] = math.log(max(2 * tie_share / max(1 - tie_share, 1e-9), 1e-6))
    x = start.astype(float).copy()

    def split(v: np.ndarray) -> tuple[np.ndarray, np.ndarray, float | None]:
        return v[:n], v[n : n + k], (v[-1] if fit_nu else None)

    def objective(v: np.ndarray) -> float:
        theta, beta, kappa = split(v)
        return row_loglik(rows.linear(theta, beta), rows.win, rows.loss, rows.tie, kappa) - 0.5 * float(
            np.sum(pen * v * v)
        )

    if x.size == 0:
        return x, 0, 0.0
    current = objective(x)
    gauge = np.zeros((len(x), len(x)))
    gauge[:n, :n] = rows.gauge()
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - the count is returned
        theta, beta, kappa = split(x)
        nu = 0.0 if kappa is None else math.exp(kappa)
        g_d, g_k, h_dd, h_dk, h_kk = row_derivatives(rows.linear(theta, beta), rows.win, rows.loss, rows.tie, nu)
        grad = rows.gradient(g_d, g_k if fit_nu else None) - pen * x
        hess = rows.assemble(h_dd, h_dk if fit_nu else None, h_kk if fit_nu else None) + np.diag(pen) + gauge
        step = solve_spd(hess[None], grad[None])[0]
        for _ in range(60):
            trial = objective(x + step)
            if trial >= current - 1e-12 * abs(current):
                break
            step = step / 2
        x, current = x + step, trial
        if np.max(np.abs(step)) < tol:
            break
    x[:n] = rows.centre(x[:n])
    theta, beta, kappa = split(x)
    ll = row_loglik(rows.linear(theta, beta), rows.win, rows.loss, rows.tie, kappa)
    return x, it, ll


def mm(
    rows: Rows, *, fit_nu: bool, ridge: float = DEFAULT_RIDGE, tol: float = 1e-12, max_iter: int = 100_000
) -> tuple[np.ndarray, int]:
    """Minorisation-maximisation (Hunter 2004) for half-win BT; for Davidson, Davidson's (1970)
    fixed-point iteration. ``ridge`` enters as a tiny Gamma prior on each strength, which keeps
    every strength positive under separation. Slower than Newton; kept as an independent check.
    """
    n = rows.n
    m = np.zeros((n, n))
    np.add.at(m, (rows.ia, rows.ib), rows.win + rows.loss + rows.tie)
    m = m + m.T
    score = np.bincount(rows.ia, rows.win + rows.tie / 2, n) + np.bincount(rows.ib, rows.loss + rows.tie / 2, n)
    ties_total = rows.tie.sum()
    p, nu = np.ones(n), (1.0 if fit_nu else 0.0)
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - the count is returned
        sq = np.sqrt(p[:, None] * p[None, :])
        den = p[:, None] + p[None, :] + nu * sq
        ratio = np.sqrt(p[None, :] / p[:, None])
        new_p = (score + ridge) / (ridge + np.sum(m * (1 + 0.5 * nu * ratio) / den, axis=1))
        if fit_nu:
            nu = ties_total / np.sum(np.triu(m * sq / den, 1))
        new_p /= np.exp(np.mean(np.log(new_p))) if n else 1.0  # fix the scale; the prior barely does
        change = np.max(np.abs(np.log(new_p / p))) if n else 0.0
        p = new_p
        if change < tol:
            break
    theta = rows.centre(np.log(p))
    return np.concatenate([theta, [math.log(nu)] if fit_nu else []]), it


def fit_bradley_terry(
    counts: PairCounts,
    *,
    ties: Ties = "davidson",
    both_bad: BothBad = "tie",
    method: Literal["newton", "mm"] = "newton",
    ridge: float = DEFAULT_RIDGE,
) -> Fit:
    """Fit ratings to aggregated counts.

    ``ties``: "davidson" (tie parameter fitted; falls back to plain BT, ``nu=0``, when the data
    has no ties) or "half" (tie = half a win). ``both_bad``: count as a tie, or "exclude".
    ``method``: "newton" (default, a few iterations) or "mm" (slow, independent check).
    """
    if ties not in ("davidson", "half"):
        raise ValueError(f"ties must be 'davidson' or 'half', not {ties!r}")
    rows, active = count_rows(counts, both_bad)
    fit_nu = ties == "davidson" and rows.tie.sum() > 0
    if method == "newton":
        params, iterations, ll = newton(rows, fit_nu=fit_nu, ridge=ridge)
    elif method == "mm":
        params, iterations = mm(rows, fit_nu=fit_nu, ridge=ridge)
        kappa = params[-1] if fit_nu else None
        ll = row_loglik(rows.linear(params[: rows.n], np.zeros(0)), rows.win, rows.loss, rows.tie, kappa)
    else:
        raise ValueError(f"method must be 'newton' or 'mm', not {method!r}")
    nu = math.exp(params[-1]) if fit_nu else (0.0 if ties == "davidson" else None)
    return Fit(
        models=tuple(counts.models[i] for i in active),
        theta=params[: rows.n],
        nu=nu,
        ties=ties,
        both_bad=both_bad,
        method=method,
        iterations=iterations,
        log_likelihood=ll,
        n_components=len(np.unique(rows.component_labels())),
        rows=rows,
        ridge=ridge,
    )
