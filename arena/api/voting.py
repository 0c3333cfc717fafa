"""The voting API: a campaign's public description, the voter's next battle, and the vote."""

from __future__ import annotations

from typing import Any, Literal

from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema

from arena.api.common import ErrorOut, check_csrf
from arena.core.errors import Conflict
from arena.models import Battle, Campaign
from arena.rendering import render_markdown
from arena.services import access, battles, ratelimit, votes
from arena.services.voters import battle_owner, get_or_create_voter, remember_voter, voter_from_cookie

router = Router()


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


@router.get("/campaigns", response=list[CampaignOut], tags=["campaigns"])
def list_campaigns(request: HttpRequest):
    """Campaigns open to the public (not drafts)."""
    return [_campaign_out(c) for c in access.listed_campaigns(request)]


@router.get("/campaigns/{slug}", response={200: CampaignOut, 404: ErrorOut}, tags=["campaigns"])
def get_campaign(request: HttpRequest, slug: str):
    return _campaign_out(access.visible_campaign(request, slug))


@router.post(
    "/campaigns/{slug}/battles",
    response={200: BattleOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 429: ErrorOut},
    tags=["voting"],
)
def next_battle(request: HttpRequest, response: HttpResponse, slug: str):
    """The voter's next battle (their open one if any). Sets the voter cookie on first use."""
    check_csrf(request)
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


@router.get("/battles/{battle_id}", response={200: BattleOut, 404: ErrorOut}, tags=["voting"])
def get_battle(request: HttpRequest, battle_id: str):
    return _battle_out(battles.voter_battle(battle_id, voter_from_cookie(request)))


@router.post(
    "/battles/{battle_id}/vote",
    response={200: VoteOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 429: ErrorOut},
    tags=["voting"],
)
def vote(request: HttpRequest, battle_id: str, payload: VoteIn):
    """Vote on your battle; the answer reveals the two models."""
    check_csrf(request)
    voter = battle_owner(request)
    ratelimit.check_vote(request)
    recorded = votes.record_vote(battle_id, voter, payload.verdict, payload.scores, payload.duration_ms)
    return {"verdict": recorded.vote.verdict, "a_model": recorded.left_name, "b_model": recorded.right_name}
