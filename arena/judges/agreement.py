"""Judge-human agreement figures, as plain functions of outcome codes (no database).

Outcomes are coded in one orientation per pairing (model lo vs model hi): ``LO`` (0) lo wins, ``HI``
(1) hi wins, ``TIE`` (2) a tie; "both bad" counts as a tie here, as in MT-Bench's agreement tables.

- agreement with ties: the share of (human vote, judge verdict) pairs with the same outcome, all three
  classes counted; without ties: the same share among pairs where both are decisive (MT-Bench's
  "w/o tie" figure);
- Cohen's kappa: agreement beyond what the two marginal distributions give by chance,
  (p_o - p_e) / (1 - p_e); 1 is perfect, 0 is chance;
- the human baseline: each human vote against the majority of the other humans' votes on the same
  pairing (pairings with at least 2 other votes and a strict majority), the figure a judge is
  compared with;
- Spearman's rank correlation of two leaderboards' ratings, on the models both rate.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

LO, HI, TIE = 0, 1, 2
LABELS = (LO, HI, TIE)


def share(hits: int, n: int) -> float | None:
    return hits / n if n else None


def agreement(human: Sequence[int], judge: Sequence[int]) -> dict[str, Any]:
    """Agreement with and without ties, and Cohen's kappa, over paired outcomes."""
    h, j = np.asarray(human, int), np.asarray(judge, int)
    if h.shape != j.shape:
        raise ValueError("human and judge need one outcome each per pair")
    decisive = (h != TIE) & (j != TIE)
    return {
        "n": int(h.size),
        "with_ties": share(int((h == j).sum()), int(h.size)),
        "n_decisive": int(decisive.sum()),
        "without_ties": share(int((h[decisive] == j[decisive]).sum()), int(decisive.sum())),
        "cohen_kappa": cohen_kappa(h, j),
    }


def cohen_kappa(a: Sequence[int], b: Sequence[int], labels: Sequence[int] = LABELS) -> float | None:
    """Cohen's kappa of two raters over the same items; None without items, 1.0 when both raters
    always give one and the same label (no disagreement is possible to beat)."""
    x, y = np.asarray(a, int), np.asarray(b, int)
    n = x.size
    if n == 0:
        return None
    index = {label: i for i, label in enumerate(labels)}
    k = len(labels)
    table = np.zeros((k, k))
    np.add.at(table, ([index[v] for v in x.tolist()], [index[v] for v in y.tolist()]), 1)
    p_o = np.trace(table) / n
    p_e = float(table.sum(axis=1) @ table.sum(axis=0)) / (n * n)
    if p_e >= 1.0:
        return 1.0 if p_o >= 1.0 else 0.0
    return float((p_o - p_e) / (1 - p_e))


def by_group(groups: Sequence[Hashable], human: Sequence[int], judge: Sequence[int]) -> dict[Hashable, dict]:
    """`agreement` per group (e.g. the prompt's category)."""
    members: dict[Hashable, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    h, j = np.asarray(human, int), np.asarray(judge, int)
    return {g: agreement(h[idx], j[idx]) for g, idx in sorted(members.items(), key=lambda kv: str(kv[0]))}


def majority(outcomes: Sequence[int]) -> int | None:
    """The strict most common outcome, or None when two outcomes share the top count."""
    top = Counter(outcomes).most_common(2)
    if not top or (len(top) == 2 and top[0][1] == top[1][1]):
        return None
    return top[0][0]


def human_baseline(items: Sequence[Hashable], outcomes: Sequence[int]) -> dict[str, Any]:
    """Each human vote against the majority of the others on the same pairing (leave-one-out)."""
    votes: dict[Hashable, list[int]] = defaultdict(list)
    for item, outcome in zip(items, outcomes, strict=True):
        votes[item].append(int(outcome))
    mine: list[int] = []
    others: list[int] = []
    for cast in votes.values():
        if len(cast) < 3:
            continue
        for i, outcome in enumerate(cast):
            rest = majority(cast[:i] + cast[i + 1 :])
            if rest is not None:
                mine.append(outcome)
                others.append(rest)
    result = agreement(mine, others)
    result["pairings"] = sum(1 for cast in votes.values() if len(cast) >= 3)
    return result


def ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks 1..n, ties sharing their average rank."""
    x = np.asarray(values, float)
    order = np.argsort(x, kind="mergesort")
    out = np.empty(x.size)
    sorted_x = x[order]
    i = 0
    while i < x.size:
        j = i
        while j + 1 < x.size and sorted_x[j + 1] == sorted_x[i]:
            j += 1
        out[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(a: dict[str, float], b: dict[str, float]) -> dict[str, Any]:
    """Spearman's rho of two ratings by model, on the models both rate (None below 3 models)."""
    common = sorted(set(a) & set(b))
    if len(common) < 3:
        return {"rho": None, "n_models": len(common)}
    ra, rb = ranks([a[m] for m in common]), ranks([b[m] for m in common])
    if ra.std() == 0 or rb.std() == 0:
        return {"rho": None, "n_models": len(common)}
    return {"rho": float(np.corrcoef(ra, rb)[0, 1]), "n_models": len(common)}
