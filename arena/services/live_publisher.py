"""Publishing a live battle's frames: each side's text goes from the generation task to the page.

A generation task publishes a side's frames to the battle's channel-layer group (``battle.<battle
id>``, arena.services.live_sides.group_name), tagged only with the side ("A" = left, "B" = right), never
with a model; the consumer (arena.web.consumers) turns them into the browser's frames. Sends run on one
asyncio event loop per process (a thread of its own, or the ASGI server's loop in the embedded mode),
so a streaming worker thread only hands its frames over; a frame that cannot be sent is logged, and
the page heals from the text stored on the Response row.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings

from arena import embedded

log = logging.getLogger(__name__)


class SidePublisher:
    """Sends one side's frames to the battle's group, in order.

    Frames go out from one event loop per process: a background one with a network channel layer
    (Redis), the ASGI server's own in the embedded mode (the in-memory layer's queues belong to the
    loop of the consumers that read them; see arena.embedded). The first token leaves at once; after
    a delta frame the next one waits until ARENA_LIVE_FRAME_INTERVAL has passed, and the deltas that
    arrive meanwhile are merged into it. So a side sends at most 1/interval frames a second however
    fast its model writes: channel-layer traffic grows with the number of battles, not with tokens.
    With the in-memory layer and no server in the process (tests with eager tasks) each frame is
    sent synchronously through ``async_to_sync``.

    Internal message: ``{"type": "battle.frame", "side", "turn", "kind": "delta"|"done"|"error"|"restart", ...}``;
    a delta carries ``text`` and ``offset`` (characters of this side's text before it), "done" the
    rendered ``html`` and the text's final ``length``.
    """

    def __init__(self, group: str, side: str, turn: int) -> None:
        self.group = group
        self.side = side
        self.turn = turn
        self.layer = get_channel_layer()
        self._outbox = _Outbox(self.layer, self.group) if self.layer is not None else None

    def _put(self, kind: str, **fields: Any) -> None:
        if self._outbox is not None:
            self._outbox.put({"type": "battle.frame", "side": self.side, "turn": self.turn, "kind": kind, **fields})

    def delta(self, text: str, offset: int) -> None:
        self._put("delta", text=text, offset=offset)

    def done(self, html: str, length: int) -> None:
        self._put("done", html=html, length=length)

    def error(self, message: str) -> None:
        self._put("error", message=message)

    def restart(self) -> None:
        """A new run of this side begins (its worker died mid-answer): the page drops what it has."""
        self._put("restart")

    def close(self, timeout: float = 5.0) -> None:
        """Wait until the frames are out (bounded), so that they are not lost when the task ends."""
        if self._outbox is not None:
            self._outbox.wait(timeout)


class _Outbox:
    def __init__(self, layer: Any, group: str) -> None:
        self.layer = layer
        self.group = group
        self.direct = isinstance(layer, InMemoryChannelLayer) and embedded.server_loop() is None
        self.lock = threading.Lock()
        self.frames: list[dict[str, Any]] = []
        self.running = False
        self.idle = threading.Event()
        self.idle.set()

    def put(self, frame: dict[str, Any]) -> None:
        if self.direct:
            self._send_direct(frame)
            return
        with self.lock:
            last = self.frames[-1] if self.frames else None
            if last is not None and last["kind"] == "delta" and frame["kind"] == "delta":
                self.frames[-1] = {**last, "text": last["text"] + frame["text"]}
            else:
                self.frames.append(frame)
            if self.running:
                return
            self.running = True
            self.idle.clear()
        asyncio.run_coroutine_threadsafe(self._drain(), _publisher_loop())

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        interval = settings.ARENA_LIVE_FRAME_INTERVAL
        while True:
            with self.lock:
                if not self.frames:
                    self.running = False
                    self.idle.set()
                    return
                frame = self.frames.pop(0)
            sent_at = loop.time()
            try:
                async with _send_slots():
                    await self.layer.group_send(self.group, frame)
            except Exception:  # the consumer heals a lost frame from the database (see arena.web.consumers)
                log.warning("could not publish a live frame to %s", self.group, exc_info=True)
            if frame["kind"] == "delta":
                wait = interval - (loop.time() - sent_at)
                if wait > 0:
                    await asyncio.sleep(wait)

    def _send_direct(self, frame: dict[str, Any]) -> None:
        try:
            async_to_sync(self.layer.group_send)(self.group, frame)
        except Exception:
            log.warning("could not publish a live frame to %s", self.group, exc_info=True)

    def wait(self, timeout: float) -> None:
        self.idle.wait(timeout)


_loop_lock = threading.Lock()
_loop_state: tuple[int, asyncio.AbstractEventLoop] | None = None
# Sends in flight at once from one process: each holds a connection of the channel layer's Redis pool
# (100 at most by default, and redis-py refuses rather than waits); waiting frames merge meanwhile.
MAX_SENDS_IN_FLIGHT = 32
_slots: asyncio.Semaphore | None = None


def _send_slots() -> asyncio.Semaphore:
    """The publishing loop's semaphore (created in that loop, on first use)."""
    global _slots
    if _slots is None:
        _slots = asyncio.Semaphore(MAX_SENDS_IN_FLIGHT)
    return _slots


def _publisher_loop() -> asyncio.AbstractEventLoop:
    """This process's publishing event loop: the server's in the embedded mode, else one started on
    first use (and again after a fork)."""
    global _loop_state
    if (loop := embedded.server_loop()) is not None:
        return loop
    with _loop_lock:
        if _loop_state is None or _loop_state[0] != os.getpid():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="arena-live-publisher", daemon=True).start()
            _loop_state = (os.getpid(), loop)
            global _slots
            _slots = None
        return _loop_state[1]
