"""The embedded mode as `make run` serves it: uvicorn on a SQLite file, no broker, no Redis, the
worker and beat in threads of the server process (arena.embedded)."""

from __future__ import annotations

import json

import pytest

from tests import stack


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/embedded/" in str(item.fspath):
            item.add_marker(pytest.mark.embedded)


@pytest.fixture
def embedded_env(tmp_path, static_root) -> dict[str, str]:
    """The environment of `make run`, migrated."""
    with stack.deployment(True, tmp_path, STATIC_ROOT=str(static_root)) as env:
        yield env


@pytest.fixture
def load(embedded_env, tmp_path):
    """load(spec): a campaign file loaded into the embedded database."""

    def load_spec(spec: dict) -> None:
        path = tmp_path / f"{spec['slug']}.json"
        path.write_text(json.dumps(spec))
        stack.manage(embedded_env, "load_campaign", str(path))

    return load_spec
