"""Benchmark: judging N battles against a local judge server that answers in 50 ms, at concurrency 32.

The judge is tests/protocol_server.py in a process of its own (``delay=0.05`` before each answer,
``prefer=`` for the verdict), so its CPU is not counted as the platform's (it is printed apart). The
platform side runs in this process as a Celery worker would: `dispatch` fills the judge's 32 slots
in chunks of `judging.CHUNK` pairings, and ``--workers`` threads (the worker's task slots) run the
task's body (`running.run_chunk`: claim the chunk, load it, one reply-cache lookup, the calls on the
call pool; then, as pairings finish, one write per batch and the next pending pairings claimed in
their slots, for `running.REFILL_FOR` seconds; then the hand-off of the slots left), on a fresh
PostgreSQL database with the settings' connection pool.

Printed: battles per second against the rate the server allows (concurrency / latency / 2 calls per
battle), this process's CPU per verdict (all threads), the judge server's, and peak memory. The
broker hop (one Celery message per chunk) is not in the figure.

    .venv/bin/python bench/judges.py [--battles 10000] [--concurrency 32] [--latency 0.05] [--workers 8]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import stack  # noqa: E402


def start_server() -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "protocol_server.py")], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    line = process.stdout.readline()  # "OpenAI base_url: http://127.0.0.1:PORT/v1  Anthropic ..."
    return process, line.split()[2]


def seed(battles: int, base_url: str, model: str, concurrency: int):
    from arena.judges.models import Judge
    from arena.models import Campaign, Item, ModelEntry, Prompt, Response

    campaign = Campaign.objects.create(slug="bench-judges", title="bench", status="active")
    alpha, beta = (ModelEntry.objects.create(name=n) for n in ("Alpha", "Beta"))
    campaign.contenders.set([alpha, beta])
    Prompt.objects.bulk_create(
        Prompt(campaign=campaign, external_id=f"p{i}", messages=[{"role": "user", "content": f"Question {i}: why?"}])
        for i in range(battles)
    )
    prompts = list(Prompt.objects.filter(campaign=campaign).values_list("id", flat=True))
    Response.objects.bulk_create(
        Response(prompt_id=p, model=m, content=f"{m.name} says: because of reason {p}.", status="done")
        for p in prompts
        for m in (alpha, beta)
    )
    ids = {(p, m): r for r, p, m in Response.objects.values_list("id", "prompt_id", "model_id")}
    Item.objects.bulk_create(
        Item(
            campaign=campaign,
            prompt_id=p,
            response_lo_id=ids[p, alpha.pk],
            response_hi_id=ids[p, beta.pk],
            model_lo=alpha,
            model_hi=beta,
        )
        for p in prompts
    )
    entry = ModelEntry.objects.create(
        name="Bench judge",
        backend="openai",
        params={"do_sample": False},
        backend_settings={"base_url": base_url, "model": model, "max_retries": 0, "trust_env": False},
    )
    return Judge.objects.create(campaign=campaign, model=entry, max_concurrency=concurrency)


def run(judge, workers: int) -> float:
    """The worker path without the broker: `dispatch` fills the judge's slots in chunks, ``workers``
    threads (a worker's task slots) run the task body (`running.run_chunk`: judge the chunk on the
    call pool refilling its slots, send its retries, hand its slots on), and the sent chunks go
    through a local queue (a countdown as a timer)."""
    import queue

    from django.db import connection

    from arena.judges import running

    tasks: queue.Queue[tuple[list[int], int] | None] = queue.Queue()

    def send(ids: list[int], _queue: str, *, retries: int = 0, countdown: float | None = None) -> None:
        for chunk in running.judging.chunks(ids):  # what the broker would carry
            if countdown:
                threading.Timer(countdown, tasks.put, args=((chunk, retries),)).start()
            else:
                tasks.put((chunk, retries))

    running.send_chunks = send
    errors: list[BaseException] = []
    left = [running.JudgeVerdict.objects.filter(judge=judge).count()]
    lock = threading.Lock()

    def stop() -> None:
        for _ in range(workers):
            tasks.put(None)

    def worker() -> None:
        try:
            while (task := tasks.get()) is not None:
                ids, retries = task
                outcome = running.run_chunk(ids, retries_done=retries)
                connection.close()  # back to the pool, as Celery does after each task
                with lock:
                    left[0] -= outcome.finished
                    if left[0] <= 0:
                        stop()
        except BaseException as error:  # reported below
            errors.append(error)
            stop()

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    running.dispatch(judge.pk)
    connection.close()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - started


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of another process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_calls() -> list[float]:
    """Record how long each backend call takes, as the worker sees it (the server's 50 ms, plus the
    time its answer waits for the server process and for this one to get a core)."""
    from backends.base import Backend

    took: list[float] = []
    generate = Backend.generate

    def timed(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return generate(self, *args, **kwargs)
        finally:
            took.append(time.perf_counter() - started)

    Backend.generate = timed
    return took


def measure(battles: int, concurrency: int, latency: float, workers: int) -> None:
    import django

    django.setup()
    from django.db.models import Count

    from arena.judges import planning
    from arena.judges.models import JudgeVerdict

    server, base_url = start_server()
    try:
        judge = seed(battles, base_url, f"bench?prefer=Alpha says&delay={latency}", concurrency)
        planning.plan(judge)
        took = time_calls()
        cpu0, server0 = time.process_time(), process_cpu(server.pid)
        wall = run(judge, workers)
        cpu, server_cpu = time.process_time() - cpu0, process_cpu(server.pid) - server0
    finally:
        server.terminate()
        server.wait()
    statuses = dict(JudgeVerdict.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    done = statuses.get("done", 0)
    allowed = concurrency / latency / 2
    rate = done / wall
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{battles:,} battles, concurrency {concurrency}, server latency {latency * 1000:.0f} ms: {statuses}")
    print(
        f"  {rate:7.1f} battles/s  ({100 * rate / allowed:.0f}% of the {allowed:.0f}/s the server allows)"
        f"  wall {wall:.1f} s"
    )
    per = 1000 / max(done, 1)
    print(f"  platform CPU {per * cpu:.2f} ms per verdict (2 calls), peak RSS {peak_mb:.0f} MB")
    call_ms = 1000 * sum(took) / max(len(took), 1)
    at_that = concurrency / (call_ms / 1000) / 2
    print(
        f"  calls took {call_ms:.1f} ms on average: at that latency the server allows {at_that:.0f} battles/s,"
        f" and the platform reached {100 * rate / at_that:.0f}% of it"
    )
    print(f"  judge server CPU {per * server_cpu:.2f} ms per verdict; load average {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--battles", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--workers", type=int, default=8, help="task slots of the worker (threads)")
    args = parser.parse_args()
    with stack.postgres_database() as pg_url:
        env = stack.base_env(pg_url, redis_url=None, LOG_LEVEL="WARNING", CELERY_TASK_ALWAYS_EAGER="false")
        stack.manage(env, "migrate", "--skip-checks", "--noinput", "-v", "0")
        os.environ.update(env)
        measure(args.battles, args.concurrency, args.latency, args.workers)


if __name__ == "__main__":
    main()
