"""The JSON API at /api/v1/ (OpenAPI schema at /api/v1/openapi.json, docs at /api/v1/docs): one NinjaAPI
object with a router per area.

Voters are identified by the same signed cookie as the pages; state-changing calls need the CSRF
token (cookie ``csrftoken`` echoed in the ``X-CSRFToken`` header), like the pages' forms. Every
``ArenaError`` becomes ``{"error": code, "message": ...}`` with its status (and ``Retry-After``).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.parser import Parser

from arena.core.errors import ArenaError
from arena.core.json_body import json_body


class CheckedJsonParser(Parser):
    """Bodies as arena.web.middleware.JsonBodyMiddleware checked them (size, depth, finite numbers), parsed once."""

    def parse_body(self, request: HttpRequest) -> Any:
        return json_body(request)


api = NinjaAPI(title="Arena API", version="1", urls_namespace="api", parser=CheckedJsonParser())


@api.exception_handler(ArenaError)
def arena_error(request: HttpRequest, error: ArenaError) -> HttpResponse:
    response = api.create_response(request, error.as_json(), status=error.status)
    if getattr(error, "retry_after", None):
        response.headers["Retry-After"] = str(error.retry_after)
    return response


api.add_router("", "arena.api.voting.router")
api.add_router("/exports", "arena.api.exports.router")
api.add_router("/judges", "arena.api.judges.router")
api.add_router("", "arena.api.rankings.router")
