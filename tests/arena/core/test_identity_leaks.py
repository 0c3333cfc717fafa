"""An answer that names its model flags the battle, and the vote is left out of the ratings."""

from __future__ import annotations

import pytest

from arena.core.identity import CACHED_LENGTH, reveals_identity
from arena.leaderboards.aggregation import fold_new_votes
from arena.leaderboards.models import PairAggregate
from arena.models import Battle, Response, Vote, Voter
from arena.services.battles import open_battle
from arena.services.profiles import campaign_profile
from arena.services.votes import record_vote
from ratings.counts import PairCounts
from tests.factories import make_campaign


@pytest.mark.parametrize(
    ("text", "leaks"),
    [
        ("As GPT-4, I cannot browse the web.", True),
        ("I am Claude, made by Anthropic.", True),
        ("I'm Zephyr-7, a helpful assistant.", True),  # a campaign model's own name
        ("The gpt-4o-mini tokenizer", True),  # a family with a version names a model
        ("The Zephyr-7b tokenizer", False),  # part of a longer word is not the campaign's name
        ("Here is a palindrome checker in Python.", False),
    ],
)
def test_it_detects_models_naming_themselves(text, leaks):
    assert reveals_identity([text], ["Zephyr-7"]) is leaks


@pytest.mark.parametrize("filler", [0, CACHED_LENGTH])  # answers kept in the cache, and longer ones
def test_the_verdict_on_an_answer_depends_on_the_campaigns_names(filler):
    text = "x " * filler + "I'm Zephyr-7, a helpful assistant."
    for _ in range(2):  # asked again, the cached verdicts answer the same
        assert reveals_identity(["No names here.", text], ["Zephyr-7"]) is True
        assert reveals_identity(["No names here.", text], ["Quill"]) is False
        assert reveals_identity([None, text], []) is False


@pytest.mark.django_db
def test_flagged_battles_are_voted_on_but_not_counted():
    campaign = make_campaign(slug="leak", models=("Zephyr-7", "Quill"), prompts=2)
    Response.objects.filter(prompt__external_id="leak-p0", model__name="Quill").update(
        html="<p>As ChatGPT, I think the answer is 4.</p>"
    )
    voter = Voter.objects.create()
    for _ in range(2):
        battle = open_battle(campaign_profile("leak"), voter.pk)
        record_vote(battle.id, voter, "left")
    flagged = Battle.objects.filter(campaign=campaign, flagged=True)
    assert flagged.count() == 1 and flagged.get().prompt.external_id == "leak-p0"
    assert Vote.objects.filter(campaign=campaign).count() == 2  # the raw vote is kept
    fold_new_votes(campaign)
    counts = PairCounts.from_dict(PairAggregate.objects.get(campaign=campaign, dimension="", category="").counts)
    assert counts.n_votes == 1
