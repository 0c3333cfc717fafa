"""Active pair sampling against uniform and balanced sampling, on simulated voters with known ratings.

    .venv/bin/python bench/sampling.py                 # figures for docs/ratings.md (about a minute)
    .venv/bin/python bench/sampling.py --seeds 5       # quicker, noisier
    .venv/bin/python bench/sampling.py --handout       # hand-out latency on PostgreSQL, active vs balanced

Each simulated campaign draws M votes one at a time. "uniform" picks a pair at random, "balanced"
a pair with the fewest votes, "active" draws by the weights of arena.services.active_sampling, with
the ratings refitted every REFIT votes (the server reads the latest snapshot, which the recompute
task refreshes a few seconds behind the votes). "rating-aware" is a reference the site does not
use: the pair whose next vote lowers the summed variance of the ratings most (greedy A-optimal
design), drawn in proportion to that drop. Outcomes follow Davidson's model with ties. After M
votes the leaderboard is computed as the site does (Davidson fit, bootstrap 95% intervals) and the
average interval width is reported, with the expected total variance of the ratings (trace of the
inverse Fisher information at the true ratings, for the pairs as allocated: the same number without
the noise of one simulated run).

No database and no Django setup: the weights are the same plain functions the hand-out uses.
``--handout`` times the real hand-out (arena.services.battles.open_battle) instead, on a fresh
PostgreSQL database (tests/stack.py) with a campaign of --models models and --prompts prompts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from arena.services.active_sampling import UNKNOWN_VARIANCE, active_weights, vote_variance
from ratings import PairCounts, compute_leaderboard, fit_bradley_terry
from ratings.bt import SCALE
from ratings.likelihood import outcome_probs

STRATEGIES = ("uniform", "balanced", "active", "rating-aware")
REFIT = 100


@dataclass(frozen=True)
class Run:
    strategy: str
    counts: PairCounts
    mean_width: float  # average width of the 95% bootstrap intervals, Elo points
    total_variance: float  # expected: trace of the inverse Fisher information, Elo points squared


def simulate_sampling(
    true_ratings: np.ndarray,
    n_votes: int,
    strategy: str,
    *,
    seed: int,
    nu: float = 0.25,
    refit: int = REFIT,
) -> PairCounts:
    """Counts after ``n_votes`` votes handed out by ``strategy`` to voters judging by ``true_ratings``."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, not {strategy!r}")
    rng = np.random.default_rng(seed)
    n = len(true_ratings)
    names = [f"m{i:02d}" for i in range(n)]
    lo, hi = np.triu_indices(n, 1)
    gap = (np.asarray(true_ratings, float)[lo] - np.asarray(true_ratings, float)[hi]) / SCALE
    p_lo, p_hi, _ = outcome_probs(gap, nu)
    wins, ties = np.zeros((n, n)), np.zeros((n, n))
    votes = np.zeros(len(lo))
    variance = np.full(len(lo), UNKNOWN_VARIANCE)
    for t in range(n_votes):
        if strategy == "uniform":
            k = int(rng.integers(len(lo)))
        elif strategy == "balanced":
            k = int(rng.choice(np.flatnonzero(votes == votes.min())))
        else:
            if t and t % refit == 0:
                variance = _fitted_variance(names, wins, ties, lo, hi)
            weights = active_weights(votes, variance)
            if strategy == "rating-aware" and votes.min() > 0:
                weights = _rating_variance_drop(n, lo, hi, votes, variance)
            k = int(np.searchsorted(np.cumsum(weights), rng.random() * weights.sum(), side="right"))
        u = rng.random()
        i, j = lo[k], hi[k]
        if u < p_lo[k]:
            wins[i, j] += 1
        elif u < p_lo[k] + p_hi[k]:
            wins[j, i] += 1
        else:
            ties[i, j] += 1
            ties[j, i] += 1
        votes[k] += 1
    return PairCounts(tuple(names), wins, ties, np.zeros((n, n)))


def _fitted_variance(names, wins, ties, lo, hi) -> np.ndarray:
    """Sigma per pair from a fit of the votes so far, as the server gets it from the latest snapshot."""
    counts = PairCounts(tuple(names), wins, ties, np.zeros_like(wins))
    fit = fit_bradley_terry(counts)
    theta = np.zeros(len(names))
    theta[[names.index(m) for m in fit.models]] = fit.theta
    return vote_variance(theta[lo] - theta[hi], fit.nu or 0.0)


def _rating_variance_drop(n: int, lo: np.ndarray, hi: np.ndarray, votes: np.ndarray, variance: np.ndarray):
    """For reference, not used by the site: how much one more vote on each pair lowers the summed
    variance of the ratings (trace of the inverse Fisher information; a rank-one update), the greedy
    "A-optimal" design. Sigma stands in for one vote's information on the gap (exact without ties)."""
    info = np.zeros((n, n))
    info[lo, hi] = info[hi, lo] = -votes * variance
    info[np.diag_indices(n)] = -info.sum(1)
    cov = np.linalg.pinv(info)
    cov2 = cov @ cov
    spread = cov[lo, lo] + cov[hi, hi] - 2 * cov[lo, hi]
    spread2 = cov2[lo, lo] + cov2[hi, hi] - 2 * cov2[lo, hi]
    return variance * spread2 / (1 + variance * spread)


def expected_total_variance(counts: PairCounts, true_ratings: np.ndarray, nu: float = 0.25) -> float:
    """Trace of the pseudo-inverse of the Fisher information of Davidson ratings (Elo points squared).

    nu is taken as known; what differs between strategies is only how many votes each pair got.
    """
    gap = (np.asarray(true_ratings)[:, None] - np.asarray(true_ratings)[None, :]) / SCALE
    win, loss, _ = outcome_probs(gap, nu)
    # Information of one vote about its pair's gap d: the variance of the score (y_win - y_loss) / 2.
    per_vote = (win + loss) / 4 - (win - loss) ** 2 / 4
    info = counts.battles * per_vote
    fisher = np.diag(info.sum(1)) - info
    return float(np.trace(np.linalg.pinv(fisher)) * SCALE**2)


def run(true_ratings: np.ndarray, n_votes: int, strategy: str, *, seed: int, bootstrap: int = 200) -> Run:
    counts = simulate_sampling(true_ratings, n_votes, strategy, seed=seed)
    board = compute_leaderboard(counts, bootstrap=bootstrap, seed=seed)
    widths = [row.ci_high - row.ci_low for row in board.rows]
    return Run(strategy, counts, float(np.mean(widths)), expected_total_variance(counts, true_ratings))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--votes", type=int, nargs="+", default=[1000, 3000, 10000])
    parser.add_argument("--spread", type=float, default=150.0, help="sd of the true ratings, Elo points")
    parser.add_argument("--handout", action="store_true", help="time the hand-out on PostgreSQL instead")
    parser.add_argument("--prompts", type=int, default=500, help="prompts of the --handout campaign")
    args = parser.parse_args()
    if args.handout:
        handout(args.models, args.prompts)
        return
    true = np.random.default_rng(12345).normal(1000, args.spread, args.models)
    print(
        f"{args.models} models, true ratings N(1000, {args.spread:g}^2) (range {true.min():.0f}-{true.max():.0f}), "
        f"Davidson ties (nu 0.25), {args.seeds} seeds, 200 bootstrap rounds, ratings refitted every {REFIT} votes\n"
    )
    print("| votes | strategy | mean 95% CI width | vs uniform | expected total variance | vs uniform |")
    print("|---:|---|---:|---:|---:|---:|")
    for m in args.votes:
        start = time.perf_counter()
        results = {s: [run(true, m, s, seed=seed) for seed in range(args.seeds)] for s in STRATEGIES}
        width = {s: np.mean([r.mean_width for r in rs]) for s, rs in results.items()}
        var = {s: np.mean([r.total_variance for r in rs]) for s, rs in results.items()}
        for s in STRATEGIES:
            print(
                f"| {m:,} | {s} | {width[s]:.1f} | {width[s] / width['uniform'] - 1:+.1%} "
                f"| {var[s]:,.0f} | {var[s] / var['uniform'] - 1:+.1%} |"
            )
        print(f"<!-- {m} votes: {time.perf_counter() - start:.1f} s -->", file=sys.stderr)


def handout(n_models: int, n_prompts: int = 500, n_battles: int = 300) -> None:
    """Milliseconds per new battle, each for a new voter, by strategy; and one read of the pair state."""
    from tests import stack

    with tempfile.TemporaryDirectory() as tmpdir, stack.postgres_database() as pg_url:
        env = stack.base_env(pg_url, redis_url=None, ARENA_VAR_DIR=tmpdir, LOG_LEVEL="WARNING")
        stack.manage(env, "migrate", "--noinput", "-v", "0")
        names = [f"m{i:03d}" for i in range(n_models)]
        spec = {
            "slug": "bench",
            "title": "Bench",
            "status": "active",
            "models": [{"name": n, "backend": "static"} for n in names],
            "prompts": [
                {"external_id": f"p{p}", "prompt": f"Question {p}", "responses": {n: f"A {n}" for n in names}}
                for p in range(n_prompts)
            ],
        }
        Path(tmpdir, "c.json").write_text(json.dumps(spec))
        stack.manage(env, "load_campaign", str(Path(tmpdir, "c.json")), timeout=600)
        os.environ.update(env)
        import django

        django.setup()
        from django.db import connection

        from arena.leaderboards.snapshots import compute_snapshots
        from arena.models import Campaign, Item, Voter
        from arena.services.active_sampling import forget_pair_states, read_pair_state
        from arena.services.battles import open_battle
        from arena.services.profiles import campaign_profile, forget_profiles
        from arena.services.votes import record_vote

        with connection.cursor() as cursor:  # what autovacuum does shortly after a bulk import
            cursor.execute("ANALYZE")
        campaign = Campaign.objects.get(slug="bench")
        pairs = n_models * (n_models - 1) // 2
        print(f"{n_models} models ({pairs} pairs), {n_prompts} prompts, {Item.objects.count():,} items\n")
        # Each voter gets one new battle and votes on it (the vote is not timed); a recompute between
        # rounds, as the worker would run it, gives active sampling ratings and counts to read.
        rng = np.random.default_rng(0)
        for strategy in ("balanced", "active", "balanced", "active"):
            Campaign.objects.filter(pk=campaign.pk).update(sampling=strategy)
            forget_profiles()
            forget_pair_states()
            voters = Voter.objects.bulk_create([Voter() for _ in range(n_battles)])
            elapsed = 0.0
            for voter in voters:
                start = time.perf_counter()
                battle = open_battle(campaign_profile("bench"), voter.pk)
                elapsed += time.perf_counter() - start
                record_vote(battle.id, voter, str(rng.choice(["left", "right", "tie"])))
            compute_snapshots(campaign)
            print(f"{strategy:<9} {elapsed / n_battles * 1000:6.2f} ms per new battle (first includes cache reads)")
        compute_snapshots(campaign)
        profile = campaign_profile("bench")
        start = time.perf_counter()
        for _ in range(20):
            read_pair_state(profile)
        print(f"read of the pair state (aggregate + snapshot): {(time.perf_counter() - start) / 20 * 1000:.2f} ms")


if __name__ == "__main__":
    main()
