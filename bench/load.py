"""Load benchmark: hundreds of concurrent voters doing "next battle, vote" against the distributed mode.

Sets up the stack the way bench/vote_cycle.py does (and with its functions): a fresh PostgreSQL
database with a campaign of 20 models x 200 prompts and --votes votes already in it, Granian (WSGI,
as deployed for the pages) worker processes, a Celery worker on Redis. Then --voters simulated
voters (asyncio + bench/lean_http.py, each with its own cookies, connection and client address)
vote for --seconds. It reports throughput, p50/p99 latencies and the error rate, and then checks the
two promises that matter under load:

1. every acknowledged vote (a 200 answer) is in the database exactly once;
2. after the recompute (the one the votes triggered, or one beat-style sweep if none came), the
   leaderboard snapshot counts every vote in the database.

The voters are machines: they vote as fast as the server answers, far faster than a person can read
two answers, so the per-voter rate limits are raised for the run (they are still counted, so their
cost is measured). Each voter sends its own X-Forwarded-For address (the site trusts it here, as
behind its proxy), so the per-IP limits keep their defaults and are not hit.

bench/live_under_load.py runs these voters beside live battles (its functions come from here).

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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import uvloop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.lean_http import HTTPError, LeanClient  # noqa: E402
from bench.vote_cycle import _healthy, errors_seen, pct, seed, web_server_argv  # noqa: E402
from tests import stack  # noqa: E402

VERDICTS = ("left", "right", "tie")


def raise_open_files_limit(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, wanted), hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def client_address(n: int) -> str:
    """Voter n's own address (sent as X-Forwarded-For), so that the per-IP limits apply per voter."""
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


@dataclass
class Tally:
    """Every vote cycle and error of a run, with its times (time.monotonic), so that a window of the
    run can be cut out (:meth:`window`)."""

    cycles: list[tuple[float, float, float, str]] = field(default_factory=list)  # (start, page, vote, battle)
    errors: list[tuple[float, str]] = field(default_factory=list)

    @property
    def acked(self) -> list[str]:
        return [battle for *_, battle in self.cycles]

    def window(self, start: float, end: float) -> Tally:
        """The cycles and errors that started in [start, end)."""
        return Tally([c for c in self.cycles if start <= c[0] < end], [e for e in self.errors if start <= e[0] < end])

    def figures(self, seconds: float) -> dict:
        """Throughput and latencies (ms) over ``seconds`` of running."""
        cycles = [t2 - t0 for t0, _, t2, _ in self.cycles]
        pages = [t1 - t0 for t0, t1, _, _ in self.cycles]
        votes = [t2 - t1 for _, t1, t2, _ in self.cycles]
        errors = collections.Counter(kind for _, kind in self.errors)
        n = len(self.cycles)
        return {
            "seconds": round(seconds, 1),
            "cycles": n,
            "cycles_per_s": round(n / seconds, 1),
            "requests_per_s": round(2 * n / seconds, 1),
            "cycle_p50_ms": round(pct(cycles, 50), 1),
            "cycle_p99_ms": round(pct(cycles, 99), 1),
            "page_p50_ms": round(pct(pages, 50), 1),
            "page_p99_ms": round(pct(pages, 99), 1),
            "vote_p50_ms": round(pct(votes, 50), 1),
            "vote_p99_ms": round(pct(votes, 99), 1),
            "errors": dict(errors),
            "error_rate": round(len(self.errors) / max(1, n + len(self.errors)), 5),
        }


async def voter(n: int, url: str, keep_going: Callable[[], bool], tally: Tally, slug: str = "bench") -> None:
    """One simulated voter: "next battle, vote" on its own connection until ``keep_going()`` is false."""
    client = LeanClient(url, timeout=60)
    sent = {"X-Forwarded-For": client_address(n)}
    try:
        while keep_going():
            t0 = time.monotonic()
            try:
                page = await client.get(f"/c/{slug}/vote/", headers=sent)
                t1 = time.monotonic()
                if page.status != 200:
                    tally.errors.append((t0, f"page {page.status}"))
                    continue
                battle_id = stack.BATTLE_ACTION.search(page.text).group(1)
                answer = await client.post(
                    f"/b/{battle_id}/vote",
                    data={"verdict": VERDICTS[n % 3]},
                    headers={
                        **sent,
                        "X-CSRFToken": client.cookies["csrftoken"],
                        "Accept": "application/json",
                        "Referer": url + "/",
                    },
                )
                t2 = time.monotonic()
            except HTTPError as error:
                tally.errors.append((t0, type(error.__cause__).__name__))
                continue
            if answer.status != 200:
                tally.errors.append((t0, f"vote {answer.status}"))
                continue
            tally.cycles.append((t0, t1, t2, battle_id))
    finally:
        await client.aclose()


async def drive(url: str, voters: int, seconds: float, first: int = 0) -> Tally:
    """``voters`` voters (numbered from ``first``) for ``seconds``."""
    tally = Tally()
    stop_at = time.monotonic() + seconds
    await asyncio.gather(*(voter(first + i, url, lambda: time.monotonic() < stop_at, tally) for i in range(voters)))
    return tally


def stored_exactly_once(pg_url: str, acked: list[str]) -> bool:
    """Every acknowledged battle has exactly one vote row (and no battle was acknowledged twice)."""
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT battle_id, count(*) FROM arena_vote WHERE battle_id = ANY(%s) GROUP BY battle_id", (acked,)
        ).fetchall()
    return len(rows) == len(set(acked)) == len(acked) and all(n == 1 for _, n in rows)


def campaign_votes(pg_url: str, slug: str) -> int:
    with psycopg.connect(pg_url) as conn:
        query = "SELECT count(*) FROM arena_vote v JOIN arena_campaign c ON c.id = v.campaign_id WHERE c.slug = %s"
        return conn.execute(query, (slug,)).fetchone()[0]


def snapshot_votes(url: str, slug: str = "bench") -> int | None:
    try:
        answer = httpx.get(f"{url}/c/{slug}/leaderboard.json", timeout=10)
    except httpx.HTTPError:
        return None
    return answer.json().get("n_votes") if answer.status_code == 200 else None


def snapshot_catches_up(url: str, env: dict[str, str], slug: str, total: int) -> tuple[bool, float, bool]:
    """Wait for the leaderboard of ``slug`` to count ``total`` votes: first for the recompute the votes
    triggered, then after one beat-style sweep. Returns (covered, seconds waited, needed a sweep)."""
    waited = time.monotonic()
    covered = _wait_for_snapshot(url, slug, total, 30)
    swept = False
    if not covered:  # no vote-triggered recompute covered the end: one beat-style sweep
        swept = True
        subprocess.run(
            [
                sys.executable,
                "manage.py",
                "shell",
                "-c",
                "from arena.leaderboards.tasks import recompute_active_campaigns as t; t.delay()",
            ],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        covered = _wait_for_snapshot(url, slug, total, 120)
    return covered, time.monotonic() - waited, swept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voters", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--votes", type=int, default=100_000, help="votes seeded before the run")
    parser.add_argument("--web-workers", type=int, default=2, help="Granian worker processes")
    parser.add_argument("--threads", type=int, default=8, help="Granian blocking threads per worker")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    files = raise_open_files_limit(4 * args.voters + 256)

    with tempfile.TemporaryDirectory() as tmpdir, stack.postgres_database() as pg_url:
        tmp = Path(tmpdir)
        stack.flush_redis()
        env = stack.base_env(pg_url, **load_settings(tmp))
        stack.manage(env, "migrate", "--noinput", "-v", "0")
        stack.manage(env, "collectstatic", "--noinput", "-v", "0")
        seed(pg_url, env, args.votes, tmp)
        port = stack.free_port()
        web = stack.Process("web", web_server_argv("granian", port, args.web_workers, args.threads), env, tmp)
        worker = stack.start_worker(env, tmp, concurrency=1)
        url = f"http://127.0.0.1:{port}"
        try:
            stack.wait_until(lambda: _healthy(url), timeout=60, message="web")
            uvloop.run(drive(url, 32, 3, first=100_000))  # warm-up: other voters, not counted
            before = campaign_votes(pg_url, "bench")
            started = time.monotonic()
            tally = uvloop.run(drive(url, args.voters, args.seconds))
            elapsed = time.monotonic() - started
            stored_once = stored_exactly_once(pg_url, tally.acked)  # promise 1
            total = campaign_votes(pg_url, "bench")
            covered, catch_up, swept = snapshot_catches_up(url, env, "bench", total)  # promise 2
        finally:
            web.stop()
            worker.stop()
            if errors_seen(web):
                print("web log tail:\n" + web.log()[-3000:])

    run = tally.figures(elapsed)
    figures = {
        "voters": args.voters,
        "web_server": f"granian, {args.web_workers} workers x {args.threads} threads",
        "seeded_votes": args.votes,
        "open_files_limit": files,
        **run,
        "acked_votes": len(tally.acked),
        "votes_in_table_before_after": [before, total],
        "acked_votes_stored_exactly_once": stored_once,
        "snapshot_covers_every_vote": covered,
        "snapshot_catch_up_s": round(catch_up, 1),
        "needed_a_sweep": swept,
    }
    print(
        f"\nload: {args.voters} concurrent voters for {elapsed:.0f} s, {figures['web_server']}, "
        f"{args.votes:,} votes seeded"
    )
    print_run(run)
    print(
        f"  acknowledged votes stored exactly once: {stored_once} ({len(tally.acked):,} acknowledged; "
        f"table {before:,} -> {total:,})"
    )
    print(
        f"  leaderboard snapshot covers all {total:,} votes: {covered} (after {catch_up:.1f} s"
        f"{', one sweep' if swept else ''})"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    if not (stored_once and covered):
        sys.exit(1)


def load_settings(tmp: Path, **extra: str) -> dict[str, str]:
    """Environment for the stack under load: machine voters (per-voter limits raised, per-IP ones kept,
    the address taken from X-Forwarded-For), a 5 s recompute debounce, warnings only."""
    return {
        "STATIC_ROOT": str(tmp / "static"),
        "ARENA_RECOMPUTE_DEBOUNCE": "5",
        "LOG_LEVEL": "WARNING",
        "ARENA_TRUST_X_FORWARDED_FOR": "true",
        "ARENA_VOTE_RATE_PER_MINUTE": "1000000",
        "ARENA_BATTLE_RATE_PER_MINUTE": "1000000",
        **extra,
    }


def print_run(run: dict, indent: str = "  ") -> None:
    n_errors = sum(run["errors"].values())
    print(f"{indent}throughput      {run['cycles_per_s']:8.1f} vote cycles/s ({run['requests_per_s']:.0f} requests/s)")
    print(f"{indent}cycle p50/p99   {run['cycle_p50_ms']:6.1f} / {run['cycle_p99_ms']:6.1f} ms")
    print(f"{indent}page  p50/p99   {run['page_p50_ms']:6.1f} / {run['page_p99_ms']:6.1f} ms")
    print(f"{indent}vote  p50/p99   {run['vote_p50_ms']:6.1f} / {run['vote_p99_ms']:6.1f} ms")
    print(
        f"{indent}errors          {n_errors} of {run['cycles'] + n_errors} cycles "
        f"({100 * run['error_rate']:.2f} %) {run['errors'] or ''}"
    )


def _wait_for_snapshot(url: str, slug: str, total: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if snapshot_votes(url, slug) == total:
            return True
        time.sleep(1)
    return False


if __name__ == "__main__":
    main()
