"""Celery tasks of the arena: thin shells around arena.services (generation, gpu_batches, quality_figures).

Services send these tasks by name (arena.services.dispatch), never by importing this module.
``generate_response`` goes to ``generate_api`` or ``generate_gpu`` by the model's backend
(``dispatch.queue_for``); on the GPU queue a pre-generated response leads a batch of its model's queued
responses (``gpu_batches``); it is idempotent, so a second delivery, a duplicate from the reaper or a
redelivery after a lost worker is harmless. ``reap_stale_responses`` runs on beat.
"""

from __future__ import annotations

import time

from celery import shared_task

from arena.services import generation, gpu_batches, quality_figures
from arena.task_options import generation_task

# In-process mode (CELERY_TASK_ALWAYS_EAGER, no broker to hold a delayed retry) a retry waits in place,
# at most this long.
EAGER_RETRY_WAIT = 5.0


@generation_task
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
    quality_figures.compute_and_store(campaign_id)
