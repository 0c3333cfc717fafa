"""What a judge judges: pairings (a prompt and two responses) turned into pending verdict rows.

Scopes: ``items`` (every prompt x model pair of a prompt-set campaign, or a random sample of N),
``voted`` (every pairing a human voted on, so agreement can be measured). Planning is idempotent: a
pairing the judge has already (or is being) judged is never added twice (unique constraint), and a
pairing where the judge's own model is one of the two is left out unless staff allowed it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from django.db import transaction

from arena.core.errors import ArenaError
from arena.judges.models import Judge, JudgeVerdict
from arena.models import Item, Vote

SCOPES = ("items", "voted")


@dataclass(frozen=True)
class Plan:
    candidates: int
    created: int
    left_out_self: int

    def __str__(self) -> str:
        note = f", {self.left_out_self} left out (the judge's own model)" if self.left_out_self else ""
        return f"{self.created} new pairings to judge of {self.candidates}{note}"


def _pairings(judge: Judge, scope: str) -> list[tuple[int, int, int, int, int]]:
    """(prompt, response_lo, response_hi, model_lo, model_hi) of the scope, model ids ordered."""
    if scope == "items":
        rows = Item.objects.filter(campaign_id=judge.campaign_id).values_list(
            "prompt_id", "response_lo_id", "response_hi_id", "model_lo_id", "model_hi_id"
        )
        return list(rows)
    votes = (
        Vote.objects.filter(campaign_id=judge.campaign_id, battle__gold__isnull=True)
        .values_list("prompt_id", "battle__left_id", "battle__right_id", "left_model_id", "right_model_id")
        .distinct()
    )
    seen: dict[tuple[int, int], tuple[int, int, int, int, int]] = {}
    for prompt_id, left, right, left_model, right_model in votes:
        if left_model == right_model:
            continue
        if left_model > right_model:
            left, right, left_model, right_model = right, left, right_model, left_model
        seen.setdefault((left, right), (prompt_id, left, right, left_model, right_model))
    return list(seen.values())


def plan(judge: Judge, *, scope: str = "items", limit: int | None = None, seed: int | None = None) -> Plan:
    """Add the scope's pairings (all, or a random sample of ``limit``) as pending verdicts."""
    if scope not in SCOPES:
        raise ArenaError(f"Unknown scope {scope!r}; use one of {', '.join(SCOPES)}.")
    if limit is not None and limit < 1:
        raise ArenaError("limit must be a positive number.")
    if not judge.is_active:
        raise ArenaError(f"Judge {judge.name} is not active.")
    pairings = _pairings(judge, scope)
    own = judge.model_id
    left_out = 0
    if not judge.allow_self_judging:
        kept = [p for p in pairings if own not in (p[3], p[4])]
        left_out = len(pairings) - len(kept)
        pairings = kept
    done = set(JudgeVerdict.objects.filter(judge=judge).values_list("response_lo_id", "response_hi_id"))
    fresh = [p for p in pairings if (p[1], p[2]) not in done]
    if limit is not None and len(fresh) > limit:
        fresh = random.Random(seed).sample(fresh, limit)
    rows = [
        JudgeVerdict(
            judge=judge,
            campaign_id=judge.campaign_id,
            prompt_id=p,
            response_lo_id=lo,
            response_hi_id=hi,
            model_lo_id=mlo,
            model_hi_id=mhi,
        )
        for p, lo, hi, mlo, mhi in fresh
    ]
    with transaction.atomic():
        JudgeVerdict.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)
    return Plan(candidates=len(pairings) + left_out, created=len(rows), left_out_self=left_out)
