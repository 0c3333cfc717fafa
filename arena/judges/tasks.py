"""Celery tasks of the judges: thin shells around arena.judges.running."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from arena.judges import running


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,  # the service decides (ARENA_GENERATION_MAX_RETRIES)
    soft_time_limit=settings.ARENA_GENERATION_SOFT_TIME_LIMIT,
    time_limit=settings.ARENA_GENERATION_TIME_LIMIT,
    ignore_result=True,
)
def judge_pairing(self, verdict_id: int) -> str:
    """Judge one pairing (sent to the judge backend's queue by `running.dispatch`), then hand out the next."""
    outcome = running.judge_pairing_now(verdict_id, retries_done=self.request.retries)
    if outcome.status == "retry":
        raise self.retry(countdown=outcome.retry_in)
    running.hand_off(outcome)
    return outcome.status


@shared_task(acks_late=True, ignore_result=True)
def reap_stale_judging() -> int:
    """Beat: pairings whose worker died or whose message was lost are handed out again."""
    return running.requeue_stale()
