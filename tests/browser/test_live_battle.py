"""A live battle in headless Chromium: write a prompt, watch both answers stream in, vote, see the names.

pytest-django's live_server is WSGI-only (no websockets), and channels' live-server test case needs
daphne, which Arena does not depend on. So this test runs the site the way it is deployed, with the
helpers of tests/stack.py and the local model server: in the embedded pass one uvicorn process on a
SQLite file (worker and beat in its threads, as `make run`); in the distributed pass a uvicorn process,
a Celery worker process, Redis as broker and channel layer and a fresh PostgreSQL database.
"""

from __future__ import annotations

import json
import re

import pytest

from tests import stack
from tests.modes import on_postgres
from tests.protocol_server import ProtocolServer

NAMES = ("Falcon-Live", "Otter-Live")
# About 1.5 s of streaming per side, so the page is seen mid-answer.
REPLY = " ".join(f"token{i}" for i in range(50))


@pytest.fixture
def site(static_root, tmp_path):
    """The site as this pass deploys it, with a live campaign whose models are local: the embedded
    mode's one server (its worker in threads), or uvicorn beside a Celery worker on PostgreSQL and Redis."""
    with stack.deployment(not on_postgres(), tmp_path, STATIC_ROOT=str(static_root)) as env, ProtocolServer() as server:
        spec = stack.live_campaign_spec(server.base_url, NAMES, REPLY, chunk_delay=0.03)
        (tmp_path / "live.json").write_text(json.dumps(spec))
        stack.manage(env, "load_campaign", str(tmp_path / "live.json"))
        started = []
        try:
            web, url = stack.start_web(env, tmp_path)
            started.append(web)
            if on_postgres():
                started.append(stack.start_worker(env, tmp_path, queues="generate_api,default"))
            yield url
        finally:
            for process in started:
                process.stop()
                print(f"----- {process.name} log -----\n{process.log()[-3000:]}")


def test_a_voter_watches_both_answers_stream_in_then_votes_and_sees_the_names(page, site):
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    page.goto(f"{site}/c/live/live/")
    page.fill("#live-prompt", "Write a poem about tea")
    assert page.inner_text(".char-count") == "22"
    page.click("#send-prompt")
    page.wait_for_url(re.compile(r"/b/[\w-]+/live/$"))

    # Mid-stream: text has arrived on both sides, and the vote is still locked.
    page.wait_for_function(
        """() => ["a", "b"].every((s) => document.getElementById(`answer-${s}`).textContent.includes("token"))
             && document.querySelector('button[value="left"]').disabled"""
    )
    assert page.is_visible("#live-wait") and page.is_hidden("#live-continue")
    partial = len(page.inner_text("#answer-a"))
    assert 0 < partial < len(REPLY)

    page.wait_for_selector('button[value="left"]:not([disabled])', timeout=15_000)
    for side in ("a", "b"):
        assert page.inner_text(f"#answer-{side}") == REPLY
        assert page.inner_text(f"#status-{side}") == "finished"
    assert page.is_hidden("#live-wait") and page.is_visible("#live-continue")
    before = page.content()
    assert not any(name in before for name in NAMES)

    page.click('button[value="left"]')
    page.wait_for_selector("#name-a")
    assert {page.inner_text("#name-a"), page.inner_text("#name-b")} == set(NAMES)
    assert errors == [], errors
