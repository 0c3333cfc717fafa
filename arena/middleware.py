"""Site-wide response policies."""

from __future__ import annotations

import logging

from django.db import DatabaseError, InterfaceError
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

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
    """A database outage gives a clear 503 page, not a traceback; the next request reconnects."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, (DatabaseError, InterfaceError)) or not _is_connection_error(exception):
            return None
        log.error("database unavailable: %s", exception.__class__.__name__)
        from django.db import connections

        for conn in connections.all():
            conn.close_if_unusable_or_obsolete()
        body = render_to_string("503.html", request=request)
        response = HttpResponse(body, status=503)
        response.headers["Retry-After"] = "5"
        return response


def _is_connection_error(exception: Exception) -> bool:
    from django.db import OperationalError

    return isinstance(exception, (OperationalError, InterfaceError))
