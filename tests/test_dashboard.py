"""The staff dashboard of a campaign, and pausing / resuming / closing from it."""

from __future__ import annotations

import pytest

from arena.models import Campaign
from ratings.snapshots import compute_snapshots
from tests.test_ratings_site import cast_votes

pytestmark = pytest.mark.django_db


def test_the_dashboard_is_for_staff_only(alice, campaign):
    assert alice.get(f"/staff/c/{campaign.slug}/").status_code == 302  # to the login page
    assert alice.post(f"/staff/c/{campaign.slug}/status", {"status": "paused"}).status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == "active"


def test_it_shows_progress_coverage_voters_and_the_leaderboard(staff_client, campaign):
    cast_votes(campaign, 12)
    compute_snapshots(campaign)
    page = staff_client.get(f"/staff/c/{campaign.slug}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "12 in all" in html
    for section in ('id="coverage"', 'id="thin-prompts"', 'id="voters"', 'id="verdicts"'):
        assert section in html
    coverage = page.context["coverage"]
    assert sum(n for row in coverage["rows"] for n in row["cells"] if n) == 2 * 12  # symmetric
    assert page.context["voters"]["total"] == 2


def test_pause_resume_and_close_from_the_dashboard(staff_client, alice, campaign):
    url = f"/staff/c/{campaign.slug}/status"
    staff_client.post(url, {"status": "paused"})
    assert Campaign.objects.get(pk=campaign.pk).status == "paused"
    assert alice.get(f"/c/{campaign.slug}/vote/").status_code == 403
    staff_client.post(url, {"status": "active"})
    assert alice.get(f"/c/{campaign.slug}/vote/").status_code == 200
    staff_client.post(url, {"status": "closed"})
    closed = Campaign.objects.get(pk=campaign.pk)
    assert closed.status == "closed" and closed.closed_at is not None
    page = staff_client.post(url, {"status": "active"}, follow=True)
    assert "cannot become active" in page.content.decode()
    assert Campaign.objects.get(pk=campaign.pk).status == "closed"


def test_voter_quality_figures_are_computed_by_a_task_and_refreshed_only_when_old(staff_client, campaign, settings):
    url = f"/staff/c/{campaign.slug}/"
    cast_votes(campaign, 10)
    first = staff_client.get(url)
    computed_at = first.context["quality"]["computed_at"]
    assert first.context["agreement"]["summary"] is not None
    assert 'id="quality-age"' in first.content.decode() and 'id="agreement"' in first.content.decode()
    assert first.context["voters"]["total"] == 2

    cast_votes(campaign, 10, seed=2)
    again = staff_client.get(url)
    assert again.context["quality"]["computed_at"] == computed_at  # young enough: no recompute on a page view

    settings.ARENA_QUALITY_MAX_AGE = 0
    fresh = staff_client.get(f"/staff/c/{campaign.slug}/quality.json").json()
    assert fresh["computed_at"] > first.context["quality_computed_at"].isoformat()
    assert {"verdict_alpha", "summary", "flags"} <= set(fresh)


def test_while_the_first_figures_are_computed_the_page_says_so(staff_client, campaign):
    from django.core.cache import cache

    from arena.services.quality_figures import QUEUED_KEY

    cache.set(QUEUED_KEY.format(campaign.pk), 1)  # a worker has the request already
    page = staff_client.get(f"/staff/c/{campaign.slug}/")
    assert page.status_code == 200 and "being computed by a worker" in page.content.decode()
    assert page.context["agreement"] is None
    assert staff_client.get(f"/staff/c/{campaign.slug}/quality.json").status_code == 202
