"""The embedded mode as `make run` serves it: uvicorn on a SQLite file, no broker, no Redis, the
worker and beat in threads of the server process (arena.embedded)."""

from __future__ import annotations

import json
import os

import pytest

from tests import stack


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/embedded/" in str(item.fspath):
            item.add_marker(pytest.mark.embedded)


@pytest.fixture
def embedded_env(tmp_path, static_root) -> dict[str, str]:
    """The environment of `make run` (DEBUG on, nothing but a folder for the SQLite file), migrated."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CELERY_", "PYTEST", "ARENA_"))}
    for name in ("DATABASE_URL", "REDIS_URL", "SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"):
        env.pop(name, None)
    env.update(DEBUG="true", DJANGO_SETTINGS_MODULE="arena.settings", ARENA_VAR_DIR=str(tmp_path / "var"),
               STATIC_ROOT=str(static_root), PYTHONUNBUFFERED="1", LOG_LEVEL="INFO")  # fmt: skip
    stack.manage(env, "migrate", "--noinput", "-v", "0")
    return env


@pytest.fixture
def load(embedded_env, tmp_path):
    """load(spec): a campaign file loaded into the embedded database."""

    def load_spec(spec: dict) -> None:
        path = tmp_path / f"{spec['slug']}.json"
        path.write_text(json.dumps(spec))
        stack.manage(embedded_env, "load_campaign", str(path))

    return load_spec
