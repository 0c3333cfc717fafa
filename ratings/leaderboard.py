"""The leaderboard: ratings, intervals, ranks and matrices from aggregated counts, as plain data.

Conventions (also in docs/ratings.md):

- ``rating`` is the maximum-likelihood estimate on the Elo-like scale (`ratings.bt`); the interval
  is a 95% percentile bootstrap interval (default) or a sandwich (robust normal) interval.
- ``rank`` = 1 + the number of ranked models whose lower bound is above this model's upper bound,
  so models whose intervals overlap share a rank. Without intervals it is 1 + the number of ranked
  models with a higher rating.
- A model with fewer than ``min_votes`` votes is ``provisional``: it keeps its rating and interval
  but gets ``rank=None`` and does not push other models down. A model with no vote that enters the
  fit (e.g. only "both bad" votes with ``both_bad="exclude"``) has ``rating=None`` as well.
- Rows are sorted: ranked models by rating, then provisional ones by rating, then unrated ones.
- ``votes`` counts every battle of the model (all four outcomes); ``win_rate`` is
  wins / (wins + losses), ties and both-bad left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import numpy as np

from .bt import SCALE, BothBad, Ties, fit_bradley_terry, predicted_win_rate
from .counts import PairCounts
from .intervals import bootstrap_params, percentile_intervals, sandwich_covariance, z_value

__all__ = ["Leaderboard", "Row", "compute_leaderboard", "matrices_from_bytes", "rank_from_intervals"]

Intervals = Literal["bootstrap", "sandwich", "none"]


@dataclass(frozen=True)
class Row:
    model: str
    rating: float | None
    ci_low: float | None
    ci_high: float | None
    rank: int | None
    votes: float
    wins: float
    losses: float
    ties: float
    both_bad: float
    win_rate: float | None
    provisional: bool


@dataclass(frozen=True, eq=False)
class Leaderboard:
    """Result of `compute_leaderboard`. Matrices are indexed like ``models`` (the row order):
    ``battles[i][j]`` votes between i and j, ``win_rate[i][j]`` observed share of decisive votes
    won by i, ``predicted_win_rate[i][j]`` the fitted P(i beats j | decisive)."""

    rows: tuple[Row, ...]
    models: tuple[str, ...]
    battles: np.ndarray
    win_rate: np.ndarray
    predicted_win_rate: np.ndarray
    ties: str
    both_bad: str
    intervals: str
    bootstrap_rounds: int
    seed: int
    confidence: float
    anchor: tuple[str, float] | None
    tie_parameter: float | None
    n_votes: float
    n_components: int
    min_votes: int
    scale: float
    base: float
    warnings: tuple[str, ...] = field(default=())

    def to_dict(self, *, matrices: bool = True) -> dict[str, Any]:
        """JSON-serialisable form (NaN written as None). ``matrices=False`` leaves the three
        matrices out (``"matrices"`` then holds only ``"models"``; see `matrices_to_bytes`)."""
        return {
            "method": "bradley_terry",
            "ties": self.ties,
            "both_bad": self.both_bad,
            "intervals": self.intervals,
            "bootstrap_rounds": self.bootstrap_rounds,
            "seed": self.seed,
            "confidence": self.confidence,
            "anchor": None if self.anchor is None else {"model": self.anchor[0], "rating": self.anchor[1]},
            "tie_parameter": self.tie_parameter,
            "n_votes": _num(self.n_votes),
            "n_models": len(self.models),
            "n_components": self.n_components,
            "min_votes": self.min_votes,
            "scale": self.scale,
            "base": self.base,
            "rows": [{k: _num(getattr(r, k)) for k in _ROW_FIELDS} for r in self.rows],
            "matrices": {
                "models": list(self.models),
                **({key: _matrix(getattr(self, key)) for key in MATRICES} if matrices else {}),
            },
            "warnings": list(self.warnings),
        }

    def matrices_to_bytes(self) -> bytes:
        """The ``battles``, ``win_rate`` and ``predicted_win_rate`` matrices as little-endian float64
        (NaN where undefined), 24 n^2 bytes: a compact form for storage, read back with
        `matrices_from_bytes`. At 100 models the JSON lists are about 0.3 MB and cost ten times more
        to store in PostgreSQL."""
        return np.stack([getattr(self, key) for key in MATRICES]).astype("<f8", copy=False).tobytes()


MATRICES = ("battles", "win_rate", "predicted_win_rate")
_ROW_FIELDS = tuple(f.name for f in fields(Row))


def matrices_from_bytes(models: list[str], data: bytes | memoryview) -> dict[str, Any]:
    """The ``"matrices"`` part of `Leaderboard.to_dict` from `Leaderboard.matrices_to_bytes`."""
    n = len(models)
    arr = np.frombuffer(data, dtype="<f8")
    if arr.size != 3 * n * n:
        raise ValueError(f"{arr.size * 8} bytes do not hold the matrices of {n} models")
    arr = arr.reshape(3, n, n)
    return {"models": list(models), **{key: _matrix(arr[k]) for k, key in enumerate(MATRICES)}}


def _num(value: Any) -> Any:
    """Plain JSON number: integral floats as int, NaN as None."""
    if isinstance(value, float | np.floating):
        value = float(value)
        if not math.isfinite(value):
            return None
    return value


def _matrix(arr: np.ndarray) -> list[list[float | None]]:
    return [[None if not math.isfinite(v) else v for v in row] for row in arr.tolist()]


def rank_from_intervals(low: np.ndarray, high: np.ndarray, eligible: np.ndarray | None = None) -> list[int | None]:
    """rank_i = 1 + #{eligible j : low_j > high_i}; ineligible models get None."""
    low, high = np.asarray(low, float), np.asarray(high, float)
    ok = np.ones(len(low), bool) if eligible is None else np.asarray(eligible, bool)
    above = (low[None, :] > high[:, None]) & ok[None, :]
    return [int(1 + above[i].sum()) if ok[i] else None for i in range(len(low))]


def compute_leaderboard(
    counts: PairCounts,
    *,
    ties: Ties = "davidson",
    both_bad: BothBad = "tie",
    intervals: Intervals = "bootstrap",
    bootstrap: int = 1000,
    seed: int = 0,
    anchor: tuple[str, float] | None = None,
    min_votes: int = 20,
    confidence: float = 0.95,
    scale: float = SCALE,
    base: float = 1000.0,
) -> Leaderboard:
    """Fit ratings to ``counts`` and build the leaderboard.

    ``ties``: "davidson" (default, fitted tie parameter) or "half" (tie = half a win, the public
    Chatbot Arena convention). ``both_bad``: "tie" (default) or "exclude". ``intervals``:
    "bootstrap" (``bootstrap`` rounds resampling the counts, seeded, reproducible), "sandwich", or
    "none"; ``bootstrap=0`` with "bootstrap" falls back to the sandwich (noted in ``warnings``).
    ``anchor=(model, rating)`` pins one model's rating; otherwise ratings average ``base``.
    """
    if intervals not in ("bootstrap", "sandwich", "none"):
        raise ValueError(f"intervals must be 'bootstrap', 'sandwich' or 'none', not {intervals!r}")
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1")
    warnings: list[str] = []
    if intervals == "bootstrap" and bootstrap < 2:
        intervals = "sandwich"
        warnings.append("bootstrap rounds < 2: sandwich intervals used instead")
    fit = fit_bradley_terry(counts, ties=ties, both_bad=both_bad)
    if anchor is not None:
        anchor = (str(anchor[0]), float(anchor[1]))
        if anchor[0] not in fit.models:
            raise ValueError(f"anchor model {anchor[0]!r} has no fitted votes")
    if fit.n_components > 1:
        warnings.append(
            f"the comparison graph has {fit.n_components} disconnected parts; ratings are "
            "only comparable within a part (each part is centred separately)"
        )
    n_fit = len(fit.models)
    rating = fit.ratings(scale=scale, base=base, anchor=anchor)
    low = high = np.full(n_fit, np.nan)
    if n_fit and intervals == "bootstrap":
        samples = bootstrap_params(fit, rounds=bootstrap, seed=seed)[:, :n_fit]
        if anchor is not None:
            samples = samples - samples[:, [fit.models.index(anchor[0])]]
        low, high = percentile_intervals(
            scale * samples + fit.offset(scale=scale, base=base, anchor=anchor), confidence
        )
    elif n_fit and intervals == "sandwich":
        cov = sandwich_covariance(fit)[:n_fit, :n_fit]
        if anchor is not None:
            g = np.eye(n_fit)
            g[:, fit.models.index(anchor[0])] -= 1.0
            cov = g @ cov @ g.T
        half = z_value(confidence) * scale * np.sqrt(np.maximum(np.diag(cov), 0.0))
        low, high = rating - half, rating + half
    if anchor is not None:  # the anchor is fixed by definition; remove rounding noise
        i = fit.models.index(anchor[0])
        low[i] = high[i] = rating[i] = anchor[1]

    # Back to the full model list (models without fitted votes get None).
    names = counts.models
    pos = {m: i for i, m in enumerate(fit.models)}
    full = {key: np.full(len(names), np.nan) for key in ("rating", "low", "high")}
    theta = np.full(len(names), np.nan)
    for j, m in enumerate(names):
        if m in pos:
            i = pos[m]
            full["rating"][j], full["low"][j], full["high"][j], theta[j] = rating[i], low[i], high[i], fit.theta[i]
    totals = counts.per_model()
    provisional = totals["votes"] < min_votes
    rated = ~np.isnan(full["rating"])
    eligible = rated & ~provisional
    if intervals == "none":
        ranks = rank_from_intervals(full["rating"], full["rating"], eligible)
    else:
        ranks = rank_from_intervals(full["low"], full["high"], eligible)
    order = sorted(
        range(len(names)),
        key=lambda j: (not eligible[j], not rated[j], -full["rating"][j] if rated[j] else 0.0, names[j]),
    )
    decisive = counts.wins + counts.wins.T
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = counts.wins / decisive
        per_model_rate = totals["wins"] / (totals["wins"] + totals["losses"])
    np.fill_diagonal(observed, np.nan)
    predicted = np.full((len(names), len(names)), np.nan)
    idx = np.flatnonzero(rated)
    predicted[np.ix_(idx, idx)] = predicted_win_rate(theta[idx])
    rows = tuple(
        Row(
            model=names[j],
            rating=_opt(full["rating"][j]),
            ci_low=_opt(full["low"][j]),
            ci_high=_opt(full["high"][j]),
            rank=ranks[j],
            votes=_count(totals["votes"][j]),
            wins=_count(totals["wins"][j]),
            losses=_count(totals["losses"][j]),
            ties=_count(totals["ties"][j]),
            both_bad=_count(totals["both_bad"][j]),
            win_rate=_opt(per_model_rate[j]),
            provisional=bool(provisional[j]),
        )
        for j in order
    )
    pick = np.ix_(order, order)
    return Leaderboard(
        rows=rows,
        models=tuple(names[j] for j in order),
        battles=counts.battles[pick],
        win_rate=observed[pick],
        predicted_win_rate=predicted[pick],
        ties=ties,
        both_bad=both_bad,
        intervals=intervals,
        bootstrap_rounds=bootstrap if intervals == "bootstrap" else 0,
        seed=seed,
        confidence=confidence,
        anchor=anchor,
        tie_parameter=fit.nu,
        n_votes=counts.n_votes,
        n_components=fit.n_components,
        min_votes=min_votes,
        scale=scale,
        base=base,
        warnings=tuple(warnings),
    )


def _opt(value: float) -> float | None:
    return None if not math.isfinite(value) else float(value)


def _count(value: float) -> float | int:
    return int(value) if float(value).is_integer() else float(value)
