"""Online Elo: a secondary, order-dependent view of the votes.

Each vote moves both ratings by ``k * (score - expected)``, with
``expected = 1 / (1 + base ** ((r_b - r_a) / scale))`` and a tie scoring 0.5. The result depends on
the order of the votes (the same votes shuffled give different ratings, and recent votes weigh more),
which is why the leaderboard uses Bradley-Terry; Elo is kept because people know it and because it
can be updated one vote at a time. Defaults (K=4, scale 400, base 10, initial 1000) match the public
Chatbot Arena notebook and evalica.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from .counts import Outcome, parse_outcomes

__all__ = ["online_elo", "update_elo", "update_elo_indexed"]

_VALID_CODES = frozenset(int(o) for o in Outcome)


def _check_both_bad(both_bad: str) -> None:
    if both_bad not in ("tie", "exclude"):
        raise ValueError(f"both_bad must be 'tie' or 'exclude', not {both_bad!r}")


def update_elo(
    ratings: Mapping[str, float],
    battles: Iterable[tuple[str, str, Any]],
    *,
    k: float = 4.0,
    scale: float = 400.0,
    base: float = 10.0,
    initial: float = 1000.0,
    both_bad: Literal["tie", "exclude"] = "tie",
) -> dict[str, float]:
    """Apply ``(model_a, model_b, outcome)`` battles in order to a copy of ``ratings``.

    Outcomes are `Outcome` codes or labels (see `parse_outcomes`); SKIP rows are ignored, "both bad"
    counts as a tie or is skipped (``both_bad="exclude"``). New models start at ``initial``.
    """
    _check_both_bad(both_bad)
    index: dict[str, int] = {}
    model_a: list[int] = []
    model_b: list[int] = []
    codes: list[int] = []
    for a, b, outcome in battles:
        code = int(outcome) if isinstance(outcome, int | np.integer) else int(parse_outcomes([outcome])[0])
        if code not in _VALID_CODES:
            raise ValueError(f"invalid outcome {outcome!r}")
        model_a.append(index.setdefault(a, len(index)))
        model_b.append(index.setdefault(b, len(index)))
        codes.append(code)
    return update_elo_indexed(
        ratings,
        list(index),
        np.array(model_a, dtype=np.int64),
        np.array(model_b, dtype=np.int64),
        np.array(codes, dtype=np.int64),
        k=k,
        scale=scale,
        base=base,
        initial=initial,
        both_bad=both_bad,
    )


def update_elo_indexed(
    ratings: Mapping[str, float],
    models: Sequence[str],
    model_a: np.ndarray,
    model_b: np.ndarray,
    outcome: Sequence[Any] | np.ndarray,
    *,
    k: float = 4.0,
    scale: float = 400.0,
    base: float = 10.0,
    initial: float = 1000.0,
    both_bad: Literal["tie", "exclude"] = "tie",
) -> dict[str, float]:
    """`update_elo` for battles given as integer arrays indexing ``models``: the same arithmetic in
    the same order, so the same ratings to the last bit, without a tuple of names per vote (the
    worker folds up to millions of votes with it)."""
    _check_both_bad(both_bad)
    codes = parse_outcomes(outcome)
    ia, ib = np.asarray(model_a, dtype=np.int64), np.asarray(model_b, dtype=np.int64)
    if not (len(ia) == len(ib) == len(codes)):
        raise ValueError("model_a, model_b and outcome must have the same length")
    scored = codes >= 0 if both_bad == "tie" else (codes >= 0) & (codes != Outcome.BOTH_BAD)
    ia, ib, codes = ia[scored], ib[scored], codes[scored]
    out = dict(ratings)
    if not len(codes):
        return out
    # Models that play for the first time enter the dict in the order `update_elo` would add them.
    sides = np.stack([ia, ib], axis=1).ravel()
    first = np.unique(sides, return_index=True)
    for i in first[0][np.argsort(first[1], kind="stable")].tolist():
        out.setdefault(models[i], initial)
    current = [out.get(m, initial) for m in models]
    score_of = [1.0, 0.0, 0.5, 0.5]
    for a, b, code in zip(ia.tolist(), ib.tolist(), codes.tolist(), strict=True):
        score = score_of[code]
        ra, rb = current[a], current[b]
        expected = 1.0 / (1.0 + base ** ((rb - ra) / scale))
        current[a] = ra + k * (score - expected)
        current[b] = rb - k * (score - expected)
    for i in first[0].tolist():
        out[models[i]] = current[i]
    return out


def online_elo(
    model_a: Sequence[str],
    model_b: Sequence[str],
    outcome: Sequence[Any] | np.ndarray,
    *,
    k: float = 4.0,
    scale: float = 400.0,
    base: float = 10.0,
    initial: float = 1000.0,
    both_bad: Literal["tie", "exclude"] = "tie",
) -> dict[str, float]:
    """Elo ratings after playing the battles in the given order (see module docstring)."""
    codes = parse_outcomes(outcome).tolist()
    return update_elo(
        {}, zip(model_a, model_b, codes, strict=True), k=k, scale=scale, base=base, initial=initial, both_bad=both_bad
    )
