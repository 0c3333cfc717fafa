"""docker-compose.yml, run without Docker: each application service's own command and environment,
pointed at the local PostgreSQL and Redis. Two web processes (Granian), a ws process (uvicorn),
two API workers, beat.

No Docker engine runs here, so this is how the compose file's commands are proved to work together:
votes split between both web processes are each stored once, a generation runs on a worker, and beat
(not a vote) triggers the leaderboard recompute.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

import httpx
import psycopg
import yaml

from tests import stack
from tests.protocol_server import ProtocolServer

COMPOSE = stack.ROOT / "docker-compose.yml"
_VAR = re.compile(r"\$\{(\w+)(?::?-([^}]*))?(?::\?[^}]*)?\}")


def _expand(text: str, values: dict[str, str]) -> str:
    """Compose-style ${VAR}, ${VAR:-default} and ${VAR:?error} substitution."""
    return _VAR.sub(lambda m: values.get(m.group(1), m.group(2) or ""), text)


def service_argv(service: dict, values: dict[str, str]) -> list[str]:
    command = service["command"]
    argv = (
        [_expand(part, values) for part in command]
        if isinstance(command, list)
        else shlex.split(_expand(command, values))
    )
    # The image runs these on its PATH; here they are the virtualenv's modules.
    if argv[0] in {"granian", "uvicorn", "celery"}:
        argv = [sys.executable, "-m", *argv]
    elif argv[0] == "python":
        argv[0] = sys.executable
    return argv


def service_env(service: dict, values: dict[str, str], pg_url: str) -> dict[str, str]:
    env = stack.base_env(pg_url)
    for key, value in (service.get("environment") or {}).items():
        env[key] = _expand(str(value), values)
    # Pointed at this machine's services instead of the compose DNS names.
    env["DATABASE_URL"] = pg_url
    env["REDIS_URL"] = stack.REDIS_URL
    return env


def test_the_compose_services_run_together_on_this_machine(pg_url, static_root, tmp_path):
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    values = {"POSTGRES_PASSWORD": "unused-here", "WEB_WORKERS": "1", "WS_WORKERS": "1", "API_WORKER_CONCURRENCY": "2"}
    env = {
        name: service_env(services[name], values, pg_url)
        | {
            "STATIC_ROOT": str(static_root),
            "ARENA_RECOMPUTE_INTERVAL": "2",
            "ARENA_VAR_DIR": str(tmp_path),
            # Votes alone would recompute after an hour: a snapshot can only come from beat.
            "ARENA_RECOMPUTE_DEBOUNCE": "3600",
        }
        for name in ("migrate", "web", "ws", "worker-api", "beat")
    }
    stack.flush_redis()
    started: list[stack.Process] = []
    server = ProtocolServer()
    server.start()
    try:
        migrate = stack.Process("migrate", service_argv(services["migrate"], values), env["migrate"], tmp_path)
        assert migrate.popen.wait(timeout=180) == 0, migrate.log()
        migrate.stop()

        spec = stack.small_campaign_spec("smoke", models=2, prompts=3)
        spec["models"].append(
            {
                "name": "Model-Live",
                "backend": "openai",
                "backend_settings": {"base_url": server.base_url, "model": "smoke-model", "trust_env": False},
            }
        )
        (tmp_path / "smoke.json").write_text(json.dumps(spec))
        stack.manage(env["migrate"], "load_campaign", str(tmp_path / "smoke.json"))

        urls = []
        for name, service in (("web0", "web"), ("web1", "web"), ("ws", "ws")):
            port = stack.free_port()
            argv = service_argv(services[service], values)
            argv[argv.index("--host") + 1] = "127.0.0.1"
            argv[argv.index("--port") + 1] = str(port)
            process = stack.Process(name, argv, env[service], tmp_path)
            started.append(process)
            urls.append(f"http://127.0.0.1:{port}")
        for url in urls:  # the image's health probe asks /healthz of web and ws alike
            stack.wait_until(lambda url=url: _healthy(url), timeout=60, message=f"{url}/healthz")
        assert "Starting granian" in started[0].log() and "Uvicorn running" in started[2].log()
        urls = urls[:2]
        for i in range(2):
            argv = [*service_argv(services["worker-api"], values), "-n", f"api{i}@%h"]
            worker = stack.Process(f"worker{i}", argv, env["worker-api"], tmp_path)
            started.append(worker)
            worker.wait_for_log("ready.", timeout=90)
        beat = stack.Process("beat", service_argv(services["beat"], values), env["beat"], tmp_path)
        started.append(beat)

        # A generation runs on a worker: the live model's answers come from the protocol server.
        out = stack.manage(env["migrate"], "generate_responses", "smoke", "--wait", timeout=120)
        assert "3 done" in out or "done: 3" in out or out
        with psycopg.connect(pg_url) as conn:
            generated = conn.execute(
                "SELECT count(*) FROM arena_response r JOIN arena_modelentry m ON m.id = r.model_id "
                "WHERE m.name = 'Model-Live' AND r.status = 'done'"
            ).fetchone()[0]
        assert generated == 3
        assert len(server.requests_for("smoke-model")) == 3

        # Votes split between the two web processes; each voter alternates between them.
        battle_ids = []
        for voter in range(4):
            clients = [httpx.Client(base_url=url, timeout=10) for url in urls]
            for turn in range(3):
                client = clients[(voter + turn) % 2]
                if turn:  # the voter's cookies travel with them to the other process
                    client.cookies = clients[(voter + turn + 1) % 2].cookies
                battle_ids.append(stack.vote_once(client, "smoke", ("left", "right", "tie")[turn]))
            for client in clients:
                client.close()
        with psycopg.connect(pg_url) as conn:
            stored = [r[0] for r in conn.execute("SELECT battle_id FROM arena_vote").fetchall()]
        assert sorted(stored) == sorted(battle_ids) and len(set(stored)) == 12

        def snapshot():
            with psycopg.connect(pg_url) as conn:
                row = conn.execute(
                    "SELECT n_votes FROM ratings_leaderboardsnapshot s JOIN arena_campaign c ON c.id = s.campaign_id "
                    "WHERE c.slug = 'smoke' AND s.dimension = '' AND s.category = '' AND s.method = 'davidson'"
                ).fetchone()
            return row is not None and row[0] == 12

        stack.wait_until(snapshot, timeout=60, message="beat's recompute covering the 12 votes")
        assert "recompute-active-campaigns" in beat.log()
    finally:
        server.stop()
        for process in started:
            process.stop()
            print(f"----- {process.name} -----\n{process.log()[-3000:]}")


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_static_root_is_shared(static_root):
    assert Path(static_root, "staticfiles.json").exists()
