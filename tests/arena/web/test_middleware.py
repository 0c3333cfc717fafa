"""Outages as the middleware sees them: clear 503s for a lost database or Redis, never a traceback.

The real outages (PostgreSQL stopped, Redis killed) are in tests/integration/test_faults.py; these
tests raise the same exceptions where they arise (a view, an inner middleware) to pin down each path.
"""

from __future__ import annotations

import time

import pytest
from django.contrib.sessions.middleware import SessionMiddleware
from django.db import OperationalError

from arena.services import access
from arena.web import middleware

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_breaker():
    middleware.database_circuit.reset()
    yield
    middleware.database_circuit.reset()


@pytest.fixture
def database(monkeypatch):
    """Whether the database answers a probe (a new connection of its own), and how often it was asked;
    the pools are not really closed (the tests' own connection is in one)."""

    class Database:
        answers = True
        probes = 0
        pools_closed = 0

    def probe():
        Database.probes += 1
        return Database.answers

    def close_pools():
        Database.pools_closed += 1

    monkeypatch.setattr(middleware, "database_answers", probe)
    monkeypatch.setattr(middleware, "_close_pools", close_pools)
    return Database


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


def test_an_unreachable_database_answers_at_once_for_a_moment_then_is_tried_again(
    alice, campaign, monkeypatch, database
):
    database.answers = False
    visible_campaign = access.visible_campaign
    monkeypatch.setattr(access, "visible_campaign", _raising(_pool_timeout()))
    assert alice.get(f"/c/{campaign.slug}/").status_code == 503
    assert database.probes == 1 and middleware.database_circuit.open and database.pools_closed == 1
    # The views work again, but the circuit stays open for DB_OUTAGE_RETRY_AFTER, asking nobody.
    monkeypatch.setattr(access, "visible_campaign", visible_campaign)
    page = alice.get("/")
    assert page.status_code == 503 and b"temporarily unavailable" in page.content
    health = alice.get("/healthz")
    assert health.status_code == 503 and health.json()["database"] == "unavailable"
    assert database.probes == 1

    database.answers = True
    middleware.database_circuit.retry_at = 0.0  # ... the moment has passed: the next request probes
    assert alice.get("/").status_code == 200
    assert not middleware.database_circuit.open


def test_while_the_database_is_down_one_request_a_moment_probes_it(alice, campaign, database):
    database.answers = False
    middleware.database_circuit.open = True
    middleware.database_circuit.retry_at = time.monotonic() + 60
    for _ in range(3):
        assert alice.get("/").status_code == 503
        assert alice.get("/healthz").status_code == 503
    assert database.probes == 0  # known to be down: nobody asks

    middleware.database_circuit.retry_at = 0.0
    assert alice.get("/").status_code == 503  # the probe: still down
    assert database.probes == 1 and middleware.database_circuit.retry_at > time.monotonic()
    assert alice.get("/").status_code == 503 and database.probes == 1  # the next moment's turn

    database.answers = True
    middleware.database_circuit.retry_at = 0.0
    assert alice.get("/healthz").status_code == 200  # /healthz may be the probe too
    assert database.probes == 2 and not middleware.database_circuit.open
    assert database.pools_closed == 1  # the requests after the outage start on a fresh pool
    assert alice.get("/").status_code == 200


def test_a_dead_connection_while_the_database_answers_opens_no_circuit(alice, campaign, monkeypatch, database):
    monkeypatch.setattr(access, "visible_campaign", _raising(_pool_timeout()))
    assert alice.get(f"/c/{campaign.slug}/").status_code == 503  # that request had lost its connection
    assert database.probes == 1 and not middleware.database_circuit.open and database.pools_closed == 0
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


def test_the_probe_is_a_new_connection_that_gives_up_quickly(monkeypatch):
    from django.db import connection

    from tests.stack import free_port

    assert middleware.database_answers()
    if connection.vendor != "postgresql":
        return  # SQLite: a local file, it always answers
    monkeypatch.setitem(connection.settings_dict, "PORT", str(free_port()))  # nobody listens there
    started = time.monotonic()
    assert not middleware.database_answers()
    assert time.monotonic() - started < 0.5
