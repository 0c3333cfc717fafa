"""Celery task options shared by the task modules.

``generation_task`` is the decorator of every task that calls a model (a generation, a judge's
verdict): such a task is acknowledged only once it finished and is redelivered when its worker is
lost (each is idempotent: its row's status is the lock), is retried as often as the service decides
(ARENA_GENERATION_MAX_RETRIES, through ``self.retry``), stops at the generation time limits, and
keeps no result (the row holds it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import shared_task
from django.conf import settings


def generation_task(func: Callable[..., Any]) -> Any:
    """``shared_task`` with the options of a task that calls a model; the task is bound (``self``)."""
    return shared_task(
        bind=True,
        acks_late=True,
        reject_on_worker_lost=True,
        max_retries=None,  # the service decides (ARENA_GENERATION_MAX_RETRIES)
        soft_time_limit=settings.ARENA_GENERATION_SOFT_TIME_LIMIT,
        time_limit=settings.ARENA_GENERATION_TIME_LIMIT,
        ignore_result=True,
    )(func)
