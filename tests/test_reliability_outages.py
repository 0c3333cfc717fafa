"""Outages as the middleware sees them: clear 503s for a lost database or Redis, never a traceback.

The real outages (PostgreSQL stopped, Redis killed) are in tests/integration/test_faults.py; these
tests raise the same exceptions where they arise (a view, an inner middleware) to pin down each path.
"""

from __future__ import annotations

import pytest
from django.contrib.sessions.middleware import SessionMiddleware
from django.db import OperationalError

from arena import middleware
from arena.services import access

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_breaker():
    middleware._db_down_until = 0.0
    yield
    middleware._db_down_until = 0.0


def _pool_timeout() -> OperationalError:
    """What Django raises when the psycopg pool hands out no connection in time."""
    from psycopg_pool import PoolTimeout

    try:
        try:
            raise PoolTimeout("couldn't get a connection after 2.00 sec")
        except PoolTimeout as inner:
            raise OperationalError(str(inner)) from inner
    except OperationalError as outer:
        return outer


def _raising(exception):
    def view(*args, **kwargs):
        raise exception

    return view


def test_a_lost_database_in_a_view_gives_the_503_page(alice, campaign, monkeypatch):
    monkeypatch.setattr(access, "visible_campaign", _raising(_pool_timeout()))
    page = alice.get(f"/c/{campaign.slug}/")
    assert page.status_code == 503 and page.headers["Retry-After"] == "5"
    assert b"temporarily unavailable" in page.content and b"Traceback" not in page.content
    assert "Content-Security-Policy" in page.headers


def test_the_api_gets_a_json_503(alice, campaign, monkeypatch):
    monkeypatch.setattr(access, "visible_campaign", _raising(_pool_timeout()))
    answer = alice.get(f"/api/v1/campaigns/{campaign.slug}")
    assert answer.status_code == 503 and answer.json()["error"] == "unavailable"


def test_an_unreachable_database_answers_at_once_for_a_moment_then_is_tried_again(alice, campaign, monkeypatch):
    monkeypatch.setattr(access, "visible_campaign", _raising(_pool_timeout()))
    assert alice.get(f"/c/{campaign.slug}/").status_code == 503
    monkeypatch.undo()  # the database is back, but the breaker is open for DB_OUTAGE_SECONDS
    assert alice.get("/").status_code == 503
    assert alice.get("/healthz").status_code == 200  # the health probe always really probes
    middleware._db_down_until = 0.0  # ... the moment has passed
    assert alice.get("/").status_code == 200


def test_a_failed_query_is_a_503_without_holding_other_requests_back(alice, campaign, monkeypatch):
    from psycopg import errors

    try:
        raise OperationalError("deadlock detected") from errors.DeadlockDetected("deadlock detected")
    except OperationalError as error:
        deadlock = error
    monkeypatch.setattr(access, "visible_campaign", _raising(deadlock))
    assert alice.get(f"/c/{campaign.slug}/").status_code == 503
    monkeypatch.undo()
    assert alice.get("/").status_code == 200  # no breaker for a query that merely failed


def test_an_error_in_an_inner_middleware_is_caught_too(alice, campaign, monkeypatch):
    def broken_save(self, request, response):
        raise _pool_timeout()

    monkeypatch.setattr(SessionMiddleware, "process_response", broken_save)
    alice.raise_request_exception = False  # the test client would re-raise what Django logged
    page = alice.get("/")
    assert page.status_code == 503 and b"temporarily unavailable" in page.content


def test_redis_errors_give_a_clear_503_naming_the_service(alice, campaign, monkeypatch):
    import redis

    monkeypatch.setattr(access, "visible_campaign", _raising(redis.exceptions.ConnectionError("refused")))
    page = alice.get(f"/c/{campaign.slug}/")
    assert page.status_code == 503 and b"Redis" in page.content and b"Votes are still recorded" in page.content
    from kombu.exceptions import OperationalError as BrokerDown

    monkeypatch.setattr(access, "visible_campaign", _raising(BrokerDown("broker down")))
    assert alice.get(f"/c/{campaign.slug}/", HTTP_ACCEPT="application/json").json()["error"] == "unavailable"


def test_bugs_are_not_disguised_as_outages(alice, campaign, monkeypatch):
    monkeypatch.setattr(access, "visible_campaign", _raising(KeyError("bug")))
    alice.raise_request_exception = False
    assert alice.get(f"/c/{campaign.slug}/").status_code == 500
