"""Integration fixtures: a real PostgreSQL database and Redis (the processes: tests/conftest.py)."""

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


@pytest.fixture
def stack_env(pg_url, static_root):
    """Environment of a distributed deployment on this machine, with a migrated database."""
    stack.flush_redis()
    env = stack.base_env(pg_url, STATIC_ROOT=str(static_root))
    stack.manage(env, "migrate", "--noinput", "-v", "0")
    return env
