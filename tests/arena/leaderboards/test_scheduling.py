"""Every acknowledged vote reaches the leaderboard without further traffic and without beat."""

from __future__ import annotations

import pytest

from arena.leaderboards import snapshots
from arena.leaderboards.models import LeaderboardSnapshot
from arena.models import Voter
from arena.services.battles import open_battle
from arena.services.profiles import campaign_profile
from arena.services.votes import record_vote
from tests.factories import make_campaign

pytestmark = pytest.mark.django_db(transaction=True)


def board_votes(campaign) -> int:
    board = LeaderboardSnapshot.objects.filter(campaign=campaign, dimension="", category="", method="davidson")
    return board.values_list("n_votes", flat=True).first() or 0


def test_a_vote_committed_while_a_recompute_runs_is_folded_by_a_follow_up(settings, monkeypatch):
    settings.ARENA_RECOMPUTE_DEBOUNCE = 5.0  # a real debounce window, as in production
    campaign = make_campaign(slug="race", prompts=4)
    alice, bob = Voter.objects.create(), Voter.objects.create()
    first = open_battle(campaign_profile("race"), alice.pk)
    second = open_battle(campaign_profile("race"), bob.pk)

    fit_boards = snapshots.fit_boards
    late_votes = []

    def fit_after_a_late_vote(*args, **kwargs):
        # The run has folded what it read; bob's vote commits (and asks for a recompute) before it ends.
        if not late_votes:
            late_votes.append(record_vote(second.id, bob, "right"))
        return fit_boards(*args, **kwargs)

    monkeypatch.setattr(snapshots, "fit_boards", fit_after_a_late_vote)
    record_vote(first.id, alice, "left")  # its recompute runs in-process (tasks are eager here)

    assert late_votes, "the late vote was cast during the recompute"
    assert board_votes(campaign) == 2


def test_votes_in_the_debounce_window_are_not_left_out(settings):
    settings.ARENA_RECOMPUTE_DEBOUNCE = 5.0
    campaign = make_campaign(slug="trail", prompts=6)
    voters = [Voter.objects.create() for _ in range(7)]
    for voter in voters:
        battle = open_battle(campaign_profile("trail"), voter.pk)
        record_vote(battle.id, voter, "left")
    assert board_votes(campaign) == 7
