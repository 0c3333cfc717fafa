"""Benchmark: live battles streamed from a model server to the browser's websocket.

Starts the distributed mode on this machine (fresh PostgreSQL database, Redis as broker and channel
layer, uvicorn, a Celery worker) with the local OpenAI-compatible server of tests/protocol_server.py
as the models, then drives voters over HTTP + websocket and prints:

1. time to first token added by the platform: from the model server's first byte to the first
   "delta" frame on the voter's websocket (worker parses SSE, publishes to Redis, the web process's
   consumer forwards it), p50/p90/max over sequential battles;
2. tokens per second delivered per battle: both sides streaming a long answer as fast as the model
   server sends it, counted at the websocket;
3. N concurrent live battles (default 100, i.e. 2N generations at once): errors, and whether every
   side's received text (snapshot + deltas) equals the server's deterministic output.

The worker uses the threads pool (``--pool threads``) so that all 2N generations run at once in one
process; the deployment's prefork API worker runs the same task code.

Known issue worked around here (unless ``--layer shipped``): with redis-py 8 (default socket
timeout 5 s) and channels_redis 4.3 (blocking reads of 5 s), a websocket consumer that receives no
frame for 5 s dies with "Timeout reading from Redis". The fix is a socket timeout above 5 s in
CHANNEL_LAYERS' host (``{"address": REDIS_URL, "socket_timeout": 30}``); this benchmark runs its web
process with that setting in a small settings module of its own.

    .venv/bin/python bench/live_stream.py [--battles 100] [--ttft-samples 30] [--tokens 4000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import psycopg
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import stack  # noqa: E402
from tests.protocol_server import ProtocolServer  # noqa: E402

FIRST_BYTE_DELAY = 0.3  # the model server waits this long before its first byte (the page is connected by then)


def reply(words: int, tag: str) -> str:
    return " ".join(f"{tag}{i}" for i in range(words))


def campaign(slug: str, base_url: str, knobs: str, text: str) -> dict:
    """A live campaign of two models on the model server at ``base_url``, each answering ``text``."""
    return {
        "slug": slug,
        "title": slug,
        "status": "active",
        "mode": "live",
        "models": [
            {
                "name": f"{slug}-model-{side}",
                "backend": "openai",
                "backend_settings": {
                    "base_url": base_url,
                    "model": f"{slug}-{side}?{knobs}&reply={quote(text)}",
                    "max_retries": 0,
                    "read_timeout": 60,
                },
                "params": {"max_new_tokens": 100_000},
            }
            for side in ("x", "y")
        ],
    }


async def battle(base: str, slug: str, prompt: str) -> dict:
    """One voter: write the prompt, follow both answers on the websocket until both are finished."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        await client.get(f"/c/{slug}/live/")
        started = time.monotonic()
        response = await client.post(
            f"/c/{slug}/live/",
            json={"prompt": prompt},
            headers={"X-CSRFToken": client.cookies["csrftoken"], "Accept": "application/json"},
        )
        response.raise_for_status()
        posted = time.monotonic()
        data = response.json()
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    result = new_result(data["battle"], started, posted)
    await follow(base.replace("http://", "ws://") + data["websocket"], cookie, base, result)
    return result


def new_result(battle_id: str, started: float, posted: float) -> dict:
    """What :func:`follow` fills in for one battle: texts, times (time.monotonic) per side, errors."""
    return {
        "battle": battle_id,
        "started": started,
        "posted": posted,
        "text": {"A": "", "B": ""},
        "first": {},
        "visible": {},
        "done": {},
        "errors": [],
        "frames": 0,
        "snapshot_text": {},
    }


async def follow(ws_url: str, cookie: str, origin: str, result: dict, timeout: float = 120) -> dict:
    """Follow a live battle's websocket until both sides are done or failed, as the page does.

    ``first``: a side's first delta frame; ``visible``: when its first text was on the page (from the
    snapshot sent on connect, or a delta); ``done``: its done or error frame.
    """
    async with (
        asyncio.timeout(timeout),
        connect(ws_url, additional_headers={"Cookie": cookie, "Origin": origin}, max_size=None) as ws,
    ):
        async for raw in ws:
            now = time.monotonic()
            frame = json.loads(raw)
            result["frames"] += 1
            kind = frame["type"]
            if kind == "snapshot":
                for side in "AB":
                    result["text"][side] = frame[side]["text"]
                    result["snapshot_text"][side] = len(frame[side]["text"])
                    if frame[side]["text"]:
                        result["visible"].setdefault(side, now)
                    if frame[side]["status"] in ("done", "failed"):
                        result["done"][side] = now
            elif kind == "delta":
                result["first"].setdefault(frame["side"], now)
                result["visible"].setdefault(frame["side"], now)
                result["text"][frame["side"]] += frame["text"]
            elif kind == "done":
                result["done"][frame["side"]] = now
            elif kind == "error":
                result["errors"].append(frame["message"])
                result["done"][frame["side"]] = now
            if len(result["done"]) == 2:
                break
    return result


def sides_to_models(pg_url: str, battle_ids: list[str]) -> dict[tuple[str, str], str]:
    """(battle, side) -> the served model name, read after the fact (the client never sees it)."""
    query = """
        SELECT b.id, ml.backend_settings->>'model', mr.backend_settings->>'model'
        FROM arena_battle b
        JOIN arena_response l ON l.id = b.left_id JOIN arena_modelentry ml ON ml.id = l.model_id
        JOIN arena_response r ON r.id = b.right_id JOIN arena_modelentry mr ON mr.id = r.model_id
        WHERE b.id = ANY(%s)
    """
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(query, (battle_ids,)).fetchall()
    return {(bid, side): model for bid, left, right in rows for side, model in (("A", left), ("B", right))}


def first_bytes(server: ProtocolServer) -> dict[tuple[str, str], float]:
    """(model, prompt) -> when the server sent its first byte (its arrival time + the scripted delay)."""
    return {(r.model, r.body["messages"][-1]["content"]): r.at + FIRST_BYTE_DELAY for r in server.requests}


def pct(values: list[float], q: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def platform_ttft(results, prompts, server, pg_url) -> tuple[list[float], int]:
    models = sides_to_models(pg_url, [r["battle"] for r in results])
    sent = first_bytes(server)
    samples, late = [], 0
    for result, prompt in zip(results, prompts, strict=True):
        for side in "AB":
            if result["snapshot_text"].get(side) or side not in result["first"]:
                late += 1  # the page connected after the first token: not a first-token sample
                continue
            first_byte = sent[(models[(result["battle"], side)], prompt)]
            samples.append((result["first"][side] - first_byte) * 1000)
    return samples, late


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--battles", type=int, default=100, help="concurrent live battles")
    parser.add_argument("--ttft-samples", type=int, default=30, help="sequential battles for the first-token time")
    parser.add_argument("--tokens", type=int, default=4000, help="tokens per answer in the throughput runs")
    parser.add_argument("--concurrent-tokens", type=int, default=200, help="tokens per answer, concurrent run")
    parser.add_argument("--chunk-delay", type=float, default=0.01, help="seconds between tokens, concurrent run")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13", help="its own Redis database (flushed)")
    parser.add_argument(
        "--layer",
        choices=["fixed", "shipped", "pubsub"],
        default="fixed",
        help="channel layer: as shipped, with the socket-timeout fix (default), or channels_redis' pub/sub layer",
    )
    parser.add_argument("--web-workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--frame-interval", type=float, default=0.05, help="ARENA_LIVE_FRAME_INTERVAL")
    args = parser.parse_args()

    texts = {"ttft": reply(20, "t"), "tput": reply(args.tokens, "w"), "conc": reply(args.concurrent_tokens, "c")}
    with tempfile.TemporaryDirectory() as tmpdir, stack.postgres_database() as pg_url, ProtocolServer() as server:
        tmp = Path(tmpdir)
        stack.flush_redis(args.redis_url)
        env = stack.base_env(
            pg_url,
            redis_url=args.redis_url,
            STATIC_ROOT=str(tmp / "static"),
            LOG_LEVEL="WARNING",
            ARENA_LIVE_PROMPTS_PER_MINUTE="0",
            ARENA_IP_LIVE_PROMPTS_PER_MINUTE="0",
            ARENA_IP_LIVE_PROMPTS_PER_HOUR="0",
            ARENA_CAMPAIGN_LIVE_PROMPTS_PER_MINUTE="0",
            DB_POOL_MAX_SIZE="20",
            ARENA_LIVE_FRAME_INTERVAL=str(args.frame_interval),
        )
        if args.layer != "shipped":
            backend = "channels_redis.pubsub.RedisPubSubChannelLayer" if args.layer == "pubsub" else None
            (tmp / "bench_settings.py").write_text(
                "from arena.settings import *  # noqa\n"
                "CHANNEL_LAYERS['default']['CONFIG']['hosts'] = [{'address': REDIS_URL, 'socket_timeout': 30}]\n"
                + (
                    f"CHANNEL_LAYERS['default'] = {{'BACKEND': {backend!r}, 'CONFIG': {{'hosts': [REDIS_URL]}}}}\n"
                    if backend
                    else ""
                )
            )
            env.update(PYTHONPATH=str(tmp), DJANGO_SETTINGS_MODULE="bench_settings")
        stack.manage(env, "migrate", "--noinput", "-v", "0")
        stack.manage(env, "collectstatic", "--noinput", "-v", "0")
        specs = [
            campaign("ttft", server.base_url, f"delay={FIRST_BYTE_DELAY}&chunk_delay=0.005", texts["ttft"]),
            campaign("tput", server.base_url, "chunk_delay=0", texts["tput"]),
            campaign("conc", server.base_url, f"chunk_delay={args.chunk_delay}", texts["conc"]),
        ]
        for spec in specs:
            path = tmp / f"{spec['slug']}.json"
            path.write_text(json.dumps(spec))
            stack.manage(env, "load_campaign", str(path))
        port = stack.free_port()
        web = stack.Process(
            "web",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "arena.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
                "--workers",
                str(args.web_workers),
            ],
            env,
            tmp,
        )
        worker = stack.Process(
            "worker",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "arena",
                "worker",
                "-Q",
                "generate_api,default",
                "--pool",
                "threads",
                "-c",
                str(max(2 * args.battles, 8)),
                "-n",
                "bench@%h",
                "--without-gossip",
                "--without-mingle",
                "-l",
                "WARNING",
            ],
            env,
            tmp,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            stack.wait_until(lambda: _healthy(base), timeout=60, message="web")
            time.sleep(3)  # the worker connects to the broker
            asyncio.run(_sequential(base, "ttft", ["warm-up 1", "warm-up 2"]))

            # 1. first token, sequential battles
            prompts = [f"first token {i}" for i in range(args.ttft_samples)]
            results = asyncio.run(_sequential(base, "ttft", prompts))
            ttft, late = platform_ttft(results, prompts, server, pg_url)

            # 2. throughput per battle
            tput_results = asyncio.run(_sequential(base, "tput", [f"throughput {i}" for i in range(3)]))
            rates, tput_ok = [], True
            for r in tput_results:
                tokens = sum(len(r["text"][s].split()) for s in "AB")
                rates.append(tokens / (max(r["done"].values()) - min(r["first"].values())))
                tput_ok &= r["text"]["A"] == r["text"]["B"] == texts["tput"]

            baseline = _baseline(server, specs[1])

            # 3. N concurrent battles
            conc_prompts = [f"concurrent {i}" for i in range(args.battles)]
            t0 = time.monotonic()
            conc = asyncio.run(_concurrent(base, "conc", conc_prompts))
            wall = time.monotonic() - t0
        except BaseException:
            for process in (web, worker):
                print(f"----- {process.name} log -----\n{process.log()[-4000:]}")
            raise
        finally:
            web.stop()
            worker.stop()
        errors = [c for c in conc if isinstance(c, BaseException)]
        done = [c for c in conc if not isinstance(c, BaseException)]
        side_errors = sum(len(c["errors"]) for c in done)
        exact = sum(c["text"][s] == texts["conc"] for c in done for s in "AB")
        conc_ttft = [(c["first"][s] - c["posted"]) * 1000 for c in done for s in "AB" if s in c["first"]]
        conc_post = [(c["posted"] - c["started"]) * 1000 for c in done]
        with psycopg.connect(pg_url) as conn:
            statuses = dict(conn.execute("SELECT status, count(*) FROM arena_response GROUP BY status").fetchall())
        requests = len(server.requests)

    layer = {
        "shipped": "as shipped",
        "fixed": "with socket_timeout=30 (see the docstring)",
        "pubsub": "channels_redis pub/sub",
    }[args.layer]
    print(
        f"\nlive battles: uvicorn ({args.web_workers} processes) + Celery worker (threads pool) + Redis + "
        f"PostgreSQL on 2 cores; channel layer {layer}; frame interval {args.frame_interval} s"
    )
    print(
        f"1. first token added by the platform (model server's first byte -> websocket delta frame), "
        f"{len(ttft)} samples ({late} skipped):"
    )
    print(
        f"   p50 {pct(ttft, 50):6.1f} ms   p90 {pct(ttft, 90):6.1f} ms   max {max(ttft):6.1f} ms   (target p50 < 20 ms)"
    )
    print(f"2. tokens per second delivered per battle ({args.tokens} tokens per side, both sides at once):")
    print(f"   {' / '.join(f'{r:,.0f}' for r in rates)} tokens/s (target >= 2,000); texts exact: {tput_ok}")
    print(
        f"   for scale: the model server read directly by the backend in this process (same CPU as the server), "
        f"two streams at once: {baseline:,.0f} tokens/s"
    )
    print(
        f"3. {args.battles} concurrent live battles ({2 * args.battles} generations, {args.concurrent_tokens} tokens "
        f"each, {args.chunk_delay * 1000:.0f} ms between tokens):"
    )
    print(
        f"   wall {wall:.1f} s; client errors {len(errors)} {[repr(e)[:120] for e in errors[:3]]}; "
        f"failed sides {side_errors}"
    )
    print(f"   sides whose received text equals the server's output: {exact} of {2 * args.battles}")
    print(
        f"   the POST that opens a battle: p50 {pct(conc_post, 50):.0f} ms, p99 {pct(conc_post, 99):.0f} ms; "
        f"then the first delta: p50 {pct(conc_ttft, 50):.0f} ms, p99 {pct(conc_ttft, 99):.0f} ms"
    )
    print(f"   responses by status: {statuses}; model requests: {requests}")


async def _sequential(base: str, slug: str, prompts: list[str]) -> list[dict]:
    return [await battle(base, slug, p) for p in prompts]


async def _concurrent(base: str, slug: str, prompts: list[str]) -> list:
    return await asyncio.gather(*(battle(base, slug, p) for p in prompts), return_exceptions=True)


def _baseline(server: ProtocolServer, spec: dict) -> float:
    """Tokens/s of the model server with nothing but the backend reading it: two streams at once."""
    import threading

    from backends import get_backend

    counts = []

    def read(model: dict) -> None:
        backend = get_backend("openai", model["backend_settings"])
        counts.append(sum(1 for _ in backend.stream([{"role": "user", "content": "baseline"}], model["params"])))

    threads = [threading.Thread(target=read, args=(m,)) for m in spec["models"]]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.monotonic() - started)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    main()
