"""The deployed web tier: Granian (WSGI) serves the pages and the API, uvicorn (ASGI) the websockets.

As in docker-compose.yml, both run the production settings behind a proxy that sets
X-Forwarded-Proto and X-Forwarded-For afresh (SECURE_PROXY_SSL_HEADER and ARENA_TRUST_X_FORWARDED_FOR
on), on PostgreSQL, Redis and a real Celery worker. The client sends what Caddy would send.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests import stack
from tests.deploy.test_compose import healthcheck_script
from tests.integration.test_live_battle import NAMES, PROMPT, REPLY, live_spec, stream, write_prompt
from tests.protocol_server import ProtocolServer

CLIENT_IP = "203.0.113.7"


@pytest.fixture
def proxied_env(stack_env):
    """The compose app environment's proxy settings, with HTTPS redirects on as in production."""
    return stack_env | {
        "SECURE_PROXY_SSL_HEADER": "true",
        "SECURE_SSL_REDIRECT": "true",
        "ARENA_TRUST_X_FORWARDED_FOR": "true",
    }


def proxied_client(base_url: str) -> httpx.Client:
    """A browser on https://<host>/ as the web server sees it through the proxy."""
    origin = base_url.replace("http://", "https://")
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": CLIENT_IP, "Origin": origin}
    return httpx.Client(base_url=base_url, headers=headers, timeout=10)


def image_healthcheck(base_url: str, script: Path) -> int:
    """Exit status of the image's health probe (Dockerfile, arena-healthcheck) against a server."""
    env = {**os.environ, "PORT": base_url.rsplit(":", 1)[1], "ALLOWED_HOSTS": "localhost,127.0.0.1"}
    return subprocess.run([sys.executable, str(script)], env=env, capture_output=True, timeout=30).returncode


def test_votes_through_granian_are_stored_once_and_https_comes_from_the_proxy(proxied_env, pg_url, processes, tmp_path):
    spec = tmp_path / "it.json"
    spec.write_text(json.dumps(stack.small_campaign_spec("it", models=3, prompts=4)))
    stack.manage(proxied_env, "load_campaign", str(spec))
    processes.worker(proxied_env)
    web = processes.granian(proxied_env, workers=2)

    # Without the proxy's X-Forwarded-Proto the request is plain HTTP: redirected to HTTPS.
    plain = httpx.get(f"{web}/c/it/vote/", timeout=10)
    assert plain.status_code == 301 and plain.headers["location"].startswith("https://")

    with proxied_client(web) as client:
        battle_ids = [stack.vote_once(client, "it", verdict) for verdict in ("left", "right", "tie")]
        # CSRF compared the Origin with https://<host>: the vote was accepted as an HTTPS request.
        again = client.post(
            f"/b/{battle_ids[0]}/vote",
            data={"verdict": "right"},
            headers={"X-CSRFToken": client.cookies["csrftoken"], "Accept": "application/json"},
        )
        assert again.status_code == 409, again.text

    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT battle_id, verdict FROM arena_vote ORDER BY id").fetchall()
        hashes = [r[0] for r in conn.execute("SELECT ip_hash FROM arena_voter").fetchall()]
    assert rows == list(zip(battle_ids, ("left", "right", "tie"), strict=True))
    expected = hmac.new(b"integration-test-salt", CLIENT_IP.encode(), hashlib.sha256).hexdigest()
    assert hashes == [expected], "the voter's address is the forwarded client's, not the proxy's"


def test_a_live_battle_opened_over_granian_streams_through_uvicorn(proxied_env, pg_url, processes, tmp_path):
    with ProtocolServer() as server:
        spec = tmp_path / "live.json"
        spec.write_text(json.dumps(live_spec(server)))
        stack.manage(proxied_env, "load_campaign", str(spec))
        processes.worker(proxied_env, queues="generate_api,default")
        web = processes.granian(proxied_env)
        ws = processes.web(proxied_env, name="ws")
        probe = tmp_path / "arena-healthcheck"
        probe.write_text(healthcheck_script())
        assert image_healthcheck(web, probe) == image_healthcheck(ws, probe) == 0

        with proxied_client(web) as client:
            battle_id = write_prompt(client, "live", PROMPT)
            cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
            origin = client.headers["Origin"]

            # Granian serves no websockets (WSGI, --no-ws): the proxy must route /ws/ to uvicorn.
            headers = {"Cookie": cookie, "Origin": origin, "X-Forwarded-Proto": "https"}
            with pytest.raises(InvalidStatus) as refused:
                connect(f"ws://{web.removeprefix('http://')}/ws/battles/{battle_id}/", additional_headers=headers)
            assert refused.value.response.status_code == 404

            frames = stream(f"ws://{ws.removeprefix('http://')}/ws/battles/{battle_id}/", cookie, origin)
            assert frames[0]["type"] == "snapshot"
            for side in "AB":
                text = frames[0][side]["text"] + "".join(
                    f["text"] for f in frames if f["type"] == "delta" and f["side"] == side
                )
                assert text == REPLY  # the worker's tokens reached uvicorn's socket through Redis
            assert not any(name in json.dumps(frames) for name in NAMES)

            vote = client.post(
                f"/b/{battle_id}/vote",
                json={"verdict": "right"},
                headers={"X-CSRFToken": client.cookies["csrftoken"], "Accept": "application/json"},
            )
            assert vote.status_code == 200, vote.text
            assert {vote.json()["left"]["model"], vote.json()["right"]["model"]} == set(NAMES)

    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT battle_id, verdict FROM arena_vote").fetchall() == [(battle_id, "right")]
