"""The two passes of the suite: embedded (SQLite file, tasks in-process) and distributed (PostgreSQL).

`make test` runs every behaviour test in both. A test that can only hold on PostgreSQL is marked
``postgres_only(reason)`` and skipped, with its reason, in the embedded pass; the embedded server's
tests (tests/embedded) run in the embedded pass, the distributed processes' tests (tests/integration)
in the distributed one.
"""

from __future__ import annotations

import pytest
from django.conf import settings


def on_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def postgres_only(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.postgres_only(reason=reason)


def select(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip what cannot hold in this pass, and leave out the other pass's server tests."""
    postgres = on_postgres()
    other = "embedded" if postgres else "integration"
    kept, left_out = [], []
    for item in items:
        (left_out if item.get_closest_marker(other) else kept).append(item)
        marker = item.get_closest_marker("postgres_only")
        if marker is not None and not postgres:
            item.add_marker(pytest.mark.skip(reason=f"PostgreSQL only: {marker.kwargs['reason']}"))
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept
