"""Faults on the real stack: PostgreSQL restarted, Redis killed, while a uvicorn server serves voters.

- PostgreSQL: the shared cluster is stopped for a few seconds (ALWAYS started again, in a finally,
  and waited for with pg_isready). During the outage pages answer a clear 503 page with Retry-After,
  the JSON API a JSON 503, /healthz 503; afterwards the same server process serves again, with no
  restart.
- Redis: a private redis-server on a free port (the shared one on 6379 is never touched) is killed
  mid-voting. Votes are still accepted and stored, quickly; /healthz says Redis is unavailable;
  once Redis is back, one beat sweep (ratings.tasks.recompute_active_campaigns, in a subprocess)
  brings the leaderboard up to every vote.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from tests import stack

PG_CLUSTER = ["15", "main"]


def _pg(action: str) -> None:
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *PG_CLUSTER, action, *(
        ["-m", "fast"] if action == "stop" else [])], check=True, capture_output=True, timeout=60)  # fmt: skip


def _wait_for_postgres(timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-t", "2"], capture_output=True)
        if ready.returncode == 0:
            return
        time.sleep(0.3)
    raise RuntimeError("PostgreSQL did not come back within 60 s")


def _load(env: dict, tmp_path: Path, slug: str = "it") -> None:
    spec = tmp_path / "campaign.json"
    spec.write_text(json.dumps(stack.small_campaign_spec(slug, models=3, prompts=6)))
    stack.manage(env, "load_campaign", str(spec))


@pytest.mark.skipif(shutil.which("pg_ctlcluster") is None, reason="needs Debian's pg_ctlcluster to restart PostgreSQL")
def test_a_postgres_restart_gives_a_clear_503_and_the_site_recovers_by_itself(pg_url, static_root, processes, tmp_path):
    # A short pool timeout: during the outage a request waits at most this long for a connection.
    env = stack.base_env(pg_url, STATIC_ROOT=str(static_root), DB_POOL_TIMEOUT="2", DB_POOL_MIN_SIZE="1")
    stack.flush_redis()
    stack.manage(env, "migrate", "--noinput", "-v", "0")
    _load(env, tmp_path)
    url = processes.web(env)
    client = httpx.Client(base_url=url, timeout=20)
    stack.vote_once(client, "it")
    battle = stack.BATTLE_ACTION.search(client.get("/c/it/vote/").text).group(1)  # open, not voted yet

    try:
        _pg("stop")
        page = client.get("/c/it/vote/")
        assert page.status_code == 503, page.text[:500]
        assert "temporarily unavailable" in page.text and "Traceback" not in page.text
        assert page.headers["Retry-After"] == "5"
        started = time.monotonic()
        home = client.get("/")
        assert home.status_code == 503 and "try again" in home.text
        assert time.monotonic() - started < 1.5  # at once: no second wait for the pool's timeout
        vote = client.post(f"/b/{battle}/vote", data={"verdict": "left"},
                           headers={"X-CSRFToken": client.cookies["csrftoken"], "Accept": "application/json",
                                    "Referer": url})  # fmt: skip
        assert vote.status_code == 503 and vote.json()["error"] == "unavailable"
        api = client.get("/api/v1/campaigns")
        assert api.status_code == 503 and api.json()["error"] == "unavailable"
        health = httpx.get(f"{url}/healthz", timeout=20)
        assert health.status_code == 503 and health.json()["database"] == "unavailable"
    finally:
        _pg("start")
        _wait_for_postgres()

    # The same server process, no restart: within a few seconds every request works again.
    stack.wait_until(lambda: httpx.get(f"{url}/healthz", timeout=10).status_code == 200, timeout=20,
                     message="/healthz to be 200 again")  # fmt: skip
    for _ in range(5):
        assert client.get("/").status_code == 200
    assert client.get("/c/it/vote/").status_code == 200
    ok = client.post(f"/b/{battle}/vote", data={"verdict": "left"},
                     headers={"X-CSRFToken": client.cookies["csrftoken"], "Accept": "application/json",
                              "Referer": url})  # fmt: skip
    assert ok.status_code == 200  # the vote refused during the outage can be cast now
    stack.vote_once(client, "it")
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM arena_vote").fetchone()[0] == 3
    client.close()


def _start_redis(port: int, log_dir: Path) -> stack.Process:
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = stack.Process(f"redis-{port}", argv, {"PATH": "/usr/bin:/bin:/usr/local/bin"}, log_dir)
    process.wait_for_log("Ready to accept connections", timeout=20)
    return process


def _timed_vote(client: httpx.Client, slug: str) -> tuple[str, float]:
    started = time.monotonic()
    battle_id = stack.vote_once(client, slug)
    return battle_id, time.monotonic() - started


def test_votes_are_stored_while_redis_is_down_and_ratings_catch_up(pg_url, static_root, processes, tmp_path):
    port = stack.free_port()
    redis_url = f"redis://127.0.0.1:{port}/0"
    redis = _start_redis(port, tmp_path)
    try:
        env = stack.base_env(pg_url, redis_url=redis_url, STATIC_ROOT=str(static_root))
        stack.manage(env, "migrate", "--noinput", "-v", "0")
        _load(env, tmp_path)
        url = processes.web(env)
        client = httpx.Client(base_url=url, timeout=20)
        before = [stack.vote_once(client, "it") for _ in range(2)]

        redis.kill()  # SIGKILL: no goodbye to the clients
        redis.stop()
        during, seconds = [], []
        for _ in range(3):
            battle_id, took = _timed_vote(client, "it")
            during.append(battle_id)
            seconds.append(took)
        assert max(seconds) < 5, f"a vote cycle took {max(seconds):.1f} s with Redis down"
        health = httpx.get(f"{url}/healthz", timeout=10)
        assert health.status_code == 503
        assert health.json() == {"database": "ok", "redis": "unavailable"}
        with psycopg.connect(pg_url) as conn:
            stored = {r[0] for r in conn.execute("SELECT battle_id FROM arena_vote").fetchall()}
        assert stored == set(before + during)

        redis = _start_redis(port, tmp_path)  # back, empty, on the same port
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
        after = stack.vote_once(client, "it")
        # Beat's sweep, run the way beat would trigger it (here in-process in a subprocess).
        sweep = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c",
             "from ratings.tasks import recompute_active_campaigns; print(recompute_active_campaigns())"],
            cwd=stack.ROOT, env={**env, "CELERY_TASK_ALWAYS_EAGER": "true"}, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        assert sweep.returncode == 0, sweep.stderr[-3000:]
        board = client.get("/c/it/leaderboard.json")
        assert board.status_code == 200
        assert board.json()["n_votes"] == len(before) + len(during) + 1 == 6
        assert stored | {after} == set(before + during + [after])
        client.close()
    finally:
        redis.stop()
