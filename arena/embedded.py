"""The embedded mode's worker and beat: threads of the web process, fed without a broker.

In the distributed mode Celery workers and beat are processes of their own, fed through Redis. In the
embedded mode (`make run`: no REDIS_URL) the ASGI server starts the same Celery worker code in a thread
(a thread pool consuming every queue) and beat's scheduler in another, both fed through kombu's
in-memory transport. So tasks keep their countdowns, retries and schedule exactly as in the
distributed mode: a live battle's start request returns at once while both answers stream, the
after-vote recompute waits out its debounce, and beat's sweep replaces sandwich intervals with
bootstrap ones, reaps stale generations and refreshes what the dashboard shows.

Processes that start no server (management commands, the test suite) keep executing tasks eagerly
(``CELERY_TASK_ALWAYS_EAGER``). ``ARENA_IN_PROCESS_WORKERS`` switches this off (tests set it false).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any

from django.conf import settings

log = logging.getLogger(__name__)

# Every queue a distributed deployment has a worker for (docker-compose.yml, Procfile).
QUEUES = ("default", "ratings", "generate_api", "generate_gpu")

_lock = threading.Lock()
_state: dict[str, Any] = {}


def server_loop() -> asyncio.AbstractEventLoop | None:
    """The ASGI server's event loop in this process, once the embedded runtime has started in it."""
    if _state.get("pid") == os.getpid():
        return _state.get("loop")
    return None


def start(loop: asyncio.AbstractEventLoop | None = None) -> bool:
    """Start the worker and beat threads of this process (once). Returns True if this call started them."""
    if not settings.ARENA_IN_PROCESS_WORKERS:
        return False
    with _lock:
        if _state.get("pid") == os.getpid():
            return False
        from celery import beat

        from arena.celery import app

        app.conf.task_always_eager = False  # from now on tasks go to the thread below, not inline
        started = threading.Event()
        threading.Thread(target=_run_worker, args=(app, started), name="arena-embedded-worker", daemon=True).start()
        started.wait(10)  # the worker object exists (it is built in its thread: Django's fixup is sync-only)
        scheduler = beat.EmbeddedService(app, thread=True, schedule_filename=settings.CELERY_BEAT_SCHEDULE_FILENAME)
        scheduler.start()
        _state.update(pid=os.getpid(), loop=loop, beat=scheduler)
    log.info(
        "embedded mode: worker (%d threads) and beat started in process %d",
        settings.ARENA_IN_PROCESS_CONCURRENCY,
        os.getpid(),
    )
    return True


def _run_worker(app: Any, started: threading.Event) -> None:
    worker = app.WorkController(
        pool_cls="threads",
        concurrency=settings.ARENA_IN_PROCESS_CONCURRENCY,
        queues=list(QUEUES),
        hostname=f"embedded-{os.getpid()}@localhost",
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
        loglevel=logging.getLevelName(logging.getLogger().getEffectiveLevel()),
    )
    _state["worker"] = worker
    started.set()
    worker.start()


def stop() -> None:
    """Stop the threads (server shutdown): running tasks finish, queued ones are left to the reaper."""
    with _lock:
        if _state.get("pid") != os.getpid():
            return
        _state["beat"].stop()
        _state["worker"].stop(in_sighandler=False)
        _state.clear()


class EmbeddedRuntime:
    """ASGI middleware that starts the embedded worker and beat with the server (lifespan startup, or
    the first connection for servers without lifespan events) and stops them at shutdown."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            start(asyncio.get_running_loop())
            return await self.app(scope, receive, send)
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                start(asyncio.get_running_loop())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.get_running_loop().run_in_executor(None, stop)
                await send({"type": "lifespan.shutdown.complete"})
                return
