"""`make run`'s server does what the distributed mode's workers and beat do: live answers stream over
the websocket while the start request returns at once, and the leaderboard counts every vote within
seconds of the last one with no further traffic."""

from __future__ import annotations

import json
import time

import httpx

from tests import stack
from tests.integration.test_live_battle import NAMES, PROMPT, stream, write_prompt
from tests.protocol_server import ProtocolServer

# Two slow models: 40 chunks 0.075 s apart, 3 s each.
REPLY = " ".join(f"word{i}" for i in range(40))


def test_a_live_battle_streams_and_the_start_request_returns_at_once(embedded_env, load, processes):
    with ProtocolServer() as server:
        load(stack.live_campaign_spec(server.base_url, NAMES, REPLY, chunk_delay=0.075))
        url = processes.web(embedded_env)
        with httpx.Client(base_url=url, timeout=10) as client:
            client.get("/c/live/live/").raise_for_status()
            started = time.monotonic()
            battle_id = write_prompt(client, "live", PROMPT)
            took = time.monotonic() - started
            cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
            frames = stream(f"ws://{url.removeprefix('http://')}/ws/battles/{battle_id}/", cookie, url)

    assert took < 1.0, f"the start request waited for the answers ({took:.2f} s)"
    snapshot = frames[0]
    assert snapshot["type"] == "snapshot" and snapshot["A"]["status"] != "done" and snapshot["B"]["status"] != "done"
    for side in "AB":
        deltas = [f for f in frames if f["type"] == "delta" and f["side"] == side]
        assert len(deltas) > 5, f"side {side} did not stream ({len(deltas)} frames)"
        assert snapshot[side]["text"] + "".join(f["text"] for f in deltas) == REPLY
        assert any(f["type"] == "done" and f["side"] == side for f in frames)
    assert not any(name in json.dumps(frames) for name in NAMES)


def test_the_leaderboard_counts_every_vote_within_seconds_without_further_traffic(embedded_env, load, processes):
    embedded_env["ARENA_RECOMPUTE_DEBOUNCE"] = "2"
    load(stack.small_campaign_spec("it", models=3, prompts=8))  # one blind battle per prompt
    url = processes.web(embedded_env)
    with httpx.Client(base_url=url, timeout=10) as client:
        # A first vote, then six more in the debounce window of the recompute it asked for.
        for verdict in ("left", "right", "tie", "left", "left", "right", "tie"):
            stack.vote_once(client, "it", verdict)
    last_vote = time.monotonic()

    def counted():
        board = httpx.get(f"{url}/c/it/leaderboard.json", timeout=5)
        return board.status_code == 200 and board.json()["n_votes"] == 7

    stack.wait_until(counted, timeout=15, message="a leaderboard covering the 7 votes")
    assert time.monotonic() - last_vote < 10


# A response whose worker died: "running" since long ago, in the demo campaign's database.
ORPHAN = """
from datetime import timedelta
from django.utils import timezone
from arena.models import Response
response = Response.objects.filter(prompt__campaign__slug="it").first()
long_ago = timezone.now() - timedelta(hours=1)
Response.objects.filter(pk=response.pk).update(status="running", content="", started_at=long_ago)
print(response.pk)
"""
STATUS = "from arena.models import Response; print(Response.objects.get(pk={pk}).status)"


def test_beat_runs_in_the_server_bootstrap_intervals_and_the_reaper(embedded_env, load, processes):
    embedded_env.update(
        ARENA_RECOMPUTE_INTERVAL="1",
        ARENA_GENERATION_REAP_INTERVAL="1",
        ARENA_GENERATION_STALE_AFTER="5",
        ARENA_BOOTSTRAP_ROUNDS="50",
    )
    load(stack.small_campaign_spec("it", models=3, prompts=4))
    url = processes.web(embedded_env)
    with httpx.Client(base_url=url, timeout=10) as client:
        for verdict in ("left", "right", "left"):
            stack.vote_once(client, "it", verdict)
    orphan = stack.manage(embedded_env, "shell", "-v", "0", "-c", ORPHAN).strip()  # after the votes: no battle shows it

    def bootstrapped():
        board = httpx.get(f"{url}/c/it/leaderboard.json", timeout=5).json()
        return board.get("n_votes") == 3 and board.get("intervals") == "bootstrap"

    stack.wait_until(bootstrapped, timeout=30, message="bootstrap intervals from beat's sweep")
    reaped = lambda: stack.manage(embedded_env, "shell", "-v", "0", "-c", STATUS.format(pk=orphan)).strip() == "done"  # noqa: E731
    stack.wait_until(reaped, timeout=30, interval=1, message="the orphaned response generated again")
