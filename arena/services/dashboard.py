"""Read-only selectors for the staff dashboard of a campaign (no business rules here)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Count, Sum
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone

from arena.core.hot_sql import sql
from arena.models import Battle, Campaign, Item, Prompt, Vote
from arena.services import abuse, quality
from arena.services.battles import active_pairs_clause
from arena.services.profiles import campaign_profile
from ratings.axes import nice_ticks, tick_label

# The votes chart's drawing area (SVG user units; the SVG scales to the page's width).
CHART_WIDTH, CHART_HEIGHT = 640, 180
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 44, 12, 10, 34
MAX_BAR_WIDTH = 36
X_LABELS = 8


def votes_over_time(campaign: Campaign, now: datetime | None = None) -> dict[str, Any]:
    """Votes per hour over the last two days, or per day before that, from the first vote's hour (or
    day) to now with empty ones included, drawn as bars on a time axis with a count axis: positions,
    ticks and labels in SVG user units (templates/arena/staff/dashboard.html)."""
    first = Vote.objects.filter(campaign=campaign).order_by("created_at").values_list("created_at", flat=True).first()
    if first is None:
        return {"bars": [], "unit": "day", "total": 0}
    now = now or timezone.now()
    hourly = now - first < timedelta(days=2)
    trunc, step = (TruncHour, timedelta(hours=1)) if hourly else (TruncDay, timedelta(days=1))
    counts = {
        r["bucket"]: r["n"]
        for r in Vote.objects.filter(campaign=campaign)
        .annotate(bucket=trunc("created_at"))
        .values("bucket")
        .annotate(n=Count("id"))
        .order_by("bucket")
    }
    buckets, moment, last = [], min(counts), max(max(counts), _truncate(now, hourly))
    while moment <= last:
        buckets.append((moment, counts.get(moment, 0)))
        moment += step
    return _timeline(buckets, hourly)


def _truncate(moment: datetime, hourly: bool) -> datetime:
    local = timezone.localtime(moment)
    return (
        local.replace(minute=0, second=0, microsecond=0)
        if hourly
        else local.replace(hour=0, minute=0, second=0, microsecond=0)
    )


def _timeline(buckets: list[tuple[datetime, int]], hourly: bool) -> dict[str, Any]:
    plot_width = CHART_WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_height = CHART_HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    bottom = MARGIN_TOP + plot_height
    y_ticks = nice_ticks(0, max(n for _, n in buckets), 4, integer=True)
    top = y_ticks[-1]
    slot = plot_width / len(buckets)
    width = max(min(slot * 0.8, MAX_BAR_WIDTH), 1)

    def y(n: float) -> float:
        return round(bottom - n / top * plot_height, 1)

    bars = [
        {
            "label": moment,
            "n": n,
            "x": round(MARGIN_LEFT + i * slot + (slot - width) / 2, 1),
            "width": round(width, 1),
            "y": y(n),
            "height": round(bottom - y(n), 1),
        }
        for i, (moment, n) in enumerate(buckets)
    ]
    every = max(1, math.ceil(len(buckets) / X_LABELS))
    x_labels = [
        {"x": round(bar["x"] + width / 2, 1), "text": _moment_label(bar["label"], hourly, first=i == 0)}
        for i, bar in enumerate(bars)
        if i % every == 0
    ]
    return {
        "bars": bars,
        "unit": "hour" if hourly else "day",
        "total": sum(n for _, n in buckets),
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "left": MARGIN_LEFT,
        "right": CHART_WIDTH - MARGIN_RIGHT,
        "top": MARGIN_TOP,
        "bottom": bottom,
        "y_ticks": [{"y": y(t), "label": tick_label(t)} for t in y_ticks],
        "x_labels": x_labels,
        "x_label_y": bottom + 16,
        "x_title_y": CHART_HEIGHT - 2,
        "x_title": f"{'hour' if hourly else 'day'} ({timezone.get_current_timezone_name()})",
    }


def _moment_label(moment: datetime, hourly: bool, *, first: bool) -> str:
    local = timezone.localtime(moment)
    if not hourly:
        return local.strftime("%m-%d")
    return local.strftime("%m-%d %H:00" if first or local.hour == 0 else "%H:00")


def vote_tally(campaign: Campaign, counted: int) -> dict[str, int]:
    """The campaign's votes as the leaderboard sees them: ``counted`` on it (the snapshot's count),
    ``awaiting`` the next recompute (not folded yet), and ``left_out``, the rest: votes that never
    count (gold battles, answers that named their model, excluded voters; arena.leaderboards.aggregation)."""
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
    return {
        "models": [name for _, name in models],
        "rows": [{"model": name, "cells": grid[i]} for i, (_, name) in enumerate(models)],
        "min": spread[0],
        "max": spread[1],
    }


# Per voter who has voted, the items no longer blind for them (new_battles.still_blind), prompt by prompt:
# with m answers on a prompt and r of them revealed to the voter, the pairs left blind are those of the
# m - r others, C(m - r, 2) of the prompt's C(m, 2) (scaled to its n items when not every pair is an
# item); a strict campaign blocks every item of a prompt the voter has met. One pass over the votes.
_BLOCKED_SQL = sql(
    """
WITH items AS (
  SELECT i.prompt_id, i.response_lo_id AS lo, i.response_hi_id AS hi FROM {item} i WHERE i.campaign_id = %s {active}
), answers AS (
  SELECT prompt_id, lo AS answer FROM items UNION SELECT prompt_id, hi FROM items
), per_prompt AS (
  SELECT a.prompt_id, count(*) AS m, (SELECT count(*) FROM items WHERE items.prompt_id = a.prompt_id) AS n
  FROM answers a GROUP BY a.prompt_id
), revealed AS (
  SELECT voter_id, prompt_id, left_id AS answer FROM {battle} WHERE campaign_id = %s AND status = 'voted'
  UNION SELECT voter_id, prompt_id, right_id FROM {battle} WHERE campaign_id = %s AND status = 'voted'
), touched AS (
  SELECT voter_id, prompt_id, count(*) AS r FROM revealed GROUP BY voter_id, prompt_id
), blocked AS (
  SELECT t.voter_id, sum(CASE WHEN %s OR p.m - t.r < 2 THEN p.n
                              ELSE p.n - (p.m - t.r) * (p.m - t.r - 1) * p.n / (p.m * (p.m - 1)) END) AS k
  FROM touched t JOIN per_prompt p ON p.prompt_id = t.prompt_id
  GROUP BY t.voter_id
)
SELECT (SELECT count(DISTINCT voter_id) FROM touched), sum(k), sum(CASE WHEN k >= %s THEN 1 ELSE 0 END) FROM blocked
""",
    Item,
    Battle,
)


def blind_remaining(campaign: Campaign) -> dict[str, Any]:
    """How many battles a voter who has voted can still be given blind, on average, and how many such
    voters have none left: when the average runs low, the campaign needs more prompts (or models)."""
    profile = campaign_profile(campaign.slug)
    active, active_params = active_pairs_clause(profile) if profile else ("", [])
    total = Item.objects.filter(campaign=campaign).count() if not active else None
    with connection.cursor() as cursor:
        if total is None:
            cursor.execute(
                f"SELECT count(*) FROM {Item._meta.db_table} i WHERE i.campaign_id = %s {active}",
                [campaign.pk, *active_params],
            )
            total = cursor.fetchone()[0]
        params = [campaign.pk, *active_params, campaign.pk, campaign.pk, campaign.one_battle_per_prompt, total]
        cursor.execute(_BLOCKED_SQL.format(active=active), params)
        voters, blocked, exhausted = cursor.fetchone()
    average = (total * voters - int(blocked or 0)) / voters if voters else None
    return {"items": total, "voters": voters, "average": average, "exhausted": int(exhausted or 0)}


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
