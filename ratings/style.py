"""Style control: ratings with the effect of answer length and Markdown formatting removed.

Like the public Chatbot Arena, each battle gets style features per side (length, headers, list items,
bold spans); the model uses their normalised differences ``(a - b) / (a + b)`` (0 when both are 0),
standardised over the battles, as covariates of a contextual Bradley-Terry (or Davidson) model::

    log-odds(a beats b) = theta_a - theta_b + beta . z

``theta`` are the style-controlled strengths; ``beta[k]`` is the change in log-odds of winning per
standard deviation of feature k's normalised difference. ``beta`` has an L2 penalty (``l2``, default
1.0 on the summed log-likelihood: a weak prior that only matters with a few hundred votes);
intervals are sandwich intervals. This fit needs one row per battle (features differ per battle),
so unlike the plain leaderboard its cost grows with the number of votes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .bt import DEFAULT_RIDGE, SCALE, BothBad, Fit, Ties, fit_bradley_terry, newton
from .counts import Outcome, PairCounts, parse_outcomes
from .intervals import sandwich_covariance, z_value
from .likelihood import Rows

__all__ = ["STYLE_FEATURES", "Coefficient", "StyleControl", "fit_style_control", "style_features"]

STYLE_FEATURES = ("length", "headers", "lists", "bold")

_CODE_BLOCK = re.compile(r"```.*?(?:```|\Z)", re.S)
_HEADER = re.compile(r"^ {0,3}#{1,6}(?:\s|$)", re.M)
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])\s+\S", re.M)
_BOLD = re.compile(r"\*\*(?=\S)[^*\n]+?\*\*|__(?=\S)[^_\n]+?__")
_WORD = re.compile(r"\S+")


def style_features(text: str) -> dict[str, int]:
    """Style feature counts of one Markdown answer.

    ``length`` approximates tokens by whitespace-separated words (code included; a BPE tokenizer
    gives about 1.3 tokens per English word, and only ratios enter the model). ``headers`` counts
    ATX headings (``#`` to ``######``), ``lists`` ordered and unordered list items, ``bold``
    ``**...**`` and ``__...__`` spans; these three ignore fenced code blocks, where ``#`` and ``*``
    are code, not formatting.
    """
    prose = _CODE_BLOCK.sub("", text)
    return {
        "length": len(_WORD.findall(text)),
        "headers": len(_HEADER.findall(prose)),
        "lists": len(_LIST_ITEM.findall(prose)),
        "bold": len(_BOLD.findall(prose)),
    }


@dataclass(frozen=True)
class Coefficient:
    """A style coefficient: log-odds per standard deviation of the normalised difference."""

    name: str
    estimate: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True, eq=False)
class StyleControl:
    """Raw and style-controlled ratings of ``models`` (arrays in that order), with intervals."""

    models: tuple[str, ...]
    raw_rating: np.ndarray
    raw_ci_low: np.ndarray
    raw_ci_high: np.ndarray
    rating: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    coefficients: tuple[Coefficient, ...]
    ties: str
    both_bad: str
    tie_parameter: float | None
    n_votes: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: rows sorted by controlled rating, and the coefficients."""
        order = np.argsort(-self.rating, kind="stable")
        rows = [
            {
                "model": self.models[i],
                "rating": float(self.rating[i]),
                "ci_low": float(self.ci_low[i]),
                "ci_high": float(self.ci_high[i]),
                "raw_rating": float(self.raw_rating[i]),
                "raw_ci_low": float(self.raw_ci_low[i]),
                "raw_ci_high": float(self.raw_ci_high[i]),
            }
            for i in order
        ]
        coefs = [
            {"feature": c.name, "estimate": c.estimate, "ci_low": c.ci_low, "ci_high": c.ci_high}
            for c in self.coefficients
        ]
        return {
            "method": "style_control",
            "ties": self.ties,
            "both_bad": self.both_bad,
            "tie_parameter": self.tie_parameter,
            "n_votes": self.n_votes,
            "intervals": "sandwich",
            "coefficient_unit": "log-odds per standard deviation",
            "rows": rows,
            "coefficients": coefs,
        }


def _matrix(features: Any, names: Sequence[str] | None) -> tuple[np.ndarray, list[str]]:
    """Features as (battles x k): a 2-D array, a mapping name -> column, or a list of dicts."""
    if isinstance(features, Mapping):
        keys = list(names or features.keys())
        return np.column_stack([np.asarray(features[k], float) for k in keys]), keys
    if len(features) and isinstance(features[0], Mapping):
        keys = list(names or features[0].keys())
        return np.array([[f[k] for k in keys] for f in features], float), keys
    arr = np.asarray(features, float)
    if arr.ndim != 2:
        raise ValueError("features must be 2-D (battles x features)")
    keys = list(
        names or (STYLE_FEATURES if arr.shape[1] == len(STYLE_FEATURES) else [f"f{i}" for i in range(arr.shape[1])])
    )
    return arr, keys


def style_covariates(features_a: np.ndarray, features_b: np.ndarray) -> np.ndarray:
    """Normalised differences (a - b) / (a + b), then standardised per column (constant -> 0)."""
    if features_a.shape != features_b.shape:
        raise ValueError("features_a and features_b must have the same shape")
    if np.any(features_a < 0) or np.any(features_b < 0):
        raise ValueError("style features must be non-negative counts")
    total = features_a + features_b
    diff = np.divide(features_a - features_b, total, out=np.zeros_like(total), where=total > 0)
    std = diff.std(0)
    return np.divide(diff - diff.mean(0), std, out=np.zeros_like(diff), where=std > 0)


def fit_style_control(
    model_a: Sequence[str] | np.ndarray,
    model_b: Sequence[str] | np.ndarray,
    outcome: Sequence[Any] | np.ndarray,
    features_a: Any,
    features_b: Any,
    *,
    feature_names: Sequence[str] | None = None,
    weights: Sequence[float] | np.ndarray | None = None,
    ties: Ties = "davidson",
    both_bad: BothBad = "tie",
    l2: float = 1.0,
    confidence: float = 0.95,
    scale: float = SCALE,
    base: float = 1000.0,
) -> StyleControl:
    """Fit raw and style-controlled ratings from per-battle data (see module docstring).

    ``features_a``/``features_b``: per-battle feature counts of each side, as a battles x k array,
    a mapping feature -> column, or a list of `style_features` dicts.
    """
    codes = parse_outcomes(outcome)
    fa, names = _matrix(features_a, feature_names)
    fb, _ = _matrix(features_b, names)
    w = np.ones(len(codes)) if weights is None else np.asarray(weights, float)
    if not (len(model_a) == len(model_b) == len(codes) == len(fa) == len(w)):
        raise ValueError("all per-battle inputs must have the same length")
    tie_codes = [Outcome.TIE] + ([Outcome.BOTH_BAD] if both_bad == "tie" else [])
    keep = (codes == Outcome.A_WINS) | (codes == Outcome.B_WINS) | np.isin(codes, tie_codes)
    a = np.asarray(model_a)[keep]
    b = np.asarray(model_b)[keep]
    codes, w, fa, fb = codes[keep], w[keep], fa[keep], fb[keep]
    counts = PairCounts.from_battles(a, b, codes, weights=w)
    raw = fit_bradley_terry(counts, ties=ties, both_bad=both_bad)
    index = {m: i for i, m in enumerate(raw.models)}
    rows = Rows(
        n=len(raw.models),
        ia=np.fromiter((index[m] for m in a.tolist()), np.int64, len(a)),
        ib=np.fromiter((index[m] for m in b.tolist()), np.int64, len(b)),
        win=w * (codes == Outcome.A_WINS),
        loss=w * (codes == Outcome.B_WINS),
        tie=w * np.isin(codes, tie_codes),
        z=style_covariates(fa, fb),
    )
    fit_nu = raw.fits_nu
    start = np.concatenate([raw.theta, np.zeros(rows.k), [math.log(raw.nu)] if fit_nu else []])
    params, iterations, ll = newton(rows, fit_nu=fit_nu, ridge=DEFAULT_RIDGE, l2=l2, start=start)
    n, k = rows.n, rows.k
    controlled = Fit(
        models=raw.models,
        theta=params[:n],
        nu=math.exp(params[-1]) if fit_nu else raw.nu,
        ties=ties,
        both_bad=both_bad,
        method="newton",
        iterations=iterations,
        log_likelihood=ll,
        n_components=raw.n_components,
        beta=params[n : n + k],
        rows=rows,
    )
    z = z_value(confidence)
    cov = sandwich_covariance(controlled, l2=l2)
    se = np.sqrt(np.maximum(np.diag(cov), 0.0))
    raw_se = np.sqrt(np.maximum(np.diag(sandwich_covariance(raw))[:n], 0.0))
    rating, raw_rating = controlled.ratings(scale=scale, base=base), raw.ratings(scale=scale, base=base)
    coefs = tuple(
        Coefficient(
            name, float(params[n + i]), float(params[n + i] - z * se[n + i]), float(params[n + i] + z * se[n + i])
        )
        for i, name in enumerate(names)
    )
    return StyleControl(
        models=raw.models,
        raw_rating=raw_rating,
        raw_ci_low=raw_rating - z * scale * raw_se,
        raw_ci_high=raw_rating + z * scale * raw_se,
        rating=rating,
        ci_low=rating - z * scale * se[:n],
        ci_high=rating + z * scale * se[:n],
        coefficients=coefs,
        ties=ties,
        both_bad=both_bad,
        tie_parameter=controlled.nu,
        n_votes=float(w.sum()),
    )
