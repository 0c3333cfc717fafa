"""Live battles: the voter writes the prompt, two models answer on workers, tokens stream to the page.

A live battle is an ordinary :class:`~arena.models.Battle` of a ``mode="live"`` campaign with its own
Prompt row (``external_id=""``) and one Response row per side. Multi-turn: ``Battle.conversation``
holds ``{"user": [turns], "left": [answers], "right": [answers]}``; each side sees the same user turns
and its own earlier answers (arena.services.live_sides: what a side's generation task reads and
writes). ``Prompt.messages`` keeps the voter's turns (user role only, what every
export calls "the prompt") and each Response row holds its side's answer to the latest turn, so the
vote, the reveal page and the ratings treat a live battle like any other.

Every prompt, the first and each further turn, passes arena.services.guardrails first (flood limits, the
campaign's moderator and budgets: ``gate.admit_prompt``); a refused one starts no generation.

Streaming: the generation task publishes each side's text through the channel layer to the group
``battle.<battle id>`` (arena.services.live_publisher), tagged only with the side ("A" = left, "B" =
right), never with a model. The consumer (arena.web.consumers) turns those into the browser's frames. The
worker also saves the text so far on the Response row at most every second, which is what a
(re)connecting page starts from (``snapshot``).
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction

from arena.core.errors import ArenaError, Conflict, LimitReached, NotFound, NothingToVoteOn
from arena.models import Battle, Campaign, Prompt, Response, Voter
from arena.rendering import render_markdown
from arena.services import dispatch
from arena.services.access import check_may_vote
from arena.services.guardrails import gate
from arena.services.live_sides import plain_error

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
        dispatch.enqueue_generation([left.pk, right.pk])
    return battle


def add_turn(battle_id: str, voter: Voter, text: Any) -> Battle:
    """The voter's next turn in an open live battle whose two answers are complete."""
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
        dispatch.enqueue_generation(ids)
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
