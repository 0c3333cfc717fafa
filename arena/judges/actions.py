"""Starting judges and reading their progress: the one code path behind ``manage.py run_judges``, the
admin action and the API endpoint."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from django.db.models import Count, Sum

from arena.core.errors import ArenaError, NotFound
from arena.judges import planning, running
from arena.judges.models import Judge, JudgeVerdict
from arena.models import Campaign


def judges_of(campaign_slug: str, judge_name: str | None = None) -> list[Judge]:
    """The campaign's active judges, or the one named (its model entry's name)."""
    campaign = Campaign.objects.filter(slug=campaign_slug).first()
    if campaign is None:
        raise NotFound(f"No campaign with slug {campaign_slug!r}.")
    judges = Judge.objects.filter(campaign=campaign).select_related("model", "campaign")
    if judge_name:
        judges = judges.filter(model__name=judge_name)
        if not judges:
            raise NotFound(f"Campaign {campaign_slug!r} has no judge named {judge_name!r}.")
    else:
        judges = judges.filter(is_active=True)
        if not judges:
            raise ArenaError(f"Campaign {campaign_slug!r} has no active judge; add one in the admin (Judges).")
    return list(judges)


@dataclass(frozen=True)
class Started:
    judge: str
    plan: planning.Plan
    dispatched: int


def start(
    judges: list[Judge],
    *,
    scope: str = "items",
    limit: int | None = None,
    retry_failed: bool = False,
    seed: int | None = None,
) -> list[Started]:
    """Plan each judge's pairings and hand them to the workers (in place in the embedded mode)."""
    started = []
    for judge in judges:
        plan = planning.plan(judge, scope=scope, limit=limit, seed=seed)
        if retry_failed:
            running.reset_failed(judge)
        started.append(Started(judge.name, plan, running.dispatch(judge.pk)))
    return started


@dataclass
class Progress:
    """A judge's pairings by status, with its token usage and estimated cost."""

    judge: str
    counts: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    cost: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def finished(self) -> int:
        return self.counts.get("done", 0) + self.counts.get("failed", 0)

    @property
    def active(self) -> int:
        return self.total - self.finished

    def to_dict(self) -> dict:
        return {
            "judge": self.judge,
            "counts": self.counts,
            "total": self.total,
            "finished": self.finished,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "calls": self.calls,
            "cost": round(self.cost, 6),
        }


def progress(judge: Judge) -> Progress:
    """Counts and usage in two grouped queries."""
    rows = JudgeVerdict.objects.filter(judge=judge)
    counts = {status: 0 for status in JudgeVerdict.Status.values}
    counts.update(dict(rows.values_list("status").annotate(n=Count("id")).values_list("status", "n")))
    usage = rows.aggregate(p=Sum("prompt_tokens"), c=Sum("completion_tokens"), n=Sum("calls"), cost=Sum("cost"))
    return Progress(judge.name, counts, usage["p"] or 0, usage["c"] or 0, usage["n"] or 0, usage["cost"] or 0.0)


def wait(judges: list[Judge], timeout: float, poll: float = 0.5) -> bool:
    """Until no pairing of these judges is pending, queued or running; False on timeout."""
    deadline = time.monotonic() + timeout
    ids = [j.pk for j in judges]
    busy = JudgeVerdict.objects.filter(judge_id__in=ids).exclude(status__in=("done", "failed"))
    while busy.exists():
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)
    return True


def failures(judge: Judge, limit: int = 50) -> list[JudgeVerdict]:
    """Failed pairings with their error and raw replies, for staff."""
    return list(
        JudgeVerdict.objects.filter(judge=judge, status="failed")
        .select_related("model_lo", "model_hi", "prompt")
        .order_by("-updated_at")[:limit]
    )
