"""Judge verdicts as battle records, for the battles export's ``source`` filter.

Sources: ``humans`` (the default: no judge verdict at all), ``judge:NAME`` (that judge's verdicts
only), ``all`` (human votes, then every judge's verdicts). A judge verdict is written as one battle
in the public Chatbot Arena fields with FastChat's ``judge`` field (and ``voter_id``) holding the
judge's name, ``battle_id`` ``judge-<id>``, model_a the pairing's first model by id; only combined
verdicts (both orders) are written.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from arena.core.errors import ArenaError
from arena.exports import formats
from arena.exports.formats import PromptText, ResponseText
from arena.judges.models import Judge, JudgeVerdict
from arena.models import Campaign

SOURCES_HELP = "humans (default), all, or judge:NAME"
_VERDICT = {"lo": "left", "hi": "right", "tie": "tie", "both_bad": "both_bad"}


def parse_source(value: Any) -> str:
    text = str(value or "humans").strip()
    if text in ("humans", "all") or (text.startswith("judge:") and text[6:].strip()):
        return text if not text.startswith("judge:") else "judge:" + text[6:].strip()
    raise ArenaError(f"source: use {SOURCES_HELP}.")


def judges_for(campaign: Campaign, source: str) -> list[Judge]:
    """The judges a source reads (raises when a named judge does not judge this campaign)."""
    if source == "humans":
        return []
    judges = Judge.objects.filter(campaign=campaign).select_related("model")
    if source == "all":
        return list(judges)
    name = source[6:]
    named = list(judges.filter(model__name=name))
    if not named:
        raise ArenaError(f"Campaign {campaign.slug!r} has no judge named {name!r}.")
    return named


def battle_lines(campaign: Campaign, source: str, filters: Any) -> Iterator[str]:
    """Battle records of the source's judge verdicts, under the export's date, category and dimension filters."""
    campaign_json = formats.dumps(campaign.slug)
    dimension = filters.dimension
    for judge in judges_for(campaign, source):
        name = formats.dumps(judge.name)[1:-1]  # JSON-escaped, inside the record's quotes
        rows = JudgeVerdict.objects.filter(judge=judge, status=JudgeVerdict.Status.DONE)
        if filters.since:
            rows = rows.filter(updated_at__gte=filters.since)
        if filters.until:
            rows = rows.filter(updated_at__lt=filters.until)
        if filters.category:
            rows = rows.filter(prompt__category=filters.category)
        rows = rows.select_related("prompt", "response_lo", "response_hi", "model_lo", "model_hi").order_by("id")
        for v in rows.iterator(chunk_size=500):
            prompt = PromptText.build(
                v.prompt.external_id or str(v.prompt_id), v.prompt.messages, v.prompt.category, v.prompt.language
            )
            if dimension:
                sides = v.scores.get(dimension) or {}
                winner = formats.score_winner(sides.get("lo"), sides.get("hi"))
                if winner is None:
                    continue
            else:
                winner = formats.WINNER[_VERDICT[v.outcome]]
            scores = {k: {"left": s.get("lo"), "right": s.get("hi")} for k, s in v.scores.items()}
            yield formats.battle_line(
                prompt=prompt,
                model_a_json=formats.dumps(v.model_lo.name),
                model_b_json=formats.dumps(v.model_hi.name),
                winner=winner,
                voter=name,
                turn=prompt.turn,
                tstamp=v.updated_at.timestamp(),
                battle_id=f"judge-{v.pk}",
                campaign_json=campaign_json,
                verdict=_VERDICT[v.outcome],
                dimension_json=formats.dumps(dimension or None),
                scores_json=formats.battle_scores_json(scores),
                duration_ms=None,
                flagged=False,
                conversation_a=formats.conversation_json(prompt, ResponseText.build(v.response_lo.content)),
                conversation_b=formats.conversation_json(prompt, ResponseText.build(v.response_hi.content)),
            )
