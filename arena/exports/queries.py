"""The vote query of the battle and pair exports, and the prompt and response texts it needs.

Rule: memory stays flat however many votes are exported. Votes are read with ``.iterator()`` (a
server-side cursor on PostgreSQL) as plain tuples of ids and small fields (`VOTE_FIELDS`, in this
order; JSON columns as text, most of them "{}"), `CHUNK_SIZE` at a time; the texts of the prompts and
responses a chunk needs are fetched in one query per chunk of ids into a `TextCache` bounded by size.
The export filters become SQL here, and only here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from django.db import connections
from django.db.models import Case, Count, F, FloatField, Func, IntegerField, Q, TextField, When, Window
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast, Greatest, Least

from arena.exports.filters import ExportFilters
from arena.exports.formats import PromptText, ResponseText
from arena.models import Campaign, Prompt, Response, Vote

CHUNK_SIZE = 2000  # votes fetched per round trip
TEXT_CACHE_CHARS = 16_000_000  # prompt and response texts kept between chunks
IN_BATCH = 500  # ids per "IN (...)" list, well under SQLite's variable limit
_PROMPT_FIELDS = ("id", "external_id", "messages", "category", "language")

# The vote rows `vote_rows` reads, in this order (JSON columns as text: most are "{}").
VOTE_FIELDS = (
    "battle_id",
    "_time",
    "verdict",
    "_scores",
    "duration_ms",
    "voter_id",
    "left_model_id",
    "right_model_id",
    "prompt_id",
    "battle__left_id",
    "battle__right_id",
    "battle__flagged",
    "_conversation",
)
# Positions in a row: the prompt, the left and right responses, and the first per-item count
# (item_votes, then item_decided and item_same with the agreement margin).
PROMPT, LEFT, RIGHT, ITEM = 8, 9, 10, 13


def batched(iterable: Iterable, size: int) -> Iterator[list]:
    """Lists of ``size`` items (the last one shorter)."""
    iterator = iter(iterable)
    while chunk := list(islice(iterator, size)):
        yield chunk


class Epoch(Func):
    """PostgreSQL: a timestamp as seconds since 1970, a float, which spares a datetime object per row."""

    template = "EXTRACT(EPOCH FROM %(expressions)s)::double precision"
    output_field = FloatField()

    def get_db_converters(self, connection):
        return []  # already a float: skip the per-row float() of FloatField expressions


def _winner_expression(dimension: str) -> tuple[Any, dict[str, Any]]:
    """The winning model of a vote in SQL (the verdict's, or the dimension's higher score), and the
    annotations it needs."""
    if not dimension:
        return F("winner_id"), {}
    scores = KeyTransform(dimension, "scores")
    left = Cast(KeyTextTransform("left", scores), IntegerField())
    right = Cast(KeyTextTransform("right", scores), IntegerField())
    return Case(
        When(Q(_score_left__gt=F("_score_right")), then=F("left_model_id")),
        When(Q(_score_right__gt=F("_score_left")), then=F("right_model_id")),
        default=None,
        output_field=IntegerField(),
    ), {"_score_left": left, "_score_right": right}


def vote_rows(campaign: Campaign, filters: ExportFilters, *, agreement: bool = False):
    """The selected votes of the campaign, oldest first, as `VOTE_FIELDS` tuples; with ``min_votes``
    above 1 or ``agreement`` each row also carries its item's counts among the selected votes."""
    votes = Vote.objects.filter(campaign=campaign)
    if filters.source.startswith("judge:"):
        votes = votes.none()
    if filters.since:
        votes = votes.filter(created_at__gte=filters.since)
    if filters.until:
        votes = votes.filter(created_at__lt=filters.until)
    if filters.category:
        votes = votes.filter(prompt__category=filters.category)
    if not filters.include_flagged:
        votes = votes.filter(battle__flagged=False)
    if not filters.include_excluded:
        votes = votes.filter(voter__excluded=False)
    if not filters.include_gold:
        votes = votes.filter(battle__gold__isnull=True)
    epoch = connections[votes.db].vendor == "postgresql"
    votes = votes.annotate(
        _time=Epoch("created_at") if epoch else F("created_at"),
        _scores=Cast("scores", TextField()),
        _conversation=Cast("battle__conversation", TextField()),
    )
    names = list(VOTE_FIELDS)
    if filters.min_votes > 1 or agreement:
        # Counts per item (prompt x unordered model pair) among the selected votes, in the same query.
        lo, hi = Least("left_model_id", "right_model_id"), Greatest("left_model_id", "right_model_id")
        item = [F("prompt_id"), lo, hi]
        votes = votes.annotate(item_votes=Window(Count("id"), partition_by=item))
        names.append("item_votes")
        if agreement:
            winner, helpers = _winner_expression(filters.dimension)
            votes = votes.annotate(**helpers).annotate(
                item_decided=Window(Count(winner), partition_by=item),
                item_same=Window(Count("id"), partition_by=[*item, winner]),
            )
            names += ["item_decided", "item_same"]
        if filters.min_votes > 1:
            votes = votes.filter(item_votes__gte=filters.min_votes)
    return votes.order_by("id").values_list(*names)


def vote_chunks(rows) -> Iterator[list[tuple]]:
    """The rows of `vote_rows`, streamed from the database `CHUNK_SIZE` at a time."""
    return batched(rows.iterator(chunk_size=CHUNK_SIZE), CHUNK_SIZE)


class TextCache:
    """Prompt and response texts by id, fetched per chunk of votes, dropped when they grow too big."""

    def __init__(self, limit: int = TEXT_CACHE_CHARS) -> None:
        self.prompts: dict[int, PromptText] = {}
        self.responses: dict[int, ResponseText] = {}
        self.size = 0
        self.limit = limit

    def load(self, prompt_ids: set[int], response_ids: set[int]) -> None:
        missing_prompts = [i for i in prompt_ids if i not in self.prompts]
        missing_responses = [i for i in response_ids if i not in self.responses]
        if not missing_prompts and not missing_responses:
            return
        if self.size > self.limit:
            self.prompts.clear()
            self.responses.clear()
            self.size = 0
            missing_prompts, missing_responses = list(prompt_ids), list(response_ids)
        for ids in batched(missing_prompts, IN_BATCH):
            rows = Prompt.objects.filter(pk__in=ids).values_list(*_PROMPT_FIELDS)
            for pk, external_id, messages, category, language in rows:
                text = PromptText.build(external_id or str(pk), messages, category, language)
                self.prompts[pk] = text
                self.size += text.size
        for ids in batched(missing_responses, IN_BATCH):
            for pk, content in Response.objects.filter(pk__in=ids).values_list("id", "content"):
                text = ResponseText.build(content)
                self.responses[pk] = text
                self.size += text.size

    def load_chunk(self, chunk: list[tuple]) -> None:
        """The texts of a chunk of `vote_rows` rows."""
        self.load({row[PROMPT] for row in chunk}, {row[i] for row in chunk for i in (LEFT, RIGHT)})
