"""JSON API (OpenAPI schema at /api/v1/openapi.json, docs at /api/v1/docs).

Voters are identified by the same signed cookie as the pages; state-changing calls need the CSRF
token (cookie ``csrftoken`` echoed in the ``X-CSRFToken`` header), like the pages' forms.
"""

from __future__ import annotations

from typing import Any, Literal

from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from ninja import NinjaAPI, Schema
from ninja.errors import HttpError
from ninja.parser import Parser

from arena.api_common import ErrorOut
from arena.json_body import json_body
from arena.models import Battle, Campaign
from arena.rendering import render_markdown
from arena.services import access, battles, ratelimit, votes
from arena.services.errors import ArenaError, Conflict
from arena.services.voters import battle_owner, get_or_create_voter, remember_voter, voter_from_cookie


class CheckedJsonParser(Parser):
    """Bodies as arena.middleware.JsonBodyMiddleware checked them (size, depth, finite numbers), parsed once."""

    def parse_body(self, request: HttpRequest) -> Any:
        return json_body(request)


api = NinjaAPI(title="Arena API", version="1", urls_namespace="api", parser=CheckedJsonParser())


class DimensionOut(Schema):
    key: str
    label: str
    help_text: str
    scale_min: int
    scale_max: int


class CampaignOut(Schema):
    slug: str
    title: str
    status: str
    mode: str
    instructions_html: str
    allow_tie: bool
    allow_both_bad: bool
    dimensions: list[DimensionOut]


class MessageOut(Schema):
    role: str
    content: str


class SideOut(Schema):
    label: Literal["A", "B"]
    html: str


class BattleOut(Schema):
    id: str
    campaign: str
    messages: list[MessageOut]
    a: SideOut
    b: SideOut
    status: str


class VoteIn(Schema):
    verdict: Literal["left", "right", "tie", "both_bad"]
    scores: dict[str, dict[str, int | None]] | None = None
    duration_ms: int | None = None


class VoteOut(Schema):
    verdict: str
    a_model: str
    b_model: str


@api.exception_handler(ArenaError)
def arena_error(request: HttpRequest, error: ArenaError) -> HttpResponse:
    response = api.create_response(request, {"error": error.code, "message": error.message}, status=error.status)
    if getattr(error, "retry_after", None):
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def _check_csrf(request: HttpRequest) -> None:
    reason = CsrfViewMiddleware(lambda r: HttpResponse()).process_view(request, None, (), {})
    if reason is not None:
        raise HttpError(403, "CSRF check failed: send the csrftoken cookie's value in the X-CSRFToken header.")


def _campaign_out(campaign: Campaign) -> dict[str, Any]:
    return {
        "slug": campaign.slug,
        "title": campaign.title,
        "status": campaign.status,
        "mode": campaign.mode,
        "instructions_html": render_markdown(campaign.instructions),
        "allow_tie": campaign.allow_tie,
        "allow_both_bad": campaign.allow_both_bad,
        "dimensions": list(campaign.dimensions.all()),
    }


def _battle_out(battle: Battle) -> dict[str, Any]:
    return {
        "id": battle.id,
        "campaign": battle.campaign.slug,
        "messages": [m for m in battle.prompt.messages if m.get("role") != "system"],
        "a": {"label": "A", "html": battle.left.html},
        "b": {"label": "B", "html": battle.right.html},
        "status": battle.status,
    }


@api.get("/campaigns", response=list[CampaignOut], tags=["campaigns"])
def list_campaigns(request: HttpRequest):
    """Campaigns open to the public (not drafts)."""
    return [_campaign_out(c) for c in access.listed_campaigns(request)]


@api.get("/campaigns/{slug}", response={200: CampaignOut, 404: ErrorOut}, tags=["campaigns"])
def get_campaign(request: HttpRequest, slug: str):
    return _campaign_out(access.visible_campaign(request, slug))


@api.post(
    "/campaigns/{slug}/battles",
    response={200: BattleOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 429: ErrorOut},
    tags=["voting"],
)
def next_battle(request: HttpRequest, response: HttpResponse, slug: str):
    """The voter's next battle (their open one if any). Sets the voter cookie on first use."""
    _check_csrf(request)
    profile = access.visible_profile(request, slug)
    if profile.campaign.task == Campaign.Task.RANKING:
        raise Conflict(f"This campaign asks for rankings: POST /api/v1/campaigns/{slug}/rankings instead.")
    ratelimit.check_battle(request)
    voter, created = get_or_create_voter(request)
    access.check_may_vote(profile.campaign, voter, authenticated=request.user.is_authenticated)
    battle = battles.open_battle(profile, voter.pk)
    if created:
        remember_voter(response, voter)
    return {
        "id": battle.id,
        "campaign": slug,
        "messages": [m for m in battle.messages if m.get("role") != "system"],
        "a": {"label": "A", "html": battle.left_html},
        "b": {"label": "B", "html": battle.right_html},
        "status": "open",
    }


@api.get("/battles/{battle_id}", response={200: BattleOut, 404: ErrorOut}, tags=["voting"])
def get_battle(request: HttpRequest, battle_id: str):
    return _battle_out(battles.voter_battle(battle_id, voter_from_cookie(request)))


@api.post(
    "/battles/{battle_id}/vote",
    response={200: VoteOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 429: ErrorOut},
    tags=["voting"],
)
def vote(request: HttpRequest, battle_id: str, payload: VoteIn):
    """Vote on your battle; the answer reveals the two models."""
    _check_csrf(request)
    voter = battle_owner(request)
    ratelimit.check_vote(request)
    recorded = votes.record_vote(battle_id, voter, payload.verdict, payload.scores, payload.duration_ms)
    return {"verdict": recorded.vote.verdict, "a_model": recorded.left_name, "b_model": recorded.right_name}


api.add_router("/exports", "arena.exports.api.router")
api.add_router("/judges", "arena.judges.api.router")
api.add_router("", "arena.ranking_api.router")
