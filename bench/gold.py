"""Benchmark: gold battles and voter quality on a large campaign in PostgreSQL.

Seeds a fresh database the way bench/exports.py does (20 models, 200 prompts, N votes from 20,000
voters), then makes every 25th item a gold battle (expected: the first response) and turns the
battles on those items into gold battles. Measures, in this process:

- the hand-out: a new gold battle (``hand_out_gold``: lock the voter, pick an unseen gold battle,
  insert) against a new regular battle (``open_battle`` at gold rate 0), for a voter with history;
- the voter-quality figures the dashboard shows (``campaign_agreement``: alpha, majority, gold) and the
  flags (``suspicious_voters``, gold included), each over every vote of the campaign;
- the battles export with gold votes left out (the default) and kept (``include_gold``).

    .venv/bin/python bench/gold.py [--votes 200000] [--handouts 500]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.exports import seed  # noqa: E402
from tests import stack  # noqa: E402

GOLD_SQL = """
INSERT INTO arena_goldbattle (campaign_id, prompt_id, first_id, second_id, expected, note, is_active, created_at)
SELECT campaign_id, prompt_id, response_lo_id, response_hi_id, 'first', 'bench', true, now()
FROM arena_item WHERE campaign_id = %(campaign)s AND id %% 25 = 0;
UPDATE arena_battle b SET gold_id = g.id, item_id = NULL
FROM arena_item i, arena_goldbattle g
WHERE b.item_id = i.id AND i.id %% 25 = 0 AND g.prompt_id = i.prompt_id AND g.first_id = i.response_lo_id
  AND g.second_id = i.response_hi_id;
ANALYZE;
"""


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - started, result


def measure(handouts: int, tmp: Path, explain: bool = False) -> None:
    import django

    django.setup()
    from arena.exports.filters import ExportFilters
    from arena.exports.writer import write_export
    from arena.models import Battle, Campaign, GoldBattle, Vote, Voter
    from arena.services.abuse import suspicious_voters
    from arena.services.battles import open_battle
    from arena.services.gold import hand_out_gold
    from arena.services.profiles import campaign_profile
    from arena.services.quality import campaign_agreement

    campaign = Campaign.objects.get(slug="bench")
    golds = GoldBattle.objects.filter(campaign=campaign).count()
    gold_votes = Vote.objects.filter(campaign=campaign, battle__gold__isnull=False).count()
    votes = Vote.objects.filter(campaign=campaign).count()
    print(f"{golds:,} gold battles, {gold_votes:,} of {votes:,} votes on gold battles")

    # A voter with history: their battles are part of every "not seen yet" check.
    voter = Voter.objects.filter(public_id="bench-1").get()
    profile = campaign_profile("bench")
    gold_ms, regular_ms = [], []
    for _ in range(handouts):
        seconds, view = timed(hand_out_gold, profile, voter.pk)
        Battle.objects.filter(pk=view.id).update(status="void")
        gold_ms.append(seconds * 1000)
        seconds, view = timed(open_battle, profile, voter.pk)
        Battle.objects.filter(pk=view.id).update(status="void")
        regular_ms.append(seconds * 1000)
    if explain:
        from django.db import connection

        from arena.services.gold import _UNSEEN_GOLD_SQL

        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN ANALYZE " + _UNSEEN_GOLD_SQL, [campaign.pk, True, voter.pk])
            print("\n".join(row[0] for row in cursor.fetchall()))
    for label, values in (("gold hand-out", gold_ms), ("regular hand-out (gold rate 0)", regular_ms)):
        values.sort()
        p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
        print(f"  {label:<34} median {statistics.median(values):6.2f} ms   p99 {p99:6.2f} ms   ({len(values)} calls)")

    seconds, agreement = timed(campaign_agreement, campaign)
    summary = agreement["summary"]
    print(
        f"  campaign_agreement (alpha, majority, gold)  {seconds:6.1f} s   gold share "
        f"{summary['gold']['share'] or 0:.3f} over {summary['gold']['n']:,} votes, majority share "
        f"{summary['majority']['share'] or 0:.3f} over {summary['majority']['n']:,} votes"
    )
    seconds, flags = timed(suspicious_voters, campaign)
    print(f"  suspicious_voters (gold included)           {seconds:6.1f} s   {len(flags):,} flagged")
    for filters in ({}, {"include_gold": True}):
        output = tmp / "battles.jsonl"
        seconds, stats = timed(write_export, campaign, "battles-jsonl", ExportFilters.parse(filters), output)
        label = "battles-jsonl " + ("include_gold" if filters else "(gold left out)")
        print(f"  {label:<44} {seconds:6.1f} s   {stats.rows_written:,} records")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--votes", type=int, default=200_000)
    parser.add_argument("--handouts", type=int, default=500)
    parser.add_argument("--explain", action="store_true", help="print the plan of the gold hand-out query")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir, stack.postgres_database() as pg_url:
        tmp = Path(tmpdir)
        env = stack.base_env(pg_url, redis_url=None, LOG_LEVEL="WARNING")
        stack.manage(env, "migrate", "--noinput", "-v", "0")
        seed(pg_url, env, args.votes, tmp)
        with psycopg.connect(pg_url, autocommit=True) as conn:
            campaign = conn.execute("SELECT id FROM arena_campaign WHERE slug = 'bench'").fetchone()[0]
            conn.execute((GOLD_SQL % {"campaign": int(campaign)}).encode())
        os.environ.update(env)
        measure(args.handouts, tmp, args.explain)


if __name__ == "__main__":
    main()
