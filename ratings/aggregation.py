"""Folding votes into the stored pairwise aggregates (the Django side of the ratings engine).

Each vote is folded exactly once: ``Vote.folded`` marks the votes already counted, so a recompute
reads only the votes that arrived since the last one (a per-row watermark that, unlike "the largest
id seen", cannot skip a vote whose transaction committed late). A full rebuild resets the marks and
folds everything again; it gives the same counts as the incremental path. Votes of excluded voters
and of flagged battles (an answer named its model) are never counted.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models.functions import Length

from arena.models import Campaign, Vote
from ratings.counts import Outcome, PairCounts
from ratings.models import OVERALL, EloState, PairAggregate

FOLD_BATCH = 50_000

_VERDICT_OUTCOME = {
    Vote.Verdict.LEFT: Outcome.A_WINS,
    Vote.Verdict.RIGHT: Outcome.B_WINS,
    Vote.Verdict.TIE: Outcome.TIE,
    Vote.Verdict.BOTH_BAD: Outcome.BOTH_BAD,
}


@dataclass
class _Battles:
    """Column arrays of battles for one (dimension, category) key; model a is the left model."""

    a: list[str] = field(default_factory=list)
    b: list[str] = field(default_factory=list)
    outcome: list[int] = field(default_factory=list)

    def add(self, a: str, b: str, outcome: int) -> None:
        self.a.append(a)
        self.b.append(b)
        self.outcome.append(outcome)

    def counts(self) -> PairCounts:
        return PairCounts.from_battles(self.a, self.b, self.outcome)


def _score_outcome(sides: dict) -> int | None:
    left, right = sides.get("left"), sides.get("right")
    if left is None or right is None:
        return None
    return Outcome.A_WINS if left > right else Outcome.B_WINS if left < right else Outcome.TIE


def _split(rows) -> tuple[dict[tuple[str, str], _Battles], list[tuple[str, str, int]]]:
    """Battles per (dimension, category) key, and the overall battles in vote order (for Elo)."""
    groups: dict[tuple[str, str], _Battles] = defaultdict(_Battles)
    ordered = []
    for left, right, verdict, scores, category in rows:
        outcome = _VERDICT_OUTCOME[verdict]
        groups[(OVERALL, OVERALL)].add(left, right, outcome)
        if category:
            groups[(OVERALL, category)].add(left, right, outcome)
        ordered.append((left, right, outcome))
        for key, sides in (scores or {}).items():
            dim_outcome = _score_outcome(sides)
            if dim_outcome is not None:
                groups[(key, OVERALL)].add(left, right, dim_outcome)
    return groups, ordered


def _tally(tallies: dict, rows) -> dict:
    """Add verdict counts and longer/shorter-answer wins of these votes to the campaign's tallies."""
    out = dict(tallies)
    for row in rows:
        verdict, left_len, right_len = row[3], row[7] or 0, row[8] or 0
        out[verdict] = out.get(verdict, 0) + 1
        if verdict in (Vote.Verdict.LEFT, Vote.Verdict.RIGHT) and left_len != right_len:
            left_longer = left_len > right_len
            key = "longer_won" if left_longer == (verdict == Vote.Verdict.LEFT) else "shorter_won"
            out[key] = out.get(key, 0) + 1
    return out


def fold_new_votes(campaign: Campaign) -> int:
    """Add the campaign's unfolded votes to its aggregates. Returns how many votes were folded.

    Serialised per campaign by a row lock on its Elo state, so two workers never fold the same
    votes; votes of excluded voters are marked folded without being counted.
    """
    from ratings.elo import update_elo

    folded = 0
    while True:
        with transaction.atomic():
            state, _ = EloState.objects.get_or_create(campaign=campaign)
            state = EloState.objects.select_for_update().get(pk=state.pk)
            batch = list(
                Vote.objects.filter(campaign=campaign, folded=False)
                .order_by("id")
                .annotate(left_len=Length("battle__left__content"), right_len=Length("battle__right__content"))
                .values_list(
                    "id",
                    "left_model__name",
                    "right_model__name",
                    "verdict",
                    "scores",
                    "prompt__category",
                    "voter__excluded",
                    "left_len",
                    "right_len",
                    "battle__flagged",
                )[:FOLD_BATCH]
            )
            if not batch:
                return folded
            # Excluded voters and battles whose answers named a model are marked folded, not counted.
            counted = [row for row in batch if not row[6] and not row[9]]
            groups, ordered = _split(row[1:6] for row in counted)
            state.tallies = _tally(state.tallies, counted)
            for (dimension, category), battles in groups.items():
                aggregate, _ = PairAggregate.objects.select_for_update().get_or_create(
                    campaign=campaign, dimension=dimension, category=category
                )
                total = (PairCounts.from_dict(aggregate.counts) if aggregate.counts else PairCounts.empty()) + (
                    battles.counts()
                )
                aggregate.counts = total.to_dict()
                aggregate.n_votes = round(total.n_votes)
                aggregate.save(update_fields=["counts", "n_votes", "updated_at"])
            state.ratings = update_elo(state.ratings, ordered)
            state.n_votes += len(ordered)
            state.save(update_fields=["ratings", "tallies", "n_votes"])
            Vote.objects.filter(id__in=[row[0] for row in batch]).update(folded=True)
            folded += len(batch)


def reset_aggregates(campaign: Campaign) -> None:
    """Forget every aggregate of the campaign so that the next fold rebuilds them from all votes."""
    with transaction.atomic():
        PairAggregate.objects.filter(campaign=campaign).delete()
        EloState.objects.filter(campaign=campaign).delete()
        Vote.objects.filter(campaign=campaign, folded=True).update(folded=False)
