"""Generating responses on workers: claim, call the backend, store the result, hand out the prompt.

The Celery tasks in arena.tasks are thin shells around these functions. The rules:

- A response row is the unit of work and its ``status`` is the lock: ``queued -> running`` is a
  conditional UPDATE (:func:`claim`); whoever changes one row wins, every other delivery of the same
  task sees 0 rows and does nothing. A done response is never generated again.
- The claim increments ``attempts``, and every later write of that run is filtered on
  ``status="running", attempts=<that value>``: a worker that was presumed dead and whose response
  was requeued (:func:`requeue_stale`) can no longer overwrite the new run's result.
- Transient backend errors (``BackendError.retryable``) go back to ``queued`` and the task retries
  with exponential backoff, at least ``retry_after`` seconds when the provider asked for it.
  Permanent errors, and any error after text was streamed to a voter, mark the response failed.
- ``Response.error`` holds the error kind and the backend's message, which backends redact; we also
  redact the model's API key ourselves. Keys are read by the backend from the environment variable
  named in the model's settings (``api_key_env``) and never pass through task arguments.
- Deterministic decoding (greedy or a fixed seed) with the same model entry, backend settings,
  parameters and messages reuses a done response's content (``Response.cache_key``).
- Tasks are sent when the surrounding transaction commits, to the queue of the model's backend
  (arena.services.dispatch): ``generate_gpu`` for local models, ``generate_api`` for everything else.
- The database connection is given back while the backend streams: a slow generation must not hold
  one of the process's few pooled connections.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from arena.core.errors import ArenaError
from arena.models import Battle, Campaign, ModelEntry, Prompt, Response
from arena.rendering import render_markdown
from arena.services import dispatch, heartbeat, live_sides
from arena.services.guardrails import output_checks, usage
from arena.services.items import create_items
from arena.services.live_publisher import SidePublisher
from backends.errors import BackendError, redact
from backends.params import DecodingParams
from backends.registry import get_backend
from backends.retry import RetryPolicy

log = logging.getLogger(__name__)

# Live battles save the streamed text at most this often (a reconnecting page resumes from it).
# Every save rewrites the whole text so far: with 100 battles streaming (200 sides) 0.25 s meant
# 800 updates a second, and the streaming threads queued for pooled connections (bench/live_under_load.py).
SAVE_INTERVAL = 1.0
# Retries between tries of a response follow backends.retry.RetryPolicy: backoff from
# ARENA_GENERATION_RETRY_BACKOFF seconds, capped at BACKOFF_MAX, ARENA_GENERATION_MAX_RETRIES retries.
BACKOFF_MAX = 300.0
# A voter waits in front of a live battle: a retry that would wait longer fails it instead.
LIVE_MAX_RETRY_WAIT = 10.0
MAX_ERROR_CHARS = 2000


# -- pre-generation of prompt-set campaigns ----------------------------------------------------------


@dataclass(frozen=True)
class QueueSummary:
    created: int
    queued: int

    def __str__(self) -> str:
        return f"{self.created} new responses, {self.queued} queued for generation"


def _require_prompt_set(campaign: Campaign) -> None:
    if campaign.mode != Campaign.Mode.PROMPT_SET:
        raise ArenaError("Live campaigns generate their answers when voters write a prompt.")


def queue_missing_responses(campaign: Campaign) -> QueueSummary:
    """Create a queued response for every (prompt, active contender) that has none, and enqueue
    every queued response of the campaign. Bulk and idempotent: running it twice creates nothing new,
    and a response enqueued twice is generated once (see :func:`claim`)."""
    _require_prompt_set(campaign)
    model_ids = list(campaign.contenders.filter(is_active=True).values_list("id", flat=True))
    prompt_ids = list(campaign.prompts.values_list("id", flat=True))
    created = 0
    with transaction.atomic():
        for start in range(0, len(prompt_ids), 500):
            chunk = prompt_ids[start : start + 500]
            existing = Response.objects.filter(prompt_id__in=chunk, model_id__in=model_ids)
            have = set(existing.values_list("prompt_id", "model_id"))
            rows = [
                Response(prompt_id=p, model_id=m, status=Response.Status.QUEUED, source=Response.Source.GENERATED)
                for p in chunk
                for m in model_ids
                if (p, m) not in have
            ]
            Response.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)
            created += len(rows)
        queued = list(
            Response.objects.filter(
                prompt__campaign=campaign, model_id__in=model_ids, status=Response.Status.QUEUED
            ).values_list("id", flat=True)
        )
        dispatch.enqueue_generation(queued)
    return QueueSummary(created=created, queued=len(queued))


def retry_failed(campaign: Campaign, response_ids: Iterable[int] | None = None) -> int:
    """Queue the campaign's failed responses (or only those of ``response_ids``) again."""
    _require_prompt_set(campaign)
    failed = Response.objects.filter(prompt__campaign=campaign, status=Response.Status.FAILED)
    if response_ids is not None:
        failed = failed.filter(pk__in=list(response_ids))
    with transaction.atomic():
        ids = list(failed.values_list("id", flat=True))
        Response.objects.filter(pk__in=ids, status=Response.Status.FAILED).update(
            status=Response.Status.QUEUED, updated_at=timezone.now()
        )
        dispatch.enqueue_generation(ids)
    return len(ids)


@dataclass
class ModelProgress:
    name: str
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def done(self) -> int:
        return self.counts.get(Response.Status.DONE, 0)


@dataclass
class GenerationProgress:
    """Counts of a campaign's responses by model and status; ``expected`` = prompts x active models."""

    models: list[ModelProgress]
    totals: dict[str, int]
    expected: int

    @property
    def done(self) -> int:
        return self.totals.get(Response.Status.DONE, 0)

    @property
    def failed(self) -> int:
        return self.totals.get(Response.Status.FAILED, 0)

    @property
    def pending(self) -> int:
        return self.totals.get(Response.Status.QUEUED, 0) + self.totals.get(Response.Status.RUNNING, 0)

    @property
    def missing(self) -> int:
        return max(self.expected - sum(self.totals.values()), 0)


def campaign_progress(campaign: Campaign) -> GenerationProgress:
    """Response counts by model and status, in one grouped query."""
    contenders = list(campaign.contenders.order_by("name").values_list("id", "name", "is_active"))
    by_model = {model_id: ModelProgress(name) for model_id, name, _ in contenders}
    totals: dict[str, int] = {status: 0 for status in Response.Status.values}
    rows = (
        Response.objects.filter(prompt__campaign=campaign, model_id__in=list(by_model))
        .values_list("model_id", "status")
        .annotate(n=Count("id"))
    )
    for model_id, status, n in rows:
        by_model[model_id].counts[status] = n
        totals[status] += n
    n_active = sum(1 for _, _, active in contenders if active)
    return GenerationProgress(list(by_model.values()), totals, expected=campaign.prompts.count() * n_active)


def failed_responses(campaign: Campaign, limit: int = 100) -> list[Response]:
    return list(
        Response.objects.filter(prompt__campaign=campaign, status=Response.Status.FAILED)
        .select_related("model", "prompt")
        .order_by("model__name", "prompt_id")[:limit]
    )


# -- the stale-work reaper -----------------------------------------------------------------------------


def requeue_stale(stale_after: float | None = None, *, response_ids: Iterable[int] | None = None) -> list[int]:
    """Requeue "running" responses whose heartbeat stopped (their worker died: no beat for
    ARENA_GENERATION_HEARTBEAT_TIMEOUT seconds, see arena.services.heartbeat), and send again the tasks
    of responses "queued" for longer than ``stale_after`` seconds (ARENA_GENERATION_STALE_AFTER: their
    message was lost). ``response_ids`` looks at those rows only (a live battle's page asking for its
    sides). Returns the ids sent again."""
    stale_after = settings.ARENA_GENERATION_STALE_AFTER if stale_after is None else stale_after
    now = timezone.now()
    silent = Q(
        status=Response.Status.RUNNING,
        updated_at__lt=now - timedelta(seconds=settings.ARENA_GENERATION_HEARTBEAT_TIMEOUT),
    )
    lost = Q(status=Response.Status.QUEUED, updated_at__lt=now - timedelta(seconds=stale_after))
    rows = Response.objects.all() if response_ids is None else Response.objects.filter(pk__in=list(response_ids))
    with transaction.atomic():
        dead = list(rows.filter(silent).values_list("id", flat=True)[:1000])
        if dead:
            rows.filter(silent, pk__in=dead).update(
                status=Response.Status.QUEUED, error="requeued: its worker stopped before finishing", updated_at=now
            )
        stuck = list(rows.filter(lost).values_list("id", flat=True)[:1000])
        again = Response.objects.filter(pk__in=dead + stuck, status=Response.Status.QUEUED)
        ids = list(again.values_list("id", flat=True))
        # Touch them so that the next sweep does not send them again before a worker had a chance.
        Response.objects.filter(pk__in=ids, status=Response.Status.QUEUED).update(updated_at=now)
        dispatch.enqueue_generation(ids)
    if ids:
        log.info("requeued %d stale responses", len(ids))
    return ids


def requeue_dead_sides(battle_id: str) -> list[int]:
    """The live battle's sides whose worker died, requeued (see `requeue_stale`)."""
    sides = Battle.objects.filter(pk=battle_id).values_list("left_id", "right_id").first()
    return requeue_stale(response_ids=sides) if sides else []


# -- one generation ------------------------------------------------------------------------------------


def claim(response_id: int) -> int | None:
    """Take a queued response for this worker: returns the run's token (its ``attempts``), or None
    when another worker has it, it is finished, or it does not exist."""
    now = timezone.now()
    # A requeued response may hold part of a dead run's text: each run starts from nothing.
    won = Response.objects.filter(pk=response_id, status=Response.Status.QUEUED).update(
        status=Response.Status.RUNNING, started_at=now, updated_at=now, attempts=F("attempts") + 1, content=""
    )
    if won != 1:
        return None
    return Response.objects.filter(pk=response_id).values_list("attempts", flat=True).first()


def cache_key(model: ModelEntry, params: DecodingParams, messages: list[dict[str, Any]]) -> str:
    """sha256 of what determines a deterministic answer: the model entry, its backend and settings,
    the decoding parameters and the messages."""
    payload = {
        "model": model.pk,
        "backend": model.backend,
        "settings": model.backend_settings,
        "params": params.cache_key(),
        "messages": [{"role": m.get("role"), "content": m.get("content")} for m in messages],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class Outcome:
    """What became of a task run: ``status`` is done, failed, retry, skipped or lost (another worker
    took the response over); ``retry_in`` is the countdown when it is retry."""

    status: str
    retry_in: float | None = None


@dataclass
class Result:
    """An answer as `finish` stores it: from the backend, or a stored one reused (`cached_result`)."""

    text: str
    finish_reason: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None


class _LostOwnership(Exception):
    """The row was requeued under this worker (presumed dead); the new run owns it."""


def generate(response_id: int, *, retries_done: int = 0) -> Outcome:
    """Generate one response if it is queued: the body of the generation task.

    ``retries_done`` is how many times the task was retried already (the Celery request's count).
    """
    token = claim(response_id)
    if token is None:
        return Outcome("skipped")
    with heartbeat.beating(response_id, token):
        return _generate(response_id, token, retries_done)


def _generate(response_id: int, token: int, retries_done: int) -> Outcome:
    response = Response.objects.select_related("model", "prompt__campaign").get(pk=response_id)
    model = response.model
    side = live_sides.side_of(response)
    publisher = SidePublisher(live_sides.group_name(side.battle_id), side.side, side.turn) if side is not None else None
    if publisher is not None and token > 1:
        publisher.restart()  # an earlier run may have streamed part of an answer: the page starts over
    streamed = [False]
    try:
        params = DecodingParams.from_dict(model.params)
        messages = side.messages if side is not None else response.prompt.messages
        key = cache_key(model, params, messages)
        cached = cached_result(key, response_id) if params.is_deterministic else None
        if cached is not None:
            if publisher is not None and cached.text:
                publisher.delta(cached.text, 0)
            return finish(response, token, cached, key, params, side, publisher, messages=None)
        backend = get_backend(model.backend, model.backend_settings)
        result = _stream(response_id, token, backend, messages, params, publisher, streamed)
        return finish(response, token, result, key, params, side, publisher, messages=messages)
    except BackendError as error:
        message = redacted(f"{error.kind}: {error.message}", model)
        log.warning("generation of response %s failed: %s", response_id, message)
        delay = retry_delay(error, retries_done, live=side is not None, streamed=streamed[0])
        if delay is not None and requeue(response_id, token, f"retrying: {message}"):
            return Outcome("retry", retry_in=delay)
        return fail(response_id, token, error.kind, message, side, publisher)
    except _LostOwnership:
        return Outcome("lost")
    except Exception as error:
        from celery.exceptions import SoftTimeLimitExceeded

        if isinstance(error, SoftTimeLimitExceeded):
            return fail(response_id, token, "timeout", "timeout: over the task's time limit", side, publisher)
        try:
            fail(response_id, token, "internal", "internal: unexpected worker error (see its log)", side, publisher)
        except Exception:  # e.g. the database is gone too; the reaper requeues the row later
            log.exception("could not mark response %s failed", response_id)
        raise
    finally:
        if publisher is not None:
            publisher.close()


def _stream(response_id, token, backend, messages, params, publisher, streamed) -> Result:
    release_connection()
    parts: list[str] = []
    length = 0
    last_save = time.monotonic()
    with backend.stream(messages, params) as stream:
        for delta in stream:
            if not delta:
                continue
            parts.append(delta)
            if publisher is None:
                continue
            publisher.delta(delta, length)
            length += len(delta)
            streamed[0] = True
            now = time.monotonic()
            if now - last_save >= SAVE_INTERVAL:
                last_save = now
                if not _save_progress(response_id, token, "".join(parts)):
                    raise _LostOwnership
        result = stream.result
    return Result(
        text=result.text,
        finish_reason=result.finish_reason or "",
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        latency_ms=round(result.latency_s * 1000, 1),
        ttft_ms=round(result.ttft_s * 1000, 1) if result.ttft_s is not None else None,
    )


def cached_result(key: str, response_id: int) -> Result | None:
    """Another done response's answer with the same ``cache_key`` (deterministic decoding), or None."""
    hit = (
        Response.objects.filter(cache_key=key, status=Response.Status.DONE)
        .exclude(pk=response_id)
        .order_by("-id")
        .only("content", "finish_reason", "prompt_tokens", "completion_tokens", "latency_ms", "ttft_ms")
        .first()
    )
    if hit is None:
        return None
    return Result(
        text=hit.content,
        finish_reason=hit.finish_reason,
        prompt_tokens=hit.prompt_tokens,
        completion_tokens=hit.completion_tokens,
        latency_ms=hit.latency_ms,
        ttft_ms=hit.ttft_ms,
    )


def _owned(response_id: int, token: int):
    return Response.objects.filter(pk=response_id, status=Response.Status.RUNNING, attempts=token)


def _save_progress(response_id: int, token: int, text: str) -> bool:
    saved = _owned(response_id, token).update(content=text, updated_at=timezone.now()) == 1
    release_connection()
    return saved


def finish(response, token, result: Result, key, params, side, publisher, *, messages) -> Outcome:
    """Store the answer with its output checks (arena.services.guardrails.output_checks) and, when a backend
    was called (``messages``; None for a cached answer), its usage (arena.services.guardrails.usage)."""
    html = render_markdown(result.text)
    campaign = response.prompt.campaign
    prompt_set = side is None and campaign.mode == Campaign.Mode.PROMPT_SET
    names = {*ModelEntry.objects.filter(campaigns=campaign).values_list("name", flat=True), response.model.name}
    checks = output_checks.merge(response.checks, output_checks.check_answer(result.text, result.finish_reason, names))
    with transaction.atomic():
        if prompt_set:
            # Responses to one prompt finishing at once must not each miss the other's "done" when
            # they pair them into items: the prompt's row lock puts them one after the other.
            list(Prompt.objects.select_for_update().filter(pk=response.prompt_id).values_list("id", flat=True))
        won = _owned(response.pk, token).update(
            status=Response.Status.DONE,
            content=result.text,
            html=html,
            error="",
            finish_reason=result.finish_reason[:32],
            checks=checks,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            latency_ms=result.latency_ms,
            ttft_ms=result.ttft_ms,
            params=params.to_dict(),
            cache_key=key,
            updated_at=timezone.now(),
        )
        if won != 1:
            return Outcome("lost")
        if messages is not None:
            tokens = usage.tokens_of(messages, result.text, result.prompt_tokens, result.completion_tokens)
            usage.record(campaign.pk, response.model, *tokens)
        if side is not None:
            live_sides.record_answer(side, result.text, response.model.name)
        elif prompt_set:
            create_items(response.prompt.campaign, [response.prompt_id])
        if publisher is not None:
            transaction.on_commit(lambda: publisher.done(html, len(result.text)))
    return Outcome("done")


def fail(response_id, token, kind: str, message: str, side, publisher) -> Outcome:
    """Mark this run's response failed with ``message``; a live battle is voided and its page told
    in plain words (``live_sides.plain_error``)."""
    with transaction.atomic():
        won = _owned(response_id, token).update(
            status=Response.Status.FAILED, error=message[:MAX_ERROR_CHARS], updated_at=timezone.now()
        )
        if won != 1:
            return Outcome("lost")
        if side is not None:
            live_sides.void_battle(side)
        if publisher is not None:
            transaction.on_commit(lambda: publisher.error(live_sides.plain_error(kind)))
    return Outcome("failed")


def requeue(response_id: int, token: int, message: str) -> bool:
    """Put this run's response back in the queue for a retry; False when the run no longer owns it."""
    return (
        _owned(response_id, token).update(
            status=Response.Status.QUEUED, error=message[:MAX_ERROR_CHARS], updated_at=timezone.now()
        )
        == 1
    )


def task_retry_policy() -> RetryPolicy:
    """The retry rule between tries of a generation task (the settings are read on each call)."""
    return RetryPolicy(settings.ARENA_GENERATION_RETRY_BACKOFF, BACKOFF_MAX, settings.ARENA_GENERATION_MAX_RETRIES)


def retry_delay(error: BackendError, retries_done: int, *, live: bool, streamed: bool) -> float | None:
    """Seconds to wait before the next try, or None when the error is final: always after text was
    streamed to a voter, and for a live battle when the wait would be over LIVE_MAX_RETRY_WAIT."""
    if streamed:
        return None
    return task_retry_policy().delay(error, retries_done, max_wait=LIVE_MAX_RETRY_WAIT if live else float("inf"))


def redacted(text: str, model: ModelEntry) -> str:
    """Backends redact keys already; this is a second guard for the model's own key."""
    env_name = (model.backend_settings or {}).get("api_key_env")
    secret = os.environ.get(env_name) if isinstance(env_name, str) and env_name else None
    return redact(text, [secret])


def release_connection() -> None:
    """Give the database connection back (to the pool) unless a transaction is open."""
    if not connection.in_atomic_block:
        connection.close()
