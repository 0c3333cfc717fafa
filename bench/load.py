"""Load benchmark: hundreds of concurrent voters doing "next battle, vote" against the distributed mode.

Sets up the stack the way bench/vote_cycle.py does (and with its functions): a fresh PostgreSQL
database with a campaign of 20 models x 200 prompts and --votes votes already in it, uvicorn worker
processes, a Celery worker on Redis. Then --voters simulated voters (asyncio + httpx, each with its
own cookie jar and its own client address) vote for --seconds. It reports throughput, p50/p99
latencies and the error rate, and then checks the two promises that matter under load:

1. every acknowledged vote (a 200 answer) is in the database exactly once;
2. after the recompute (the one the votes triggered, or one beat-style sweep if none came), the
   leaderboard snapshot counts every vote in the database.

The voters are machines: they vote as fast as the server answers, far faster than a person can read
two answers, so the per-voter rate limits are raised for the run (they are still counted, so their
cost is measured). Each voter sends its own X-Forwarded-For address (the site trusts it here, as
behind its proxy), so the per-IP limits keep their defaults and are not hit.

    .venv/bin/python bench/load.py [--voters 500] [--seconds 30] [--votes 100000] [--web-workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from vote_cycle import _healthy, errors_seen, pct, seed  # noqa: E402

from tests import stack  # noqa: E402


def raise_open_files_limit(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, wanted), hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


class Tally:
    def __init__(self) -> None:
        self.acked: list[str] = []
        self.cycles: list[float] = []
        self.pages: list[float] = []
        self.votes: list[float] = []
        self.errors: collections.Counter = collections.Counter()


async def voter(n: int, url: str, stop_at: float, tally: Tally) -> None:
    address = f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits,
                                 headers={"X-Forwarded-For": address}) as client:  # fmt: skip
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            try:
                page = await client.get("/c/bench/vote/")
                t1 = time.perf_counter()
                if page.status_code != 200:
                    tally.errors[f"page {page.status_code}"] += 1
                    continue
                battle_id = stack.BATTLE_ACTION.search(page.text).group(1)
                answer = await client.post(
                    f"/b/{battle_id}/vote",
                    data={"verdict": ("left", "right", "tie")[n % 3]},
                    headers={"X-CSRFToken": client.cookies["csrftoken"], "Accept": "application/json", "Referer": url},
                )
                t2 = time.perf_counter()
            except httpx.HTTPError as error:
                tally.errors[type(error).__name__] += 1
                continue
            if answer.status_code != 200:
                tally.errors[f"vote {answer.status_code}"] += 1
                continue
            tally.acked.append(battle_id)
            tally.pages.append(t1 - t0)
            tally.votes.append(t2 - t1)
            tally.cycles.append(t2 - t0)


async def drive(url: str, voters: int, seconds: float, first: int = 0) -> Tally:
    tally = Tally()
    stop_at = time.perf_counter() + seconds
    await asyncio.gather(*(voter(first + i, url, stop_at, tally) for i in range(voters)))
    return tally


def snapshot_votes(url: str) -> int | None:
    try:
        answer = httpx.get(f"{url}/c/bench/leaderboard.json", timeout=10)
    except httpx.HTTPError:
        return None
    return answer.json().get("n_votes") if answer.status_code == 200 else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voters", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--votes", type=int, default=100_000, help="votes seeded before the run")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    files = raise_open_files_limit(4 * args.voters + 256)

    with tempfile.TemporaryDirectory() as tmpdir, stack.postgres_database() as pg_url:
        tmp = Path(tmpdir)
        stack.flush_redis()
        env = stack.base_env(
            pg_url, STATIC_ROOT=str(tmp / "static"), ARENA_RECOMPUTE_DEBOUNCE="5", LOG_LEVEL="WARNING",
            ARENA_TRUST_X_FORWARDED_FOR="true",
            ARENA_VOTE_RATE_PER_MINUTE="1000000", ARENA_BATTLE_RATE_PER_MINUTE="1000000",
        )  # fmt: skip
        stack.manage(env, "migrate", "--noinput", "-v", "0")
        stack.manage(env, "collectstatic", "--noinput", "-v", "0")
        seed(pg_url, env, args.votes, tmp)
        port = stack.free_port()
        argv = [sys.executable, "-m", "uvicorn", "arena.asgi:application", "--host", "127.0.0.1", "--port", str(port),
                "--workers", str(args.web_workers), "--no-access-log", "--backlog", str(4 * args.voters)]  # fmt: skip
        web = stack.Process("web", argv, env, tmp)
        worker = stack.start_worker(env, tmp, concurrency=1)
        url = f"http://127.0.0.1:{port}"
        try:
            stack.wait_until(lambda: _healthy(url), timeout=60, message="web")
            asyncio.run(drive(url, 32, 3, first=100_000))  # warm-up: other voters, not counted
            with psycopg.connect(pg_url) as conn:
                before = conn.execute("SELECT count(*) FROM arena_vote").fetchone()[0]
            started = time.perf_counter()
            tally = asyncio.run(drive(url, args.voters, args.seconds))
            elapsed = time.perf_counter() - started

            # Promise 1: every acknowledged vote stored exactly once.
            with psycopg.connect(pg_url) as conn:
                rows = conn.execute(
                    "SELECT battle_id, count(*) FROM arena_vote WHERE battle_id = ANY(%s) GROUP BY battle_id",
                    (tally.acked,),
                ).fetchall()
                total = conn.execute("SELECT count(*) FROM arena_vote").fetchone()[0]
            stored_once = len(rows) == len(set(tally.acked)) == len(tally.acked) and all(n == 1 for _, n in rows)

            # Promise 2: the leaderboard catches up with every vote in the table.
            waited = time.perf_counter()
            covered = _wait_for_snapshot(url, total, 30)
            swept = False
            if not covered:  # no vote-triggered recompute covered the end: one beat-style sweep
                swept = True
                subprocess.run([sys.executable, "manage.py", "shell", "-c",
                                "from ratings.tasks import recompute_active_campaigns as t; t.delay()"],
                               cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)  # fmt: skip
                covered = _wait_for_snapshot(url, total, 120)
            catch_up = time.perf_counter() - waited
        finally:
            web.stop()
            worker.stop()
            if errors_seen(web):
                print("web log tail:\n" + web.log()[-3000:])

    n_cycles, n_errors = len(tally.cycles), sum(tally.errors.values())
    figures = {
        "voters": args.voters,
        "seconds": round(elapsed, 1),
        "web_workers": args.web_workers,
        "seeded_votes": args.votes,
        "open_files_limit": files,
        "cycles": n_cycles,
        "cycles_per_s": round(n_cycles / elapsed, 1),
        "requests_per_s": round(2 * n_cycles / elapsed, 1),
        "cycle_p50_ms": round(pct(tally.cycles, 50), 1),
        "cycle_p99_ms": round(pct(tally.cycles, 99), 1),
        "page_p50_ms": round(pct(tally.pages, 50), 1),
        "page_p99_ms": round(pct(tally.pages, 99), 1),
        "vote_p50_ms": round(pct(tally.votes, 50), 1),
        "vote_p99_ms": round(pct(tally.votes, 99), 1),
        "errors": dict(tally.errors),
        "error_rate": round(n_errors / max(1, n_cycles + n_errors), 5),
        "acked_votes": len(tally.acked),
        "votes_in_table_before_after": [before, total],
        "acked_votes_stored_exactly_once": stored_once,
        "snapshot_covers_every_vote": covered,
        "snapshot_catch_up_s": round(catch_up, 1),
        "needed_a_sweep": swept,
    }
    print(f"\nload: {args.voters} concurrent voters for {elapsed:.0f} s, {args.web_workers} uvicorn workers, "
          f"{args.votes:,} votes seeded")  # fmt: skip
    print(f"  throughput      {figures['cycles_per_s']:8.1f} vote cycles/s "
          f"({figures['requests_per_s']:.0f} requests/s)")  # fmt: skip
    print(f"  cycle p50/p99   {figures['cycle_p50_ms']:6.1f} / {figures['cycle_p99_ms']:6.1f} ms")
    print(f"  page  p50/p99   {figures['page_p50_ms']:6.1f} / {figures['page_p99_ms']:6.1f} ms")
    print(f"  vote  p50/p99   {figures['vote_p50_ms']:6.1f} / {figures['vote_p99_ms']:6.1f} ms")
    print(f"  errors          {n_errors} of {n_cycles + n_errors} cycles ({100 * figures['error_rate']:.2f} %) "
          f"{dict(tally.errors) or ''}")  # fmt: skip
    print(f"  acknowledged votes stored exactly once: {stored_once} ({len(tally.acked):,} acknowledged; "
          f"table {before:,} -> {total:,})")  # fmt: skip
    print(f"  leaderboard snapshot covers all {total:,} votes: {covered} (after {catch_up:.1f} s"
          f"{', one sweep' if swept else ''})")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    if not (stored_once and covered):
        sys.exit(1)


def _wait_for_snapshot(url: str, total: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if snapshot_votes(url) == total:
            return True
        time.sleep(1)
    return False


if __name__ == "__main__":
    main()
