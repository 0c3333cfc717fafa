"""Benchmark: exports of 1,000,000 votes from PostgreSQL, and an import of 100,000 prompts.

Creates a fresh PostgreSQL database with a campaign (20 models, 200 prompts, one rating dimension)
and N votes inserted in bulk with SQL (left/right sides alternating, 10% ties, 5% both bad, scores,
a few flagged battles and excluded voters). Each export then runs in its own process, exactly as a
worker runs it (`arena.exports.writer.write_export`), and reports its time and peak RSS; so does the
prompt import (`arena.services.imports`). Targets: each export and the import under 30 s, each export
under 300 MB.

    .venv/bin/python bench/exports.py [--votes 1000000] [--prompts 100000] [--keep-files]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import stack  # noqa: E402

# Rows are consistent by construction, so the foreign-key triggers are skipped while loading
# (session_replication_role needs a superuser, as the local test PostgreSQL has). Battle ids are
# sequential so that the indexes on them grow at one end.
SEED_SQL = """
SET session_replication_role = replica;
SET synchronous_commit = off;
INSERT INTO arena_voter (public_id, ip_hash, excluded, created_at)
SELECT 'bench-' || g, '', g %% 500 = 0, now() FROM generate_series(1, %(voters)s) g;

CREATE TEMP TABLE bench_items AS
SELECT row_number() OVER (ORDER BY id) - 1 AS n, id, prompt_id, response_lo_id, response_hi_id
FROM arena_item WHERE campaign_id = %(campaign)s;

INSERT INTO arena_battle (id, campaign_id, voter_id, prompt_id, item_id, left_id, right_id, status, flagged,
                          conversation, created_at)
SELECT 'bench' || lpad(g::text, 10, '0'), %(campaign)s, v.min_id + (g %% %(voters)s), i.prompt_id, i.id,
       CASE WHEN g %% 2 = 0 THEN i.response_lo_id ELSE i.response_hi_id END,
       CASE WHEN g %% 2 = 0 THEN i.response_hi_id ELSE i.response_lo_id END,
       'voted', g %% 1000 = 0, '{}'::jsonb, now() - interval '30 days' + g * interval '1 second'
FROM generate_series(1, %(votes)s) g
JOIN bench_items i ON i.n = g %% (SELECT count(*) FROM bench_items)
CROSS JOIN (SELECT min(id) AS min_id FROM arena_voter) v;

INSERT INTO arena_vote (battle_id, campaign_id, voter_id, prompt_id, left_model_id, right_model_id, winner_id,
                        verdict, scores, duration_ms, created_at, folded)
SELECT b.id, b.campaign_id, b.voter_id, b.prompt_id, l.model_id, r.model_id,
       CASE WHEN b.h < 10 OR b.h >= 95 THEN NULL WHEN b.h < 55 THEN l.model_id ELSE r.model_id END,
       CASE WHEN b.h < 10 THEN 'tie' WHEN b.h < 55 THEN 'left' WHEN b.h < 95 THEN 'right' ELSE 'both_bad' END,
       jsonb_build_object('helpfulness', jsonb_build_object('left', 1 + b.h %% 5, 'right', 1 + (b.h / 5) %% 5)),
       1000 + b.h * 50, b.created_at, false
FROM (SELECT *, abs(hashtext(id)) %% 100 AS h FROM arena_battle WHERE campaign_id = %(campaign)s) b
JOIN arena_response l ON l.id = b.left_id JOIN arena_response r ON r.id = b.right_id
ORDER BY b.id;

UPDATE arena_item i SET vote_count = c.n FROM (
  SELECT item_id, count(*) AS n FROM arena_battle WHERE campaign_id = %(campaign)s GROUP BY item_id
) c WHERE c.item_id = i.id;
SET session_replication_role = DEFAULT;
"""

EXPORTS = [
    ("battles-jsonl", {}),
    ("trl-jsonl", {}),
    ("parquet", {}),
    ("trl-jsonl", {"margin": "agreement", "min_votes": 20}),
]


def campaign_spec(models: int, prompts: int) -> dict:
    names = [f"bench-model-{i:02d}" for i in range(models)]
    body = "Here is a **Markdown** answer with a list:\n\n" + "\n".join(f"- point {k}" for k in range(8))
    return {
        "slug": "bench",
        "title": "Benchmark",
        "status": "active",
        "dimensions": [{"key": "helpfulness", "label": "Helpfulness"}],
        "models": [{"name": n, "backend": "static"} for n in names],
        "prompts": [
            {
                "external_id": f"p{p}",
                "prompt": f"Benchmark question {p}: explain something.",
                "category": ("coding", "facts", "writing")[p % 3],
                "language": "en",
                "responses": {n: f"{body}\n\nAnswer {i}/{p}." for i, n in enumerate(names)},
            }
            for p in range(prompts)
        ],
    }


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- children: one measurement per process, so that each peak RSS is its own ---------------------


def child_export(fmt: str, filters: dict, output: str) -> dict:
    import django

    django.setup()
    from arena.exports.filters import ExportFilters
    from arena.exports.writer import write_export
    from arena.models import Campaign

    campaign = Campaign.objects.get(slug="bench")
    before = peak_rss_mb()
    started = time.perf_counter()
    stats = write_export(campaign, fmt, ExportFilters.parse(filters), output)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rss_before_mb": before,
        "peak_rss_mb": peak_rss_mb(),
        "rows_read": stats.rows_done,
        "records": stats.rows_written,
        "bytes": os.path.getsize(output),
    }


def child_import(prompts: int, responses: int) -> dict:
    import django

    django.setup()
    from arena.models import Campaign, ModelEntry
    from arena.services.imports import import_prompts, parse_prompt_file

    names = [f"import-model-{i}" for i in range(responses)]
    campaign = Campaign.objects.create(slug=f"imports-{responses}", title="Import benchmark")
    campaign.contenders.set([ModelEntry.objects.get_or_create(name=n)[0] for n in names])
    lines = []
    for i in range(prompts):
        record = {
            "external_id": f"q{i}",
            "prompt": f"Imported question {i}: what is {i} squared?",
            "category": ("coding", "facts", "writing")[i % 3],
            "language": "en",
            "responses": {n: f"The answer is **{i * i}** ({n})." for n in names},
        }
        lines.append(json.dumps(record))
    data = "\n".join(lines).encode()
    before = peak_rss_mb()
    started = time.perf_counter()
    rows = parse_prompt_file("prompts.jsonl", data)
    parsed = time.perf_counter() - started
    summary = import_prompts(campaign, rows)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "parse_seconds": parsed,
        "rss_before_mb": before,
        "peak_rss_mb": peak_rss_mb(),
        "summary": str(summary),
        "bytes": len(data),
    }


def run_child(env: dict, *args: str) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- the benchmark --------------------------------------------------------------------------------


def seed(pg_url: str, env: dict, votes: int, tmp: Path) -> None:
    spec = tmp / "bench.json"
    spec.write_text(json.dumps(campaign_spec(20, 200)))
    stack.manage(env, "load_campaign", str(spec), timeout=600)
    started = time.perf_counter()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        campaign = conn.execute("SELECT id FROM arena_campaign WHERE slug = 'bench'").fetchone()[0]
        # Plain indexes are dropped during the load and built again after it: much faster than
        # maintaining them row by row. Constraint indexes (primary and unique keys) stay.
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('arena_battle', 'arena_vote') "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint)"
        ).fetchall()
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        # Integers only, so formatting the script is safe; a multi-statement script takes no parameters.
        conn.execute((SEED_SQL % {"campaign": int(campaign), "votes": int(votes), "voters": 20_000}).encode())
        for _, definition in indexes:
            conn.execute(definition)
        conn.execute("ANALYZE")
        stored = conn.execute("SELECT count(*) FROM arena_vote").fetchone()[0]
    print(f"seeded {stored:,} votes in {time.perf_counter() - started:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--prompts", type=int, default=100_000)
    parser.add_argument(
        "--import-responses",
        type=int,
        default=2,
        help="models answering each imported prompt in the second import run (0: skip it)",
    )
    parser.add_argument("--keep-files", type=Path, help="copy the export files into this folder")
    parser.add_argument("--child-export", nargs=3, metavar=("FORMAT", "FILTERS", "OUTPUT"), help=argparse.SUPPRESS)
    parser.add_argument("--child-import", nargs=2, type=int, metavar=("PROMPTS", "RESPONSES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_export:
        fmt, filters, output = args.child_export
        print(json.dumps(child_export(fmt, json.loads(filters), output)))
        return
    if args.child_import:
        print(json.dumps(child_import(*args.child_import)))
        return

    with tempfile.TemporaryDirectory() as tmpdir, stack.postgres_database() as pg_url:
        tmp = Path(tmpdir)
        env = stack.base_env(pg_url, redis_url=None, LOG_LEVEL="WARNING", ARENA_EXPORT_DIR=str(tmp / "exports"))
        stack.manage(env, "migrate", "--noinput", "-v", "0")
        seed(pg_url, env, args.votes, tmp)
        print(f"\nexports of {args.votes:,} votes (each in its own process; targets: < 30 s, < 300 MB peak RSS)")
        for fmt, filters in EXPORTS:
            output = tmp / f"bench-{fmt}.{fmt.rsplit('-', 1)[-1]}"
            result = run_child(env, "--child-export", fmt, json.dumps(filters), str(output))
            label = fmt + (" " + " ".join(f"{k}={v}" for k, v in filters.items()) if filters else "")
            print(
                f"  {label:<44} {result['seconds']:6.1f} s  peak RSS {result['peak_rss_mb']:6.0f} MB "
                f"(Django loaded: {result['rss_before_mb']:.0f} MB)  {result['records']:>9,} records  "
                f"{result['bytes'] / 1e6:7.0f} MB file"
            )
            if args.keep_files:
                args.keep_files.mkdir(parents=True, exist_ok=True)
                os.replace(output, args.keep_files / output.name)
            else:
                output.unlink()
        print(f"\nimport of {args.prompts:,} prompts through arena.services.imports (target: < 30 s)")
        for responses in sorted({0, args.import_responses}):
            result = run_child(env, "--child-import", str(args.prompts), str(responses))
            print(
                f"  {responses} responses per prompt: {result['seconds']:6.1f} s "
                f"(parsing {result['parse_seconds']:.1f} s)  peak RSS {result['peak_rss_mb']:.0f} MB  "
                f"file {result['bytes'] / 1e6:.0f} MB  -> {result['summary']}"
            )


if __name__ == "__main__":
    main()
