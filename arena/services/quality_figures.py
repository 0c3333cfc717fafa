"""Voter-quality figures for the staff dashboard, computed by a worker and kept in the cache.

Agreement (alpha, majority, gold) and the voter flags are kept as a state of counts in the cache and
updated from the new votes only (arena.services.quality_state: well under a second for 1,000 new
votes at 1,000,000; a full recomputation reads every vote, seconds per 100,000). Still no page
computes them: the dashboard shows the latest figures with their age and asks a worker for fresh
ones when they are older than ARENA_QUALITY_MAX_AGE seconds (at most one request queued per
campaign). In the embedded mode tasks run in-process: the figures are there at once. If the cache
cannot be reached, the page computes them itself from every vote (staff only, slow but correct).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache

from arena.models import Campaign
from arena.services import dashboard, dispatch, quality_state

log = logging.getLogger(__name__)

FIGURES_KEY = "arena:quality:{}"
QUEUED_KEY = "arena:quality:queued:{}"
KEEP_SECONDS = 7 * 24 * 3600
QUEUED_SECONDS = 300  # a lost request is asked again after this long


def latest(campaign: Campaign) -> dict[str, Any] | None:
    """{"computed_at": epoch seconds, "figures": dashboard.voter_quality(...)} or None while the first
    figures are being computed. Stale or missing figures are asked for."""
    try:
        entry = cache.get(FIGURES_KEY.format(campaign.pk))
    except Exception:  # the cache is down: compute here
        log.warning("voter-quality figures computed in the request: the cache is unavailable", exc_info=True)
        return {"computed_at": time.time(), "figures": dashboard.voter_quality(campaign)}
    if entry is None or time.time() - entry["computed_at"] > settings.ARENA_QUALITY_MAX_AGE:
        request_refresh(campaign.pk)
        entry = cache.get(FIGURES_KEY.format(campaign.pk)) or entry  # in-process tasks: done by now
    return entry


def computed_at(entry: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(entry["computed_at"], tz=UTC)


def request_refresh(campaign_id: int) -> bool:
    """Queue one computation of the campaign's figures unless one is queued already."""
    try:
        if not cache.add(QUEUED_KEY.format(campaign_id), 1, timeout=QUEUED_SECONDS):
            return False
        dispatch.send(dispatch.COMPUTE_VOTER_QUALITY, [campaign_id])
    except Exception:  # the broker or the cache is down; the page says how old its figures are
        log.warning("could not queue the voter-quality figures of campaign %s", campaign_id, exc_info=True)
        return False
    return True


def compute_and_store(campaign_id: int) -> None:
    """The worker's side: compute, store, and let the next request be queued. Idempotent."""
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is not None:
        entry = {"computed_at": time.time(), "figures": quality_state.refresh(campaign)}
        cache.set(FIGURES_KEY.format(campaign_id), entry, timeout=KEEP_SECONDS)
    cache.delete(QUEUED_KEY.format(campaign_id))


def note_exclusion(campaign_id: int, public_id: str, excluded: bool) -> None:
    """Show a staff decision in the stored flags at once, and ask for figures that account for it."""
    try:
        key = FIGURES_KEY.format(campaign_id)
        entry = cache.get(key)
        if entry is not None:
            for flag in entry["figures"].get("flags", []):
                if flag["voter"] == public_id:
                    flag["excluded"] = excluded
            cache.set(key, entry, timeout=KEEP_SECONDS)
        cache.delete(QUEUED_KEY.format(campaign_id))
    except Exception:
        log.warning("could not update the stored voter flags of campaign %s", campaign_id, exc_info=True)
        return
    request_refresh(campaign_id)
