"""The vote flow in the distributed mode: PostgreSQL, Redis, a uvicorn process and a Celery worker."""

from __future__ import annotations

import json

import httpx
import psycopg

from tests import stack


def test_votes_through_the_asgi_server_are_stored_once_and_a_worker_recomputes(stack_env, pg_url, processes, tmp_path):
    spec = tmp_path / "campaign.json"
    spec.write_text(json.dumps(stack.small_campaign_spec("it", models=3, prompts=4)))
    stack.manage(stack_env, "load_campaign", str(spec))
    url = processes.web(stack_env)
    processes.worker(stack_env)

    battle_ids = []
    for _voter in range(3):
        with httpx.Client(base_url=url, timeout=10) as client:
            battle_ids += [stack.vote_once(client, "it", verdict) for verdict in ("left", "right", "tie")]

    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT battle_id, verdict, winner_id FROM arena_vote").fetchall()
    assert sorted(r[0] for r in rows) == sorted(battle_ids)
    assert sum(r[1] == "tie" for r in rows) == 3 and all((r[2] is None) == (r[1] == "tie") for r in rows)

    def snapshot():
        response = httpx.get(f"{url}/c/it/leaderboard.json", timeout=5)
        return response.status_code == 200 and response.json()["n_votes"] == 9 and response.json()

    board = stack.wait_until(snapshot, timeout=60, message="a leaderboard snapshot covering the 9 votes")
    assert {row["model"] for row in board["rows"]} == {"Model-A", "Model-B", "Model-C"}


def test_a_second_vote_on_the_same_battle_is_refused_across_requests(stack_env, processes, tmp_path):
    spec = tmp_path / "campaign.json"
    spec.write_text(json.dumps(stack.small_campaign_spec("dup")))
    stack.manage(stack_env, "load_campaign", str(spec))
    url = processes.web(stack_env)
    with httpx.Client(base_url=url, timeout=10) as client:
        battle_id = stack.vote_once(client, "dup")
        again = client.post(
            f"/b/{battle_id}/vote",
            data={"verdict": "right"},
            headers={"X-CSRFToken": client.cookies["csrftoken"], "Accept": "application/json", "Referer": url},
        )
    assert again.status_code == 409
