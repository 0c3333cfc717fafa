"""Staff pages: the campaign dashboard, its pause / resume / close buttons, voter exclusion, and the
voter-quality figures as JSON. Each needs a permission besides ``is_staff`` (see arena/permissions.py)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from arena.core.errors import ArenaError
from arena.judges import dashboard as judges_dashboard
from arena.leaderboards.models import OVERALL, LeaderboardSnapshot
from arena.models import Campaign
from arena.permissions import CHANGE_CAMPAIGN, CHANGE_VOTER, VIEW_CAMPAIGN, allowed, staff_permission_required
from arena.services import abuse, campaigns, dashboard, quality_figures
from arena.services.guardrails import dashboard as guardrails_dashboard


@staff_permission_required(VIEW_CAMPAIGN)
@require_GET
def campaign_dashboard(request: HttpRequest, slug: str) -> HttpResponse:
    campaign = get_object_or_404(Campaign, slug=slug)
    snapshot = LeaderboardSnapshot.objects.filter(
        campaign=campaign, dimension=OVERALL, category=OVERALL, method="davidson"
    ).first()
    quality = quality_figures.latest(campaign)
    agreement = quality["figures"] if quality else None
    context = {
        "campaign": campaign,
        "timeline": dashboard.votes_over_time(campaign),
        "coverage": dashboard.coverage(campaign),
        "thin_prompts": dashboard.thin_prompts(campaign),
        "blind": dashboard.blind_remaining(campaign),
        "voters": dashboard.top_voters(campaign),
        "verdicts": dashboard.verdict_rates(campaign),
        "quality": quality,
        "agreement": agreement,
        "quality_computed_at": quality_figures.computed_at(quality) if quality else None,
        "snapshot": snapshot,
        "tally": dashboard.vote_tally(campaign, snapshot.n_votes if snapshot else 0),
        "transitions": [s for s in ("active", "paused", "closed") if s != campaign.status],
        "can_change_status": allowed(request.user, CHANGE_CAMPAIGN),
        "can_exclude": allowed(request.user, CHANGE_VOTER),
        "guardrails": guardrails_dashboard.figures(campaign),
        "judges": judges_dashboard.figures(campaign),
    }
    majority = agreement["majority_agreement"] if agreement else {}
    gold = agreement["gold_agreement"] if agreement else {}
    for row in context["voters"]["rows"]:
        row["agreement"] = majority.get(row["voter__public_id"])
        row["gold"] = gold.get(row["voter__public_id"])
    return render(request, "arena/staff/dashboard.html", context)


@staff_permission_required(CHANGE_CAMPAIGN)
@require_POST
def campaign_set_status(request: HttpRequest, slug: str) -> HttpResponse:
    campaign = get_object_or_404(Campaign, slug=slug)
    try:
        changed = campaigns.set_status(campaign, request.POST.get("status", ""))
    except ArenaError as error:
        messages.error(request, error.message)
    except ValueError:
        messages.error(request, "Unknown status.")
    else:
        messages.success(request, f"{changed} is now {changed.status}.")
    return redirect("arena:dashboard", slug=slug)


@staff_permission_required(VIEW_CAMPAIGN)
@require_GET
def campaign_quality(request: HttpRequest, slug: str) -> JsonResponse:
    """The dashboard's voter-quality figures: alpha, agreement with the majority and with gold, flags."""
    campaign = get_object_or_404(Campaign, slug=slug)
    entry = quality_figures.latest(campaign)
    if entry is None:
        return JsonResponse({"campaign": campaign.slug, "status": "computing"}, status=202)
    computed_at = quality_figures.computed_at(entry).isoformat()
    return JsonResponse({"campaign": campaign.slug, "computed_at": computed_at, **entry["figures"]})


@staff_permission_required(CHANGE_VOTER)
@require_POST
def voter_set_excluded(request: HttpRequest, slug: str) -> HttpResponse:
    """Exclude a voter from ratings and exports (or take them back), from the dashboard's flag list."""
    campaign = get_object_or_404(Campaign, slug=slug)
    excluded = request.POST.get("excluded") != "0"
    voter = abuse.set_excluded(request.POST.get("voter", ""), excluded)
    if voter is None:
        messages.error(request, "No such voter.")
    else:
        quality_figures.note_exclusion(campaign.pk, voter.public_id, excluded)
        state = "excluded from" if excluded else "counted again in"
        messages.success(
            request,
            f"{voter} is {state} ratings and exports; "
            f"run `manage.py rebuild_ratings {slug}` to update the leaderboards.",
        )
    return redirect("arena:dashboard", slug=slug)
