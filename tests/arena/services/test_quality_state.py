"""Voter-quality figures updated from the new votes only equal a full recomputation.

Random campaigns (regular, gold and ranking votes, scores on two dimensions, fast, streaky and
excluded voters) are voted on in rounds; after each round the incremental state
(arena.services.quality_state.update) must give exactly the figures of a state built from every
vote, and those must be the figures of the original full computation (quality.campaign_agreement and
abuse.suspicious_voters; alpha to 1e-12, the rest exactly).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from arena.models import Battle, GoldBattle, Ranking, Vote, Voter
from arena.services import abuse, quality, quality_state
from tests.factories import make_campaign

START = datetime(2026, 1, 1, tzinfo=UTC)


class VotedCampaign:
    """A test campaign and its voters, each with a clock that only moves forward."""

    def __init__(self, seed: int, slug: str) -> None:
        self.rng = random.Random(seed)
        self.campaign = make_campaign(
            slug=slug, models=("Alpha", "Beta", "Gamma", "Delta"), prompts=6, dimensions=("helpfulness", "accuracy")
        )
        self.prompts = [list(p.responses.all()) for p in self.campaign.prompts.order_by("id")]
        self.voters = [Voter.objects.create() for _ in range(12)]
        self.clock = {v.id: START + timedelta(minutes=i) for i, v in enumerate(self.voters)}
        self.gold = []
        for responses in self.prompts[:2]:
            first, second = responses[0], responses[1]
            self.gold.append(
                GoldBattle.objects.create(
                    campaign=self.campaign, prompt=first.prompt, first=first, second=second, expected="first"
                )
            )

    def vote(self, n: int) -> None:
        rng = self.rng
        battles, votes = [], []
        for _ in range(n):
            voter = self.voters[min(int(rng.expovariate(0.3)), len(self.voters) - 1)]  # a few heavy voters
            fast, streaky = voter == self.voters[1], voter == self.voters[2]
            gap = timedelta(seconds=rng.uniform(0.2, 1.5) if fast else rng.uniform(1, 60))
            self.clock[voter.id] += gap
            at = self.clock[voter.id]
            kind = rng.random()
            if kind < 0.1:
                gold = rng.choice(self.gold)
                pairs = [(gold.first, gold.second) if rng.random() < 0.5 else (gold.second, gold.first)]
                ranking = None
            else:
                gold = None
                responses = self.prompts[rng.randrange(len(self.prompts))]
                size = 3 if kind > 0.93 else 2
                shown = rng.sample(responses, size)
                pairs = [(a, b) for i, a in enumerate(shown) for b in shown[i + 1 :]]
                ranking = None
                if size > 2:
                    ranking = Ranking.objects.create(
                        campaign=self.campaign,
                        voter=voter,
                        prompt=shown[0].prompt,
                        shown=[r.id for r in shown],
                        status="submitted",
                    )
            duration = rng.randint(300, 1800) if fast else rng.randint(1500, 60_000)
            for left, right in pairs:
                verdict = "left" if streaky else rng.choice(["left", "left", "right", "right", "tie", "both_bad"])
                winner = {"left": left.model_id, "right": right.model_id}.get(verdict)
                scores = {}
                if rng.random() < 0.6 and gold is None:
                    scores["helpfulness"] = {"left": rng.randint(1, 5), "right": rng.randint(1, 5)}
                    if rng.random() < 0.5:
                        scores["accuracy"] = {"left": rng.randint(1, 3)}
                battle = Battle(
                    campaign=self.campaign,
                    voter=voter,
                    prompt=left.prompt,
                    left=left,
                    right=right,
                    status="voted",
                    gold=gold,
                    ranking=ranking,
                    created_at=at,
                )
                battles.append(battle)
                votes.append(
                    Vote(
                        battle=battle,
                        campaign=self.campaign,
                        voter=voter,
                        prompt=left.prompt,
                        left_model_id=left.model_id,
                        right_model_id=right.model_id,
                        winner_id=winner,
                        verdict=verdict,
                        scores=scores,
                        duration_ms=duration if rng.random() < 0.9 else None,
                        created_at=at,
                    )
                )
        Battle.objects.bulk_create(battles)
        Vote.objects.bulk_create(votes)


def original(campaign) -> dict:
    """The figures as the full computation has always made them (dashboard.voter_quality)."""
    flags = [
        {"voter": f.public_id, "votes": f.votes, "reasons": f.reasons, "excluded": f.excluded}
        for f in abuse.suspicious_voters(campaign)
    ]
    return {**quality.campaign_agreement(campaign), "flags": flags}


def assert_same_figures(incremental: dict, expected: dict) -> None:
    def alphas(figures):
        return figures["verdict_alpha"], figures["dimension_alpha"]

    rest = {k: v for k, v in incremental.items() if k not in ("verdict_alpha", "dimension_alpha")}
    assert rest == {k: v for k, v in expected.items() if k not in ("verdict_alpha", "dimension_alpha")}
    assert incremental["verdict_alpha"] == pytest.approx(expected["verdict_alpha"], abs=1e-12)
    assert incremental["dimension_alpha"].keys() == expected["dimension_alpha"].keys()
    for key, value in expected["dimension_alpha"].items():
        assert incremental["dimension_alpha"][key] == pytest.approx(value, abs=1e-12)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_incremental_figures_equal_a_full_recomputation_round_after_round(db, seed, monkeypatch):
    monkeypatch.setattr(quality_state, "RECENT", 40)  # the watermark moves up many times
    data = VotedCampaign(seed, f"q{seed}")
    data.vote(250)
    state = quality_state.update(data.campaign, None)
    assert state.full_runs == 1
    for round_ in range(5):
        data.vote(data.rng.randint(20, 120))
        state = quality_state.update(data.campaign, state)
        assert state.full_runs == 1, f"round {round_} started over"
        figures = quality_state.figures(data.campaign, state)
        assert figures == quality_state.figures(data.campaign, quality_state.full(data.campaign))  # exactly
        assert_same_figures(figures, original(data.campaign))
    assert figures["flags"] and figures["majority_agreement"] and figures["gold_agreement"]
    assert any("streak" in " ".join(f["reasons"]) for f in figures["flags"])
    assert any("speed" in " ".join(f["reasons"]) for f in figures["flags"])


def test_what_cannot_be_folded_starts_over_and_stays_equal(db, monkeypatch):
    monkeypatch.setattr(quality_state, "RECENT", 20)
    monkeypatch.setattr(quality_state, "COUNT_SECONDS", 0)  # count the votes below the window every time
    data = VotedCampaign(7, "q7")
    data.vote(200)
    state = quality_state.update(data.campaign, None)

    # Staff exclude a voter: every figure of theirs leaves alpha and the majority.
    Voter.objects.filter(pk=data.voters[0].pk).update(excluded=True)
    state = quality_state.update(data.campaign, state)
    assert state.full_runs == 2
    assert_same_figures(quality_state.figures(data.campaign, state), original(data.campaign))

    # A vote deleted below the recent window (a voter deleted, say).
    data.vote(60)
    state = quality_state.update(data.campaign, state)
    Vote.objects.filter(pk=Vote.objects.filter(campaign=data.campaign).order_by("id")[5].pk).delete()
    state = quality_state.update(data.campaign, state)
    assert state.full_runs == 3
    assert_same_figures(quality_state.figures(data.campaign, state), original(data.campaign))

    # A vote dated before its voter's last one.
    data.vote(30)
    voter = data.voters[0]
    data.clock[voter.id] = START
    data.vote(40)
    state = quality_state.update(data.campaign, state)
    assert_same_figures(quality_state.figures(data.campaign, state), original(data.campaign))

    # A gold battle's expected verdict is corrected.
    GoldBattle.objects.filter(pk=data.gold[0].pk).update(expected="second")
    state = quality_state.update(data.campaign, state)
    assert_same_figures(quality_state.figures(data.campaign, state), original(data.campaign))


def test_the_dashboard_figures_come_from_the_stored_state(db, django_capture_on_commit_callbacks):
    from django.core.cache import cache

    from arena.services import quality_figures

    data = VotedCampaign(11, "q11")
    data.vote(120)
    quality_figures.compute_and_store(data.campaign.pk)
    state = cache.get(quality_state.STATE_KEY.format(data.campaign.pk))
    assert state is not None and state.full_runs == 1
    data.vote(30)
    quality_figures.compute_and_store(data.campaign.pk)
    assert quality_state.current(data.campaign.pk).full_runs == 1  # the 30 new votes were folded in
    entry = cache.get(quality_figures.FIGURES_KEY.format(data.campaign.pk))
    assert_same_figures(entry["figures"], original(data.campaign))

    # Another process (or a restarted worker) starts from the stored state and folds what it lacks.
    quality_state.forget()
    data.vote(25)
    quality_figures.compute_and_store(data.campaign.pk)
    assert quality_state.current(data.campaign.pk).full_runs == 1
    entry = cache.get(quality_figures.FIGURES_KEY.format(data.campaign.pk))
    assert_same_figures(entry["figures"], original(data.campaign))


def test_a_fold_that_fails_half_way_leaves_no_half_folded_state(db, monkeypatch):
    data = VotedCampaign(13, "q13")
    data.vote(100)
    quality_state.refresh(data.campaign)
    data.vote(40)
    real = quality_state._fold_gold

    def broken(state, rows):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(quality_state, "_fold_gold", broken)
    with pytest.raises(RuntimeError):
        quality_state.refresh(data.campaign)  # the units were folded, the gold votes not
    monkeypatch.setattr(quality_state, "_fold_gold", real)
    assert_same_figures(quality_state.refresh(data.campaign), original(data.campaign))
    assert quality_state.current(data.campaign.pk).full_runs == 1  # from the stored state, not from scratch


def test_a_vote_committed_after_later_ones_were_folded_is_folded_without_starting_over(db, monkeypatch):
    """Ids come from a sequence: a transaction can commit its vote after a later id was read. Within
    the recent window such a vote is found by a count and folded like any new vote."""
    data = VotedCampaign(17, "q17")
    data.vote(80)
    state = quality_state.update(data.campaign, None)
    data.vote(30)
    votes = list(Vote.objects.filter(campaign=data.campaign).order_by("-id")[:30])
    # The last vote of its voter (a voter's own votes commit in order), with later ids after it.
    late = next(v for v in votes[1:] if not any(w.voter_id == v.voter_id and w.id > v.id for w in votes))
    late.delete()  # not committed yet when the next refresh reads the votes
    state = quality_state.update(data.campaign, state)
    late.save(force_insert=True)  # commits now, with its old id, below votes already folded
    data.vote(10)
    state = quality_state.update(data.campaign, state)
    assert state.full_runs == 1
    assert late.id in state.recent
    assert_same_figures(quality_state.figures(data.campaign, state), original(data.campaign))
