"""Benchmark: an incremental leaderboard recompute after 1,000 new votes, database included.

A fresh PostgreSQL database gets a campaign of 100 models with 1,000,000 votes (bulk SQL, see
bench/vote_cycle.py), folded once by `rebuild_ratings`; then 1,000 new votes arrive and we time
what the recompute task does with them: fold the new votes into the stored aggregates (reads only
the new votes), and refit the overall leaderboard from the counts.

    .venv/bin/python bench/recompute.py [--votes 1000000] [--models 100]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.vote_cycle import SEED_SQL  # noqa: E402
from tests import stack  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--models", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir, stack.postgres_database() as pg_url:
        env = stack.base_env(pg_url, redis_url=None, ARENA_VAR_DIR=tmpdir, LOG_LEVEL="WARNING")
        stack.manage(env, "migrate", "--noinput", "-v", "0")
        names = [f"m{i:03d}" for i in range(args.models)]
        spec = {
            "slug": "bench", "title": "Bench", "status": "active",
            "models": [{"name": n, "backend": "static"} for n in names],
            "prompts": [{"external_id": f"p{p}", "prompt": f"Question {p}", "responses": {n: f"A {n}" for n in names}}
                        for p in range(3)],
        }  # fmt: skip
        Path(tmpdir, "c.json").write_text(json.dumps(spec))
        stack.manage(env, "load_campaign", str(Path(tmpdir, "c.json")))
        os.environ.update(env)
        import django
        import psycopg

        django.setup()
        from django.db import connection

        from arena.models import Campaign
        from ratings.aggregation import fold_new_votes
        from ratings.models import PairAggregate
        from ratings.snapshots import leaderboard_data

        def seed(n: int, voters: int) -> None:
            with psycopg.connect(pg_url, autocommit=True) as conn:
                campaign = conn.execute("SELECT id FROM arena_campaign").fetchone()[0]
                conn.execute((SEED_SQL % {"campaign": campaign, "votes": n, "voters": voters}).encode())

        started = time.perf_counter()
        seed(args.votes, 20_000)
        print(f"seeded {args.votes:,} votes in {time.perf_counter() - started:.1f} s")
        campaign = Campaign.objects.get(slug="bench")
        started = time.perf_counter()
        fold_new_votes(campaign)
        print(f"first fold of {args.votes:,} votes (a full rebuild): {time.perf_counter() - started:.1f} s")
        connection.close()
        # 1,000 new votes (new battle ids: the seed script hashes its counter with a different voter range).
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("UPDATE arena_vote SET folded = true")
        seed_more = (
            SEED_SQL.replace("md5('b' || g)", "md5('new' || g)")
            .replace("'bench-' || g", "'new-' || g")
            .replace(
                "WHERE b.campaign_id = %(campaign)s;",
                "WHERE b.campaign_id = %(campaign)s"
                " AND NOT EXISTS (SELECT 1 FROM arena_vote v WHERE v.battle_id = b.id);",
            )
        )
        with psycopg.connect(pg_url, autocommit=True) as conn:
            campaign_id = conn.execute("SELECT id FROM arena_campaign").fetchone()[0]
            conn.execute((seed_more % {"campaign": campaign_id, "votes": 1000, "voters": 100}).encode())
            new = conn.execute("SELECT count(*) FROM arena_vote WHERE NOT folded").fetchone()[0]
        timings = {}
        started = time.perf_counter()
        folded = fold_new_votes(campaign)
        timings["fold the new votes"] = time.perf_counter() - started
        aggregate = PairAggregate.objects.get(campaign=campaign, dimension="", category="")
        from ratings.counts import PairCounts

        counts = PairCounts.from_dict(aggregate.counts)
        for label, rounds in (("refit, sandwich intervals", 0), ("refit, 1,000 bootstrap rounds", 1000)):
            from django.conf import settings

            settings.ARENA_BOOTSTRAP_ROUNDS = rounds
            started = time.perf_counter()
            if rounds:
                leaderboard_data(counts, "davidson")
            else:
                from ratings import compute_leaderboard

                compute_leaderboard(counts, intervals="sandwich")
            timings[label] = time.perf_counter() - started
    print(f"\nincremental recompute after {new:,} new votes ({folded:,} folded), {args.models} models:")
    for label, seconds in timings.items():
        print(f"  {label:34s} {seconds * 1000:8.1f} ms")
    total = timings["fold the new votes"] + timings["refit, sandwich intervals"]
    print(f"  {'fold + sandwich refit':34s} {total * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
