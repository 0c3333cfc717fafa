"""Every battle a voter is handed is blind: no answer in it was shown to them at an earlier reveal.

An answer never changes for a (prompt, model), so once a vote revealed which model wrote it, a later
battle showing it again is no longer anonymous (issue 14, finding 1). The rule holds for every sampling
strategy, under "K votes per item", for gold battles, and through the API; a campaign can be stricter
(one battle per prompt); a voter who has seen everything they can judge blind is told so.
"""

from __future__ import annotations

import pytest
from django.db.models import Count

from arena.core.errors import NothingToVoteOn
from arena.models import Battle, Campaign, GoldBattle, Voter
from arena.services import dashboard
from arena.services.battles import JUDGED_EVERYTHING, open_battle
from arena.services.profiles import campaign_profile, forget_profiles
from arena.services.votes import record_vote
from tests.factories import make_campaign

pytestmark = pytest.mark.django_db

MODELS = ("Alpha", "Beta", "Gamma", "Delta")


def vote_until_done(campaign: Campaign, voter: Voter, limit: int = 500) -> list[Battle]:
    """Vote (tie) on every battle handed to ``voter`` until the hand-out says there is nothing left."""
    voted = []
    for _ in range(limit):
        forget_profiles()
        try:
            view = open_battle(campaign_profile(campaign.slug), voter.pk)
        except NothingToVoteOn as done:
            assert str(done) == JUDGED_EVERYTHING
            return voted
        record_vote(view.id, voter, "tie")
        voted.append(Battle.objects.get(pk=view.id))
    raise AssertionError(f"still handing out battles after {limit} votes")


def assert_blind(battles: list[Battle]) -> None:
    """No battle shows an answer that an earlier battle's reveal showed."""
    revealed: set[int] = set()
    for number, battle in enumerate(battles):
        shown = {battle.left_id, battle.right_id}
        assert not shown & revealed, f"battle {number} shows an answer revealed before"
        revealed |= shown


@pytest.mark.parametrize(
    "fields",
    [
        {"sampling": "balanced"},
        {"sampling": "uniform"},
        {"sampling": "weighted"},
        {"sampling": "active"},
        {"sampling": "balanced", "votes_per_item": 3},
    ],
    ids=lambda fields: "-".join(str(v) for v in fields.values()),
)
def test_no_battle_shows_an_answer_whose_model_the_voter_has_seen(fields):
    campaign = make_campaign(slug="blind", models=MODELS, prompts=6, **fields)
    voter = Voter.objects.create()
    battles = vote_until_done(campaign, voter)
    assert_blind(battles)
    # With 4 models a prompt gives exactly two blind battles (two disjoint pairs), whatever the order.
    per_prompt = Battle.objects.filter(voter=voter).values("prompt").annotate(n=Count("id"))
    assert sorted(row["n"] for row in per_prompt) == [2] * 6


def test_a_strict_campaign_never_shows_a_voter_the_same_prompt_twice():
    campaign = make_campaign(slug="strict", models=MODELS, prompts=5, one_battle_per_prompt=True)
    voter = Voter.objects.create()
    battles = vote_until_done(campaign, voter)
    assert sorted(b.prompt_id for b in battles) == sorted(campaign.prompts.values_list("id", flat=True))


def test_an_unvoted_battle_reveals_nothing_and_other_voters_are_not_affected():
    campaign = make_campaign(slug="others", models=("Alpha", "Beta", "Gamma"), prompts=1)
    profile = campaign_profile(campaign.slug)
    alice, bob = Voter.objects.create(), Voter.objects.create()
    first = open_battle(profile, alice.pk)
    Battle.objects.filter(pk=first.id).update(status=Battle.Status.VOID)  # e.g. a live generation that failed
    # Nothing of it was revealed: alice may still meet its answers, and so may bob.
    assert len(vote_until_done(campaign, alice)) == 1
    assert len(vote_until_done(campaign, bob)) == 1


def test_gold_battles_follow_the_same_rule_in_both_directions():
    """A gold battle never shows an answer revealed by a regular battle, nor the reverse, and a voter
    never gets the same prompt and pair twice, once as gold and once as a regular battle."""
    campaign = make_campaign(slug="gold-blind", models=MODELS, prompts=12, gold_rate=0.5)
    for prompt in campaign.prompts.order_by("id"):
        first, second = prompt.responses.order_by("model__name")[:2]
        GoldBattle.objects.create(campaign=campaign, prompt=prompt, first=first, second=second, expected="tie")
    forget_profiles()
    for _ in range(3):
        voter = Voter.objects.create()
        battles = vote_until_done(campaign, voter)
        assert_blind(battles)
        assert any(b.gold_id for b in battles) and any(b.item_id for b in battles)


def test_judged_everything_through_the_api(client):
    campaign = make_campaign(slug="api-blind", models=("Alpha", "Beta", "Gamma"), prompts=2)
    shown: list[set[str]] = []
    while (response := client.post(f"/api/v1/campaigns/{campaign.slug}/battles")).status_code == 200:
        battle = response.json()
        shown.append({battle["a"]["html"], battle["b"]["html"]})
        voted = client.post(f"/api/v1/battles/{battle['id']}/vote", {"verdict": "tie"}, "application/json")
        assert voted.status_code == 200
    assert response.status_code == 404
    assert "judged everything you can judge blind" in response.json()["message"]
    assert len(shown) == 2 and not shown[0] & shown[1]


def test_the_dashboard_tells_how_many_blind_battles_remain_per_voter():
    campaign = make_campaign(slug="remaining", models=MODELS, prompts=3)  # 3 prompts x 6 pairs
    assert dashboard.blind_remaining(campaign) == {"items": 18, "voters": 0, "average": None, "exhausted": 0}
    profile = campaign_profile(campaign.slug)
    alice, bob = Voter.objects.create(), Voter.objects.create()
    record_vote(open_battle(profile, alice.pk).id, alice, "tie")  # blocks 5 of its prompt's 6 pairs
    vote_until_done(campaign, bob)
    figures = dashboard.blind_remaining(campaign)
    assert figures == {"items": 18, "voters": 2, "average": (13 + 0) / 2, "exhausted": 1}
    Campaign.objects.filter(pk=campaign.pk).update(one_battle_per_prompt=True)
    campaign.refresh_from_db()
    assert dashboard.blind_remaining(campaign)["average"] == (12 + 0) / 2


def test_a_fresh_voter_on_the_demo_never_meets_a_revealed_answer(db):
    """The finding's reproduction: 55 votes by a fresh voter on the demo met a revealed answer in 28."""
    from django.core.management import call_command

    call_command("load_demo", verbosity=0)
    campaign = Campaign.objects.get(slug="demo")
    voter = Voter.objects.create()
    battles = vote_until_done(campaign, voter)
    assert len(battles) >= 10
    assert_blind(battles)


def test_the_staff_dashboard_shows_the_blind_battles_left(staff_client):
    campaign = make_campaign(slug="left-page", models=("Alpha", "Beta", "Gamma"), prompts=2)
    vote_until_done(campaign, Voter.objects.create())
    html = staff_client.get(f"/staff/c/{campaign.slug}/").content.decode()
    assert "<strong>0.0</strong> of the 6 prompt-and-pair items blind" in html
    assert "1 of 1 voters have judged everything" in html and "Add prompts" in html


def test_a_campaign_file_can_ask_for_one_battle_per_prompt():
    from arena.services.imports.campaigns import load_campaign

    spec = {
        "slug": "strict-file",
        "title": "Strict",
        "status": "active",
        "one_battle_per_prompt": True,
        "models": [{"name": "Alpha"}, {"name": "Beta"}, {"name": "Gamma"}, {"name": "Delta"}],
        "prompts": [
            {"id": f"p{n}", "prompt": f"Why {n}?", "responses": {m: f"{m} says {n}." for m in MODELS}} for n in range(3)
        ],
    }
    campaign, _ = load_campaign(spec)
    assert campaign.one_battle_per_prompt
    assert len(vote_until_done(campaign, Voter.objects.create())) == 3
