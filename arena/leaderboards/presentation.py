"""Turn a stored leaderboard snapshot into what the page draws: rows, an interval chart, a heat map.

Everything is computed from the snapshot's JSON; drawing uses SVG attributes and CSS classes only,
because the Content-Security-Policy allows no inline style.
"""

from __future__ import annotations

from typing import Any

from arena.leaderboards.models import LeaderboardSnapshot
from ratings.axes import nice_ticks, tick_label

AXIS_TICKS = 5


def interval_chart(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Each model's 95% interval and rating as positions in percent of the plot's width, with the
    axis ticks, so the chart is drawn at any width (templates/ratings/leaderboard.html): lines and
    dots in an SVG per model, the tick values below, the numbers beside each line and on hover."""
    rated = [r for r in rows if r.get("ci_low") is not None and r.get("ci_high") is not None]
    if not rated:
        return {"bars": [], "ticks": []}
    values = [r["ci_low"] for r in rated] + [r["ci_high"] for r in rated]
    ticks = nice_ticks(min(values), max(values), AXIS_TICKS)
    low, span = ticks[0], ticks[-1] - ticks[0]

    def x(value: float) -> float:
        return round((value - low) / span * 100, 2)

    bars = [
        {
            "model": r["model"],
            "rating": r["rating"],
            "ci_low": r["ci_low"],
            "ci_high": r["ci_high"],
            "x1": x(r["ci_low"]),
            "x2": x(r["ci_high"]),
            "cx": x(r["rating"]),
            "provisional": r.get("provisional", False),
        }
        for r in rated
    ]
    return {"bars": bars, "ticks": [{"x": x(t), "label": tick_label(t)} for t in ticks]}


def heat_map(matrices: dict[str, Any] | None, order: list[str]) -> dict[str, Any] | None:
    """Observed win rates of the row model against the column model, with a colour bucket 0-10."""
    if not matrices or "win_rate" not in matrices:
        return None
    models = matrices["models"]
    index = {name: i for i, name in enumerate(models)}
    names = [m for m in order if m in index] or models
    grid = []
    for a in names:
        cells = []
        for b in names:
            value = matrices["win_rate"][index[a]][index[b]]
            cells.append({"value": value, "bucket": None if value is None else max(0, min(10, round(value * 10)))})
        grid.append({"model": a, "cells": cells})
    return {"models": names, "rows": grid}


def interval_note(snapshot: LeaderboardSnapshot) -> str:
    """Which 95% intervals the board carries, in words (the after-vote recompute uses sandwich
    intervals; beat's sweep replaces them with bootstrap intervals)."""
    if snapshot.method == "style":
        return "95% sandwich (robust normal) intervals."
    if snapshot.intervals == "bootstrap":
        rounds = snapshot.data.get("bootstrap_rounds") or 0
        return f"95% bootstrap intervals ({rounds:,} rounds)."
    if snapshot.intervals == "sandwich":
        return (
            "95% sandwich (robust normal) intervals, refitted right after the latest votes; "
            "bootstrap intervals replace them at the next scheduled recompute."
        )
    return ""


def leaderboard_context(campaign, snapshot: LeaderboardSnapshot | None, selection: dict[str, str]) -> dict[str, Any]:
    tabs = (
        LeaderboardSnapshot.objects.filter(campaign=campaign)
        .values_list("dimension", "category", "method")
        .order_by("dimension", "category", "method")
    )
    context: dict[str, Any] = {"campaign": campaign, "snapshot": snapshot, "selection": selection, "tabs": list(tabs)}
    if snapshot is not None:
        rows = snapshot.data.get("rows", [])
        context.update(
            rows=rows,
            chart=interval_chart(rows),
            heat=heat_map(snapshot.board().get("matrices"), [r["model"] for r in rows]),
            style=snapshot.data if snapshot.method == "style" else None,
            bias=snapshot.data.get("bias"),
            interval_note=interval_note(snapshot),
            min_votes=snapshot.data.get("min_votes"),
            n_provisional=sum(1 for r in rows if r.get("provisional")),
        )
    return context
