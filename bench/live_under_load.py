"""Live battles under load: 100 live battles streaming over websockets while hundreds of voters vote.

The stack is the distributed mode as deployed (docs/deploy.md), on this machine: PostgreSQL; Redis
(broker, cache, channel layer); Granian (WSGI) for the pages and the API; uvicorn (arena.asgi) for
the websockets; a Celery worker with the threads pool for generation (bench/live_stream.py explains
why), a prefork one for ratings and the rest; and the local OpenAI-compatible model server
(tests/protocol_server.py) in a process of its own as the live campaign's two models. Campaigns:

- "bench", bench/vote_cycle.py's (20 models x 200 prompts, --votes seeded votes), for the voters;
- "live", two models that each stream the same --tokens words, --chunk-delay seconds apart.

The run: --voters voters (bench/load.py's, on bench/lean_http.py) do "next battle, vote" from start
to end. After --baseline seconds, --battles live battles start at once, each as a voter would: open
the battle with a POST on Granian, follow both sides on uvicorn's websocket until both are done,
vote. The voters stop when the last live battle has voted. Reported: vote cycles/s and p50/p99
before (the baseline, its first seconds left out) and during the live battles; live battles
completed and errors; time to first token (the POST sent -> the first words on the websocket); the
peak number of battles streaming at once. Checked:

1. every acknowledged vote, of both kinds of battle, is stored exactly once;
2. every live side's text, as received on the websocket, equals the model server's output;
3. each campaign's leaderboard snapshot, once recomputed, counts every vote of that campaign.

    .venv/bin/python bench/live_under_load.py [--voters 200] [--battles 100] [--baseline 25] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg
import uvloop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.lean_http import HTTPError, LeanClient  # noqa: E402
from bench.live_stream import campaign, follow, new_result, reply, sides_to_models  # noqa: E402
from bench.load import (  # noqa: E402
    VERDICTS,
    Tally,
    campaign_votes,
    load_settings,
    print_run,
    raise_open_files_limit,
    snapshot_catches_up,
    stored_exactly_once,
    voter,
)
from bench.vote_cycle import _healthy, errors_seen, pct, seed, web_server_argv  # noqa: E402
from tests import stack  # noqa: E402


async def live_battle(n: int, url: str, ws_url: str, prompt: str) -> dict:
    """One live voter: open a battle on ``prompt`` (Granian), follow both sides (uvicorn), vote (Granian)."""
    client = LeanClient(url, timeout=120)
    sent = {"X-Forwarded-For": f"10.250.{(n >> 8) & 255}.{n & 255}"}  # apart from the voters' addresses
    try:
        await client.get("/c/live/live/", headers=sent)
        form = {**sent, "X-CSRFToken": client.cookies["csrftoken"], "Accept": "application/json", "Referer": url + "/"}
        started = time.monotonic()
        opened = await client.post("/c/live/live/", data={"prompt": prompt}, headers=form)
        if opened.status != 201:
            raise RuntimeError(f"opening the battle: {opened.status} {opened.text[:200]}")
        data = json.loads(opened.body)
        result = {**new_result(data["battle"], started, time.monotonic()), "prompt": prompt}
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        await follow(ws_url + data["websocket"], cookie, url, result)
        # The page's HTTP connection sat idle while the answers streamed, and Granian closes one that
        # sends no request for 30 s (--http1-header-read-timeout): vote on a new one, as a browser would.
        await client.aclose()
        try:
            answer = await client.post(f"/b/{result['battle']}/vote", data={"verdict": VERDICTS[n % 3]}, headers=form)
            result["vote_status"] = answer.status
        except HTTPError as error:
            result["vote_status"] = repr(error)
        result["voted"] = time.monotonic()
        return result
    finally:
        await client.aclose()


async def run(url: str, ws_url: str, args: argparse.Namespace, groups: dict[int, str], pg_url: str) -> dict:
    """Voters from the start; after the baseline the live battles at once; voters stop after the last one."""
    tally, live_done = Tally(), asyncio.Event()
    began, cpu_began = time.monotonic(), cpu_seconds(groups, pg_url)
    voters = [asyncio.create_task(voter(n, url, lambda: not live_done.is_set(), tally)) for n in range(args.voters)]
    await asyncio.sleep(args.baseline)
    live_from, cpu_live_from = time.monotonic(), cpu_seconds(groups, pg_url)
    battles = [live_battle(i, url, ws_url, f"live battle {i}") for i in range(args.battles)]
    results = await asyncio.gather(*battles, return_exceptions=True)
    live_to, cpu_live_to = time.monotonic(), cpu_seconds(groups, pg_url)
    live_done.set()
    await asyncio.gather(*voters)
    return {
        "tally": tally,
        "results": results,
        "began": began,
        "live_from": live_from,
        "live_to": live_to,
        "cores_baseline": cores_used(cpu_began, cpu_live_from, live_from - began),
        "cores_live": cores_used(cpu_live_from, cpu_live_to, live_to - live_from),
    }


# One load generator on one address sends every prompt: the live prompts' flood limits are off.
NO_LIVE_LIMITS = {
    name: "0"
    for name in (
        "ARENA_LIVE_PROMPTS_PER_MINUTE",
        "ARENA_IP_LIVE_PROMPTS_PER_MINUTE",
        "ARENA_IP_LIVE_PROMPTS_PER_HOUR",
        "ARENA_CAMPAIGN_LIVE_PROMPTS_PER_MINUTE",
    )
}


def cpu_seconds(groups: dict[int, str], pg_url: str) -> dict[str, float]:
    """CPU time so far of the process groups (id -> name; the processes alive now), of the PostgreSQL
    backends connected to the benchmark's database now, and of this process (the load generator)."""
    with psycopg.connect(pg_url) as conn:
        backends = {
            row[0] for row in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        }
    used = dict.fromkeys([*groups.values(), "postgres"], 0.0)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the name: state ppid pgrp ... utime (12th) stime (13th), in clock ticks.
        name = "postgres" if int(entry) in backends else groups.get(int(fields[2]))
        if name is not None:
            used[name] += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    me = resource.getrusage(resource.RUSAGE_SELF)
    return {**used, "load generator": me.ru_utime + me.ru_stime}


def cores_used(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    return {name: round((after[name] - before[name]) / seconds, 2) for name in after}


def peak_streaming(results: list[dict]) -> int:
    """The most battles streaming at the same moment (from a side's first words to both sides done)."""
    events = []
    for r in results:
        if r["visible"] and len(r["done"]) == 2:
            events += [(min(r["visible"].values()), 1), (max(r["done"].values()), -1)]
    peak = current = 0
    for _, step in sorted(events):
        current += step
        peak = max(peak, current)
    return peak


def platform_first_token(results: list[dict], requests: list[dict], pg_url: str) -> list[float]:
    """Per side whose first words came in a delta: the model server receiving the request -> that delta (s).
    The model server answers at once, so this is what the worker, Redis and uvicorn add."""
    models = sides_to_models(pg_url, [r["battle"] for r in results])
    arrived = {(q["model"], q["body"]["messages"][-1]["content"]): q["at"] for q in requests if q.get("model")}
    samples = []
    for r in results:
        for side in r["first"]:
            if not r["snapshot_text"].get(side):
                samples.append(r["first"][side] - arrived[(models[(r["battle"], side)], r["prompt"])])
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voters", type=int, default=200, help="concurrent voters, for the whole run")
    parser.add_argument("--battles", type=int, default=100, help="concurrent live battles, after the baseline")
    parser.add_argument("--baseline", type=float, default=25, help="seconds of voters alone first")
    parser.add_argument("--ramp", type=float, default=5, help="first seconds of the baseline left out of its figures")
    parser.add_argument("--tokens", type=int, default=300, help="words each live side streams")
    parser.add_argument("--chunk-delay", type=float, default=0.03, help="seconds between the model server's words")
    parser.add_argument("--votes", type=int, default=100_000, help="votes seeded in the voters' campaign")
    parser.add_argument("--web-workers", type=int, default=2, help="Granian worker processes (pages, API)")
    parser.add_argument("--threads", type=int, default=8, help="Granian blocking threads per worker")
    parser.add_argument("--ws-workers", type=int, default=2, help="uvicorn worker processes (websockets)")
    parser.add_argument("--generation-workers", type=int, default=1, help="Celery worker processes (threads pool)")
    parser.add_argument("--generation-pool", type=int, default=20, help="DB_POOL_MAX_SIZE of each generation worker")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    raise_open_files_limit(4 * (args.voters + args.battles) + 256)
    text = reply(args.tokens, "w")

    with tempfile.TemporaryDirectory() as tmpdir, stack.postgres_database() as pg_url:
        tmp = Path(tmpdir)
        stack.flush_redis()
        env = stack.base_env(pg_url, **load_settings(tmp, **NO_LIVE_LIMITS))
        stack.manage(env, "migrate", "--noinput", "-v", "0")
        stack.manage(env, "collectstatic", "--noinput", "-v", "0")
        seed(pg_url, env, args.votes, tmp)
        model_port, web_port, ws_port = stack.free_port(), stack.free_port(), stack.free_port()
        model_url = f"http://127.0.0.1:{model_port}"
        spec = campaign("live", f"{model_url}/v1", f"chunk_delay={args.chunk_delay}", text)
        (tmp / "live.json").write_text(json.dumps(spec))
        stack.manage(env, "load_campaign", str(tmp / "live.json"))

        model_server = [sys.executable, "-m", "tests.protocol_server", "--port", str(model_port)]
        # Database pools sized to the threads that use them (a shared PostgreSQL allows 100 connections).
        processes = [
            stack.Process("models", model_server, env, tmp),
            stack.Process(
                "web",
                web_server_argv("granian", web_port, args.web_workers, args.threads),
                {**env, "DB_POOL_MAX_SIZE": str(args.threads)},
                tmp,
            ),
            stack.Process(
                "ws",
                [*stack.uvicorn_argv(ws_port, workers=args.ws_workers), "--no-access-log"],
                {**env, "DB_POOL_MAX_SIZE": "5"},
                tmp,
            ),
        ]
        gen_threads = -(-2 * args.battles // args.generation_workers) + 8  # every generation at once
        generation = [
            stack.Process(
                f"generation{i}",
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "arena",
                    "worker",
                    "-Q",
                    "generate_api",
                    "--pool",
                    "threads",
                    "-c",
                    str(gen_threads),
                    "-n",
                    f"live{i}@%h",
                    "--without-gossip",
                    "--without-mingle",
                    "-l",
                    "INFO",
                ],
                {**env, "DB_POOL_MAX_SIZE": str(args.generation_pool)},
                tmp,
            )
            for i in range(args.generation_workers)
        ]
        processes += generation
        url, ws_url = f"http://127.0.0.1:{web_port}", f"ws://127.0.0.1:{ws_port}"
        try:
            processes.append(stack.start_worker({**env, "DB_POOL_MAX_SIZE": "3"}, tmp, "ratings", "ratings,default", 1))
            for base in (url, f"http://127.0.0.1:{ws_port}"):
                stack.wait_until(lambda b=base: _healthy(b), timeout=60, message=base)
            stack.wait_until(lambda: _answers(f"{model_url}/_control/requests"), timeout=30, message="model server")
            for process in generation:
                process.wait_for_log("ready.", timeout=90)
            warm = uvloop.run(_warm_up(url, ws_url))
            # Each Process leads its own process group; the generation workers count as one.
            groups = {p.popen.pid: p.name.rstrip("0123456789") for p in processes}
            outcome = uvloop.run(run(url, ws_url, args, groups, pg_url))
            tally, results = outcome["tally"], outcome["results"]
            began, live_from, live_to = outcome["began"], outcome["live_from"], outcome["live_to"]
            load_average = os.getloadavg()

            live = [r for r in results if isinstance(r, dict)]
            failures = [r for r in results if not isinstance(r, dict)]
            live_acked = [r["battle"] for r in live if r["vote_status"] == 200]
            vote_failures = [r["vote_status"] for r in live if r["vote_status"] != 200]
            stored_once = stored_exactly_once(pg_url, tally.acked + warm.acked + live_acked)
            exact = sum(r["text"][side] == text for r in live for side in "AB")
            model_requests = httpx.get(f"{model_url}/_control/requests", timeout=30).json()
            platform = platform_first_token(live, model_requests, pg_url)
            with psycopg.connect(pg_url) as conn:
                statuses = dict(
                    conn.execute(
                        "SELECT r.status, count(*) FROM arena_response r JOIN arena_prompt p ON p.id = r.prompt_id "
                        "JOIN arena_campaign c ON c.id = p.campaign_id WHERE c.slug = 'live' GROUP BY r.status"
                    ).fetchall()
                )
            snapshots = {}
            for slug in ("bench", "live"):
                total = campaign_votes(pg_url, slug)
                snapshots[slug] = (total, *snapshot_catches_up(url, env, slug, total))
        except BaseException:
            for process in processes:
                print(f"----- {process.name} log -----\n{process.log()[-3000:]}")
            raise
        finally:
            for process in processes:
                process.stop()
        for process in processes[1:3]:
            if errors_seen(process):
                print(f"{process.name} log tail:\n" + process.log()[-3000:])

    baseline = tally.window(began + args.ramp, live_from).figures(live_from - began - args.ramp)
    during = tally.window(live_from, live_to).figures(live_to - live_from)
    # In seconds; vote_cycle.pct gives milliseconds.
    ttft = [r["visible"][s] - r["started"] for r in live for s in r["visible"]]
    opening = [r["posted"] - r["started"] for r in live]
    streaming = [max(r["done"].values()) - min(r["visible"].values()) for r in live if r["visible"]]
    side_errors = sum(len(r["errors"]) for r in live)
    covered = all(c for _, c, _, _ in snapshots.values())
    figures = {
        "voters": args.voters,
        "live_battles": args.battles,
        "stack": f"granian {args.web_workers} workers x {args.threads} threads, uvicorn {args.ws_workers} workers, "
        f"celery {args.generation_workers} x threads pool {gen_threads} "
        f"with {args.generation_pool} database connections (generation) + prefork 1 (ratings)",
        "live_answer": f"{args.tokens} words, {args.chunk_delay * 1000:.0f} ms apart",
        "seeded_votes": args.votes,
        "load_average_1_5_15": [round(x, 1) for x in load_average],
        "voter_cycles_and_errors_whole_run": [len(tally.cycles), len(tally.errors)],
        "baseline": baseline,
        "during_live_battles": during,
        "cores_used_baseline": outcome["cores_baseline"],
        "cores_used_during_live_battles": outcome["cores_live"],
        "live_seconds": round(live_to - live_from, 1),
        "live_completed_and_voted": len(live_acked),
        "live_client_errors": [repr(f)[:200] for f in failures],
        "live_vote_failures": vote_failures,
        "live_failed_sides": side_errors,
        "live_peak_streaming_at_once": peak_streaming(live),
        "live_open_p50_p99_ms": _p50_p99(opening),
        "live_first_token_p50_p99_ms": _p50_p99(ttft),
        "live_first_token_sides": len(ttft),
        "live_platform_first_token_p50_p99_ms": _p50_p99(platform),
        "live_platform_first_token_sides": len(platform),
        "live_stream_p50_p99_ms": _p50_p99(streaming),
        "live_sides_text_exact": exact,
        "live_responses_by_status": statuses,
        "acked_votes": {"voters": len(tally.acked), "live": len(live_acked), "warm_up": len(warm.acked)},
        "acked_votes_stored_exactly_once": stored_once,
        "snapshots": {
            slug: {"votes": t, "covered": c, "catch_up_s": round(w, 1), "needed_a_sweep": s}
            for slug, (t, c, w, s) in snapshots.items()
        },
        "snapshots_cover_every_vote": covered,
    }
    print(
        f"\nlive battles under load: {args.voters} voters throughout, {args.battles} live battles after "
        f"{args.baseline:.0f} s; {figures['stack']}; load average {figures['load_average_1_5_15']}"
    )
    print(f"voters alone ({baseline['seconds']:.0f} s, after {args.ramp:.0f} s of ramp-up):")
    print_run(baseline)
    print(f"voters while the live battles ran ({during['seconds']:.0f} s):")
    print_run(during)
    print(f"CPU cores used, voters alone:        {outcome['cores_baseline']}")
    print(f"CPU cores used, during live battles: {outcome['cores_live']}")
    print(
        f"live battles ({figures['live_answer']} per side, {figures['live_seconds']:.0f} s from the first POST "
        f"to the last vote):"
    )
    print(
        f"  completed and voted     {len(live_acked)} of {args.battles}; client errors {len(failures)} "
        f"{figures['live_client_errors'][:3] or ''}; failed sides {side_errors}; votes refused "
        f"{len(vote_failures)} {vote_failures[:3] or ''}"
    )
    print(f"  streaming at once       peak {figures['live_peak_streaming_at_once']} battles")
    print(f"  opening POST p50/p99    {pct(opening, 50):6.0f} / {pct(opening, 99):6.0f} ms")
    print(
        f"  first token  p50/p99    {pct(ttft, 50):6.0f} / {pct(ttft, 99):6.0f} ms (POST sent -> first words on the "
        f"websocket, {len(ttft)} sides)"
    )
    print(
        f"  of which the platform   {pct(platform, 50):6.0f} / {pct(platform, 99):6.0f} ms (model server got the "
        f"request -> first delta, {len(platform)} sides)"
    )
    print(
        f"  streaming    p50/p99    {pct(streaming, 50) / 1000:6.1f} / {pct(streaming, 99) / 1000:6.1f} s per battle "
        f"(the model server alone: {args.tokens * args.chunk_delay:.1f} s)"
    )
    print(
        f"  sides whose text equals the model server's output: {exact} of {2 * args.battles}; "
        f"responses by status {statuses}"
    )
    print(f"voter errors over the whole run: {len(tally.errors)} of {len(tally.cycles) + len(tally.errors)} cycles")
    print(f"acknowledged votes stored exactly once: {stored_once} ({figures['acked_votes']})")
    for slug, (total, ok, waited, swept) in snapshots.items():
        print(
            f"leaderboard snapshot of {slug!r} covers all {total:,} votes: {ok} (after {waited:.1f} s"
            f"{', one sweep' if swept else ''})"
        )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    if not (stored_once and covered and exact == 2 * args.battles and len(live_acked) == args.battles):
        sys.exit(1)


async def _warm_up(url: str, ws_url: str) -> Tally:
    """A few voters and two live battles first (connections, pools, caches), not counted in the figures;
    their votes are checked with the others'."""
    tally = Tally()
    stop_at = time.monotonic() + 3
    voters = [voter(100_000 + n, url, lambda: time.monotonic() < stop_at, tally) for n in range(16)]
    battles = [live_battle(1000 + n, url, ws_url, f"warm-up {n}") for n in range(2)]
    *_, first, second = await asyncio.gather(*voters, *battles)
    tally.cycles += [
        (r["started"], r["posted"], r["voted"], r["battle"]) for r in (first, second) if r["vote_status"] == 200
    ]
    return tally


def _p50_p99(seconds: list[float]) -> list[float]:
    return [round(pct(seconds, 50), 1), round(pct(seconds, 99), 1)]


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    main()
