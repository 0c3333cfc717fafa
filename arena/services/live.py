"""Live battles: the voter writes the prompt, two models answer on workers, tokens stream to the page.

A live battle is an ordinary :class:`~arena.models.Battle` of a ``mode="live"`` campaign with its own
Prompt row (``external_id=""``) and one Response row per side. Multi-turn: ``Battle.conversation``
holds ``{"user": [turns], "left": [answers], "right": [answers]}``; each side sees the same user turns
and its own earlier answers. ``Prompt.messages`` keeps the voter's turns (user role only, what every
export calls "the prompt") and each Response row holds its side's answer to the latest turn, so the
vote, the reveal page and the ratings treat a live battle like any other.

Every prompt, the first and each further turn, passes arena.guardrails first (flood limits, the
campaign's moderator and budgets: ``gate.admit_prompt``); a refused one starts no generation.

Streaming: the generation task publishes each side's text through the channel layer to the group
``battle.<battle id>``, tagged only with the side ("A" = left, "B" = right), never with a model. The
consumer (arena.consumers) turns those into the browser's frames. The worker also saves the text so
far on the Response row at most every second, which is what a (re)connecting page starts from.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import secrets
import threading
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from arena import embedded
from arena.guardrails import gate
from arena.models import Battle, Campaign, ModelEntry, Prompt, Response, Voter
from arena.rendering import render_markdown
from arena.services.access import check_may_vote
from arena.services.errors import ArenaError, Conflict, LimitReached, NotFound, NothingToVoteOn
from arena.services.identity import reveals_identity

log = logging.getLogger(__name__)

SIDES = {"A": "left", "B": "right"}

# What the voter reads when a side fails: plain words by error kind, never the provider's message
# (it may name the model).
_PLAIN_ERRORS = {
    "rate_limit": "its service is receiving too many requests right now.",
    "timeout": "it took too long to answer.",
    "content_filtered": "its provider refused to answer this prompt.",
    "authentication": "the site is not allowed to use it at the moment.",
    "bad_request": "it could not accept this prompt (it may be too long).",
    "server_error": "its service had an error.",
    "connection": "its service could not be reached.",
    "invalid_response": "its service sent an answer that could not be read.",
}


def plain_error(kind: str) -> str:
    return _PLAIN_ERRORS.get(kind, "something went wrong while it was answering.")


def group_name(battle_id: str) -> str:
    return f"battle.{battle_id}"


# -- starting and continuing a battle -------------------------------------------------------------------


def clean_prompt(text: Any) -> str:
    text = str(text or "").replace("\r\n", "\n").strip()
    if not text:
        raise ArenaError("Please write a prompt first.")
    limit = settings.ARENA_MAX_PROMPT_CHARS
    if len(text) > limit:
        raise ArenaError(f"Your prompt is {len(text):,} characters long; the limit is {limit:,}. Please shorten it.")
    return text


def draw_pair(weights: dict[int, float]) -> tuple[int, int]:
    """Two different models, each drawn by weight (uniformly when the weights are all zero)."""
    ids = list(weights)
    if len(ids) < 2:
        raise NothingToVoteOn("This campaign has no pair of models to compare right now. Please come back later.")
    picked = []
    for _ in range(2):
        w = [max(weights[i], 0.0) for i in ids]
        choice = random.choices(ids, weights=w)[0] if sum(w) > 0 else random.choice(ids)
        picked.append(choice)
        ids.remove(choice)
    return picked[0], picked[1]


def start_battle(campaign: Campaign, voter: Voter, text: Any, *, authenticated: bool) -> Battle:
    """Open a live battle on the voter's prompt and start both generations."""
    from arena.services import generation

    if campaign.mode != Campaign.Mode.LIVE:
        raise NotFound("This campaign does not take prompts from voters.")
    check_may_vote(campaign, voter, authenticated=authenticated)
    text = clean_prompt(text)
    gate.admit_prompt(campaign, voter, text, new_battle=True)
    first, second = draw_pair(dict(campaign.contenders.filter(is_active=True).values_list("id", "weight")))
    if secrets.randbelow(2):
        first, second = second, first
    with transaction.atomic():
        prompt = Prompt.objects.create(campaign=campaign, external_id="", messages=[{"role": "user", "content": text}])
        left = Response.objects.create(prompt=prompt, model_id=first, status=Response.Status.QUEUED)
        right = Response.objects.create(prompt=prompt, model_id=second, status=Response.Status.QUEUED)
        battle = Battle.objects.create(
            campaign=campaign,
            voter=voter,
            prompt=prompt,
            left=left,
            right=right,
            conversation={"user": [text], "left": [], "right": []},
        )
        generation.enqueue([left.pk, right.pk])
    return battle


def add_turn(battle_id: str, voter: Voter, text: Any) -> Battle:
    """The voter's next turn in an open live battle whose two answers are complete."""
    from arena.services import generation

    text = clean_prompt(text)
    # Checked once before the guardrails (a refused prompt is recorded only for a turn that could be
    # taken) and again under the row lock.
    unlocked = _turn_battle(battle_id, voter, lock=False)
    _check_turn(unlocked)
    gate.admit_prompt(unlocked.campaign, voter, text, new_battle=False)
    with transaction.atomic():
        battle = _turn_battle(battle_id, voter, lock=True)
        _check_turn(battle)
        conversation = battle.conversation
        conversation["user"].append(text)
        battle.save(update_fields=["conversation"])
        prompt = battle.prompt
        prompt.messages = [*prompt.messages, {"role": "user", "content": text}]
        prompt.save(update_fields=["messages"])
        ids = [battle.left_id, battle.right_id]
        Response.objects.filter(pk__in=ids, status=Response.Status.DONE).update(
            status=Response.Status.QUEUED,
            content="",
            html="",
            error="",
            finish_reason="",
            prompt_tokens=None,
            completion_tokens=None,
            latency_ms=None,
            ttft_ms=None,
            cache_key="",
        )
        generation.enqueue(ids)
    return battle


def _turn_battle(battle_id: str, voter: Voter, *, lock: bool) -> Battle:
    battles = Battle.objects.select_for_update(of=("self",)) if lock else Battle.objects
    battle = battles.select_related("campaign", "left", "right", "prompt").filter(pk=battle_id).first()
    if battle is None or battle.voter_id != voter.pk or not battle.is_live:
        raise NotFound("No such battle.")
    return battle


def _check_turn(battle: Battle) -> None:
    """A further turn needs an open battle whose two answers are complete, under the turn limit."""
    if battle.status == Battle.Status.VOTED:
        raise Conflict("You have already voted on this battle. Start a new one to keep talking.")
    if battle.status == Battle.Status.VOID:
        raise Conflict("This battle was cancelled. Please start a new one.")
    if battle.left.status != Response.Status.DONE or battle.right.status != Response.Status.DONE:
        raise Conflict("Please wait until both answers are complete.")
    if len(battle.conversation["user"]) >= settings.ARENA_LIVE_MAX_TURNS:
        raise LimitReached(
            f"This conversation has reached {settings.ARENA_LIVE_MAX_TURNS} turns. Please vote or start a new one."
        )


# -- what the worker needs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveSide:
    """One side of a live battle, as a generation task sees it."""

    battle_id: str
    side: str  # "A" (left) or "B" (right)
    turn: int  # index of the user turn being answered
    messages: list[dict[str, str]]


def side_of(response: Response) -> LiveSide | None:
    """The live battle side this response answers, with the messages its model must see."""
    if response.prompt.campaign.mode != Campaign.Mode.LIVE:
        return None
    battle = (
        Battle.objects.filter(Q(left_id=response.pk) | Q(right_id=response.pk))
        .only("id", "left_id", "conversation")
        .first()
    )
    if battle is None or not battle.conversation:
        return None
    side = "A" if battle.left_id == response.pk else "B"
    return LiveSide(battle.pk, side, *_side_messages(battle.conversation, SIDES[side]))


def _side_messages(conversation: dict[str, list[str]], key: str) -> tuple[int, list[dict[str, str]]]:
    users, answers = conversation["user"], conversation.get(key, [])
    messages: list[dict[str, str]] = []
    for i, user in enumerate(users[:-1]):
        messages.append({"role": "user", "content": user})
        messages.append({"role": "assistant", "content": answers[i] if i < len(answers) else ""})
    messages.append({"role": "user", "content": users[-1]})
    return len(users) - 1, messages


def record_answer(side: LiveSide, text: str, model_name: str = "") -> None:
    """Store a finished answer in the battle's conversation (inside the caller's transaction), and
    flag the battle when the answer names a model: its own, any other of the campaign, or a well-known
    family (the rule of arena.services.identity, as for every other battle)."""
    battle = Battle.objects.select_for_update().filter(pk=side.battle_id).first()
    if battle is None:
        return
    key = SIDES[side.side]
    answers = list(battle.conversation.get(key, []))[: side.turn]
    answers += [""] * (side.turn - len(answers)) + [text]
    battle.conversation[key] = answers
    fields = ["conversation"]
    names = {*ModelEntry.objects.filter(campaigns=battle.campaign_id).values_list("name", flat=True), model_name}
    if not battle.flagged and reveals_identity([text], names - {""}):
        battle.flagged = True
        fields.append("flagged")
    battle.save(update_fields=fields)


def void_battle(side: LiveSide) -> None:
    """A side failed: the battle is cancelled and never counted."""
    Battle.objects.filter(pk=side.battle_id, status=Battle.Status.OPEN).update(status=Battle.Status.VOID)


# -- what the page and the consumer need ------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    turn: int
    sides: dict[str, dict[str, Any]]

    def frame(self) -> dict[str, Any]:
        return {"type": "snapshot", **self.sides}


def _side_state(response: Response) -> dict[str, Any]:
    state: dict[str, Any] = {"text": response.content, "status": response.status}
    if response.status == Response.Status.DONE:
        state["html"] = response.html
    elif response.status == Response.Status.FAILED:
        state["message"] = plain_error(response.error.partition(":")[0])
    return state


def snapshot(battle_id: str) -> Snapshot | None:
    """The stored text and status of both sides of the current turn."""
    battle = Battle.objects.select_related("left", "right").filter(pk=battle_id).first()
    if battle is None or not battle.conversation:
        return None
    turn = len(battle.conversation["user"]) - 1
    return Snapshot(turn, {"A": _side_state(battle.left), "B": _side_state(battle.right)})


@dataclass(frozen=True)
class PageTurn:
    user_html: str
    a_html: str
    b_html: str


def earlier_turns(battle: Battle) -> list[PageTurn]:
    """The finished turns before the current one, rendered (sanitised Markdown)."""
    conversation = battle.conversation
    users, lefts, rights = conversation["user"], conversation.get("left", []), conversation.get("right", [])
    turns = []
    for i, user in enumerate(users[:-1]):
        left = lefts[i] if i < len(lefts) else ""
        right = rights[i] if i < len(rights) else ""
        turns.append(PageTurn(render_markdown(user), render_markdown(left), render_markdown(right)))
    return turns


# -- publishing frames ----------------------------------------------------------------------------------


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

    def __init__(self, side: LiveSide) -> None:
        from channels.layers import get_channel_layer

        self.side = side
        self.group = group_name(side.battle_id)
        self.layer = get_channel_layer()
        self._outbox = _Outbox(self.layer, self.group) if self.layer is not None else None

    def _put(self, kind: str, **fields: Any) -> None:
        if self._outbox is not None:
            self._outbox.put(
                {"type": "battle.frame", "side": self.side.side, "turn": self.side.turn, "kind": kind, **fields}
            )

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
        from channels.layers import InMemoryChannelLayer

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
            except Exception:  # the consumer heals a lost frame from the database (see arena.consumers)
                log.warning("could not publish a live frame to %s", self.group, exc_info=True)
            if frame["kind"] == "delta":
                wait = interval - (loop.time() - sent_at)
                if wait > 0:
                    await asyncio.sleep(wait)

    def _send_direct(self, frame: dict[str, Any]) -> None:
        from asgiref.sync import async_to_sync

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
