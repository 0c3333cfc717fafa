"""Usage and estimated cost of generation, per campaign, model and UTC day (GenerationUsage).

Every generation that called a backend adds its tokens here, in the transaction that stores the
answer: the backend's token counts when it reports them, else an estimate of one token per four
characters (of the messages sent, and of the answer). Answers reused from the deterministic cache
cost nothing and are not counted. The cost is estimated from the model's prices per million tokens
(``ModelEntry.input_price`` and ``output_price``).

The dashboard shows these rows per model and day; the live budgets (arena.services.guardrails.budgets) sum
today's rows of a campaign.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from arena.models import GenerationUsage, ModelEntry


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def tokens_of(
    messages: Sequence[dict[str, Any]], answer: str, prompt_tokens: int | None, completion_tokens: int | None
) -> tuple[int, int]:
    """Prompt and completion tokens: as reported, else estimated."""
    if prompt_tokens is None:
        prompt_tokens = estimate_tokens("".join(str(m.get("content", "")) for m in messages))
    if completion_tokens is None:
        completion_tokens = estimate_tokens(answer)
    return prompt_tokens, completion_tokens


def cost_of(model: ModelEntry, prompt_tokens: int, completion_tokens: int) -> float:
    return (prompt_tokens * model.input_price + completion_tokens * model.output_price) / 1_000_000


def today() -> date:
    return timezone.now().date()  # USE_TZ with TIME_ZONE UTC: the UTC day


def record(campaign_id: int, model: ModelEntry, prompt_tokens: int, completion_tokens: int) -> None:
    """Add one generation to today's row of (campaign, model): an UPDATE, or the row's first INSERT."""
    day, cost = today(), cost_of(model, prompt_tokens, completion_tokens)
    row = GenerationUsage.objects.filter(campaign_id=campaign_id, day=day, model_id=model.pk)
    increments = {
        "generations": F("generations") + 1,
        "prompt_tokens": F("prompt_tokens") + prompt_tokens,
        "completion_tokens": F("completion_tokens") + completion_tokens,
        "cost": F("cost") + cost,
    }
    if row.update(**increments):
        return
    try:
        with transaction.atomic():
            GenerationUsage.objects.create(
                campaign_id=campaign_id,
                day=day,
                model_id=model.pk,
                generations=1,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                cost=cost,
            )
    except IntegrityError:  # another worker created it first
        row.update(**increments)
