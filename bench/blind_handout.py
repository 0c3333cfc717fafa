"""Benchmark: the cost of the blind hand-out for voters who have already voted a lot.

Every hand-out probes, per candidate item, the voter's battles on its prompt (new_battles.still_blind):
no answer revealed to the voter may be shown again. Before, the probe was "not this very item",
on a (voter, item) index. This times ``open_battle`` on PostgreSQL (a fresh database, tests/stack.py)
for voters with 0 to N earlier votes, under the new rule and under the old one (its index rebuilt,
its probe put back) in the same run, and counts, for the old rule, the battles that showed an
answer the voter had seen revealed (the leak of issue 14, finding 1).

    .venv/bin/python bench/blind_handout.py [--models 20] [--prompts 200] [--history 0 100 400 1000]
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

OLD_PROBE = "NOT EXISTS (SELECT 1 FROM arena_battle b WHERE b.voter_id = %s AND b.item_id = i.id LIMIT 1 OFFSET 0)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--prompts", type=int, default=200)
    parser.add_argument("--history", type=int, nargs="+", default=[0, 100, 400, 1000])
    parser.add_argument("--timed", type=int, default=50, help="timed hand-outs per voter")
    args = parser.parse_args()
    from tests import stack

    with tempfile.TemporaryDirectory() as tmpdir, stack.postgres_database() as pg_url:
        env = stack.base_env(pg_url, redis_url=None, ARENA_VAR_DIR=tmpdir, LOG_LEVEL="WARNING")
        stack.manage(env, "migrate", "--noinput", "-v", "0")
        names = [f"m{i:03d}" for i in range(args.models)]
        spec = {
            "slug": "bench",
            "title": "Bench",
            "status": "active",
            "models": [{"name": n, "backend": "static"} for n in names],
            "prompts": [
                {"external_id": f"p{p}", "prompt": f"Q {p}", "responses": {n: f"A {n} {p}" for n in names}}
                for p in range(args.prompts)
            ],
        }
        Path(tmpdir, "c.json").write_text(json.dumps(spec))
        stack.manage(env, "load_campaign", str(Path(tmpdir, "c.json")), timeout=600)
        os.environ.update(env)
        import django

        django.setup()
        run(args)


def run(args: argparse.Namespace) -> None:
    from django.db import connection

    from arena.models import Battle, Item, Voter
    from arena.services import battles
    from arena.services.profiles import campaign_profile
    from arena.services.votes import record_vote

    print(f"{args.models} models, {args.prompts} prompts, {Item.objects.count():,} items; PostgreSQL\n")
    new_probe = dict(battles._BLIND_ITEM)
    for rule in ("old", "new"):
        with connection.cursor() as cursor:
            if rule == "old":
                cursor.execute("CREATE INDEX IF NOT EXISTS bench_voter_item ON arena_battle (voter_id, item_id)")
            else:
                cursor.execute("DROP INDEX IF EXISTS bench_voter_item")
            cursor.execute("ANALYZE")
        battles._BLIND_ITEM.update(new_probe if rule == "new" else {False: OLD_PROBE})
        print(f"{rule} rule: earlier votes | ms per hand-out (median, p90) | battles showing a revealed answer")
        for history in args.history:
            voter = Voter.objects.create()
            revealed: set[int] = set()
            leaks = 0
            times = []
            for number in range(history + args.timed):
                start = time.perf_counter()
                view = battles.open_battle(campaign_profile("bench"), voter.pk)
                elapsed = time.perf_counter() - start
                if number >= history:
                    times.append(elapsed * 1000)
                battle = Battle.objects.get(pk=view.id)
                leaks += bool({battle.left_id, battle.right_id} & revealed)
                revealed |= {battle.left_id, battle.right_id}
                record_vote(view.id, voter, "tie")
            times.sort()
            print(
                f"  {history:>13,} | {statistics.median(times):6.2f} {times[int(len(times) * 0.9)]:6.2f}"
                f"                 | {leaks} of {history + args.timed}"
            )
        print()


if __name__ == "__main__":
    main()
