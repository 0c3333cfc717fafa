"""Debounced recompute requests, and the guarantee behind them: every acknowledged vote reaches the
leaderboard within the debounce plus one recompute, without beat.

The rules (each written here once):
- A vote asks for a recompute after it commits. At most one is queued per campaign: a cache key
  (Redis in the distributed mode) says "a run is queued and has not started reading votes yet", so a
  vote that finds it set is covered by that run. The run deletes the key before it reads the votes.
- A process that queued a run itself skips even the cache for the debounce window: the run it queued
  cannot start before the window ends (its countdown is the window), so it reads every vote of the
  window. This holds only where countdowns are honoured, so tasks executed eagerly (management
  commands, tests) never skip.
- A run that ends with unfolded votes (they committed after it read) queues the next run itself, so
  correctness never waits for beat's sweep or for another vote.
- A request that cannot reach the broker leaves no key behind, so the next vote tries again.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache

# When this process last queued a run, per campaign: most votes need not even ask Redis.
_LAST_QUEUED: dict[int, float] = {}


def queued_key(campaign_id: int) -> str:
    return f"ratings:queued:{campaign_id}"


def request_recompute(campaign_id: int, *, follow_up: bool = False) -> bool:
    """Queue a debounced recompute unless one is already queued. Returns True if this call queued it.

    ``follow_up``: asked by a run that found votes it did not fold; skips this process's window (the
    run it would rely on is the one that is ending).
    """
    from ratings.tasks import recompute_campaign

    delay = settings.ARENA_RECOMPUTE_DEBOUNCE
    eager = recompute_campaign.app.conf.task_always_eager
    now = time.monotonic()
    if not (follow_up or eager) and delay > 0 and now - _LAST_QUEUED.get(campaign_id, -delay) < delay:
        return False
    # The key outlives the countdown (a busy worker starts late); an expired key costs a spare run.
    if not cache.add(queued_key(campaign_id), 1, timeout=max(1, int(delay) + 30)):
        return False
    try:
        recompute_campaign.apply_async(args=[campaign_id], countdown=delay)
    except Exception:
        cache.delete(queued_key(campaign_id))
        raise
    if not eager:
        _LAST_QUEUED[campaign_id] = now
    return True
