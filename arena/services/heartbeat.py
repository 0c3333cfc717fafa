"""Generations in progress prove they are alive: a heartbeat on their response row.

While a process generates a response (the run that claimed it, fenced by its ``attempts``), one
thread of that process touches the row's ``updated_at`` every ARENA_GENERATION_HEARTBEAT_INTERVAL
seconds, whether or not the model is writing (a slow first token, a GPU busy with a long batch). A
"running" row whose heartbeat is older than ARENA_GENERATION_HEARTBEAT_TIMEOUT lost its worker (killed,
out of memory, its machine gone): `arena.services.generation.requeue_stale` requeues it at once, for
beat's frequent sweep and for a voter's page waiting on a live battle (arena.web.consumers). A slow but
living worker keeps its row: it beats. And should it have been presumed dead anyway (a stalled
process), the attempt fence keeps it from writing over the new run.

Measured: a live battle whose worker was killed with ``kill -9`` mid-answer finished 12 s after the
kill (a new worker starting included), a pre-generated response 8 s after; it took 15 minutes before
(docs/reliability.md).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import reduce
from operator import or_

from django.conf import settings
from django.db import close_old_connections, connection
from django.db.models import Q
from django.utils import timezone

from arena.models import Response

log = logging.getLogger(__name__)

_lock = threading.Lock()
_beating: dict[int, int] = {}  # response id -> the attempt this process runs
_thread: tuple[int, threading.Thread] | None = None  # (pid, thread): started again after a fork


@contextmanager
def beating(response_id: int, attempt: int) -> Iterator[None]:
    """Keep this run's row alive while the block runs."""
    with _lock:
        _beating[response_id] = attempt
        _ensure_thread()
    try:
        yield
    finally:
        with _lock:
            if _beating.get(response_id) == attempt:
                del _beating[response_id]


def beat_once() -> int:
    """Touch the rows of the runs in progress in this process. Returns how many rows were touched."""
    with _lock:
        runs = dict(_beating)
    if not runs:
        return 0
    mine = reduce(or_, (Q(pk=pk, attempts=attempt) for pk, attempt in runs.items()))
    return Response.objects.filter(mine, status=Response.Status.RUNNING).update(updated_at=timezone.now())


def _ensure_thread() -> None:
    global _thread
    if _thread is None or _thread[0] != os.getpid() or not _thread[1].is_alive():
        thread = threading.Thread(target=_beat_forever, name="arena-generation-heartbeat", daemon=True)
        _thread = (os.getpid(), thread)
        thread.start()


def _beat_forever() -> None:
    interval = settings.ARENA_GENERATION_HEARTBEAT_INTERVAL
    stop = threading.Event()
    while not stop.wait(interval):
        try:
            close_old_connections()
            beat_once()
        except Exception:  # the database is down: the rows go stale and are requeued, as they should
            log.warning("generation heartbeat failed", exc_info=True)
        finally:
            if not connection.in_atomic_block:
                connection.close()  # back to the pool between beats
