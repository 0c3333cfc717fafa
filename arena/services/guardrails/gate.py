"""What a live prompt passes before anything is spent on it, in this order: the voter's and the
campaign's flood limits, the campaign's daily budgets, its moderator, its hourly budget of battles
(counted only for prompts that pass).

The per-IP flood limits come earlier, in the view (before a voter is created), and the prompt's
own validation (empty, too long) before this.
"""

from __future__ import annotations

from arena.models import Campaign, Voter
from arena.services.guardrails import budgets, flood, moderation


def admit_prompt(campaign: Campaign, voter: Voter | None, text: str, *, new_battle: bool) -> None:
    """Return when the prompt may go to the models; raise an ArenaError (429, 422 or 503) otherwise."""
    if voter is not None:
        flood.check_voter(voter)
    flood.check_campaign(campaign)
    budgets.check_daily(campaign)
    moderation.moderate(campaign, voter, text)
    if new_battle:
        budgets.count_battle(campaign)
