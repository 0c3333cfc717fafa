"""Judging a chunk of queued pairings, each in both orders: the body of a worker task.

A chunk is a few pairings of one judge (at most `CHUNK`), each holding one of the judge's slots. Its
backend calls run on a process-wide thread pool, one after another per pairing (so the judge never
has more calls in flight than slots); only the task's own thread touches the database. A pairing's
slot is used again as soon as the pairing is done, not when the whole chunk is: with a `Refill`, the
task writes each batch of finished pairings (whatever finished while it was busy), claims and loads
as many of the judge's pending pairings as the batch freed (with the write, one statement on
PostgreSQL) and starts them, for `Refill.until`; then it lets its last pairings finish and hands the
slots left on (arena.judges.running). The database work is two statements per batch on PostgreSQL
(write-claim-load, reply-cache lookup) whatever its size; the task reuses its judge, model, backend
and parameters, and keeps its connection while calls come back within `HOLD_CONNECTION`.

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

import json
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
from django.db.models import F
from django.utils import timezone

from arena.core import hot_sql
from arena.judges import prompting
from arena.judges.models import Judge, JudgeVerdict
from arena.models import Campaign, Dimension, ModelEntry, Prompt, Response
from arena.services.dispatch import GPU_QUEUE, queue_for
from arena.services.generation import cache_key, task_retry_policy
from backends.base import Backend, GenerationResult
from backends.errors import BackendError, redact
from backends.params import DecodingParams
from backends.registry import get_backend

log = logging.getLogger(__name__)

CHUNK = 16  # pairings (slots) per task: the first tasks fill the judge's slots, each keeps its own busy
MAX_ERROR_CHARS = 2000
HOLD_CONNECTION = 0.05  # seconds a task waiting for calls keeps its database connection (reconnects cost CPU)
MAX_CALL_THREADS = 256  # the largest max_concurrency a judge may have
ORDERS = ("lo_first", "hi_first")
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


# -- statements ------------------------------------------------------------------------------------------

# PostgreSQL takes the ids as one array parameter (one prepared statement for every chunk size);
# SQLite gets an IN list of the chunk's size.
_IDS = {"postgresql": "= ANY(%s::bigint[])", "sqlite": "IN ({marks})"}

_CLAIM = (
    "UPDATE {judgeverdict} SET status = 'running', attempts = attempts + 1, started_at = %s, updated_at = %s "
    "WHERE id {ids} AND status = 'queued' RETURNING id, attempts"
)

# What a run reads, in one statement: the ORM's select_related query cost more CPU to build than
# the rest of the run's database work (bench/judges.py).
_LOAD_COLUMNS = (
    "v.id, v.lo_first_raw, v.lo_first_verdict, v.hi_first_raw, v.hi_first_verdict, "
    "j.id, j.template, j.prompt_price, j.completion_price, "
    "m.id, m.name, m.backend, m.backend_settings, m.params, "
    "c.id, c.allow_tie, c.allow_both_bad, c.created_at, p.messages, lo.content, hi.content"
)
_LOAD_JOINS = (
    "JOIN {judge} j ON j.id = v.judge_id JOIN {modelentry} m ON m.id = j.model_id "
    "JOIN {campaign} c ON c.id = j.campaign_id JOIN {prompt} p ON p.id = v.prompt_id "
    "JOIN {response} lo ON lo.id = v.response_lo_id JOIN {response} hi ON hi.id = v.response_hi_id"
)
_LOAD = f"SELECT {_LOAD_COLUMNS} FROM {{judgeverdict}} v {_LOAD_JOINS} WHERE v.id {{ids}} ORDER BY v.id"

# The "<> ''" terms match the partial indexes' condition, so a prepared (generic) plan can use them.
_CACHED = {
    "postgresql": hot_sql.sql(
        "SELECT lo_first_key, lo_first_raw, hi_first_key, hi_first_raw FROM {judgeverdict} "
        "WHERE (lo_first_key = ANY(%s::text[]) AND lo_first_key <> '') "
        "OR (hi_first_key = ANY(%s::text[]) AND hi_first_key <> '')",
        JudgeVerdict,
    ),
    "sqlite": hot_sql.sql(
        "SELECT lo_first_key, lo_first_raw, hi_first_key, hi_first_raw FROM {judgeverdict} "
        "WHERE (lo_first_key IN ({marks}) AND lo_first_key <> '') "
        "OR (hi_first_key IN ({marks}) AND hi_first_key <> '')",
        JudgeVerdict,
    ),
}

# Every row of a chunk in one statement, each fenced on its own token; a reply column is written only
# for the orders asked in this run (their key is set), the usage is added.
_REPLY_COLUMNS = ", ".join(
    f"{order}_{column} = CASE WHEN d.{order}_key = '' THEN v.{order}_{column} ELSE d.{order}_{column} END"
    for order in ORDERS
    for column in ("raw", "verdict", "key")
)
_STORE = hot_sql.sql(
    "UPDATE {judgeverdict} AS v SET status = d.status, outcome = d.outcome, consistent = d.consistent, "
    "scores = d.scores::jsonb, error = d.error, {replies}, "
    "prompt_tokens = v.prompt_tokens + d.prompt_tokens, completion_tokens = v.completion_tokens + "
    "d.completion_tokens, calls = v.calls + d.calls, cost = v.cost + d.cost, updated_at = %s "
    "FROM unnest(%s::bigint[], %s::int[], %s::text[], %s::text[], %s::boolean[], %s::text[], %s::text[], "
    "%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], "
    "%s::bigint[], %s::bigint[], %s::int[], %s::float8[]) "
    "AS d(id, token, status, outcome, consistent, scores, error, lo_first_raw, lo_first_verdict, lo_first_key, "
    "hi_first_raw, hi_first_verdict, hi_first_key, prompt_tokens, completion_tokens, calls, cost) "
    "WHERE v.id = d.id AND v.status = 'running' AND v.attempts = d.token RETURNING v.id",
    JudgeVerdict,
    replies=_REPLY_COLUMNS,
)


def _by_vendor(text: str, ids: list[int], *models) -> tuple[str, list[Any]]:
    """``text`` for this database with its ``{ids}`` condition, and the ids as parameters."""
    if connection.vendor == "postgresql":
        return hot_sql.sql(text, *models, ids=_IDS["postgresql"]), [ids]
    marks = ", ".join(["%s"] * len(ids))
    return hot_sql.sql(text, *models, ids=_IDS["sqlite"].format(marks=marks)), list(ids)


def _now() -> Any:
    return connection.ops.adapt_datetimefield_value(timezone.now())


def claim(verdict_ids: list[int]) -> dict[int, int]:
    """queued -> running for the chunk in one statement, incrementing ``attempts``: each claimed row's
    token by id. Rows another delivery has (or that are finished) are left out."""
    statement, ids = _by_vendor(_CLAIM, verdict_ids, JudgeVerdict)
    now = _now()
    return dict(hot_sql.fetchall(statement, [now, now, *ids]))


# The judge's next pending rows straight to running (a freed slot of this task takes them): as
# arena.judges.running's hand-off, the ids as an array built once on PostgreSQL, SKIP LOCKED.
_CLAIM_NEXT = (
    "UPDATE {judgeverdict} SET status = 'running', attempts = attempts + 1, started_at = %s, updated_at = %s "
    "WHERE status = 'pending' AND id {among}("
    "SELECT v.id FROM {judgeverdict} v JOIN {judge} j ON j.id = v.judge_id "
    "WHERE v.judge_id = %s AND v.status = 'pending' AND j.is_active ORDER BY v.id LIMIT %s{lock}){close} "
    "RETURNING id, attempts"
)
_CLAIM_NEXT_BY_VENDOR = {
    "postgresql": hot_sql.sql(
        _CLAIM_NEXT, JudgeVerdict, Judge, among="= ANY(ARRAY", lock=" FOR UPDATE OF v SKIP LOCKED", close=")"
    ),
    "sqlite": hot_sql.sql(_CLAIM_NEXT, JudgeVerdict, Judge, among="IN ", lock="", close=""),  # one writer at a time
}

# The same with the claimed rows loaded (as `load`), in one statement: PostgreSQL only.
_CLAIM_NEXT_LOAD = hot_sql.sql(
    "WITH claimed AS ({claim}) SELECT {load_columns}, claimed.attempts FROM claimed "
    "JOIN {judgeverdict} v ON v.id = claimed.id {load_joins} ORDER BY v.id",
    JudgeVerdict,
    claim=_CLAIM_NEXT_BY_VENDOR["postgresql"],
    load_columns=_LOAD_COLUMNS,
    load_joins=hot_sql.sql(_LOAD_JOINS, Judge, ModelEntry, Campaign, Prompt, Response),
)

# PostgreSQL, while a task refills: the write, and as many of the judge's next pending pairings as it
# freed (its rows written done or failed) claimed and loaded, in one statement. The first column is
# the ids written (every row has it; one row with NULLs after it when nothing was claimed).
_STORE_AND_CLAIM = hot_sql.sql(
    "WITH stored AS ({store} RETURNING v.id, v.status), claimed AS ({claim}) "
    "SELECT won.ids, x.* FROM (SELECT array_agg(id) AS ids FROM stored) won LEFT JOIN ("
    "SELECT {load_columns}, claimed.attempts FROM claimed JOIN {judgeverdict} v ON v.id = claimed.id {load_joins}"
    ") x ON true",
    JudgeVerdict,
    store=_STORE.removesuffix(" RETURNING v.id"),
    claim=_CLAIM_NEXT_BY_VENDOR["postgresql"].replace(
        "LIMIT %s", "LIMIT (SELECT count(*) FROM stored WHERE stored.status IN ('done', 'failed'))"
    ),
    load_columns=_LOAD_COLUMNS,
    load_joins=hot_sql.sql(_LOAD_JOINS, Judge, ModelEntry, Campaign, Prompt, Response),
)


def claim_next(judge_id: int, count: int) -> dict[int, int]:
    """pending -> running for up to ``count`` of the judge's next pairings (an active judge's), in one
    statement: each row's token by id."""
    now = _now()
    return dict(hot_sql.fetchall(_CLAIM_NEXT_BY_VENDOR[connection.vendor], [now, now, judge_id, count]))


def claim_next_runs(judge_id: int, count: int, known: Known | None = None) -> list[_Run]:
    """`claim_next` and `load` in one statement on PostgreSQL (the claim as a data-modifying WITH),
    one after the other elsewhere."""
    if connection.vendor != "postgresql":
        tokens = claim_next(judge_id, count)
        return load(tokens, known) if tokens else []
    now = _now()
    rows = hot_sql.fetchall(_CLAIM_NEXT_LOAD, [now, now, judge_id, count])
    return _runs(rows, {row[0]: row[-1] for row in rows}, known or Known())


# -- loading -------------------------------------------------------------------------------------------------


def _json(value: Any) -> Any:
    """A JSON column as Python data (PostgreSQL's driver decodes jsonb; SQLite gives text)."""
    return json.loads(value) if isinstance(value, str) else value


@dataclass
class _Run:
    """A claimed pairing, as the run needs it."""

    verdict_id: int
    token: int
    stored: dict[str, tuple[str, str]]  # order -> (raw, letter) from an earlier run
    judge: Judge
    model: ModelEntry
    campaign: Campaign
    messages: list[dict[str, Any]]
    answers: dict[str, str]
    replies: dict[str, _Reply] = field(default_factory=dict)  # this run's, by order
    error: BaseException | None = None
    retries_done: int = 0  # tries of this pairing that ended in a retry (ARENA_GENERATION_MAX_RETRIES)
    calls_left: int = 0  # calls it waits for (the task's thread counts them down)


@dataclass
class _Reply:
    text: str
    letter: str
    key: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0


@dataclass
class Known:
    """What a task has built already, reused by its later batches: judges, model entries,
    campaigns, backends and decoding parameters by id."""

    models: dict[int, ModelEntry] = field(default_factory=dict)
    campaigns: dict[int, Campaign] = field(default_factory=dict)
    judges: dict[int, Judge] = field(default_factory=dict)
    backends: dict[int, Backend] = field(default_factory=dict)
    params: dict[int, DecodingParams] = field(default_factory=dict)


def load(tokens: dict[int, int], known: Known | None = None) -> list[_Run]:
    """The claimed rows with their judge, model, campaign, prompt and answers: one query."""
    statement, ids = _by_vendor(_LOAD, list(tokens), JudgeVerdict, Judge, ModelEntry, Campaign, Prompt, Response)
    return _runs(hot_sql.fetchall(statement, ids), tokens, known or Known())


def _runs(rows: list[tuple], tokens: dict[int, int], known: Known) -> list[_Run]:
    models, campaigns, judges = known.models, known.campaigns, known.judges
    runs = []
    for (
        verdict_id,
        lo_raw,
        lo_letter,
        hi_raw,
        hi_letter,
        judge_id,
        template,
        prompt_price,
        completion_price,
        model_id,
        name,
        backend,
        backend_settings,
        params,
        campaign_id,
        allow_tie,
        allow_both_bad,
        created_at,
        messages,
        lo,
        hi,
        *_,
    ) in rows:
        if (model := models.get(model_id)) is None:
            model = models[model_id] = ModelEntry(
                pk=model_id, name=name, backend=backend, backend_settings=_json(backend_settings), params=_json(params)
            )
        if (campaign := campaigns.get(campaign_id)) is None:
            campaign = campaigns[campaign_id] = Campaign(
                pk=campaign_id, allow_tie=bool(allow_tie), allow_both_bad=bool(allow_both_bad), created_at=created_at
            )
        if (judge := judges.get(judge_id)) is None:
            judge = judges[judge_id] = Judge(
                pk=judge_id,
                model=model,
                campaign=campaign,
                template=template,
                prompt_price=prompt_price,
                completion_price=completion_price,
            )
        runs.append(
            _Run(
                verdict_id,
                tokens[verdict_id],
                {"lo_first": (lo_raw, lo_letter), "hi_first": (hi_raw, hi_letter)},
                judge,
                model,
                campaign,
                _json(messages),
                {"lo": lo, "hi": hi},
            )
        )
    return runs


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
    waiting: list[tuple[_Run, str]] = field(default_factory=list)

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
                run.replies[order] = _Reply(text, letter, self.key)
            else:
                run.replies[order] = _Reply(
                    text, letter, self.key, result.prompt_tokens or 0, result.completion_tokens or 0, 1
                )


def plan_calls(runs: list[_Run], known: Known | None = None) -> list[_Call]:
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
    cached = _cached_replies(
        [c.key for slot, c in calls.items() if slot == c.key]  # deterministic ones only
    )
    left = []
    for slot, call in calls.items():
        if slot == call.key and call.key in cached:
            call.answer(cached[call.key], None)
        else:
            left.append(call)
    return left


def _cached_replies(keys: list[str]) -> dict[str, str]:
    """Stored replies by cache key, for those of ``keys`` any judge run has; one query."""
    if not keys:
        return {}
    if connection.vendor == "postgresql":
        rows = hot_sql.fetchall(_CACHED["postgresql"], [keys, keys])
    else:
        marks = ", ".join(["%s"] * len(keys))
        rows = hot_sql.fetchall(_CACHED["sqlite"].format(marks=marks), [*keys, *keys])
    wanted = set(keys)
    found: dict[str, str] = {}
    for lo_key, lo_raw, hi_key, hi_raw in rows:
        for key, raw in ((lo_key, lo_raw), (hi_key, hi_raw)):
            if key in wanted and raw:
                found.setdefault(key, raw)
    return found


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
        self.running: dict[int, _Run] = {}  # by verdict id: claimed and not written yet

    def start(self, runs: list[_Run]) -> list[_Run]:
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

    def wait(self) -> list[_Run]:
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

    def forget(self, runs: list[_Run]) -> None:
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


def _conclude(runs: list[_Run], tally: _Tally, refill: Refill | None, known: Known | None) -> list[_Run]:
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
    fresh: list[_Run] = []
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


def _failure(run: _Run, message: str) -> dict[str, Any]:
    return {"status": _S.FAILED, "outcome": "", "consistent": None, "scores": {}, "error": message}


def _verdict(run: _Run) -> dict[str, Any]:
    """The combined verdict, or a failure when a reply cannot be read (kept with its raw text for
    staff; a deterministic judge would answer the same, so no retry)."""
    replies = {order: run.replies.get(order) or _Reply(*run.stored[order], "") for order in ORDERS}
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


# -- the write -----------------------------------------------------------------------------------------------


def store(runs: list[_Run], rows: list[dict[str, Any]]) -> set[int]:
    """Write each run's row (``status``, ``outcome``, ``consistent``, ``scores``, ``error``), its new
    replies and their usage and cost; the ids written (a run that lost its row is left out)."""
    if connection.vendor == "postgresql":
        return _store_bulk(runs, rows)
    return {run.verdict_id for run, row in zip(runs, rows, strict=True) if _store_one(run, row)}


def _usage(run: _Run) -> tuple[int, int, int, float]:
    new = [r for r in run.replies.values() if r.key]
    prompt_tokens = sum(r.prompt_tokens for r in new)
    completion_tokens = sum(r.completion_tokens for r in new)
    cost = (prompt_tokens * run.judge.prompt_price + completion_tokens * run.judge.completion_price) / 1e6
    return prompt_tokens, completion_tokens, sum(r.calls for r in new), cost


def _new_reply(run: _Run, order: str) -> _Reply:
    reply = run.replies.get(order)
    return reply if reply is not None and reply.key else _Reply("", "", "")


def store_and_claim(
    runs: list[_Run], rows: list[dict[str, Any]], judge_id: int, known: Known
) -> tuple[set[int], list[_Run]]:
    """`store`, then as many of the judge's next pending pairings as the rows written done or failed
    freed, claimed and loaded (`claim_next_runs`): one statement on PostgreSQL. Returns the ids
    written and the new runs."""
    if connection.vendor != "postgresql":
        won = store(runs, rows)
        freed = sum(run.verdict_id in won and row["status"] != _S.QUEUED for run, row in zip(runs, rows, strict=True))
        return won, claim_next_runs(judge_id, freed, known) if freed else []
    now = _now()
    result = hot_sql.fetchall(_STORE_AND_CLAIM, [now, *_store_columns(runs, rows), now, now, judge_id])
    won = set(result[0][0] or ())
    claimed = sorted((row[1:] for row in result if row[1] is not None), key=lambda row: row[0])
    return won, _runs(claimed, {row[0]: row[-1] for row in claimed}, known)


def _store_bulk(runs: list[_Run], rows: list[dict[str, Any]]) -> set[int]:
    return {row[0] for row in hot_sql.fetchall(_STORE, [_now(), *_store_columns(runs, rows)])}


def _store_columns(runs: list[_Run], rows: list[dict[str, Any]]) -> list[list[Any]]:
    """The write's parameters: one array per column of ``_STORE``'s unnest."""
    columns: list[list[Any]] = [[] for _ in range(17)]
    for run, row in zip(runs, rows, strict=True):
        lo, hi = _new_reply(run, "lo_first"), _new_reply(run, "hi_first")
        values = (
            run.verdict_id,
            run.token,
            row["status"],
            row["outcome"],
            row["consistent"],
            json.dumps(row["scores"]),
            row["error"][:MAX_ERROR_CHARS],
            lo.text,
            lo.letter,
            lo.key,
            hi.text,
            hi.letter,
            hi.key,
            *_usage(run),
        )
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    return columns


def _store_one(run: _Run, row: dict[str, Any]) -> bool:
    values: dict[str, Any] = {**row, "error": row["error"][:MAX_ERROR_CHARS], "updated_at": timezone.now()}
    for order, reply in run.replies.items():
        if reply.key:
            values.update({f"{order}_raw": reply.text, f"{order}_verdict": reply.letter, f"{order}_key": reply.key})
    prompt_tokens, completion_tokens, calls, cost = _usage(run)
    if run.replies:
        values.update(
            prompt_tokens=F("prompt_tokens") + prompt_tokens,
            completion_tokens=F("completion_tokens") + completion_tokens,
            calls=F("calls") + calls,
            cost=F("cost") + cost,
        )
    owned = JudgeVerdict.objects.filter(pk=run.verdict_id, status=_S.RUNNING, attempts=run.token)
    return owned.update(**values) == 1


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
