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

import logging
import os
import random
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from arena.judges import prompting
from arena.judges.models import Judge, JudgeVerdict
from arena.services.generation import BACKOFF_MAX, cache_key, queue_for
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

    With tasks running in-process (CELERY_TASK_ALWAYS_EAGER) the pending rows are judged here, one
    after another, and the return value is how many were judged.
    """
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return _judge_inline(judge_id)
    with transaction.atomic():
        judge = Judge.objects.select_for_update().filter(pk=judge_id, is_active=True).first()
        if judge is None:
            return 0
        busy = JudgeVerdict.objects.filter(judge_id=judge_id, status__in=(_S.QUEUED, _S.RUNNING)).count()
        slots = judge.max_concurrency - busy
        if slots <= 0:
            return 0
        pending = JudgeVerdict.objects.filter(judge_id=judge_id, status=_S.PENDING).order_by("id")
        ids = list(pending.values_list("id", flat=True)[:slots])
        if not ids:
            return 0
        JudgeVerdict.objects.filter(pk__in=ids, status=_S.PENDING).update(status=_S.QUEUED, updated_at=timezone.now())
        queue = queue_for(judge.model.backend)
        transaction.on_commit(lambda: send_tasks(ids, queue))
    return len(ids)


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
    whose message was lost go back to pending, and are dispatched again."""
    cutoff = timezone.now() - timezone.timedelta(seconds=settings.ARENA_GENERATION_STALE_AFTER)
    rows = JudgeVerdict.objects.filter(status__in=(_S.RUNNING, _S.QUEUED), updated_at__lt=cutoff)
    if judge_id is not None:
        rows = rows.filter(judge_id=judge_id)
    judges = set(rows.values_list("judge_id", flat=True))
    moved = rows.update(status=_S.PENDING, updated_at=timezone.now())
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
    """done, failed, retry (with ``retry_in`` seconds), skipped (not queued) or lost (taken over)."""

    status: str
    retry_in: float | None = None


class _Lost(Exception):
    """The row was requeued under this run; the new run owns it."""


class Unparsed(Exception):
    def __init__(self, order: str) -> None:
        super().__init__(f"unparsed verdict: the {order.replace('_', '-')} reply does not end with an allowed [[X]]")


def claim(verdict_id: int) -> int | None:
    now = timezone.now()
    won = JudgeVerdict.objects.filter(pk=verdict_id, status=_S.QUEUED).update(
        status=_S.RUNNING, started_at=now, updated_at=now, attempts=F("attempts") + 1
    )
    if won != 1:
        return None
    return JudgeVerdict.objects.filter(pk=verdict_id).values_list("attempts", flat=True).first()


def _owned(verdict_id: int, token: int):
    return JudgeVerdict.objects.filter(pk=verdict_id, status=_S.RUNNING, attempts=token)


def judge_pairing_now(verdict_id: int, *, retries_done: int = 0) -> Outcome:
    """Judge one queued pairing in both orders: the body of the worker task."""
    token = claim(verdict_id)
    if token is None:
        return Outcome("skipped")
    row = JudgeVerdict.objects.select_related(
        "judge__model", "judge__campaign", "prompt", "response_lo", "response_hi"
    ).get(pk=verdict_id)
    judge = row.judge
    model = judge.model
    try:
        params = DecodingParams.from_dict(model.params)
        campaign = judge.campaign
        letters = prompting.allowed_letters(campaign.allow_tie, campaign.allow_both_bad)
        dims = [prompting.DimensionSpec(d.key, d.label, d.scale_min, d.scale_max) for d in campaign.dimensions.all()]
        answers = {"lo": row.response_lo.content, "hi": row.response_hi.content}
        backend = None
        for order in ORDERS:
            if getattr(row, f"{order}_raw"):
                continue  # stored by an earlier run
            first, second = ("lo", "hi") if order == "lo_first" else ("hi", "lo")
            messages = prompting.render(
                judge.template, row.prompt.messages, answers[first], answers[second], letters=letters, dimensions=dims
            )
            key = cache_key(model, params, messages)
            text = _cached_reply(key) if params.is_deterministic else None
            usage = (0, 0, 0)
            if text is None:
                backend = backend or get_backend(model.backend, model.backend_settings)
                _release_connection()
                result = backend.generate(messages, params)
                text = result.text
                usage = (result.prompt_tokens or 0, result.completion_tokens or 0, 1)
            letter = prompting.parse_verdict(text, letters) or ""
            cost = (usage[0] * judge.prompt_price + usage[1] * judge.completion_price) / 1e6
            saved = _owned(verdict_id, token).update(
                **{f"{order}_raw": text, f"{order}_verdict": letter, f"{order}_key": key},
                prompt_tokens=F("prompt_tokens") + usage[0],
                completion_tokens=F("completion_tokens") + usage[1],
                calls=F("calls") + usage[2],
                cost=F("cost") + cost,
                updated_at=timezone.now(),
            )
            if saved != 1:
                raise _Lost
            setattr(row, f"{order}_raw", text)
            setattr(row, f"{order}_verdict", letter)
        return _finish(row, token, letters, dims)
    except BackendError as error:
        message = _redacted(f"{error.kind}: {error.message}", model.backend_settings)
        log.warning("judging pairing %s failed: %s", verdict_id, message)
        delay = retry_delay(error, retries_done)
        if delay is not None and _set_status(verdict_id, token, _S.QUEUED, f"retrying: {message}"):
            return Outcome("retry", retry_in=delay)
        return Outcome("failed") if _set_status(verdict_id, token, _S.FAILED, message) else Outcome("lost")
    except _Lost:
        return Outcome("lost")
    except Exception as error:
        from celery.exceptions import SoftTimeLimitExceeded

        kind = "timeout: over the task's time limit" if isinstance(error, SoftTimeLimitExceeded) else None
        try:
            _set_status(verdict_id, token, _S.FAILED, kind or "internal: unexpected worker error (see its log)")
        except Exception:
            log.exception("could not mark judge verdict %s failed", verdict_id)
        if kind:
            return Outcome("failed")
        raise


def combine(lo_first: str, hi_first: str) -> tuple[str, bool]:
    """The pairing's outcome (lo, hi, tie, both_bad) from the two orders' letters, and whether they agree."""
    a, b = _MEANING["lo_first"][lo_first], _MEANING["hi_first"][hi_first]
    return (a, True) if a == b else ("tie", False)


def combine_scores(row: JudgeVerdict, dims: list[prompting.DimensionSpec]) -> dict[str, dict[str, float]]:
    """Per dimension, each model's score averaged over the orders that scored it."""
    got = {order: prompting.parse_scores(getattr(row, f"{order}_raw"), dims) for order in ORDERS}
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


def _finish(row: JudgeVerdict, token: int, letters: tuple[str, ...], dims) -> Outcome:
    for order in ORDERS:
        if not getattr(row, f"{order}_verdict"):
            # Kept with its raw text for staff; a deterministic judge would answer the same, so no retry.
            return Outcome("failed") if _set_status(row.pk, token, _S.FAILED, str(Unparsed(order))) else Outcome("lost")
    outcome, consistent = combine(row.lo_first_verdict, row.hi_first_verdict)
    won = _owned(row.pk, token).update(
        status=_S.DONE, outcome=outcome, consistent=consistent, scores=combine_scores(row, dims), error="",
        updated_at=timezone.now(),
    )  # fmt: skip
    return Outcome("done") if won == 1 else Outcome("lost")


def _set_status(verdict_id: int, token: int, status: str, error: str) -> bool:
    return (
        _owned(verdict_id, token).update(status=status, error=error[:MAX_ERROR_CHARS], updated_at=timezone.now()) == 1
    )


def _cached_reply(key: str) -> str | None:
    hit = (
        JudgeVerdict.objects.filter(Q(lo_first_key=key) | Q(hi_first_key=key))
        .values_list("lo_first_key", "lo_first_raw", "hi_first_raw")
        .first()
    )
    if hit is None:
        return None
    text = hit[1] if hit[0] == key else hit[2]
    return text or None


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


def judge_of(verdict_id: int) -> int | None:
    return JudgeVerdict.objects.filter(pk=verdict_id).values_list("judge_id", flat=True).first()
