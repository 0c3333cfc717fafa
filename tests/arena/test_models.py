"""Deleting what votes point at: a campaign takes its battles and votes along, a model with votes is kept."""

from __future__ import annotations

import pytest
from django.db.models import ProtectedError

from arena.models import Battle, Campaign, ModelEntry, Vote
from tests.arena.services.test_votes import open_battle

pytestmark = pytest.mark.django_db


def _vote(client, campaign) -> Vote:
    battle = open_battle(client, campaign)
    assert client.post(f"/b/{battle.pk}/vote", {"verdict": "left"}).status_code == 302
    return Vote.objects.get(battle=battle)


def test_deleting_a_campaign_still_deletes_its_battles_and_votes(alice, bob, campaign):
    from tests.factories import make_campaign

    other = make_campaign(slug="other")
    kept = _vote(bob, other)
    _vote(alice, campaign)
    open_battle(bob, campaign)
    campaign.delete()
    assert not Battle.objects.filter(campaign_id=campaign.pk).exists()
    assert not Vote.objects.filter(campaign_id=campaign.pk).exists()
    assert list(Vote.objects.values_list("pk", flat=True)) == [kept.pk]
    assert Campaign.objects.filter(pk=other.pk).exists()


def test_a_model_with_votes_still_cannot_be_deleted(alice, campaign):
    vote = _vote(alice, campaign)
    for model_id in (vote.left_model_id, vote.right_model_id):
        with pytest.raises(ProtectedError):
            ModelEntry.objects.get(pk=model_id).delete()
    assert Vote.objects.filter(pk=vote.pk).exists()
