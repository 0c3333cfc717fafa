"""Leaderboard snapshots computed from the stored aggregates (never from raw votes)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from arena.leaderboards.aggregation import VERDICT_OUTCOME, fold_new_votes
from arena.leaderboards.models import OVERALL, EloState, LeaderboardSnapshot, PairAggregate
from arena.models import Campaign
from ratings.counts import PairCounts

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


def interval_kind(intervals: str) -> str:
    """The intervals a board actually gets: "bootstrap" needs ARENA_BOOTSTRAP_ROUNDS >= 2."""
    return "bootstrap" if intervals == "bootstrap" and settings.ARENA_BOOTSTRAP_ROUNDS >= 2 else "sandwich"


def leaderboard_data(counts: PairCounts, method: str, intervals: str = "bootstrap") -> tuple[dict[str, Any], bytes]:
    """A board's JSON data (without its matrices) and its matrices as bytes (`LeaderboardSnapshot`)."""
    from ratings import compute_leaderboard

    kind = interval_kind(intervals)
    board = compute_leaderboard(counts, ties=method, intervals=kind, bootstrap=settings.ARENA_BOOTSTRAP_ROUNDS, seed=0)
    return board.to_dict(matrices=False), board.matrices_to_bytes()  # strict JSON already (NaN written as None)


def elo_data(state: EloState) -> dict[str, Any]:
    ranked = sorted(state.ratings.items(), key=lambda kv: -kv[1])
    rows = [
        {"rank": i + 1, "model": name, "rating": rating, "ci_low": None, "ci_high": None, "votes": None}
        for i, (name, rating) in enumerate(ranked)
    ]
    return {"method": "elo", "rows": rows, "note": "Online Elo depends on the order of the votes."}


def bias_data(counts: PairCounts, tallies: dict[str, int]) -> dict[str, Any]:
    """Position bias, length bias and per-model tie / both-bad rates, from folded tallies."""
    from ratings import tie_rates, wilson_interval

    def share(hits: int, n: int) -> dict[str, Any]:
        low, high = wilson_interval(hits, n) if n else (None, None)
        return {"share": hits / n if n else None, "ci_low": low, "ci_high": high, "n": n}

    left, right = tallies.get("left", 0), tallies.get("right", 0)
    longer, shorter = tallies.get("longer_won", 0), tallies.get("shorter_won", 0)
    return {
        "position": share(left, left + right),
        "length": share(longer, longer + shorter),
        "ties": {model: {k: v.to_dict() for k, v in rates.items()} for model, rates in tie_rates(counts).items()},
    }


@dataclass
class Board:
    """One snapshot to write: its key, JSON data, the votes it covers and its intervals."""

    dimension: str
    category: str
    method: str
    data: dict[str, Any]
    n_votes: int
    intervals: str = ""
    matrices: bytes = b""


def compute_snapshots(campaign: Campaign, *, intervals: str = "bootstrap", force: bool = False) -> int:
    """Fold new votes, then refresh the snapshots that are out of date. Returns snapshots written.

    A board is out of date when its vote count differs from its aggregate's, or, with
    ``intervals="bootstrap"``, when it carries sandwich intervals. The after-vote recompute asks for
    ``"sandwich"`` (about 10 ms a board at 100 models); beat's sweep for ``"bootstrap"`` (about a
    second a board). ``force`` refits every board (after a rebuild, counts can change while their
    total does not). Boards whose aggregate did not change are neither refitted nor rewritten.
    """
    fold_new_votes(campaign)
    boards = fit_boards(campaign, intervals=intervals, force=force)
    write_boards(campaign, boards)
    if force:  # a rebuild can leave a dimension or category without any counted vote: drop its boards
        keys = set(PairAggregate.objects.filter(campaign=campaign).values_list("dimension", "category"))
        snapshots = LeaderboardSnapshot.objects.filter(campaign=campaign).values_list("pk", "dimension", "category")
        orphans = [pk for pk, dimension, category in snapshots if (dimension, category) not in keys]
        LeaderboardSnapshot.objects.filter(pk__in=orphans).delete()
    return len(boards)


def fit_boards(campaign: Campaign, *, intervals: str = "bootstrap", force: bool = False) -> list[Board]:
    """The out-of-date boards of the campaign (see `compute_snapshots`), fitted from the aggregates."""
    kind = interval_kind(intervals)
    current = {
        (dimension, category, method): (n_votes, stored)
        for dimension, category, method, n_votes, stored in LeaderboardSnapshot.objects.filter(
            campaign=campaign
        ).values_list("dimension", "category", "method", "n_votes", "intervals")
    }

    def stale(dimension: str, category: str, method: str, n_votes: int, wanted: str = "") -> bool:
        stored = current.get((dimension, category, method))
        return force or stored is None or stored[0] != n_votes or (wanted == "bootstrap" and stored[1] != wanted)

    todo: dict[int, list[str]] = {}
    for pk, dimension, category, n_votes in PairAggregate.objects.filter(campaign=campaign).values_list(
        "pk", "dimension", "category", "n_votes"
    ):
        methods = OVERALL_METHODS if dimension == OVERALL and category == OVERALL else (DEFAULT_METHOD,)
        methods = [m for m in methods if stale(dimension, category, m, n_votes, kind)]
        if methods:
            todo[pk] = methods
    boards = []
    state = EloState.objects.filter(campaign=campaign).first()
    for aggregate in PairAggregate.objects.filter(pk__in=todo):
        counts = aggregate.pair_counts()
        overall = aggregate.dimension == OVERALL and aggregate.category == OVERALL
        bias = _clean(bias_data(counts, state.tallies)) if overall and state is not None else None
        for method in todo[aggregate.pk]:
            data, matrices = leaderboard_data(counts, method, kind)
            if bias is not None:
                data["bias"] = bias
            boards.append(
                Board(aggregate.dimension, aggregate.category, method, data, aggregate.n_votes, kind, matrices)
            )
    if state is not None and state.ratings and stale(OVERALL, OVERALL, "elo", state.n_votes):
        boards.append(Board(OVERALL, OVERALL, "elo", elo_data(state), state.n_votes))
    return boards


def write_boards(campaign: Campaign, boards: list[Board]) -> None:
    """Store the boards in one transaction: one UPDATE per existing snapshot, a create for new ones."""
    if not boards:
        return
    now = timezone.now()
    existing = {
        (dimension, category, method): pk
        for pk, dimension, category, method in LeaderboardSnapshot.objects.filter(campaign=campaign).values_list(
            "pk", "dimension", "category", "method"
        )
    }
    with transaction.atomic():
        for board in boards:
            fields = {
                "data": board.data,
                "n_votes": board.n_votes,
                "computed_at": now,
                "intervals": board.intervals,
                "matrices": board.matrices,
            }
            pk = existing.get((board.dimension, board.category, board.method))
            if pk is None or not LeaderboardSnapshot.objects.filter(pk=pk).update(**fields):
                _store(campaign, board.dimension, board.category, board.method, fields)


def _store(campaign, dimension, category, method, fields: dict[str, Any]) -> None:
    with transaction.atomic():
        LeaderboardSnapshot.objects.update_or_create(
            campaign=campaign, dimension=dimension, category=category, method=method, defaults=fields
        )


STYLE_MIN_VOTES = 50


def compute_style_snapshot(campaign: Campaign) -> bool:
    """Style-controlled leaderboard (method "style"): raw and controlled ratings and coefficients.

    Style control is a per-battle regression, so unlike the other boards it reads every counted
    vote; it therefore runs on beat's schedule (arena.leaderboards.tasks), not after every vote, and only when
    the number of votes changed. Features are computed once per response, not per vote.
    """
    from arena.models import Response, Vote
    from ratings import fit_style_control, style_features

    votes = Vote.objects.filter(campaign=campaign, voter__excluded=False, battle__flagged=False)
    n_votes = votes.count()
    current = LeaderboardSnapshot.objects.filter(campaign=campaign, dimension=OVERALL, category=OVERALL, method="style")
    if n_votes < STYLE_MIN_VOTES or current.filter(n_votes=n_votes).exists():
        return False
    features: dict[int, dict[str, int]] = {}
    model_a, model_b, outcome, left_ids, right_ids = [], [], [], [], []
    rows = votes.values_list("left_model__name", "right_model__name", "verdict", "battle__left_id", "battle__right_id")
    for left, right, verdict, left_id, right_id in rows.iterator(chunk_size=10_000):
        model_a.append(left)
        model_b.append(right)
        outcome.append(VERDICT_OUTCOME[verdict])
        left_ids.append(left_id)
        right_ids.append(right_id)
    wanted = set(left_ids) | set(right_ids)
    for response_id, content in Response.objects.filter(id__in=wanted).values_list("id", "content").iterator():
        features[response_id] = style_features(content)
    result = fit_style_control(
        model_a, model_b, outcome, [features[i] for i in left_ids], [features[i] for i in right_ids]
    )
    fields = {"data": _clean(result.to_dict()), "n_votes": n_votes, "computed_at": timezone.now(), "intervals": ""}
    _store(campaign, OVERALL, OVERALL, "style", fields)
    return True
