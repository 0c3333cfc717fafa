"""Debounced recompute requests: at most one queued recompute per campaign every few seconds."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache

# When this process last queued a recompute per campaign: most votes need not even ask Redis.
_LAST_QUEUED: dict[int, float] = {}


def request_recompute(campaign_id: int) -> bool:
    """Queue a recompute unless one is already queued for this campaign. Returns True if queued.

    Two levels of debounce: a per-process clock (no network), then a cache key shared by every
    process (Redis in the distributed mode), so at most one run per campaign per debounce window.
    """
    from ratings.tasks import recompute_campaign

    delay = settings.ARENA_RECOMPUTE_DEBOUNCE
    now = time.monotonic()
    if delay > 0 and now - _LAST_QUEUED.get(campaign_id, -delay) < delay:
        return False
    _LAST_QUEUED[campaign_id] = now
    if not cache.add(f"ratings:queued:{campaign_id}", 1, timeout=max(1, int(delay))):
        return False
    recompute_campaign.apply_async(args=[campaign_id], countdown=delay)
    return True
