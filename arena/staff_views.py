"""Staff pages: the campaign dashboard and its pause / resume / close buttons."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from arena.models import Campaign
from arena.services import campaigns, dashboard, quality
from arena.services.errors import ArenaError
from ratings.models import OVERALL, LeaderboardSnapshot


@staff_member_required
@require_GET
def campaign_dashboard(request: HttpRequest, slug: str) -> HttpResponse:
    campaign = get_object_or_404(Campaign, slug=slug)
    snapshot = LeaderboardSnapshot.objects.filter(
        campaign=campaign, dimension=OVERALL, category=OVERALL, method="davidson"
    ).first()
    context = {
        "campaign": campaign,
        "timeline": dashboard.votes_over_time(campaign),
        "coverage": dashboard.coverage(campaign),
        "thin_prompts": dashboard.thin_prompts(campaign),
        "voters": dashboard.top_voters(campaign),
        "verdicts": dashboard.verdict_rates(campaign),
        "agreement": quality.campaign_agreement(campaign),
        "snapshot": snapshot,
        "transitions": [s for s in ("active", "paused", "closed") if s != campaign.status],
    }
    majority = context["agreement"]["majority_agreement"]
    for row in context["voters"]["rows"]:
        row["agreement"] = majority.get(row["voter__public_id"])
    return render(request, "arena/staff/dashboard.html", context)


@staff_member_required
@require_POST
def campaign_set_status(request: HttpRequest, slug: str) -> HttpResponse:
    campaign = get_object_or_404(Campaign, slug=slug)
    try:
        campaigns.set_status(campaign, request.POST.get("status", ""))
    except ArenaError as error:
        messages.error(request, error.message)
    except ValueError:
        messages.error(request, "Unknown status.")
    return redirect("arena:dashboard", slug=slug)
