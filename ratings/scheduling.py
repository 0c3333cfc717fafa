"""Debounced recompute requests: at most one queued recompute per campaign every few seconds."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache


def request_recompute(campaign_id: int) -> bool:
    """Queue a recompute unless one is already queued for this campaign. Returns True if queued."""
    from ratings.tasks import recompute_campaign

    delay = settings.ARENA_RECOMPUTE_DEBOUNCE
    if not cache.add(f"ratings:queued:{campaign_id}", 1, timeout=max(1, int(delay))):
        return False
    recompute_campaign.apply_async(args=[campaign_id], countdown=delay)
    return True
