"""Leaderboard exports: the stored snapshots of the default method, as one CSV or one JSON document.

Rule: a leaderboard export reads what the leaderboards app stored (every counted vote; only the
dimension and category filters apply) and computes nothing; without a snapshot it refuses with
ArenaError. The CSV layout is the public ``leaderboard.csv``'s (`arena.exports.leaderboard_csv`).
"""

from __future__ import annotations

from pathlib import Path

from arena.core.errors import ArenaError
from arena.exports import formats
from arena.exports.filters import ExportFilters
from arena.exports.formats import Format
from arena.exports.leaderboard_csv import write_leaderboard_csv
from arena.exports.progress import Progress, ProgressCallback
from arena.leaderboards.models import LeaderboardSnapshot
from arena.leaderboards.snapshots import DEFAULT_METHOD
from arena.models import Campaign


def write_leaderboard(
    campaign: Campaign, spec: Format, filters: ExportFilters, path: Path, progress: ProgressCallback
) -> Progress:
    """Every stored snapshot of the default method (overall, per dimension, per category)."""
    snapshots = LeaderboardSnapshot.objects.filter(campaign=campaign, method=DEFAULT_METHOD)
    if filters.dimension:
        snapshots = snapshots.filter(dimension=filters.dimension)
    if filters.category:
        snapshots = snapshots.filter(category=filters.category)
    snapshots = list(snapshots.order_by("dimension", "category"))
    if not snapshots:
        raise ArenaError("No leaderboard has been computed for this selection yet; it appears after the first votes.")
    stats = Progress(rows_total=sum(len(s.data.get("rows", [])) for s in snapshots))
    progress(stats)
    if spec.name == "leaderboard-csv":
        with open(path, "w", encoding="utf-8", newline="") as out:
            stats.rows_written += write_leaderboard_csv(out, snapshots)
    else:
        boards = []
        for snapshot in snapshots:
            data = snapshot.data
            boards.append(
                {
                    "dimension": snapshot.dimension,
                    "category": snapshot.category,
                    "method": snapshot.method,
                    "n_votes": snapshot.n_votes,
                    "computed_at": snapshot.computed_at.isoformat(),
                    "ties": data.get("ties"),
                    "tie_parameter": data.get("tie_parameter"),
                    "confidence": data.get("confidence"),
                    "bootstrap_rounds": data.get("bootstrap_rounds"),
                    "rows": data.get("rows", []),
                }
            )
            stats.rows_written += len(data.get("rows", []))
        document = {"campaign": campaign.slug, "title": campaign.title, "leaderboards": boards}
        path.write_text(formats.dumps(document) + "\n", encoding="utf-8")
    stats.rows_done = stats.rows_total
    progress(stats)
    return stats
