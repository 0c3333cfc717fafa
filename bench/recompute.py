"""Benchmark: folding votes into the rating aggregates and the recompute after new votes, database included.

A PostgreSQL database gets a campaign of 100 models with 1,000,000 votes (bulk SQL, see
bench/vote_cycle.py). Then, timed:

1. the first fold of the 1,000,000 votes (what a worker does when they arrive unfolded),
2. ``rebuild_ratings`` (recount every folded vote into fresh aggregates, refit every board with
   1,000 bootstrap rounds),
3. the incremental recompute after 1,000 new votes, stage by stage (fold, refit of the boards
   whose counts changed with sandwich intervals: overall Davidson and half-win, and Elo; snapshot
   writes) and end to end (the Celery task
   ``arena.leaderboards.tasks.recompute_campaign`` called in-process: lock, fold, refit, write), ``--rounds``
   times each on fresh votes (median, min and max),
4. what beat's sweep then does: the same boards with 1,000 bootstrap rounds.

    .venv/bin/python bench/recompute.py [--votes 1000000] [--models 100] [--new 1000] [--rounds 5]
    .venv/bin/python bench/recompute.py --template arena_bench_1m   # keep the seeded votes for reruns

Seeding a million votes takes a few minutes; with ``--template NAME`` the seeded database is kept
under that name (once) and cloned by later runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench.vote_cycle import SEED_SQL  # noqa: E402
from tests import stack  # noqa: E402

# More votes on new battles (the seed script hashes its counter; a new prefix gives new battle ids).
MORE_SQL = (
    SEED_SQL.replace("INSERT INTO arena_voter", "-- INSERT INTO arena_voter")
    .replace("SELECT 'bench-' || g, '', false", "-- SELECT 'bench-' || g, '', false")
    .replace("md5('b' || g)", "md5('%(prefix)s' || g)")
    .replace(
        "WHERE b.campaign_id = %(campaign)s;",
        "WHERE b.campaign_id = %(campaign)s AND NOT EXISTS (SELECT 1 FROM arena_vote v WHERE v.battle_id = b.id);",
    )
    .replace("ANALYZE;", "")
)
assert MORE_SQL.count("%(prefix)s") == 1 and "NOT EXISTS" in MORE_SQL, "bench/vote_cycle.py SEED_SQL changed"


def database_exists(name: str) -> bool:
    with psycopg.connect(stack.PG_ADMIN_URL, autocommit=True) as admin:
        return admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def clone(template: str, name: str) -> None:
    with psycopg.connect(stack.PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')


def seed(pg_url: str, env: dict, tmpdir: str, votes: int, models: int) -> None:
    stack.manage(env, "migrate", "--noinput", "-v", "0")
    names = [f"m{i:03d}" for i in range(models)]
    spec = {
        "slug": "bench",
        "title": "Bench",
        "status": "active",
        "models": [{"name": n, "backend": "static"} for n in names],
        "prompts": [
            {"external_id": f"p{p}", "prompt": f"Question {p}", "responses": {n: f"A {n}" for n in names}}
            for p in range(3)
        ],
    }
    Path(tmpdir, "c.json").write_text(json.dumps(spec))
    stack.manage(env, "load_campaign", str(Path(tmpdir, "c.json")))
    started = time.perf_counter()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        campaign = conn.execute("SELECT id FROM arena_campaign").fetchone()[0]
        conn.execute((SEED_SQL % {"campaign": int(campaign), "votes": int(votes), "voters": 20_000}).encode())
        conn.execute("VACUUM ANALYZE")
    print(f"seeded {votes:,} votes in {time.perf_counter() - started:.1f} s")


def add_votes(pg_url: str, n: int, prefix: str) -> int:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        campaign = conn.execute("SELECT id FROM arena_campaign").fetchone()[0]
        conn.execute(
            (MORE_SQL % {"campaign": int(campaign), "votes": int(n), "voters": 20_000, "prefix": prefix}).encode()
        )
        return conn.execute("SELECT count(*) FROM arena_vote WHERE NOT folded").fetchone()[0]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:9.1f} ms"


def summary(values: list[float]) -> str:
    return f"{ms(statistics.median(values))}  (min {min(values) * 1000:.1f}, max {max(values) * 1000:.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--new", type=int, default=1000, help="new votes per incremental recompute")
    parser.add_argument("--rounds", type=int, default=5, help="incremental recomputes timed")
    parser.add_argument("--template", help="keep the seeded database under this name and reuse it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir, stack.postgres_database() as pg_url:
        env = stack.base_env(pg_url, redis_url=None, ARENA_VAR_DIR=tmpdir, LOG_LEVEL="WARNING")
        env["ARENA_BOOTSTRAP_ROUNDS"] = "1000"
        name = pg_url.rsplit("/", 1)[1]
        if args.template and database_exists(args.template):
            with psycopg.connect(stack.PG_ADMIN_URL, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE "{name}"')
            clone(args.template, name)
            print(f"cloned the seeded database {args.template}")
        else:
            seed(pg_url, env, tmpdir, args.votes, args.models)
            if args.template:
                clone(name, args.template)
        stack.manage(env, "migrate", "--noinput", "-v", "0")
        os.environ.update(env)
        import django

        django.setup()
        from django.db import connection

        from arena.leaderboards.aggregation import fold_new_votes, rebuild_aggregates
        from arena.leaderboards.snapshots import compute_snapshots, fit_boards, write_boards
        from arena.leaderboards.tasks import recompute_campaign
        from arena.models import Campaign

        campaign = Campaign.objects.get(slug="bench")
        with psycopg.connect(pg_url, autocommit=True) as conn:
            n_votes = conn.execute("SELECT count(*) FROM arena_vote").fetchone()[0]
        print(f"{n_votes:,} votes, {campaign.contenders.count()} models\n")

        started = time.perf_counter()
        fold_new_votes(campaign)
        print(f"first fold of {n_votes:,} unfolded votes            {ms(time.perf_counter() - started)}")
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE arena_vote")  # the fold rewrote every vote row (folded = true)
        started = time.perf_counter()
        rebuild_aggregates(campaign)
        recount = time.perf_counter() - started
        compute_snapshots(campaign, intervals="bootstrap", force=True)
        total = time.perf_counter() - started
        print(f"rebuild_ratings: recount {n_votes:,} folded votes    {ms(recount)}")
        print(f"rebuild_ratings: + every board, 1,000 bootstrap rounds {ms(total - recount)}")
        print(f"rebuild_ratings: total                              {ms(total)}")
        connection.close()

        stages: dict[str, list[float]] = {}
        end_to_end: list[float] = []
        bootstrap_runs: list[float] = []
        for r in range(args.rounds):
            # Stage by stage (what compute_snapshots does after votes), on fresh votes ...
            new = add_votes(pg_url, args.new, f"s{r}-")
            t0 = time.perf_counter()
            folded = fold_new_votes(campaign)
            t1 = time.perf_counter()
            boards = fit_boards(campaign, intervals="sandwich")
            t2 = time.perf_counter()
            write_boards(campaign, boards)
            t3 = time.perf_counter()
            assert folded == new, (folded, new)
            for label, seconds in (
                (f"fold {new:,} new votes", t1 - t0),
                (f"refit {len(boards)} boards, sandwich intervals", t2 - t1),
                (f"write {len(boards)} snapshots", t3 - t2),
            ):
                stages.setdefault(label, []).append(seconds)
            # ... and end to end: the after-vote Celery task, in-process, on fresh votes.
            add_votes(pg_url, args.new, f"e{r}-")
            t0 = time.perf_counter()
            written = recompute_campaign(campaign.pk)
            end_to_end.append(time.perf_counter() - t0)
            assert written == 3, written  # davidson + half + elo
            t0 = time.perf_counter()
            recompute_campaign(campaign.pk, "bootstrap")
            bootstrap_runs.append(time.perf_counter() - t0)
        print(f"\nincremental recompute after {args.new:,} new votes, {args.rounds} runs (median, min, max):")
        for label, values in stages.items():
            print(f"  {label:44s} {summary(values)}")
        print(f"  {'end to end: the after-vote task':44s} {summary(end_to_end)}")
        print(f"  {'beat: the same boards, 1,000 bootstrap rounds':44s} {summary(bootstrap_runs)}")


if __name__ == "__main__":
    main()
