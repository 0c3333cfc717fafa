"""JSON request bodies, checked once at the edge (arena.web.middleware.JsonBodyMiddleware) before any view.

A body sent as ``application/json`` (or parsed as JSON by the API, whatever its type) is held to
these rules: at most Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB by default; 413), valid
JSON (400), numbers finite (``1e400`` would parse to infinity, and ``NaN``/``Infinity`` are not JSON;
400), containers nested at most MAX_JSON_DEPTH deep (400; 100,000 levels made json.loads raise
RecursionError). The parsed value is kept on the request: views and the API read it with
``json_body`` instead of parsing again.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest

from arena.core.errors import ArenaError, TooLarge

API_PREFIX = "/api/"  # the JSON API: its operations parse bodies of any content type as JSON
MAX_JSON_DEPTH = 32  # arrays and objects inside one another; Arena's bodies need 3
_PARSED = "_arena_json_body"


class _NotFinite(ValueError):
    pass


def check_body(request: HttpRequest) -> None:
    """The edge's checks of a request's body; ArenaError (TooLarge) when it breaks a rule.

    ``application/json`` bodies are parsed and held to every rule. Other bodies sent to the JSON API
    are held to the size rule here; the API parses them as JSON only for an operation that takes a
    body (through ``json_body``, so the same rules), and a form posted to one that takes none (as
    test clients do) is ignored as before. Bodies of GET and the like are read by nobody.
    """
    if request.method in ("GET", "HEAD", "OPTIONS", "TRACE"):
        return
    if request.content_type == "application/json":
        json_body(request)
    elif request.path.startswith(API_PREFIX):
        _read(request)


def json_body(request: HttpRequest) -> Any:
    """The request's body as JSON (None when empty), or ArenaError (TooLarge) saying what is wrong."""
    if hasattr(request, _PARSED):
        return getattr(request, _PARSED)
    value = _parse(_read(request))
    setattr(request, _PARSED, value)
    return value


def _read(request: HttpRequest) -> bytes:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    too_large = TooLarge(f"The request body is larger than {(limit or 0) / 1024 / 1024:g} MB.")
    try:
        body = request.body  # refused up front when Content-Length says it is too large
    except RequestDataTooBig:
        raise too_large from None
    if limit is not None and len(body) > limit:  # a body sent without Content-Length
        raise too_large
    return body


def _finite(text: str) -> float:
    number = float(text)
    if number in (float("inf"), float("-inf")):
        raise _NotFinite(text)
    return number


def _constant(text: str) -> float:
    raise _NotFinite(text)


def _parse(body: bytes) -> Any:
    if not body.strip():
        return None
    try:
        value = json.loads(body, parse_float=_finite, parse_constant=_constant)
    except _NotFinite as error:
        shown = str(error) if len(str(error)) <= 20 else f"{str(error)[:20]}..."
        raise ArenaError(f"The request body holds a number that is not finite ({shown}).") from None
    except RecursionError:
        raise _too_deep() from None
    except ValueError:  # JSONDecodeError, bad UTF-8, an integer of more than 4,300 digits
        raise ArenaError("The request body is not valid JSON.") from None
    if _depth_exceeds(value, MAX_JSON_DEPTH):
        raise _too_deep()
    return value


def _too_deep() -> ArenaError:
    return ArenaError(f"The request body is nested more than {MAX_JSON_DEPTH} levels deep.")


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether arrays and objects sit more than ``limit`` deep (without recursion: any depth is safe)."""
    stack = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
