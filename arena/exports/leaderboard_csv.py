"""The one leaderboard CSV layout: the public ``leaderboard.csv`` and the exported leaderboard write it.

Columns (``formats.LEADERBOARD_COLUMNS``): which board (dimension, category, method), the model's
row (rank, rating, interval, votes, wins, losses, ties, both_bad, win_rate, provisional), then the
board's vote count and time. The public file holds the board the page shows; the export every board.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO, Any

from arena.exports import csv_cells
from arena.exports.formats import LEADERBOARD_COLUMNS


def write_leaderboard_csv(out: IO[str] | Any, snapshots: Iterable[Any]) -> int:
    """Write the header and every row of ``snapshots`` (LeaderboardSnapshot rows) to ``out``; the row count."""
    writer = csv_cells.DictWriter(out, fieldnames=LEADERBOARD_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    written = 0
    for snapshot in snapshots:
        board = {
            "dimension": snapshot.dimension,
            "category": snapshot.category,
            "method": snapshot.method,
            "n_votes": snapshot.n_votes,
            "computed_at": snapshot.computed_at.isoformat(),
        }
        for row in snapshot.data.get("rows", []):
            writer.writerow({**row, **board})
            written += 1
    return written
