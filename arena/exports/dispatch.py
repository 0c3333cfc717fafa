"""Starting an export: record the job, then hand it to a worker once the job row is committed.

Rule: the only way a job reaches the task queue. The task is sent on commit (a worker never reads an
uncommitted row), on the "default" queue; if the broker cannot be reached the job is marked failed
(`arena.exports.jobs.fail_unsent`) instead of failing the request. This module sits above both
`arena.exports.jobs` and the task module, so neither imports the other's caller.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import partial
from typing import Any

from django.db import transaction

from arena.exports import jobs
from arena.exports.filters import ExportFilters
from arena.exports.models import ExportJob
from arena.exports.tasks import run_export_job
from arena.models import Campaign

log = logging.getLogger(__name__)


def start_export(
    campaign: Campaign, fmt: str, filters: ExportFilters | Mapping[str, Any] | None = None, user=None
) -> ExportJob:
    """Record an export job (ArenaError if the format or filters do not apply) and send it on commit."""
    with transaction.atomic():
        job = jobs.create_job(campaign, fmt, filters, user)
        transaction.on_commit(partial(send_job, job.pk))
    return job


def send_job(job_id: int) -> None:
    """Send the job's task now; a broker outage is logged and recorded on the job, not raised."""
    try:
        run_export_job.apply_async((job_id,), queue="default")
    except Exception:  # the broker is down: say so on the job instead of failing the request
        log.exception("could not enqueue export job %s", job_id)
        jobs.fail_unsent(job_id)
