"""Private campaigns (issue 14, finding 8): an invite-only (or login-only) campaign can keep its page,
leaderboard and API to staff and to those who may vote in it; everyone else gets "No such campaign",
exactly as for a campaign that does not exist, so its name, models and win rates stay unknown."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from arena.leaderboards.snapshots import compute_snapshots
from arena.models import Campaign, Invite
from arena.services.imports.campaigns import load_campaign
from arena.services.imports.rows import ImportFailed
from arena.services.profiles import forget_profiles
from tests.arena.leaderboards.test_leaderboards import cast_votes
from tests.factories import make_campaign

pytestmark = pytest.mark.django_db

# Every page and API route that shows a campaign or its results.
SEEN_AT = [
    "/c/{slug}/",
    "/c/{slug}/vote/",
    "/c/{slug}/leaderboard/",
    "/c/{slug}/leaderboard.json",
    "/c/{slug}/leaderboard.csv",
    "/api/v1/campaigns/{slug}",
]


@pytest.fixture
def private(db) -> tuple[Campaign, Invite]:
    campaign = make_campaign(slug="secret-eval", models=("Secret-Model-X", "Secret-Model-Y"), prompts=6)
    cast_votes(campaign, 6)  # votes from before it turned private, so that it has a leaderboard
    compute_snapshots(campaign)
    Campaign.objects.filter(pk=campaign.pk).update(access="invite", private=True)
    campaign.refresh_from_db()
    forget_profiles()
    return campaign, Invite.objects.create(campaign=campaign, label="team")


def shown(client: Client, campaign: Campaign) -> dict[str, int]:
    statuses = {url: client.get(url.format(slug=campaign.slug)).status_code for url in SEEN_AT}
    statuses["home"] = campaign.title in client.get("/").content.decode()
    statuses["api list"] = campaign.slug in {c["slug"] for c in client.get("/api/v1/campaigns").json()}
    return statuses


def test_a_stranger_cannot_tell_a_private_campaign_from_a_missing_one(private):
    campaign, _ = private
    stranger = Client()
    assert shown(stranger, campaign) == {**dict.fromkeys(SEEN_AT, 404), "home": False, "api list": False}
    for url in SEEN_AT:
        body = stranger.get(url.format(slug=campaign.slug)).content.decode()
        assert "Secret-Model" not in body and campaign.title not in body
    missing = stranger.get("/c/no-such-campaign/leaderboard.json")
    assert stranger.get(f"/c/{campaign.slug}/leaderboard.json").content == missing.content
    # A made-up invitation token does not open it either.
    assert stranger.get(f"/c/{campaign.slug}/?invite=not-a-token").status_code == 404


def test_the_invitation_link_opens_it_and_revoking_the_invitation_closes_it_again(private):
    campaign, invite = private
    voter = Client()
    assert voter.get(f"/c/{campaign.slug}/?invite={invite.token}").status_code == 302  # admitted
    statuses = shown(voter, campaign)
    assert statuses == {**dict.fromkeys(SEEN_AT, 200), "home": True, "api list": True}
    assert "Secret-Model-X" in voter.get(f"/c/{campaign.slug}/leaderboard/").content.decode()

    Invite.objects.filter(pk=invite.pk).update(revoked=True)
    assert shown(voter, campaign) == {**dict.fromkeys(SEEN_AT, 404), "home": False, "api list": False}


def test_staff_see_it_and_a_public_or_unprivate_campaign_stays_open_to_all(private, staff_client):
    campaign, _ = private
    staff = shown(staff_client, campaign)  # staff see it; voting still takes an invitation
    assert staff == {**dict.fromkeys(SEEN_AT, 200), "/c/{slug}/vote/": 403, "home": True, "api list": True}
    Campaign.objects.filter(pk=campaign.pk).update(private=False)
    forget_profiles()
    stranger = shown(Client(), campaign)  # invite-only, not private: results public, voting by invitation
    assert stranger["/c/{slug}/leaderboard.json"] == stranger["/c/{slug}/"] == 200 and stranger["home"]
    assert stranger["/c/{slug}/vote/"] == 403


def test_a_login_campaign_can_be_private_to_logged_in_users(django_user_model):
    campaign = make_campaign(slug="staff-only-eval", access="login", private=True)
    assert Client().get(f"/c/{campaign.slug}/").status_code == 404
    member = Client()
    member.force_login(django_user_model.objects.create_user("member", password="pw"))
    assert member.get(f"/c/{campaign.slug}/").status_code == 200


def test_a_public_campaign_cannot_be_private():
    campaign = make_campaign(slug="open-eval")
    campaign.private = True
    with pytest.raises(ValidationError, match="needs access by invitation or login"):
        campaign.full_clean()
    spec = {
        "slug": "file-eval",
        "title": "From a file",
        "access": "public",
        "private": True,
        "models": [{"name": "Alpha"}],
    }
    with pytest.raises(ImportFailed, match="needs access by invitation or login"):
        load_campaign(spec)
    assert not Campaign.objects.filter(slug="file-eval").exists()
