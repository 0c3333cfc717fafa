"""What every page view of the site shares: content negotiation and the rendering of domain errors."""

from __future__ import annotations

import secrets
import time
from functools import lru_cache, wraps
from typing import Any
from urllib.parse import quote

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CSRF_ALLOWED_CHARS, CSRF_SECRET_LENGTH, get_token
from django.shortcuts import render
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.cache import add_never_cache_headers
from django.utils.http import http_date

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


# --- The hot pages' fixed costs (each measured in bench/cycle_cpu.py's cycle) -----------------------

NEVER_CACHE = "max-age=0, no-cache, no-store, must-revalidate, private"  # what Django's never_cache writes


def never_cache(view):
    """Django's ``never_cache`` for a view of this site: the same Cache-Control and Expires headers,
    written as text (Django parses and rebuilds Cache-Control on every response: 18 us each)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        if "Cache-Control" in response.headers:  # the view set its own directives: let Django merge them
            add_never_cache_headers(response)
            return response
        response.headers["Cache-Control"] = NEVER_CACHE
        response.headers.setdefault("Expires", _http_date(int(time.time())))
        return response

    return wrapper


@lru_cache(maxsize=2)
def _http_date(second: int) -> str:
    return http_date(second)


_CSRF_INDEX = {char: n for n, char in enumerate(CSRF_ALLOWED_CHARS)}
_CSRF_BYTES = 256 - 256 % len(CSRF_ALLOWED_CHARS)  # random bytes below this map evenly onto the characters


def csrf_token(request: HttpRequest) -> str:
    """Django's ``get_token``: the CSRF secret under a fresh random mask (so a compressed page never
    repeats it), and the cookie renewed. The mask is drawn from one read of the OS's random source
    instead of 32 (63 us of Django's 65 per page); the token is the one Django's own masking makes,
    and CsrfViewMiddleware checks it as such (tests/arena/web/test_hot_page_costs.py)."""
    secret = request.META.get("CSRF_COOKIE")
    if secret is None or len(secret) != CSRF_SECRET_LENGTH:  # no valid CSRF cookie yet: Django makes one
        return get_token(request)
    request.META["CSRF_COOKIE_NEEDS_UPDATE"] = True
    mask = _csrf_mask()
    size, index = len(CSRF_ALLOWED_CHARS), _CSRF_INDEX
    cipher = "".join(CSRF_ALLOWED_CHARS[(index[s] + index[m]) % size] for s, m in zip(secret, mask, strict=True))
    return mask + cipher


def _csrf_mask() -> str:
    """CSRF_SECRET_LENGTH characters drawn uniformly from CSRF_ALLOWED_CHARS (bytes that would favour
    some characters are skipped)."""
    chars: list[str] = []
    size = len(CSRF_ALLOWED_CHARS)
    while len(chars) < CSRF_SECRET_LENGTH:
        chars += [CSRF_ALLOWED_CHARS[b % size] for b in secrets.token_bytes(48) if b < _CSRF_BYTES]
    return "".join(chars[:CSRF_SECRET_LENGTH])


_ID_SLOT = "battle-id-slot"


def battle_urls(slug: str, battle_id: str) -> tuple[str, str]:
    """A battle's own page (/c/<slug>/b/<id>/) and its vote URL: reversed once per campaign, the id
    put in after (ids are URL-safe; quoted all the same)."""
    _, page, vote = _campaign_urls(slug, get_urlconf(), get_script_prefix())
    quoted = quote(battle_id, safe="")
    return page.replace(_ID_SLOT, quoted), vote.replace(_ID_SLOT, quoted)


def next_battle_url(slug: str) -> str:
    """The campaign's "next battle" URL, which every vote answers with; reversed once per campaign."""
    return _campaign_urls(slug, get_urlconf(), get_script_prefix())[0]


@lru_cache(maxsize=1024)
def _campaign_urls(slug: str, urlconf: str | None, prefix: str) -> tuple[str, str, str]:
    """A campaign's next-battle URL, and its battle page and vote URLs with a slot for the battle's id."""
    return (
        reverse("arena:next", args=[slug]),
        reverse("arena:battle-page", args=[slug, _ID_SLOT]),
        reverse("arena:vote", args=[_ID_SLOT]),
    )


def shows_arena_errors(view):
    """Render an ArenaError as a clear message (HTML page or JSON) with its status code."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except ArenaError as error:
            if wants_json(request):
                response = JsonResponse(error.as_json(), status=error.status)
            else:
                context = {"message": error.message, "campaign": getattr(request, "arena_campaign", None)}
                response = render(request, "arena/message.html", context, status=error.status)
            if getattr(error, "retry_after", None):
                response.headers["Retry-After"] = str(error.retry_after)
            return response

    return wrapper
