"""Generation on workers, with a real OpenAI-compatible HTTP server on 127.0.0.1 as the model.

Tasks run in-process here (CELERY_TASK_ALWAYS_EAGER in the test settings); what the server records
is the ground truth for "how many times was the model called".
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery.exceptions import NotRegistered
from celery.signals import before_task_publish
from django.core.management import call_command
from django.utils import timezone

from arena.celery import app as celery_app
from arena.celery import task_named
from arena.models import Campaign, Item, ModelEntry, Prompt, Response
from arena.services import dispatch, generation, heartbeat
from arena.tasks import generate_response
from tests.protocol_server import expected_reply

pytestmark = pytest.mark.django_db


def make_model(server, name: str, *, model: str | None = None, params: dict | None = None, **settings) -> ModelEntry:
    backend_settings = {"base_url": server.base_url, "model": model or f"echo-{name.lower()}", "max_retries": 0}
    backend_settings.update(settings)
    return ModelEntry.objects.create(
        name=name, backend="openai", backend_settings=backend_settings, params=params or {}
    )


def make_prompt_set(slug: str, models: list[ModelEntry], texts: list[str]) -> Campaign:
    campaign = Campaign.objects.create(slug=slug, title=slug, status="active", mode="prompt_set")
    campaign.contenders.set(models)
    for i, text in enumerate(texts):
        Prompt.objects.create(
            campaign=campaign, external_id=f"{slug}-{i}", messages=[{"role": "user", "content": text}]
        )
    return campaign


def queued_response(model: ModelEntry, text: str = "Hello there") -> Response:
    campaign = make_prompt_set(f"one-{model.pk}", [model], [text])
    return Response.objects.create(prompt=campaign.prompts.get(), model=model, status="queued")


def test_it_generates_every_missing_response_and_hands_the_prompts_out(model_api, django_capture_on_commit_callbacks):
    alpha, beta, gamma = (make_model(model_api, n) for n in ("Alpha", "Beta", "Gamma"))
    campaign = make_prompt_set("gen", [alpha, beta, gamma], ["What is 2+2?", "Name a colour."])
    prompt = campaign.prompts.first()
    Response.objects.create(prompt=prompt, model=alpha, content="Imported.", status="done", source="imported")

    with django_capture_on_commit_callbacks(execute=True):
        summary = generation.queue_missing_responses(campaign)

    assert (summary.created, summary.queued) == (5, 5)
    assert len(model_api.requests) == 5
    responses = Response.objects.filter(prompt__campaign=campaign, source="generated")
    assert {r.status for r in responses} == {"done"}
    for r in responses.select_related("prompt"):
        assert r.content == expected_reply(r.prompt.text)
        assert r.html.startswith("<p>Echo:")
        assert r.finish_reason == "stop" and r.completion_tokens > 0 and r.prompt_tokens > 0
        assert r.latency_ms > 0 and r.ttft_ms is not None and r.attempts == 1
        assert r.params["max_new_tokens"] == 512 and len(r.cache_key) == 64
    assert Item.objects.filter(campaign=campaign).count() == 2 * 3  # every pair, for both prompts

    with django_capture_on_commit_callbacks(execute=True):
        again = generation.queue_missing_responses(campaign)
    assert (again.created, again.queued) == (0, 0)
    assert len(model_api.requests) == 5


def test_a_second_delivery_of_the_task_does_not_call_the_model_again(model_api):
    response = queued_response(make_model(model_api, "Alpha"))

    first = generate_response.delay(response.pk)
    second = generate_response.delay(response.pk)

    assert (first.get(), second.get()) == ("done", "skipped")
    assert len(model_api.requests) == 1
    response.refresh_from_db()
    assert response.status == "done" and response.attempts == 1


def test_of_two_claims_only_one_wins(model_api):
    response = queued_response(make_model(model_api, "Alpha"))

    assert generation.claim(response.pk) == 1
    assert generation.claim(response.pk) is None
    response.refresh_from_db()
    assert response.status == "running" and response.started_at is not None


def test_greedy_decoding_reuses_a_stored_answer_instead_of_calling_the_model(model_api):
    greedy = make_model(model_api, "Greedy", params={"do_sample": False})
    sampled = make_model(model_api, "Sampled")
    first = make_prompt_set("c1", [greedy, sampled], ["Same question?"])
    second = make_prompt_set("c2", [greedy, sampled], ["Same question?"])
    responses = [
        Response.objects.create(prompt=campaign.prompts.get(), model=model, status="queued")
        for campaign in (first, second)
        for model in (greedy, sampled)
    ]

    for response in responses:
        generate_response.delay(response.pk)

    assert len(model_api.requests_for("echo-greedy")) == 1  # the second was served from the cache
    assert len(model_api.requests_for("echo-sampled")) == 2  # sampling: every answer is fresh
    a, b = (Response.objects.get(pk=r.pk) for r in responses[::2])
    assert a.status == b.status == "done" and a.content == b.content and a.cache_key == b.cache_key


def test_a_failure_is_classified_and_never_shows_the_api_key(model_api, monkeypatch):
    secret = "sk-live-0123456789abcdef"
    monkeypatch.setenv("ARENA_TEST_MODEL_KEY", secret)
    model = make_model(model_api, "Leaky", model="echo?status=401&leak_key=1", api_key_env="ARENA_TEST_MODEL_KEY")
    response = queued_response(model)

    assert generate_response.delay(response.pk).get() == "failed"

    response.refresh_from_db()
    assert model_api.requests[0].headers["authorization"] == f"Bearer {secret}"  # the key was sent...
    assert response.status == "failed"
    assert response.error.startswith("authentication: ")
    assert secret not in response.error and "sk-live" not in response.error  # ...and is nowhere stored
    assert len(model_api.requests) == 1  # a permanent error is not retried


def test_a_transient_error_is_retried_and_then_succeeds(model_api):
    response = queued_response(make_model(model_api, "Flaky", model="echo?status=503&times=1"))

    assert generate_response.delay(response.pk).get() == "done"

    response.refresh_from_db()
    assert len(model_api.requests) == 2
    assert response.status == "done" and response.attempts == 2 and response.error == ""


def test_a_rate_limit_waits_at_least_what_the_provider_asked(model_api):
    response = queued_response(make_model(model_api, "Busy", model="echo?status=429&retry_after=7"))

    outcome = generation.generate(response.pk, retries_done=0)

    assert outcome.status == "retry" and outcome.retry_in >= 7
    response.refresh_from_db()
    assert response.status == "queued" and response.error.startswith("retrying: rate_limit: ")


def test_retries_stop_after_the_limit(model_api, settings):
    settings.ARENA_GENERATION_MAX_RETRIES = 2
    response = queued_response(make_model(model_api, "Down", model="echo?status=500"))

    assert generate_response.delay(response.pk).get() == "failed"

    assert len(model_api.requests) == 3
    response.refresh_from_db()
    assert response.status == "failed" and response.error.startswith("server_error: ")


def test_failed_responses_can_be_retried(model_api, django_capture_on_commit_callbacks):
    model = make_model(model_api, "Picky", model="echo?status=400&times=1")
    campaign = make_prompt_set("retry", [model], ["Once more?"])
    with django_capture_on_commit_callbacks(execute=True):
        generation.queue_missing_responses(campaign)
    response = Response.objects.get(prompt__campaign=campaign)
    assert response.status == "failed" and response.error.startswith("bad_request: ")

    with django_capture_on_commit_callbacks(execute=True):
        assert generation.retry_failed(campaign) == 1

    response.refresh_from_db()
    assert response.status == "done" and response.content == expected_reply("Once more?")
    assert len(model_api.requests) == 2


def test_the_reaper_requeues_a_response_whose_worker_died(model_api, django_capture_on_commit_callbacks, settings):
    settings.ARENA_GENERATION_HEARTBEAT_TIMEOUT = 6
    model = make_model(model_api, "Alpha")
    stale = queued_response(model, "Stale?")
    fresh = queued_response(make_model(model_api, "Beta"), "Fresh?")
    long_ago = timezone.now() - timedelta(hours=2)
    silent = timezone.now() - timedelta(seconds=7)  # its worker's last heartbeat
    Response.objects.filter(pk=stale.pk).update(
        status="running", started_at=timezone.now(), updated_at=silent, attempts=1
    )
    # Running for two hours, but its worker beats: a slow generation, not a dead one.
    Response.objects.filter(pk=fresh.pk).update(
        status="running", started_at=long_ago, updated_at=timezone.now(), attempts=1
    )

    with django_capture_on_commit_callbacks(execute=True):
        requeued = generation.requeue_stale()

    assert requeued == [stale.pk]
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.status == "done" and stale.attempts == 2 and stale.content == expected_reply("Stale?")
    assert fresh.status == "running"  # its worker is still on it
    assert [r.model for r in model_api.requests] == ["echo-alpha"]


def test_a_late_write_from_a_presumed_dead_worker_is_ignored(model_api):
    response = queued_response(make_model(model_api, "Alpha"))
    old_token = generation.claim(response.pk)
    Response.objects.filter(pk=response.pk).update(status="queued")  # what the reaper does
    new_token = generation.claim(response.pk)

    assert new_token == old_token + 1
    assert generation._owned(response.pk, old_token).update(content="zombie") == 0
    assert generation._owned(response.pk, new_token).update(content="fresh") == 1


def test_local_models_are_sent_to_the_gpu_queue_and_api_models_to_the_api_queue(model_api):
    gpu = ModelEntry.objects.create(name="Local", backend="transformers", backend_settings={"model": "gpt2"})
    api = make_model(model_api, "Remote")
    gpu_response, api_response = queued_response(gpu), queued_response(api)
    published = []

    def record(sender=None, routing_key=None, body=None, **kwargs):
        published.append((routing_key, body[0]))

    before_task_publish.connect(record, weak=False)
    celery_app.conf.task_always_eager = False
    try:
        dispatch.send_generation([gpu_response.pk, api_response.pk])
    finally:
        celery_app.conf.task_always_eager = True
        before_task_publish.disconnect(record)

    assert published == [("generate_gpu", [gpu_response.pk]), ("generate_api", [api_response.pk])]
    assert len(model_api.requests) == 0
    assert dispatch.queue_for("transformers") == "generate_gpu" and dispatch.queue_for("anthropic") == "generate_api"


def test_live_campaigns_are_not_pre_generated(model_api):
    campaign = Campaign.objects.create(slug="live", title="Live", status="active", mode="live")
    with pytest.raises(generation.ArenaError, match="Live campaigns"):
        generation.queue_missing_responses(campaign)


@pytest.mark.django_db(transaction=True)  # the command commits, and its tasks run at the commit
def test_the_command_generates_and_shows_progress(model_api, capsys):
    campaign = make_prompt_set("cmd", [make_model(model_api, "Alpha"), make_model(model_api, "Beta")], ["A?", "B?"])

    call_command("generate_responses", campaign.slug, "--wait", "--retry-failed", "--timeout", "20")

    out = capsys.readouterr().out
    assert "4 new responses, 4 queued for generation" in out
    assert "[##############################] 4/4 done, 0 pending, 0 failed" in out
    assert "Alpha" in out and "Beta" in out


def test_staff_see_progress_and_retry_failed_responses(
    model_api, staff_client, alice, django_capture_on_commit_callbacks
):
    good, bad = make_model(model_api, "Good"), make_model(model_api, "Bad", model="echo?status=400&times=1")
    campaign = make_prompt_set("adm", [good, bad], ["Q?"])
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(
            "/admin/arena/campaign/", {"action": "generate_missing", "_selected_action": [campaign.pk]}, follow=True
        )
    url = f"/admin/arena/campaign/{campaign.pk}/generation/"

    page = staff_client.get(url)

    assert page.status_code == 200
    html = page.content.decode()
    assert '<progress id="generation-bar" value="1" max="2">' in html
    assert "bad_request: " in html and 'value="retry"' in html
    assert alice.get(url).status_code == 302  # not staff: to the login page

    failed = Response.objects.get(status="failed")
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(url, {"action": "retry", "response": failed.pk})
    failed.refresh_from_db()
    assert failed.status == "done"


@pytest.mark.django_db(transaction=True)
def test_a_generation_in_progress_beats_and_only_its_own_attempt(model_api, settings):
    response = queued_response(make_model(model_api, "Alpha"))
    token = generation.claim(response.pk)
    long_ago = timezone.now() - timedelta(minutes=5)
    Response.objects.filter(pk=response.pk).update(updated_at=long_ago)
    with heartbeat.beating(response.pk, token):
        assert heartbeat.beat_once() == 1
        assert Response.objects.get(pk=response.pk).updated_at > long_ago
        # Presumed dead and taken over by a new run: the old run's beats no longer keep the row alive.
        Response.objects.filter(pk=response.pk).update(attempts=token + 1, updated_at=long_ago)
        assert heartbeat.beat_once() == 0
    assert heartbeat.beat_once() == 0  # the block ended: nothing beats for it


def test_services_send_tasks_by_their_registered_name():
    assert task_named(dispatch.GENERATE_RESPONSE) is generate_response._get_current_object()
    with pytest.raises(NotRegistered):
        task_named("arena.tasks.no_such_task")
