"""The judges' section of the staff dashboard: progress, usage, agreement and recent failures.

The agreement report reads every verdict and human vote of the campaign (about 40 ms for 10,000 of
each); it is kept in the cache for REPORT_TTL seconds, keyed by the judge's and the campaign's counts,
so a dashboard reload does not recompute it.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import cache

from arena.judges import actions, boards
from arena.judges.models import Judge, JudgeVerdict
from arena.models import Campaign

REPORT_TTL = 60


def cached_report(judge: Judge, progress: actions.Progress) -> dict[str, Any]:
    votes = judge.campaign.votes.count()
    key = f"arena:judges:report:{judge.pk}:{progress.counts.get('done', 0)}:{votes}"
    report = cache.get(key)
    if report is None:
        report = boards.report(judge)
        cache.set(key, report, REPORT_TTL)
    return report


def figures(campaign: Campaign) -> list[dict[str, Any]]:
    out = []
    for judge in Judge.objects.filter(campaign=campaign).select_related("model", "campaign", "reference_model"):
        progress = actions.progress(judge)
        out.append(
            {
                "judge": judge,
                "progress": progress,
                "report": cached_report(judge, progress) if progress.counts.get("done") else None,
                "failures": actions.failures(judge, limit=5),
            }
        )
    return out


def failure_count(campaign: Campaign) -> int:
    return JudgeVerdict.objects.filter(campaign=campaign, status=JudgeVerdict.Status.FAILED).count()
