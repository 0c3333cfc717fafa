"""Fixtures for the backend tests: a real protocol server and an API key in the environment."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Make ``tests.protocol_server`` importable whatever pytest's rootdir / import mode.
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.backends.helpers import API_KEY, KEY_ENV  # noqa: E402
from tests.protocol_server import ProtocolServer  # noqa: E402


@pytest.fixture
def server() -> Iterator[ProtocolServer]:
    """A protocol server that requires ``API_KEY``."""
    with ProtocolServer(api_key=API_KEY) as srv:
        yield srv


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """Put the test key in the environment variable the settings name."""
    monkeypatch.setenv(KEY_ENV, API_KEY)
    return API_KEY
