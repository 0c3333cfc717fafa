"""Benchmark of the rating engine (figures go to docs/ratings.md).

    .venv/bin/python bench/ratings.py            # speed and memory, under 2 minutes
    .venv/bin/python bench/ratings.py coverage   # interval coverage table (about 1 minute)
    .venv/bin/python bench/ratings.py ties       # which tie mechanism fits the LLMFAO data better

Speed: 1,000,000 votes among 100 models with about 10% ties: aggregation, then a full leaderboard
(Davidson fit, 1,000 bootstrap rounds, sandwich intervals, half-win fit, matrices), the same after
folding 10,000,000 votes, and a row-level baseline in the style of the public arena notebook
(resample the votes with replacement, refit on the rows with L-BFGS), timed for a few rounds and
extrapolated to 1,000.
"""

from __future__ import annotations

import os
import sys
import time
import tracemalloc
from pathlib import Path

# One OpenBLAS thread, as in the site's processes (arena/__init__.py) and `python -m ratings`.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# This file is called ratings.py: keep its folder off sys.path so that `import ratings` finds the package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import numpy as np  # noqa: E402
from scipy.optimize import minimize  # noqa: E402

from ratings import PairCounts, compute_leaderboard, fit_bradley_terry  # noqa: E402
from ratings.simulate import simulate_battles  # noqa: E402

N_MODELS = 100
NAMES = [f"model-{i:03d}" for i in range(N_MODELS)]


def measure(label: str, fn, *, memory: bool = True):
    """Run fn once for time (wall and CPU, all threads), once more under tracemalloc for peak memory (numpy
    reports its buffers)."""
    start, cpu = time.perf_counter(), time.process_time()
    result = fn()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = None
    if memory:
        tracemalloc.start()
        fn()
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    mem = "" if peak is None else f"  peak {peak:7.1f} MiB"
    print(f"{label:<58} {elapsed * 1000:9.1f} ms  CPU {cpu * 1000:9.1f} ms{mem}")
    return result, elapsed


def votes(n_votes: int, seed: int):
    rng = np.random.default_rng(seed)
    true = np.random.default_rng(0).normal(1000, 120, N_MODELS)
    return simulate_battles(true, n_votes, rng=rng, ties="davidson", nu=0.25)


def full_leaderboard(counts: PairCounts) -> dict:
    board = compute_leaderboard(counts)  # Davidson, 1,000 bootstrap rounds, matrices
    sandwich = compute_leaderboard(counts, intervals="sandwich")
    half = fit_bradley_terry(counts, ties="half")
    return {"board": board, "sandwich": sandwich, "half": half}


def row_level_fit(a: np.ndarray, b: np.ndarray, score: np.ndarray) -> np.ndarray:
    """BT on individual votes, ties as half wins, L-BFGS as in the public arena notebook."""

    def loss(theta: np.ndarray):
        d = theta[a] - theta[b]
        p = 1 / (1 + np.exp(-d))
        ll = score * np.log(p + 1e-300) + (1 - score) * np.log(1 - p + 1e-300)
        g = score - p
        grad = np.bincount(a, g, N_MODELS) - np.bincount(b, g, N_MODELS)
        return -ll.sum(), -grad

    return minimize(loss, np.zeros(N_MODELS), jac=True, method="L-BFGS-B", options={"gtol": 1e-6}).x


def speed() -> None:
    a, b, o = votes(1_000_000, seed=1)
    print(f"1,000,000 votes, {N_MODELS} models, {np.mean(o == 2):.1%} ties; 2 CPU cores\n")
    counts, t_agg = measure(
        "aggregate 1M votes (integer ids) -> PairCounts", lambda: PairCounts.from_battles(a, b, o, models=NAMES)
    )
    str_a, str_b = [NAMES[i] for i in a], [NAMES[i] for i in b]
    measure("aggregate 1M votes (model names as str)", lambda: PairCounts.from_battles(str_a, str_b, o), memory=False)
    stacked = np.stack([a, b, o.astype(np.int64)], axis=1)
    measure(
        "  for comparison: np.unique(rows, axis=0) on the same votes",
        lambda: np.unique(stacked, axis=0, return_counts=True),
        memory=False,
    )
    measure("fit Davidson (Newton) on the counts", lambda: fit_bradley_terry(counts))
    measure("fit half-win BT (Newton) on the counts", lambda: fit_bradley_terry(counts, ties="half"))
    measure(
        "fit half-win BT (MM) on the counts", lambda: fit_bradley_terry(counts, ties="half", method="mm"), memory=False
    )
    measure("leaderboard, Davidson, sandwich intervals", lambda: compute_leaderboard(counts, intervals="sandwich"))
    _, t_boot = measure("leaderboard, Davidson, 1,000 bootstrap rounds", lambda: compute_leaderboard(counts))
    result, t_full = measure("full: bootstrap board + sandwich board + half-win fit", lambda: full_leaderboard(counts))
    board = result["board"]
    print(
        f"  tie parameter nu = {board.tie_parameter:.3f}; rank-1 model {board.rows[0].model} "
        f"{board.rows[0].rating:.1f} [{board.rows[0].ci_low:.1f}, {board.rows[0].ci_high:.1f}]"
    )

    print("\n10,000,000 votes (folded 1M at a time, as the worker does)")
    total = PairCounts.empty()
    t_fold = 0.0
    for chunk in range(10):
        ca, cb, co = votes(1_000_000, seed=100 + chunk)
        start = time.perf_counter()
        total = total + PairCounts.from_battles(ca, cb, co, models=NAMES)
        t_fold += time.perf_counter() - start
    print(f"{'aggregate 10M votes in 10 folds':<58} {t_fold * 1000:9.1f} ms")
    measure("full leaderboard on the 10M-vote counts", lambda: full_leaderboard(total), memory=False)

    print("\nrow-level baseline: resample 1M votes with replacement, refit on rows (L-BFGS)")
    score = np.select([o == 0, o == 1], [1.0, 0.0], 0.5)
    rng = np.random.default_rng(0)
    rounds = 10

    def baseline():
        for _ in range(rounds):
            idx = rng.integers(0, len(a), len(a))
            row_level_fit(a[idx], b[idx], score[idx])

    _, t_rows = measure(f"{rounds} row-level bootstrap rounds", baseline, memory=False)
    per_1000 = t_rows / rounds * 1000
    print(f"  extrapolated to 1,000 rounds: {per_1000:.0f} s")
    print(f"  speed ratio vs our 1,000-round bootstrap leaderboard: {per_1000 / t_boot:.0f}x")
    print(f"\nsummary: aggregate {t_agg * 1000:.0f} ms; full leaderboard {t_full:.2f} s")


def coverage(sims: int = 100, n_models: int = 20, n_votes: int = 3000) -> None:
    """Share of models whose 95% interval contains the true rating (and fitted/true slope)."""
    names = [f"m{i:02d}" for i in range(n_models)]
    print(f"{sims} simulations x {n_models} models, {n_votes} votes each, true ratings N(1000, 100^2)\n")
    print("| ties generated by | fitted with | ties | slope | bootstrap coverage | sandwich coverage |")
    print("|---|---|---|---|---|---|")
    for gen, label in (("davidson", "Davidson, nu = 0.5"), ("score", "expected score = BT, tau = 0.4")):
        stats: dict[str, dict[str, list[float]]] = {}
        tie_share = []
        for s in range(sims):
            rng = np.random.default_rng(10_000 + s)
            true = rng.normal(0, 100, n_models)
            true -= true.mean()
            a, b, o = simulate_battles(true + 1000, n_votes, rng=rng, ties=gen, nu=0.5, tau=0.4)
            tie_share.append(np.mean(o == 2))
            counts = PairCounts.from_battles(a, b, o, models=names)
            for ties in ("davidson", "half"):
                st = stats.setdefault(ties, {"bootstrap": [], "sandwich": [], "slope": []})
                for iv in ("bootstrap", "sandwich"):
                    rows = {
                        r.model: r
                        for r in compute_leaderboard(counts, ties=ties, intervals=iv, seed=s, min_votes=0).rows
                    }
                    lo = np.array([rows[m].ci_low for m in names])
                    hi = np.array([rows[m].ci_high for m in names])
                    st[iv].append(np.mean((lo <= true + 1000) & (true + 1000 <= hi)))
                est = np.array([rows[m].rating for m in names])
                st["slope"].append(np.polyfit(true, est, 1)[0])
        for ties, st in stats.items():
            print(
                f"| {label} | {ties} | {np.mean(tie_share):.0%} | {np.mean(st['slope']):.2f} | "
                f"{np.mean(st['bootstrap']):.1%} | {np.mean(st['sandwich']):.1%} |"
            )


def tie_mechanisms() -> None:
    """Log-likelihood on real data of the two tie mechanisms used in `coverage` (same parameter count:
    one strength per model plus one tie parameter)."""
    import csv

    from ratings.bt import count_rows

    path = _HERE.parent / "tests" / "data" / "llmfao" / "llmfao.csv"
    with path.open(newline="") as f:
        data = list(csv.DictReader(f))
    label = {"left": "model_a", "right": "model_b", "tie": "tie"}
    counts = PairCounts.from_battles(
        [r["left"] for r in data], [r["right"] for r in data], [label[r["winner"]] for r in data]
    )
    davidson = fit_bradley_terry(counts)
    rows, _ = count_rows(counts)

    def nll(x: np.ndarray) -> float:
        tau = 0.5 / (1 + np.exp(-x[-1]))
        p = 1 / (1 + np.exp(-(x[rows.ia] - x[rows.ib])))
        tie = tau * 4 * p * (1 - p)
        return -float(
            np.sum(rows.win * np.log(p - tie / 2) + rows.loss * np.log(1 - p - tie / 2) + rows.tie * np.log(tie))
        )

    start = np.concatenate([fit_bradley_terry(counts, ties="half").theta, [0.0]])
    score = minimize(nll, start, method="L-BFGS-B")
    print(f"LLMFAO, {counts.n_votes:g} votes, {counts.ties.sum() / 2 / counts.n_votes:.0%} ties")
    print(
        f"  Davidson ties:                      log-likelihood {davidson.log_likelihood:.1f} (nu = {davidson.nu:.2f})"
    )
    print(
        f"  expected score = BT (tie = tau*4p(1-p)): log-likelihood {-score.fun:.1f} "
        f"(tau = {0.5 / (1 + np.exp(-score.x[-1])):.2f})"
    )


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "speed"
    {"speed": speed, "coverage": coverage, "ties": tie_mechanisms}[mode]()
