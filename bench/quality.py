"""Benchmark: the dashboard's voter-quality figures at 1,000,000 votes, and after 1,000 new votes, old code against new.

Fills a fresh database (PostgreSQL and SQLite) with a campaign of N votes (10 models, 5,000 prompts,
5,000 voters of unequal activity (log-normal: the busiest casts about 1%), 5% gold battles, a score on
half the votes, verdicts drawn from latent model strengths so that agreement is neither 0 nor 1),
then, each in a process of its own:

- new code (this tree): the first refresh (no state yet: every vote is read, ``quality_state.full``),
  then ROUNDS times: 1,000 new votes, and the refresh that folds them in (``quality_state.refresh``,
  as the worker's ``compute_voter_quality`` runs it, cache round trip included: Redis on PostgreSQL,
  the in-process cache on SQLite), and a check that the figures equal a full recomputation's; then,
  as another worker process would, a refresh from the stored state (stored at most every 30 s);
- old code (``--old``, by default the commit before this work, extracted with ``git archive``): the
  computation every refresh used to make, ``dashboard.voter_quality``, which reads every vote.

Target: under 1 s after 1,000 new votes at 1,000,000 votes.

    .venv/bin/python bench/quality.py [--votes 1000000] [--database postgres|sqlite|both] [--old REF | --old none]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A child runs the code of the tree it is given (BENCH_CODE: this one, or an old commit's).
sys.path.insert(0, os.environ.get("BENCH_CODE", str(ROOT)))
OLD_REF = "0d7e720"  # the commit before the incremental figures (issue 18)
SLUG = "quality-bench"
MODELS, PROMPTS, VOTERS, GOLD = 10, 5000, 5000, 50
START = datetime(2026, 1, 1, tzinfo=UTC)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(function, *args):
    started, cpu = time.perf_counter(), cpu_seconds()
    result = function(*args)
    return result, time.perf_counter() - started, cpu_seconds() - cpu


# --- the data (run by a child with the new code) ---------------------------------------------------------


def _insert(model, columns: list[str], rows: list[tuple]) -> None:
    """Rows into the model's table, fast: COPY on PostgreSQL, one executemany elsewhere. The other
    columns take the fields' defaults."""
    from django.db import connection

    fields = [f for f in model._meta.concrete_fields if not f.primary_key or f.column in columns]
    rest = [f for f in fields if f.column not in columns]
    defaults = tuple(f.get_db_prep_save(f.get_default(), connection) for f in rest)
    names = [*columns, *(f.column for f in rest)]
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row((*row, *defaults))
        else:
            marks = ", ".join(["%s"] * len(names))
            cursor.executemany(
                f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})", [(*row, *defaults) for row in rows]
            )


def make_campaign() -> None:
    from arena.models import Campaign, GoldBattle, ModelEntry, Prompt, Response, Voter

    campaign = Campaign.objects.create(slug=SLUG, title="Quality benchmark", status="active")
    entries = [ModelEntry.objects.create(name=f"quality-model-{i}", backend="static") for i in range(MODELS)]
    campaign.contenders.set(entries)
    prompts = Prompt.objects.bulk_create(
        [
            Prompt(campaign=campaign, external_id=f"q{i}", messages=[{"role": "user", "content": f"Q{i}?"}])
            for i in range(PROMPTS)
        ],
        batch_size=2000,
    )
    Response.objects.bulk_create(
        [
            Response(prompt=p, model=m, content="answer", html="<p>answer</p>", status="done", source="imported")
            for p in prompts
            for m in entries
        ],
        batch_size=5000,
    )
    Voter.objects.bulk_create([Voter() for _ in range(VOTERS)], batch_size=5000)
    first = {}
    for prompt_id, model_id, response_id in Response.objects.filter(prompt__campaign=campaign).values_list(
        "prompt_id", "model_id", "id"
    ):
        first[(prompt_id, model_id)] = response_id
    rng = random.Random(0)
    for prompt in rng.sample(prompts, GOLD):
        GoldBattle.objects.create(
            campaign=campaign,
            prompt=prompt,
            first_id=first[(prompt.id, entries[0].id)],
            second_id=first[(prompt.id, entries[-1].id)],
            expected="first",
        )


def add_votes(count: int, offset: int, seed: int) -> None:
    """``count`` votes (and their battles), the i-th at START + (offset + i) * 0.5 s."""
    import numpy as np
    from django.db import transaction

    from arena.models import Battle, Campaign, GoldBattle, Response, Vote, Voter, new_battle_id

    campaign = Campaign.objects.get(slug=SLUG)
    models = list(campaign.contenders.order_by("id").values_list("id", flat=True))
    prompt_ids = list(campaign.prompts.order_by("id").values_list("id", flat=True))
    voter_ids = list(Voter.objects.order_by("id").values_list("id", flat=True))
    responses = dict(
        ((p, m), r)
        for p, m, r in Response.objects.filter(prompt__campaign=campaign).values_list("prompt_id", "model_id", "id")
    )
    gold = list(GoldBattle.objects.filter(campaign=campaign).values_list("id", "prompt_id", "first_id", "second_id"))
    response_model = {r: m for (_, m), r in responses.items()}
    rng = np.random.default_rng(seed)
    strength = np.linspace(-1.0, 1.0, len(models))
    weights = np.random.default_rng(0).lognormal(0.0, 1.5, len(voter_ids))  # the same voters stay busiest
    voter_index = rng.choice(len(voter_ids), count, p=weights / weights.sum())
    prompt_index = rng.integers(0, len(prompt_ids), count)
    left_index = rng.integers(0, len(models), count)
    right_index = (left_index + rng.integers(1, len(models), count)) % len(models)
    noise = rng.logistic(size=count)
    is_gold = rng.random(count) < 0.05
    battles, votes = [], []
    for i in range(count):
        at = START + timedelta(seconds=(offset + i) * 0.5)
        voter = voter_ids[voter_index[i]]
        if is_gold[i]:
            gold_id, prompt, first, second = gold[i % len(gold)]
            left, right = (first, second) if i % 2 else (second, first)
            left_model, right_model = response_model[left], response_model[right]
            diff = 1.5 if left == first else -1.5
        else:
            gold_id, prompt = None, prompt_ids[prompt_index[i]]
            left_model, right_model = models[left_index[i]], models[right_index[i]]
            left, right = responses[(prompt, left_model)], responses[(prompt, right_model)]
            diff = strength[left_index[i]] - strength[right_index[i]]
        margin = diff + noise[i]
        verdict = "left" if margin > 0.4 else "right" if margin < -0.4 else ("tie" if i % 3 else "both_bad")
        winner = {"left": left_model, "right": right_model}.get(verdict)
        scores = {}
        if gold_id is None and i % 2:
            scores = {
                "helpfulness": {
                    "left": int(np.clip(3 + round(margin), 1, 5)),
                    "right": int(np.clip(3 - round(margin), 1, 5)),
                }
            }
        battle_id = new_battle_id()
        battles.append((battle_id, campaign.id, voter, prompt, left, right, "voted", gold_id, at))
        votes.append(
            (
                battle_id,
                campaign.id,
                voter,
                prompt,
                left_model,
                right_model,
                winner,
                verdict,
                json.dumps(scores),
                int(rng.integers(800, 40_000)),
                at,
            )
        )
    with transaction.atomic():
        for start in range(0, count, 50_000):
            _insert(
                Battle,
                [
                    "id",
                    "campaign_id",
                    "voter_id",
                    "prompt_id",
                    "left_id",
                    "right_id",
                    "status",
                    "gold_id",
                    "created_at",
                ],
                battles[start : start + 50_000],
            )
            _insert(
                Vote,
                [
                    "battle_id",
                    "campaign_id",
                    "voter_id",
                    "prompt_id",
                    "left_model_id",
                    "right_model_id",
                    "winner_id",
                    "verdict",
                    "scores",
                    "duration_ms",
                    "created_at",
                ],
                votes[start : start + 50_000],
            )


# --- the measurements (children) -------------------------------------------------------------------------


def child_fill(votes: int) -> dict:
    from django.db import connection

    make_campaign()
    _, seconds, _ = timed(add_votes, votes, 0, 1)
    with connection.cursor() as cursor:  # table statistics, as a live database has them
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    return {"seconds": seconds}


def child_new(votes: int, rounds: int) -> dict:
    from django.core.cache import cache

    from arena.models import Campaign
    from arena.services import quality_state

    campaign = Campaign.objects.get(slug=SLUG)
    cache.delete(quality_state.STATE_KEY.format(campaign.pk))
    _, first, first_cpu = timed(quality_state.refresh, campaign)
    rounds_out = []
    for r in range(rounds):
        add_votes(1000, votes + r * 1000, 100 + r)
        figures, seconds, cpu = timed(quality_state.refresh, campaign)
        full = quality_state.figures(campaign, quality_state.full(campaign))
        rounds_out.append({"seconds": seconds, "cpu": cpu, "equal": figures == full})
    state = quality_state.current(campaign.pk)
    full_runs = state.full_runs
    # Another worker process (or a restart): the state comes from the cache, then 1,000 new votes.
    quality_state.forget()
    add_votes(1000, votes + rounds * 1000, 99)
    _, cold, cold_cpu = timed(quality_state.refresh, campaign)
    return {
        "first": first,
        "first_cpu": first_cpu,
        "rounds": rounds_out,
        "full_runs": full_runs,
        "cold": cold,
        "cold_cpu": cold_cpu,
        "state_mb": len(pickle.dumps(state)) / 1e6,
        "flags": len(figures["flags"]),
        "alpha": figures["verdict_alpha"],
    }


def child_old() -> dict:
    from arena.models import Campaign, Vote
    from arena.services import dashboard

    campaign = Campaign.objects.get(slug=SLUG)
    figures, seconds, cpu = timed(dashboard.voter_quality, campaign)
    return {
        "seconds": seconds,
        "cpu": cpu,
        "votes": Vote.objects.filter(campaign=campaign).count(),
        "flags": len(figures["flags"]),
        "alpha": figures["verdict_alpha"],
    }


def child(what: str, *args: str) -> dict:
    import django

    django.setup()
    if what == "fill":
        return child_fill(int(args[0]))
    if what == "new":
        return child_new(int(args[0]), int(args[1]))
    return child_old()


# --- the driver ----------------------------------------------------------------------------------------------


def run_child(env: dict, code: Path, *args: str) -> dict:
    env = {**env, "BENCH_CODE": str(code), "PYTHONPATH": str(code)}
    result = subprocess.run(
        [sys.executable, __file__, "--child", *args], cwd=code, env=env, capture_output=True, text=True, timeout=3600
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of 1,000 new votes")
    parser.add_argument("--database", choices=["postgres", "sqlite", "both"], default="both")
    parser.add_argument("--old", default=OLD_REF, help=f"commit of the old code (default {OLD_REF}), or none")
    parser.add_argument("--profile", action="store_true", help="print a profile of the last refresh")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return

    from tests import stack

    sys.path.insert(0, str(ROOT))
    from bench.imports import database, old_tree

    kinds = ["postgres", "sqlite"] if args.database == "both" else [args.database]
    print(f"voter-quality figures at {args.votes:,} votes, then {args.rounds} x 1,000 new votes; target < 1 s")
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        old = None if args.old == "none" else old_tree(args.old, tmp)
        for kind in kinds:
            with database(kind, tmp, "quality") as env:
                if kind == "postgres":
                    env = {**env, "REDIS_URL": stack.REDIS_URL.rsplit("/", 1)[0] + "/6"}  # the state in Redis
                fill = run_child(env, ROOT, "fill", str(args.votes))
                print(f"  {kind} (filled in {fill['seconds']:.0f} s; load {os.getloadavg()[0]:.1f}):", flush=True)
                new = run_child(env, ROOT, "new", str(args.votes), str(args.rounds))
                print(
                    f"    new, first refresh (no state: every vote)      {new['first']:6.2f} s "
                    f"(CPU {new['first_cpu']:.2f} s)"
                )
                for r, result in enumerate(new["rounds"], start=1):
                    print(
                        f"    new, after 1,000 new votes (round {r})           {result['seconds']:6.2f} s "
                        f"(CPU {result['cpu']:.2f} s); equal to a full recomputation: "
                        f"{'yes' if result['equal'] else 'NO'}"
                    )
                print(
                    f"    new, another process: the stored state ({new['state_mb']:.1f} MB pickled) and every vote "
                    f"since it was stored {new['cold']:6.2f} s (CPU {new['cold_cpu']:.2f} s)"
                )
                print(
                    f"      ({new['flags']} voters flagged, verdict alpha {new['alpha']:.4f}; "
                    f"started over {new['full_runs'] - 1} times after the first)"
                )
                if old is not None:
                    result = run_child(env, old, "old")
                    print(
                        f"    old, every refresh (every vote, {result['votes']:,})       {result['seconds']:6.2f} s "
                        f"(CPU {result['cpu']:.2f} s; {result['flags']} flagged, alpha {result['alpha']:.4f}; "
                        f"load {os.getloadavg()[0]:.1f})",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
