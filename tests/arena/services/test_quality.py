"""Krippendorff's alpha and agreement with the majority."""

from __future__ import annotations

from collections import Counter

import krippendorff
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arena.services import quality_state
from arena.services.quality import krippendorff_alpha

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": 4 coders, 12 units, missing values
# left out; alpha = 0.743 (nominal), 0.849 (interval).
PUBLISHED_EXAMPLE = {
    1: [1, 1, 1],
    2: [2, 2, 3, 2],
    3: [3, 3, 3, 3],
    4: [3, 3, 3, 3],
    5: [2, 2, 2, 2],
    6: [1, 2, 3, 4],
    7: [4, 4, 4, 4],
    8: [1, 1, 2, 1],
    9: [2, 2, 2, 2],
    10: [5, 5, 5],
    11: [1, 1],
    12: [3],
}


def test_alpha_matches_the_published_nominal_example():
    # Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the nominal example with
    # 4 coders and 12 units (missing values left out): alpha = 0.743.
    data = PUBLISHED_EXAMPLE
    assert krippendorff_alpha(data) == pytest.approx(0.743, abs=0.001)


def test_alpha_interval_level_and_edge_cases():
    assert krippendorff_alpha({1: [1, 1], 2: [5, 5], 3: [3, 3]}, "interval") == pytest.approx(1.0)
    assert krippendorff_alpha({1: [1, 5], 2: [5, 1]}, "interval") < 0
    assert krippendorff_alpha({1: [2, 2], 2: [2, 2]}) is None  # no variation: undefined
    assert krippendorff_alpha({1: [1], 2: [2]}) is None  # nothing pairable


def _alpha_of_both_kinds(units: dict[int, list[float]], level: str) -> tuple[float | None, float | None]:
    """Alpha from the values by unit (quality) and from the summed coincidence counts (quality_state)."""
    parts: Counter = Counter()
    for values in units.values():
        parts.update(quality_state.alpha_parts(values))
    return krippendorff_alpha(units, level), quality_state.alpha(parts, level)


@settings(max_examples=300, deadline=None)
@given(
    level=st.sampled_from(["nominal", "interval"]),
    seed=st.integers(0, 2**32 - 1),
    coders=st.integers(2, 7),
    units=st.integers(1, 40),
    values=st.integers(2, 6),
    missing=st.floats(0.0, 0.7),
)
def test_alpha_agrees_with_the_krippendorff_package(level, seed, coders, units, values, missing):
    """Random ratings (coders x units, some missing) give the alpha of the maintained package, both
    from the values by unit and from the counts the dashboard keeps."""
    rng = np.random.default_rng(seed)
    data = rng.integers(1, values + 1, size=(coders, units)).astype(float)
    data[rng.random(size=data.shape) < missing] = np.nan
    by_unit = {u: [float(v) for v in data[:, u] if not np.isnan(v)] for u in range(units)}
    ours, from_counts = _alpha_of_both_kinds(by_unit, level)
    pairable = [v for unit in by_unit.values() if len(unit) >= 2 for v in unit]
    if len(set(pairable)) < 2:  # nothing to pair, or a single value: alpha is undefined
        assert ours is None and from_counts is None
        return
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
    assert ours == pytest.approx(expected, abs=1e-9)
    assert from_counts == pytest.approx(expected, abs=1e-9)


@pytest.mark.django_db
def test_campaign_agreement_from_real_votes(staff_client):
    from arena.models import Battle, Voter
    from arena.services.battles import open_battle
    from arena.services.profiles import campaign_profile
    from arena.services.quality import campaign_agreement
    from arena.services.votes import record_vote
    from tests.factories import make_campaign

    campaign = make_campaign(slug="agree", models=("Good", "Bad"), prompts=4, dimensions=("helpfulness",))
    voters = [Voter.objects.create() for _ in range(4)]
    for i, voter in enumerate(voters):
        for _ in range(4):
            battle = open_battle(campaign_profile("agree"), voter.pk)
            row = Battle.objects.select_related("left__model").get(pk=battle.id)
            good_left = row.left.model.name == "Good"
            # "Good" is better on even prompts, "Bad" on odd ones; voter 3 always says the opposite.
            left_better = good_left == (row.prompt_id % 2 == 0)
            verdict = "left" if left_better != (i == 3) else "right"
            scores = {"helpfulness": {"left": 5 if good_left else 1, "right": 1 if good_left else 5}}
            record_vote(battle.id, voter, verdict, scores)
    result = campaign_agreement(campaign)
    assert 0 < result["verdict_alpha"] < 1
    assert result["dimension_alpha"]["helpfulness"] == pytest.approx(1.0)
    shares = {v: a["share"] for v, a in result["majority_agreement"].items()}
    assert shares[voters[3].public_id] == 0.0 and shares[voters[0].public_id] == 1.0
    page = staff_client.get("/staff/c/agree/")
    assert b"Krippendorff" in page.content


def test_alpha_matches_the_published_interval_example():
    # The same data at the interval level: alpha = 0.849 (Krippendorff 2011).
    data = PUBLISHED_EXAMPLE
    assert krippendorff_alpha(data, "interval") == pytest.approx(0.849, abs=0.001)


def _cast(voter, prompt, left: str, right: str, verdict: str, gold=None, scores=None):
    """A voted battle and its vote, built by hand (left / right: model names)."""
    from arena.models import Battle, Vote

    responses = {r.model.name: r for r in prompt.responses.select_related("model")}
    battle = Battle.objects.create(
        campaign=prompt.campaign,
        voter=voter,
        prompt=prompt,
        left=responses[left],
        right=responses[right],
        status="voted",
        gold=gold,
    )
    winner = {"left": responses[left].model, "right": responses[right].model}.get(verdict)
    Vote.objects.create(
        battle=battle,
        campaign=prompt.campaign,
        voter=voter,
        prompt=prompt,
        left_model=responses[left].model,
        right_model=responses[right].model,
        winner=winner,
        verdict=verdict,
        scores=scores or {},
    )


@pytest.mark.django_db
def test_agreement_with_the_majority_and_with_gold_on_a_hand_built_example():
    from arena.models import GoldBattle, ModelEntry, Response, Voter
    from arena.services.quality import campaign_agreement
    from tests.factories import make_campaign

    campaign = make_campaign(slug="hand", models=("A", "B", "C"), prompts=4, dimensions=("help",))
    p0, p1, p2, p3 = campaign.prompts.order_by("id")
    v1, v2, v3, v4, v5 = (Voter.objects.create() for _ in range(5))
    # p0, A vs B: three say A (v2 saw A on the right), v4 says B.
    _cast(v1, p0, "A", "B", "left", scores={"help": {"left": 5, "right": 2}})
    _cast(v2, p0, "B", "A", "right", scores={"help": {"left": 1, "right": 4}})
    _cast(v3, p0, "A", "B", "left", scores={"help": {"left": 5, "right": 3}})
    _cast(v4, p0, "A", "B", "right", scores={"help": {"left": 2, "right": 4}})
    # p1, A vs B: A, B, tie: the others never have one most common verdict, so nobody is judged here.
    _cast(v1, p1, "A", "B", "left")
    _cast(v2, p1, "A", "B", "right")
    _cast(v3, p1, "B", "A", "tie")
    # p2, A vs C: two votes only, no one has two others.
    _cast(v1, p2, "A", "C", "left")
    _cast(v2, p2, "C", "A", "right")
    # p3, B vs C: three "both bad", v5 says C.
    for voter in (v1, v2, v3):
        _cast(voter, p3, "B", "C", "both_bad")
    _cast(v5, p3, "C", "B", "left")
    # Gold: g1 expects the first (A), g2 a tie, g3 the second (C).
    response = {(r.prompt_id, r.model.name): r for r in Response.objects.filter(prompt__campaign=campaign)}
    g1 = GoldBattle.objects.create(
        campaign=campaign, prompt=p0, first=response[p0.pk, "A"], second=response[p0.pk, "B"], expected="first"
    )
    g2 = GoldBattle.objects.create(
        campaign=campaign, prompt=p1, first=response[p1.pk, "B"], second=response[p1.pk, "C"], expected="tie"
    )
    g3 = GoldBattle.objects.create(
        campaign=campaign, prompt=p2, first=response[p2.pk, "A"], second=response[p2.pk, "C"], expected="second"
    )
    _cast(v1, p0, "A", "B", "left", gold=g1)  # first: as expected
    _cast(v1, p1, "B", "C", "tie", gold=g2)  # as expected
    _cast(v1, p2, "A", "C", "left", gold=g3)  # said first, expected second
    _cast(v4, p0, "B", "A", "right", gold=g1)  # A on the right: first, as expected
    _cast(v4, p1, "C", "B", "both_bad", gold=g2)  # expected a tie

    result = campaign_agreement(campaign)
    majority = {voter: (a["agree"], a["n"]) for voter, a in result["majority_agreement"].items()}
    assert majority == {
        v1.public_id: (2, 2),
        v2.public_id: (2, 2),
        v3.public_id: (2, 2),
        v4.public_id: (0, 1),
        v5.public_id: (0, 1),
    }
    assert result["summary"]["majority"] == {"agree": 6, "n": 8, "voters": 5, "share": 0.75}
    gold = {voter: (g["agree"], g["n"]) for voter, g in result["gold_agreement"].items()}
    assert gold == {v1.public_id: (2, 3), v4.public_id: (1, 2)}
    assert result["summary"]["gold"]["share"] == pytest.approx(3 / 5)
    assert result["summary"]["gold"]["gold_battles"] == 3
    # Alpha reads the regular votes only, verdicts in model terms; the dimension per (prompt, model).
    a, b, c = (ModelEntry.objects.get(name=n).pk for n in "ABC")
    units = {0: [a, a, a, b], 1: [a, b, "tie"], 2: [a, a], 3: ["both_bad"] * 3 + [c]}
    assert result["verdict_alpha"] == pytest.approx(krippendorff_alpha(units))
    help_units = {"A": [5, 4, 5, 2], "B": [2, 1, 3, 4]}
    assert result["dimension_alpha"]["help"] == pytest.approx(krippendorff_alpha(help_units, "interval"))
    # Excluded voters leave the summaries (their own gold record is still listed).
    Voter.objects.filter(pk=v4.pk).update(excluded=True)
    after = campaign_agreement(campaign)
    assert after["summary"]["gold"]["share"] == pytest.approx(2 / 3)
    assert after["gold_agreement"][v4.public_id]["excluded"] is True
