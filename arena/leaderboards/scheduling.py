"""Debounced recompute requests, and the guarantee behind them: every acknowledged vote reaches the
leaderboard within the debounce plus one recompute, without beat.

The rules (each written here once):
- A vote asks for a recompute after it commits. At most one is queued per campaign: a cache key
  (Redis in the distributed mode) says "a run is queued and has not started reading votes yet", so a
  vote that finds it set is covered by that run. The run deletes the key before it reads the votes.
- The key holds the queued run's start time (its ETA). Until then a process skips even the cache: the
  run cannot start before its ETA, so it reads every vote committed before it. This holds only where
  countdowns are honoured, so tasks executed eagerly (management commands, tests) never skip. (Skipping
  only when the process had queued the run itself cost a Redis round trip on most votes: 0.5 ms of
  web CPU per vote in bench/cycle_cpu.py.)
- A run that ends with unfolded votes (they committed after it read) queues the next run itself, so
  correctness never waits for beat's sweep or for another vote.
- A request that cannot reach the broker leaves no key behind, so the next vote tries again.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache

from arena.celery import app, task_named

# Per campaign: until when (wall clock) a queued run covers this process's votes: most votes need
# not even ask Redis.
_COVERED_UNTIL: dict[int, float] = {}


RECOMPUTE_TASK = "arena.leaderboards.tasks.recompute_campaign"  # sent by name: the tasks module imports this one


def queued_key(campaign_id: int) -> str:
    return f"ratings:queued:{campaign_id}"


def request_recompute(campaign_id: int, *, follow_up: bool = False) -> bool:
    """Queue a debounced recompute unless one is already queued. Returns True if this call queued it.

    The queued run's start time (its ETA) is the cache key's value: a vote that commits before it is
    read by that run, so until then this process skips the cache (one Redis round trip per process
    and window, not per vote). ``follow_up``: asked by a run that found votes it did not fold.
    """
    delay = settings.ARENA_RECOMPUTE_DEBOUNCE
    eager = app.conf.task_always_eager
    now = time.time()
    if not (follow_up or eager) and now < _COVERED_UNTIL.get(campaign_id, 0.0):
        return False
    key, eta = queued_key(campaign_id), now + delay
    # The key outlives the countdown (a busy worker starts late); an expired key costs a spare run.
    if not cache.add(key, eta, timeout=max(1, int(delay) + 30)):
        queued_eta = None if eager else cache.get(key)
        if isinstance(queued_eta, float | int):  # that run has not started reading: it covers us until then
            _COVERED_UNTIL[campaign_id] = queued_eta
        return False
    try:
        task_named(RECOMPUTE_TASK).apply_async(args=[campaign_id], countdown=delay)
    except Exception:
        cache.delete(key)
        raise
    if not eager:
        _COVERED_UNTIL[campaign_id] = eta
    return True
