"""Benchmark: judging N battles against a local judge server that answers in 50 ms, at concurrency 32.

The judge is tests/protocol_server.py in a process of its own (``delay=0.05`` before each answer,
``prefer=`` for the verdict), so its CPU is not counted as the platform's. The platform side runs in
this process as a Celery worker with a thread pool would: `dispatch` fills the judge's 32 slots, and
32 threads run the task's body (`running.judge_pairing_now`: claim, render both orders, one
reply-cache lookup, two HTTP calls, one write) and its hand-off of the slot to the next pending
pairing (`running.hand_off`), on a fresh PostgreSQL database with the settings' connection pool.

Printed: battles per second against the rate the server allows (concurrency / latency / 2 calls per
battle), this process's CPU per verdict (all threads), and its peak memory. The broker hop (one
Celery message per pairing) is not in the figure.

    .venv/bin/python bench/judges.py [--battles 10000] [--concurrency 32] [--latency 0.05]
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


def run(judge, concurrency: int) -> float:
    """The worker path without the broker: `dispatch` fills the judge's slots, each of ``concurrency``
    threads runs the task body and its hand-off, and the sent ids go through a local queue."""
    import queue

    from django.db import connection

    from arena.judges import running

    tasks: queue.Queue[int | None] = queue.Queue()
    running.send_tasks = lambda ids, _queue: [tasks.put(i) for i in ids]  # what the broker would carry
    errors: list[BaseException] = []
    left = [running.JudgeVerdict.objects.filter(judge=judge).count()]
    lock = threading.Lock()

    def worker() -> None:
        try:
            while (verdict_id := tasks.get()) is not None:
                outcome = running.judge_pairing_now(verdict_id)
                connection.close()  # back to the pool, as Celery does after each task
                if outcome.status == "retry":
                    time.sleep(outcome.retry_in or 0)
                    tasks.put(verdict_id)
                    continue
                running.hand_off(outcome)
                connection.close()
                with lock:
                    left[0] -= 1
                    if left[0] == 0:
                        for _ in range(concurrency):
                            tasks.put(None)
        except BaseException as error:  # reported below
            errors.append(error)
            for _ in range(concurrency):
                tasks.put(None)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
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


def measure(battles: int, concurrency: int, latency: float) -> None:
    import django

    django.setup()
    from django.db.models import Count

    from arena.judges import planning
    from arena.judges.models import JudgeVerdict

    server, base_url = start_server()
    try:
        judge = seed(battles, base_url, f"bench?prefer=Alpha says&delay={latency}", concurrency)
        planning.plan(judge)
        cpu0, wall = time.process_time(), None
        wall = run(judge, concurrency)
        cpu = time.process_time() - cpu0
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
    print(f"  platform CPU {1000 * cpu / max(done, 1):.2f} ms per verdict (2 calls), peak RSS {peak_mb:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--battles", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    with stack.postgres_database() as pg_url:
        env = stack.base_env(pg_url, redis_url=None, LOG_LEVEL="WARNING", CELERY_TASK_ALWAYS_EAGER="false")
        stack.manage(env, "migrate", "--skip-checks", "--noinput", "-v", "0")
        os.environ.update(env)
        measure(args.battles, args.concurrency, args.latency)


if __name__ == "__main__":
    main()
