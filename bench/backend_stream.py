"""Benchmark: streaming throughput of the OpenAI-compatible backend against the local protocol server.

Measures what the client side costs (SSE parsing, the deadline watchdog, the StopFilter, httpx) when
the "model" is free: one stream at a time (deltas/s, time to first delta) and N concurrent streams
(aggregate deltas/s), plus non-streamed ``generate`` latency. The server is the test protocol server
in a thread of this process, so both sides share the CPU; treat the numbers as a lower bound.

    .venv/bin/python bench/backend_stream.py [--tokens 2000] [--streams 5] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backends import get_backend  # noqa: E402
from tests.protocol_server import ProtocolServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=2000, help="deltas per answer")
    parser.add_argument("--streams", type=int, default=5, help="sequential streams to time")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent streams")
    args = parser.parse_args()

    os.environ["BENCH_KEY"] = "sk-bench"
    prompt = [{"role": "user", "content": " ".join(f"w{i}" for i in range(args.tokens - 1))}]
    params = {"max_new_tokens": args.tokens + 10, "do_sample": False}
    with ProtocolServer(api_key="sk-bench") as server:
        backend = get_backend(
            "openai",
            {"base_url": server.base_url, "model": "bench", "api_key_env": "BENCH_KEY", "trust_env": False},
        )
        backend.generate(prompt, params)  # warm the connection pool

        rates, ttfts = [], []
        for _ in range(args.streams):
            s = backend.stream(prompt, params)
            started = time.perf_counter()
            n = sum(1 for _ in s)
            elapsed = time.perf_counter() - started
            rates.append(n / elapsed)
            ttfts.append(s.result.ttft_s or 0.0)
        print(
            f"single stream : {statistics.median(rates):9.0f} deltas/s   ttft {statistics.median(ttfts) * 1000:.1f} ms"
        )

        counts: list[int] = []
        lock = threading.Lock()

        def one() -> None:
            n = sum(1 for _ in backend.stream(prompt, params))
            with lock:
                counts.append(n)

        threads = [threading.Thread(target=one) for _ in range(args.concurrency)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        print(f"{args.concurrency:2d} concurrent : {sum(counts) / elapsed:9.0f} deltas/s in total")

        latencies = []
        for _ in range(args.streams):
            started = time.perf_counter()
            backend.generate(prompt, params)
            latencies.append(time.perf_counter() - started)
        print(f"generate      : {statistics.median(latencies) * 1000:9.1f} ms for {args.tokens} tokens")


if __name__ == "__main__":
    main()
