"""Ranking tasks (arena.services.rankings) on PostgreSQL: hand-out, submission, N-choose-2 expansion,
and what ratings and exports make of a ranking."""

from __future__ import annotations

import json
import threading
from collections import Counter
from itertools import combinations

import pytest
from django.db import connection

from arena.core.errors import ArenaError, Conflict, LimitReached, NotAllowed, NotFound, NothingToVoteOn
from arena.exports.filters import ExportFilters
from arena.exports.writer import write_export
from arena.leaderboards.aggregation import fold_new_votes
from arena.leaderboards.models import PairAggregate
from arena.models import Battle, Campaign, ModelEntry, Ranking, Response, Vote, Voter
from arena.services import rankings
from arena.services.profiles import campaign_profile, forget_profiles
from ratings.counts import PairCounts
from tests.factories import make_campaign

pytestmark = pytest.mark.django_db

MODELS = ("Alpha", "Beta", "Gamma", "Delta", "Epsilon")


def ranking_campaign(slug="rank", models=MODELS, prompts=3, size=4, **fields) -> Campaign:
    return make_campaign(
        slug=slug, models=models, prompts=prompts, task=Campaign.Task.RANKING, ranking_size=size, **fields
    )


def open_for(campaign: Campaign, voter: Voter) -> rankings.RankingView:
    forget_profiles()
    return rankings.open_ranking(campaign_profile(campaign.slug), voter)


def model_names(ranking_id: str) -> list[str]:
    """The models of a ranking in the order shown (A, B, ...)."""
    shown = Ranking.objects.get(pk=ranking_id).shown
    names = dict(Response.objects.filter(pk__in=shown).values_list("pk", "model__name"))
    return [names[pk] for pk in shown]


# --- hand-out -----------------------------------------------------------------------------------------


def test_it_shows_n_responses_to_one_prompt_and_a_reload_returns_the_same_task():
    campaign = ranking_campaign()
    voter = Voter.objects.create()
    first = open_for(campaign, voter)
    assert [r.label for r in first.responses] == ["A", "B", "C", "D"]
    ranking = Ranking.objects.get(pk=first.id)
    responses = Response.objects.filter(pk__in=ranking.shown)
    assert len(set(ranking.shown)) == 4 and {r.prompt_id for r in responses} == {ranking.prompt_id}
    assert [r.html for r in first.responses] == [responses.get(pk=pk).html for pk in ranking.shown]
    again = open_for(campaign, voter)
    assert again == first
    assert Ranking.objects.filter(voter=voter).count() == 1


def test_the_order_shown_is_drawn_at_random():
    campaign = ranking_campaign(prompts=1, size=3)
    firsts, sets = Counter(), Counter()
    for _ in range(60):
        view = open_for(campaign, Voter.objects.create())
        names = model_names(view.id)
        firsts[names[0]] += 1
        sets[frozenset(names)] += 1
    # Each of 5 models comes first about 12 times in 60; missing one entirely has odds below 1e-5.
    assert set(firsts) == set(MODELS), firsts
    assert len(sets) > 3  # which 3 of the 5 models are shown is random too


def test_fewest_rankings_first_and_never_the_same_prompt_twice():
    campaign = ranking_campaign(prompts=3, size=3)
    voters = [Voter.objects.create() for _ in range(3)]
    views = [open_for(campaign, v) for v in voters]
    prompts = [Ranking.objects.get(pk=v.id).prompt_id for v in views]
    assert len(set(prompts)) == 3  # each open task holds its prompt: the next voter gets another one

    alice = voters[0]
    seen = []
    for _ in range(3):
        view = open_for(campaign, alice)
        seen.append(Ranking.objects.get(pk=view.id).prompt_id)
        rankings.submit_ranking(view.id, alice, ["C", "B", "A"])
    assert sorted(seen) == sorted(prompts)  # every prompt once
    with pytest.raises(NothingToVoteOn):
        open_for(campaign, alice)


def test_a_prompt_needs_n_done_responses_from_active_models():
    campaign = ranking_campaign(prompts=2, size=4, models=("Alpha", "Beta", "Gamma", "Delta"))
    thin, full = campaign.prompts.order_by("id")
    Response.objects.filter(prompt=thin, model__name="Delta").update(status=Response.Status.FAILED)
    for _ in range(5):
        view = open_for(campaign, Voter.objects.create())
        assert Ranking.objects.get(pk=view.id).prompt_id == full.pk
    ModelEntry.objects.filter(name="Alpha").update(is_active=False)
    with pytest.raises(NothingToVoteOn):  # 3 active models left: no prompt has 4 answers to rank
        open_for(campaign, Voter.objects.create())


def test_an_open_task_whose_answer_went_away_is_replaced():
    campaign = ranking_campaign(prompts=2, size=3)
    voter = Voter.objects.create()
    view = open_for(campaign, voter)
    Response.objects.filter(pk=Ranking.objects.get(pk=view.id).shown[0]).update(status=Response.Status.RUNNING)
    again = open_for(campaign, voter)
    assert again.id != view.id and not Ranking.objects.filter(pk=view.id).exists()


def test_pairwise_and_live_campaigns_hand_out_no_rankings():
    pairwise = make_campaign(slug="pair")
    with pytest.raises(Conflict):
        open_for(pairwise, Voter.objects.create())
    live = ranking_campaign(slug="live-rank", mode=Campaign.Mode.LIVE)
    with pytest.raises(Conflict):
        open_for(live, Voter.objects.create())


# --- submission ---------------------------------------------------------------------------------------


def test_a_ranking_of_n_expands_to_n_choose_2_voted_battles_in_the_order_shown():
    campaign = ranking_campaign(size=5, prompts=1)
    voter = Voter.objects.create()
    view = open_for(campaign, voter)
    shown = model_names(view.id)
    order = ["D", "A", "E", "C", "B"]
    submitted = rankings.submit_ranking(view.id, voter, order, duration_ms=42_000)
    best_first = [shown["ABCDE".index(label)] for label in order]
    assert [r.model for r in submitted.ranked] == best_first
    assert [r.label for r in submitted.ranked] == order and submitted.pairs == 10

    ranking = Ranking.objects.get(pk=view.id)
    assert ranking.status == "submitted" and ranking.duration_ms == 42_000 and ranking.submitted_at
    assert ranking.order == [ranking.shown["ABCDE".index(label)] for label in order]
    votes = Vote.objects.filter(battle__ranking=ranking).select_related("battle", "left_model", "right_model", "winner")
    assert votes.count() == 10 and Battle.objects.filter(ranking=ranking, status="voted").count() == 10
    position = {name: i for i, name in enumerate(shown)}
    rank = {name: i for i, name in enumerate(best_first)}
    pairs = set()
    for vote in votes:
        left, right = vote.left_model.name, vote.right_model.name
        assert position[left] < position[right]  # left is the one shown first
        assert vote.winner.name == min(left, right, key=rank.get)
        assert vote.verdict == ("left" if vote.winner.name == left else "right")
        assert vote.voter_id == voter.pk and vote.prompt_id == ranking.prompt_id and vote.duration_ms == 42_000
        assert vote.battle.left.model.name == left and vote.battle.item_id is None
        pairs.add(frozenset((left, right)))
    assert pairs == {frozenset(p) for p in combinations(shown, 2)}


@pytest.mark.parametrize(
    ("order", "message"),
    [
        ([], "Please put all 3 responses in order"),
        (["A", "B"], "Response C is missing"),
        (["A", "B", "B"], "Response B appears more than once"),
        (["A", "B", "C", "D"], "Unknown response 'D'"),
        (["A", "B", "c "], None),  # case and spaces are forgiven
        ("C,A,B", None),
        ("c a b", None),
        ("CAB", None),
        ("A B Z", "Unknown response 'Z'"),
        (["AB", "C"], "Unknown response 'AB'"),
        ({"A": 1}, "The order must be a list of response letters"),
        ([1, 2, 3], "The order must be a list of response letters"),
        (None, "The order must be a list of response letters"),
    ],
)
def test_bad_orders_get_a_clear_error_and_lose_nothing(order, message):
    campaign = ranking_campaign(size=3, prompts=1)
    voter = Voter.objects.create()
    view = open_for(campaign, voter)
    if message is None:
        rankings.submit_ranking(view.id, voter, order)
        assert Vote.objects.count() == 3
        return
    with pytest.raises(ArenaError) as error:
        rankings.submit_ranking(view.id, voter, order)
    assert error.value.status == 400 and message in error.value.message
    assert Ranking.objects.get(pk=view.id).status == "open" and not Vote.objects.exists()
    rankings.submit_ranking(view.id, voter, ["B", "C", "A"])  # the task is still there to finish
    assert Vote.objects.count() == 3


def test_a_second_submission_is_a_conflict_and_changes_nothing():
    campaign = ranking_campaign(size=3)
    voter = Voter.objects.create()
    view = open_for(campaign, voter)
    rankings.submit_ranking(view.id, voter, ["A", "B", "C"])
    with pytest.raises(Conflict) as error:
        rankings.submit_ranking(view.id, voter, ["C", "B", "A"])
    assert error.value.status == 409 and "already submitted" in error.value.message
    assert Ranking.objects.get(pk=view.id).order == Ranking.objects.get(pk=view.id).shown
    assert Vote.objects.count() == 3 and not Vote.objects.filter(verdict="right").exists()


def test_another_voters_ranking_is_not_found():
    campaign = ranking_campaign(size=3)
    alice, bob = Voter.objects.create(), Voter.objects.create()
    view = open_for(campaign, alice)
    for ranking_id in (view.id, "no-such-ranking"):
        with pytest.raises(NotFound):
            rankings.submit_ranking(ranking_id, bob, ["A", "B", "C"])
        with pytest.raises(NotFound):
            rankings.voter_ranking(ranking_id, bob)
    with pytest.raises(NotFound):
        rankings.voter_ranking(view.id, None)
    assert Ranking.objects.get(pk=view.id).status == "open"


def test_a_paused_or_closed_campaign_takes_no_submission():
    campaign = ranking_campaign(size=3)
    voter = Voter.objects.create()
    view = open_for(campaign, voter)
    for status in ("paused", "closed"):
        Campaign.objects.filter(pk=campaign.pk).update(status=status)
        with pytest.raises(NotAllowed):
            rankings.submit_ranking(view.id, voter, ["A", "B", "C"])
    assert not Vote.objects.exists() and Ranking.objects.get(pk=view.id).status == "open"


def test_vote_limits_count_rankings_not_the_pairs():
    campaign = ranking_campaign(size=4, prompts=3, vote_limit=2)
    voter = Voter.objects.create()
    for _ in range(2):
        rankings.check_may_rank(campaign, voter, authenticated=False)
        view = open_for(campaign, voter)
        rankings.submit_ranking(view.id, voter, ["A", "B", "C", "D"])
    assert Vote.objects.filter(voter=voter).count() == 12  # 2 rankings x 6 pairs, yet only 2 toward the limit
    with pytest.raises(LimitReached):
        rankings.check_may_rank(campaign, voter, authenticated=False)
    view = open_for(campaign, voter)
    with pytest.raises(LimitReached):
        rankings.submit_ranking(view.id, voter, ["A", "B", "C", "D"])


def test_an_answer_naming_a_model_flags_only_its_own_pairs():
    campaign = ranking_campaign(size=3, prompts=1, models=("Alpha", "Beta", "Gamma"))
    Response.objects.filter(model__name="Gamma").update(html="<p>As ChatGPT, I would say 4.</p>")
    voter = Voter.objects.create()
    view = open_for(campaign, voter)
    rankings.submit_ranking(view.id, voter, ["A", "B", "C"])
    flagged = Battle.objects.filter(ranking_id=view.id, flagged=True)
    assert flagged.count() == 2
    assert all("Gamma" in (b.left.model.name, b.right.model.name) for b in flagged)


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_submissions_record_one_ranking():
    campaign = ranking_campaign(size=4, prompts=1)
    voter = Voter.objects.create()
    view = open_for(campaign, voter)
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def submit(order):
        try:
            barrier.wait()
            rankings.submit_ranking(view.id, voter, order)
            outcomes.append("ok")
        except Conflict:
            outcomes.append("conflict")
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(list(o),)) for o in ("ABCD", "DCBA", "BADC", "CDAB")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict", "conflict", "conflict", "ok"]
    assert Vote.objects.count() == 6 and Battle.objects.filter(ranking_id=view.id).count() == 6


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_page_loads_open_one_task():
    campaign = ranking_campaign(size=3, prompts=3)
    voter = Voter.objects.create()
    profile = campaign_profile(campaign.slug)
    barrier = threading.Barrier(4)
    ids: list[str] = []

    def load():
        try:
            barrier.wait()
            ids.append(rankings.open_ranking(profile, voter).id)
        finally:
            connection.close()

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == 4 and len(set(ids)) == 1
    assert Ranking.objects.filter(voter=voter).count() == 1


# --- ratings and exports see N-choose-2 pairwise outcomes ------------------------------------------------


@pytest.fixture
def ranked(settings, tmp_path):
    """Two voters each rank 4 responses to one prompt; returns the campaign and both orders (model names)."""
    settings.ARENA_EXPORT_DIR = tmp_path / "exports"
    campaign = ranking_campaign(size=4, prompts=1, models=("Alpha", "Beta", "Gamma", "Delta"))
    orders = []
    for letters in (["B", "D", "A", "C"], ["C", "A", "D", "B"]):
        voter = Voter.objects.create()
        view = open_for(campaign, voter)
        submitted = rankings.submit_ranking(view.id, voter, letters)
        orders.append([r.model for r in submitted.ranked])
    return campaign, orders


def test_a_ranking_of_n_counts_as_n_choose_2_outcomes_in_the_ratings(ranked):
    campaign, orders = ranked
    assert fold_new_votes(campaign) == 12
    counts = PairCounts.from_dict(PairAggregate.objects.get(campaign=campaign, dimension="", category="").counts)
    assert counts.n_votes == 2 * 4 * 3 // 2
    wins = Counter()
    for order in orders:
        for better, _ in combinations(order, 2):
            wins[better] += 1
    names = list(counts.models)
    by_model = {name: counts.wins[names.index(name)].sum() for name in names}
    assert by_model == {name: wins[name] for name in names}


def test_a_ranking_of_n_exports_as_n_choose_2_preference_pairs_and_battles(ranked, tmp_path):
    campaign, orders = ranked
    expected = Counter((better, worse) for order in orders for better, worse in combinations(order, 2))

    path = tmp_path / "pairs.jsonl"
    stats = write_export(campaign, "trl-jsonl", ExportFilters.parse({}), path)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert stats.rows_written == len(records) == 12
    assert Counter((r["chosen_model"], r["rejected_model"]) for r in records) == expected
    answers = dict(Response.objects.values_list("model__name", "content"))
    for record in records:
        assert record["prompt"] == [{"role": "user", "content": "Question number 0?"}]
        assert record["chosen"] == [{"role": "assistant", "content": answers[record["chosen_model"]]}]
        assert record["rejected"] == [{"role": "assistant", "content": answers[record["rejected_model"]]}]

    path = tmp_path / "battles.jsonl"
    write_export(campaign, "battles-jsonl", ExportFilters.parse({}), path)
    battles = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(battles) == 12 and {b["winner"] for b in battles} <= {"model_a", "model_b"}
    outcomes = Counter(
        (b["model_a"], b["model_b"]) if b["winner"] == "model_a" else (b["model_b"], b["model_a"]) for b in battles
    )
    assert outcomes == expected


# --- voter-quality flags see a ranking as one task -------------------------------------------------------


def test_an_honest_ranker_is_not_flagged_and_one_who_never_reorders_is():
    from datetime import timedelta

    from django.utils import timezone

    from arena.services.abuse import Thresholds, suspicious_voters

    campaign = ranking_campaign(size=4, prompts=12, models=("Alpha", "Beta", "Gamma", "Delta"))
    honest, lazy = Voter.objects.create(), Voter.objects.create()
    start = timezone.now() - timedelta(hours=2)
    orders = ["BDAC", "CADB", "DCBA", "ABDC", "BCAD", "ACBD", "DBCA", "CBDA", "BADC", "ADCB", "CDAB", "DACB"]
    for i, letters in enumerate(orders):
        for voter, order in ((honest, list(letters)), (lazy, list("ABCD"))):
            view = open_for(campaign, voter)
            rankings.submit_ranking(view.id, voter, order, duration_ms=40_000)
            # 40 s per ranking, as a person takes; all 6 pairs of one ranking share its instant.
            Vote.objects.filter(battle__ranking_id=view.id).update(created_at=start + timedelta(seconds=40 * i))
    assert Vote.objects.filter(voter=honest).count() == 72
    flags = {flag.voter_id: flag for flag in suspicious_voters(campaign, Thresholds(streak=10))}
    assert honest.pk not in flags  # 72 votes at 12 instants: not "too fast", and not "always A"
    assert flags[lazy.pk].reasons == ["streak: 12 consecutive 'left' verdicts"]
    assert flags[lazy.pk].votes == 12  # counted in rankings


def test_submitted_rankings_count_on_their_pairs_and_the_least_ranked_prompt_comes_next():
    campaign = ranking_campaign(prompts=3, size=4, models=("Alpha", "Beta", "Gamma", "Delta"))
    given = []
    for _ in range(6):
        voter = Voter.objects.create()
        view = open_for(campaign, voter)
        given.append(Ranking.objects.get(pk=view.id).prompt_id)
        rankings.submit_ranking(view.id, voter, ["D", "C", "B", "A"])
    assert sorted(Counter(given[:3]).values()) == [1, 1, 1] and sorted(Counter(given).values()) == [2, 2, 2]
    counts = Counter(dict(campaign.items.values_list("prompt_id", "vote_count")))
    assert set(campaign.items.values_list("vote_count", flat=True)) == {2}, counts  # each of the 6 pairs, twice
