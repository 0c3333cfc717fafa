"""What every page view of the site shares: content negotiation and the rendering of domain errors."""

from __future__ import annotations

from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from arena.core.errors import ArenaError
from arena.core.json_body import json_body


def wants_json(request: HttpRequest) -> bool:
    """Whether the client asked for JSON (``Accept: application/json``) rather than a page. (Read from
    META: ``request.headers`` copies every header of the request on first use.)"""
    return "application/json" in request.META.get("HTTP_ACCEPT", "")


def json_object(request: HttpRequest) -> dict[str, Any]:
    """The body of an ``application/json`` request as an object ({} when empty). Parsed and checked
    once, at the edge (arena.web.middleware.JsonBodyMiddleware): views read that, never the body."""
    payload = json_body(request)
    if payload is None:
        return {}
    if not isinstance(payload, dict):
        raise ArenaError("The request body must be a JSON object.")
    return payload


def duration_ms(value: Any) -> int | None:
    """The milliseconds a voter took, as posted (a number, or its text in a form); None when missing or
    unreadable: it is optional, and a bad one never costs the vote."""
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def shows_arena_errors(view):
    """Render an ArenaError as a clear message (HTML page or JSON) with its status code."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except ArenaError as error:
            if wants_json(request):
                response = JsonResponse({"error": error.code, "message": error.message}, status=error.status)
            else:
                context = {"message": error.message, "campaign": getattr(request, "arena_campaign", None)}
                response = render(request, "arena/message.html", context, status=error.status)
            if getattr(error, "retry_after", None):
                response.headers["Retry-After"] = str(error.retry_after)
            return response

    return wrapper
