"""Benchmark: voters doing "get next battle, vote" against the distributed mode over HTTP.

Each voter votes as the voting page does (--flow in-place: the vote's reply carries the next battle,
one request a cycle), or loads the battle page before each vote (--flow pages, two requests a cycle).

Starts a PostgreSQL server of its own with the deployment's settings (bench/pg_cluster.py; or
uses the machine's server with --postgres local), sets up a fresh database with a campaign (20
models, 200 prompts) and N votes already in it (1,000,000 by default, inserted in bulk with SQL),
starts the web server (Granian WSGI as
deployed, or uvicorn with --server uvicorn) and a Celery worker on Redis, then runs many concurrent
voters (asyncio + bench/lean_http.py, each with its own cookies) for a fixed time and prints cycles
per second and p50/p99 latencies. Finally it checks that every acknowledged vote is stored exactly
once.

    .venv/bin/python bench/vote_cycle.py [--votes 1000000] [--seconds 30] [--concurrency 16] [--web-workers 2]

While tuning, ``--postgres local --keep-database NAME`` seeds a database of that name on the server
at ARENA_TEST_PG_ADMIN_URL once and reuses it on later runs (the votes of each run stay in it); the
reported figures should come from a fresh database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import psycopg
import uvloop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import pg_cluster  # noqa: E402
from bench.lean_http import HTTPError, LeanClient  # noqa: E402
from tests import stack  # noqa: E402

SEED_SQL = """
INSERT INTO arena_voter (public_id, ip_hash, excluded, created_at)
SELECT 'bench-' || g, '', false, now() FROM generate_series(1, %(voters)s) g;

CREATE TEMP TABLE bench_items AS
SELECT row_number() OVER (ORDER BY id) - 1 AS n, id, prompt_id, response_lo_id, response_hi_id, model_lo_id, model_hi_id
FROM arena_item WHERE campaign_id = %(campaign)s;

INSERT INTO arena_battle (id, campaign_id, voter_id, prompt_id, item_id, left_id, right_id, status, flagged, created_at,
                          conversation)
SELECT md5('b' || g), %(campaign)s, v.min_id + (g %% %(voters)s), i.prompt_id, i.id, i.response_lo_id, i.response_hi_id,
       'voted', false, now() - interval '1 day', '{}'::jsonb
FROM generate_series(1, %(votes)s) g
JOIN bench_items i ON i.n = g %% (SELECT count(*) FROM bench_items)
CROSS JOIN (SELECT min(id) AS min_id FROM arena_voter) v;

INSERT INTO arena_vote (battle_id, campaign_id, voter_id, prompt_id, left_model_id, right_model_id, winner_id,
                        verdict, scores, duration_ms, created_at, folded)
SELECT b.id, b.campaign_id, b.voter_id, b.prompt_id, lo.model_id, hi.model_id,
       CASE WHEN abs(hashtext(b.id)) %% 10 = 0 THEN NULL
            WHEN abs(hashtext(b.id)) %% 10 < 6 THEN lo.model_id ELSE hi.model_id END,
       CASE WHEN abs(hashtext(b.id)) %% 10 = 0 THEN 'tie'
            WHEN abs(hashtext(b.id)) %% 10 < 6 THEN 'left' ELSE 'right' END,
       '{}'::jsonb, 5000, b.created_at, false
FROM arena_battle b JOIN arena_response lo ON lo.id = b.left_id JOIN arena_response hi ON hi.id = b.right_id
WHERE b.campaign_id = %(campaign)s;

UPDATE arena_item i SET vote_count = c.n FROM (
  SELECT item_id, count(*) AS n FROM arena_battle WHERE campaign_id = %(campaign)s GROUP BY item_id
) c WHERE c.item_id = i.id;
ANALYZE;
"""


def campaign_spec(models: int, prompts: int) -> dict:
    names = [f"bench-model-{i:02d}" for i in range(models)]
    body = "Here is a **Markdown** answer with a list:\n\n" + "\n".join(f"- point {k}" for k in range(8))
    return {
        "slug": "bench",
        "title": "Benchmark",
        "status": "active",
        "models": [{"name": n, "backend": "static"} for n in names],
        "prompts": [
            {
                "external_id": f"p{p}",
                "prompt": f"Benchmark question {p}: explain something.",
                "responses": {n: f"{body}\n\nAnswer {i}/{p}." for i, n in enumerate(names)},
            }
            for p in range(prompts)
        ],
    }


def seed(pg_url: str, env: dict, votes: int, tmp: Path, rebuild: bool = True) -> None:
    """The campaign and ``votes`` votes, stored as already folded; then ``rebuild_ratings`` counts them
    (a recount, seconds) unless ``rebuild`` is False. Folding a million unfolded votes would rewrite
    every vote row instead (a minute or two, see bench/recompute.py)."""
    spec = tmp / "bench.json"
    spec.write_text(json.dumps(campaign_spec(20, 200)))
    stack.manage(env, "load_campaign", str(spec), timeout=600)
    started = time.perf_counter()
    script = SEED_SQL.replace("b.created_at, false", "b.created_at, true")
    assert script != SEED_SQL, "SEED_SQL changed: seed its votes as folded"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        campaign = conn.execute("SELECT id FROM arena_campaign WHERE slug = 'bench'").fetchone()[0]
        # Integers only, so formatting the script is safe; a multi-statement script takes no parameters.
        conn.execute((script % {"campaign": int(campaign), "votes": int(votes), "voters": 20_000}).encode())
        stored = conn.execute("SELECT count(*) FROM arena_vote").fetchone()[0]
    print(f"seeded {stored:,} votes in {time.perf_counter() - started:.1f} s")
    if rebuild:
        started = time.perf_counter()
        stack.manage(env, "rebuild_ratings", "bench", timeout=1800)
        print(f"rebuilt the rating aggregates from {stored:,} votes in {time.perf_counter() - started:.1f} s")
    settle(pg_url)


def settle(pg_url: str) -> None:
    """Leave the database as a million votes gathered over weeks would be: vacuumed (hint bits set,
    visibility map written) and checkpointed, so the run does not share the machine with autovacuum's
    first pass over the fresh rows or with the checkpoint writing them out. (It takes a second or two
    here; no difference in the figures could be told from the machine's noise.)"""
    started = time.perf_counter()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("VACUUM (FREEZE, ANALYZE)")
        conn.execute("CHECKPOINT")
    print(f"vacuumed and checkpointed in {time.perf_counter() - started:.1f} s")


async def voter(client: LeanClient, stop_at: float, flow: str, cycles: list, pages: list, posts: list, errors: list):
    """One voter's cycles: "in-place" as the voting page does them (arena/static/arena/app.js): the
    battle page once, then votes whose replies carry the next battle, one request a cycle; "pages" as
    a client that loads the battle page before each vote, two requests a cycle."""
    battle_id = None
    while time.perf_counter() < stop_at:
        t0 = time.perf_counter()
        try:
            loads_page = battle_id is None or flow == "pages"
            if loads_page:
                page = await client.get("/c/bench/vote/")
                if page.status != 200:
                    errors.append(page.status)
                    continue
                battle_id = stack.BATTLE_ACTION.search(page.text).group(1)
            t1 = time.perf_counter()
            form = {"verdict": "left", "next_battle": "1"} if flow == "in-place" else {"verdict": "left"}
            response = await client.post(
                f"/b/{battle_id}/vote",
                data=form,
                headers={
                    "X-CSRFToken": client.cookies["csrftoken"],
                    "Accept": "application/json",
                    "Referer": client.base_url + "/",
                },
            )
            t2 = time.perf_counter()
            if response.status != 200:
                errors.append(response.status)
                battle_id = None
                continue
            if loads_page:
                pages.append(t1 - t0)
            posts.append(t2 - t1)
            cycles.append((t2 - t0, battle_id))
            upcoming = json.loads(response.text).get("next_battle") if flow == "in-place" else None
            battle_id = upcoming["id"] if upcoming else None
        except HTTPError as error:
            errors.append(str(error).split(":")[2].strip())
            battle_id = None


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000 if len(values) > 1 else float("nan")


async def drive(url: str, concurrency: int, seconds: float, flow: str) -> tuple[list, list, list, list]:
    cycles, pages, posts, errors = [], [], [], []
    clients = [LeanClient(url) for _ in range(concurrency)]
    stop_at = time.perf_counter() + seconds
    await asyncio.gather(*(voter(c, stop_at, flow, cycles, pages, posts, errors) for c in clients))
    await asyncio.gather(*(c.aclose() for c in clients))
    return cycles, pages, posts, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--concurrency", type=int, default=16, help="voters, each one cycle after another")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8, help="Granian blocking threads per worker")
    parser.add_argument(
        "--server",
        choices=["granian", "uvicorn"],
        default="granian",
        help="granian: WSGI, as deployed for the pages; uvicorn: ASGI, as in `make run`",
    )
    parser.add_argument(
        "--flow",
        choices=["in-place", "pages"],
        default="in-place",
        help="in-place: as the voting page votes (one request a cycle: the vote's reply carries the next battle); "
        "pages: the battle page, then the vote (two requests a cycle, as before the page voted in place)",
    )
    parser.add_argument("--skip-rebuild", action="store_true", help="leave the seeded votes out of the ratings")
    parser.add_argument(
        "--postgres",
        choices=["deployment", "local"],
        default="deployment",
        help="deployment: a private server with docker-compose.yml's settings; "
        "local: the server at ARENA_TEST_PG_ADMIN_URL as it is",
    )
    parser.add_argument(
        "--keep-database", metavar="NAME", help="with --postgres local: seed a database of this name once and reuse it"
    )
    args = parser.parse_args()
    if args.keep_database and args.postgres != "local":
        parser.error("--keep-database needs --postgres local")

    with ExitStack() as stack_of_servers:
        admin_url = stack.PG_ADMIN_URL
        if args.postgres == "deployment":
            settings = pg_cluster.deployment_settings()
            listed = ", ".join(f"{name}={value}" for name, value in settings.items())
            print(f"PostgreSQL with docker-compose.yml's settings: {listed}")
            admin_url = stack_of_servers.enter_context(pg_cluster.private_server(stack.free_port(), settings))
        run(args, admin_url)


def run(args: argparse.Namespace, admin_url: str) -> None:
    if args.keep_database:
        database = kept_database(admin_url, args.keep_database)
    else:
        database = stack.postgres_database(admin_url)
    with tempfile.TemporaryDirectory() as tmpdir, database as pg_url:
        tmp = Path(tmpdir)
        stack.flush_redis()
        # Every simulated voter comes from 127.0.0.1 and votes far faster than a person: the rate
        # limits (which would answer 429) are lifted for the benchmark; bench/load.py keeps per-IP ones.
        limits = {
            name: "100000000"
            for name in (
                "ARENA_VOTE_RATE_PER_MINUTE",
                "ARENA_BATTLE_RATE_PER_MINUTE",
                "ARENA_IP_VOTE_RATE_PER_MINUTE",
                "ARENA_IP_BATTLE_RATE_PER_MINUTE",
            )
        }
        env = stack.base_env(
            pg_url, STATIC_ROOT=str(tmp / "static"), ARENA_RECOMPUTE_DEBOUNCE="5", LOG_LEVEL="WARNING", **limits
        )
        stack.manage(env, "migrate", "--noinput", "-v", "0")
        stack.manage(env, "collectstatic", "--noinput", "-v", "0")
        if not (args.keep_database and _seeded(pg_url)):
            seed(pg_url, env, args.votes, tmp, rebuild=not args.skip_rebuild)
        port = stack.free_port()
        argv = web_server_argv(args.server, port, args.web_workers, args.threads)
        web = stack.Process("web", argv, env, tmp)
        worker = stack.start_worker(env, tmp, concurrency=1)
        try:
            url = f"http://127.0.0.1:{port}"
            stack.wait_until(lambda: _healthy(url), timeout=60, message="web")
            uvloop.run(drive(url, 8, 3, args.flow))  # warm-up
            speed = cpu_speed()
            cpu_before = cpu_budget(web, worker)
            cycles, pages, posts, errors = uvloop.run(drive(url, args.concurrency, args.seconds, args.flow))
            cpu_after = cpu_budget(web, worker)
        finally:
            web.stop()
            worker.stop()
            if errors_seen(web):
                print("web log tail:\n" + web.log()[-3000:])
        with psycopg.connect(pg_url) as conn:
            ids = [c[1] for c in cycles]
            stored = conn.execute("SELECT count(*) FROM arena_vote WHERE battle_id = ANY(%s)", (ids,)).fetchone()[0]
            total = conn.execute("SELECT count(*) FROM arena_vote").fetchone()[0]
    lat = [c[0] for c in cycles]
    print(
        f"\nvote cycle: {args.concurrency} concurrent voters, {args.seconds:.0f} s, "
        f"{args.web_workers} {args.server} workers, {args.votes:,} votes already in the campaign, {args.flow} flow"
    )
    print(f"  cycles/s       {len(cycles) / args.seconds:8.1f}")
    print(f"  cycle p50/p99  {pct(lat, 50):6.1f} / {pct(lat, 99):6.1f} ms")
    print(f"  page  p50/p99  {pct(pages, 50):6.1f} / {pct(pages, 99):6.1f} ms")
    print(f"  vote  p50/p99  {pct(posts, 50):6.1f} / {pct(posts, 99):6.1f} ms")
    if cycles:
        spent = {name: 1000 * (cpu_after[name] - cpu_before[name]) / len(cycles) for name in cpu_before}
        print("  CPU per cycle  " + ", ".join(f"{name} {ms:.2f}" for name, ms in spent.items()) + " ms")
    print(f"  machine speed  {speed:.2f} s for the fixed loop of bench/vote_cycle.cpu_speed (lower is faster)")
    print(f"  errors         {len(errors)} ({sorted(set(map(str, errors)))})")
    print(
        f"  acknowledged votes stored exactly once: {stored == len(set(ids)) == len(ids)} "
        f"({stored:,} of {len(ids):,}; table now {total:,})"
    )


def web_server_argv(server: str, port: int, workers: int, threads: int = 8) -> list[str]:
    """The HTTP server as docs/deploy.md runs it: Granian (WSGI) for the pages, or uvicorn (ASGI)."""
    if server == "granian":
        return stack.granian_argv(port, workers=workers, threads=threads)
    return [*stack.uvicorn_argv(port, workers=workers), "--no-access-log"]


def _proc_stats() -> list[tuple[int, int, str, float]]:
    """(pid, parent pid, command name, CPU seconds) of every process (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    stats = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        stats.append((int(entry.name), int(fields[1]), name, (int(fields[11]) + int(fields[12])) / ticks))
    return stats


def cpu_seconds(root: int) -> float:
    """CPU time used so far by a process and all its descendants (the web server and its workers)."""
    stats = _proc_stats()
    children: dict[int, list[int]] = {}
    for pid, ppid, _, _ in stats:
        children.setdefault(ppid, []).append(pid)
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        tree.add(pid)
        todo.extend(children.get(pid, []))
    return sum(cpu for pid, _, _, cpu in stats if pid in tree)


def cpu_budget(web: stack.Process, worker: stack.Process) -> dict[str, float]:
    """CPU seconds so far of each part of the benchmark, and of the machine (busy, idle, stolen by the host)."""
    with open("/proc/stat") as stat:
        ticks = [int(n) for n in stat.readline().split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    return {
        "web": cpu_seconds(web.popen.pid),
        "PostgreSQL": cpu_seconds_named("postgres"),
        "worker": cpu_seconds(worker.popen.pid),
        "Redis": cpu_seconds_named("redis-server"),
        "load generator": sum(os.times()[:2]),
        "machine": (sum(ticks[:8]) - ticks[3] - ticks[4] - ticks[7]) / hz,
        "idle": (ticks[3] + ticks[4]) / hz,
        "stolen": ticks[7] / hz,
    }


def cpu_speed() -> float:
    """Seconds this machine takes for a fixed loop of Python (5 million additions), best of three:
    its speed varies by half from one hour to the next here, and the figures with it."""
    best = float("inf")
    for _ in range(3):
        started, total = time.process_time(), 0
        for n in range(5_000_000):
            total += n
        best = min(best, time.process_time() - started)
    return best


def cpu_seconds_named(name: str) -> float:
    """CPU time used so far by the processes of this command name (PostgreSQL's backends)."""
    return sum(cpu for _, _, command, cpu in _proc_stats() if command == name)


@contextmanager
def kept_database(admin_url: str, name: str) -> Iterator[str]:
    """A database that outlives the run: created if missing, never dropped."""
    if not name.replace("_", "").isalnum():
        raise SystemExit(f"--keep-database: {name!r} is not a plain name")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            admin.execute(f'CREATE DATABASE "{name}"')
    yield admin_url.rsplit("/", 1)[0] + f"/{name}"


def _seeded(pg_url: str) -> bool:
    with psycopg.connect(pg_url) as conn:
        return conn.execute("SELECT count(*) FROM arena_vote").fetchone()[0] > 0


def errors_seen(web: stack.Process) -> bool:
    return "Traceback" in web.log() or "ERROR" in web.log()


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    main()
