"""The exports' public names, kept importable from their old home for importers outside the exports.

Rule: nothing lives here. Each name belongs to the module that owns its layer, and code inside
`arena.exports` imports it from there: filters (`arena.exports.filters`), progress
(`arena.exports.progress`), the file writer (`arena.exports.writer`), the job life cycle
(`arena.exports.jobs`) and starting a job (`arena.exports.dispatch`). The admin, the API, the judges
app, benchmarks and older tests still import this module; move them to the owners and delete it.
"""

from __future__ import annotations

from arena.exports.dispatch import start_export
from arena.exports.filters import BattleSource, ExportFilters, battle_sources, get_format
from arena.exports.jobs import STALE_AFTER, export_dir, run_job
from arena.exports.progress import Progress, ProgressCallback
from arena.exports.writer import write_export

__all__ = [
    "STALE_AFTER",
    "BattleSource",
    "ExportFilters",
    "Progress",
    "ProgressCallback",
    "battle_sources",
    "export_dir",
    "get_format",
    "run_job",
    "start_export",
    "write_export",
]
