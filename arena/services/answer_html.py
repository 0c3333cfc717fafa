"""Render stored answers again after the renderer changed (e.g. single newlines became line breaks).

Each answer keeps its sanitised HTML beside its text (``Response.html``), rendered when it was imported
or generated; pages and the API read that HTML as stored. ``render_answers`` brings it up to date.
"""

from __future__ import annotations

from arena.models import Campaign, Response
from arena.rendering import render_markdown

BATCH = 500


def render_answers(campaign: Campaign | None = None, *, batch: int = BATCH) -> tuple[int, int]:
    """Render every answer (of ``campaign``, or all) again and store the HTML where it changed; returns
    (answers read, answers changed). Idempotent: a second run changes nothing."""
    answers = Response.objects.order_by("pk")
    if campaign is not None:
        answers = answers.filter(prompt__campaign=campaign)
    read = changed = 0
    last = 0
    while True:
        chunk = list(answers.filter(pk__gt=last).only("pk", "content", "html")[:batch])
        if not chunk:
            return read, changed
        stale = []
        for answer in chunk:
            html = render_markdown(answer.content)
            if html != answer.html:
                answer.html = html
                stale.append(answer)
        Response.objects.bulk_update(stale, ["html"])
        read, changed, last = read + len(chunk), changed + len(stale), chunk[-1].pk
