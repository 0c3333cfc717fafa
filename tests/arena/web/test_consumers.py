"""The live-battle websocket against the real ASGI application (in-memory channel layer).

The generation tasks run in this process and publish through the channel layer, exactly the path a
worker takes; the model is the local OpenAI-compatible server.
"""

from __future__ import annotations

import json
import re
import sys
import types
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import connections
from django.http import HttpResponse

from arena.asgi import application
from arena.models import Battle, Campaign, ModelEntry, Prompt, Response, Voter
from arena.services.voters import COOKIE_NAME, COOKIE_SALT
from arena.tasks import generate_response
from tests.protocol_server import expected_reply

try:
    from channels.testing import WebsocketCommunicator
except ImportError:  # channels.testing's __init__ imports daphne for its live-server class, unused here
    import channels

    _package = types.ModuleType("channels.testing")
    _package.__path__ = [str(Path(channels.__file__).parent / "testing")]
    sys.modules["channels.testing"] = _package
    from channels.testing.websocket import WebsocketCommunicator

# The consumer reads the database from other threads: rows must be committed.
pytestmark = pytest.mark.django_db(transaction=True)

NAMES = ("Zephyrine-Ultra", "Quokkabot-9000")
IDS = (731_054, 731_077)
PROMPT = "Tell me about rivers and lakes"


@pytest.fixture
def battle(server) -> Battle:
    """A live battle whose two answers are queued (their tasks are run by each test)."""
    server.reset()
    campaign = Campaign.objects.create(slug="ws", title="WS", status="active", mode="live")
    models = [
        ModelEntry.objects.create(
            id=pk,
            name=name,
            backend="openai",
            backend_settings={"base_url": server.base_url, "model": f"m{pk}?chunk_delay=0.002", "max_retries": 0},
        )
        for pk, name in zip(IDS, NAMES, strict=True)
    ]
    campaign.contenders.set(models)
    prompt = Prompt.objects.create(campaign=campaign, messages=[{"role": "user", "content": PROMPT}])
    left, right = (Response.objects.create(prompt=prompt, model=m, status="queued") for m in models)
    voter = Voter.objects.create()
    conversation = {"user": [PROMPT], "left": [], "right": []}
    return Battle.objects.create(
        campaign=campaign, voter=voter, prompt=prompt, left=left, right=right, conversation=conversation
    )


def headers(voter: Voter | None) -> list[tuple[bytes, bytes]]:
    result = [(b"origin", b"http://testserver")]
    if voter is not None:
        response = HttpResponse()  # the cookie exactly as the site sets it
        response.set_signed_cookie(COOKIE_NAME, voter.public_id, salt=COOKIE_SALT)
        result.append((b"cookie", f"{COOKIE_NAME}={response.cookies[COOKIE_NAME].value}".encode()))
    return result


def communicator(battle: Battle, voter: Voter | None) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, f"/ws/battles/{battle.pk}/", headers=headers(voter))


def run(scenario):
    """Run an async scenario in a thread of its own: the browser tests' Playwright keeps an event loop
    running in the main thread, where async_to_sync refuses to start one."""

    def target():
        try:
            return async_to_sync(scenario)()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(target).result()


def run_task(response_id: int) -> str:
    return generate_response.apply(args=[response_id]).get()


async def receive_until_done(comm, sides: set[str]) -> list[dict]:
    frames = []
    while sides:
        frame = await comm.receive_json_from(timeout=6)
        frames.append(frame)
        if frame["type"] in ("done", "error"):
            sides.discard(frame["side"])
    return frames


def identity_leaks(frames: list[dict], battle: Battle) -> list[str]:
    text = json.dumps(frames)
    needles = [*NAMES, *(str(pk) for pk in IDS), "m731", "openai", "127.0.0.1"]
    needles += [str(pk) for pk in (battle.left_id, battle.right_id) if pk > 999]
    return [n for n in needles if re.search(rf"(?<![\w-]){re.escape(n)}(?![\w])", text, re.I)]


def test_the_owner_gets_a_snapshot_then_both_answers_token_by_token(battle, server):
    async def scenario():
        comm = communicator(battle, battle.voter)
        connected, _ = await comm.connect()
        assert connected
        snapshot = await comm.receive_json_from(timeout=5)
        await database_sync_to_async(run_task)(battle.left_id)
        await database_sync_to_async(run_task)(battle.right_id)
        frames = await receive_until_done(comm, {"A", "B"})
        await comm.disconnect()
        return snapshot, frames

    snapshot, frames = run(scenario)

    queued = {"text": "", "status": "queued"}
    assert snapshot == {"type": "snapshot", "A": queued, "B": queued}
    answer = expected_reply(PROMPT)
    for side in "AB":
        deltas = [f["text"] for f in frames if f["type"] == "delta" and f["side"] == side]
        assert len(deltas) > 1 and "".join(deltas) == answer  # streamed, in order, nothing lost
        done = [f for f in frames if f["type"] == "done" and f["side"] == side]
        assert done == [{"type": "done", "side": side, "html": f"<p>{answer}</p>\n"}]
    assert {tuple(sorted(f)) for f in frames} <= {("side", "text", "type"), ("html", "side", "type")}
    assert identity_leaks([snapshot, *frames], battle) == []
    assert len(server.requests) == 2


def test_another_voter_or_a_stranger_is_turned_away(battle):
    async def close_code(voter):
        comm = communicator(battle, voter)
        await comm.connect()
        return await comm.receive_output(timeout=5)

    other = Voter.objects.create()

    for voter in (other, None):
        assert run(partial(close_code, voter)) == {"type": "websocket.close", "code": 4403}


def test_an_unknown_battle_is_turned_away_like_someone_elses(battle):
    async def scenario():
        comm = WebsocketCommunicator(application, "/ws/battles/nope/", headers=headers(battle.voter))
        await comm.connect()
        return await comm.receive_output(timeout=5)

    assert run(scenario) == {"type": "websocket.close", "code": 4403}


def test_a_reconnecting_page_resumes_from_the_stored_text(battle):
    run_task(battle.left_id)  # side A finished while the page was away
    Response.objects.filter(pk=battle.right_id).update(status="running", content="Rivers flow")
    group = f"battle.{battle.pk}"

    async def scenario():
        comm = communicator(battle, battle.voter)
        await comm.connect()
        snapshot = await comm.receive_json_from(timeout=5)
        layer = get_channel_layer()
        frame = {"type": "battle.frame", "side": "B", "turn": 0, "kind": "delta"}
        # Published before the save the snapshot read: only the unseen part reaches the page.
        await layer.group_send(group, {**frame, "text": "flow into", "offset": 7})
        first = await comm.receive_json_from(timeout=5)
        # Published before this page joined and saved since: the gap comes from the database.
        await database_sync_to_async(Response.objects.filter(pk=battle.right_id).update)(
            content="Rivers flow into lakes"
        )
        await layer.group_send(group, {**frame, "text": " and seas", "offset": 22})
        second = [await comm.receive_json_from(timeout=5) for _ in range(2)]
        await layer.group_send(group, {**frame, "turn": 1, "text": "old turn", "offset": 0})
        await layer.group_send(group, {**frame, "kind": "done", "html": "<p>x</p>"})
        last = await comm.receive_json_from(timeout=5)
        await comm.disconnect()
        return snapshot, first, second, last

    snapshot, first, second, last = run(scenario)

    answer = expected_reply(PROMPT)
    assert snapshot == {
        "type": "snapshot",
        "A": {"text": answer, "status": "done", "html": f"<p>{answer}</p>\n"},
        "B": {"text": "Rivers flow", "status": "running"},
    }
    assert first == {"type": "delta", "side": "B", "text": " into"}
    assert second == [
        {"type": "delta", "side": "B", "text": " lakes"},
        {"type": "delta", "side": "B", "text": " and seas"},
    ]
    assert last == {"type": "done", "side": "B", "html": "<p>x</p>"}  # the other turn's frame was dropped


def test_a_failing_side_sends_plain_words_and_voids_the_battle(battle, server):
    ModelEntry.objects.filter(pk=IDS[1]).update(
        backend_settings={"base_url": server.base_url, "model": "m?status=401", "max_retries": 0}
    )

    async def scenario():
        comm = communicator(battle, battle.voter)
        await comm.connect()
        await comm.receive_json_from(timeout=5)
        await database_sync_to_async(run_task)(battle.right_id)
        frame = await comm.receive_json_from(timeout=5)
        await comm.disconnect()
        return frame

    frame = run(scenario)

    assert frame == {"type": "error", "side": "B", "message": "the site is not allowed to use it at the moment."}
    assert Battle.objects.get(pk=battle.pk).status == "void"


def test_frames_lost_by_the_channel_layer_are_recovered_from_the_database(battle):
    """E.g. Redis restarted mid-answer: the page still gets the whole text and the end of each side."""

    async def scenario():
        comm = communicator(battle, battle.voter)
        await comm.connect()
        await comm.receive_json_from(timeout=5)
        # Both answers finish without a single frame reaching this page.
        await database_sync_to_async(
            lambda: [
                Response.objects.filter(pk=pk).update(status="done", content=text, html=f"<p>{text}</p>")
                for pk, text in ((battle.left_id, "Left answer"), (battle.right_id, "Right answer"))
            ]
        )()
        frames = await receive_until_done(comm, {"A", "B"})
        await comm.disconnect()
        return frames

    frames = run(scenario)

    assert sorted(frames, key=lambda f: (f["side"], f["type"])) == [
        {"type": "delta", "side": "A", "text": "Left answer"},
        {"type": "done", "side": "A", "html": "<p>Left answer</p>"},
        {"type": "delta", "side": "B", "text": "Right answer"},
        {"type": "done", "side": "B", "html": "<p>Right answer</p>"},
    ]
