"""Celery task of the exports: takes a job id, runs the job (on the "default" queue).

Rule: a thin interface over `arena.exports.jobs.run_job`; `arena.exports.dispatch` sends it.
"""

from __future__ import annotations

from celery import shared_task

from arena.exports.jobs import run_job


@shared_task(acks_late=True, ignore_result=True, soft_time_limit=3300, time_limit=3400)
def run_export_job(job_id: int) -> None:
    """Idempotent: a finished or failed job is not run again, and a job another worker is running is
    left alone; one whose worker died (no progress for jobs.STALE_AFTER) is taken over."""
    run_job(job_id)
