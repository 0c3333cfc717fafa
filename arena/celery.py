"""The Celery application; tasks live in arena.tasks and arena.leaderboards.tasks."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_init

from arena import worker_resilience

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")

# Before any broker connection: a worker holding an unacknowledged task must survive a Redis restart
# (kombu's Redis channel raises AttributeError on a closed connection; arena/worker_resilience.py).
worker_resilience.install()

app = Celery("arena")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _check_pooled_connections(**kwargs) -> None:
    """Workers check a pooled database connection before each use (a round trip per task is cheap
    there): a task never starts on a connection that a database restart broke. Web processes skip
    the check and purge their pools when a request finds a broken connection (arena.web.middleware)."""
    from django.conf import settings

    if settings.DATABASES["default"].get("OPTIONS", {}).get("pool"):
        settings.DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
