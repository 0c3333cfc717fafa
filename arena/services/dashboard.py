"""Read-only selectors for the staff dashboard of a campaign (no business rules here)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Count, Sum
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone

from arena.models import Campaign, Item, Prompt, Vote
from arena.services import abuse, quality

CHART_WIDTH, CHART_HEIGHT = 600, 120


def votes_over_time(campaign: Campaign) -> dict[str, Any]:
    """Votes per hour over the last two days, or per day before that."""
    first = Vote.objects.filter(campaign=campaign).order_by("created_at").values_list("created_at", flat=True).first()
    if first is None:
        return {"bars": [], "unit": "day", "total": 0}
    hourly = timezone.now() - first < timedelta(days=2)
    trunc = TruncHour if hourly else TruncDay
    rows = list(
        Vote.objects.filter(campaign=campaign)
        .annotate(bucket=trunc("created_at"))
        .values("bucket")
        .annotate(n=Count("id"))
        .order_by("bucket")
    )
    peak = max(r["n"] for r in rows)
    width = CHART_WIDTH / max(len(rows), 1)
    bars = [
        {
            "label": r["bucket"],
            "n": r["n"],
            "x": round(i * width, 1),
            "width": round(max(width - 2, 1), 1),
            "height": round(r["n"] / peak * (CHART_HEIGHT - 10), 1),
            "y": round(CHART_HEIGHT - r["n"] / peak * (CHART_HEIGHT - 10), 1),
        }
        for i, r in enumerate(rows)
    ]
    return {"bars": bars, "unit": "hour" if hourly else "day", "total": sum(r["n"] for r in rows),
            "width": CHART_WIDTH, "height": CHART_HEIGHT}  # fmt: skip


def vote_tally(campaign: Campaign, counted: int) -> dict[str, int]:
    """The campaign's votes as the leaderboard sees them: ``counted`` on it (the snapshot's count),
    ``awaiting`` the next recompute (not folded yet), and ``left_out``, the rest: votes that never
    count (gold battles, answers that named their model, excluded voters; ratings.aggregation)."""
    votes = Vote.objects.filter(campaign=campaign)
    total, awaiting = votes.count(), votes.filter(folded=False).count()
    return {"total": total, "counted": counted, "awaiting": awaiting, "left_out": max(total - counted - awaiting, 0)}


def coverage(campaign: Campaign) -> dict[str, Any]:
    """Votes per model pair (summed over prompts), as a symmetric matrix of the campaign's models."""
    models = list(campaign.contenders.order_by("name").values_list("id", "name"))
    index = {pk: i for i, (pk, _) in enumerate(models)}
    grid = [[None if i == j else 0 for j in range(len(models))] for i in range(len(models))]
    pairs = Item.objects.filter(campaign=campaign).values("model_lo", "model_hi").annotate(n=Sum("vote_count"))
    for row in pairs:
        i, j = index.get(row["model_lo"]), index.get(row["model_hi"])
        if i is not None and j is not None:
            grid[i][j] = grid[j][i] = row["n"] or 0
    values = [v for line in grid for v in line if v is not None]
    spread = (min(values), max(values)) if values else (0, 0)
    return {"models": [name for _, name in models], "rows": [
        {"model": name, "cells": grid[i]} for i, (_, name) in enumerate(models)
    ], "min": spread[0], "max": spread[1]}  # fmt: skip


def thin_prompts(campaign: Campaign, limit: int = 15) -> list[dict[str, Any]]:
    """The prompts with the fewest votes."""
    return list(
        Prompt.objects.filter(campaign=campaign)
        .annotate(n_votes=Sum("items__vote_count"), pairs=Count("items"))
        .order_by("n_votes", "id")
        .values("id", "external_id", "category", "n_votes", "pairs")[:limit]
    )


def top_voters(campaign: Campaign, limit: int = 25) -> dict[str, Any]:
    counts = (
        Vote.objects.filter(campaign=campaign)
        .values("voter__public_id", "voter__excluded")
        .annotate(n=Count("id"))
        .order_by("-n")
    )
    return {"total": counts.count(), "rows": list(counts[:limit])}


def verdict_rates(campaign: Campaign) -> dict[str, Any]:
    rows = dict(Vote.objects.filter(campaign=campaign).values_list("verdict").annotate(n=Count("id")))
    total = sum(rows.values())
    return {
        "total": total,
        "rates": {v: (rows.get(v, 0), rows.get(v, 0) / total if total else None) for v in Vote.Verdict.values},
    }


def voter_quality(campaign: Campaign) -> dict[str, Any]:
    """Agreement (alpha, with the majority, with gold, and their summaries) and the flagged voters,
    JSON-safe: the dashboard shows it and /staff/c/<slug>/quality.json returns it as is."""
    agreement = quality.campaign_agreement(campaign)
    flags = [
        {"voter": f.public_id, "votes": f.votes, "reasons": f.reasons, "excluded": f.excluded}
        for f in abuse.suspicious_voters(campaign)
    ]
    return {**agreement, "flags": flags}
