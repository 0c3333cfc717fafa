"""A vote whose reply carries the next battle (``next_battle``): what the voting page uses to show the
next battle without loading another page. The hand-out's rules all hold; nothing in it names a model."""

from __future__ import annotations

import json
import re

import pytest

from arena.models import Battle, Campaign, Vote
from tests.factories import make_campaign

pytestmark = pytest.mark.django_db

NAMES = ("Falcon-X", "Otter-Y", "Heron-Z")


def handed_out(client, slug: str) -> Battle:
    page = client.get(f"/c/{slug}/vote/")
    assert page.status_code == 200, page.content[:300]
    return Battle.objects.get(pk=re.search(rb'action="/b/([^/]+)/vote"', page.content).group(1).decode())


def vote_json(client, battle_id: str, **body):
    return client.post(
        f"/b/{battle_id}/vote", json.dumps(body), content_type="application/json", HTTP_ACCEPT="application/json"
    )


def test_the_reply_carries_the_voters_next_battle_without_a_name(alice):
    campaign = make_campaign(slug="next", models=NAMES, prompts=3)
    first = handed_out(alice, "next")
    reply = vote_json(alice, first.pk, verdict="left", next_battle=True)
    assert reply.status_code == 200, reply.content
    data = reply.json()
    assert data["verdict"] == "left" and data["verdict_label"] == "A is better"
    assert data["left"]["model"] == first.left.model.name  # the vote's reveal, as before
    upcoming = data["next_battle"]
    second = Battle.objects.get(pk=upcoming["id"])
    assert second.pk != first.pk and second.voter_id == first.voter_id and second.status == Battle.Status.OPEN
    assert upcoming["url"] == f"/c/{campaign.slug}/b/{second.pk}/" and upcoming["vote_url"] == f"/b/{second.pk}/vote"
    assert (upcoming["left_html"], upcoming["right_html"]) == (second.left.html, second.right.html)
    assert "Prompt" in upcoming["conversation_html"]
    assert not any(name in json.dumps(upcoming) for name in NAMES)
    # It is the voter's open battle: the next page shows the same one, and it takes a vote.
    assert handed_out(alice, "next").pk == second.pk
    assert vote_json(alice, second.pk, verdict="right").status_code == 200
    assert Vote.objects.count() == 2


def test_a_form_post_asks_for_it_with_next_battle_1(alice):
    make_campaign(slug="form", models=NAMES, prompts=3)
    first = handed_out(alice, "form")
    reply = alice.post(f"/b/{first.pk}/vote", {"verdict": "tie", "next_battle": "1"}, HTTP_ACCEPT="application/json")
    assert reply.status_code == 200 and reply.json()["next_battle"]["id"] != first.pk


def test_only_asked_and_only_in_json(alice):
    make_campaign(slug="plain", models=NAMES, prompts=3)
    first = handed_out(alice, "plain")
    assert "next_battle" not in vote_json(alice, first.pk, verdict="left").json()
    second = handed_out(alice, "plain")
    page = alice.post(f"/b/{second.pk}/vote", {"verdict": "left", "next_battle": "1"})  # no JavaScript: a page
    assert page.status_code == 302 and page["Location"] == f"/c/plain/b/{second.pk}/"
    assert Battle.objects.filter(status=Battle.Status.OPEN).count() == 0  # no battle handed out unasked


def test_when_none_is_left_the_reply_says_why_and_the_vote_stands(alice):
    make_campaign(slug="one", models=NAMES[:2], prompts=1)  # one battle, then nothing blind is left
    first = handed_out(alice, "one")
    data = vote_json(alice, first.pk, verdict="left", next_battle=True).json()
    assert data["next_battle"] is None and data["next_battle_error"]["error"] == "nothing_left"
    assert "judged everything" in data["next_battle_error"]["message"]
    assert data["next"] == "/c/one/vote/" and Vote.objects.filter(battle=first).exists()


def test_a_closed_campaign_hands_out_no_next_battle(alice):
    campaign = make_campaign(slug="shut", models=NAMES, prompts=3, vote_limit=1)
    first = handed_out(alice, "shut")
    data = vote_json(alice, first.pk, verdict="left", next_battle=True).json()
    assert data["next_battle"] is None and data["next_battle_error"]["error"] == "limit_reached"
    assert Battle.objects.filter(campaign=campaign).count() == 1


def test_the_next_battle_counts_as_a_battle_request_and_the_vote_as_a_vote(alice, settings):
    make_campaign(slug="limits", models=NAMES, prompts=3)
    handed_out(alice, "limits")  # the first visit gets the voter cookie; from then on each request counts
    first = handed_out(alice, "limits")  # the voter's first counted battle request (1 of 1)
    settings.ARENA_BATTLE_RATE_PER_MINUTE = 1
    data = vote_json(alice, first.pk, verdict="left", next_battle=True).json()
    assert data["next_battle"] is None and data["next_battle_error"]["error"] == "rate_limited"
    assert Vote.objects.filter(battle=first).exists()  # the battle limit holds back only the next battle

    settings.ARENA_BATTLE_RATE_PER_MINUTE = 100
    settings.ARENA_VOTE_RATE_PER_MINUTE = 1
    second = handed_out(alice, "limits")
    refused = vote_json(alice, second.pk, verdict="left", next_battle=True)
    assert refused.status_code == 429 and refused.json()["error"] == "rate_limited"
    assert not Vote.objects.filter(battle=second).exists()
    assert Battle.objects.filter(status=Battle.Status.OPEN).count() == 1  # nothing handed out either


def test_a_live_campaigns_vote_leaves_the_next_one_to_its_page(alice):
    campaign = make_campaign(slug="live", models=NAMES, prompts=3)
    first = handed_out(alice, "live")
    campaign.mode = Campaign.Mode.LIVE
    campaign.save()  # (the cached profile is dropped on save)
    data = vote_json(alice, first.pk, verdict="left", next_battle=True).json()
    assert data["next_battle"] is None and data["next_battle_error"]["error"] == "conflict"


def api_vote(client, battle_id: str, **body):
    return client.post(f"/api/v1/battles/{battle_id}/vote", body, content_type="application/json")


def test_the_api_vote_carries_the_next_battle_when_asked(alice):
    make_campaign(slug="api", models=NAMES[:2], prompts=2)  # two battles, then nothing blind is left
    first = Battle.objects.get(pk=alice.post("/api/v1/campaigns/api/battles").json()["id"])
    plain = api_vote(alice, first.pk, verdict="left").json()
    assert plain["a_model"] == first.left.model.name and plain["next_battle"] is None
    assert Battle.objects.filter(status=Battle.Status.OPEN).count() == 0  # none handed out unasked

    second = Battle.objects.get(pk=alice.post("/api/v1/campaigns/api/battles").json()["id"])
    reply = api_vote(alice, second.pk, verdict="right", next_battle=True)
    assert reply.status_code == 200, reply.content
    data = reply.json()
    assert data["b_model"] == second.right.model.name and data["next_battle"] is None
    assert data["next_battle_error"]["error"] == "nothing_left"  # both prompts seen: none is blind

    make_campaign(slug="api2", models=NAMES, prompts=3)
    third = Battle.objects.get(pk=alice.post("/api/v1/campaigns/api2/battles").json()["id"])
    data = api_vote(alice, third.pk, verdict="tie", next_battle=True).json()
    upcoming = data["next_battle"]
    fourth = Battle.objects.get(pk=upcoming["id"])
    assert fourth.pk != third.pk and fourth.status == Battle.Status.OPEN and data["next_battle_error"] is None
    assert (upcoming["a"]["html"], upcoming["b"]["html"], upcoming["campaign"]) == (
        fourth.left.html,
        fourth.right.html,
        "api2",
    )
    assert not any(name in json.dumps(upcoming) for name in NAMES)
    assert api_vote(alice, fourth.pk, verdict="left").status_code == 200
