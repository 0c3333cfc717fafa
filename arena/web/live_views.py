"""Thin HTTP views of live battles: the prompt form, the battle page, a further turn.

The answers stream over the websocket (arena.web.consumers); voting uses the ordinary vote view
(``/b/<id>/vote``) and reveal page.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from arena.core.errors import ArenaError, NotFound
from arena.core.json_body import json_body
from arena.models import Battle, Campaign, Response
from arena.rendering import render_markdown
from arena.services import access, battles, live
from arena.services.guardrails import budgets, flood
from arena.services.voters import battle_owner, get_or_create_voter, remember_voter, voter_from_cookie
from arena.web.helpers import never_cache, shows_arena_errors, wants_json


def _prompt_from(request: HttpRequest) -> str:
    if request.content_type == "application/json":
        payload = json_body(request)  # parsed and checked at the edge (arena.web.middleware)
        return payload.get("prompt", "") if isinstance(payload, dict) else ""
    return request.POST.get("prompt", "")


def _battle_urls(battle: Battle) -> dict[str, str]:
    return {
        "battle": battle.pk,
        "url": reverse("arena_live:battle", args=[battle.pk]),
        "websocket": f"/ws/battles/{battle.pk}/",
    }


@never_cache
@require_http_methods(["GET", "POST"])
@shows_arena_errors
def start(request: HttpRequest, slug: str) -> HttpResponse:
    campaign = access.visible_campaign(request, slug)
    request.arena_campaign = campaign
    if campaign.mode != Campaign.Mode.LIVE:
        return redirect("arena:next", slug=campaign.slug)
    context = {"campaign": campaign, "max_chars": settings.ARENA_MAX_PROMPT_CHARS, "prompt": "", "error": ""}
    if request.method == "GET":
        access.check_may_vote(campaign, voter_from_cookie(request), authenticated=request.user.is_authenticated)
        context["error"] = budgets.daily_budget_message(campaign)  # say so before the voter writes
        return render(request, "arena/live_start.html", context)
    flood.check_request(request)  # before a voter is created: dropping cookies resets nothing
    voter, created = get_or_create_voter(request)
    text = _prompt_from(request)
    try:
        battle = live.start_battle(campaign, voter, text, authenticated=request.user.is_authenticated)
    except ArenaError as error:
        if wants_json(request):
            response = JsonResponse(error.as_json(), status=error.status)
        else:
            context.update(prompt=text, error=error.message)
            response = render(request, "arena/live_start.html", context, status=error.status)
        if getattr(error, "retry_after", None):
            response.headers["Retry-After"] = str(error.retry_after)
    else:
        if wants_json(request):
            response = JsonResponse(_battle_urls(battle), status=201)
        else:
            response = redirect("arena_live:battle", battle_id=battle.pk)
    if created:
        remember_voter(response, voter)
    return response


@never_cache
@require_http_methods(["GET"])
@shows_arena_errors
def battle_page(request: HttpRequest, battle_id: str) -> HttpResponse:
    battle = battles.voter_battle(battle_id, voter_from_cookie(request))
    request.arena_campaign = battle.campaign
    if battle.status == Battle.Status.VOTED or not battle.is_live:
        return redirect("arena:battle", battle_id=battle.pk)
    return _render_battle(request, battle)


def _render_battle(request: HttpRequest, battle: Battle, error: str = "", status: int = 200) -> HttpResponse:
    campaign = battle.campaign
    left, right = battle.left, battle.right
    both_done = left.status == Response.Status.DONE and right.status == Response.Status.DONE
    failed = Response.Status.FAILED in (left.status, right.status) or battle.status == Battle.Status.VOID
    turns = battle.conversation["user"]
    context = {
        "campaign": campaign,
        "battle": battle,
        "earlier": live.earlier_turns(battle),
        "current_html": render_markdown(turns[-1]),
        "sides": [("a", "A", left), ("b", "B", right)],
        "both_done": both_done,
        "failed": failed,
        "can_continue": both_done and not failed and len(turns) < settings.ARENA_LIVE_MAX_TURNS,
        "more_turns": len(turns) < settings.ARENA_LIVE_MAX_TURNS,
        "max_chars": settings.ARENA_MAX_PROMPT_CHARS,
        "dimensions": list(campaign.dimensions.all()),
        "ws_path": f"/ws/battles/{battle.pk}/",
        "error": error,
    }
    return render(request, "arena/live_battle.html", context, status=status)


@never_cache
@require_POST
@shows_arena_errors
def add_turn(request: HttpRequest, battle_id: str) -> HttpResponse:
    voter = battle_owner(request)
    flood.check_request(request)
    try:
        battle = live.add_turn(battle_id, voter, _prompt_from(request))
    except ArenaError as error:
        if wants_json(request) or isinstance(error, NotFound):
            raise
        battle = battles.voter_battle(battle_id, voter)
        return _render_battle(request, battle, error=error.message, status=error.status)
    if wants_json(request):
        return JsonResponse(_battle_urls(battle))
    return redirect("arena_live:battle", battle_id=battle.pk)
