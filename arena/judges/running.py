"""Handing out judging work: pending pairings go to the workers in chunks, under each judge's
concurrency limit (the judging itself: arena.judges.judging).

- A verdict row is the unit of work and its ``status`` is the lock. `dispatch` moves at most
  ``max_concurrency - (queued + running)`` rows from pending to queued under the judge's row lock and
  sends them on commit, in chunks of `judging.CHUNK` pairings, one task each, to the judge backend's
  queue. A task keeps its slots busy: each pairing that finishes gives its slot to the judge's next
  pending pairing at once (claimed in the same task), for `REFILL_FOR` seconds; then the task lets
  its last pairings finish and hands the slots left to as many pending pairings in one statement
  (SKIP LOCKED on PostgreSQL), sent as one task. So a judge never has more than ``max_concurrency``
  pairings (and backend calls) in flight across all workers, a task never holds its worker for much
  longer than `REFILL_FOR`, and human voting (which needs no worker) is never blocked by a judge.
- Pairings to retry keep their slots and go out again (each batch as one task) with a countdown.
- Tasks are sent by their registered name (arena.services.dispatch): this module does not import the
  task module, which imports it.
- Embedded mode with tasks run in-process (tests, commands without a broker): `dispatch` judges the
  pending rows in place, a chunk at a time.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from arena.celery import app as celery_app
from arena.celery import task_named
from arena.core import hot_sql
from arena.judges import judging
from arena.judges.judging import ChunkOutcome
from arena.judges.models import Judge, JudgeVerdict
from arena.judges.verdict_rows import next_pending_update
from arena.services import dispatch as task_dispatch

log = logging.getLogger(__name__)

JUDGE_PAIRINGS = "arena.judges.tasks.judge_pairings"
EAGER_RETRY_WAIT = 5.0
REFILL_FOR = 10.0  # seconds a task takes on new pairings in its freed slots before handing them on
_S = JudgeVerdict.Status

_inline = threading.local()


def dispatch(judge_id: int) -> int:
    """Send pending pairings of the judge up to its concurrency limit; returns how many were sent.

    With tasks run inline (CELERY_TASK_ALWAYS_EAGER, tests and commands without a broker) the pending
    rows are judged here, a chunk at a time, and the return value is how many were judged. The
    embedded server's in-process worker takes the tasks like any worker.
    """
    if celery_app.conf.task_always_eager:  # not the setting: the embedded server turns it off at start
        return _judge_inline(judge_id)
    with transaction.atomic():
        ids, queue = take_slots(judge_id)
        if ids:
            transaction.on_commit(lambda: send_chunks(ids, queue))
    return len(ids)


def take_slots(judge_id: int) -> tuple[list[int], str]:
    """Move pending rows to queued, as many as the judge has free slots; returns their ids and the
    judge backend's queue. Call it inside a transaction: the judge's row lock orders the callers."""
    judge = Judge.objects.select_for_update().select_related("model").filter(pk=judge_id, is_active=True).first()
    if judge is None:
        return [], ""
    busy = JudgeVerdict.objects.filter(judge_id=judge_id, status__in=(_S.QUEUED, _S.RUNNING)).count()
    slots = judge.max_concurrency - busy
    if slots <= 0:
        return [], ""
    pending = JudgeVerdict.objects.filter(judge_id=judge_id, status=_S.PENDING).order_by("id")
    ids = list(pending.values_list("id", flat=True)[:slots])
    if ids:
        JudgeVerdict.objects.filter(pk__in=ids, status=_S.PENDING).update(status=_S.QUEUED, updated_at=timezone.now())
    return ids, task_dispatch.queue_for(judge.model.backend)


_NEXT_BY_VENDOR = next_pending_update("status = 'queued', updated_at = %s", "id")


def hand_off(outcome: ChunkOutcome) -> int:
    """A finished chunk's free slots (those it did not refill) go to the judge's next pending pairings
    (sent on commit, as one task); returns how many.

    Without the judge-row lock of `take_slots`: the slots are this chunk's own, so one conditional
    UPDATE of the next pending rows (SKIP LOCKED on PostgreSQL) keeps the limit. The slots of tasks
    that never came back are given out again by `requeue_stale` (beat).
    """
    if outcome.free <= 0 or outcome.judge_id is None:
        return 0
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    rows = hot_sql.fetchall(_NEXT_BY_VENDOR[connection.vendor], [now, outcome.judge_id, outcome.free])
    ids = sorted(row[0] for row in rows)
    if ids:
        transaction.on_commit(lambda: send_chunks(ids, outcome.queue))
    return len(ids)


def run_chunk(verdict_ids: list[int], *, retries_done: int = 0) -> ChunkOutcome:
    """The worker task's body: judge the chunk, refilling its slots for `REFILL_FOR` seconds and
    sending retries as they come, then hand its free slots on."""
    refill = judging.Refill(until=time.monotonic() + REFILL_FOR, send_retries=_send_retries)
    outcome = judging.judge_chunk(verdict_ids, retries_done=retries_done, refill=refill)
    hand_off(outcome)
    return outcome


def _send_retries(verdict_ids: list[int], queue: str, retries: int, countdown: float) -> None:
    send_chunks(verdict_ids, queue, retries=retries, countdown=countdown)


def send_chunks(verdict_ids: list[int], queue: str, *, retries: int = 0, countdown: float | None = None) -> None:
    """Send now, `judging.CHUNK` pairings per task; a broker outage is logged: the rows stay queued and
    `requeue_stale` sends them again."""
    task = task_named(JUDGE_PAIRINGS)
    for chunk in judging.chunks(verdict_ids):
        try:
            task.apply_async(args=[chunk, retries], queue=queue, countdown=countdown)
        except OperationalError:
            log.warning("could not send judge task for verdicts %s; the reaper will", chunk)


def _judge_inline(judge_id: int) -> int:
    if getattr(_inline, "active", False):
        return 0  # called from a pairing judged in place: the outer loop goes on
    _inline.active = True
    judged = 0
    retries: list[tuple[list[int], int, float]] = []  # (ids, retries done, countdown)
    refill = judging.Refill(
        until=float("inf"), send_retries=lambda ids, _queue, tries, countdown: retries.append((ids, tries, countdown))
    )
    try:
        while True:
            limit = Judge.objects.filter(pk=judge_id, is_active=True).values_list("max_concurrency", flat=True).first()
            pending = JudgeVerdict.objects.filter(judge_id=judge_id, status=_S.PENDING).order_by("id")
            ids = list(pending.values_list("id", flat=True)[: min(limit or 0, judging.CHUNK)])
            if not ids:
                return judged
            JudgeVerdict.objects.filter(pk__in=ids, status=_S.PENDING).update(status=_S.QUEUED)
            # One chunk whose slots take the pending pairings as they free up, then its retries.
            judged += judging.judge_chunk(ids, refill=refill).finished
            while retries:
                ids, tries, countdown = retries.pop(0)
                time.sleep(min(countdown, EAGER_RETRY_WAIT))
                judged += judging.judge_chunk(ids, retries_done=tries, refill=refill).finished
    finally:
        _inline.active = False


def requeue_stale(judge_id: int | None = None) -> int:
    """Running rows silent for ARENA_GENERATION_STALE_AFTER seconds (their worker died) and queued rows
    whose message was lost go back to pending; every judge with pending rows is dispatched again."""
    cutoff = timezone.now() - timedelta(seconds=settings.ARENA_GENERATION_STALE_AFTER)
    rows = JudgeVerdict.objects.filter(status__in=(_S.RUNNING, _S.QUEUED), updated_at__lt=cutoff)
    if judge_id is not None:
        rows = rows.filter(judge_id=judge_id)
    moved = rows.update(status=_S.PENDING, updated_at=timezone.now())
    # Every judge with pending pairings: the free slots of lost hand-offs are filled too.
    pending = JudgeVerdict.objects.filter(status=_S.PENDING)
    if judge_id is not None:
        pending = pending.filter(judge_id=judge_id)
    judges = set(pending.values_list("judge_id", flat=True).distinct())
    for pk in judges:
        dispatch(pk)
    return moved


def reset_failed(judge: Judge) -> int:
    """Failed pairings back to pending (the replies already stored are kept)."""
    return JudgeVerdict.objects.filter(judge=judge, status=_S.FAILED).update(
        status=_S.PENDING, error="", updated_at=timezone.now()
    )
