"""The battle page, rendered once per campaign and filled in per request.

The battle page is the hottest page of the site: every voter loads it before every vote. Rendering
it with the template engine cost a quarter of the web tier's CPU per vote cycle (static-file and
URL lookups, blocks, includes), yet all but five values on it are the same for every voter of a
campaign. So the template is rendered once per cached campaign profile (and staff flag) with a
marker in place of each per-request value, cut at the markers into a ``Frame``, and each request
joins the frame's pieces with its own values. The output is the same HTML a full render gives
(``tests/arena/web/test_pages.py`` compares the two).

What a frame may depend on: the campaign profile (campaign, dimensions) and whether the visitor is
staff. Anything else that varies per request must be a slot. The slots' values are inserted as
given: the answers and the conversation are sanitised HTML already (arena.rendering); the battle
id and the CSRF token are escaped here.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

from django.template.loader import render_to_string
from django.utils.html import escape

from arena.models import Battle
from arena.rendering import render_markdown
from arena.services.battles import BattleView
from arena.services.profiles import CampaignProfile
from arena.web.helpers import battle_urls

# Per process and random, so no campaign text or model output can contain a marker by accident.
_MARK = f"slot{secrets.token_hex(8)}"
_MARKER = re.compile(rf"{_MARK}([a-z_]+){_MARK}")

BATTLE_SLOTS = ("battle_id", "csrf_token", "conversation_html", "left_html", "right_html")


@dataclass(frozen=True)
class Frame:
    """A rendered page cut at its slots: literal, slot name, literal, ..., literal."""

    pieces: tuple[str, ...]

    def fill(self, values: Mapping[str, str]) -> str:
        pieces = list(self.pieces)
        pieces[1::2] = [values[name] for name in self.pieces[1::2]]
        return "".join(pieces)


def slot(name: str) -> str:
    """The marker that stands for the slot ``name`` while a frame is rendered."""
    return f"{_MARK}{name}{_MARK}"


def build_frame(template_name: str, context: Mapping[str, Any], slots: tuple[str, ...]) -> Frame:
    """Render ``template_name`` with a marker for each slot and cut the output at the markers."""
    html = render_to_string(template_name, {**context, **{name: slot(name) for name in slots}})
    pieces = tuple(_MARKER.split(html))
    missing = set(slots) - set(pieces[1::2])
    if missing:
        raise ValueError(f"{template_name} does not show the slots {sorted(missing)}")
    return Frame(pieces)


class FrameUser(NamedTuple):
    """What the page layout may know of the visitor in a frame shared by many visitors."""

    is_staff: bool
    is_authenticated: bool = False


def battle_frame(profile: CampaignProfile, *, staff: bool) -> Frame:
    """The battle page frame of this campaign profile, built on first use (it lives as long as the profile)."""
    key = ("battle", staff)
    frame = profile.frames.get(key)
    if frame is None:
        context = {
            "campaign": profile.campaign,
            "battle": {"id": slot("battle_id")},
            "dimensions": profile.dimensions,
            "user": FrameUser(is_staff=staff, is_authenticated=staff),
        }
        frame = profile.frames[key] = build_frame("arena/battle.html", context, BATTLE_SLOTS)
    return frame


def battle_page(profile: CampaignProfile, battle: BattleView, *, staff: bool, csrf_token: str) -> str:
    """The HTML of a battle page: nothing on it names a model."""
    return battle_frame(profile, staff=staff).fill(
        {
            "battle_id": escape(battle.id),
            "csrf_token": escape(csrf_token),
            "conversation_html": conversation_html(battle.messages),
            "left_html": battle.left_html,
            "right_html": battle.right_html,
        }
    )


def battle_data(slug: str, battle: BattleView) -> dict[str, str]:
    """What ``battle_page`` fills in, as data: the next battle a vote's reply carries, which the page
    (arena/static/arena/app.js) shows in place of the one voted on. Nothing in it names a model."""
    url, vote_url = battle_urls(slug, battle.id)
    return {
        "id": battle.id,
        "url": url,
        "vote_url": vote_url,
        "conversation_html": conversation_html(battle.messages),
        "left_html": battle.left_html,
        "right_html": battle.right_html,
    }


def battle_view(battle: Battle) -> BattleView:
    """What the page of a stored battle shows (its prompt and answers loaded with it)."""
    return BattleView(battle.pk, battle.prompt.messages, battle.left.html, battle.right.html)


def visible_turns(messages: list[dict]) -> tuple[tuple[str, str], ...]:
    """(role, content) of the turns shown above the answers (system prompts are not shown)."""
    return tuple((str(m.get("role", "user")), str(m.get("content", ""))) for m in messages if m.get("role") != "system")


def rendered_turns(messages: list[dict]) -> list[dict[str, str]]:
    """The turns for arena/_conversation.html, their Markdown rendered (cached per conversation)."""
    return _rendered_turns(visible_turns(messages))


def conversation_html(messages: list[dict]) -> str:
    """The conversation section of a battle page (cached per conversation)."""
    return _conversation_html(visible_turns(messages))


@lru_cache(maxsize=4096)
def _rendered_turns(turns: tuple[tuple[str, str], ...]) -> list[dict[str, str]]:
    return [{"role": role, "html": render_markdown(content)} for role, content in turns]


@lru_cache(maxsize=4096)
def _conversation_html(turns: tuple[tuple[str, str], ...]) -> str:
    return render_to_string("arena/_conversation.html", {"turns": _rendered_turns(turns)})
