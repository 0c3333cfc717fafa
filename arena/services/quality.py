"""Voter quality: inter-annotator agreement (Krippendorff's alpha) and agreement with the majority.

Plain functions over votes; the dashboard shows them and staff decide whom to exclude
(Voter.excluded), after which ratings and exports leave that voter out.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from arena.models import Campaign, Vote


def krippendorff_alpha(units: Mapping[Hashable, Sequence[Any]], level: str = "nominal") -> float | None:
    """Krippendorff's alpha for values grouped by unit (one value per judgement).

    ``level`` is "nominal" (verdicts: agreement or not) or "interval" (scores: squared distance).
    Units with fewer than two values carry no information and are skipped; None when nothing is
    pairable or every value is the same (alpha is undefined there).
    """
    pairable = [list(values) for values in units.values() if len(values) >= 2]
    if not pairable:
        return None
    values = sorted({v for unit in pairable for v in unit}, key=repr)
    index = {v: i for i, v in enumerate(values)}
    k = len(values)
    coincidence = np.zeros((k, k))
    for unit in pairable:
        counts = np.zeros(k)
        for v in unit:
            counts[index[v]] += 1
        coincidence += (np.outer(counts, counts) - np.diag(counts)) / (len(unit) - 1)
    totals = coincidence.sum(axis=1)
    n = totals.sum()
    if level == "nominal":
        delta = 1.0 - np.eye(k)
    elif level == "interval":
        numeric = np.array(values, dtype=float)
        delta = (numeric[:, None] - numeric[None, :]) ** 2
    else:
        raise ValueError(f"unknown level {level!r}")
    observed = (coincidence * delta).sum()
    expected = (np.outer(totals, totals) * delta).sum() / (n - 1)
    if expected == 0:
        return None
    return float(1.0 - observed / expected)


def _verdict_units(rows: Iterable[tuple]) -> tuple[dict, dict]:
    """Verdicts in model terms per (prompt, pair), and per-dimension scores per (prompt, model, dim)."""
    verdicts: dict[tuple, list] = defaultdict(list)
    scores: dict[str, dict[tuple, list]] = defaultdict(lambda: defaultdict(list))
    for voter_id, prompt_id, left, right, winner, verdict, dims in rows:
        lo, hi = sorted((left, right))
        verdicts[(prompt_id, lo, hi)].append((voter_id, winner if winner else verdict))
        for key, sides in (dims or {}).items():
            for side, model in (("left", left), ("right", right)):
                if side in sides:
                    scores[key][(prompt_id, model)].append(sides[side])
    return verdicts, scores


def campaign_agreement(campaign: Campaign) -> dict[str, Any]:
    """Alpha on the verdicts and on each dimension, and each voter's agreement with the majority."""
    rows = Vote.objects.filter(campaign=campaign, voter__excluded=False).values_list(
        "voter__public_id", "prompt_id", "left_model_id", "right_model_id", "winner_id", "verdict", "scores"
    )
    verdicts, scores = _verdict_units(rows.iterator(chunk_size=10_000))
    alpha = krippendorff_alpha({unit: [v for _, v in values] for unit, values in verdicts.items()})
    dimension_alpha = {key: krippendorff_alpha(units, "interval") for key, units in scores.items()}
    agree: Counter = Counter()
    judged: Counter = Counter()
    for values in verdicts.values():
        if len(values) < 3:
            continue
        for voter, value in values:
            others = Counter(v for w, v in values if w != voter)
            top = others.most_common(1)[0]
            if list(others.values()).count(top[1]) > 1:  # no clear majority among the others
                continue
            judged[voter] += 1
            agree[voter] += value == top[0]
    majority = {voter: {"agree": agree[voter], "n": n, "share": agree[voter] / n} for voter, n in judged.items()}
    return {"verdict_alpha": alpha, "dimension_alpha": dimension_alpha, "majority_agreement": majority}
