"""Site-wide response policies."""

from __future__ import annotations

import logging
import sys
import threading
import time

from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

from arena.core.errors import ArenaError
from arena.core.json_body import check_body
from arena.services.voters import forget_voter, is_stale_voter_error
from arena.web.helpers import wants_json

log = logging.getLogger(__name__)

# No inline script or style anywhere: every script and stylesheet is a static file.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response


class DatabaseUnavailableMiddleware:
    """An outage of the database or of Redis gives a clear 503 page, not a traceback.

    Caught: Django's OperationalError/InterfaceError (a dropped or refused connection, a full pool:
    psycopg_pool's PoolTimeout arrives wrapped as OperationalError), the same psycopg errors should
    one arrive unwrapped, and Redis/broker connection errors. Errors raised by a view go through
    ``process_exception``; errors raised by an inner middleware (a session save, say) have already
    been turned into a 500 by Django, so they are noted through ``got_request_exception`` and the 500
    is replaced here.

    While the database is known to be down, requests get the 503 at once, without touching it
    (``database_circuit``). /healthz answers for itself (arena.web.views.healthz).
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        got_request_exception.connect(_note_outage, dispatch_uid="arena-outage")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info != "/healthz" and not database_circuit.allows():
            return _unavailable(request, "database")
        response = self.get_response(request)
        outage = getattr(request, "_arena_outage", None)
        if outage is not None and response.status_code == 500:
            return _unavailable(request, outage)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        outage = outage_kind(exception)
        if outage is None:
            return None
        database_circuit.failed(exception)
        return _unavailable(request, outage)


class DatabaseCircuit:
    """A web process's memory of a database outage: the outage page at once instead of a wait.

    The rule: a request that finds the database unreachable (connection refused or dropped, no pooled
    connection in time) asks the database directly, with a new connection (DB_CONNECT_TIMEOUT at
    most; a refused one fails in a millisecond). If it answers, only that connection was dead: the
    pool drops its dead connections and nothing else changes. If not, the circuit opens: the process
    closes its pool (every connection in it is dead; waiting requests fail at once instead of after
    DB_POOL_TIMEOUT, and no reconnection backs off for seconds) and, while open, every request gets
    the 503 outage page without touching the database. Every DB_OUTAGE_RETRY_AFTER seconds one
    request (or /healthz) is the probe: it connects directly; if the database answers, the circuit
    closes and that request goes on, on a fresh pool.

    Measured (tests/integration/test_faults.py, a private PostgreSQL crashed for 10 s under 4 voters,
    Granian): p99 of the requests sent during the outage 0.009 s (10.0 s before: one request per
    voter waited out the pool); /healthz 0.035 s at most (no answer within 5 s before); the first 200
    0.86-0.95 s after PostgreSQL was back (3.2-3.7 s before; now at most DB_OUTAGE_RETRY_AFTER plus a
    connection). Figures: docs/reliability.md, "PostgreSQL down under voting".
    """

    def __init__(self) -> None:
        self.open = False
        self.retry_at = 0.0
        self._probing = threading.Lock()  # one probe at a time; the others do not wait for it

    def allows(self) -> bool:
        """May this request use the database? False: answer with the outage page at once."""
        if not self.open:
            return True
        if time.monotonic() < self.retry_at or not self._probing.acquire(blocking=False):
            return False
        try:
            if not self.open:  # closed by the probe that just finished
                return True
            if not database_answers():
                self.retry_at = time.monotonic() + _retry_after()
                return False
            log.warning("the database answers again")
            _close_pools()  # any pool opened during the outage is backing off its reconnections
            self.open = False
            return True
        finally:
            self._probing.release()

    def failed(self, exception: BaseException | None) -> None:
        """A request failed on ``exception``: open the circuit if the database itself is unreachable."""
        if self.open or not is_connection_failure(exception) or not self._probing.acquire(blocking=False):
            return
        try:
            if database_answers():
                _check_pools()
                return
            log.error("the database does not answer: the outage page for everyone, probed every %s s", _retry_after())
            self.open = True
            self.retry_at = time.monotonic() + _retry_after()
            _close_pools()
        finally:
            self._probing.release()

    def reset(self) -> None:
        self.open = False
        self.retry_at = 0.0


database_circuit = DatabaseCircuit()


def database_answers() -> bool:
    """Does the database accept a new connection (within DB_CONNECT_TIMEOUT)? Not the pool's: a
    connection of its own, closed at once. Always yes for SQLite (the file is local)."""
    from django.db import connections

    conn = connections["default"]
    if conn.vendor != "postgresql":
        return True
    try:
        conn.Database.connect(**conn.get_connection_params()).close()
    except Exception as error:
        log.info("the database does not answer: %s", error)
        return False
    return True


def _retry_after() -> float:
    from django.conf import settings

    return getattr(settings, "DB_OUTAGE_RETRY_AFTER", 1.0)


class StaleVoterMiddleware:
    """The voter cookie names a voter that staff deleted: forget the cookie and start afresh.

    Voter cookies carry the voter's id (signed), so requests need no lookup; the rare write that
    then fails on the voter's foreign key lands here. A GET is simply retried as a new voter.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        from django.db import IntegrityError
        from django.shortcuts import redirect

        if not isinstance(exception, IntegrityError) or not is_stale_voter_error(exception):
            return None
        if request.method == "GET":
            response = redirect(request.get_full_path())
        else:
            message = "Your voting session has expired. Please reload the page."
            response = JsonResponse({"error": "conflict", "message": message}, status=409)
        forget_voter(response)
        return response


class JsonBodyMiddleware:
    """Bad JSON bodies end here with a clear JSON 4xx, before sessions, CSRF or any view run: too
    large (413), not JSON, not finite numbers, nested too deep (400). The rules: arena.core.json_body."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            check_body(request)
        except ArenaError as error:
            return JsonResponse(error.as_json(), status=error.status)
        return self.get_response(request)


REDIS_MESSAGE = (
    "A background service (Redis) is unavailable right now, so this page cannot work. Votes are still "
    "recorded; please try this page again in a minute."
)


def outage_kind(exception: BaseException | None) -> str | None:
    """ "database", "redis" or None: is this exception a service outage rather than a bug?"""
    seen = 0
    while exception is not None and seen < 5:
        if isinstance(exception, (OperationalError, InterfaceError)):
            return "database"
        module = type(exception).__module__
        if module.startswith(("psycopg", "psycopg_pool")) and isinstance(exception, _psycopg_connection_errors()):
            return "database"
        if _is_redis_error(exception):
            return "redis"
        exception = exception.__cause__ or exception.__context__
        seen += 1
    return None


# SQLSTATEs of a server going away: admin_shutdown, crash_shutdown, cannot_connect_now.
_SHUTDOWN_STATES = {"57P01", "57P02", "57P03"}


def is_connection_failure(exception: BaseException | None) -> bool:
    """The database cannot be reached at all (not a failed query such as a deadlock or a timeout)."""
    seen = 0
    while exception is not None and seen < 5:
        if type(exception).__name__ == "PoolTimeout":
            return True
        if isinstance(exception, _psycopg_connection_errors()):
            state = getattr(exception, "sqlstate", None)
            if state is None or state.startswith("08") or state in _SHUTDOWN_STATES:
                return True
        exception = exception.__cause__ or exception.__context__
        seen += 1
    return False


def _psycopg_connection_errors() -> tuple[type[BaseException], ...]:
    try:
        import psycopg
    except ImportError:  # SQLite-only installs
        return ()
    return (psycopg.OperationalError, psycopg.InterfaceError)


def _is_redis_error(exception: BaseException) -> bool:
    try:
        from kombu.exceptions import OperationalError as BrokerUnavailable
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeout
    except ImportError:
        return False
    return isinstance(exception, (RedisConnectionError, RedisTimeout, BrokerUnavailable))


def _note_outage(sender, request=None, **kwargs) -> None:
    exception = sys.exc_info()[1]
    outage = outage_kind(exception)
    if request is not None and outage is not None:
        request._arena_outage = outage
        database_circuit.failed(exception)


def _check_pools() -> None:
    """Drop every broken idle connection of this process's pools (e.g. after a database restart);
    the pool opens fresh ones in the background. Connections are not checked on each checkout."""
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        if conn.vendor != "postgresql" or not conn.settings_dict.get("OPTIONS", {}).get("pool"):
            continue
        try:
            conn.pool.check()
        except Exception:  # the database may still be down; the next failure checks again
            log.debug("checking the pool of %s failed", conn.alias, exc_info=True)


def _close_pools() -> None:
    """Close this process's pools (the database is down: all their connections are dead). Requests
    waiting for a connection fail at once; the first request after the outage opens a new pool."""
    from django.db import connections

    for conn in connections.all():
        if conn.vendor != "postgresql" or not conn.settings_dict.get("OPTIONS", {}).get("pool"):
            continue
        try:
            conn.close_pool()
        except Exception:  # another thread closed it first
            log.debug("closing the pool of %s failed", conn.alias, exc_info=True)


def _unavailable(request: HttpRequest, outage: str) -> HttpResponse:
    log.error("%s unavailable while serving %s", outage, request.path)
    if outage == "database":
        from django.db import connections

        for conn in connections.all():
            if conn.in_atomic_block:  # a test's transaction; in a request, the atomic blocks have exited
                continue
            try:
                conn.close_if_unusable_or_obsolete()
            except Exception:  # closing a dead connection may fail again; the next request reconnects
                log.debug("closing %s failed", conn.alias, exc_info=True)
        body = render_to_string("503.html", request=request)
    else:
        body = _redis_page(request)
    if wants_json(request) or request.path.startswith("/api/"):
        message = "The database is unavailable." if outage == "database" else REDIS_MESSAGE
        response = JsonResponse({"error": "unavailable", "message": message}, status=503)
    else:
        response = HttpResponse(body, status=503)
    response.headers["Retry-After"] = "5"
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    return response


def _redis_page(request: HttpRequest) -> str:
    try:
        return render_to_string("arena/message.html", {"message": REDIS_MESSAGE}, request=request)
    except Exception:  # the page layout itself may need what is down
        return f"<!doctype html><title>Temporarily unavailable</title><h1>Unavailable</h1><p>{REDIS_MESSAGE}</p>"
