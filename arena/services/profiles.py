"""A per-process cache of what every battle page needs to know about its campaign.

The campaign row, its dimensions and its models' names and weights change rarely, yet the hot path
(next battle, vote) needs them on every request. They are cached per process for a few seconds and
dropped at once when this process saves a change (see arena.apps); other processes see a change
within PROFILE_TTL seconds. Rules that must be exact (a paused campaign refuses votes, one vote per
battle) are checked against the database in the vote transaction, never against this cache.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from arena.models import Campaign, Dimension

PROFILE_TTL = 5.0


@dataclass(frozen=True)
class CampaignProfile:
    campaign: Campaign
    dimensions: tuple[Dimension, ...]
    weights: dict[int, float]  # active models only
    names: dict[int, str]  # every model of the campaign
    all_active: bool
    # Pages rendered for this profile (arena.web.pages): they live and die with it.
    frames: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)


_BY_SLUG: dict[str, tuple[float, CampaignProfile | None]] = {}


def campaign_profile(slug: str) -> CampaignProfile | None:
    now = time.monotonic()
    cached = _BY_SLUG.get(slug)
    if cached is not None and now - cached[0] < PROFILE_TTL:
        return cached[1]
    campaign = Campaign.objects.filter(slug=slug).first()
    profile = None
    if campaign is not None:
        models = list(campaign.contenders.values_list("id", "name", "weight", "is_active"))
        profile = CampaignProfile(
            campaign=campaign,
            dimensions=tuple(campaign.dimensions.all()),
            weights={pk: weight for pk, _, weight, active in models if active},
            names={pk: name for pk, name, _, _ in models},
            all_active=all(active for *_, active in models),
        )
    _BY_SLUG[slug] = (now, profile)
    return profile


def forget_profiles(*args, **kwargs) -> None:
    """Drop every cached profile (connected to model signals in arena.apps)."""
    _BY_SLUG.clear()
