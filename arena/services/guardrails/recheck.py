"""Run the output checks again over a campaign's finished answers: imported answers (which no
generation stored), or every answer after the campaign's models changed (the identity check looks for
their names). Prompt-set answers get their reasons afresh; a live side keeps the reasons of its
earlier turns and gains those of its stored answer."""

from __future__ import annotations

from collections import Counter

from arena.models import Campaign, ModelEntry, Response
from arena.services.guardrails.output_checks import check_answer, merge

BATCH = 500


def recheck_campaign(campaign: Campaign) -> Counter:
    """Check every done answer of the campaign; returns how many answers have each reason now."""
    names = set(ModelEntry.objects.filter(campaigns=campaign).values_list("name", flat=True))
    live = campaign.mode == Campaign.Mode.LIVE
    answers = Response.objects.filter(prompt__campaign=campaign, status=Response.Status.DONE).select_related("model")
    counts: Counter = Counter()
    changed: list[Response] = []
    for answer in answers.iterator(chunk_size=BATCH):
        reasons = check_answer(answer.content, answer.finish_reason, names | {answer.model.name})
        checks = merge(answer.checks if live else "", reasons)
        counts.update(filter(None, checks.split(",")))
        if checks != answer.checks:
            answer.checks = checks
            changed.append(answer)
        if len(changed) >= BATCH:
            Response.objects.bulk_update(changed, ["checks"])
            changed.clear()
    Response.objects.bulk_update(changed, ["checks"])
    return counts
