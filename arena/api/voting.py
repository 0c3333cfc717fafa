"""The voting API: a campaign's public description, the voter's next battle, and the vote."""

from __future__ import annotations

from typing import Any, Literal

from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema

from arena.api.common import ErrorOut, check_csrf
from arena.core.errors import Conflict
from arena.models import Battle, Campaign
from arena.rendering import render_markdown
from arena.services import access, battles, handouts, ratelimit, votes
from arena.services.new_battles import BattleView
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
    next_battle: bool = False  # the reply also carries the voter's next battle (one request per battle)


class VoteOut(Schema):
    verdict: str
    a_model: str
    b_model: str
    next_battle: BattleOut | None = None  # asked for: the voter's next battle, or null and the reason
    next_battle_error: ErrorOut | None = None


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
    battle = handouts.hand_out(profile, voter, authenticated=request.user.is_authenticated)
    if created:
        remember_voter(response, voter)
    return _new_battle_out(slug, battle)


def _new_battle_out(slug: str, battle: BattleView) -> dict[str, Any]:
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
    """Vote on your battle; the answer reveals the two models. With ``next_battle``, it also carries
    your next battle (the same hand-out as POST /campaigns/{slug}/battles, its rate limits counted with
    the vote's), or null and ``next_battle_error`` saying why none is handed out."""
    check_csrf(request)
    voter = battle_owner(request)
    refused = ratelimit.check_vote_and_battle(request) if payload.next_battle else ratelimit.check_vote(request)
    recorded = votes.record_vote(battle_id, voter, payload.verdict, payload.scores, payload.duration_ms)
    reply: dict[str, Any] = {
        "verdict": recorded.vote.verdict,
        "a_model": recorded.left_name,
        "b_model": recorded.right_name,
    }
    if payload.next_battle:
        battle, error = handouts.after_vote(request, recorded.campaign_slug, voter, refused)
        if battle is not None:
            reply["next_battle"] = _new_battle_out(recorded.campaign_slug, battle)
        else:
            reply["next_battle_error"] = error.as_json()
    return reply
