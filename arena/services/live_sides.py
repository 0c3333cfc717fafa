"""The sides of a live battle as their generation tasks see them: what each side answers, where its
answer is stored, and what the voter reads when it fails.

``Battle.conversation`` holds ``{"user": [turns], "left": [answers], "right": [answers]}``: a side sees
every user turn and its own earlier answers (``side_of``); its finished answer joins the conversation
and flags the battle when it names a model (``record_answer``); a side that fails voids the battle
(``void_battle``). The voter's side of a live battle (starting it, further turns, the page) is
arena.services.live; the frames go out through arena.services.live_publisher, to ``group_name``.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q

from arena.core.identity import reveals_identity
from arena.models import Battle, Campaign, ModelEntry, Response

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
    """Why a side failed, in plain words for the voter."""
    return _PLAIN_ERRORS.get(kind, "something went wrong while it was answering.")


def group_name(battle_id: str) -> str:
    """The channel-layer group of a battle: its generation tasks publish there, its page listens."""
    return f"battle.{battle_id}"


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
    family (the rule of arena.core.identity, as for every other battle)."""
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
