"""A new battle: the rule that keeps a hand-out blind, the battle's INSERT and the read of its page.

Written once for both hand-outs that store battles: regular ones (arena.services.battles) and gold
ones (arena.services.gold). Both store with the same statement and show the same page, so a voter
cannot tell a gold battle from another.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from arena.core import hot_sql
from arena.core.hot_sql import sql
from arena.core.identity import reveals_identity
from arena.models import Battle, Prompt, Response
from arena.services.profiles import CampaignProfile


@dataclass
class BattleView:
    """What a battle page shows: nothing that identifies a model."""

    id: str
    messages: list[dict[str, Any]]
    left_html: str
    right_html: str


def still_blind(prompt: str, first: str, second: str, *, same: str, strict: bool) -> str:
    """SQL true while a pair of answers is still blind for the voter (the next ``%s``): the voter has no
    battle of this campaign showing the same pair (``same``, a condition on the voter's battle ``b``),
    and no voted battle, whose reveal named the models, that showed either answer. Answers never change
    for a (prompt, model), so an answer seen at a reveal is no longer anonymous. ``strict``: no battle
    on the prompt at all (Campaign.one_battle_per_prompt).

    One rule for every hand-out, regular items and gold battles alike. "LIMIT 1 OFFSET 0" keeps NOT
    EXISTS a subplan run per candidate, one probe of the (voter, prompt) index each, so the cost is
    bounded by the LIMIT. Without it PostgreSQL turns it into an anti-join that reads every battle the
    voter ever had and compares each with each candidate: 4.5 ms instead of 0.7 for a voter with 560
    battles, and more with every vote.
    """
    answers = f"({first}, {second})"
    seen = (
        ""
        if strict
        else (f" AND ({same} OR (b.status = 'voted' AND (b.left_id IN {answers} OR b.right_id IN {answers})))")
    )
    return sql(
        f"NOT EXISTS (SELECT 1 FROM {{battle}} b WHERE b.voter_id = %s AND b.prompt_id = {prompt}{seen} "
        "LIMIT 1 OFFSET 0)",
        Battle,
    )


# A new battle: each stored field and its value, written once for every dialect and for both kinds of
# battle (a regular one has an item and no gold, a gold one the reverse). A field of Battle missing
# here that has neither a null nor a database default fails tests/arena/core/test_hot_sql_columns.py.
_NEW_BATTLE = {
    "id": "%(id)s",
    "campaign": "%(campaign)s",
    "voter": "%(voter)s",
    "prompt": "%(prompt)s",
    "item": "%(item)s",
    "gold": "%(gold)s",
    "left": "%(left)s",
    "right": "%(right)s",
    "status": "'open'",
    "flagged": "%(flagged)s",
    "conversation": "'{}'",
    "created_at": "%(now)s",
}
INSERT_BATTLE_SQL = sql(
    "INSERT INTO {battle} ({columns}) VALUES ({values})",
    Battle,
    columns=hot_sql.columns(Battle, *_NEW_BATTLE),
    values=", ".join(_NEW_BATTLE.values()),
)

PAGE_SQL = sql(
    """
SELECT p.messages, l.html, r.html
FROM {prompt} p, {response} l, {response} r
WHERE p.id = %(prompt)s AND l.id = %(left)s AND r.id = %(right)s
""",
    Prompt,
    Response,
)


def page_messages(value: Any) -> list[dict[str, Any]]:
    """A prompt's messages as read by raw SQL (a JSON string in SQLite, a list in PostgreSQL)."""
    return json.loads(value) if isinstance(value, str) else value


def store_battle(profile: CampaignProfile, params: dict[str, Any]) -> BattleView:
    """Store the new open battle of ``params`` (``battle_params``) and return what its page shows: a
    regular battle has an item, a gold one a gold id, and either is flagged when an answer names a
    model (so the flag tells them apart no more than the page does). Two statements, in any
    database: read the page, then insert."""
    messages, left_html, right_html = hot_sql.fetchone(PAGE_SQL, params)
    params = {**params, "flagged": reveals_identity((left_html, right_html), profile.names.values())}
    hot_sql.execute(INSERT_BATTLE_SQL, params)
    return BattleView(params["id"], page_messages(messages), left_html, right_html)


def battle_params(
    campaign_id: int,
    voter_id: int,
    prompt_id: int,
    left_id: int,
    right_id: int,
    *,
    item_id: int | None = None,
    gold_id: int | None = None,
    flagged: bool = False,
) -> dict[str, Any]:
    """The parameters of INSERT_BATTLE_SQL (and of the page read), a new battle id included."""
    return {
        "id": Battle._meta.get_field("id").default(),
        "campaign": campaign_id,
        "voter": voter_id,
        "prompt": prompt_id,
        "item": item_id,
        "gold": gold_id,
        "left": left_id,
        "right": right_id,
        "flagged": flagged,
        "now": timezone.now(),
    }
