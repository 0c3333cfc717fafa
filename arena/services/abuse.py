"""Vote-stuffing detection: voters whose votes look automated or partisan.

``suspicious_voters(campaign)`` reads a campaign's votes once (streamed, ordered by voter and time)
and flags a voter for any of:

- volume: far more votes than the norm (at least ``volume_factor`` times the median voter's count,
  and at least ``min_volume`` votes);
- streak: ``streak`` or more consecutive votes with the same verdict (always "A", say);
- speed: a median time per vote under ``min_seconds``, measured both as the duration the page
  reports and as the server-side gap between the voter's consecutive votes (the page's figure can be
  forged, the server's cannot), over at least ``min_samples`` votes;
- gold: after at least ``gold_min_votes`` gold battles, a share answered as expected below
  ``gold_min_share`` (see arena.services.gold; random clicking between A and B scores about 0.5).

The thresholds are deliberately loose: a flag is a reason for staff to look, and excluding a voter
(``flag_suspicious_voters --exclude``, then ``rebuild_ratings``) removes their votes from the ratings
and exports without deleting them.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import groupby

from django.db.models import Count, Q

from arena.models import Campaign, Vote, Voter
from arena.services.quality import GoldScore, gold_agreement


@dataclass(frozen=True)
class Thresholds:
    volume_factor: float = 10.0
    min_volume: int = 50
    streak: int = 20
    min_seconds: float = 2.0
    min_samples: int = 10
    gold_min_share: float = 0.6
    gold_min_votes: int = 5


@dataclass
class Flag:
    voter_id: int
    public_id: str
    votes: int
    reasons: list[str] = field(default_factory=list)
    excluded: bool = False


@dataclass(frozen=True)
class _VoterVotes:
    voter_id: int
    verdicts: list[str]
    durations_ms: list[int]
    gaps_s: list[float]


def _per_voter(rows: Iterable[tuple]) -> Iterator[_VoterVotes]:
    """Each voter's tasks in time order. The pairs of one ranking (``Battle.ranking``, written at one
    instant) are one task: one duration, one gap, and one verdict, "left" or "right" only when every
    pair has it (the order shown kept, or reversed), so a ranking does not pass for a burst of votes."""
    for voter_id, group in groupby(rows, key=lambda row: row[0]):
        verdicts, durations, gaps, previous, ranking = [], [], [], None, None
        for _, verdict, duration_ms, created_at, ranking_id in group:
            if ranking_id is not None and ranking_id == ranking:
                if verdict != verdicts[-1]:
                    verdicts[-1] = "ranking"
                continue
            ranking = ranking_id
            verdicts.append(verdict)
            if duration_ms is not None:
                durations.append(duration_ms)
            if previous is not None:
                gaps.append((created_at - previous).total_seconds())
            previous = created_at
        yield _VoterVotes(voter_id, verdicts, durations, gaps)


def longest_streak(verdicts: list[str]) -> tuple[int, str]:
    """The longest run of one verdict and that verdict."""
    best, best_verdict = 0, ""
    for verdict, run in groupby(verdicts):
        length = sum(1 for _ in run)
        if length > best:
            best, best_verdict = length, verdict
    return best, best_verdict


def reasons_for(votes: _VoterVotes, median_votes: float, t: Thresholds) -> list[str]:
    durations = statistics.median(votes.durations_ms) if len(votes.durations_ms) >= t.min_samples else None
    gaps = statistics.median(votes.gaps_s) if len(votes.gaps_s) >= t.min_samples else None
    return task_reasons(len(votes.verdicts), longest_streak(votes.verdicts), durations, gaps, median_votes, t)


def task_reasons(
    n: int,
    streak: tuple[int, str],
    median_duration_ms: float | None,
    median_gap_s: float | None,
    median_votes: float,
    t: Thresholds,
) -> list[str]:
    """The reasons from a voter's figures: task count, longest run of one verdict (length, verdict), the
    medians of the reported durations and of the gaps between votes (None: too few samples). Shared
    with the incremental figures (arena.services.quality_state)."""
    reasons = []
    if n >= t.min_volume and n >= t.volume_factor * max(median_votes, 1.0):
        reasons.append(f"volume: {n} votes, {n / max(median_votes, 1.0):.0f}x the median voter ({median_votes:g})")
    run, verdict = streak
    if t.streak > 0 and run >= t.streak:
        reasons.append(f"streak: {run} consecutive '{verdict}' verdicts")
    if median_duration_ms is not None:
        median_s = median_duration_ms / 1000
        if median_s < t.min_seconds:
            reasons.append(f"speed: median reported time per vote {median_s:.1f} s")
    if median_gap_s is not None and median_gap_s < t.min_seconds:
        reasons.append(f"speed: median {median_gap_s:.1f} s between consecutive votes")
    return reasons


def gold_reasons(score: GoldScore | None, t: Thresholds) -> list[str]:
    """A reason when the voter disagrees with gold too often over enough gold battles."""
    if score is None or t.gold_min_votes <= 0 or score.n < t.gold_min_votes or score.share >= t.gold_min_share:
        return []
    return [
        f"gold: {score.agree} of {score.n} gold battles as expected ({score.share:.0%}, under {t.gold_min_share:.0%})"
    ]


def suspicious_voters(campaign: Campaign, thresholds: Thresholds | None = None) -> list[Flag]:
    """Flagged voters of the campaign with their reasons, most votes first."""
    t = thresholds or Thresholds()
    tasks = Count("id", filter=Q(battle__ranking__isnull=True)) + Count("battle__ranking", distinct=True)
    per_voter = Vote.objects.filter(campaign=campaign).values("voter_id").order_by().annotate(n=tasks)
    counts = list(per_voter.values_list("n", flat=True))
    if not counts:
        return []
    median_votes = statistics.median(counts)
    rows = (
        Vote.objects.filter(campaign=campaign)
        .order_by("voter_id", "created_at", "id")
        .values_list("voter_id", "verdict", "duration_ms", "created_at", "battle__ranking_id")
        .iterator(chunk_size=5000)
    )
    gold = gold_agreement(campaign) if t.gold_min_votes > 0 else {}
    flagged: dict[int, Flag] = {}
    for votes in _per_voter(rows):
        reasons = reasons_for(votes, median_votes, t) + gold_reasons(gold.get(votes.voter_id), t)
        if reasons:
            flagged[votes.voter_id] = Flag(votes.voter_id, "", len(votes.verdicts), reasons)
    for voter_id, public_id, excluded in Voter.objects.filter(pk__in=flagged).values_list(
        "id", "public_id", "excluded"
    ):
        flagged[voter_id].public_id = public_id
        flagged[voter_id].excluded = excluded
    return sorted(flagged.values(), key=lambda flag: (-flag.votes, flag.voter_id))


def set_excluded(public_id: str, excluded: bool) -> Voter | None:
    """Exclude one voter (or take them back) from the next ratings rebuild on; None if there is no such voter."""
    voter = Voter.objects.filter(public_id=public_id).first()
    if voter is not None and voter.excluded != excluded:
        voter.excluded = excluded
        voter.save(update_fields=["excluded"])
    return voter


def exclude_voters(voter_ids: Iterable[int]) -> int:
    """Leave these voters out of ratings and exports from the next rebuild on; returns how many changed."""
    return Voter.objects.filter(pk__in=list(voter_ids), excluded=False).update(excluded=True)
