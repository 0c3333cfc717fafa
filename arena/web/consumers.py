"""Websocket consumer of live battles: streams both answers to the voter who owns the battle.

Path: ``/ws/battles/<battle_id>/``. Only the battle's voter (the signed ``arena_voter`` cookie, or the
logged-in user's voter) may listen; anyone else, and any unknown battle, is closed with code 4403.
The browser sends nothing. Frames from the server, as JSON text, never name or identify a model:

- ``{"type": "snapshot", "A": {"text": "...", "status": "queued|running|done|failed"}, "B": {...}}``
  first, on every (re)connect: the text stored so far for both sides of the current turn. A done side
  also has ``"html"`` (its sanitised rendering), a failed one ``"message"`` (plain words).
- ``{"type": "delta", "side": "A", "text": "..."}``: more text for a side (A = left, B = right);
  append it to what the snapshot and earlier deltas gave.
- ``{"type": "done", "side": "A", "html": "..."}``: that side finished; ``html`` is its whole answer.
- ``{"type": "error", "side": "A", "message": "plain words"}``: that side failed; the battle is void.
- ``{"type": "restart", "side": "A"}``: that side's worker died mid-answer and a new run starts from
  nothing: drop the side's text; deltas follow from the start.

Resuming: the worker saves a side's text at most every second, so the snapshot may lag the live
stream. Deltas carry (internally) the offset at which they start; the consumer drops what the
snapshot already had and, when a delta starts beyond it, fills the gap from the database first, so
the page always sees one contiguous text. A channel layer may also drop a frame (Redis restarted, a
web process over capacity): when an unfinished side has been silent for RESYNC_AFTER_S seconds, the
consumer compares with the database and sends what is missing, the final "done"/"error" included.
A side whose worker died (no heartbeat for ARENA_GENERATION_HEARTBEAT_TIMEOUT seconds) is requeued by
the same check, so a voter watching never waits for beat's sweep (arena.services.heartbeat).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.http import HttpRequest

from arena.models import Battle, Response, Voter
from arena.services import generation, live, live_sides
from arena.services.voters import cookie_value, voter_from_cookie_value

log = logging.getLogger(__name__)

CLOSE_FORBIDDEN = 4403
_FINAL = {Response.Status.DONE, Response.Status.FAILED}
# How long to wait for the worker's next save when a delta starts beyond the stored text.
GAP_WAIT_S = 2.0
# An unfinished side silent for this long is checked against the database.
RESYNC_AFTER_S = 2.0


def _voter_from_cookies(cookies: dict[str, str]) -> Voter | None:
    """The voter of the signed ``arena_voter`` cookie, unsigned exactly as for an HTTP request (Django's
    cookie-signing salt is an implementation detail that changed between releases)."""
    request = HttpRequest()
    request.COOKIES = cookies
    value = cookie_value(request)
    return voter_from_cookie_value(value) if value else None


class BattleConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        self.battle_id = self.scope["url_route"]["kwargs"]["battle_id"]
        self.group = live_sides.group_name(self.battle_id)
        self.joined = False
        self.watchdog: asyncio.Task | None = None
        self.lock = asyncio.Lock()  # frames from the layer and the watchdog's resyncs, one at a time
        allowed = await database_sync_to_async(self._is_owner)()
        await self.accept()
        if not allowed:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        await self.channel_layer.group_add(self.group, self.channel_name)
        self.joined = True
        snapshot = await database_sync_to_async(live.snapshot)(self.battle_id)
        if snapshot is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.turn = snapshot.turn
        self.length = {side: len(state["text"]) for side, state in snapshot.sides.items()}
        self.final = {side: state["status"] in _FINAL for side, state in snapshot.sides.items()}
        self.heard_at = asyncio.get_running_loop().time()
        await self.send_json(snapshot.frame())
        if not all(self.final.values()):
            self.watchdog = asyncio.create_task(self._watch())

    def _is_owner(self) -> bool:
        user = self.scope.get("user")
        if user is not None and user.is_authenticated:
            voter = Voter.objects.filter(user=user).first()
        else:
            voter = _voter_from_cookies(self.scope.get("cookies", {}))
        if voter is None:
            return False
        return Battle.objects.filter(pk=self.battle_id, voter=voter).exists()

    async def disconnect(self, code: int) -> None:
        if self.watchdog is not None:
            self.watchdog.cancel()
        if self.joined:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """The page has nothing to say; anything it sends is ignored."""

    async def battle_frame(self, event: dict[str, Any]) -> None:
        """A frame from a generation task (see arena.services.live_publisher.SidePublisher)."""
        side = event.get("side")
        if side not in live_sides.SIDES or event.get("turn") != self.turn:
            return
        async with self.lock:
            self.heard_at = asyncio.get_running_loop().time()
            if self.final[side]:
                return
            kind = event.get("kind")
            if kind == "delta":
                await self._delta(side, event["text"], event["offset"])
            elif kind == "done":
                if self.length[side] < event.get("length", 0):  # a delta was lost on the way
                    await self._fill_gap(side, event["length"])
                self.final[side] = True
                await self.send_json({"type": "done", "side": side, "html": event.get("html", "")})
            elif kind == "error":
                self.final[side] = True
                await self.send_json({"type": "error", "side": side, "message": event.get("message", "")})
            elif kind == "restart":
                self.length[side] = 0
                await self.send_json({"type": "restart", "side": side})

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while not all(self.final.values()):
            await asyncio.sleep(RESYNC_AFTER_S)
            if loop.time() - self.heard_at < RESYNC_AFTER_S:
                continue
            async with self.lock:
                await self._resync()
                self.heard_at = loop.time()

    async def _resync(self) -> None:
        """Requeue a side whose worker died, then send what the database has and this page has not:
        text, and a finished side's end."""
        await database_sync_to_async(generation.requeue_dead_sides)(self.battle_id)
        snapshot = await database_sync_to_async(live.snapshot)(self.battle_id)
        if snapshot is None or snapshot.turn != self.turn:
            return
        for side, state in snapshot.sides.items():
            if self.final[side]:
                continue
            missing = state["text"][self.length[side] :]
            if missing and state["status"] != Response.Status.FAILED:
                self.length[side] += len(missing)
                await self.send_json({"type": "delta", "side": side, "text": missing})
            if state["status"] == Response.Status.DONE:
                self.final[side] = True
                await self.send_json({"type": "done", "side": side, "html": state["html"]})
            elif state["status"] == Response.Status.FAILED:
                self.final[side] = True
                await self.send_json({"type": "error", "side": side, "message": state["message"]})

    async def _delta(self, side: str, text: str, offset: int) -> None:
        if offset > self.length[side]:
            await self._fill_gap(side, offset)
        skip = self.length[side] - offset
        if skip >= len(text):
            return  # the snapshot had it already
        tail = text[max(skip, 0) :]
        self.length[side] = max(self.length[side], offset) + len(tail)
        await self.send_json({"type": "delta", "side": side, "text": tail})

    async def _fill_gap(self, side: str, offset: int) -> None:
        """Text published before this consumer joined the group and not saved yet: wait for the
        worker's next save (at most every SAVE_INTERVAL, 1 s) and send the missing piece from the database."""
        field = "left__content" if side == "A" else "right__content"
        deadline = asyncio.get_running_loop().time() + GAP_WAIT_S
        while True:
            stored = await database_sync_to_async(
                lambda: Battle.objects.filter(pk=self.battle_id).values_list(field, flat=True).first() or ""
            )()
            if len(stored) >= offset or asyncio.get_running_loop().time() >= deadline:
                break
            await asyncio.sleep(0.1)
        missing = stored[self.length[side] : offset]
        if missing:
            self.length[side] += len(missing)
            await self.send_json({"type": "delta", "side": side, "text": missing})
        if self.length[side] < offset:
            log.warning(
                "live battle %s side %s: %d characters could not be recovered",
                self.battle_id,
                side,
                offset - self.length[side],
            )
            self.length[side] = offset  # the "done" frame's html carries the whole text anyway
