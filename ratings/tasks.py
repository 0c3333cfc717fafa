"""Celery tasks of the ratings engine: debounced, never two at once per campaign, safe to retry."""

from __future__ import annotations

import logging
import uuid

from celery import shared_task
from django.conf import settings
from django.core.cache import cache

from arena.models import Campaign, Vote
from ratings.models import LeaderboardSnapshot

log = logging.getLogger(__name__)
LOCK_TIMEOUT = 600


@shared_task(bind=True, acks_late=True, max_retries=None, soft_time_limit=300, time_limit=360)
def recompute_campaign(self, campaign_id: int) -> int:
    """Fold new votes into the aggregates and refresh the campaign's snapshots.

    A Redis lock keeps two recomputes of one campaign from running at once; a run that finds the
    lock taken retries shortly after, so the newest votes are always covered.
    """
    from ratings.snapshots import compute_snapshots

    lock_key, token = f"ratings:lock:{campaign_id}", uuid.uuid4().hex
    if not cache.add(lock_key, token, timeout=LOCK_TIMEOUT):
        raise self.retry(countdown=max(1.0, settings.ARENA_RECOMPUTE_DEBOUNCE))
    try:
        # Votes arriving from now on must queue a new run.
        cache.delete(f"ratings:queued:{campaign_id}")
        campaign = Campaign.objects.filter(pk=campaign_id).first()
        if campaign is None:
            return 0
        return compute_snapshots(campaign)
    finally:
        if cache.get(lock_key) == token:
            cache.delete(lock_key)


@shared_task(acks_late=True)
def recompute_active_campaigns() -> list[int]:
    """Beat: recompute every campaign that has unfolded votes or no snapshot yet.

    The safety net behind the vote-triggered recomputes: it catches votes whose request could not
    reach the broker (Redis down) and runs whatever the debounce is holding back. It enqueues
    directly; the per-campaign lock still keeps two runs from overlapping.
    """
    queued = []
    for campaign in Campaign.objects.exclude(status=Campaign.Status.DRAFT):
        pending = Vote.objects.filter(campaign=campaign, folded=False).exists()
        missing = not LeaderboardSnapshot.objects.filter(campaign=campaign).exists() and campaign.votes.exists()
        if pending or missing:
            recompute_campaign.delay(campaign.pk)
            queued.append(campaign.pk)
        recompute_style.delay(campaign.pk)
    return queued


@shared_task(acks_late=True, soft_time_limit=600, time_limit=660)
def recompute_style(campaign_id: int) -> bool:
    """Beat: refresh the style-controlled board when the campaign has new votes."""
    from ratings.snapshots import compute_style_snapshot

    lock_key = f"ratings:style-lock:{campaign_id}"
    if not cache.add(lock_key, 1, timeout=LOCK_TIMEOUT):
        return False
    try:
        campaign = Campaign.objects.filter(pk=campaign_id).first()
        return campaign is not None and compute_style_snapshot(campaign)
    finally:
        cache.delete(lock_key)
