"""What every page view of the site shares: content negotiation and the rendering of domain errors."""

from __future__ import annotations

from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from arena.core.errors import ArenaError


def wants_json(request: HttpRequest) -> bool:
    """Whether the client asked for JSON (``Accept: application/json``) rather than a page. (Read from
    META: ``request.headers`` copies every header of the request on first use.)"""
    return "application/json" in request.META.get("HTTP_ACCEPT", "")


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
