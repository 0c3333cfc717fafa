"""K independent votes per item hold under concurrency (PostgreSQL row locks, SKIP LOCKED)."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection

from arena.core.errors import NothingToVoteOn
from arena.models import Battle, Voter
from arena.services.battles import open_battle
from arena.services.profiles import campaign_profile
from tests.factories import make_campaign

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("sampling", ["balanced", "active"])
def test_concurrent_voters_never_push_an_item_past_k(db, sampling):
    if connection.vendor != "postgresql":
        pytest.skip("the concurrency guarantee is proved on PostgreSQL (make test sets DATABASE_URL)")
    campaign = make_campaign(  # 12 items
        slug="overlap", models=("A", "B", "C"), prompts=4, votes_per_item=2, sampling=sampling
    )
    voters = [Voter.objects.create() for _ in range(9)]
    barrier = threading.Barrier(len(voters))
    outcomes: list[str] = []

    def ask(voter: Voter) -> None:
        try:
            barrier.wait()
            # Each voter asks for a battle on every prompt (a vote reveals its answers, so at most one
            # battle per prompt and voter stays blind), voting on none: slots stay taken. A slot left
            # free would then be one that every voter was refused, not one that no voter asked for
            # (with three asks, 23 of 24 filled when the voters with asks left had used its prompt).
            for _ in range(4):
                battle = open_battle(campaign_profile("overlap"), voter.pk)
                Battle.objects.filter(pk=battle.id).update(status="voted")  # free the voter for the next one
                outcomes.append("battle")
        except NothingToVoteOn:
            outcomes.append("full")
        finally:
            connection.close()

    threads = [threading.Thread(target=ask, args=(v,)) for v in voters]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    per_item = Counter(Battle.objects.filter(campaign=campaign).values_list("item_id", flat=True))
    assert max(per_item.values()) <= 2
    assert sum(per_item.values()) == 24  # every slot of the 12 items was used, none twice
    assert "full" in outcomes
