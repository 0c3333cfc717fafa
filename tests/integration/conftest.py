"""Integration fixtures: real PostgreSQL, Redis, ASGI server and Celery worker processes."""

from __future__ import annotations

import pytest

from tests import stack


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def pg_url():
    with stack.postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def static_root(tmp_path_factory):
    """Static files collected once, as the production image does at build time."""
    root = tmp_path_factory.mktemp("static")
    env = stack.base_env("sqlite:///:memory:", redis_url=None, STATIC_ROOT=str(root))
    stack.manage(env, "collectstatic", "--noinput", "-v", "0")
    return root


@pytest.fixture
def stack_env(pg_url, static_root):
    """Environment of a distributed deployment on this machine, with a migrated database."""
    stack.flush_redis()
    env = stack.base_env(pg_url, STATIC_ROOT=str(static_root))
    stack.manage(env, "migrate", "--noinput", "-v", "0")
    return env


@pytest.fixture
def processes(tmp_path):
    """Start processes with processes.web(env) (uvicorn), processes.granian(env) and
    processes.worker(env); all stopped at the end."""

    class Processes:
        def __init__(self):
            self.started: list[stack.Process] = []

        def web(self, env, **kw):
            process, url = stack.start_web(env, tmp_path, **kw)
            self.started.append(process)
            return url

        def granian(self, env, **kw):
            process, url = stack.start_granian(env, tmp_path, **kw)
            self.started.append(process)
            return url

        def worker(self, env, **kw):
            process = stack.start_worker(env, tmp_path, **kw)
            self.started.append(process)
            return process

    procs = Processes()
    yield procs
    for process in procs.started:
        process.stop()
        # Shown by pytest only when the test failed.
        print(f"----- {process.name} log (last 4000 chars) -----\n{process.log()[-4000:]}")
