"""Campaign life cycle: draft -> active <-> paused -> closed (closing freezes the data)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from arena.core.errors import ArenaError, Conflict
from arena.models import Campaign

_ALLOWED = {
    Campaign.Status.DRAFT: {Campaign.Status.ACTIVE, Campaign.Status.CLOSED},
    Campaign.Status.ACTIVE: {Campaign.Status.PAUSED, Campaign.Status.CLOSED},
    Campaign.Status.PAUSED: {Campaign.Status.ACTIVE, Campaign.Status.CLOSED},
    Campaign.Status.CLOSED: set(),
}


def set_status(campaign: Campaign, status: str) -> Campaign:
    """Move a campaign to a new status; a closed campaign stays closed."""
    if status not in Campaign.Status.values:
        raise ArenaError(f"Unknown status {status!r}.")
    with transaction.atomic():
        current = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if status == current.status:
            return current
        if status not in _ALLOWED[Campaign.Status(current.status)]:
            raise Conflict(f"A {current.status} campaign cannot become {status}.")
        current.status = status
        fields = ["status"]
        if status == Campaign.Status.CLOSED:
            current.closed_at = timezone.now()
            fields.append("closed_at")
        current.save(update_fields=fields)
    return current
