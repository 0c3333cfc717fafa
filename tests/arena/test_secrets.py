"""API keys never leak: not into pages, logs, stored errors or task arguments.

A model entry names an environment variable (``api_key_env``) holding a distinctive secret. A local
server plays a hostile provider: it answers 401 (and, in a second round, 500) with the full
Authorization header it received echoed in its error message, as some real providers echo part of
a key. The generation then runs for real (the Celery task, in-process) through the backends package.
Afterwards the secret must appear nowhere: the failed responses' stored errors, every log record,
every task's arguments, and the pages staff and voters see.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import Client

from arena.models import Campaign, ModelEntry, Prompt, Response
from arena.services import generation

pytestmark = pytest.mark.django_db

SECRET = "sk-arena-LEAKCHECK-7f3a9c1e5b2d4f60a8c7e6d5"
ENV_NAME = "ARENA_TEST_PROVIDER_KEY"


class _HostileProvider(BaseHTTPRequestHandler):
    status = 401
    seen_keys: list[str] = []

    def do_POST(self):  # the http.server API names it so
        self.rfile.read(int(self.headers.get("content-length") or 0))
        auth = self.headers.get("authorization", "")
        type(self).seen_keys.append(auth)
        body = json.dumps(
            {
                "error": {
                    "message": f"Incorrect API key provided: {auth} (key {auth[7:]})",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
            }
        ).encode()
        self.send_response(type(self).status)
        self.send_header("content-type", "application/json")
        self.send_header("x-echo-key", auth)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep the test output quiet
        pass


@pytest.fixture
def provider():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HostileProvider)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _HostileProvider.seen_keys = []
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def leaky_campaign(provider, monkeypatch, settings):
    monkeypatch.setenv(ENV_NAME, SECRET)
    settings.ARENA_GENERATION_MAX_RETRIES = 0
    port = provider.server_address[1]
    model = ModelEntry.objects.create(
        name="Hostile-GPT",
        backend="openai",
        backend_settings={
            "base_url": f"http://127.0.0.1:{port}/v1",
            "model": "m",
            "api_key_env": ENV_NAME,
            "max_retries": 0,  # the backend's own retries on 5xx: not needed to see the error
        },
    )
    other = ModelEntry.objects.create(name="Static-Two", backend="static")
    campaign = Campaign.objects.create(slug="keys", title="Keys", status="active", instructions="Vote.")
    campaign.contenders.set([model, other])
    for i in range(2):
        Prompt.objects.create(campaign=campaign, external_id=f"k{i}", messages=[{"role": "user", "content": "Hi"}])
    return campaign, model


def _tasks_recorded(monkeypatch) -> list:
    """Record every generation task's arguments (and still run it, in-process)."""
    from arena.tasks import generate_response

    sent: list = []
    original = generate_response.apply_async

    def recording(args=None, kwargs=None, **options):
        sent.append((args, kwargs, options))
        return original(args=args, kwargs=kwargs, **options)

    monkeypatch.setattr(generate_response, "apply_async", recording)
    return sent


@pytest.mark.parametrize("provider_status", [401, 500])
def test_the_api_key_appears_in_no_page_log_error_or_task(
    leaky_campaign, provider_status, monkeypatch, caplog, django_capture_on_commit_callbacks, django_user_model
):
    campaign, model = leaky_campaign
    _HostileProvider.status = provider_status
    sent = _tasks_recorded(monkeypatch)
    caplog.set_level(logging.DEBUG)

    with django_capture_on_commit_callbacks(execute=True):
        generation.queue_missing_responses(campaign)

    # The provider really received the key, and really echoed it back.
    assert _HostileProvider.seen_keys and all(SECRET in key for key in _HostileProvider.seen_keys)
    failed = Response.objects.filter(model=model)
    assert failed.count() == 2 and all(r.status == Response.Status.FAILED for r in failed)
    assert all(r.error for r in failed)

    haystacks = {"stored errors": " ".join(Response.objects.values_list("error", flat=True))}
    haystacks["logs"] = "\n".join(
        f"{record.getMessage()} {record.exc_text or ''} {record.args!r}" for record in caplog.records
    )
    haystacks["task arguments"] = repr(sent)
    assert sent, "no generation task was sent"
    haystacks["model settings"] = json.dumps(model.backend_settings)

    staff = Client()
    staff.force_login(django_user_model.objects.create_user("s", password="pw", is_staff=True, is_superuser=True))
    response_id = failed.first().pk
    pages = {
        "admin model change": staff.get(f"/admin/arena/modelentry/{model.pk}/change/"),
        "admin model list": staff.get("/admin/arena/modelentry/"),
        "admin response": staff.get(f"/admin/arena/response/{response_id}/change/"),
        "admin responses": staff.get("/admin/arena/response/?status__exact=failed"),
        "admin generation page": staff.get(f"/admin/arena/campaign/{campaign.pk}/generation/"),
        "admin campaign": staff.get(f"/admin/arena/campaign/{campaign.pk}/change/"),
        "staff dashboard": staff.get(f"/staff/c/{campaign.slug}/"),
        "campaign page": Client().get(f"/c/{campaign.slug}/"),
        "campaign API": Client().get(f"/api/v1/campaigns/{campaign.slug}"),
        "leaderboard": Client().get(f"/c/{campaign.slug}/leaderboard/"),
    }
    for name, page in pages.items():
        assert page.status_code == 200, name
        haystacks[name] = page.content.decode(errors="replace") + json.dumps(dict(page.headers))

    leaks = [name for name, text in haystacks.items() if SECRET in text or SECRET[8:30] in text]
    assert leaks == [], f"the API key leaked into: {leaks}"
    # The error still tells staff what went wrong, with the key blanked out.
    assert "***" in failed.first().error or "invalid_api_key" in failed.first().error


def test_the_model_admin_never_shows_an_environment_value(leaky_campaign, staff_client):
    _, model = leaky_campaign
    page = staff_client.get(f"/admin/arena/modelentry/{model.pk}/change/").content.decode()
    assert ENV_NAME in page  # the NAME of the variable is shown, so staff know what to set
    assert SECRET not in page
