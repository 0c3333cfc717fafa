"""Flood limits on live prompts, which cost two paid generations each.

Before this, the only limit keyed on the voter cookie: a client that dropped its cookies got a new
voter, and a fresh limit, on every request (150 of 150 POSTs accepted in 15 s). These limits key on
what a client cannot drop, counted with the site's one counter mechanism (arena.services.ratelimit,
Redis in the distributed mode, so they hold across web processes):

- per IP address (its HMAC with ARENA_IP_SALT, never the address): ARENA_IP_LIVE_PROMPTS_PER_MINUTE
  and ARENA_IP_LIVE_PROMPTS_PER_HOUR;
- per voter: ARENA_LIVE_PROMPTS_PER_MINUTE (``check_voter``, as before);
- per campaign, whoever asks: ARENA_CAMPAIGN_LIVE_PROMPTS_PER_MINUTE (``check_campaign``), counted only
  for prompts that passed the per-IP and per-voter limits, so one flooding address cannot use up a
  campaign's minute for everyone else.

The per-IP limits are checked by the view before a voter is created, so a refused request stores
nothing. A refusal is an HTTP 429 with a Retry-After header and a message saying which limit
was reached. Like every limit they fail open while the cache is down; the budgets
(arena.services.guardrails.budgets) still hold then, as they read the database.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from arena.models import Campaign, Voter
from arena.services.ratelimit import Rule, enforce, ip_key


def check_request(request: HttpRequest) -> None:
    """Per-IP limits on one live prompt (a new battle or a further turn)."""
    ip = ip_key(request)
    enforce(
        [
            Rule(
                f"live:ip:{ip}",
                settings.ARENA_IP_LIVE_PROMPTS_PER_MINUTE,
                60,
                "Too many prompts from your network in the last minute. Please wait a minute and try again.",
            ),
            Rule(
                f"live:ip:{ip}",
                settings.ARENA_IP_LIVE_PROMPTS_PER_HOUR,
                3600,
                "Too many prompts from your network in the last hour. Please come back later.",
            ),
        ]
    )


def check_voter(voter: Voter) -> None:
    """The voter's own limit (ARENA_LIVE_PROMPTS_PER_MINUTE); their first prompt counts too."""
    limit = settings.ARENA_LIVE_PROMPTS_PER_MINUTE
    enforce(
        [
            Rule(
                f"live:voter:{voter.public_id}",
                limit,
                60,
                f"You are sending prompts too quickly (at most {limit} a minute). Please wait a moment and try again.",
            )
        ]
    )


def check_campaign(campaign: Campaign) -> None:
    """The campaign's limit on live prompts per minute, from every voter together."""
    enforce(
        [
            Rule(
                f"live:campaign:{campaign.pk}",
                settings.ARENA_CAMPAIGN_LIVE_PROMPTS_PER_MINUTE,
                60,
                "This campaign is receiving too many prompts right now. Please try again in a minute.",
            )
        ]
    )
