"""`write_export`: the one function that produces an export file.

Rule: the Celery task (through `arena.exports.jobs.run_job`), the admin page and the API (through
`arena.exports.dispatch.start_export`) and ``manage.py export_data`` all write files through it. The
filters are checked against the format first; the file is written under a temporary name in the same
folder and renamed when complete, so a reader never sees half a file, and a failed export leaves none.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from arena.exports.filters import ExportFilters, get_format
from arena.exports.leaderboard import write_leaderboard
from arena.exports.progress import Progress, ProgressCallback
from arena.exports.vote_export import VoteExport
from arena.models import Campaign


def write_export(
    campaign: Campaign,
    fmt: str,
    filters: ExportFilters | None,
    path: str | Path,
    progress: ProgressCallback | None = None,
) -> Progress:
    """Write one export of the campaign to ``path`` (via a temporary file renamed at the end)."""
    spec = get_format(fmt)
    filters = filters or ExportFilters()
    filters.check(campaign, spec)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    report = progress or (lambda p: None)
    try:
        if spec.kind == "leaderboard":
            stats = write_leaderboard(campaign, spec, filters, tmp, report)
        else:
            stats = VoteExport(campaign, spec, filters).write(tmp, report)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return stats
