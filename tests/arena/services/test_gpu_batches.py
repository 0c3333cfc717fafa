"""Pre-generation in batches on the GPU queue, with a real tiny transformers model built by the test.

Tasks run in-process (CELERY_TASK_ALWAYS_EAGER in the test settings); the backend's batch history is
the ground truth for "how many generate calls, of how many rows".
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from arena.models import Campaign, Item, ModelEntry, Prompt, Response  # noqa: E402
from arena.services import generation, gpu_batches  # noqa: E402
from arena.tasks import generate_response  # noqa: E402
from backends import get_backend  # noqa: E402
from backends.errors import BackendError  # noqa: E402
from backends.transformers_local import TransformersBackend, unload_all  # noqa: E402
from tests.tiny_chat_model import PAIRS, ask, build  # noqa: E402

pytestmark = [pytest.mark.django_db, pytest.mark.gpu]

QUESTIONS = [q for q, _ in PAIRS] + [
    "Tell me about Arena please, in detail.",
    "What is two plus two plus two?",
    "Hello!",
    "Name two fast animals.",
    "What does a fox do?",
    "Is Arena fast?",
]
PARAMS = {"do_sample": False, "max_new_tokens": 20}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model gains nothing from threads on a busy machine
    directory = tmp_path_factory.mktemp("tiny-chat-gpt2-pregeneration")
    build(directory)
    yield directory
    torch.set_num_threads(before)
    unload_all()


def local_model(model_dir: Path, name: str = "Tiny", **settings) -> ModelEntry:
    backend_settings = {"model_path": str(model_dir), "device": "cpu", "batch_wait_ms": 0, **settings}
    return ModelEntry.objects.create(
        name=name, backend="transformers", backend_settings=backend_settings, params=PARAMS
    )


def prompt_set(slug: str, models: list[ModelEntry], texts: list[str]) -> Campaign:
    campaign = Campaign.objects.create(slug=slug, title=slug, status="active", mode="prompt_set")
    campaign.contenders.set(models)
    for i, text in enumerate(texts):
        Prompt.objects.create(campaign=campaign, external_id=f"{slug}-{i}", messages=ask(text))
    return campaign


def queue(campaign: Campaign, django_capture_on_commit_callbacks) -> list[int]:
    """Create the queued responses without running their tasks (the test delivers them)."""
    with django_capture_on_commit_callbacks(execute=False):
        generation.queue_missing_responses(campaign)
    return list(Response.objects.filter(prompt__campaign=campaign).order_by("id").values_list("id", flat=True))


def backend_of(model: ModelEntry) -> TransformersBackend:
    return get_backend(model.backend, model.backend_settings)


def test_queued_responses_are_generated_in_batches_with_the_texts_of_single_calls(
    model_dir, django_capture_on_commit_callbacks
):
    model = local_model(model_dir, max_batch_size=4)
    other = local_model(model_dir, name="Other")  # same weights, default batch size 8, never in Tiny's batches
    campaign = prompt_set("batched", [model, other], QUESTIONS)
    ids = queue(campaign, django_capture_on_commit_callbacks)
    backend = backend_of(model)
    singles = {q: backend.generate(ask(q), PARAMS) for q in QUESTIONS}  # one at a time, as before
    history = len(backend.batch_history())

    statuses = [generate_response.delay(rid).get() for rid in ids]  # every task delivered, in order

    sizes = backend.batch_history()[history:]
    assert sorted(sizes, reverse=True) == [8, 4, 4, 2, 2]  # 10 prompts per model entry: 4+4+2 and 8+2
    assert statuses.count("done") == 5 and statuses.count("skipped") == len(ids) - 5
    rows = Response.objects.filter(prompt__campaign=campaign).select_related("prompt", "model")
    assert {r.status for r in rows} == {"done"}
    for r in rows:
        single = singles[r.prompt.messages[0]["content"]]
        assert (r.content, r.finish_reason, r.completion_tokens) == (
            single.text,
            single.finish_reason,
            single.completion_tokens,
        )
        assert r.attempts == 1 and r.html and r.cache_key
    assert Item.objects.filter(campaign=campaign).count() == len(QUESTIONS)  # prompts handed out as before
    assert [generate_response.delay(rid).get() for rid in ids[:3]] == ["skipped"] * 3  # idempotent
    assert backend.batch_history()[history:] == sizes  # no model call for a second delivery


def test_a_response_claimed_elsewhere_is_left_to_its_worker(model_dir, django_capture_on_commit_callbacks):
    model = local_model(model_dir, max_batch_size=8)
    campaign = prompt_set("claimed", [model], QUESTIONS[:5])
    ids = queue(campaign, django_capture_on_commit_callbacks)
    elsewhere = generation.claim(ids[2])  # another GPU worker took this one

    assert generate_response.delay(ids[0]).get() == "done"

    statuses = dict(Response.objects.filter(pk__in=ids).values_list("id", "status"))
    assert statuses == {rid: ("running" if rid == ids[2] else "done") for rid in ids}
    assert Response.objects.get(pk=ids[2]).attempts == elsewhere == 1


def test_stored_greedy_answers_are_reused_row_by_row(model_dir, django_capture_on_commit_callbacks):
    model = local_model(model_dir, max_batch_size=8)
    first = prompt_set("first", [model], QUESTIONS[:2])
    for rid in queue(first, django_capture_on_commit_callbacks):
        generate_response.delay(rid).get()
    backend = backend_of(model)
    history = len(backend.batch_history())
    again = prompt_set("again", [model], QUESTIONS[:3])  # two prompts already answered, one new

    ids = queue(again, django_capture_on_commit_callbacks)
    assert generate_response.delay(ids[0]).get() == "done"

    assert backend.batch_history()[history:] == [1]  # only the new prompt went to the model
    assert set(Response.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"done"}


def test_a_transient_error_requeues_the_batch_and_the_retry_claims_it_again(
    model_dir, django_capture_on_commit_callbacks, monkeypatch, settings
):
    settings.ARENA_GENERATION_RETRY_BACKOFF = 0.01
    model = local_model(model_dir, max_batch_size=8)
    campaign = prompt_set("transient", [model], QUESTIONS[:4])
    ids = queue(campaign, django_capture_on_commit_callbacks)
    real = TransformersBackend.generate_many
    calls = []

    def out_of_memory_once(self, conversations, params=None):  # a fault injected into the real backend
        calls.append(len(conversations))
        if len(calls) == 1:
            raise BackendError("server_error", "the local model ran out of memory", retryable=True)
        return real(self, conversations, params)

    monkeypatch.setattr(TransformersBackend, "generate_many", out_of_memory_once)

    assert generate_response.delay(ids[0]).get() == "done"

    assert calls == [4, 4]  # the whole batch again, claimed again by the retry
    rows = list(Response.objects.filter(pk__in=ids).values_list("status", "attempts", "error"))
    assert rows == [("done", 2, "")] * 4


def test_a_row_taken_over_mid_batch_keeps_the_new_runs_result(
    model_dir, django_capture_on_commit_callbacks, monkeypatch
):
    """The reaper requeued one row of a running batch (its heartbeat was presumed dead) and another worker
    claimed it: the batch's late write of that row is fenced off; the other rows are stored."""
    model = local_model(model_dir, max_batch_size=8)
    campaign = prompt_set("takeover", [model], QUESTIONS[:3])
    ids = queue(campaign, django_capture_on_commit_callbacks)
    real = TransformersBackend.generate_many
    taken: list[int | None] = []

    def reaped_meanwhile(self, conversations, params=None):
        Response.objects.filter(pk=ids[1]).update(status="queued")  # what requeue_stale does to a silent row
        taken.append(generation.claim(ids[1]))  # and a second worker's run owns it now
        return real(self, conversations, params)

    monkeypatch.setattr(TransformersBackend, "generate_many", reaped_meanwhile)

    assert generate_response.delay(ids[0]).get() == "done"

    rows = {r.pk: r for r in Response.objects.filter(pk__in=ids)}
    assert taken == [2]
    assert (rows[ids[1]].status, rows[ids[1]].attempts, rows[ids[1]].content) == ("running", 2, "")
    assert rows[ids[0]].status == rows[ids[2]].status == "done"


def test_a_permanent_error_fails_every_row_of_the_batch(tmp_path, django_capture_on_commit_callbacks):
    model = local_model(tmp_path / "missing", max_batch_size=8, local_files_only=True)
    campaign = prompt_set("permanent", [model], QUESTIONS[:3])
    ids = queue(campaign, django_capture_on_commit_callbacks)

    assert generate_response.delay(ids[0]).get() == "failed"

    rows = Response.objects.filter(pk__in=ids)
    assert {r.status for r in rows} == {"failed"}
    assert all("could not load the model" in r.error and r.attempts == 1 for r in rows)


def test_one_at_a_time_when_the_model_does_not_batch(model_dir, django_capture_on_commit_callbacks):
    model = local_model(model_dir, max_batch_size=1)
    campaign = prompt_set("single", [model], QUESTIONS[:3])
    ids = queue(campaign, django_capture_on_commit_callbacks)

    assert gpu_batches.generate(ids[0]).status == "done"

    statuses = Response.objects.filter(pk__in=ids).order_by("id").values_list("status", flat=True)
    assert list(statuses) == ["done", "queued", "queued"]
