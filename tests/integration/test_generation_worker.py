"""Generation by real Celery worker processes (Redis broker, PostgreSQL), against a real model server.

The model is tests/protocol_server.py, listening on 127.0.0.1 in this test process; the workers reach
it over HTTP like any API. Its recorded requests say how many times a model was really called.
"""

from __future__ import annotations

import json
import time

import psycopg

from tests import stack
from tests.protocol_server import ProtocolServer, expected_reply


def campaign_spec(slug: str, server: ProtocolServer, models: dict[str, str], prompts: int) -> dict:
    return {
        "slug": slug,
        "title": f"Generated {slug}",
        "status": "active",
        "mode": "prompt_set",
        "models": [
            {
                "name": name,
                "backend": "openai",
                "backend_settings": {"base_url": server.base_url, "model": model, "max_retries": 0},
            }
            for name, model in models.items()
        ],
        "prompts": [{"external_id": f"p{i}", "prompt": f"Question number {i}?"} for i in range(prompts)],
    }


def load(env, tmp_path, spec: dict) -> None:
    path = tmp_path / f"{spec['slug']}.json"
    path.write_text(json.dumps(spec))
    stack.manage(env, "load_campaign", str(path))


def statuses(pg_url: str) -> list[tuple]:
    with psycopg.connect(pg_url) as conn:
        return conn.execute("SELECT status, attempts, content FROM arena_response ORDER BY id").fetchall()


def test_a_worker_generates_the_missing_responses_and_the_command_waits(stack_env, pg_url, processes, tmp_path):
    with ProtocolServer() as server:
        load(stack_env, tmp_path, campaign_spec("gen", server, {"Alpha": "alpha", "Beta": "beta"}, prompts=4))
        processes.worker(stack_env, queues="generate_api,default")

        out = stack.manage(stack_env, "generate_responses", "gen", "--wait", "--interval", "0.2", "--timeout", "60")

        assert "8 new responses, 8 queued for generation" in out
        assert "[##############################] 8/8 done, 0 pending, 0 failed" in out
        rows = statuses(pg_url)
        assert [r[0] for r in rows] == ["done"] * 8
        assert {r[2] for r in rows} == {expected_reply(f"Question number {i}?") for i in range(4)}
        assert len(server.requests) == 8
        with psycopg.connect(pg_url) as conn:
            assert conn.execute("SELECT count(*) FROM arena_item").fetchone()[0] == 4  # one pair per prompt


def test_two_workers_competing_for_duplicate_tasks_generate_each_response_once(stack_env, pg_url, processes, tmp_path):
    with ProtocolServer() as server:
        models = {"Alpha": "alpha?chunk_delay=0.01", "Beta": "beta?chunk_delay=0.01"}
        load(stack_env, tmp_path, campaign_spec("race", server, models, prompts=10))
        workers = [processes.worker(stack_env, name=f"w{i}", queues="generate_api", concurrency=2) for i in (1, 2)]

        # Every task is delivered three times while the two workers are consuming.
        stack.manage(
            stack_env,
            "shell",
            "-c",
            (
                "from arena.models import Campaign, Response\n"
                "from arena.services import dispatch, generation\n"
                "generation.queue_missing_responses(Campaign.objects.get(slug='race'))\n"
                "ids = list(Response.objects.values_list('id', flat=True))\n"
                "dispatch.send_generation(ids)\n"
                "dispatch.send_generation(ids)\n"
            ),
        )

        def finished():
            logs = "".join(w.log() for w in workers)
            return logs.count("succeeded in") >= 60 and logs

        logs = stack.wait_until(finished, timeout=60, message="60 task deliveries")
        rows = statuses(pg_url)
        assert [r[0] for r in rows] == ["done"] * 20 and {r[1] for r in rows} == {1}
        asked = [(r.model, r.body["messages"][-1]["content"]) for r in server.requests]
        assert len(asked) == 20 and len(set(asked)) == 20  # no response was generated twice
        assert logs.count("'skipped'") == 40
        assert all("'done'" in w.log() for w in workers)  # both took part
        with psycopg.connect(pg_url) as conn:  # answers finishing at once on two workers still pair up
            assert conn.execute("SELECT count(*) FROM arena_item").fetchone()[0] == 10


def test_a_response_whose_worker_was_killed_is_requeued_by_the_reaper(stack_env, pg_url, processes, tmp_path):
    with ProtocolServer() as server:
        # The first request hangs mid-stream (the worker is killed then); the next one answers.
        models = {"Alpha": "alpha?stall_after=2&hang=60&times=1"}
        load(stack_env, tmp_path, campaign_spec("reap", server, models, prompts=1))
        first = processes.worker(stack_env, name="doomed", queues="generate_api")
        stack.manage(stack_env, "generate_responses", "reap")
        stack.wait_until(lambda: statuses(pg_url)[0][0] == "running", timeout=30, message="a running response")
        stack.wait_until(lambda: len(server.requests) == 1, timeout=10, message="the first request")
        first.kill()
        killed_at = time.monotonic()

        # Nobody calls the reaper by hand: beat's sweep finds the row without a heartbeat.
        processes.worker(stack_env, name="survivor", queues="generate_api,default")
        beat = processes.beat(stack_env)
        stack.wait_until(lambda: statuses(pg_url)[0][0] == "done", timeout=40, message="the requeued response done")
        took = time.monotonic() - killed_at
        _, attempts, content = statuses(pg_url)[0]
        assert attempts == 2 and content == expected_reply("Question number 0?")
        assert len(server.requests) == 2
        assert "reap-stale-responses" in beat.log()
        assert took < 30, f"done {took:.1f} s after the kill (15 minutes before the heartbeat)"
        print(f"done {took:.1f} s after the kill")
