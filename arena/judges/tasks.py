"""Celery tasks of the judges: thin shells around arena.judges.running."""

from __future__ import annotations

from celery import shared_task

from arena.judges import running
from arena.task_options import generation_task


@generation_task
def judge_pairings(self, verdict_ids: list[int], retries: int = 0) -> int:
    """Judge a chunk of pairings (sent to the judge backend's queue by `running.dispatch`), send its
    retries as a new chunk with a countdown (``retries`` counts them, against
    ARENA_GENERATION_MAX_RETRIES), hand its slots on; returns how many finished."""
    return running.run_chunk(verdict_ids, retries_done=retries).finished


@shared_task(acks_late=True, ignore_result=True)
def reap_stale_judging() -> int:
    """Beat: pairings whose worker died or whose message was lost are handed out again."""
    return running.requeue_stale()
