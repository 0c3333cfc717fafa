"""Judging on workers: hand out pending pairings under each judge's concurrency limit, judge one
pairing in both orders, store what came back.

The rules, as for response generation (arena.services.generation):

- A verdict row is the unit of work and its ``status`` is the lock. `dispatch` moves at most
  ``max_concurrency - (queued + running)`` rows from pending to queued under the judge's row lock and
  sends their tasks on commit, to the judge backend's queue; each finished task dispatches again. So
  a judge never has more than ``max_concurrency`` pairings in flight across all workers, and human
  voting (which needs no worker) is never blocked by a judge.
- ``queued -> running`` is a conditional UPDATE that increments ``attempts`` (the run's token); every
  later write is filtered on that token, so a second delivery does nothing and a requeued run's late
  writes are ignored. A done pairing is never judged again.
- Each order's reply is stored as soon as it arrives: a failure of the second call keeps the first,
  and the retry only makes the missing call.
- Deterministic decoding with the same judge model, settings, parameters and rendered messages (which
  hold the template and both answers) reuses a stored reply: no second call (``*_key`` columns).
- Transient backend errors (rate limits with Retry-After, timeouts, stalls) requeue the row with
  exponential backoff, never shorter than Retry-After, up to ARENA_GENERATION_MAX_RETRIES; then, and
  on permanent errors, the row fails with the (redacted) error. A reply that does not end with an
  allowed verdict fails the row with its raw text: it is not retried (deterministic judges would say
  the same) and never guessed.
- Embedded mode (tasks run in-process): `dispatch` judges the pending rows one after another in place.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from arena.celery import app as celery_app
from arena.judges import prompting
from arena.judges.models import Judge, JudgeVerdict
from arena.models import Campaign, Dimension, ModelEntry, Prompt, Response
from arena.services import hot_sql
from arena.services.dispatch import queue_for
from arena.services.generation import BACKOFF_MAX, cache_key
from backends.errors import BackendError, redact
from backends.params import DecodingParams
from backends.registry import get_backend

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 2000
EAGER_RETRY_WAIT = 5.0
ORDERS = ("lo_first", "hi_first")
# In model terms: what each letter means for each order.
_MEANING = {
    "lo_first": {"A": "lo", "B": "hi", "C": "tie", "D": "both_bad"},
    "hi_first": {"A": "hi", "B": "lo", "C": "tie", "D": "both_bad"},
}
_S = JudgeVerdict.Status

_inline = threading.local()


# -- handing out -----------------------------------------------------------------------------------------


def dispatch(judge_id: int) -> int:
    """Send pending pairings of the judge up to its concurrency limit; returns how many were sent.

    With tasks run inline (CELERY_TASK_ALWAYS_EAGER, tests and commands without a broker) the pending
    rows are judged here, one after another, and the return value is how many were judged. The
    embedded server's in-process worker takes the tasks like any worker.
    """
    if celery_app.conf.task_always_eager:  # not the setting: the embedded server turns it off at start
        return _judge_inline(judge_id)
    with transaction.atomic():
        ids, queue = take_slots(judge_id)
        if ids:
            transaction.on_commit(lambda: send_tasks(ids, queue))
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
    return ids, queue_for(judge.model.backend)


def hand_off(outcome: Outcome) -> int:
    """A finished pairing's slot goes to the judge's next pending pairing (sent on commit).

    Without the judge-row lock of `take_slots`: the slot is this task's own, so one conditional
    UPDATE of the next pending row (SKIP LOCKED on PostgreSQL) keeps the limit. The slots of tasks
    that never came back are given out again by `requeue_stale` (beat).
    """
    if outcome.status not in ("done", "failed") or outcome.judge_id is None:
        return 0
    row = hot_sql.fetchone(_NEXT_BY_VENDOR[connection.vendor], [_now(), outcome.judge_id])
    if row is None:
        return 0
    ids = [row[0]]
    transaction.on_commit(lambda: send_tasks(ids, outcome.queue))
    return 1


def send_tasks(verdict_ids: list[int], queue: str) -> None:
    """Send now; a broker outage is logged: the rows stay queued and `requeue_stale` sends them again."""
    from kombu.exceptions import OperationalError

    from arena.judges.tasks import judge_pairing

    for verdict_id in verdict_ids:
        try:
            judge_pairing.apply_async(args=[verdict_id], queue=queue)
        except OperationalError:
            log.warning("could not send judge task for verdict %s; the reaper will", verdict_id)


def _judge_inline(judge_id: int) -> int:
    if getattr(_inline, "active", False):
        return 0  # called from a pairing judged in place: the outer loop goes on
    _inline.active = True
    judged = 0
    try:
        while True:
            ids = list(
                JudgeVerdict.objects.filter(judge_id=judge_id, judge__is_active=True, status=_S.PENDING)
                .order_by("id")
                .values_list("id", flat=True)[:500]
            )
            if not ids:
                return judged
            JudgeVerdict.objects.filter(pk__in=ids, status=_S.PENDING).update(status=_S.QUEUED)
            for verdict_id in ids:
                retries = 0
                while (outcome := judge_pairing_now(verdict_id, retries_done=retries)).status == "retry":
                    time.sleep(min(outcome.retry_in or 0.0, EAGER_RETRY_WAIT))
                    retries += 1
                judged += 1
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


# -- one pairing -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """done, failed, retry (with ``retry_in`` seconds), skipped (not queued) or lost (taken over);
    ``judge_id`` and ``queue`` say where the freed slot goes (see `hand_off`)."""

    status: str
    retry_in: float | None = None
    judge_id: int | None = None
    queue: str = ""


class _Lost(Exception):
    """The row was requeued under this run; the new run owns it."""


def unparsed_message(order: str) -> str:
    return f"unparsed verdict: the {order.replace('_', '-')} reply does not end with an allowed [[X]]"


_CLAIM = hot_sql.sql(
    "UPDATE {judgeverdict} SET status = 'running', attempts = attempts + 1, started_at = %s, updated_at = %s "
    "WHERE id = %s AND status = 'queued' RETURNING attempts",
    JudgeVerdict,
)
_NEXT = (
    "UPDATE {judgeverdict} SET status = 'queued', updated_at = %s WHERE status = 'pending' AND id = ("
    "SELECT v.id FROM {judgeverdict} v JOIN {judge} j ON j.id = v.judge_id "
    "WHERE v.judge_id = %s AND v.status = 'pending' AND j.is_active ORDER BY v.id LIMIT 1{lock}) RETURNING id"
)
_NEXT_BY_VENDOR = {
    "postgresql": hot_sql.sql(_NEXT, JudgeVerdict, Judge, lock=" FOR UPDATE OF v SKIP LOCKED"),
    "sqlite": hot_sql.sql(_NEXT, JudgeVerdict, Judge, lock=""),  # one writer at a time anyway
}


def _now() -> Any:
    return connection.ops.adapt_datetimefield_value(timezone.now())


def claim(verdict_id: int) -> int | None:
    """queued -> running in one statement, incrementing ``attempts``: the run's token, or None when
    another delivery has the row (or it is finished)."""
    now = _now()
    row = hot_sql.fetchone(_CLAIM, [now, now, verdict_id])
    return None if row is None else row[0]


def _owned(verdict_id: int, token: int):
    return JudgeVerdict.objects.filter(pk=verdict_id, status=_S.RUNNING, attempts=token)


_dimensions: dict[tuple[int, Any], tuple[float, list[prompting.DimensionSpec]]] = {}
DIMENSIONS_TTL = 10.0  # seconds a worker process reuses a campaign's dimensions (a query per pairing otherwise)


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


@dataclass
class _Reply:
    text: str
    letter: str
    key: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0


# What a run reads, in one statement: the ORM's select_related query cost more CPU to build than
# the rest of the run's database work (bench/judges.py).
_LOAD = hot_sql.sql(
    "SELECT v.lo_first_raw, v.lo_first_verdict, v.hi_first_raw, v.hi_first_verdict, "
    "j.id, j.template, j.prompt_price, j.completion_price, "
    "m.id, m.name, m.backend, m.backend_settings, m.params, "
    "c.id, c.allow_tie, c.allow_both_bad, c.created_at, p.messages, lo.content, hi.content "
    "FROM {judgeverdict} v JOIN {judge} j ON j.id = v.judge_id JOIN {modelentry} m ON m.id = j.model_id "
    "JOIN {campaign} c ON c.id = j.campaign_id JOIN {prompt} p ON p.id = v.prompt_id "
    "JOIN {response} lo ON lo.id = v.response_lo_id JOIN {response} hi ON hi.id = v.response_hi_id "
    "WHERE v.id = %s",
    JudgeVerdict,
    Judge,
    ModelEntry,
    Campaign,
    Prompt,
    Response,
)


def _json(value: Any) -> Any:
    """A JSON column as Python data (PostgreSQL's driver decodes jsonb; SQLite gives text)."""
    return json.loads(value) if isinstance(value, str) else value


@dataclass
class _Run:
    """A claimed pairing, as the run needs it."""

    stored: dict[str, tuple[str, str]]  # order -> (raw, letter) from an earlier run
    judge: Judge
    model: ModelEntry
    campaign: Campaign
    messages: list[dict[str, Any]]
    answers: dict[str, str]


def load(verdict_id: int) -> _Run:
    (
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
    ) = hot_sql.fetchone(_LOAD, [verdict_id])
    model = ModelEntry(
        pk=model_id, name=name, backend=backend, backend_settings=_json(backend_settings), params=_json(params)
    )
    campaign = Campaign(
        pk=campaign_id, allow_tie=bool(allow_tie), allow_both_bad=bool(allow_both_bad), created_at=created_at
    )
    judge = Judge(
        pk=judge_id,
        model=model,
        campaign=campaign,
        template=template,
        prompt_price=prompt_price,
        completion_price=completion_price,
    )
    return _Run(
        {"lo_first": (lo_raw, lo_letter), "hi_first": (hi_raw, hi_letter)},
        judge,
        model,
        campaign,
        _json(messages),
        {"lo": lo, "hi": hi},
    )


def judge_pairing_now(verdict_id: int, *, retries_done: int = 0) -> Outcome:
    """Judge one queued pairing in both orders: the body of the worker task.

    Two writes when all goes well (the claim, the result), whatever the number of calls.
    """
    token = claim(verdict_id)
    if token is None:
        return Outcome("skipped")
    run = load(verdict_id)
    judge, model, campaign = run.judge, run.model, run.campaign
    where = {"judge_id": judge.pk, "queue": queue_for(model.backend)}
    replies: dict[str, _Reply] = {}
    try:
        params = DecodingParams.from_dict(model.params)
        letters = prompting.allowed_letters(campaign.allow_tie, campaign.allow_both_bad)
        dims = campaign_dimensions(campaign)
        answers = run.answers
        wanted: dict[str, tuple[list[dict[str, str]], str]] = {}
        for order in ORDERS:
            if run.stored[order][0]:
                continue  # stored by an earlier run
            first, second = ("lo", "hi") if order == "lo_first" else ("hi", "lo")
            messages = prompting.render(
                judge.template, run.messages, answers[first], answers[second], letters=letters, dimensions=dims
            )
            wanted[order] = (messages, cache_key(model, params, messages))
        cached = _cached_replies([key for _, key in wanted.values()]) if params.is_deterministic and wanted else {}
        backend = None
        for order, (messages, key) in wanted.items():
            if key in cached:
                text = cached[key]
                replies[order] = _Reply(text, prompting.parse_verdict(text, letters) or "", key)
                continue
            backend = backend or get_backend(model.backend, model.backend_settings)
            _release_connection()
            result = backend.generate(messages, params)
            replies[order] = _Reply(
                result.text,
                prompting.parse_verdict(result.text, letters) or "",
                key,
                result.prompt_tokens or 0,
                result.completion_tokens or 0,
                1,
            )
        for order in ORDERS:
            if order not in replies:
                replies[order] = _Reply(*run.stored[order], "")
        return Outcome(_finish(verdict_id, token, judge, replies, dims), **where)
    except BackendError as error:
        message = _redacted(f"{error.kind}: {error.message}", model.backend_settings)
        log.warning("judging pairing %s failed: %s", verdict_id, message)
        delay = retry_delay(error, retries_done)
        # The replies that did come back are stored with the new status: a retry asks only for the rest.
        retrying = f"retrying: {message}"
        if delay is not None and _store(verdict_id, token, judge, replies, status=_S.QUEUED, error=retrying):
            return Outcome("retry", retry_in=delay, **where)
        won = _store(verdict_id, token, judge, replies, status=_S.FAILED, error=message)
        return Outcome("failed" if won else "lost", **where)
    except Exception as error:
        from celery.exceptions import SoftTimeLimitExceeded

        kind = "timeout: over the task's time limit" if isinstance(error, SoftTimeLimitExceeded) else None
        try:
            _store(
                verdict_id,
                token,
                judge,
                replies,
                status=_S.FAILED,
                error=kind or "internal: unexpected worker error (see its log)",
            )
        except Exception:
            log.exception("could not mark judge verdict %s failed", verdict_id)
        if kind:
            return Outcome("failed", **where)
        raise


def _store(verdict_id: int, token: int, judge: Judge, replies: dict[str, _Reply], **fields) -> bool:
    """One write: the run's new replies, their usage and cost, and ``fields``; False when the run lost the row."""
    values: dict = {"updated_at": timezone.now(), **fields}
    if "error" in values:
        values["error"] = values["error"][:MAX_ERROR_CHARS]
    new = [(order, r) for order, r in replies.items() if r.key]
    for order, reply in new:
        values.update({f"{order}_raw": reply.text, f"{order}_verdict": reply.letter, f"{order}_key": reply.key})
    prompt_tokens = sum(r.prompt_tokens for _, r in new)
    completion_tokens = sum(r.completion_tokens for _, r in new)
    if new:
        values.update(
            prompt_tokens=F("prompt_tokens") + prompt_tokens,
            completion_tokens=F("completion_tokens") + completion_tokens,
            calls=F("calls") + sum(r.calls for _, r in new),
            cost=F("cost") + (prompt_tokens * judge.prompt_price + completion_tokens * judge.completion_price) / 1e6,
        )
    return _owned(verdict_id, token).update(**values) == 1


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


def _finish(verdict_id: int, token: int, judge: Judge, replies: dict[str, _Reply], dims) -> str:
    """Store the replies with the combined verdict, or as a failure when one cannot be read."""
    for order in ORDERS:
        if not replies[order].letter:
            # Kept with its raw text for staff; a deterministic judge would answer the same, so no retry.
            won = _store(verdict_id, token, judge, replies, status=_S.FAILED, error=unparsed_message(order))
            return "failed" if won else "lost"
    outcome, consistent = combine(replies["lo_first"].letter, replies["hi_first"].letter)
    raw = {order: replies[order].text for order in ORDERS}
    won = _store(
        verdict_id,
        token,
        judge,
        replies,
        status=_S.DONE,
        outcome=outcome,
        consistent=consistent,
        scores=combine_scores(raw, dims),
        error="",
    )
    return "done" if won else "lost"


# The "<> ''" terms match the partial indexes' condition, so a prepared (generic) plan can use them.
_CACHED = {
    n: hot_sql.sql(
        "SELECT lo_first_key, lo_first_raw, hi_first_key, hi_first_raw FROM {judgeverdict} "
        f"WHERE (lo_first_key IN ({marks}) AND lo_first_key <> '') "
        f"OR (hi_first_key IN ({marks}) AND hi_first_key <> '') LIMIT {2 * n}",
        JudgeVerdict,
    )
    for n, marks in ((1, "%s"), (2, "%s, %s"))
}


def _cached_replies(keys: list[str]) -> dict[str, str]:
    """Stored replies by cache key, for those of ``keys`` (one or two) any judge run has; one query."""
    found: dict[str, str] = {}
    for lo_key, lo_raw, hi_key, hi_raw in hot_sql.fetchall(_CACHED[len(keys)], [*keys, *keys]):
        for key, raw in ((lo_key, lo_raw), (hi_key, hi_raw)):
            if key in keys and raw:
                found.setdefault(key, raw)
    return found


def retry_delay(error: BackendError, retries_done: int) -> float | None:
    """Seconds before the next try, or None when the error is final."""
    if not error.retryable or retries_done >= settings.ARENA_GENERATION_MAX_RETRIES:
        return None
    delay = min(BACKOFF_MAX, settings.ARENA_GENERATION_RETRY_BACKOFF * 2**retries_done) * random.uniform(0.5, 1.0)
    if error.retry_after is not None:
        delay = max(delay, error.retry_after)
    return delay


def _redacted(text: str, backend_settings: dict) -> str:
    env_name = (backend_settings or {}).get("api_key_env")
    secret = os.environ.get(env_name) if isinstance(env_name, str) and env_name else None
    return redact(text, [secret])


def _release_connection() -> None:
    """Give the database connection back while the judge thinks, unless a transaction is open."""
    if not connection.in_atomic_block:
        connection.close()
