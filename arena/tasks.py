"""Celery tasks of the arena: thin shells around arena.services.generation.

``generate_response`` is sent to ``generate_api`` or ``generate_gpu`` by the model's backend (see
``generation.queue_for``); on the GPU queue a pre-generated response leads a batch of its model's queued
responses (``gpu_batches``); it is idempotent, so a second delivery, a duplicate from the reaper or a
redelivery after a lost worker is harmless. ``reap_stale_responses`` runs on beat.
"""

from __future__ import annotations

import time

from celery import shared_task
from django.conf import settings

from arena.services import generation, gpu_batches

# In-process mode (CELERY_TASK_ALWAYS_EAGER, no broker to hold a delayed retry) a retry waits in place,
# at most this long.
EAGER_RETRY_WAIT = 5.0


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,  # the service decides (ARENA_GENERATION_MAX_RETRIES)
    soft_time_limit=settings.ARENA_GENERATION_SOFT_TIME_LIMIT,
    time_limit=settings.ARENA_GENERATION_TIME_LIMIT,
    ignore_result=True,
)
def generate_response(self, response_id: int) -> str:
    retries = self.request.retries
    while True:
        outcome = gpu_batches.generate(response_id, retries_done=retries)
        if outcome.status != "retry":
            return outcome.status
        if not self.request.is_eager:
            raise self.retry(countdown=outcome.retry_in)
        time.sleep(min(outcome.retry_in or 0.0, EAGER_RETRY_WAIT))
        retries += 1


@shared_task(acks_late=True, ignore_result=True)
def reap_stale_responses() -> int:
    """Beat: requeue responses whose worker died mid-generation."""
    return len(generation.requeue_stale())


@shared_task(acks_late=True, ignore_result=True)
def compute_voter_quality(campaign_id: int) -> None:
    """The staff dashboard's voter-quality figures (agreement, flags), kept in the cache."""
    from arena.services import quality_figures

    quality_figures.compute_and_store(campaign_id)
