"""The vote flow through the pages: battle, vote, reveal, and the rules around a vote."""

from __future__ import annotations

import itertools
import re

import pytest

from arena.models import Battle, Campaign, ModelEntry, Vote
from arena.services.voters import conceal_id, reveal_id

pytestmark = pytest.mark.django_db


def open_battle(client, campaign) -> Battle:
    response = client.get(f"/c/{campaign.slug}/vote/")
    assert response.status_code == 200, response.content[:500]
    battle_id = re.search(rb'action="/b/([^/]+)/vote"', response.content).group(1).decode()
    return Battle.objects.get(pk=battle_id)


def test_it_shows_a_battle_and_records_a_vote_in_model_terms(alice, campaign):
    battle = open_battle(alice, campaign)
    response = alice.post(f"/b/{battle.pk}/vote", {"verdict": "left", "duration_ms": "4200"})
    assert response.status_code == 302
    vote = Vote.objects.get(battle=battle)
    assert vote.verdict == "left"
    assert vote.winner_id == battle.left.model_id
    assert {vote.left_model_id, vote.right_model_id} == {battle.left.model_id, battle.right.model_id}
    assert vote.duration_ms == 4200
    reveal = alice.get(f"/b/{battle.pk}/", follow=True)
    assert battle.left.model.name.encode() in reveal.content
    assert battle.right.model.name.encode() in reveal.content


def test_reloading_the_page_keeps_the_same_battle(alice, campaign):
    first = open_battle(alice, campaign)
    assert open_battle(alice, campaign).pk == first.pk


def test_it_rejects_a_second_vote_and_changes_nothing(alice, campaign):
    battle = open_battle(alice, campaign)
    alice.post(f"/b/{battle.pk}/vote", {"verdict": "left"})
    again = alice.post(f"/b/{battle.pk}/vote", {"verdict": "right"}, HTTP_ACCEPT="application/json")
    assert again.status_code == 409
    assert "already voted" in again.json()["message"]
    assert Vote.objects.get(battle=battle).verdict == "left"


def test_a_voter_cannot_vote_on_another_voters_battle(alice, bob, campaign):
    battle = open_battle(alice, campaign)
    open_battle(bob, campaign)
    response = bob.post(f"/b/{battle.pk}/vote", {"verdict": "left"}, HTTP_ACCEPT="application/json")
    assert response.status_code == 404
    assert not Vote.objects.filter(battle=battle).exists()
    assert bob.get(f"/b/{battle.pk}/").status_code == 404


@pytest.mark.parametrize("status", [Campaign.Status.PAUSED, Campaign.Status.CLOSED])
def test_votes_are_refused_when_the_campaign_is_not_active(alice, campaign, status):
    battle = open_battle(alice, campaign)
    Campaign.objects.filter(pk=campaign.pk).update(status=status)
    response = alice.post(f"/b/{battle.pk}/vote", {"verdict": "left"}, HTTP_ACCEPT="application/json")
    assert response.status_code == 403
    assert status in response.json()["message"]
    assert not Vote.objects.exists()


@pytest.mark.parametrize(
    ("limit", "message"), [("vote_limit", "cast the 2 votes"), ("daily_vote_limit", "today's vote limit")]
)
def test_a_vote_past_the_voters_limit_is_refused_and_stores_nothing(alice, campaign, limit, message):
    for _ in range(2):
        assert alice.post(f"/b/{open_battle(alice, campaign).pk}/vote", {"verdict": "left"}).status_code == 302
    battle = open_battle(alice, campaign)  # opened before the limit was set: the vote itself is checked
    Campaign.objects.filter(pk=campaign.pk).update(**{limit: 2})
    response = alice.post(f"/b/{battle.pk}/vote", {"verdict": "left"}, HTTP_ACCEPT="application/json")
    assert response.status_code == 429 and message in response.json()["message"]
    assert not Vote.objects.filter(battle=battle).exists()
    assert Battle.objects.get(pk=battle.pk).status == Battle.Status.OPEN
    Campaign.objects.filter(pk=campaign.pk).update(**{limit: 3})
    assert alice.post(f"/b/{battle.pk}/vote", {"verdict": "left"}).status_code == 302


def test_a_vote_on_a_cancelled_battle_is_refused(alice, campaign):
    battle = open_battle(alice, campaign)
    Battle.objects.filter(pk=battle.pk).update(status=Battle.Status.VOID)
    response = alice.post(f"/b/{battle.pk}/vote", {"verdict": "left"}, HTTP_ACCEPT="application/json")
    assert response.status_code == 409 and "cancelled" in response.json()["message"]
    assert not Vote.objects.exists()


def test_a_vote_counts_once_on_its_item(alice, campaign):
    battle = open_battle(alice, campaign)
    before = battle.item.vote_count
    alice.post(f"/b/{battle.pk}/vote", {"verdict": "right"})
    alice.post(f"/b/{battle.pk}/vote", {"verdict": "left"})
    battle.item.refresh_from_db()
    assert battle.item.vote_count == before + 1
    vote = Vote.objects.get(battle=battle)
    assert (vote.verdict, vote.winner_id, vote.campaign_id) == ("right", battle.right.model_id, campaign.pk)


def test_battle_ids_are_unguessable_and_in_creation_order():
    from arena.models import new_battle_id

    ids = [new_battle_id() for _ in range(500)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{11}[A-Za-z0-9_-]{16}", battle_id) for battle_id in ids)  # 96 random bits
    assert [battle_id[:11] for battle_id in ids] == sorted(battle_id[:11] for battle_id in ids)


def test_a_vote_needs_the_csrf_token(campaign):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    battle = open_battle(client, campaign)
    assert client.post(f"/b/{battle.pk}/vote", {"verdict": "left"}).status_code == 403
    token = client.cookies["csrftoken"].value
    assert client.post(f"/b/{battle.pk}/vote", {"verdict": "left", "csrfmiddlewaretoken": token}).status_code == 302


def test_ties_and_both_bad_follow_the_campaign_settings(alice, campaign):
    Campaign.objects.filter(pk=campaign.pk).update(allow_tie=False)
    battle = open_battle(alice, campaign)
    assert b'value="tie"' not in alice.get(f"/b/{battle.pk}/", follow=True).content
    response = alice.post(f"/b/{battle.pk}/vote", {"verdict": "tie"}, HTTP_ACCEPT="application/json")
    assert response.status_code == 400
    assert alice.post(f"/b/{battle.pk}/vote", {"verdict": "both_bad"}).status_code == 302
    assert Vote.objects.get(battle=battle).winner is None


def test_dimension_scores_are_validated_and_stored_per_side(alice, db):
    from tests.factories import make_campaign

    campaign = make_campaign(slug="dims", dimensions=("helpfulness", "accuracy"))
    battle = open_battle(alice, campaign)
    page = alice.get(f"/b/{battle.pk}/", follow=True).content
    assert b'name="score-helpfulness-left"' in page
    bad = alice.post(
        f"/b/{battle.pk}/vote", {"verdict": "left", "score-helpfulness-left": "9"}, HTTP_ACCEPT="application/json"
    )
    assert bad.status_code == 400 and "1 to 5" in bad.json()["message"]
    ok = alice.post(
        f"/b/{battle.pk}/vote",
        {"verdict": "left", "score-helpfulness-left": "5", "score-helpfulness-right": "2", "score-accuracy-right": "4"},
    )
    assert ok.status_code == 302
    assert Vote.objects.get(battle=battle).scores == {"helpfulness": {"left": 5, "right": 2}, "accuracy": {"right": 4}}


def test_next_battle_never_shows_an_answer_already_revealed(alice, db):
    from tests.factories import make_campaign

    # 2 prompts x 3 pairs; after one vote on a prompt, each of its other pairs holds a revealed answer.
    campaign = make_campaign(slug="small", models=("A1", "B1", "C1"), prompts=2)
    seen = set()
    for _ in range(2):
        battle = open_battle(alice, campaign)
        assert not {battle.left_id, battle.right_id} & seen
        seen |= {battle.left_id, battle.right_id}
        alice.post(f"/b/{battle.pk}/vote", {"verdict": "tie"})
    done = alice.get(f"/c/{campaign.slug}/vote/")
    assert done.status_code == 404
    assert b"judged everything" in done.content


def test_the_left_side_is_random(alice, db):
    from tests.factories import make_campaign

    campaign = make_campaign(slug="sides", models=("L1", "R1"), prompts=40)
    lo_left = 0
    for _ in range(40):
        battle = open_battle(alice, campaign)
        lo_left += battle.left.model_id < battle.right.model_id
        alice.post(f"/b/{battle.pk}/vote", {"verdict": "tie"})
    assert 8 <= lo_left <= 32  # P(outside) < 1e-4 for a fair coin


def test_inactive_models_are_not_handed_out(alice, campaign):
    ModelEntry.objects.filter(name="Gamma").update(is_active=False)
    for _ in range(3):
        battle = open_battle(alice, campaign)
        assert "Gamma" not in {battle.left.model.name, battle.right.model.name}
        alice.post(f"/b/{battle.pk}/vote", {"verdict": "tie"})


def test_the_voter_cookie_is_signed_and_carries_the_voter_so_no_lookup_is_needed(alice, campaign):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    battle = open_battle(alice, campaign)
    value = alice.cookies["arena_voter"].value
    token = conceal_id(battle.voter_id)
    assert value.startswith(f"{battle.voter.public_id}:{token}:")  # value, then its signature
    with CaptureQueriesContext(connection) as queries:
        alice.get(f"/c/{campaign.slug}/vote/")
    assert not any("FROM arena_voter" in q["sql"] for q in queries.captured_queries)
    # A forged token (the signature no longer matches) is no voter at all: a new one is made.
    forged = value.replace(f":{token}:", f":{conceal_id(battle.voter_id + 1000)}:", 1)
    alice.cookies["arena_voter"] = forged
    again = open_battle(alice, campaign)
    assert again.voter_id not in (battle.voter_id, battle.voter_id + 1000)


def test_the_cookie_does_not_show_how_many_voters_came_before():
    tokens = [conceal_id(pk) for pk in range(1, 1001)]
    assert all(reveal_id(t) == pk for pk, t in zip(range(1, 1001), tokens, strict=True))  # a permutation
    assert len(set(tokens)) == 1000 and all(len(t) == 16 for t in tokens)
    assert tokens != sorted(tokens)  # consecutive voters get unordered tokens
    assert not any(str(pk) == t.lstrip("0") for pk, t in enumerate(tokens, 1))
    # Half the bits change between neighbours, on average: the order cannot be read off.
    flips = [bin(int(a, 16) ^ int(b, 16)).count("1") for a, b in itertools.pairwise(tokens)]
    assert 28 < sum(flips) / len(flips) < 36


def test_a_token_reads_back_only_under_the_secret_it_was_made_with(settings):
    """Tokens are remembered per process (reveal_id), by the secret too: a rotated SECRET_KEY must
    not read an old token as the id it stood for."""
    settings.SECRET_KEY = "first secret, long enough for the test"
    token = conceal_id(4242)
    assert reveal_id(token) == 4242 and reveal_id(token) == 4242  # computed, then remembered
    settings.SECRET_KEY = "second secret, long enough for the test"
    assert reveal_id(token) != 4242
    assert reveal_id(conceal_id(4242)) == 4242
    assert reveal_id("not hex at all!!") is None


@pytest.mark.django_db(transaction=True)
def test_a_voter_deleted_by_staff_starts_afresh_instead_of_failing(alice):
    from tests.factories import make_campaign

    campaign = make_campaign()
    battle = open_battle(alice, campaign)
    battle.voter.delete()
    page = alice.get(f"/c/{campaign.slug}/vote/")
    assert page.status_code == 302 and page["Location"] == f"/c/{campaign.slug}/vote/"
    assert alice.cookies["arena_voter"].value == ""  # forgotten
    fresh = open_battle(alice, campaign)
    assert fresh.voter_id != battle.voter_id
    assert alice.post(f"/b/{fresh.pk}/vote", {"verdict": "tie"}).status_code == 302
    assert Vote.objects.filter(battle=fresh, voter_id=fresh.voter_id).exists()
