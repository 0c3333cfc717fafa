"""Live prompts cannot be flooded by a client that drops its cookies (issue 14, finding 2).

The review sent ``POST /c/<live-campaign>/live/`` 150 times with no voter cookie: 150 accepted in 15 s
(300 paid generations, 150 new voters). The limits now key on the HMAC of the address and on the
campaign, and a refused request stores nothing.
"""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import Client

from arena.models import Battle, Prompt, Voter
from tests.arena.services.guardrails.conftest import live_campaign

pytestmark = pytest.mark.django_db


def post_without_cookies(campaign, ip: str = "203.0.113.7", prompt: str = "What is the capital of France?"):
    """What the review's script did: a fresh client (no voter cookie) for every request."""
    return Client(REMOTE_ADDR=ip).post(f"/c/{campaign.slug}/live/", {"prompt": prompt}, HTTP_ACCEPT="application/json")


def test_150_prompts_without_a_voter_cookie_are_held_to_the_per_address_limit(models_api, settings, stopped_clock):
    campaign = live_campaign(models_api)

    answers = [post_without_cookies(campaign) for _ in range(150)]

    accepted = [a for a in answers if a.status_code == 201]
    refused = [a for a in answers if a.status_code == 429]
    assert len(accepted) == settings.ARENA_IP_LIVE_PROMPTS_PER_MINUTE == 20
    assert len(refused) == 130
    assert refused[0].json()["message"] == (
        "Too many prompts from your network in the last minute. Please wait a minute and try again."
    )
    assert 1 <= int(refused[0]["Retry-After"]) <= 61
    # A refused request stores nothing: no voter, no battle, no prompt.
    assert Voter.objects.count() == Battle.objects.count() == Prompt.objects.count() == 20


def test_the_address_is_counted_as_its_hmac_never_in_clear(models_api, settings, stopped_clock):
    settings.ARENA_IP_LIVE_PROMPTS_PER_MINUTE = 2
    campaign = live_campaign(models_api)

    codes = [post_without_cookies(campaign, ip="198.51.100.23").status_code for _ in range(3)]

    assert codes == [201, 201, 429]
    keys = " ".join(map(str, cache._cache))  # the test settings' in-process cache
    assert "live:ip:" in keys and "198.51.100.23" not in keys
    assert post_without_cookies(campaign, ip="198.51.100.24").status_code == 201  # another address


def test_the_hourly_limit_per_address_holds_across_minutes(models_api, settings, stopped_clock):
    settings.ARENA_IP_LIVE_PROMPTS_PER_MINUTE = 0
    settings.ARENA_IP_LIVE_PROMPTS_PER_HOUR = 3
    campaign = live_campaign(models_api)

    answers = [post_without_cookies(campaign) for _ in range(4)]

    assert [a.status_code for a in answers] == [201, 201, 201, 429]
    assert "in the last hour" in answers[-1].json()["message"]


def test_the_campaign_limit_holds_across_addresses(models_api, settings, stopped_clock):
    settings.ARENA_CAMPAIGN_LIVE_PROMPTS_PER_MINUTE = 5
    campaign = live_campaign(models_api)
    other = live_campaign(models_api, slug="other")

    codes = [post_without_cookies(campaign, ip=f"192.0.2.{i}").status_code for i in range(8)]

    assert codes == [201] * 5 + [429] * 3
    refused = post_without_cookies(campaign, ip="192.0.2.99")
    assert refused.json() == {
        "error": "rate_limited",
        "message": "This campaign is receiving too many prompts right now. Please try again in a minute.",
    }
    assert post_without_cookies(other, ip="192.0.2.99").status_code == 201  # per campaign


def test_one_flooding_address_does_not_use_up_the_campaign_for_everyone(models_api, settings, stopped_clock):
    settings.ARENA_IP_LIVE_PROMPTS_PER_MINUTE = 3
    settings.ARENA_CAMPAIGN_LIVE_PROMPTS_PER_MINUTE = 5
    campaign = live_campaign(models_api)

    flood = [post_without_cookies(campaign, ip="192.0.2.1").status_code for _ in range(50)]

    assert flood.count(201) == 3
    assert [post_without_cookies(campaign, ip="192.0.2.2").status_code for _ in range(2)] == [201, 201]


def test_a_further_turn_counts_against_the_address_too(
    models_api, settings, stopped_clock, django_capture_on_commit_callbacks
):
    settings.ARENA_IP_LIVE_PROMPTS_PER_MINUTE = 2
    campaign = live_campaign(models_api)
    voter = Client(REMOTE_ADDR="192.0.2.50")
    with django_capture_on_commit_callbacks(execute=True):
        voter.post(f"/c/{campaign.slug}/live/", {"prompt": "First"})
    battle = Battle.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        assert voter.post(f"/b/{battle.pk}/live/turn", {"prompt": "Second"}).status_code == 302

    third = voter.post(f"/b/{battle.pk}/live/turn", {"prompt": "Third"}, HTTP_ACCEPT="application/json")

    assert third.status_code == 429 and "from your network" in third.json()["message"]
    battle.refresh_from_db()
    assert battle.conversation["user"] == ["First", "Second"]
