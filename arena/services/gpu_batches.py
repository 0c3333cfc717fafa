"""Pre-generation in batches: a GPU task generates up to ``max_batch_size`` queued responses of its model at once.

The task of a queued response of a prompt-set campaign whose model runs locally (the transformers
backend, ``max_batch_size`` above 1, default 8) leads a batch:

- It claims its own response, then up to ``max_batch_size - 1`` other queued pre-generation responses
  of the same model entry, oldest first, each with the conditional UPDATE of a single generation
  (`generation.claim`): a response is claimed by one run only, and the tasks of those taken along find
  them running and do nothing. Each claimed row keeps its own attempt token, so heartbeats, the final
  write, requeues and failures stay per row and fenced exactly as in `arena.services.generation`.
- Deterministic answers already stored are reused per row (`generation.cache_key`); the others go to
  the backend's ``generate_many`` as one left-padded batch (each row with its own token limit and stop
  strings; greedy rows give the text they give alone).
- A transient error requeues every row of the batch and the leading task retries with backoff,
  claiming them again; a permanent error (or the retries spent) fails each row with the message.

Live battles never batch: their answers stream to a voter one by one.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from typing import Any

from arena.models import Campaign, Response
from arena.services import dispatch, generation, heartbeat
from arena.services.dispatch import GPU_BACKENDS
from arena.services.generation import Outcome
from backends.errors import BackendError
from backends.params import DecodingParams
from backends.registry import get_backend

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 8  # the transformers backend's own default max_batch_size


def generate(response_id: int, *, retries_done: int = 0) -> Outcome:
    """The generation task's body: a batch led by this response when it is a queued pre-generation of a
    local model that batches, else one generation (`generation.generate`)."""
    found = _batching_model(response_id)
    if found is None:
        return generation.generate(response_id, retries_done=retries_done)
    model_id, size = found
    token = generation.claim(response_id)
    if token is None:
        return Outcome("skipped")
    runs = {response_id: token, **_claim_more(model_id, response_id, size - 1)}
    with ExitStack() as beats:
        for rid, attempt in runs.items():
            beats.enter_context(heartbeat.beating(rid, attempt))
        return _generate_batch(response_id, runs, retries_done)


def _pre_generation(model_id: int | None = None):
    rows = Response.objects.filter(
        status=Response.Status.QUEUED,
        prompt__campaign__mode=Campaign.Mode.PROMPT_SET,
        model__backend__in=sorted(GPU_BACKENDS),
    )
    return rows if model_id is None else rows.filter(model_id=model_id)


def _batching_model(response_id: int) -> tuple[int, int] | None:
    """(model id, batch size) when the response is a queued pre-generation of a model that batches."""
    found = _pre_generation().filter(pk=response_id).values_list("model_id", "model__backend_settings").first()
    if found is None:
        return None
    model_id, backend_settings = found
    size = (backend_settings or {}).get("max_batch_size", DEFAULT_BATCH_SIZE)
    if isinstance(size, bool) or not isinstance(size, int) or size <= 1:
        return None  # one at a time (an invalid setting is reported by the backend on that path)
    return model_id, size


def _claim_more(model_id: int, leader: int, n: int) -> dict[int, int]:
    """Claim up to ``n`` more queued pre-generation responses of the model: {response id: attempt}."""
    claimed: dict[int, int] = {}
    if n <= 0:
        return claimed
    candidates = _pre_generation(model_id).exclude(pk=leader).order_by("id").values_list("id", flat=True)
    for rid in candidates[: 2 * n]:  # some may be claimed by another worker meanwhile
        token = generation.claim(rid)
        if token is not None:
            claimed[rid] = token
            if len(claimed) == n:
                break
    return claimed


def _generate_batch(leader: int, runs: dict[int, int], retries_done: int) -> Outcome:
    responses = Response.objects.select_related("model", "prompt__campaign").in_bulk(list(runs))
    model = responses[leader].model
    outcomes: dict[int, Outcome] = {}
    pending: list[tuple[Response, list[dict[str, Any]], str]] = []
    try:
        params = DecodingParams.from_dict(model.params)
        for rid in runs:
            response = responses[rid]
            messages = response.prompt.messages
            key = generation.cache_key(model, params, messages)
            cached = generation.cached_result(key, rid) if params.is_deterministic else None
            if cached is not None:
                outcomes[rid] = generation.finish(response, runs[rid], cached, key, params, None, None, messages=None)
            else:
                pending.append((response, messages, key))
        if pending:
            backend = get_backend(model.backend, model.backend_settings)
            generation.release_connection()  # no pooled connection held while the GPU works
            results = backend.generate_many([messages for _, messages, _ in pending], params)
            for (response, messages, key), result in zip(pending, results, strict=True):
                outcomes[response.pk] = generation.finish(
                    response, runs[response.pk], _stored(result), key, params, None, None, messages=messages
                )
    except BackendError as error:
        message = generation.redacted(f"{error.kind}: {error.message}", model)
        log.warning("batched generation of %d responses failed: %s", len(runs), message)
        delay = generation.retry_delay(error, retries_done, live=False, streamed=False)
        for rid in runs.keys() - outcomes.keys():
            if delay is not None and generation.requeue(rid, runs[rid], f"retrying: {message}"):
                outcomes[rid] = Outcome("retry", retry_in=delay)
            else:
                outcomes[rid] = generation.fail(rid, runs[rid], error.kind, message, None, None)
        _send_again([rid for rid, o in outcomes.items() if o.status == "retry" and rid != leader], leader, outcomes)
    except Exception as error:
        from celery.exceptions import SoftTimeLimitExceeded

        kind, message = (
            ("timeout", "timeout: over the task's time limit")
            if isinstance(error, SoftTimeLimitExceeded)
            else ("internal", "internal: unexpected worker error (see its log)")
        )
        for rid in runs.keys() - outcomes.keys():
            try:
                outcomes[rid] = generation.fail(rid, runs[rid], kind, message, None, None)
            except Exception:  # e.g. the database is gone too; the reaper requeues the rows later
                log.exception("could not mark response %s failed", rid)
        if kind == "internal":
            raise
    return outcomes.get(leader, Outcome("lost"))


def _send_again(requeued: list[int], leader: int, outcomes: dict[int, Outcome]) -> None:
    """Rows requeued for a retry come back with the leader's retry, which claims them again; when the
    leader itself is finished (a stored answer), their own tasks are sent again instead."""
    if requeued and outcomes.get(leader, Outcome("lost")).status != "retry":
        dispatch.enqueue_generation(requeued)


def _stored(result: Any) -> Any:
    """A backend result in the form `generation.finish` stores."""
    return generation.Result(
        text=result.text,
        finish_reason=result.finish_reason or "",
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        latency_ms=round(result.latency_s * 1000, 1),
        ttft_ms=None,
    )
