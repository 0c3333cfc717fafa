"""Progress of one export: rows read, records written, rows left out and why.

Rule: the writers fill a `Progress` and hand it to a `ProgressCallback` as they go; the caller (a job's
heartbeat, the command's progress line) decides how often to show it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Progress:
    rows_total: int = 0
    rows_done: int = 0
    rows_written: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


ProgressCallback = Callable[[Progress], None]
