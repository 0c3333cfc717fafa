"""The total timeout of many calls at once: one watcher thread per process ends each stalled or
dripping stream at its own deadline, against the real protocol server."""

from __future__ import annotations

import threading
import time

import pytest

from backends import BackendError, get_backend
from backends.http_client import deadline_watcher
from tests.backends.helpers import USER, fast_settings
from tests.protocol_server import ProtocolServer

pytestmark = pytest.mark.usefixtures("api_key")


def _watcher_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "http-deadlines")


def test_many_concurrent_deadlines_each_end_their_call_on_time(server: ProtocolServer):
    # Later calls get earlier deadlines, so the watcher must wake for each new earliest one; half the
    # streams stall after a chunk, half drip forever.
    n = 24
    timeouts = [1.5 - 0.04 * i for i in range(n)]
    took: dict[int, float] = {}
    kinds: dict[int, str] = {}

    def call(i: int) -> None:
        model = f"stall{i}?stall_after=1" if i % 2 else f"drip{i}?endless=1&chunk_delay=0.05"
        backend = get_backend(
            "openai",
            fast_settings(server, model, read_timeout=30, total_timeout=timeouts[i], max_response_chars=10**7),
        )
        started = time.monotonic()
        try:
            backend.stream(USER).finish()
        except BackendError as exc:
            kinds[i] = exc.kind
        took[i] = time.monotonic() - started

    threads = [threading.Thread(target=call, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
        time.sleep(0.01)
    for t in threads:
        t.join(timeout=10)

    assert kinds == dict.fromkeys(range(n), "timeout")
    late = {
        i: round(took[i] - timeouts[i], 2) for i in range(n) if not timeouts[i] - 0.05 <= took[i] < timeouts[i] + 0.5
    }
    assert late == {}
    assert _watcher_threads() == 1  # one for the process, not one per call
    assert deadline_watcher().pending()[0] == 0  # every deadline fired and left the heap


def test_finished_calls_do_not_pile_up_in_the_watchers_heap(server: ProtocolServer):
    backend = get_backend("openai", fast_settings(server, "echo", total_timeout=600))
    for _ in range(200):
        backend.generate(USER)
    watched, in_heap = deadline_watcher().pending()
    assert watched == 0 and in_heap <= 2 * deadline_watcher().COMPACT_AT  # cancelled ones are swept
    assert _watcher_threads() == 1
