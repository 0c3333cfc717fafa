"""The life cycle of an `ExportJob`: created, claimed and run, finished or failed, its file cleaned up.

Rule: every status change is a filtered update. A run claims the job with a conditional UPDATE
(queued, or running but silent for `STALE_AFTER`) that bumps ``attempt``; every later write of that
run is fenced by its attempt, so a run that another one took over writes nothing and deletes the file
it made. This module knows no task queue: `arena.exports.dispatch` sends jobs to the worker, and the
worker's task (`arena.exports.tasks`) calls `run_job`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from arena.core.errors import ArenaError
from arena.exports.filters import ExportFilters, get_format
from arena.exports.formats import FORMATS
from arena.exports.models import ExportJob
from arena.exports.progress import Progress
from arena.exports.writer import write_export
from arena.models import Campaign

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 1.0  # seconds between progress writes
STALE_AFTER = timedelta(minutes=10)  # a running job silent this long is taken over by the next run
UNSENT_ERROR = "The task queue could not be reached; please start the export again."


def export_dir() -> Path:
    return Path(settings.ARENA_EXPORT_DIR)


def create_job(
    campaign: Campaign, fmt: str, filters: ExportFilters | Mapping[str, Any] | None = None, user=None
) -> ExportJob:
    """Check the format and filters (ArenaError if they do not apply) and record a queued job."""
    spec = get_format(fmt)
    if not isinstance(filters, ExportFilters):
        filters = ExportFilters.parse(filters)
    filters.check(campaign, spec)
    return ExportJob.objects.create(
        campaign=campaign,
        format=spec.name,
        filters=filters.to_dict(),
        created_by=user if user is not None and user.is_authenticated else None,
    )


def fail_unsent(job_id: int) -> None:
    """The job could not be handed to a worker: say so on it, if it is still queued."""
    ExportJob.objects.filter(pk=job_id, status=ExportJob.Status.QUEUED).update(
        status=ExportJob.Status.FAILED, error=UNSENT_ERROR, finished_at=timezone.now()
    )


def _claim(job_id: int) -> bool:
    """Take the job if it is queued, or running with a worker silent for `STALE_AFTER`."""
    now = timezone.now()
    runnable = Q(status=ExportJob.Status.QUEUED) | Q(
        status=ExportJob.Status.RUNNING, heartbeat_at__lt=now - STALE_AFTER
    )
    claimed = ExportJob.objects.filter(runnable, pk=job_id).update(
        status=ExportJob.Status.RUNNING,
        attempt=F("attempt") + 1,
        started_at=now,
        heartbeat_at=now,
        rows_done=0,
        rows_written=0,
        error="",
    )
    return claimed == 1


def run_job(job_id: int) -> ExportJob | None:
    """Run a queued job (or take over one whose worker went silent). Returns None if there was
    nothing to do: the job is finished, gone, or running elsewhere. Never raises for a failed export:
    the job records the error."""
    if not _claim(job_id):
        return None
    job = ExportJob.objects.select_related("campaign").get(pk=job_id)
    mine = ExportJob.objects.filter(pk=job.pk, attempt=job.attempt, status=ExportJob.Status.RUNNING)
    name = f"{job.campaign.slug}-{job.format}-{job.pk}-{job.attempt}.{FORMATS[job.format].extension}"
    path = export_dir() / name
    try:
        stats = write_export(job.campaign, job.format, ExportFilters.parse(job.filters), path, _heartbeat(mine))
    except Exception as error:
        _fail(mine, job.pk, error)
    else:
        _finish(mine, name, path, stats)
    job.refresh_from_db()
    return job


def _heartbeat(mine: QuerySet[ExportJob]):
    """A progress callback that writes the counts and the heartbeat at most every `PROGRESS_INTERVAL`."""
    last = 0.0

    def report(stats: Progress) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= PROGRESS_INTERVAL:
            last = now
            mine.update(
                rows_total=stats.rows_total,
                rows_done=stats.rows_done,
                rows_written=stats.rows_written,
                heartbeat_at=timezone.now(),
            )

    return report


def _fail(mine: QuerySet[ExportJob], job_id: int, error: Exception) -> None:
    """Record the error on the job: an ArenaError's message as it is, anything else logged and named."""
    if isinstance(error, ArenaError):
        message = error.message
    else:
        log.exception("export job %s failed", job_id)
        message = f"The export failed: {type(error).__name__}: {error}"
    mine.update(status=ExportJob.Status.FAILED, error=message[:2000], finished_at=timezone.now())


def _finish(mine: QuerySet[ExportJob], name: str, path: Path, stats: Progress) -> None:
    """Mark the job done with its file; if another run took the job over meanwhile, delete the file."""
    finished = mine.update(
        status=ExportJob.Status.DONE,
        file_name=name,
        file_size=path.stat().st_size,
        rows_total=stats.rows_total,
        rows_done=stats.rows_done,
        rows_written=stats.rows_written,
        finished_at=timezone.now(),
        heartbeat_at=timezone.now(),
    )
    if finished != 1:  # another run took the job over while this one was silent
        path.unlink(missing_ok=True)
