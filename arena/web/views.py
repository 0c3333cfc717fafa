"""Thin HTTP views: parse the request, call one domain function, render."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from arena.core.errors import ArenaError, NotFound
from arena.models import Battle, Campaign, Voter
from arena.rendering import render_markdown
from arena.services import access, battles, handouts, ratelimit, votes
from arena.services.voters import battle_owner, get_or_create_voter, remember_voter, voter_from_cookie
from arena.web import pages
from arena.web.helpers import (
    csrf_token,
    duration_ms,
    json_object,
    never_cache,
    next_battle_url,
    shows_arena_errors,
    wants_json,
)
from arena.web.middleware import database_circuit


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    campaigns = access.listed_campaigns(request).annotate(n_votes=Count("votes")).order_by("status", "-created_at")
    return render(request, "arena/home.html", {"campaigns": campaigns})


@require_GET
@shows_arena_errors
def campaign_detail(request: HttpRequest, slug: str) -> HttpResponse:
    token = request.GET.get("invite", "")
    campaign = access.visible_campaign(request, slug, invite=token)
    request.arena_campaign = campaign
    if token and campaign.access == Campaign.Access.INVITE:
        voter, _ = get_or_create_voter(request)
        access.admit_with_invite(campaign, voter, token)
        response = redirect("arena:campaign", slug=campaign.slug)
        remember_voter(response, voter)
        return response
    context = {
        "campaign": campaign,
        "instructions_html": render_markdown(campaign.instructions),
        "dimensions": campaign.dimensions.all(),
    }
    return render(request, "arena/campaign.html", context)


@never_cache
@require_GET
@shows_arena_errors
def next_battle(request: HttpRequest, slug: str) -> HttpResponse:
    profile = access.visible_profile(request, slug)
    campaign = request.arena_campaign = profile.campaign
    if campaign.task == Campaign.Task.RANKING:
        return redirect("arena_rank:next", slug=slug)
    ratelimit.check_battle(request)
    voter, created = get_or_create_voter(request)
    battle = handouts.hand_out(profile, voter, authenticated=request.user.is_authenticated)
    staff = request.user.is_staff
    response = HttpResponse(pages.battle_page(profile, battle, staff=staff, csrf_token=csrf_token(request)))
    if created:
        remember_voter(response, voter)
    return response


@never_cache
@require_GET
@shows_arena_errors
def battle_detail(request: HttpRequest, battle_id: str) -> HttpResponse:
    """The short battle URL (live battles link to it): the reveal once voted, else the battle's own page."""
    battle = battles.voter_battle(battle_id, voter_from_cookie(request))
    request.arena_campaign = battle.campaign
    if battle.status == Battle.Status.VOTED:
        return _render_reveal(request, battle)
    return redirect("arena:battle-page", slug=battle.campaign.slug, battle_id=battle.pk)


@never_cache
@require_GET
@shows_arena_errors
def battle_page(request: HttpRequest, slug: str, battle_id: str) -> HttpResponse:
    """A battle's own URL (/c/<slug>/b/<id>/), for its voter only: the battle while it is open, the
    same battle with the vote and the names once voted. Back after a vote and reload land here, so
    neither shows another battle; another voter's battle is "No such battle" (404)."""
    battle = battles.voter_battle(battle_id, voter_from_cookie(request))
    if battle.campaign.slug != slug:
        raise NotFound("No such battle.")
    request.arena_campaign = battle.campaign
    if battle.status == Battle.Status.VOTED:
        return _render_reveal(request, battle)
    if battle.is_live:
        return redirect("arena_live:battle", battle_id=battle.pk)
    if battle.status != Battle.Status.OPEN:
        raise NotFound("This battle was withdrawn. Please start the next one.")
    profile = access.visible_profile(request, slug)
    page = pages.battle_page(
        profile, pages.battle_view(battle), staff=request.user.is_staff, csrf_token=csrf_token(request)
    )
    return HttpResponse(page)


def _render_reveal(request: HttpRequest, battle: Battle) -> HttpResponse:
    vote = battle.vote
    context = {
        "campaign": battle.campaign,
        "battle": battle,
        "vote": vote,
        "left_name": battle.left.model.name,
        "right_name": battle.right.model.name,
        "left_html": battle.left.html,
        "right_html": battle.right.html,
        "turns": pages.rendered_turns(battle.prompt.messages),
    }
    return render(request, "arena/reveal.html", context)


def _scores_from_form(request: HttpRequest) -> dict[str, dict[str, str]]:
    scores: dict[str, dict[str, str]] = {}
    for name, value in request.POST.items():
        if name.startswith("score-") and value != "":
            key, _, side = name[len("score-") :].rpartition("-")
            scores.setdefault(key, {})[side] = value
    return scores


@never_cache
@require_POST
@shows_arena_errors
def vote(request: HttpRequest, battle_id: str) -> HttpResponse:
    """Store the vote. A JSON reply reveals the two models; asked with ``next_battle`` (true in JSON,
    "1" in a form), it also carries the voter's next battle, so that a page shows it without loading
    another (one request per battle, with the hand-out's rules and rate limits)."""
    voter = battle_owner(request)
    if request.content_type == "application/json":
        payload = json_object(request)
        verdict, scores, duration = payload.get("verdict", ""), payload.get("scores"), payload.get("duration_ms")
        asks_next = payload.get("next_battle") is True
    else:
        verdict, scores = request.POST.get("verdict", ""), _scores_from_form(request)
        duration, asks_next = request.POST.get("duration_ms"), request.POST.get("next_battle") == "1"
    asks_next = asks_next and wants_json(request)
    next_refused = ratelimit.check_vote_and_battle(request) if asks_next else ratelimit.check_vote(request)
    recorded = votes.record_vote(battle_id, voter, verdict, scores, duration_ms(duration))
    if not wants_json(request):
        return redirect("arena:battle-page", slug=recorded.campaign_slug, battle_id=battle_id)
    reply: dict[str, Any] = {
        "verdict": recorded.vote.verdict,
        "verdict_label": recorded.vote.get_verdict_display(),
        "left": {"model": recorded.left_name},
        "right": {"model": recorded.right_name},
        "next": next_battle_url(recorded.campaign_slug),
    }
    if asks_next:
        reply.update(_next_battle(request, recorded.campaign_slug, voter, next_refused))
    return JsonResponse(reply)


def _next_battle(request: HttpRequest, slug: str, voter: Voter, refused: ArenaError | None) -> dict[str, Any]:
    """The reply's ``next_battle`` (as ``pages.battle_data``), or null and ``next_battle_error`` (code
    and message) when none is handed out: the page then loads ``next``, which says why."""
    battle, error = handouts.after_vote(request, slug, voter, refused)
    if battle is None:
        return {"next_battle": None, "next_battle_error": error.as_json()}
    return {"next_battle": pages.battle_data(slug, battle)}


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Database and Redis reachable: 200, else 503 (for load balancers and compose). Answers within
    a second whatever is down (measured: docs/reliability.md, "PostgreSQL down under voting")."""
    from django.conf import settings
    from django.core.cache import cache

    status = {"database": "ok", "redis": "not configured"}
    healthy = True
    if not _database_ok():
        status["database"] = "unavailable"
        healthy = False
    if settings.REDIS_URL:
        try:
            cache.set("healthz", 1, 5)
            status["redis"] = "ok"
        except Exception:
            status["redis"] = "unavailable"
            healthy = False
    return JsonResponse(status, status=200 if healthy else 503)


HEALTHZ_POOL_WAIT = 0.5  # seconds; requests wait up to DB_POOL_TIMEOUT


def _database_ok() -> bool:
    """While this process knows the database is down (arena.web.middleware.DatabaseCircuit), no without
    asking, unless it is time to probe again; otherwise SELECT 1 on a pooled connection, waiting for
    one at most HEALTHZ_POOL_WAIT."""
    if not database_circuit.allows():
        return False
    try:
        pool = getattr(connection, "pool", None)  # PostgreSQL's psycopg pool; None for SQLite
        if pool is None:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        else:
            pool.open()  # as Django does before its first connection
            with pool.connection(timeout=HEALTHZ_POOL_WAIT) as conn:
                conn.execute("SELECT 1")
    except Exception as error:
        database_circuit.failed(error)
        return False
    return True
