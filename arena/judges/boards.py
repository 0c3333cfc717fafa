"""A judge's leaderboards, its agreement with the humans and its win rates, read from stored verdicts.

Everything is computed from the judge's own table (`JudgeVerdict`) with the ratings engine
(`ratings.counts`, `ratings.leaderboard`, `ratings.bias`); human votes are only read, for comparison,
with the human leaderboard's own exclusions (gold battles, flagged battles, excluded voters).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db.models.functions import Length

from arena.judges import agreement, winrates
from arena.judges.models import Judge, JudgeVerdict
from arena.models import Vote
from ratings.bias import length_bias, position_bias
from ratings.counts import Outcome, PairCounts, outcomes_from_scores
from ratings.leaderboard import compute_leaderboard

_CODE = {"lo": agreement.LO, "hi": agreement.HI, "tie": agreement.TIE, "both_bad": agreement.TIE}
_ENGINE = {"lo": Outcome.A_WINS, "hi": Outcome.B_WINS, "tie": Outcome.TIE, "both_bad": Outcome.BOTH_BAD}
_CALL = {"A": Outcome.A_WINS, "B": Outcome.B_WINS, "C": Outcome.TIE, "D": Outcome.BOTH_BAD}


@dataclass(frozen=True)
class Verdicts:
    """A judge's done verdicts as columns (lo = model a, hi = model b)."""

    lo: list[str]
    hi: list[str]
    outcome: list[str]
    consistent: list[bool]
    letters: list[tuple[str, str]]
    category: list[str]
    len_lo: list[int]
    len_hi: list[int]
    scores: list[dict]
    pairing: list[tuple[int, int]]


def load_verdicts(judge: Judge) -> Verdicts:
    rows = (
        JudgeVerdict.objects.filter(judge=judge, status=JudgeVerdict.Status.DONE)
        .annotate(len_lo=Length("response_lo__content"), len_hi=Length("response_hi__content"))
        .values_list(
            "model_lo__name",
            "model_hi__name",
            "outcome",
            "consistent",
            "lo_first_verdict",
            "hi_first_verdict",
            "prompt__category",
            "len_lo",
            "len_hi",
            "scores",
            "response_lo_id",
            "response_hi_id",
        )
        .order_by("id")
    )
    cols: list[list] = [[] for _ in range(10)]
    for lo, hi, outcome, consistent, v1, v2, category, len_lo, len_hi, scores, r_lo, r_hi in rows:
        for col, value in zip(
            cols,
            (lo, hi, outcome, bool(consistent), (v1, v2), category, len_lo or 0, len_hi or 0, scores, (r_lo, r_hi)),
            strict=True,
        ):
            col.append(value)
    return Verdicts(*cols)


def leaderboard(judge: Judge, *, dimension: str = "", intervals: str = "sandwich", data: Verdicts | None = None):
    """The judge's Bradley-Terry/Davidson leaderboard (overall, or on one dimension's scores); None before
    its first verdict."""
    data = data or load_verdicts(judge)
    if not data.outcome:
        return None
    if dimension:
        lo_scores = [(s.get(dimension) or {}).get("lo", np.nan) for s in data.scores]
        hi_scores = [(s.get(dimension) or {}).get("hi", np.nan) for s in data.scores]
        outcomes = outcomes_from_scores(lo_scores, hi_scores)
    else:
        outcomes = np.array([_ENGINE[o] for o in data.outcome], dtype=np.int8)
    counts = PairCounts.from_battles(data.lo, data.hi, outcomes)
    return compute_leaderboard(counts, intervals=intervals, min_votes=1)


@dataclass(frozen=True)
class HumanVotes:
    pairing: list[tuple[int, int]]
    lo: list[str]
    hi: list[str]
    outcome: list[int]  # agreement codes in lo/hi orientation
    category: list[str]


def load_human_votes(judge: Judge) -> HumanVotes:
    rows = (
        Vote.objects.filter(
            campaign_id=judge.campaign_id, battle__gold__isnull=True, battle__flagged=False, voter__excluded=False
        )
        .values_list(
            "battle__left_id",
            "battle__right_id",
            "left_model_id",
            "right_model_id",
            "winner_id",
            "left_model__name",
            "right_model__name",
            "prompt__category",
        )
        .order_by("id")
    )
    out = HumanVotes([], [], [], [], [])
    for left, right, left_model, right_model, winner, left_name, right_name, category in rows:
        if left_model == right_model:
            continue
        if left_model > right_model:
            left, right, left_model, right_model = right, left, right_model, left_model
            left_name, right_name = right_name, left_name
        out.pairing.append((left, right))
        out.lo.append(left_name)
        out.hi.append(right_name)
        out.outcome.append(
            agreement.LO if winner == left_model else agreement.HI if winner == right_model else agreement.TIE
        )
        out.category.append(category or "")
    return out


def _ratings(board) -> dict[str, float]:
    return {row.model: row.rating for row in board.rows if row.rating is not None}


def report(judge: Judge) -> dict[str, Any]:
    """Agreement with the humans, consistency, biases, rank correlation, human baseline, win rates."""
    data = load_verdicts(judge)
    humans = load_human_votes(judge)
    judged = dict(zip(data.pairing, data.outcome, strict=True))
    pairs = [
        (h, _CODE[judged[p]], c)
        for p, h, c in zip(humans.pairing, humans.outcome, humans.category, strict=True)
        if p in judged
    ]
    human_codes = [h for h, _, _ in pairs]
    judge_codes = [j for _, j, _ in pairs]
    by_pairing: dict[tuple[int, int], list[int]] = defaultdict(list)
    for p, h in zip(humans.pairing, humans.outcome, strict=True):
        by_pairing[p].append(h)
    majority = [(agreement.majority(v), _CODE[judged[p]]) for p, v in by_pairing.items() if p in judged and len(v) >= 2]
    majority = [(m, j) for m, j in majority if m is not None]
    calls = [_CALL[v1] for v1, _ in data.letters] + [_CALL[v2] for _, v2 in data.letters]
    engine_outcomes = [_ENGINE[o] for o in data.outcome]
    judge_ratings: dict[str, float] = {}
    human_ratings: dict[str, float] = {}
    if data.outcome:
        judge_ratings = _ratings(leaderboard(judge, intervals="none", data=data))
    if humans.outcome:
        human_counts = PairCounts.from_battles(
            humans.lo, humans.hi, [{0: Outcome.A_WINS, 1: Outcome.B_WINS, 2: Outcome.TIE}[h] for h in humans.outcome]
        )
        human_ratings = _ratings(compute_leaderboard(human_counts, intervals="none", min_votes=1))
    campaign = judge.campaign
    own_model_compared = judge.allow_self_judging and campaign.contenders.filter(pk=judge.model_id).exists()
    return {
        "judge": judge.name,
        "campaign": campaign.slug,
        "verdicts": len(data.outcome),
        "human_votes_on_judged_pairings": len(pairs),
        "agreement": agreement.agreement(human_codes, judge_codes),
        "agreement_by_category": {
            str(k): v for k, v in agreement.by_group([c for _, _, c in pairs], human_codes, judge_codes).items()
        },
        "agreement_with_human_majority": agreement.agreement([m for m, _ in majority], [j for _, j in majority]),
        "human_baseline": agreement.human_baseline(humans.pairing, humans.outcome),
        "position_consistency": {
            "share": agreement.share(sum(data.consistent), len(data.consistent)),
            "consistent": sum(data.consistent),
            "n": len(data.consistent),
        },
        "position_bias": position_bias(calls, [True] * len(calls)).to_dict() if calls else None,
        "length_bias": length_bias(engine_outcomes, data.len_lo, data.len_hi).to_dict() if data.outcome else None,
        "rank_correlation": agreement.spearman(judge_ratings, human_ratings),
        "self_judging": own_model_compared,
        "win_rates": win_rates(judge, data) if judge.reference_model_id else None,
    }


def win_rates(judge: Judge, data: Verdicts | None = None) -> list[dict[str, Any]]:
    """AlpacaEval-style win rates of every model against the judge's reference model."""
    data = data or load_verdicts(judge)
    reference = judge.reference_model.name
    battles: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for lo, hi, outcome, len_lo, len_hi in zip(data.lo, data.hi, data.outcome, data.len_lo, data.len_hi, strict=True):
        if reference not in (lo, hi):
            continue
        model_is_lo = hi == reference
        pref = 0.5 if outcome in ("tie", "both_bad") else float((outcome == "lo") == model_is_lo)
        battles[lo if model_is_lo else hi].append(
            (pref, len_lo if model_is_lo else len_hi, len_hi if model_is_lo else len_lo)
        )
    return [row.to_dict() for row in winrates.win_rates(dict(battles))]
