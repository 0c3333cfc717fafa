"""The review's flood, over HTTP against the distributed deployment (issue 14, finding 2): 150 prompts
to a live campaign with only the CSRF cookie and no voter cookie, spread over two web processes. The
per-address limit is one Redis counter for both processes, so 20 are accepted, not 150 (nor 2 x 20),
and the refused requests create no voter."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import httpx
import psycopg

from tests import stack

LIMIT = 20


def _outside_the_hours_last_seconds() -> None:
    """The hourly window must not roll over during the flood (a fixed window)."""
    now = datetime.now(UTC)
    if now.minute == 59 and now.second >= 30:
        time.sleep(61 - now.second)


def test_150_cookieless_prompts_over_two_web_processes_are_held_to_one_limit(stack_env, pg_url, processes, tmp_path):
    # The hourly limit only, so that the run cannot straddle two minute windows.
    env = {**stack_env, "ARENA_IP_LIVE_PROMPTS_PER_MINUTE": "0", "ARENA_IP_LIVE_PROMPTS_PER_HOUR": str(LIMIT)}
    spec = tmp_path / "live.json"
    spec.write_text(json.dumps(stack.live_campaign_spec("http://127.0.0.1:9/v1", ("One", "Two"), "hi", 0)))
    stack.manage(env, "load_campaign", str(spec))
    webs = [processes.web(env, name="web1"), processes.web(env, name="web2")]
    with httpx.Client(base_url=webs[0], timeout=10) as first:
        first.get("/c/live/live/").raise_for_status()
        csrf = first.cookies["csrftoken"]
    _outside_the_hours_last_seconds()

    codes = []
    for i in range(150):
        web = webs[i % 2]
        answer = httpx.post(
            f"{web}/c/live/live/",
            data={"prompt": f"Prompt number {i}"},
            cookies={"csrftoken": csrf},
            headers={"X-CSRFToken": csrf, "Referer": f"{web}/", "Accept": "application/json"},
            timeout=10,
        )
        codes.append(answer.status_code)
        if answer.status_code == 429:
            assert (
                answer.json()["message"] == "Too many prompts from your network in the last hour. "
                "Please come back later."
            )
            assert int(answer.headers["Retry-After"]) > 0

    assert codes.count(201) == LIMIT and codes.count(429) == 150 - LIMIT
    with psycopg.connect(pg_url) as db:
        voters = db.execute("SELECT count(*) FROM arena_voter").fetchone()[0]
        battles = db.execute("SELECT count(*) FROM arena_battle").fetchone()[0]
    assert voters == battles == LIMIT
