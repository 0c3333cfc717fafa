"""Active pair sampling: hand out the pair whose next vote shrinks the rating intervals most.

The rule is the one Chatbot Arena describes (Chiang et al., 2024, "Chatbot Arena: An Open Platform
for Evaluating LLMs by Human Preference", section 5). For a pair a of models with n_a counted votes
and Sigma_a the variance of one vote's score (1 a win, 1/2 a tie, 0 a loss), the standard error of
the pair's win-rate estimate is sqrt(Sigma_a / n_a); one more vote shrinks it by

    gain_a = sqrt(Sigma_a / n_a) - sqrt(Sigma_a / (n_a + 1)),

and pair a is drawn with probability proportional to gain_a (times the two models' sampling weights,
so a model weighted 0 is left out and one weighted 2 is shown twice as often, as in weighted
sampling). Pairs with close ratings (Sigma_a near 1/4) and few votes come first; a pair that is
settled (many votes, or one model far ahead) is drawn rarely but never never: Sigma_a has a floor,
because a gap estimated from a handful of votes can be wrong. A pair without any vote has an
infinite gain: while such pairs exist, only they are drawn (explore first).

Drawing at random by these weights, rather than always taking the single best pair, spreads
concurrent voters over several pairs instead of sending them all to the same one.

Where the numbers come from, and why nothing is fitted on a request: Sigma_a comes from the latest
leaderboard snapshot (Davidson ratings and tie parameter, written by the recompute task), n_a from
the stored pairwise aggregate (the folded votes that the ratings count: excluded voters and flagged
battles are left out, as they are of the intervals). Both are read once per campaign and process
and kept as long as the campaign's profile (arena.services.profiles, a few seconds; dropped at once
when this process saves a change to the campaign or its models). Between two reads the process adds
its own hand-outs to the counts, so one process does not send every voter to the same fresh pair
while the aggregate catches up. The weights are not stored by the recompute task instead: that
would need a new table or field, and they would go stale whenever the worker or Redis is down,
whereas this read needs only the database and keeps the hand-out working (on older figures) then.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ratings.likelihood import outcome_probs

if TYPE_CHECKING:  # the weights themselves are plain numpy, usable without Django (bench/sampling.py)
    from arena.services.profiles import CampaignProfile

# Sigma_a never goes below this (a pair whose favourite wins 99% of decisive votes): a rating gap
# estimated from few votes can be wrong, so no pair is shut out for good.
VARIANCE_FLOOR = 0.01
# Sigma_a for a pair whose ratings are not known yet: a coin flip, the largest possible variance.
UNKNOWN_VARIANCE = 0.25


def vote_variance(gap: np.ndarray, nu: float = 0.0) -> np.ndarray:
    """Variance of one vote's score (win 1, tie 1/2, loss 0) for rating gaps in log-odds.

    Davidson's model with tie parameter ``nu`` (0: plain Bradley-Terry, p(1-p)); floored at
    VARIANCE_FLOOR.
    """
    win, _, tie = outcome_probs(np.asarray(gap, dtype=float), max(float(nu or 0.0), 0.0))
    mean = win + tie / 2
    return np.maximum(win + tie / 4 - mean * mean, VARIANCE_FLOOR)


def active_weights(votes: np.ndarray, variance: np.ndarray, prior: np.ndarray | None = None) -> np.ndarray:
    """Sampling weight of each pair: its expected shrink of the interval, times ``prior``.

    ``votes`` and ``variance`` are per pair (n_a and Sigma_a); ``prior`` the product of the two
    models' sampling weights (1 when left out; ignored when it is zero for every pair, so that a
    campaign whose weights are all 0 still hands out battles). If any pair with a positive prior
    has no vote yet, only those pairs get a weight (their prior): they are drawn first.
    """
    votes = np.asarray(votes, dtype=float)
    variance = np.maximum(np.asarray(variance, dtype=float), VARIANCE_FLOOR)
    prior = np.ones_like(votes) if prior is None else np.maximum(np.asarray(prior, dtype=float), 0.0)
    if not (prior > 0).any():
        prior = np.ones_like(votes)
    fresh = (votes <= 0) & (prior > 0)
    if fresh.any():
        return np.where(fresh, prior, 0.0)
    n = np.maximum(votes, 1.0)  # a pair without votes here has prior 0
    root = np.sqrt(variance)
    return prior * (root / np.sqrt(n) - root / np.sqrt(n + 1))


@dataclass
class PairState:
    """The pairs of a campaign's active models, their counted votes and vote variances.

    ``pairs`` are (lower model id, higher model id), as in arena_item. ``handed`` counts this
    process's hand-outs since the read; ``dry`` marks pairs that had no item left to hand out.
    """

    profile: CampaignProfile
    pairs: list[tuple[int, int]]
    votes: np.ndarray
    variance: np.ndarray
    prior: np.ndarray
    read_at: float
    prompts: list[int] = field(default_factory=list)
    handed: np.ndarray = field(init=False)
    dry: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.handed = np.zeros(len(self.pairs))

    def weights(self) -> np.ndarray:
        out = active_weights(self.votes + self.handed, self.variance, self.prior)
        for index in self.dry:
            out[index] = 0.0
        return out


def read_pair_state(profile: CampaignProfile) -> PairState:
    """Counted votes per pair (stored aggregate) and Sigma_a (latest Davidson snapshot): two reads."""
    from arena.leaderboards.models import OVERALL, LeaderboardSnapshot, PairAggregate
    from arena.leaderboards.snapshots import DEFAULT_METHOD
    from ratings.counts import PairCounts

    campaign = profile.campaign
    ids = sorted(profile.weights)
    pairs = [(lo, hi) for i, lo in enumerate(ids) for hi in ids[i + 1 :]]
    names = [profile.names.get(pk, "") for pk in ids]
    aggregate = PairAggregate.objects.filter(campaign=campaign, dimension=OVERALL, category=OVERALL).first()
    counted = np.zeros((len(ids), len(ids)))
    if aggregate is not None and aggregate.counts:
        counts = PairCounts.from_dict(aggregate.counts)
        where = {name: i for i, name in enumerate(counts.models)}
        pos = [where.get(name, -1) for name in names]
        battles = counts.battles
        for i, pi in enumerate(pos):
            for j, pj in enumerate(pos):
                if pi >= 0 and pj >= 0:
                    counted[i, j] = battles[pi, pj]
    snapshot = (
        LeaderboardSnapshot.objects.filter(
            campaign=campaign, dimension=OVERALL, category=OVERALL, method=DEFAULT_METHOD
        )
        .values_list("data__rows", "data__tie_parameter", "data__scale")
        .first()
    )
    rating: dict[str, float] = {}
    nu, scale = 0.0, 400 / math.log(10)
    if snapshot is not None:
        rows, nu, scale = snapshot[0] or [], snapshot[1] or 0.0, snapshot[2] or scale
        rating = {row["model"]: row["rating"] for row in rows if row.get("rating") is not None}
    index = {pk: i for i, pk in enumerate(ids)}
    votes = np.array([counted[index[lo], index[hi]] for lo, hi in pairs])
    variance = np.full(len(pairs), UNKNOWN_VARIANCE)
    for k, (lo, hi) in enumerate(pairs):
        a, b = rating.get(profile.names.get(lo, "")), rating.get(profile.names.get(hi, ""))
        if a is not None and b is not None:
            variance[k] = vote_variance(np.array([(a - b) / scale]), nu)[0]
    prior = np.array([profile.weights[lo] * profile.weights[hi] for lo, hi in pairs])
    prompts = list(campaign.prompts.values_list("id", flat=True))
    return PairState(profile, pairs, votes, variance, prior, time.monotonic(), prompts)


_STATES: dict[int, PairState] = {}


def pair_state(profile: CampaignProfile) -> PairState:
    """The campaign's pair state, read again when its profile changed or after PROFILE_TTL seconds."""
    from arena.services.profiles import PROFILE_TTL

    state = _STATES.get(profile.campaign.pk)
    if state is None or state.profile is not profile or time.monotonic() - state.read_at >= PROFILE_TTL:
        state = _STATES[profile.campaign.pk] = read_pair_state(profile)
    return state


def prompt_sample(state: PairState, size: int, rng: random.Random | None = None) -> list[int]:
    """Up to ``size`` of the campaign's prompts, at random: where to look for an item of a drawn pair.

    Looking up (prompt, pair) on the items' unique index costs the same whatever the campaign's size,
    whereas finding the pair's least-voted item in its whole list reads every item of the pair. The
    least-voted of a few random items keeps a pair's prompts about as even ("the power of d choices").
    """
    if len(state.prompts) <= size:
        return state.prompts
    return (rng or random).sample(state.prompts, size)


def forget_pair_states() -> None:
    _STATES.clear()


def draw_pair(state: PairState, exclude: set[int] = frozenset(), rng: random.Random | None = None) -> int | None:
    """Index (into ``state.pairs``) of a pair drawn by its active weight; None if no pair is left."""
    weights = state.weights()
    for index in exclude:
        weights[index] = 0.0
    cumulative = np.cumsum(weights)
    if not len(cumulative) or not cumulative[-1] > 0:
        return None
    target = (rng or random).random() * cumulative[-1]
    return int(np.searchsorted(cumulative, target, side="right"))
