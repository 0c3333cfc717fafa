"""CPU per vote cycle inside one web process: where the web tier's time goes, without the network.

Runs "next battle page, vote" cycles through the WSGI application in this process, one at a time, as
the deployed web server would call it (the same settings, PostgreSQL and Redis), and prints the
process CPU time per page and per vote, and the CPU the PostgreSQL and Redis servers of this machine
spent per cycle meanwhile. With --profile it prints the functions that cost the most (cProfile, so
the absolute figures are inflated; compare the shares).

Needs a database with the benchmark campaign, e.g. one kept by bench/vote_cycle.py:

    .venv/bin/python bench/vote_cycle.py --postgres local --keep-database arena_bench --seconds 5
    .venv/bin/python bench/cycle_cpu.py --database postgres://postgres@127.0.0.1:5432/arena_bench
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import sys
import tempfile
import time
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.vote_cycle import cpu_seconds_named  # noqa: E402

BATTLE_ACTION = re.compile(rb'action="/b/([^/]+)/vote"')
SERVERS = {"postgres": "PostgreSQL", "redis-server": "Redis"}  # command name: what it is


class Browser:
    """One voter's cookies, and WSGI calls into ``app``."""

    def __init__(self, app) -> None:
        self.app = app
        self.cookies: dict[str, str] = {}
        self.battle_id: str | None = None

    def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1:8000",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "CONTENT_LENGTH": str(len(body)),
        }
        if body:
            environ["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
        if self.cookies:
            environ["HTTP_COOKIE"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        for name, value in (headers or {}).items():
            environ["HTTP_" + name.upper().replace("-", "_")] = value
        status: list[str] = []

        def start_response(line, response_headers, exc_info=None):
            status.append(line)
            for name, value in response_headers:
                if name.lower() == "set-cookie":
                    for morsel in SimpleCookie(value).values():
                        self.cookies[morsel.key] = morsel.value

        result = self.app(environ, start_response)
        try:
            content = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        if not status[0].startswith("200"):
            raise RuntimeError(f"{method} {path}: {status[0]}\n{content[:500]!r}")
        return content

    def cycle(self, slug: str, flow: str = "in-place") -> tuple[float, float]:
        """One vote cycle; the CPU seconds of its page load (0 when the last vote's reply carried the
        battle: --flow in-place, as the voting page votes) and of its vote."""
        started = time.process_time()
        if self.battle_id is None or flow == "pages":
            page = self.request("GET", f"/c/{slug}/vote/")
            self.battle_id = BATTLE_ACTION.search(page).group(1).decode()
        paged = time.process_time()
        form = {"verdict": "left", "next_battle": "1"} if flow == "in-place" else {"verdict": "left"}
        reply = self.request(
            "POST",
            f"/b/{self.battle_id}/vote",
            urlencode(form).encode(),
            {
                "X-CSRFToken": self.cookies["csrftoken"],
                "Accept": "application/json",
                "Referer": "http://127.0.0.1:8000/",
            },
        )
        upcoming = json.loads(reply).get("next_battle") if flow == "in-place" else None
        self.battle_id = upcoming["id"] if upcoming else None
        return paged - started, time.process_time() - paged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", required=True, help="DATABASE_URL of a database with the bench campaign")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--slug", default="bench")
    parser.add_argument("--cycles", type=int, default=2000)
    parser.add_argument("--voters", type=int, default=50, help="voters taking turns (each has its own cookies)")
    parser.add_argument("--flow", choices=["in-place", "pages"], default="in-place", help="as bench/vote_cycle.py's")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    from tests import stack

    limits = {
        name: "100000000"
        for name in (
            "ARENA_VOTE_RATE_PER_MINUTE",
            "ARENA_BATTLE_RATE_PER_MINUTE",
            "ARENA_IP_VOTE_RATE_PER_MINUTE",
            "ARENA_IP_BATTLE_RATE_PER_MINUTE",
        )
    }
    static = tempfile.mkdtemp(prefix="arena-static-")
    # No worker runs here to take the queued recompute's key away, so with a short debounce every vote
    # would find it expired and ask Redis twice (not so where a worker runs, as in bench/vote_cycle.py):
    # an hour's debounce keeps the votes covered by the one queued run, as a worker would.
    env = stack.base_env(
        args.database, args.redis, STATIC_ROOT=static, ARENA_RECOMPUTE_DEBOUNCE="3600", LOG_LEVEL="WARNING", **limits
    )
    stack.manage(env, "collectstatic", "--noinput", "-v", "0")
    os.environ.clear()
    os.environ.update(env)
    from arena.wsgi import application

    browsers = [Browser(application) for _ in range(args.voters)]
    for browser in browsers:  # warm-up: every voter has its cookies, every statement is prepared
        browser.cycle(args.slug, args.flow)
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile(time.process_time)  # CPU, not waits
        profiler.enable()
    pages, posts = [], []
    servers_before = {name: cpu_seconds_named(name) for name in SERVERS}
    started = time.perf_counter()
    for n in range(args.cycles):
        page, post = browsers[n % len(browsers)].cycle(args.slug, args.flow)
        pages.append(page)
        posts.append(post)
    elapsed = time.perf_counter() - started
    servers = {name: 1000 * (cpu_seconds_named(name) - servers_before[name]) / args.cycles for name in SERVERS}
    if profiler is not None:
        import pstats

        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    cpu_page, cpu_post = 1000 * sum(pages) / len(pages), 1000 * sum(posts) / len(posts)
    print(f"{args.cycles} cycles in {elapsed:.1f} s ({args.cycles / elapsed:.0f} cycles/s on one thread)")
    print(f"  web CPU per page {cpu_page:.2f} ms, per vote {cpu_post:.2f} ms, per cycle {cpu_page + cpu_post:.2f} ms")
    print("  servers' CPU per cycle " + ", ".join(f"{SERVERS[name]} {ms:.2f} ms" for name, ms in servers.items()))


if __name__ == "__main__":
    main()
