"""The models' integrity rules where the database does not hold them: the busy parents (arena.models.BUSY_PARENT)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import ProtectedError

from arena.models import Battle, Campaign, ModelEntry, Vote
from tests.arena.services.test_votes import open_battle
from tests.modes import postgres_only

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


@postgres_only("the constraints are PostgreSQL's")
def test_only_the_busy_parents_go_without_a_database_constraint():
    """Votes and battles keep their constraints to the rows that differ from one to the next (the
    battle, the voter, the prompt, the answers); the campaign and the models, which every write of a
    campaign shares, have none: checking them locked the same rows for every concurrent vote."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint "
            "WHERE contype = 'f' AND conrelid::regclass::text IN ('arena_vote', 'arena_battle')"
        )
        constrained = set(cursor.fetchall())
    assert ("arena_vote", "arena_campaign") not in constrained
    assert ("arena_vote", "arena_modelentry") not in constrained
    assert ("arena_battle", "arena_campaign") not in constrained
    for parent in ("arena_battle", "arena_voter", "arena_prompt"):
        assert ("arena_vote", parent) in constrained
    for parent in ("arena_voter", "arena_prompt", "arena_response", "arena_item"):
        assert ("arena_battle", parent) in constrained
