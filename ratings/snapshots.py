"""Leaderboard snapshots computed from the stored aggregates (never from raw votes)."""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from arena.models import Campaign
from ratings.aggregation import fold_new_votes
from ratings.counts import PairCounts
from ratings.models import OVERALL, EloState, LeaderboardSnapshot, PairAggregate

# Methods stored for the overall verdict; dimensions and categories get the default method only.
DEFAULT_METHOD = "davidson"
OVERALL_METHODS = ("davidson", "half")


def _clean(value: Any) -> Any:
    """JSON-safe copy: NaN and infinities become None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def leaderboard_data(counts: PairCounts, method: str) -> dict[str, Any]:
    from ratings import compute_leaderboard

    board = compute_leaderboard(
        counts, ties=method, bootstrap=settings.ARENA_BOOTSTRAP_ROUNDS, seed=0
    )
    return _clean(board.to_dict())


def elo_data(state: EloState) -> dict[str, Any]:
    ranked = sorted(state.ratings.items(), key=lambda kv: -kv[1])
    rows = [
        {"rank": i + 1, "model": name, "rating": rating, "ci_low": None, "ci_high": None, "votes": None}
        for i, (name, rating) in enumerate(ranked)
    ]
    return {"method": "elo", "rows": rows, "note": "Online Elo depends on the order of the votes."}


def compute_snapshots(campaign: Campaign) -> int:
    """Fold new votes, then store one snapshot per aggregate and method. Returns snapshots written."""
    fold_new_votes(campaign)
    now = timezone.now()
    written = 0
    for aggregate in PairAggregate.objects.filter(campaign=campaign):
        counts = PairCounts.from_dict(aggregate.counts)
        methods = OVERALL_METHODS if aggregate.dimension == OVERALL and aggregate.category == OVERALL else (
            DEFAULT_METHOD,
        )
        for method in methods:
            _store(campaign, aggregate.dimension, aggregate.category, method, leaderboard_data(counts, method),
                   aggregate.n_votes, now)  # fmt: skip
            written += 1
    state = EloState.objects.filter(campaign=campaign).first()
    if state is not None and state.ratings:
        _store(campaign, OVERALL, OVERALL, "elo", elo_data(state), state.n_votes, now)
        written += 1
    return written


def _store(campaign, dimension, category, method, data, n_votes, now) -> None:
    with transaction.atomic():
        LeaderboardSnapshot.objects.update_or_create(
            campaign=campaign,
            dimension=dimension,
            category=category,
            method=method,
            defaults={"data": data, "n_votes": n_votes, "computed_at": now},
        )
