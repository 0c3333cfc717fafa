"""Thin HTTP views of ranking tasks: the ranking page, the submission, the reveal.

The page names the responses "Response A", "B", ... and posts their letters, best first; the
server maps letters to responses (arena.services.rankings), so no response or model id reaches the
voter before the submission.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from arena.core.errors import ArenaError, NotFound
from arena.models import Campaign, Ranking
from arena.services import access, rankings, ratelimit
from arena.services.voters import get_or_create_voter, remember_voter, voter_from_cookie
from arena.web import pages
from arena.web.helpers import duration_ms, json_object, never_cache, shows_arena_errors, wants_json


def _render_task(
    request: HttpRequest, campaign: Campaign, view: rankings.RankingView, *, error: str = "", status: int = 200
) -> HttpResponse:
    context = {
        "campaign": campaign,
        "ranking": view,
        "turns": pages.rendered_turns(view.messages),
        "positions": range(1, len(view.responses) + 1),
        "error": error,
    }
    return render(request, "arena/ranking.html", context, status=status)


@never_cache
@require_GET
@shows_arena_errors
def next_ranking(request: HttpRequest, slug: str) -> HttpResponse:
    """The voter's current ranking task in this campaign (the same one on a reload)."""
    profile = access.visible_profile(request, slug)
    campaign = request.arena_campaign = profile.campaign
    if campaign.task != Campaign.Task.RANKING:
        return redirect("arena:next", slug=slug)
    ratelimit.check_battle(request)
    voter, created = get_or_create_voter(request)
    rankings.check_may_rank(campaign, voter, authenticated=request.user.is_authenticated)
    response = _render_task(request, campaign, rankings.open_ranking(profile, voter))
    if created:
        remember_voter(response, voter)
    return response


@never_cache
@require_GET
@shows_arena_errors
def ranking_detail(request: HttpRequest, ranking_id: str) -> HttpResponse:
    """The reveal once submitted; before that, back to the task."""
    ranking = rankings.voter_ranking(ranking_id, voter_from_cookie(request))
    request.arena_campaign = ranking.campaign
    if ranking.status != Ranking.Status.SUBMITTED:
        return redirect("arena_rank:next", slug=ranking.campaign.slug)
    return _render_reveal(request, rankings.submitted_ranking(ranking), ranking.campaign)


def _render_reveal(request: HttpRequest, submitted: rankings.SubmittedRanking, campaign: Campaign) -> HttpResponse:
    context = {"campaign": campaign, "submitted": submitted, "turns": pages.rendered_turns(submitted.messages)}
    return render(request, "arena/ranking_reveal.html", context)


def _submission(request: HttpRequest) -> tuple[Any, int | None]:
    """The order (letters, best first) and the time spent, from a form or a JSON body."""
    if request.content_type == "application/json":
        payload = json_object(request)
        order, duration = payload.get("order"), payload.get("duration_ms")
    else:
        order, duration = request.POST.get("order", ""), request.POST.get("duration_ms")
    return order, duration_ms(duration)


@never_cache
@require_POST
@shows_arena_errors
def submit(request: HttpRequest, ranking_id: str) -> HttpResponse:
    voter = voter_from_cookie(request)
    if voter is None:
        raise NotFound("No such ranking.")
    ratelimit.check_vote(request)
    order, duration_ms = _submission(request)
    try:
        submitted = rankings.submit_ranking(ranking_id, voter, order, duration_ms)
    except ArenaError as error:
        if error.status != 400 or wants_json(request):
            raise
        # A malformed order on the page: show the same task again with the message; nothing is lost.
        ranking = rankings.voter_ranking(ranking_id, voter)
        request.arena_campaign = ranking.campaign
        return _render_task(request, ranking.campaign, rankings.ranking_view(ranking), error=error.message, status=400)
    if wants_json(request):
        return JsonResponse(
            {
                "ranking": submitted.id,
                "order": [{"rank": r.rank, "label": r.label, "model": r.model} for r in submitted.ranked],
                "pairs": submitted.pairs,
                "next": reverse("arena_rank:next", args=[submitted.campaign_slug]),
            }
        )
    return redirect("arena_rank:ranking", ranking_id=ranking_id)
