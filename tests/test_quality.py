"""Krippendorff's alpha and agreement with the majority."""

from __future__ import annotations

import pytest

from arena.services.quality import krippendorff_alpha


def test_alpha_matches_the_published_nominal_example():
    # Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the nominal example with
    # 4 coders and 12 units (missing values left out): alpha = 0.743.
    data = {
        1: [1, 1, 1], 2: [2, 2, 3, 2], 3: [3, 3, 3, 3], 4: [3, 3, 3, 3], 5: [2, 2, 2, 2], 6: [1, 2, 3, 4],
        7: [4, 4, 4, 4], 8: [1, 1, 2, 1], 9: [2, 2, 2, 2], 10: [5, 5, 5], 11: [1, 1], 12: [3],
    }  # fmt: skip
    assert krippendorff_alpha(data) == pytest.approx(0.743, abs=0.001)


def test_alpha_interval_level_and_edge_cases():
    assert krippendorff_alpha({1: [1, 1], 2: [5, 5], 3: [3, 3]}, "interval") == pytest.approx(1.0)
    assert krippendorff_alpha({1: [1, 5], 2: [5, 1]}, "interval") < 0
    assert krippendorff_alpha({1: [2, 2], 2: [2, 2]}) is None  # no variation: undefined
    assert krippendorff_alpha({1: [1], 2: [2]}) is None  # nothing pairable


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
