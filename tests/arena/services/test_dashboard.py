"""The staff dashboard of a campaign, and pausing / resuming / closing from it."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from arena.leaderboards import scheduling
from arena.leaderboards.models import LeaderboardSnapshot
from arena.leaderboards.snapshots import compute_snapshots
from arena.models import Campaign, Vote, Voter
from tests.arena.leaderboards.test_leaderboards import cast_votes

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
    assert page.context["voters"]["total"] == Vote.objects.values("voter").distinct().count() > 1


def test_the_vote_count_and_the_leaderboard_agree_or_the_difference_is_explained(staff_client, campaign, monkeypatch):
    cast_votes(campaign, 10)
    compute_snapshots(campaign)
    excluded = Voter.objects.filter(votes__campaign=campaign).distinct().first()
    left_out = Vote.objects.filter(campaign=campaign, voter=excluded).count()
    excluded.excluded = True
    excluded.save(update_fields=["excluded"])
    call_command("rebuild_ratings", campaign.slug)  # the excluded voter's votes leave the leaderboard

    def broker_down(campaign_id, **kwargs):
        raise ConnectionError("the broker is down")

    monkeypatch.setattr(scheduling, "request_recompute", broker_down)
    cast_votes(campaign, 2, seed=7)  # stored, but no recompute could be asked for

    tally = staff_client.get(f"/staff/c/{campaign.slug}/").context["tally"]
    board = LeaderboardSnapshot.objects.get(campaign=campaign, dimension="", category="", method="davidson")
    assert tally == {"total": 12, "counted": board.n_votes, "awaiting": 2, "left_out": left_out}
    assert board.n_votes == 10 - left_out  # the rebuild counted every vote but the excluded voter's
    html = staff_client.get(f"/staff/c/{campaign.slug}/").content.decode()
    assert f"Of 12 votes: {board.n_votes} on the leaderboard, 2 waiting for the next recompute" in html
    assert f"{left_out} never counted" in html


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
    assert first.context["voters"]["total"] == Vote.objects.values("voter").distinct().count() > 1

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
