"""Budgets of live generation, per campaign: battles per clock hour, tokens and estimated cost per UTC
day (``Campaign.live_battles_per_hour``, ``live_tokens_per_day``, ``live_cost_per_day``; 0 = none).

When one is reached, live generation pauses: a new prompt (or a further turn, for the daily budgets)
is answered 429 with a message that says which budget and when it resumes, and no generation starts.
The daily budgets read today's GenerationUsage rows (the database: they hold while the cache is
down); an answer in progress when a budget is reached still finishes, so a budget can be exceeded
by the battles already running. The hourly count of battles uses the site's counters
(arena.services.ratelimit) and is counted only for prompts that passed moderation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Sum
from django.utils import timezone

from arena.core.errors import LimitReached
from arena.models import Campaign, GenerationUsage
from arena.services.guardrails import usage
from arena.services.ratelimit import Rule, hits


class BudgetReached(LimitReached):
    code = "budget_reached"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class DayUsage:
    tokens: int
    cost: float


def day_usage(campaign: Campaign) -> DayUsage:
    """Today's live generation of the campaign: tokens and estimated cost."""
    sums = GenerationUsage.objects.filter(campaign=campaign, day=usage.today()).aggregate(
        p=Sum("prompt_tokens"), c=Sum("completion_tokens"), cost=Sum("cost")
    )
    return DayUsage((sums["p"] or 0) + (sums["c"] or 0), sums["cost"] or 0.0)


def money(amount: float) -> str:
    """USD as people write it: cents from a dollar up, else up to four significant digits."""
    return f"${amount:,.2f}" if amount >= 1 else f"${amount:.4g}"


def _seconds_until(moment: datetime) -> int:
    return max(1, int((moment - timezone.now()).total_seconds()) + 1)


def daily_budget_message(campaign: Campaign) -> str:
    """Why live generation is paused for the rest of the day, or "" when it is not."""
    if not (campaign.live_tokens_per_day or campaign.live_cost_per_day):
        return ""
    spent = day_usage(campaign)
    if campaign.live_tokens_per_day and spent.tokens >= campaign.live_tokens_per_day:
        what = f"its daily budget of {campaign.live_tokens_per_day:,} tokens"
    elif campaign.live_cost_per_day and spent.cost >= campaign.live_cost_per_day:
        what = f"its daily budget of {money(campaign.live_cost_per_day)} of generation"
    else:
        return ""
    return f"Live battles are paused in this campaign: it has used {what}. They resume at midnight UTC."


def check_daily(campaign: Campaign) -> None:
    """Raise BudgetReached when the campaign's tokens or cost of today are used up."""
    if message := daily_budget_message(campaign):
        midnight = (timezone.now() + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        raise BudgetReached(message, _seconds_until(midnight))


def count_battle(campaign: Campaign) -> None:
    """Count a new battle in the campaign's hour; raise BudgetReached when the hour's budget is used up."""
    limit = campaign.live_battles_per_hour
    if limit and not hits([Rule(f"live:budget:{campaign.pk}", limit, 3600)])[0]:
        next_hour = (timezone.now() + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
        raise BudgetReached(
            f"Live battles are paused in this campaign: it has reached its budget of {limit:,} battles this hour. "
            f"They resume at {next_hour:%H:%M} UTC.",
            _seconds_until(next_hour),
        )
