"""The Celery application, and ``task_named``: how code that a tasks module imports sends that module's
tasks (by name, so the import runs one way). Tasks live in arena.tasks and in the ``tasks`` module of
arena.leaderboards, arena.exports and arena.judges."""

from __future__ import annotations

import importlib
import os

from celery import Celery, Task
from celery.signals import worker_init

from arena import worker_resilience

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")

# Before any broker connection: a worker holding an unacknowledged task must survive a Redis restart
# (kombu's Redis channel raises AttributeError on a closed connection; arena/worker_resilience.py).
worker_resilience.install()

app = Celery("arena")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def task_named(name: str) -> Task:
    """The registered task called ``name``, "<module>.<function>" (celery.exceptions.NotRegistered
    when that module defines no such task, ModuleNotFoundError when there is no such module).

    A worker imports every tasks module when it starts; a web process may not have, so a task not
    registered yet is looked for in the module its name gives, which registers it on import. Sending
    it (``apply_async``) then behaves as with the imported task: inline when tasks are eager.
    """
    if name not in app.tasks:
        importlib.import_module(name.rpartition(".")[0])
    return app.tasks[name]


@worker_init.connect
def _check_pooled_connections(**kwargs) -> None:
    """Workers check a pooled database connection before each use (a round trip per task is cheap
    there): a task never starts on a connection that a database restart broke. Web processes skip
    the check and purge their pools when a request finds a broken connection (arena.web.middleware)."""
    from django.conf import settings

    if settings.DATABASES["default"].get("OPTIONS", {}).get("pool"):
        settings.DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
