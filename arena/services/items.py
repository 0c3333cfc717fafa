"""Items: a prompt and an unordered pair of models whose responses are both ready."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator
from itertools import combinations

from django.db import connection

from arena.core.hot_sql import columns, sql
from arena.models import Campaign, Item, Response


def create_items(campaign: Campaign, prompt_ids: Iterable[int]) -> None:
    """Items for every pair of the campaign's models with done responses to these prompts.

    Bulk and idempotent: existing items are kept as they are (their vote counts included). On
    PostgreSQL and SQLite one INSERT ... SELECT builds them (100,000 items in about a second, where ORM
    objects took ten); elsewhere they are built in Python.
    """
    if connection.vendor in ("postgresql", "sqlite"):
        _create_items_sql(campaign, prompt_ids)
        return
    contender_ids = set(campaign.contenders.values_list("id", flat=True))
    by_prompt: dict[int, list[tuple[int, int]]] = {}
    done = Response.objects.filter(prompt_id__in=list(prompt_ids), status=Response.Status.DONE).values_list(
        "prompt_id", "model_id", "id"
    )
    for prompt_id, model_id, response_id in done.iterator(chunk_size=5000):
        if model_id in contender_ids:
            by_prompt.setdefault(prompt_id, []).append((model_id, response_id))
    Item.objects.bulk_create(_item_rows(campaign.id, by_prompt), batch_size=5000, ignore_conflicts=True)


_ITEMS_SQL_COLUMNS = columns(
    Item, "campaign", "prompt", "response_lo", "response_hi", "model_lo", "model_hi", "vote_count", "shuffle"
)
# The same pairs as _item_rows: the lower model id first, a random shuffle in [0, 2**31).
_ITEMS_SQL = sql(
    """
INSERT INTO {item} ({columns})
SELECT %(campaign)s, lo.prompt_id, lo.id, hi.id, lo.model_id, hi.model_id, 0, floor(random() * 2147483648)::integer
FROM unnest(%(prompts)s::bigint[]) AS p(id)
JOIN {response} lo ON lo.prompt_id = p.id
JOIN {response} hi ON hi.prompt_id = p.id AND hi.model_id > lo.model_id
WHERE lo.status = %(done)s AND hi.status = %(done)s
  AND lo.model_id = ANY(%(models)s) AND hi.model_id = ANY(%(models)s)
ORDER BY p.id, lo.model_id, hi.model_id
ON CONFLICT DO NOTHING
""",
    Item,
    Response,
    columns=_ITEMS_SQL_COLUMNS,
)


# SQLite: the id lists as JSON arrays (json_each), random() masked to 31 bits.
_ITEMS_SQLITE = sql(
    """
INSERT INTO {item} ({columns})
SELECT %(campaign)s, lo.prompt_id, lo.id, hi.id, lo.model_id, hi.model_id, 0, random() & 2147483647
FROM {response} lo
JOIN {response} hi ON hi.prompt_id = lo.prompt_id AND hi.model_id > lo.model_id
WHERE lo.prompt_id IN (SELECT value FROM json_each(%(prompts)s))
  AND lo.status = %(done)s AND hi.status = %(done)s
  AND lo.model_id IN (SELECT value FROM json_each(%(models)s))
  AND hi.model_id IN (SELECT value FROM json_each(%(models)s))
ORDER BY lo.prompt_id, lo.model_id, hi.model_id
ON CONFLICT DO NOTHING
""",
    Item,
    Response,
    columns=_ITEMS_SQL_COLUMNS,
)


def _create_items_sql(campaign: Campaign, prompt_ids: Iterable[int]) -> None:
    prompts = list(prompt_ids)
    models = list(campaign.contenders.values_list("id", flat=True))
    if not prompts or len(models) < 2:
        return
    params = {"campaign": campaign.id, "prompts": prompts, "models": models, "done": Response.Status.DONE}
    if connection.vendor == "sqlite":
        params.update(prompts=json.dumps(prompts), models=json.dumps(models))
    with connection.cursor() as cursor:
        cursor.execute(_ITEMS_SQL if connection.vendor == "postgresql" else _ITEMS_SQLITE, params)


def _item_rows(campaign_id: int, by_prompt: dict[int, list[tuple[int, int]]]) -> Iterator[Item]:
    for prompt_id, responses in by_prompt.items():
        for (model_lo, resp_lo), (model_hi, resp_hi) in combinations(sorted(responses), 2):
            yield Item(
                campaign_id=campaign_id,
                prompt_id=prompt_id,
                response_lo_id=resp_lo,
                response_hi_id=resp_hi,
                model_lo_id=model_lo,
                model_hi_id=model_hi,
                shuffle=random.randrange(2**31),
            )


def sync_campaign_items(campaign: Campaign) -> None:
    """Bring a campaign's items in line with its models: add missing pairs, drop removed models."""
    contender_ids = list(campaign.contenders.values_list("id", flat=True))
    campaign.items.exclude(model_lo_id__in=contender_ids).delete()
    campaign.items.exclude(model_hi_id__in=contender_ids).delete()
    create_items(campaign, campaign.prompts.values_list("id", flat=True))
