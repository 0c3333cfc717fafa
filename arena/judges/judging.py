"""Judging a chunk of queued pairings, each in both orders: the body of a worker task.

A chunk is a few pairings of one judge (at most `CHUNK`), each holding one of the judge's slots. Its
backend calls run on a process-wide thread pool, one after another per pairing (so the judge never
has more calls in flight than slots); only the task's own thread touches the database. A pairing's
slot is used again as soon as the pairing is done, not when the whole chunk is: with a `Refill`, the
task writes each batch of finished pairings (whatever finished while it was busy), claims and loads
as many of the judge's pending pairings as the batch freed (with the write, one statement on
PostgreSQL) and starts them, for `Refill.until`; then it lets its last pairings finish and hands the
slots left on (arena.judges.running). The database work is two statements per batch on PostgreSQL
(write-claim-load, reply-cache lookup: arena.judges.verdict_rows) whatever its size; the task reuses
its judge, model, backend and parameters, and keeps its connection while calls come back within
`HOLD_CONNECTION`.

The rules (as for response generation, arena.services.generation):

- ``queued -> running`` is a conditional UPDATE that increments ``attempts`` (the run's token); the
  result write is filtered on that token, so a second delivery does nothing and a requeued run's late
  write is ignored. A done pairing is never judged again.
- The replies that came back are stored with the row's new status, whatever happened to the other
  order: a retry asks only for the missing call. After a failed call, the pairing's calls not yet
  started are not made (a rate limit would refuse them too).
- Deterministic decoding with the same judge model, settings, parameters and rendered messages (which
  hold the template and both answers) reuses a stored reply: no second call (``*_key`` columns), and
  pairings of one batch asking the same question share one call.
- Transient backend errors (rate limits with Retry-After, timeouts, stalls) put the row back to queued
  for a retry after an exponential backoff, never shorter than Retry-After, up to
  ARENA_GENERATION_MAX_RETRIES; then, and on permanent errors, the row fails with the (redacted)
  error. A reply that does not end with an allowed verdict fails the row with its raw text: it is not
  retried (deterministic judges would say the same) and never guessed.
- Local models (the GPU queue) are called one after another in the task's thread.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from django.db import connection

from arena.judges import prompting
from arena.judges.models import JudgeVerdict
from arena.judges.verdict_rows import (
    ORDERS,
    Known,
    Reply,
    Run,
    cached_replies,
    claim,
    load,
    store,
    store_and_claim,
)
from arena.models import Campaign, Dimension
from arena.services.dispatch import GPU_QUEUE, queue_for
from arena.services.generation import cache_key, task_retry_policy
from backends.base import Backend, GenerationResult
from backends.errors import BackendError, redact
from backends.params import DecodingParams
from backends.registry import get_backend

log = logging.getLogger(__name__)

CHUNK = 16  # pairings (slots) per task: the first tasks fill the judge's slots, each keeps its own busy
HOLD_CONNECTION = 0.05  # seconds a task waiting for calls keeps its database connection (reconnects cost CPU)
MAX_CALL_THREADS = 256  # the largest max_concurrency a judge may have
# In model terms: what each letter means for each order.
_MEANING = {
    "lo_first": {"A": "lo", "B": "hi", "C": "tie", "D": "both_bad"},
    "hi_first": {"A": "hi", "B": "lo", "C": "tie", "D": "both_bad"},
}
_S = JudgeVerdict.Status


@dataclass(frozen=True)
class ChunkOutcome:
    """What became of a chunk: counts per outcome (``lost``: taken over by a newer run, ``skipped``:
    not queued any more), the ids retried (the longest countdown: ``retry_in``), the pending pairings
    it took on in its freed slots (``refilled``), and where its slots left go (``judge_id``,
    ``queue``; see arena.judges.running.hand_off)."""

    judge_id: int | None = None
    queue: str = ""
    done: int = 0
    failed: int = 0
    lost: int = 0
    skipped: int = 0
    retry: tuple[int, ...] = ()
    retry_in: float = 0.0
    refilled: int = 0

    @property
    def finished(self) -> int:
        """Pairings that left the judge's slots (done or failed)."""
        return self.done + self.failed

    @property
    def free(self) -> int:
        """Slots freed and not taken again by this chunk: the ones to hand on."""
        return self.finished - self.refilled


SendRetries = Callable[[list[int], str, int, float], None]


@dataclass(frozen=True)
class Refill:
    """How a chunk keeps its slots busy: until ``until`` (time.monotonic), each freed slot takes the
    judge's next pending pairing at once; each batch's pairings to retry are sent at once with
    ``send_retries(ids, queue, retries, countdown)`` (they keep their slots)."""

    until: float
    send_retries: SendRetries


def unparsed_message(order: str) -> str:
    return f"unparsed verdict: the {order.replace('_', '-')} reply does not end with an allowed [[X]]"


_dimensions: dict[tuple[int, Any], tuple[float, list[prompting.DimensionSpec]]] = {}
DIMENSIONS_TTL = 10.0  # seconds a worker process reuses a campaign's dimensions (a query per chunk otherwise)


def campaign_dimensions(campaign: Campaign) -> list[prompting.DimensionSpec]:
    key = (campaign.pk, campaign.created_at)
    cached = _dimensions.get(key)
    if cached is not None and time.monotonic() - cached[0] < DIMENSIONS_TTL:
        return cached[1]
    rows = Dimension.objects.filter(campaign_id=campaign.pk).order_by("order", "id")
    dims = [prompting.DimensionSpec(d.key, d.label, d.scale_min, d.scale_max) for d in rows]
    if len(_dimensions) > 1000:
        _dimensions.clear()
    _dimensions[key] = (time.monotonic(), dims)
    return dims


# -- the calls -----------------------------------------------------------------------------------------------


@dataclass
class _Call:
    """One backend call and the (order of the) pairings waiting for it."""

    messages: list[dict[str, str]]
    key: str
    backend: Backend
    params: DecodingParams
    letters: tuple[str, ...]
    waiting: list[tuple[Run, str]] = field(default_factory=list)

    def make(self) -> None:
        if all(run.error is not None for run, _ in self.waiting):
            return  # every pairing that wanted it failed already
        try:
            result = self.backend.generate(self.messages, self.params)
            self.answer(result.text, result)
        except Exception as error:
            for run, _ in self.waiting:
                run.error = run.error or error

    def answer(self, text: str, result: GenerationResult | None) -> None:
        letter = prompting.parse_verdict(text, self.letters) or ""
        for i, (run, order) in enumerate(self.waiting):
            if result is None or i > 0:  # a cached or shared reply costs nothing
                run.replies[order] = Reply(text, letter, self.key)
            else:
                run.replies[order] = Reply(
                    text, letter, self.key, result.prompt_tokens or 0, result.completion_tokens or 0, 1
                )


def plan_calls(runs: list[Run], known: Known | None = None) -> list[_Call]:
    """The calls the batch needs: each pairing's orders not stored yet, less the replies the cache
    has (answered here), one call per distinct question when decoding is deterministic."""
    calls: dict[str, _Call] = {}
    known = known or Known()
    backends = known.backends
    deterministic = False
    for run in runs:
        model, campaign = run.model, run.campaign
        try:  # settings or parameters a backend refuses fail the pairing, for staff to see
            if (params := known.params.get(model.pk)) is None:
                params = known.params[model.pk] = DecodingParams.from_dict(model.params)
            if model.pk not in backends:
                backends[model.pk] = get_backend(model.backend, model.backend_settings)
        except BackendError as error:
            run.error = error
            continue
        letters = prompting.allowed_letters(campaign.allow_tie, campaign.allow_both_bad)
        dims = campaign_dimensions(campaign)
        for order in ORDERS:
            if run.stored[order][0]:
                continue  # stored by an earlier run
            first, second = ("lo", "hi") if order == "lo_first" else ("hi", "lo")
            messages = prompting.render(
                run.judge.template,
                run.messages,
                run.answers[first],
                run.answers[second],
                letters=letters,
                dimensions=dims,
            )
            key = cache_key(model, params, messages)
            # A sampling judge is asked again even for the same question: a new sample each time.
            slot = key if params.is_deterministic else f"{key}:{run.verdict_id}:{order}"
            deterministic = deterministic or params.is_deterministic
            if slot not in calls:
                calls[slot] = _Call(messages, key, backends[model.pk], params, letters)
            calls[slot].waiting.append((run, order))
    if not deterministic:
        return list(calls.values())
    cached = cached_replies(
        [c.key for slot, c in calls.items() if slot == c.key]  # deterministic ones only
    )
    left = []
    for slot, call in calls.items():
        if slot == call.key and call.key in cached:
            call.answer(cached[call.key], None)
        else:
            left.append(call)
    return left


_pool_lock = threading.Lock()
_pool: tuple[int, ThreadPoolExecutor] | None = None


def call_pool() -> ThreadPoolExecutor:
    """The process's thread pool for backend calls (re-created after a fork: a prefork worker child)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():
            _pool = (os.getpid(), ThreadPoolExecutor(MAX_CALL_THREADS, thread_name_prefix="judge-call"))
        return _pool[1]


class _Calls:
    """A chunk's calls in flight: each pairing's calls one after another on the call pool (in the
    task's thread when ``sequential``); a made call comes back to the task's thread, which counts
    down the pairings waiting for it (a call shared by pairings asking the same question counts for
    each)."""

    def __init__(self, sequential: bool, known: Known) -> None:
        self.sequential = sequential
        self.known = known
        self.made: queue.SimpleQueue[_Call] = queue.SimpleQueue()
        self.running: dict[int, Run] = {}  # by verdict id: claimed and not written yet

    def start(self, runs: list[Run]) -> list[Run]:
        """Plan and start the runs' calls; returns the runs that need none (already finished)."""
        for run in runs:
            self.running[run.verdict_id] = run
        calls = plan_calls(runs, self.known)
        by_first: dict[int, list[_Call]] = {}
        for call in calls:
            for run, _ in call.waiting:
                run.calls_left += 1
            by_first.setdefault(call.waiting[0][0].verdict_id, []).append(call)
        for own in by_first.values():
            if self.sequential:
                self._make(own)
            else:
                call_pool().submit(self._make, own)
        return [run for run in runs if run.calls_left == 0]

    def _make(self, calls: list[_Call]) -> None:
        for call in calls:
            try:
                call.make()
            except BaseException as error:  # a bug: the pairings fail with it, the task goes on
                for run, _ in call.waiting:
                    run.error = run.error or error
            finally:
                self.made.put(call)

    def wait(self) -> list[Run]:
        """Block until a call is made (the database connection goes back to the pool when none is
        within `HOLD_CONNECTION` seconds); the runs that calls made since finished."""
        try:
            made = [self.made.get(timeout=HOLD_CONNECTION)]
        except queue.Empty:
            _release_connection()
            made = [self.made.get()]
        while True:
            try:
                made.append(self.made.get_nowait())
            except queue.Empty:
                break
        finished = []
        for call in made:
            for run, _ in call.waiting:
                run.calls_left -= 1
                if run.calls_left == 0:
                    finished.append(run)
        return finished

    def forget(self, runs: list[Run]) -> None:
        for run in runs:
            self.running.pop(run.verdict_id, None)


# -- one chunk -----------------------------------------------------------------------------------------------


def judge_chunk(verdict_ids: list[int], *, retries_done: int = 0, refill: Refill | None = None) -> ChunkOutcome:
    """Judge the queued pairings ``verdict_ids`` (one judge's) in both orders; see the module docstring.

    Each batch of finished pairings is written in one statement as soon as the task's thread is
    free; with ``refill``, their slots take the judge's next pending pairings until ``refill.until``
    and retries are sent at once (without, they are in the outcome for the caller). The connection
    goes back to the pool when no call comes back for `HOLD_CONNECTION` seconds.
    """
    tokens = claim(verdict_ids)
    skipped = len(verdict_ids) - len(tokens)
    if not tokens:
        return ChunkOutcome(skipped=skipped)
    known = Known()
    runs = load(tokens, known)
    if not runs:  # deleted since the claim
        return ChunkOutcome(skipped=len(verdict_ids))
    for run in runs:
        run.retries_done = retries_done
    first = runs[0]
    tally = _Tally(judge_id=first.judge.pk, queue=queue_for(first.model.backend), skipped=skipped)
    calls = _Calls(sequential=tally.queue == GPU_QUEUE, known=known)
    try:
        finished = calls.start(runs)
        while calls.running:
            if not finished:
                finished = calls.wait()
                continue
            refilling = refill is not None and time.monotonic() < refill.until
            fresh = _conclude(finished, tally, refill, known if refilling else None)
            calls.forget(finished)
            tally.refilled += len(fresh)
            finished = calls.start(fresh) if fresh else []
    except BaseException as error:
        from celery.exceptions import SoftTimeLimitExceeded

        left = list(calls.running.values())
        over = isinstance(error, SoftTimeLimitExceeded)
        if not over:
            log.exception("judging pairings %s failed", sorted(run.verdict_id for run in left))
        message = "timeout: over the task's time limit" if over else "internal: unexpected worker error (see its log)"
        try:
            tally.failed += len(store(left, [_failure(run, message) for run in left]))
        except Exception:
            log.exception("could not mark judge verdicts %s failed", sorted(run.verdict_id for run in left))
        if over:
            return tally.outcome()
        raise
    return tally.outcome()


@dataclass
class _Tally:
    """A chunk's outcome so far."""

    judge_id: int
    queue: str
    skipped: int = 0
    done: int = 0
    failed: int = 0
    lost: int = 0
    refilled: int = 0
    retry: list[int] = field(default_factory=list)
    retry_in: float = 0.0

    def outcome(self) -> ChunkOutcome:
        return ChunkOutcome(
            judge_id=self.judge_id,
            queue=self.queue,
            done=self.done,
            failed=self.failed,
            lost=self.lost,
            skipped=self.skipped,
            retry=tuple(self.retry),
            retry_in=self.retry_in,
            refilled=self.refilled,
        )


def _conclude(runs: list[Run], tally: _Tally, refill: Refill | None, known: Known | None) -> list[Run]:
    """Each finished pairing's new state (done, failed or retry), written in one statement; the
    retries sent (with ``refill``) or noted in ``tally``. With ``known`` (refilling), the slots freed
    (done or failed) take the judge's next pending pairings: returns their runs."""
    rows = []
    delays: dict[int, float] = {}
    for run in runs:
        if run.error is None:
            rows.append(_verdict(run))
            continue
        error = run.error
        if not isinstance(error, BackendError):
            log.error("judging pairing %s failed", run.verdict_id, exc_info=error)
            rows.append(_failure(run, "internal: unexpected worker error (see its log)"))
            continue
        message = _redacted(f"{error.kind}: {error.message}", run.model.backend_settings)
        log.warning("judging pairing %s failed: %s", run.verdict_id, message)
        delay = retry_delay(error, run.retries_done)
        if delay is None:
            rows.append(_failure(run, message))
        else:
            # The replies that did come back are stored with the retry: it asks only for the rest.
            rows.append({**_failure(run, f"retrying: {message}"), "status": _S.QUEUED})
            delays[run.verdict_id] = delay
    fresh: list[Run] = []
    if known is None:
        won = store(runs, rows)
    else:
        won, fresh = store_and_claim(runs, rows, tally.judge_id, known)
    retries: dict[int, tuple[list[int], list[float]]] = {}  # by the retry's number
    for run, row in zip(runs, rows, strict=True):
        if run.verdict_id not in won:
            tally.lost += 1
        elif row["status"] == _S.DONE:
            tally.done += 1
        elif row["status"] == _S.FAILED:
            tally.failed += 1
        else:
            group = retries.setdefault(run.retries_done + 1, ([], []))
            group[0].append(run.verdict_id)
            group[1].append(delays[run.verdict_id])
    for number, (ids, waits) in sorted(retries.items()):
        tally.retry.extend(ids)
        tally.retry_in = max(tally.retry_in, *waits)
        if refill is not None:
            refill.send_retries(ids, tally.queue, number, max(waits))
    return fresh


def _failure(run: Run, message: str) -> dict[str, Any]:
    return {"status": _S.FAILED, "outcome": "", "consistent": None, "scores": {}, "error": message}


def _verdict(run: Run) -> dict[str, Any]:
    """The combined verdict, or a failure when a reply cannot be read (kept with its raw text for
    staff; a deterministic judge would answer the same, so no retry)."""
    replies = {order: run.replies.get(order) or Reply(*run.stored[order], "") for order in ORDERS}
    for order in ORDERS:
        if not replies[order].letter:
            return _failure(run, unparsed_message(order))
    outcome, consistent = combine(replies["lo_first"].letter, replies["hi_first"].letter)
    raw = {order: replies[order].text for order in ORDERS}
    dims = campaign_dimensions(run.campaign)
    return {
        "status": _S.DONE,
        "outcome": outcome,
        "consistent": consistent,
        "scores": combine_scores(raw, dims),
        "error": "",
    }


def combine(lo_first: str, hi_first: str) -> tuple[str, bool]:
    """The pairing's outcome (lo, hi, tie, both_bad) from the two orders' letters, and whether they agree."""
    a, b = _MEANING["lo_first"][lo_first], _MEANING["hi_first"][hi_first]
    return (a, True) if a == b else ("tie", False)


def combine_scores(raw: dict[str, str], dims: list[prompting.DimensionSpec]) -> dict[str, dict[str, float]]:
    """Per dimension, each model's score averaged over the orders that scored it."""
    got = {order: prompting.parse_scores(raw[order], dims) for order in ORDERS}
    out: dict[str, dict[str, float]] = {}
    for d in dims:
        lo, hi = [], []
        if d.key in got["lo_first"]:
            lo.append(got["lo_first"][d.key]["A"])
            hi.append(got["lo_first"][d.key]["B"])
        if d.key in got["hi_first"]:
            hi.append(got["hi_first"][d.key]["A"])
            lo.append(got["hi_first"][d.key]["B"])
        if lo:
            out[d.key] = {"lo": sum(lo) / len(lo), "hi": sum(hi) / len(hi)}
    return out


# -- helpers ---------------------------------------------------------------------------------------------------


def retry_delay(error: BackendError, retries_done: int) -> float | None:
    """Seconds before the next try, or None when the error is final: generation's rule
    (backends.retry.RetryPolicy from the ARENA_GENERATION_* settings)."""
    return task_retry_policy().delay(error, retries_done)


def _redacted(text: str, backend_settings: dict) -> str:
    env_name = (backend_settings or {}).get("api_key_env")
    secret = os.environ.get(env_name) if isinstance(env_name, str) and env_name else None
    return redact(text, [secret])


def _release_connection() -> None:
    """Give the database connection back while the judge thinks, unless a transaction is open."""
    if not connection.in_atomic_block:
        connection.close()


def chunks(ids: Iterable[int], size: int = CHUNK) -> list[list[int]]:
    """``ids`` in lists of at most ``size``."""
    ids = list(ids)
    return [ids[i : i + size] for i in range(0, len(ids), size)]
