"""Real processes for integration tests: a PostgreSQL database, web servers (uvicorn for ASGI,
Granian for WSGI), Celery workers.

Everything runs on 127.0.0.1 with the production settings module (arena.settings), configured only
through environment variables, exactly as a deployment would be.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get("ARENA_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("ARENA_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
if _xdist := os.environ.get("PYTEST_XDIST_WORKER"):  # "gw0", "gw1", ...: a Redis database each (15, 14, ...)
    REDIS_URL = f"{REDIS_URL.rsplit('/', 1)[0]}/{15 - int(_xdist.removeprefix('gw')) % 8}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_env(database_url: str, redis_url: str | None = REDIS_URL, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CELERY_", "PYTEST"))}
    env.update(
        DJANGO_SETTINGS_MODULE="arena.settings",
        DATABASE_URL=database_url,
        SECRET_KEY="integration-test-secret",
        ARENA_IP_SALT="integration-test-salt",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="false",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        ARENA_RECOMPUTE_DEBOUNCE="0.5",
        ARENA_BOOTSTRAP_ROUNDS="100",
        PYTHONUNBUFFERED="1",
    )
    env.pop("REDIS_URL", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    env.update(extra)
    return env


def embedded_env(var_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of `make run`: DEBUG on, a folder for the SQLite file, no broker and no Redis
    (the server runs its worker and beat in threads: arena.embedded)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CELERY_", "PYTEST", "ARENA_"))}
    for name in ("DATABASE_URL", "REDIS_URL", "SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"):
        env.pop(name, None)
    env.update(
        DEBUG="true",
        DJANGO_SETTINGS_MODULE="arena.settings",
        ARENA_VAR_DIR=str(var_dir),
        PYTHONUNBUFFERED="1",
        LOG_LEVEL="INFO",
        **extra,
    )
    return env


@contextmanager
def deployment(embedded: bool, work_dir: Path, **extra: str) -> Iterator[dict[str, str]]:
    """A migrated deployment's environment: the embedded mode's (a SQLite file in ``work_dir``), or the
    distributed mode's (a fresh PostgreSQL database, an emptied Redis database)."""
    if embedded:
        env = embedded_env(work_dir / "var", **extra)
        manage(env, "migrate", "--noinput", "-v", "0")
        yield env
        return
    with postgres_database() as url:
        flush_redis()
        env = base_env(url, **extra)
        manage(env, "migrate", "--noinput", "-v", "0")
        yield env


@contextmanager
def postgres_database(admin_url: str = PG_ADMIN_URL) -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the server of ``admin_url``; dropped afterwards."""
    name = f"arena_it_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        raise RuntimeError(f"PostgreSQL is not reachable at {admin_url}: run `make services` ({error})") from None
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


class Process:
    """A child process whose output goes to a log file that failing tests can print."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, needle: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log():
                return
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log()[-3000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"{self.name}: no {needle!r} within {timeout}s:\n{self.log()[-3000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill the whole process group (a worker's pool children included)."""
        with suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)
        self.popen.wait(timeout=30)

    def stop(self) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
            except ProcessLookupError:
                pass
        self._log.close()


def uvicorn_argv(port: int, *, host: str = "127.0.0.1", workers: int = 1) -> list[str]:
    """uvicorn serving the ASGI application: HTTP and the live-battle websockets."""
    argv = [sys.executable, "-m", "uvicorn", "arena.asgi:application", "--host", host, "--port", str(port)]
    return argv + (["--workers", str(workers)] if workers > 1 else [])


def granian_argv(port: int, *, host: str = "127.0.0.1", workers: int = 1, threads: int = 8) -> list[str]:
    """Granian serving the WSGI application, as deployed for the pages and the API (docs/deploy.md):
    ``threads`` blocking threads per worker process, no websockets (uvicorn serves /ws/)."""
    return [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "wsgi",
        "arena.wsgi:application",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--blocking-threads",
        str(threads),
        "--no-ws",
    ]


def start_server(name: str, argv: list[str], port: int, env: dict[str, str], log_dir: Path) -> tuple[Process, str]:
    """Start a web server process; return it and its base URL once /healthz answers 200."""
    process = Process(name, argv, env, log_dir)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"{name} exited early:\n{process.log()[-3000:]}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return process, base_url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.stop()
    raise RuntimeError(f"{name} did not become healthy:\n{process.log()[-3000:]}")


def start_web(env: dict[str, str], log_dir: Path, name: str = "web", port: int | None = None) -> tuple[Process, str]:
    """uvicorn (ASGI) on a free port: pages and websockets, as `make run` and the `ws` service run it."""
    port = port or free_port()
    return start_server(name, uvicorn_argv(port), port, env, log_dir)


def start_granian(
    env: dict[str, str],
    log_dir: Path,
    name: str = "granian",
    port: int | None = None,
    workers: int = 1,
    threads: int = 8,
) -> tuple[Process, str]:
    """Granian (WSGI) on a free port: pages and API, as the `web` service runs it."""
    port = port or free_port()
    return start_server(name, granian_argv(port, workers=workers, threads=threads), port, env, log_dir)


def start_worker(
    env: dict[str, str],
    log_dir: Path,
    name: str = "worker",
    queues: str = "default,ratings,generate_api",
    concurrency: int = 2,
) -> Process:
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "arena",
        "worker",
        "-Q",
        queues,
        "-c",
        str(concurrency),
        "-n",
        f"{name}@%h",
        "--without-gossip",
        "--without-mingle",
        "-l",
        "INFO",
    ]
    process = Process(name, argv, env, log_dir)
    process.wait_for_log("ready.", timeout=90)
    return process


def start_beat(env: dict[str, str], log_dir: Path, name: str = "beat") -> Process:
    """Celery beat, as the `beat` service runs it (its schedule file in ``log_dir``)."""
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "arena",
        "beat",
        "-l",
        "INFO",
        "-s",
        str(log_dir / f"{name}-schedule"),
    ]
    process = Process(name, argv, env, log_dir)
    process.wait_for_log("beat: Starting", timeout=60)
    return process


def flush_redis(url: str = REDIS_URL) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def wait_until(predicate, timeout: float = 30, interval: float = 0.2, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def small_campaign_spec(slug: str = "it", models: int = 3, prompts: int = 4) -> dict:
    """A campaign definition (the load_campaign format) with pre-written responses."""
    names = [f"Model-{chr(65 + i)}" for i in range(models)]
    return {
        "slug": slug,
        "title": f"Integration {slug}",
        "status": "active",
        "instructions": "Vote for the better answer.",
        "dimensions": [{"key": "helpfulness", "label": "Helpfulness"}],
        "models": [{"name": name, "backend": "static"} for name in names],
        "prompts": [
            {
                "external_id": f"p{p}",
                "category": "coding" if p % 2 else "facts",
                "prompt": f"Question {p}?",
                "responses": {name: f"Answer {i} to question {p}." for i, name in enumerate(names)},
            }
            for p in range(prompts)
        ],
    }


def live_campaign_spec(base_url: str, names: tuple[str, ...], reply: str, chunk_delay: float) -> dict:
    """A live campaign whose models are the local protocol server, each streaming ``reply``."""
    return {
        "slug": "live",
        "title": "Live",
        "status": "active",
        "mode": "live",
        "models": [
            {
                "name": name,
                "backend": "openai",
                "backend_settings": {
                    "base_url": base_url,
                    "model": f"m{i}?chunk_delay={chunk_delay}&reply={reply}",
                    "max_retries": 0,
                },
                "params": {"max_new_tokens": 1000},
            }
            for i, name in enumerate(names)
        ],
    }


BATTLE_ACTION = re.compile(r'action="/b/([^/]+)/vote"')


def vote_once(client: httpx.Client, slug: str, verdict: str = "left") -> str:
    """One voter cycle over HTTP: open the next battle page, vote. Returns the battle id."""
    page = client.get(f"/c/{slug}/vote/")
    page.raise_for_status()
    battle_id = BATTLE_ACTION.search(page.text).group(1)
    response = client.post(
        f"/b/{battle_id}/vote",
        data={"verdict": verdict},
        headers={
            "X-CSRFToken": client.cookies["csrftoken"],
            "Accept": "application/json",
            "Referer": str(client.base_url),
        },
    )
    response.raise_for_status()
    return battle_id
