"""Voter quality: inter-annotator agreement (Krippendorff's alpha), agreement with the majority, and
agreement with gold battles.

Plain functions over votes; the dashboard (and its JSON twin) shows them, arena.services.abuse flags
voters who disagree with gold, and staff decide whom to exclude (Voter.excluded), after which
ratings and exports leave that voter out.

Votes on gold battles are kept apart: they make up ``gold_agreement`` and are left out of alpha and
of the majority agreement (gold pairs are chosen to be clear-cut, and would inflate both).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from arena.models import Campaign, GoldBattle, Vote
from arena.services.gold import as_gold_verdict


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
    return alpha_from_coincidence(coincidence, values, level)


def alpha_from_coincidence(coincidence: np.ndarray, values: Sequence[Any], level: str = "nominal") -> float | None:
    """Alpha from the coincidence matrix of ``values`` (1 - observed / expected disagreement)."""
    k = len(values)
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


def majority_parts(values: Sequence[tuple[Hashable, Any]]) -> dict[Hashable, tuple[int, int]]:
    """One unit's (agree, judged) per voter: a verdict is judged when at least two other voters gave
    one on the unit and the others have one most common verdict; it agrees when it is that verdict.
    ``values`` are the unit's (voter, verdict) pairs."""
    if len(values) < 3:
        return {}
    result: dict[Hashable, tuple[int, int]] = {}
    for voter, value in values:
        others = Counter(v for w, v in values if w != voter)
        if not others:  # every vote on the unit is this voter's
            continue
        top = others.most_common(1)[0]
        if list(others.values()).count(top[1]) > 1:  # no clear majority among the others
            continue
        agree, judged = result.get(voter, (0, 0))
        result[voter] = (agree + (value == top[0]), judged + 1)
    return result


def agreement_share(agree: int, n: int) -> dict[str, Any]:
    """One voter's agreement with the majority, as the figures show it (``n`` above 0)."""
    return {"agree": agree, "n": n, "share": agree / n}


def majority_agreement(verdicts: Mapping[Hashable, Sequence[tuple[Hashable, Any]]]) -> dict[Hashable, dict[str, Any]]:
    """Per voter: how many of their verdicts match the majority of the other voters on the same unit
    (the rule of ``majority_parts``, summed over units). ``verdicts`` maps a unit to its (voter,
    verdict) pairs, verdicts in model terms."""
    totals: dict[Hashable, tuple[int, int]] = {}
    for values in verdicts.values():
        for voter, (agree, judged) in majority_parts(values).items():
            old_agree, old_judged = totals.get(voter, (0, 0))
            totals[voter] = (old_agree + agree, old_judged + judged)
    return {voter: agreement_share(agree, n) for voter, (agree, n) in totals.items()}


@dataclass(frozen=True)
class GoldScore:
    """One voter's record on gold battles."""

    voter_id: int
    public_id: str
    agree: int
    n: int
    excluded: bool = False

    @property
    def share(self) -> float:
        return self.agree / self.n if self.n else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "voter_id": self.voter_id,
            "public_id": self.public_id,
            "agree": self.agree,
            "n": self.n,
            "excluded": self.excluded,
            "share": self.share,
        }  # dataclasses.asdict's fields, without its deep copies (thousands of voters per refresh)


def gold_agreement(campaign: Campaign) -> dict[int, GoldScore]:
    """Per voter id: gold battles voted on and how many as expected (every voter, excluded ones too;
    campaign_agreement's summary leaves those out, like the majority agreement does).

    A vote's left/right is turned back into the gold battle's first/second before comparing.
    """
    rows = Vote.objects.filter(campaign=campaign, battle__gold__isnull=False).values_list(
        "voter_id",
        "voter__public_id",
        "voter__excluded",
        "verdict",
        "battle__left_id",
        "battle__gold__first_id",
        "battle__gold__expected",
    )
    agree: Counter = Counter()
    judged: Counter = Counter()
    who: dict[int, tuple[str, bool]] = {}
    for voter_id, public_id, excluded, verdict, left_id, first_id, expected in rows.iterator(chunk_size=10_000):
        who[voter_id] = (public_id, excluded)
        judged[voter_id] += 1
        agree[voter_id] += as_gold_verdict(verdict, left_id, first_id) == expected
    return {v: GoldScore(v, who[v][0], agree[v], n, who[v][1]) for v, n in judged.items()}


def summary(scores: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Pooled agreement over voters: the share of all their judged votes that agreed."""
    agree = n = voters = 0
    for score in scores:
        agree, n, voters = agree + score["agree"], n + score["n"], voters + 1
    return {"agree": agree, "n": n, "voters": voters, "share": agree / n if n else None}


def campaign_agreement(campaign: Campaign) -> dict[str, Any]:
    """Alpha on the verdicts and on each dimension, each voter's agreement with the majority and with
    gold (both keyed by the voter's public id), and campaign-wide summaries of the two."""
    rows = Vote.objects.filter(campaign=campaign, voter__excluded=False, battle__gold__isnull=True).values_list(
        "voter__public_id", "prompt_id", "left_model_id", "right_model_id", "winner_id", "verdict", "scores"
    )
    verdicts, scores = _verdict_units(rows.iterator(chunk_size=10_000))
    alpha = krippendorff_alpha({unit: [v for _, v in values] for unit, values in verdicts.items()})
    dimension_alpha = {key: krippendorff_alpha(units, "interval") for key, units in scores.items()}
    majority = majority_agreement(verdicts)
    gold = {score.public_id: score.as_dict() for score in gold_agreement(campaign).values()}
    return agreement_figures(campaign, alpha, dimension_alpha, majority, gold)


def agreement_figures(
    campaign: Campaign,
    verdict_alpha: float | None,
    dimension_alpha: dict[str, float | None],
    majority: dict[Any, dict[str, Any]],
    gold: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """The agreement figures as the dashboard shows them, with their campaign-wide summaries: one
    form for the figures computed from every vote (``campaign_agreement``) and from the kept counts
    (arena.services.quality_state). ``majority`` and ``gold`` are keyed by the voter's public id."""
    gold_battles = GoldBattle.objects.filter(campaign=campaign)
    return {
        "verdict_alpha": verdict_alpha,
        "dimension_alpha": dimension_alpha,
        "majority_agreement": majority,
        "gold_agreement": gold,
        "summary": {
            "majority": summary(majority.values()),
            "gold": {
                **summary(score for score in gold.values() if not score["excluded"]),
                "gold_battles": gold_battles.count(),
                "active_gold_battles": gold_battles.filter(is_active=True).count(),
                "gold_rate": campaign.gold_rate,
            },
        },
    }
