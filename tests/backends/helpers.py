"""Shared constants and settings builders for the backend tests."""

from __future__ import annotations

from tests.protocol_server import ProtocolServer

API_KEY = "sk-test-5f3e9a1c7b2d"
KEY_ENV = "ARENA_TEST_PROVIDER_KEY"

USER = [{"role": "user", "content": "what is two plus two"}]
CHAT = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "hi"},
    {"role": "assistant", "content": "Hello."},
    {"role": "user", "content": "what is two plus two"},
]


def fast_settings(server: ProtocolServer, model: str, **overrides: object) -> dict[str, object]:
    """HTTP backend settings pointing at ``server``, with tiny backoffs so retries take milliseconds."""
    settings: dict[str, object] = {
        "base_url": server.base_url,
        "model": model,
        "api_key_env": KEY_ENV,
        "backoff_base": 0.001,
        "backoff_max": 0.01,
        "max_retries": 2,
        "read_timeout": 5.0,
        "total_timeout": 10.0,
        "trust_env": False,  # an HTTP(S)_PROXY in the environment must not capture 127.0.0.1
    }
    settings.update(overrides)
    return settings
