"""Votes aggregated into model x model count matrices.

Every fit in this package works on counts, never on individual votes: a Bradley-Terry or Davidson
likelihood only depends on how often each outcome happened for each pair, so aggregating first makes
the cost of a fit (and of each bootstrap round) grow with the number of models, not of votes.
Aggregation is one ``np.bincount`` over a combined (model a, model b, outcome) code.

`PairCounts` is the aggregated type. It is canonical (models sorted by name, one orientation per
pair), so counts built incrementally with ``+`` are exactly equal to a rebuild from all votes, and
it round-trips through plain dicts for JSON storage.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np

__all__ = [
    "Outcome",
    "PairCounts",
    "counts_by_category",
    "outcomes_from_scores",
    "parse_outcomes",
]


class Outcome(IntEnum):
    """Outcome codes of a battle between model a and model b. ``SKIP`` rows are ignored."""

    SKIP = -1
    A_WINS = 0
    B_WINS = 1
    TIE = 2
    BOTH_BAD = 3


# Spellings accepted for outcomes; the first four are the public Chatbot Arena "winner" values.
_OUTCOME_NAMES: dict[str, Outcome] = {
    "model_a": Outcome.A_WINS,
    "model_b": Outcome.B_WINS,
    "tie": Outcome.TIE,
    "tie (bothbad)": Outcome.BOTH_BAD,
    "a": Outcome.A_WINS,
    "b": Outcome.B_WINS,
    "a_wins": Outcome.A_WINS,
    "b_wins": Outcome.B_WINS,
    "both_bad": Outcome.BOTH_BAD,
    "bothbad": Outcome.BOTH_BAD,
}


def parse_outcomes(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Turn outcome labels into an int8 array of `Outcome` codes.

    Accepts integer codes (-1..3) or strings such as ``"model_a"``, ``"model_b"``, ``"tie"``,
    ``"tie (bothbad)"`` (case-insensitive). Raises ValueError naming the first bad value and its index.
    """
    if not isinstance(values, np.ndarray) and len(values) and isinstance(values[0], str):
        try:  # fast path: exact labels
            return np.fromiter(map(_OUTCOME_NAMES.__getitem__, values), np.int8, len(values))
        except (KeyError, TypeError):
            pass
    arr = np.asarray(values)
    if arr.dtype.kind in "iub":
        codes = arr.astype(np.int64, copy=False)
        bad = np.flatnonzero((codes < -1) | (codes > 3))
        if bad.size:
            raise ValueError(f"invalid outcome code {codes[bad[0]]!r} at index {bad[0]}")
        return codes.astype(np.int8)
    out = np.empty(len(arr), dtype=np.int8)
    for i, value in enumerate(arr.tolist()):
        code = _OUTCOME_NAMES.get(value.strip().lower()) if isinstance(value, str) else None
        if code is None:
            if isinstance(value, int) and -1 <= value <= 3:
                code = Outcome(value)
            else:
                raise ValueError(f"invalid outcome {value!r} at index {i}")
        out[i] = code
    return out


def outcomes_from_scores(score_a: Sequence[float] | np.ndarray, score_b: Sequence[float] | np.ndarray) -> np.ndarray:
    """Pairwise outcomes from per-dimension scores: the higher score wins, equal scores tie.

    Rows where either score is missing (NaN) become ``Outcome.SKIP`` and are dropped by
    `PairCounts.from_battles`, so one helper serves every rating dimension of a campaign.
    """
    sa = np.asarray(score_a, dtype=float)
    sb = np.asarray(score_b, dtype=float)
    if sa.shape != sb.shape:
        raise ValueError("score_a and score_b must have the same length")
    out = np.full(sa.shape, Outcome.TIE, dtype=np.int8)
    out[sa > sb] = Outcome.A_WINS
    out[sa < sb] = Outcome.B_WINS
    out[np.isnan(sa) | np.isnan(sb)] = Outcome.SKIP
    return out


@dataclass(frozen=True, eq=False)
class PairCounts:
    """Vote counts for every pair of models.

    ``wins[i, j]`` counts votes where ``models[i]`` beat ``models[j]``; ``ties`` and ``both_bad``
    are symmetric. Counts are float64 so that votes may carry frequency weights; integer counts stay
    exact (below 2**53), which is what makes incremental sums equal a full rebuild.
    Models are always sorted by name.
    """

    models: tuple[str, ...]
    wins: np.ndarray
    ties: np.ndarray
    both_bad: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.models)
        if list(self.models) != sorted(set(self.models)):
            raise ValueError("models must be unique and sorted")
        for name in ("wins", "ties", "both_bad"):
            arr = np.array(getattr(self, name), dtype=np.float64)
            if arr.shape != (n, n):
                raise ValueError(f"{name} must have shape ({n}, {n})")
            if not np.all(np.isfinite(arr)) or np.any(arr < 0):
                raise ValueError(f"{name} must be finite and non-negative")
            if np.any(np.diagonal(arr)):
                raise ValueError(f"{name} must have a zero diagonal (no self-battles)")
            if name != "wins" and not np.array_equal(arr, arr.T):
                raise ValueError(f"{name} must be symmetric")
            arr.flags.writeable = False
            object.__setattr__(self, name, arr)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def empty(cls, models: Iterable[str] = ()) -> PairCounts:
        names = tuple(sorted(set(models)))
        z = np.zeros((len(names), len(names)))
        return cls(names, z, z, z)

    @classmethod
    def from_battles(
        cls,
        model_a: Sequence[Any] | np.ndarray,
        model_b: Sequence[Any] | np.ndarray,
        outcome: Sequence[Any] | np.ndarray,
        *,
        weights: Sequence[float] | np.ndarray | None = None,
        models: Sequence[str] | None = None,
    ) -> PairCounts:
        """Aggregate battles into counts.

        ``model_a``/``model_b`` are model names, or integer numpy arrays indexing ``models``. ``outcome``
        takes anything `parse_outcomes` accepts; ``SKIP`` rows are dropped. ``weights`` are
        frequency weights (2.0 means two identical votes). Names in ``models`` that never played
        are kept with zero counts. A model battling itself is an error.
        """
        codes = parse_outcomes(outcome)
        if not (len(model_a) == len(model_b) == len(codes)):
            raise ValueError("model_a, model_b and outcome must have the same length")
        a_arr = model_a if isinstance(model_a, np.ndarray) else None
        b_arr = model_b if isinstance(model_b, np.ndarray) else None
        if a_arr is not None and b_arr is not None and a_arr.dtype.kind in "iu" and b_arr.dtype.kind in "iu":
            if models is None:
                raise ValueError("integer model indices need the `models` names")
            names = list(models)
            ia, ib = a_arr.astype(np.int64), b_arr.astype(np.int64)
            if len(ia) and (min(ia.min(), ib.min()) < 0 or max(ia.max(), ib.max()) >= len(names)):
                raise ValueError("model index out of range")
        else:
            # Python lists are mapped with a dict, which beats numpy string arrays by far.
            a_list = model_a.tolist() if isinstance(model_a, np.ndarray) else list(model_a)
            b_list = model_b.tolist() if isinstance(model_b, np.ndarray) else list(model_b)
            seen = dict.fromkeys(models or ())
            seen.update(dict.fromkeys(a_list))
            seen.update(dict.fromkeys(b_list))
            names = list(seen)
            index = {m: i for i, m in enumerate(names)}
            ia = np.fromiter(map(index.__getitem__, a_list), dtype=np.int64, count=len(a_list))
            ib = np.fromiter(map(index.__getitem__, b_list), dtype=np.int64, count=len(b_list))
        if not all(isinstance(m, str) and m for m in names):
            raise ValueError("model names must be non-empty strings")
        if len(set(names)) != len(names):
            raise ValueError("duplicate names in `models`")
        w = None
        if weights is not None:
            w = np.asarray(weights, dtype=np.float64)
            if w.shape != codes.shape:
                raise ValueError("weights must have the same length as outcome")
            if not np.all(np.isfinite(w)) or np.any(w < 0):
                raise ValueError("weights must be finite and non-negative")
        same = np.flatnonzero(ia == ib)
        if same.size:
            raise ValueError(f"model {names[ia[same[0]]]!r} battles itself (row {same[0]})")
        keep = codes >= 0
        if not keep.all():
            ia, ib, codes = ia[keep], ib[keep], codes[keep]
            w = None if w is None else w[keep]
        n = len(names)
        flat = (ia * n + ib) * 4 + codes
        c = np.bincount(flat, weights=w, minlength=n * n * 4).astype(np.float64).reshape(n, n, 4)
        wins = c[:, :, Outcome.A_WINS] + c[:, :, Outcome.B_WINS].T
        ties = c[:, :, Outcome.TIE] + c[:, :, Outcome.TIE].T
        both = c[:, :, Outcome.BOTH_BAD] + c[:, :, Outcome.BOTH_BAD].T
        order = np.argsort(np.array(names, dtype=object), kind="stable") if n else np.arange(0)
        pick = np.ix_(order, order)
        return cls(tuple(names[i] for i in order), wins[pick], ties[pick], both[pick])

    # -- folding ------------------------------------------------------------------------------
    def __add__(self, other: object) -> PairCounts:
        if not isinstance(other, PairCounts):
            return NotImplemented
        if self.models == other.models:
            return PairCounts(
                self.models, self.wins + other.wins, self.ties + other.ties, self.both_bad + other.both_bad
            )
        names = tuple(sorted(set(self.models) | set(other.models)))
        return self.reindex(names) + other.reindex(names)

    def reindex(self, models: Sequence[str]) -> PairCounts:
        """The same counts over a sorted superset of the models (new models get zeros)."""
        names = tuple(models)
        pos = {m: i for i, m in enumerate(names)}
        missing = [m for m in self.models if m not in pos]
        if missing:
            raise ValueError(f"reindex would drop models with votes: {missing[:3]}")
        idx = np.array([pos[m] for m in self.models], dtype=np.int64)
        out = []
        for arr in (self.wins, self.ties, self.both_bad):
            full = np.zeros((len(names), len(names)))
            full[np.ix_(idx, idx)] = arr
            out.append(full)
        return PairCounts(names, *out)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PairCounts):
            return NotImplemented
        return (
            self.models == other.models
            and np.array_equal(self.wins, other.wins)
            and np.array_equal(self.ties, other.ties)
            and np.array_equal(self.both_bad, other.both_bad)
        )

    __hash__ = None  # type: ignore[assignment]

    # -- views --------------------------------------------------------------------------------
    @property
    def battles(self) -> np.ndarray:
        """Total votes between each pair (all four outcomes)."""
        return self.wins + self.wins.T + self.ties + self.both_bad

    @property
    def n_votes(self) -> float:
        return float(self.battles.sum() / 2)

    def per_model(self) -> dict[str, np.ndarray]:
        """Per-model totals: votes, wins, losses, ties, both_bad (arrays in `models` order)."""
        return {
            "votes": self.battles.sum(1),
            "wins": self.wins.sum(1),
            "losses": self.wins.sum(0),
            "ties": self.ties.sum(1),
            "both_bad": self.both_bad.sum(1),
        }

    # -- plain data ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: model names and one row ``[i, j, a_wins, b_wins, ties, both_bad]`` per
        pair that has votes (``i < j``; a is ``models[i]``). Integral counts are written as ints."""
        iu, ju = np.nonzero(np.triu(self.battles, 1))
        cols = (self.wins[iu, ju], self.wins[ju, iu], self.ties[iu, ju], self.both_bad[iu, ju])
        integral = all(np.array_equal(c, np.round(c)) for c in cols)
        conv = (lambda x: int(x)) if integral else float
        pairs = [[int(i), int(j), *(conv(c[k]) for c in cols)] for k, (i, j) in enumerate(zip(iu, ju, strict=True))]
        return {"version": 1, "models": list(self.models), "pairs": pairs}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PairCounts:
        """Inverse of `to_dict`; validates the structure."""
        if data.get("version", 1) != 1:
            raise ValueError(f"unsupported PairCounts version {data.get('version')!r}")
        names = [str(m) for m in data["models"]]
        n = len(names)
        wins, ties, both = (np.zeros((n, n)) for _ in range(3))
        for row in data.get("pairs", []):
            if len(row) != 6:
                raise ValueError(f"pair row must have 6 fields: {row!r}")
            i, j = int(row[0]), int(row[1])
            if not (0 <= i < j < n):
                raise ValueError(f"bad pair indices {i}, {j}")
            wins[i, j] += row[2]
            wins[j, i] += row[3]
            ties[i, j] += row[4]
            both[i, j] += row[5]
        ties, both = ties + ties.T, both + both.T
        order = np.argsort(np.array(names, dtype=object), kind="stable") if n else np.arange(0)
        pick = np.ix_(order, order)
        return cls(tuple(names[i] for i in order), wins[pick], ties[pick], both[pick])

    def to_bytes(self) -> bytes:
        """Compact binary form of the counts (the names are kept apart, see `from_bytes`): the
        ``wins``, ``ties`` and ``both_bad`` matrices as little-endian float64, 24 n^2 bytes. What the
        site stores, because decoding it is a copy, not a parse."""
        return np.stack([self.wins, self.ties, self.both_bad]).astype("<f8", copy=False).tobytes()

    @classmethod
    def from_bytes(cls, models: Sequence[str], data: bytes | memoryview) -> PairCounts:
        """Inverse of `to_bytes`, given the (sorted) model names; validates like the constructor."""
        n = len(models)
        arr = np.frombuffer(data, dtype="<f8")
        if arr.size != 3 * n * n:
            raise ValueError(f"{arr.size * 8} bytes do not hold counts of {n} models")
        arr = arr.reshape(3, n, n)
        return cls(tuple(models), arr[0], arr[1], arr[2])

    def __repr__(self) -> str:
        return f"PairCounts({len(self.models)} models, {self.n_votes:g} votes)"


def counts_by_category(
    model_a: Sequence[Any] | np.ndarray,
    model_b: Sequence[Any] | np.ndarray,
    outcome: Sequence[Any] | np.ndarray,
    categories: Sequence[str] | np.ndarray,
    *,
    weights: Sequence[float] | np.ndarray | None = None,
) -> dict[str, PairCounts]:
    """One `PairCounts` per category label (one label per battle).

    A per-category leaderboard is the same fit on that subset. For overlapping categories, filter
    the arrays yourself and call `PairCounts.from_battles` once per category.
    """
    labels = np.asarray(categories).astype(str)
    a, b, o = np.asarray(model_a), np.asarray(model_b), parse_outcomes(outcome)
    w = None if weights is None else np.asarray(weights, dtype=float)
    out = {}
    for label in sorted(set(labels.tolist())):
        mask = labels == label
        out[label] = PairCounts.from_battles(a[mask], b[mask], o[mask], weights=None if w is None else w[mask])
    return out
