"""Sending work to the workers: tasks are looked up by their registered name (arena.celery.task_named).

Services never import the task modules (those import the services): they name the task, and the app's
registry gives the task object, so sending behaves exactly as calling it would. With
CELERY_TASK_ALWAYS_EAGER (tests, management commands) the task runs inline; in the embedded mode the
server's in-process worker takes it from the in-memory broker; in the distributed mode it goes to
Redis, to the queue given (else to the queue of CELERY_TASK_ROUTES).

Generation tasks go to the queue of their model's backend: ``generate_gpu`` for local models, whose
workers hold a GPU, ``generate_api`` for everything else. They are sent when the surrounding
transaction commits; a broker outage is logged, not raised: the rows stay queued and the reaper
(``generation.requeue_stale``) sends them again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import transaction
from kombu.exceptions import OperationalError

from arena.celery import task_named
from arena.models import Response

log = logging.getLogger(__name__)

API_QUEUE = "generate_api"
GPU_QUEUE = "generate_gpu"
GPU_BACKENDS = frozenset({"transformers"})
GENERATE_RESPONSE = "arena.tasks.generate_response"
COMPUTE_VOTER_QUALITY = "arena.tasks.compute_voter_quality"


def queue_for(backend_kind: str) -> str:
    """The Celery queue for a model's backend: local GPU models have their own workers."""
    return GPU_QUEUE if backend_kind in GPU_BACKENDS else API_QUEUE


def send(name: str, args: Sequence[Any], *, queue: str | None = None) -> None:
    """Send the task ``name`` now (inline when tasks are eager); ``queue`` overrides its route."""
    options = {"queue": queue} if queue is not None else {}
    task_named(name).apply_async(args=list(args), **options)


def enqueue_generation(response_ids: Iterable[int]) -> None:
    """Send one generation task per response once the current transaction commits."""
    ids = list(response_ids)
    if ids:
        transaction.on_commit(lambda: send_generation(ids))


def send_generation(response_ids: list[int]) -> None:
    """Send the generation tasks now, each to its backend's queue. A broker outage is logged, not
    raised: the rows stay queued and the reaper sends them again."""
    kinds = dict(Response.objects.filter(pk__in=response_ids).values_list("id", "model__backend"))
    for response_id in response_ids:
        if response_id not in kinds:
            continue
        try:
            send(GENERATE_RESPONSE, [response_id], queue=queue_for(kinds[response_id]))
        except OperationalError:
            log.warning("could not send generation task for response %s; the reaper will", response_id)
