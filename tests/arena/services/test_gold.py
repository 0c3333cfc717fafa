"""Gold battles: the hand-out mixes them in at the campaign's rate, a voter never gets one twice, their
votes are recorded but stay out of the ratings and the default exports, and they score the voters."""

from __future__ import annotations

import json
import random
import threading

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Count

from arena.core.errors import ArenaError
from arena.exports.filters import ExportFilters
from arena.exports.formats import FORMATS
from arena.exports.writer import write_export
from arena.models import Battle, Campaign, GoldBattle, Item, Response, Vote, Voter
from arena.services.battles import open_battle
from arena.services.gold import as_gold_verdict, hand_out_gold
from arena.services.profiles import campaign_profile, forget_profiles
from arena.services.votes import record_vote
from tests.factories import make_campaign

pytestmark = pytest.mark.django_db


def add_gold(campaign: Campaign, n: int, expected: str = "first", **fields) -> list[GoldBattle]:
    """Gold battles on the campaign's first n prompts: the first model's answer against the second's."""
    golds = []
    for prompt in campaign.prompts.order_by("id")[:n]:
        first, second = prompt.responses.order_by("model__name")[:2]
        golds.append(
            GoldBattle.objects.create(
                campaign=campaign, prompt=prompt, first=first, second=second, expected=expected, **fields
            )
        )
    return golds


def set_rate(campaign: Campaign, rate: float) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(gold_rate=rate)
    forget_profiles()


def test_the_hand_out_mixes_gold_in_at_the_campaign_rate(campaign_with_gold):
    campaign, _ = campaign_with_gold
    random.seed(1234)
    voters = [Voter.objects.create() for _ in range(20)]
    handed = 0
    for voter in voters:
        for _ in range(25):
            battle = open_battle(campaign_profile(campaign.slug), voter.pk)
            Battle.objects.filter(pk=battle.id).update(status="voted")  # next hand-out: a new battle
            handed += 1
    gold_battles = Battle.objects.filter(campaign=campaign, gold__isnull=False)
    share = gold_battles.count() / handed
    assert 0.25 - 0.06 < share < 0.25 + 0.06, share  # 500 draws at p = 0.25: sd 0.019
    # Never the same gold battle twice to one voter.
    repeats = gold_battles.values("voter", "gold").annotate(n=Count("id")).filter(n__gt=1)
    assert not repeats.exists()
    # Left / right drawn at random for gold battles too.
    first_left = sum(1 for b in gold_battles.select_related("gold") if b.left_id == b.gold.first_id)
    assert 0.3 < first_left / gold_battles.count() < 0.7
    # Gold battles take no item, so they neither fill "K votes per item" slots nor count as item votes.
    assert not gold_battles.filter(item__isnull=False).exists()


@pytest.fixture
def campaign_with_gold(db):
    campaign = make_campaign(slug="gold", models=("Alpha", "Beta", "Gamma"), prompts=40, gold_rate=0.25)
    return campaign, add_gold(campaign, 20)


def test_a_voter_gets_each_active_ready_gold_battle_once_then_regular_ones(db):
    campaign = make_campaign(slug="few", models=("Alpha", "Beta"), prompts=6)
    golds = add_gold(campaign, 5)
    GoldBattle.objects.filter(pk=golds[3].pk).update(is_active=False)
    Response.objects.filter(pk=golds[4].second_id).update(status="running")  # not ready: never handed out
    voter = Voter.objects.create()
    profile = campaign_profile("few")
    seen = []
    while (view := hand_out_gold(profile, voter.pk)) is not None:
        battle = Battle.objects.get(pk=view.id)
        seen.append(battle.gold_id)
        record_vote(view.id, voter, "left")
    assert sorted(seen) == sorted(g.pk for g in golds[:3])
    # With gold exhausted, the hand-out goes on with regular battles even at the highest rate.
    set_rate(campaign, 1.0)
    view = open_battle(campaign_profile("few"), voter.pk)
    assert Battle.objects.get(pk=view.id).gold_id is None


def test_an_open_gold_battle_comes_back_on_reload_and_its_vote_is_recorded_normally(db):
    campaign = make_campaign(slug="reload", models=("Alpha", "Beta"), prompts=2, votes_per_item=1)
    (gold,) = add_gold(campaign, 1)
    set_rate(campaign, 1.0)
    voter = Voter.objects.create()
    first = open_battle(campaign_profile("reload"), voter.pk)
    assert open_battle(campaign_profile("reload"), voter.pk).id == first.id  # no re-roll on reload
    recorded = record_vote(first.id, voter, "tie", duration_ms=4000)
    vote = Vote.objects.get(battle_id=first.id)
    assert vote.verdict == "tie" and vote.duration_ms == 4000 and recorded.left_name in {"Alpha", "Beta"}
    assert Battle.objects.get(pk=first.id).gold_id == gold.pk
    assert set(Item.objects.filter(campaign=campaign).values_list("vote_count", flat=True)) == {0}


@pytest.mark.django_db(transaction=True)
def test_two_tabs_of_one_voter_never_get_the_same_gold_battle(db):
    campaign = make_campaign(slug="race", models=("Alpha", "Beta"), prompts=3)
    add_gold(campaign, 2)
    voter = Voter.objects.create()
    profile = campaign_profile("race")
    barrier = threading.Barrier(8)
    results: list[str | None] = []

    def ask() -> None:
        try:
            barrier.wait()
            view = hand_out_gold(profile, voter.pk)
            results.append(view.id if view else None)
        finally:
            connection.close()

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    handed = [r for r in results if r]
    assert len(results) == 8 and len(handed) == 2
    golds = Battle.objects.filter(pk__in=handed).values_list("gold_id", flat=True)
    assert len(set(golds)) == 2


# --- votes on gold stay out of ratings and default exports ----------------------------------------------


def vote_on_everything(campaign: Campaign, voter: Voter, verdict: str = "left") -> None:
    profile = campaign_profile(campaign.slug)
    while True:
        try:
            view = open_battle(profile, voter.pk)
        except ArenaError:
            return
        record_vote(view.id, voter, verdict)


def test_gold_votes_are_left_out_of_exports_unless_asked_for(db, tmp_path):
    campaign = make_campaign(slug="exp", models=("Alpha", "Beta"), prompts=4)
    add_gold(campaign, 2)
    for _ in range(3):
        voter = Voter.objects.create()
        answer_gold(campaign, voter, right=2, wrong=0)
        vote_on_everything(campaign, voter)
    gold_ids = set(Vote.objects.filter(battle__gold__isnull=False).values_list("battle_id", flat=True))
    regular_ids = set(Vote.objects.filter(battle__gold__isnull=True).values_list("battle_id", flat=True))
    # A gold battle's reveal shows its prompt's only pair: that prompt is not given again (blind hand-out).
    assert len(gold_ids) == 6 and len(regular_ids) == 6

    def exported(fmt: str, **filters) -> list[dict]:
        path = tmp_path / f"{fmt}.jsonl"
        write_export(campaign, fmt, ExportFilters.parse(filters), path)
        return [json.loads(line) for line in path.read_text().splitlines()]

    assert {r["question_id"] for r in exported("battles-jsonl")} == {  # question ids: the prompts
        v.prompt.external_id for v in Vote.objects.filter(battle_id__in=regular_ids)
    }
    assert len(exported("battles-jsonl")) == 6
    assert len(exported("battles-jsonl", include_gold=True)) == 12
    assert len(exported("trl-jsonl")) == 6  # every verdict was "left": one pair per vote
    assert len(exported("trl-jsonl", include_gold="true")) == 12
    with pytest.raises(ArenaError, match="Leaderboard exports"):
        ExportFilters.parse({"include_gold": True}).check(campaign, FORMATS["leaderboard-json"])
    call_command(
        "export_data",
        "exp",
        "--format",
        "battles-jsonl",
        "--output",
        str(tmp_path / "c.jsonl"),
        "--include-gold",
        "--quiet",
    )
    assert len((tmp_path / "c.jsonl").read_text().splitlines()) == 12


def test_gold_votes_are_left_out_of_the_ratings_input(db):
    from arena.leaderboards.aggregation import fold_new_votes
    from arena.leaderboards.models import PairAggregate
    from ratings.counts import PairCounts

    campaign = make_campaign(slug="rat", models=("Alpha", "Beta"), prompts=4)
    add_gold(campaign, 2)
    for _ in range(2):
        voter = Voter.objects.create()
        answer_gold(campaign, voter, right=1, wrong=1)
        vote_on_everything(campaign, voter)
    regular = Vote.objects.filter(campaign=campaign, battle__gold__isnull=True).count()
    assert Vote.objects.filter(campaign=campaign).count() == regular + 4
    fold_new_votes(campaign)
    counts = PairCounts.from_dict(PairAggregate.objects.get(campaign=campaign, dimension="", category="").counts)
    assert counts.n_votes == regular


# --- agreement ------------------------------------------------------------------------------------------


def test_a_gold_vote_is_read_back_in_the_gold_battles_terms():
    assert as_gold_verdict("left", left_id=1, first_id=1) == "first"
    assert as_gold_verdict("left", left_id=2, first_id=1) == "second"
    assert as_gold_verdict("right", left_id=2, first_id=1) == "first"
    assert as_gold_verdict("right", left_id=1, first_id=1) == "second"
    assert as_gold_verdict("tie", left_id=1, first_id=1) == "tie"
    assert as_gold_verdict("both_bad", left_id=2, first_id=1) == "both_bad"


# --- flags, the dashboard and its JSON ------------------------------------------------------------------


def answer_gold(campaign: Campaign, voter: Voter, right: int, wrong: int) -> None:
    """The voter gets right + wrong gold battles and answers that many as expected ("first")."""
    profile = campaign_profile(campaign.slug)
    for i in range(right + wrong):
        view = hand_out_gold(profile, voter.pk)
        battle = Battle.objects.select_related("gold").get(pk=view.id)
        first_left = battle.left_id == battle.gold.first_id
        verdict = ("left" if first_left else "right") if i < right else "both_bad"
        record_vote(view.id, voter, verdict)


@pytest.fixture
def judged(db):
    """Three voters on six gold battles: careful (6 of 6), careless (2 of 6), new (0 of 3)."""
    campaign = make_campaign(slug="judged", models=("Alpha", "Beta"), prompts=6)
    add_gold(campaign, 6)
    voters = {name: Voter.objects.create() for name in ("careful", "careless", "new")}
    answer_gold(campaign, voters["careful"], 6, 0)
    answer_gold(campaign, voters["careless"], 2, 4)
    answer_gold(campaign, voters["new"], 0, 3)
    return campaign, voters


def test_voters_who_disagree_with_gold_are_flagged(judged):
    from arena.services.abuse import Thresholds, suspicious_voters

    campaign, voters = judged
    flags = {flag.voter_id: flag for flag in suspicious_voters(campaign)}
    assert set(flags) == {voters["careless"].pk}  # "new" has too few gold votes to judge
    assert flags[voters["careless"].pk].reasons == ["gold: 2 of 6 gold battles as expected (33%, under 60%)"]
    stricter = suspicious_voters(campaign, Thresholds(gold_min_votes=3, gold_min_share=0.4))
    assert {flag.voter_id for flag in stricter} == {voters["careless"].pk, voters["new"].pk}
    assert suspicious_voters(campaign, Thresholds(gold_min_votes=0)) == []  # gold ignored


def test_the_command_flags_and_excludes_voters_who_disagree_with_gold(judged, capsys):
    campaign, voters = judged
    call_command("flag_suspicious_voters", campaign.slug, "--gold-min-votes", "3", "--exclude")
    out = capsys.readouterr().out
    assert "gold: 0 of 3" in out and "gold: 2 of 6" in out
    assert set(Voter.objects.filter(excluded=True)) == {voters["careless"], voters["new"]}


def test_the_dashboard_shows_gold_agreement_and_flags_and_excludes(judged, staff_client, alice):
    campaign, voters = judged
    url = f"/staff/c/{campaign.slug}/"
    html = staff_client.get(url).content.decode()
    assert 'id="flags"' in html and "gold: 2 of 6 gold battles" in html
    assert 'id="gold-summary"' in html and "8 of 15 gold votes" in html
    assert "0.33 of 6" in html  # the careless voter's row in the voters table
    data = staff_client.get(f"{url}quality.json").json()
    assert data["gold_agreement"][voters["careful"].public_id] == {
        "voter_id": voters["careful"].pk,
        "public_id": voters["careful"].public_id,
        "agree": 6,
        "n": 6,
        "excluded": False,
        "share": 1.0,
    }
    assert data["summary"]["gold"]["agree"] == 8 and data["summary"]["gold"]["n"] == 15
    assert [f["voter"] for f in data["flags"]] == [voters["careless"].public_id]
    assert alice.get(f"{url}quality.json").status_code == 302  # to the login page
    careless = voters["careless"].public_id
    assert alice.post(f"{url}exclude", {"voter": careless}).status_code == 302
    assert not Voter.objects.get(pk=voters["careless"].pk).excluded
    page = staff_client.post(f"{url}exclude", {"voter": careless}, follow=True)
    assert "excluded from ratings and exports" in page.content.decode()
    assert Voter.objects.get(pk=voters["careless"].pk).excluded
    assert "Count again" in page.content.decode()
    staff_client.post(f"{url}exclude", {"voter": careless, "excluded": "0"})
    assert not Voter.objects.get(pk=voters["careless"].pk).excluded
    assert "No such voter" in staff_client.post(f"{url}exclude", {"voter": "nobody"}, follow=True).content.decode()


# --- the admin ------------------------------------------------------------------------------------------


def test_staff_make_a_gold_battle_by_picking_a_prompt_then_two_of_its_responses(staff_client):
    campaign = make_campaign(slug="adm", models=("Alpha", "Beta"), prompts=2)
    p0, p1 = campaign.prompts.order_by("id")
    a0, b0 = p0.responses.order_by("model__name")
    a1 = p1.responses.order_by("model__name").first()
    url = "/admin/arena/goldbattle/add/"
    form = {"expected": "first", "note": "Alpha is right", "is_active": "on"}
    # The prompt's own page links here with the prompt filled in; its responses are then offered.
    assert f"{url}?prompt={p0.pk}" in staff_client.get(f"/admin/arena/prompt/{p0.pk}/change/").content.decode()
    page = staff_client.get(f"{url}?prompt={p0.pk}").content.decode()
    assert "Answer number 0 to question 0." in page and "Answer number 0 to question 1." not in page
    # Step one: only the prompt: asked for the responses, now listed.
    page = staff_client.post(url, {**form, "prompt": p0.pk}).content.decode()
    assert "Now choose two of this prompt" in page and "Alpha: Answer number 0 to question 0." in page
    # A response of another prompt, or the same response twice: refused with a clear message.
    page = staff_client.post(url, {**form, "prompt": p0.pk, "first": a0.pk, "second": a1.pk}).content.decode()
    assert "The second response answers another prompt." in page
    page = staff_client.post(url, {**form, "prompt": p0.pk, "first": a0.pk, "second": a0.pk}).content.decode()
    assert "Choose two different responses." in page
    Response.objects.filter(pk=b0.pk).update(status="failed")
    page = staff_client.post(url, {**form, "prompt": p0.pk, "first": a0.pk, "second": b0.pk}).content.decode()
    assert "is not ready" in page
    assert not GoldBattle.objects.exists()
    Response.objects.filter(pk=b0.pk).update(status="done")
    response = staff_client.post(url, {**form, "prompt": p0.pk, "first": a0.pk, "second": b0.pk})
    assert response.status_code == 302
    gold = GoldBattle.objects.get()
    assert (gold.campaign, gold.prompt, gold.first, gold.second, gold.expected) == (campaign, p0, a0, b0, "first")
    listing = staff_client.get("/admin/arena/goldbattle/").content.decode()
    assert "Alpha is right" in listing


def test_staff_mark_votes_as_gold_from_the_vote_list(staff_client):
    campaign = make_campaign(slug="mark", models=("Alpha", "Beta"), prompts=2)
    voter = Voter.objects.create()
    vote_on_everything(campaign, voter, "right")
    votes = list(Vote.objects.filter(campaign=campaign).select_related("battle"))
    action = {"action": "make_gold", "_selected_action": [v.pk for v in votes]}
    page = staff_client.post("/admin/arena/vote/", action, follow=True).content.decode()
    assert "2 gold battle(s) created." in page
    for vote in votes:
        gold = GoldBattle.objects.get(prompt=vote.prompt_id)
        assert (gold.first_id, gold.second_id, gold.expected) == (vote.battle.left_id, vote.battle.right_id, "second")
    page = staff_client.post("/admin/arena/vote/", action, follow=True).content.decode()
    assert "this pair is already gold" in page and GoldBattle.objects.count() == 2
    # The gold list counts the votes on each gold battle and how many were as expected.
    set_rate(campaign, 1.0)
    other = Voter.objects.create()
    view = hand_out_gold(campaign_profile("mark"), other.pk)
    battle = Battle.objects.select_related("gold").get(pk=view.id)
    record_vote(view.id, other, "right" if battle.left_id == battle.gold.first_id else "left")  # as expected
    listing = staff_client.get("/admin/arena/goldbattle/").content.decode()
    assert '<td class="field-n_votes">1</td><td class="field-agreement">100%</td>' in listing
    assert '<td class="field-n_votes">0</td><td class="field-agreement">-</td>' in listing
