"""Celery tasks of the ratings engine: debounced, never two at once per campaign, safe to retry."""

from __future__ import annotations

import logging
import uuid

from celery import shared_task
from django.conf import settings
from django.core.cache import cache

from arena.leaderboards.models import LeaderboardSnapshot
from arena.leaderboards.scheduling import queued_key, request_recompute
from arena.models import Campaign, Vote

log = logging.getLogger(__name__)
LOCK_TIMEOUT = 600


@shared_task(bind=True, acks_late=True, max_retries=None, soft_time_limit=300, time_limit=360)
def recompute_campaign(self, campaign_id: int, intervals: str = "sandwich") -> int:
    """Fold new votes into the aggregates and refresh the campaign's out-of-date snapshots.

    After votes (the default) boards are refitted with sandwich intervals, which keeps a run within
    a few hundred milliseconds; beat's sweep asks for ``"bootstrap"`` and replaces them with
    bootstrap intervals (see `arena.leaderboards.snapshots.compute_snapshots`). A lock in the cache keeps two
    recomputes of one campaign from running at once. A run that finds it taken retries shortly after
    (executed eagerly, it returns at once: the running one follows up). A run that ends with
    unfolded votes queues the next one (see `arena.leaderboards.scheduling`), so the newest votes are always
    covered, with or without beat.
    """
    from arena.leaderboards.snapshots import compute_snapshots

    lock_key, token = f"ratings:lock:{campaign_id}", uuid.uuid4().hex
    if not cache.add(lock_key, token, timeout=LOCK_TIMEOUT):
        if self.request.is_eager:  # the running one follows up on our votes; it must be free to queue
            cache.delete(queued_key(campaign_id))
            return 0
        raise self.retry(countdown=max(1.0, settings.ARENA_RECOMPUTE_DEBOUNCE))
    try:
        # Votes that ask from now on queue a new run: this one may read before they commit.
        cache.delete(queued_key(campaign_id))
        campaign = Campaign.objects.filter(pk=campaign_id).first()
        if campaign is None:
            return 0
        written = compute_snapshots(campaign, intervals=intervals)
    finally:
        if cache.get(lock_key) == token:
            cache.delete(lock_key)
    if Vote.objects.filter(campaign_id=campaign_id, folded=False).exists():
        request_recompute(campaign_id, follow_up=True)
    return written


@shared_task(acks_late=True)
def recompute_active_campaigns() -> list[int]:
    """Beat: recompute, with bootstrap intervals, every campaign that has unfolded votes, no
    snapshot yet, or boards that still carry the after-vote sandwich intervals.

    The safety net behind the vote-triggered recomputes: it catches votes whose request could not
    reach the broker (Redis down) and runs whatever the debounce is holding back. It enqueues
    directly; the per-campaign lock still keeps two runs from overlapping.
    """
    bootstrap = settings.ARENA_BOOTSTRAP_ROUNDS >= 2
    queued = []
    for campaign in Campaign.objects.exclude(status=Campaign.Status.DRAFT):
        snapshots = LeaderboardSnapshot.objects.filter(campaign=campaign)
        pending = Vote.objects.filter(campaign=campaign, folded=False).exists()
        missing = not snapshots.exists() and campaign.votes.exists()
        rough = bootstrap and snapshots.filter(intervals="sandwich").exists()
        if pending or missing or rough:
            recompute_campaign.delay(campaign.pk, "bootstrap")
            queued.append(campaign.pk)
        recompute_style.delay(campaign.pk)
    return queued


@shared_task(acks_late=True, soft_time_limit=600, time_limit=660)
def recompute_style(campaign_id: int) -> bool:
    """Beat: refresh the style-controlled board when the campaign has new votes."""
    from arena.leaderboards.snapshots import compute_style_snapshot

    lock_key = f"ratings:style-lock:{campaign_id}"
    if not cache.add(lock_key, 1, timeout=LOCK_TIMEOUT):
        return False
    try:
        campaign = Campaign.objects.filter(pk=campaign_id).first()
        return campaign is not None and compute_style_snapshot(campaign)
    finally:
        cache.delete(lock_key)
