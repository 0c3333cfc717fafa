"""Fixtures of the guardrails tests: live campaigns whose models the protocol server (tests/conftest.py) serves."""

from __future__ import annotations

import pytest

from arena.models import Campaign, ModelEntry
from arena.services import ratelimit
from arena.services.guardrails import moderation


@pytest.fixture(autouse=True)
def _fresh_guards():
    ratelimit.reset()
    moderation.reset()
    yield
    moderation.reset()


def live_campaign(server, *, slug: str = "live", models: tuple[str, str] = ("echo-a", "echo-b"), **fields) -> Campaign:
    """A live campaign of two models served by the protocol server (``models`` are its scripted names)."""
    fields.setdefault("status", "active")
    campaign = Campaign.objects.create(slug=slug, title="Live arena", mode="live", **fields)
    entries = [
        ModelEntry.objects.create(
            name=f"Contender {slug}-{i}",
            backend="openai",
            backend_settings={"base_url": server.base_url, "model": model, "max_retries": 0},
        )
        for i, model in enumerate(models)
    ]
    campaign.contenders.set(entries)
    return campaign


class _StoppedClock:
    """``time`` for arena.services.ratelimit with the wall clock stopped mid-window (the monotonic clock
    runs on): the counters' fixed windows then never roll over in the middle of a test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    monotonic = staticmethod(__import__("time").monotonic)


@pytest.fixture
def stopped_clock(monkeypatch):
    import time

    clock = _StoppedClock((time.time() // 3600) * 3600 + 1800)
    monkeypatch.setattr(ratelimit, "time", clock)
    return clock
