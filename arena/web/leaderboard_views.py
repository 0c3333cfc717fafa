"""Leaderboard pages: they read the latest snapshot and never compute on request."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from arena.exports.leaderboard_csv import write_leaderboard_csv
from arena.leaderboards.models import OVERALL, LeaderboardSnapshot
from arena.leaderboards.presentation import leaderboard_context
from arena.services import access
from arena.web.helpers import shows_arena_errors


def _snapshot(request: HttpRequest, slug: str) -> tuple[object, LeaderboardSnapshot | None, dict]:
    campaign = access.visible_campaign(request, slug)
    request.arena_campaign = campaign
    selection = {
        "dimension": request.GET.get("dimension", OVERALL),
        "category": request.GET.get("category", OVERALL),
        "method": request.GET.get("method", "davidson"),
    }
    snapshot = LeaderboardSnapshot.objects.filter(campaign=campaign, **selection).first()
    return campaign, snapshot, selection


@require_GET
@shows_arena_errors
def leaderboard(request: HttpRequest, slug: str) -> HttpResponse:
    campaign, snapshot, selection = _snapshot(request, slug)
    context = leaderboard_context(campaign, snapshot, selection)
    return render(request, "ratings/leaderboard.html", context)


@require_GET
@shows_arena_errors
def leaderboard_json(request: HttpRequest, slug: str) -> JsonResponse:
    campaign, snapshot, selection = _snapshot(request, slug)
    if snapshot is None:
        return JsonResponse({"error": "not_found", "message": "No leaderboard has been computed yet."}, status=404)
    return JsonResponse(
        {
            **snapshot.board(),
            "campaign": campaign.slug,
            **selection,
            "n_votes": snapshot.n_votes,
            "computed_at": snapshot.computed_at.isoformat(),
        }
    )


@require_GET
@shows_arena_errors
def leaderboard_csv(request: HttpRequest, slug: str) -> HttpResponse:
    campaign, snapshot, _selection = _snapshot(request, slug)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{campaign.slug}-leaderboard.csv"'
    write_leaderboard_csv(response, [snapshot] if snapshot else [])  # the export's layout, one board
    return response
