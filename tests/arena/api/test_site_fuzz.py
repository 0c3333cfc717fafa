"""API fuzzing: schemathesis generates requests from the project's own OpenAPI schema; none may 500.

The schema is read the way a client reads it (GET /api/v1/openapi.json through the WSGI app). Every
operation gets generated path parameters, query strings and bodies, sent three ways: as generated
(anonymous), with a real campaign slug / battle id substituted and a voter's cookie (to reach the
voting code rather than stop at "not found"), and with a staff session (to reach the exports).
State-changing calls carry a valid CSRF cookie and header, so that they get past the CSRF check.

Examples per operation: FUZZ_EXAMPLES (default 40); about 10 operations, 3 calls each.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from django.core import signals
from django.core.cache import cache
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, settings

from arena.models import Campaign
from arena.services import ratelimit
from arena.wsgi import application
from tests.factories import make_campaign

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
CSRF = "k" * 32  # any 32-character token works when the cookie and the header agree


schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)
_CONTEXT: dict[str, str] = {}


@pytest.fixture(autouse=True)
def fuzz_context(db, django_user_model, tmp_path, settings):
    settings.ARENA_EXPORT_DIR = tmp_path  # staff-started exports run in-process and write here
    cache.clear()
    ratelimit.reset()
    campaign = make_campaign(slug="fuzz", dimensions=("helpfulness",))
    Campaign.objects.create(slug="fuzz-draft", title="Draft")
    voter = Client()
    battle_id = voter.post("/api/v1/campaigns/fuzz/battles").json()["id"]
    make_campaign(slug="fuzz-rank", task="ranking", ranking_size=3)
    ranking_id = voter.post("/api/v1/campaigns/fuzz-rank/rankings").json()["id"]
    staff = Client()
    staff.force_login(django_user_model.objects.create_user("s", password="pw", is_staff=True, is_superuser=True))
    _CONTEXT.update(
        slug=campaign.slug,
        battle_id=battle_id,
        ranking_id=ranking_id,
        voter_cookie=voter.cookies["arena_voter"].value,
        session_cookie=staff.cookies["sessionid"].value,
    )
    # Called directly (not through the test client), the WSGI app would close the test's connection
    # at each request's start and end, rolling the test's data back: keep it open, as the client does
    # (after the test client's last use: it reconnects these itself).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def _call(case, cookie: str) -> None:
    response = case.call(headers={"Cookie": f"csrftoken={CSRF}; {cookie}", "X-CSRFToken": CSRF})
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}\n{response.text[:2000]}"
    )


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_api_call_is_a_server_error(case):
    _call(case, "")
    real = {"slug": _CONTEXT["slug"], "battle_id": _CONTEXT["battle_id"], "ranking_id": _CONTEXT["ranking_id"]}
    if "rankings" in case.path:
        real["slug"] = "fuzz-rank"
    if case.path_parameters:
        case.path_parameters = {k: real.get(k, v) for k, v in case.path_parameters.items()}
    _call(case, f"arena_voter={_CONTEXT['voter_cookie']}")
    ratelimit.reset()
    cache.clear()  # thousands of calls in a minute: keep the rate limits out of the way
    _call(case, f"sessionid={_CONTEXT['session_cookie']}")
