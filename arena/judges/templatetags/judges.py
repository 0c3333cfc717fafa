"""``{% judge_win_rates campaign %}``: the judges' AlpacaEval-style win rates beside the human leaderboard."""

from __future__ import annotations

from typing import Any

from django import template
from django.core.cache import cache

from arena.judges import boards
from arena.judges.models import Judge, JudgeVerdict

register = template.Library()

TTL = 60  # seconds; keyed by the judge's count of verdicts, so a new verdict shows at once


def win_rate_tables(campaign) -> list[dict[str, Any]]:
    tables = []
    judges = Judge.objects.filter(campaign=campaign, is_active=True, reference_model__isnull=False)
    for judge in judges.select_related("model", "reference_model"):
        done = JudgeVerdict.objects.filter(judge=judge, status=JudgeVerdict.Status.DONE).count()
        if not done:
            continue
        key = f"arena:judges:winrates:{judge.pk}:{done}"
        rows = cache.get(key)
        if rows is None:
            rows = boards.win_rates(judge)
            cache.set(key, rows, TTL)
        own = judge.allow_self_judging and campaign.contenders.filter(pk=judge.model_id).exists()
        tables.append({"judge": judge.name, "reference": judge.reference_model.name, "rows": rows, "self_judging": own})
    return tables


@register.inclusion_tag("judges/_win_rates.html")
def judge_win_rates(campaign) -> dict[str, Any]:
    return {"tables": win_rate_tables(campaign)}
