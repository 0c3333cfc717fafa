"""Judge-human agreement, win rates and the judge's separate leaderboards.

Figures are checked against hand-computed values, scikit-learn's ``cohen_kappa_score`` and scipy's
``spearmanr``; the end-to-end report runs a scripted judge (protocol server) on human-voted battles.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from django.core.management import call_command

from arena.judges import actions, agreement, boards, winrates
from arena.judges.models import Judge, JudgeVerdict
from arena.leaderboards.models import LeaderboardSnapshot
from arena.leaderboards.snapshots import compute_snapshots
from arena.models import Battle, Item, ModelEntry, Vote, Voter
from arena.services.votes import record_vote
from tests.factories import make_campaign
from tests.protocol_server import ProtocolServer

# -- pure figures --------------------------------------------------------------------------------------


def test_agreement_and_kappa_match_the_hand_computed_values():
    human = [0, 0, 1, 2, 2, 1]
    judge = [0, 1, 1, 2, 0, 1]
    result = agreement.agreement(human, judge)
    assert result["with_ties"] == pytest.approx(4 / 6)
    assert (result["n_decisive"], result["without_ties"]) == (4, pytest.approx(3 / 4))
    # p_o = 4/6; p_e = (2*2 + 2*3 + 2*1) / 36 = 1/3; kappa = (2/3 - 1/3) / (2/3)
    assert result["cohen_kappa"] == pytest.approx(0.5)


def test_cohen_kappa_equals_scikit_learns():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(7)
    for _ in range(20):
        a = rng.integers(0, 3, 200)
        b = np.where(rng.random(200) < 0.6, a, rng.integers(0, 3, 200))
        assert agreement.cohen_kappa(a, b) == pytest.approx(metrics.cohen_kappa_score(a, b), abs=1e-12)


def test_spearman_equals_scipys_with_ties():
    stats = pytest.importorskip("scipy.stats")
    a = {"m1": 1.0, "m2": 3.0, "m3": 3.0, "m4": 7.0, "m5": 2.0}
    b = {"m1": 10.0, "m2": 8.0, "m3": 30.0, "m4": 40.0, "m5": 5.0, "other": 1.0}
    common = sorted(a)
    expected = stats.spearmanr([a[m] for m in common], [b[m] for m in common]).statistic
    assert agreement.spearman(a, b) == {"rho": pytest.approx(expected), "n_models": 5}


def test_the_human_baseline_compares_each_vote_with_the_majority_of_the_others():
    items = ["x"] * 4 + ["y"] * 2 + ["z"] * 3
    outcomes = [*(0, 0, 0, 1), *(0, 1), *(0, 1, 2)]
    result = agreement.human_baseline(items, outcomes)
    # x: the three 0-votes meet a 0-majority, the 1-vote does not; y has too few votes; z has no majority.
    assert (result["n"], result["with_ties"], result["pairings"]) == (4, 0.75, 2)


def test_win_rates_and_their_length_controlled_form():
    rate, low, high = winrates.raw_win_rate([1, 1, 0, 0.5])
    assert rate == pytest.approx(62.5) and low < rate < high
    rng = np.random.default_rng(3)
    # Equal lengths: the length-controlled rate is the raw one.
    even = {"M": [(float(p), 100.0, 100.0) for p in rng.integers(0, 2, 400)]}
    row = winrates.win_rates(even)[0]
    assert row.lc_win_rate == pytest.approx(row.win_rate, abs=0.2)
    # A judge that prefers whichever answer is longer: the model wins when it writes more, and as
    # often writes less; its raw rate rides on length, the length-controlled rate comes back to ~50%.
    diffs = rng.normal(0, 100, 2000) + 60  # mostly longer than the reference
    prefs = (diffs + rng.normal(0, 20, diffs.size) > 0).astype(float)
    biased = {"Long": [(p, 300 + d, 300.0) for p, d in zip(prefs, diffs, strict=True)]}
    row = winrates.win_rates(biased)[0]
    assert row.win_rate > 65 and abs(row.lc_win_rate - 50) < abs(row.win_rate - 50) and row.length_slope > 1


# -- from stored verdicts ------------------------------------------------------------------------------


def vote_on(item: Item, verdict: str, *, swap: bool = False) -> None:
    voter = Voter.objects.create()
    left, right = (item.response_hi_id, item.response_lo_id) if swap else (item.response_lo_id, item.response_hi_id)
    battle = Battle.objects.create(
        campaign_id=item.campaign_id, voter=voter, prompt_id=item.prompt_id, item=item, left_id=left, right_id=right
    )
    record_vote(battle.id, voter, verdict)


@pytest.fixture
def judged(db, settings):
    """Two models; humans vote on 4 pairings; a scripted judge prefers Alpha ("Answer number 0")."""
    settings.ARENA_GENERATION_RETRY_BACKOFF = 0.01
    campaign = make_campaign(slug="agree", models=("Alpha", "Beta"), prompts=4)
    items = list(Item.objects.filter(campaign=campaign).order_by("prompt_id"))
    alpha = ModelEntry.objects.get(name="Alpha")
    assert all(i.model_lo_id == alpha.pk for i in items)
    # Humans: Alpha, Alpha (shown right), Beta, tie; the judge will say Alpha on every pairing.
    vote_on(items[0], "left")
    vote_on(items[1], "right", swap=True)
    vote_on(items[2], "right")
    vote_on(items[3], "tie")
    with ProtocolServer() as server:
        entry = ModelEntry.objects.create(
            name="Referee",
            backend="openai",
            backend_settings={"base_url": server.base_url, "model": "j?prefer=Answer number 0", "max_retries": 0},
        )
        judge = Judge.objects.create(
            campaign=campaign, model=entry, reference_model=ModelEntry.objects.get(name="Beta")
        )
        actions.start(actions.judges_of("agree"), scope="voted")
    return judge


def test_the_report_measures_the_judge_against_the_humans(judged):
    report = boards.report(judged)
    assert report["verdicts"] == 4
    a = report["agreement"]
    # Judge: lo (Alpha) x4. Humans: lo, lo, hi, tie -> 2 of 4 agree; decisive pairs: 3, 2 agree.
    assert (a["n"], a["with_ties"], a["n_decisive"], a["without_ties"]) == (4, 0.5, 3, pytest.approx(2 / 3))
    assert a["cohen_kappa"] == pytest.approx(0.0)  # the judge gives one label only: no agreement beyond chance
    assert set(report["agreement_by_category"]) == {"coding", "facts"}
    assert report["position_consistency"] == {"share": 1.0, "consistent": 4, "n": 4}
    assert report["position_bias"]["share"] == 0.5  # Alpha shown first half the time, picked every time
    assert report["win_rates"][0]["model"] == "Alpha" and report["win_rates"][0]["win_rate"] == 100.0
    assert report["self_judging"] is False


def test_judge_verdicts_stay_out_of_the_human_leaderboard_and_get_their_own(judged):
    compute_snapshots(judged.campaign)
    human = LeaderboardSnapshot.objects.get(campaign=judged.campaign, dimension="", category="", method="davidson")
    assert human.n_votes == 4 == Vote.objects.filter(campaign=judged.campaign).count()
    board = boards.leaderboard(judged)
    rows = {r.model: r for r in board.rows}
    assert (rows["Alpha"].wins, rows["Beta"].losses) == (4, 4)
    assert rows["Alpha"].rating > rows["Beta"].rating


def test_judge_agreement_command_prints_json_and_text(judged):
    out = io.StringIO()
    call_command("judge_agreement", "agree", "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert data[0]["judge"] == "Referee" and data[0]["agreement"]["with_ties"] == 0.5
    out = io.StringIO()
    call_command("judge_agreement", "agree", stdout=out)
    assert "agreement with ties 50.0%" in out.getvalue() and "position consistency 100.0%" in out.getvalue()


def test_run_judges_command_judges_and_reports_usage(db):
    campaign = make_campaign(slug="cmd", models=("Alpha", "Beta"), prompts=2)
    entry = ModelEntry.objects.create(name="Static judge", backend="static", backend_settings={"text": "[[C]]"})
    Judge.objects.create(campaign=campaign, model=entry)
    out = io.StringIO()
    call_command("run_judges", "cmd", "--judge", "Static judge", "--limit", "1", "--wait", stdout=out)
    assert "1 new pairings to judge of 2" in out.getvalue() and "1 done" in out.getvalue()
    assert JudgeVerdict.objects.filter(status="done").count() == 1


def test_a_judges_dimension_leaderboard_is_fitted_on_its_scores(db):
    campaign = make_campaign(slug="dims", models=("Alpha", "Beta"), prompts=3, dimensions=("helpfulness",))
    entry = ModelEntry.objects.create(name="Scorer", backend="static")
    judge = Judge.objects.create(campaign=campaign, model=entry)
    for item in Item.objects.filter(campaign=campaign):
        JudgeVerdict.objects.create(
            judge=judge,
            campaign=campaign,
            prompt_id=item.prompt_id,
            response_lo_id=item.response_lo_id,
            response_hi_id=item.response_hi_id,
            model_lo_id=item.model_lo_id,
            model_hi_id=item.model_hi_id,
            status="done",
            outcome="tie",
            consistent=False,
            lo_first_verdict="A",
            hi_first_verdict="A",
            scores={"helpfulness": {"lo": 2.0, "hi": 4.5}},
        )
    overall = {r.model: r for r in boards.leaderboard(judge).rows}
    assert overall["Alpha"].ties == 3 and overall["Alpha"].wins == 0
    helpful = {r.model: r for r in boards.leaderboard(judge, dimension="helpfulness").rows}
    assert (helpful["Beta"].wins, helpful["Alpha"].losses) == (3, 3)
    assert helpful["Beta"].rating > helpful["Alpha"].rating
