"""The staff dashboard's guardrails: flagged battles with their reasons and counts, refused prompts,
generation usage and estimated cost per model and day, and the live budgets used today."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Count, Q, Sum

from arena.models import Battle, Campaign, GenerationUsage, RefusedPrompt
from arena.services.guardrails import budgets, usage
from arena.services.guardrails.output_checks import REASONS, describe

FLAGGED_SHOWN = 50
REFUSED_SHOWN = 20
USAGE_DAYS = 14


def _flagged(campaign: Campaign):
    checked = ~Q(left__checks="") | ~Q(right__checks="")
    return Battle.objects.filter(Q(flagged=True) | checked, campaign=campaign)


def flagged_battles(campaign: Campaign) -> dict[str, Any]:
    """Battles with an answer flagged by the output checks or by the identity check: counts per
    reason (a battle counts once per reason) and the latest ones with their reasons per side."""
    counts = _flagged(campaign).aggregate(
        total=Count("id"),
        identity=Count(
            "id", filter=Q(flagged=True) | Q(left__checks__contains="identity") | Q(right__checks__contains="identity")
        ),
        **{
            key: Count("id", filter=Q(left__checks__contains=key) | Q(right__checks__contains=key))
            for key in REASONS
            if key != "identity"
        },
    )
    rows = []
    latest = (
        _flagged(campaign)
        .order_by("-created_at")
        .values(
            "id",
            "created_at",
            "status",
            "flagged",
            "left__checks",
            "right__checks",
            "left__model__name",
            "right__model__name",
        )[:FLAGGED_SHOWN]
    )
    for battle in latest:
        reasons = [f"A ({battle['left__model__name']}): {r}" for r in describe(battle["left__checks"])]
        reasons += [f"B ({battle['right__model__name']}): {r}" for r in describe(battle["right__checks"])]
        if battle["flagged"] and "identity" not in battle["left__checks"] + battle["right__checks"]:
            reasons.append("an answer named a model")
        rows.append({**battle, "reasons": reasons})
    by_reason = [(REASONS[key], counts[key]) for key in REASONS]
    return {"total": counts["total"], "by_reason": by_reason, "rows": rows}


def refused_prompts(campaign: Campaign) -> dict[str, Any]:
    refused = RefusedPrompt.objects.filter(campaign=campaign)
    return {"total": refused.count(), "rows": list(refused.order_by("-created_at")[:REFUSED_SHOWN])}


def usage_per_day(campaign: Campaign) -> dict[str, Any]:
    """Generations, tokens and estimated cost per model and day, the last USAGE_DAYS days."""
    since = usage.today() - timedelta(days=USAGE_DAYS - 1)
    rows = list(
        GenerationUsage.objects.filter(campaign=campaign, day__gte=since)
        .order_by("-day", "model__name")
        .values("day", "model__name", "generations", "prompt_tokens", "completion_tokens", "cost")
    )
    totals = GenerationUsage.objects.filter(campaign=campaign, day__gte=since).aggregate(
        generations=Sum("generations"),
        prompt_tokens=Sum("prompt_tokens"),
        completion_tokens=Sum("completion_tokens"),
        cost=Sum("cost"),
    )
    return {"rows": rows, "totals": totals, "days": USAGE_DAYS}


def budget_today(campaign: Campaign) -> dict[str, Any]:
    spent = budgets.day_usage(campaign)
    return {
        "tokens": spent.tokens,
        "cost": spent.cost,
        "tokens_limit": campaign.live_tokens_per_day,
        "cost_limit": campaign.live_cost_per_day,
        "battles_per_hour": campaign.live_battles_per_hour,
        "paused": budgets.daily_budget_message(campaign),
    }


def figures(campaign: Campaign) -> dict[str, Any]:
    return {
        "flagged": flagged_battles(campaign),
        "refused": refused_prompts(campaign),
        "usage": usage_per_day(campaign),
        "budget": budget_today(campaign),
        "live": campaign.mode == Campaign.Mode.LIVE,
    }
