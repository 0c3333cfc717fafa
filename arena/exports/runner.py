"""Running exports: filters, the streaming writers, and the life cycle of an `ExportJob`.

`write_export` is the one function that produces a file; the Celery task (through `run_job`), the
admin page and the API (through `start_export`) and ``manage.py export_data`` all call it.

Memory stays flat however many votes are exported: votes are read with ``.iterator()`` (a server-side
cursor on PostgreSQL) as plain tuples of ids and small fields, chunk by chunk; the texts of the
prompts and responses a chunk needs are fetched in one query per chunk into a cache bounded by size;
records are written to the file as they are built (Parquet: one row group per batch). The file is
written under a temporary name and renamed when complete, so a reader never sees half a file.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connections, transaction
from django.db.models import Case, Count, F, FloatField, Func, IntegerField, Q, TextField, When, Window
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast, Greatest, Least
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from arena.exports import formats
from arena.exports.formats import FORMATS, Format, PromptText, ResponseText
from arena.exports.leaderboard_csv import write_leaderboard_csv
from arena.exports.models import ExportJob
from arena.models import Campaign, ModelEntry, Prompt, Response, Vote
from arena.services.errors import ArenaError

log = logging.getLogger(__name__)

CHUNK_SIZE = 2000  # votes fetched per round trip
TEXT_CACHE_CHARS = 16_000_000  # prompt and response texts kept between chunks
PARQUET_BATCH_ROWS = 10_000  # rows per Parquet row group, at most ...
PARQUET_BATCH_CHARS = 32_000_000  # ... and at most about this much text
PROGRESS_INTERVAL = 1.0  # seconds between progress writes
STALE_AFTER = timedelta(minutes=10)  # a running job silent this long is taken over by the next run
_IN_BATCH = 500  # ids per "IN (...)" list, well under SQLite's variable limit
_PROMPT_FIELDS = ("id", "external_id", "messages", "category", "language")


# --- filters ----------------------------------------------------------------------------------------


def _moment(value: Any, name: str, *, end: bool) -> datetime | None:
    """A datetime from ISO text, a date or a datetime. A bare date means the whole day: its start for
    ``since``, the start of the next day for ``until`` (which is exclusive). Naive times are UTC."""
    if value in (None, ""):
        return None
    if isinstance(value, str):
        text = value.strip()
        try:  # a bare date first: parse_datetime would read it as midnight
            parsed: date | datetime | None = parse_date(text) if len(text) == 10 else parse_datetime(text)
        except ValueError:
            parsed = None
        if parsed is None:
            raise ArenaError(f"{name}: {value!r} is not a date (YYYY-MM-DD) or an ISO 8601 date and time.")
        value = parsed
    if isinstance(value, datetime):
        return value if timezone.is_aware(value) else timezone.make_aware(value, UTC)
    if isinstance(value, date):
        day = value + timedelta(days=1) if end else value
        return datetime.combine(day, dtime.min, tzinfo=UTC)
    raise ArenaError(f"{name}: expected a date or a date and time.")


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"1", "true", "on", "yes", "0", "false", "off", "no", ""}:
        return value.strip().lower() in {"1", "true", "on", "yes"}
    raise ArenaError(f"{name}: expected true or false.")


@dataclass(frozen=True)
class BattleSource:
    """Battle records besides the human votes, for the ``source`` filter: registered by the app that
    owns them (arena.judges, in its AppConfig.ready), so this module imports no such app."""

    parse: Callable[[Any], str]  # the filter's value, normalised; raises ArenaError
    check: Callable[[Campaign, str], None]  # raises ArenaError when the campaign lacks the source
    lines: Callable[[Campaign, str, Any], Iterator[str]]  # battle records under the export's filters


battle_sources: list[BattleSource] = []


def _parse_source(value: Any) -> str:
    if value in (None, "", "humans"):
        return "humans"
    if not battle_sources:
        raise ArenaError("source: only human votes can be exported here.")
    return battle_sources[0].parse(value)


@dataclass(frozen=True)
class ExportFilters:
    """Which votes an export reads, and how pairs are scored. Defaults: every counted vote.

    since / until: vote time, ``since`` inclusive, ``until`` exclusive (a bare date includes that day).
    dimension: battles and pairs are decided by this dimension's scores instead of the verdict.
    category: prompts of this category only.
    include_flagged / include_excluded: keep flagged battles / voters staff excluded (default: drop).
    include_gold: keep votes on gold battles, which check voters, not models (default: drop).
    min_votes: only items (prompt x model pair) with at least this many of the selected votes.
    margin: pairs only: "none", "scores" or "agreement" (see docs/exports.md).
    source: battles only: "humans" (default), "judge:NAME" or "all" (human votes and every judge's
    verdicts; see arena.judges.export and docs/judges.md).
    """

    since: datetime | None = None
    until: datetime | None = None
    dimension: str = ""
    category: str = ""
    include_flagged: bool = False
    include_excluded: bool = False
    include_gold: bool = False
    min_votes: int = 0
    margin: str = "none"
    source: str = "humans"

    @classmethod
    def parse(cls, data: Mapping[str, Any] | None) -> ExportFilters:
        """From a dict of plain values (JSON, a form, command options); raises ArenaError."""
        data = {k: v for k, v in (data or {}).items() if v is not None}
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ArenaError(f"Unknown export filters: {', '.join(sorted(unknown))}.")
        try:
            min_votes = int(data.get("min_votes") or 0)
        except (TypeError, ValueError):
            raise ArenaError("min_votes: expected a whole number.") from None
        margin = str(data.get("margin") or "none")
        result = cls(
            since=_moment(data.get("since"), "since", end=False),
            until=_moment(data.get("until"), "until", end=True),
            dimension=str(data.get("dimension") or "").strip(),
            category=str(data.get("category") or "").strip(),
            include_flagged=_flag(data.get("include_flagged", False), "include_flagged"),
            include_excluded=_flag(data.get("include_excluded", False), "include_excluded"),
            include_gold=_flag(data.get("include_gold", False), "include_gold"),
            min_votes=min_votes,
            margin=margin,
            source=_parse_source(data.get("source")),
        )
        if min_votes < 0:
            raise ArenaError("min_votes cannot be negative.")
        if margin not in formats.MARGINS:
            raise ArenaError(f"margin: use one of {', '.join(formats.MARGINS)}.")
        if result.since and result.until and result.since >= result.until:
            raise ArenaError("since must be before until.")
        return result

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, and `parse` gives back the same filters."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.isoformat() if isinstance(value, datetime) else value
        return out

    def describe(self) -> str:
        default = ExportFilters().to_dict()
        parts = [f"{name}={value}" for name, value in self.to_dict().items() if value != default[name]]
        return ", ".join(parts) or "all counted votes"

    def check(self, campaign: Campaign, spec: Format) -> None:
        """Refuse filters that do not apply to the format or the campaign."""
        if self.dimension and not campaign.dimensions.filter(key=self.dimension).exists():
            raise ArenaError(f"Campaign {campaign.slug!r} has no dimension {self.dimension!r}.")
        if spec.kind == "leaderboard":
            vote_level = (
                self.since or self.until or self.include_flagged or self.include_excluded or self.include_gold
            ) or self.min_votes > 1
            if vote_level or self.margin != "none":
                raise ArenaError(
                    "Leaderboard exports read the stored snapshots (every counted vote): date, flag, voter, "
                    "min-votes and margin filters apply to battle and pair exports only."
                )
        if spec.kind == "battles" and self.margin != "none":
            raise ArenaError("margin applies to preference pairs only.")
        if self.source != "humans":
            if spec.kind != "battles":
                raise ArenaError("source: judge verdicts are exported as battles only (pairs and boards are human).")
            battle_sources[0].check(campaign, self.source)


def get_format(name: str) -> Format:
    spec = FORMATS.get(name)
    if spec is None:
        raise ArenaError(f"Unknown export format {name!r}; use one of {', '.join(FORMATS)}.")
    return spec


# --- progress ---------------------------------------------------------------------------------------


@dataclass
class Progress:
    rows_total: int = 0
    rows_done: int = 0
    rows_written: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


ProgressCallback = Callable[[Progress], None]


# --- writing ----------------------------------------------------------------------------------------


def write_export(
    campaign: Campaign,
    fmt: str,
    filters: ExportFilters | None,
    path: str | Path,
    progress: ProgressCallback | None = None,
) -> Progress:
    """Write one export of the campaign to ``path`` (via a temporary file renamed at the end)."""
    spec = get_format(fmt)
    filters = filters or ExportFilters()
    filters.check(campaign, spec)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    report = progress or (lambda p: None)
    try:
        if spec.kind == "leaderboard":
            stats = _write_leaderboard(campaign, spec, filters, tmp, report)
        else:
            stats = _VoteExport(campaign, spec, filters).write(tmp, report)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return stats


def _batched(iterable: Iterable, size: int) -> Iterator[list]:
    iterator = iter(iterable)
    while chunk := list(islice(iterator, size)):
        yield chunk


class _LineSink:
    """JSON lines."""

    def __init__(self, path: Path) -> None:
        self.file = open(path, "w", encoding="utf-8", newline="\n", buffering=1 << 20)  # noqa: SIM115

    def write(self, record: str) -> None:
        self.file.write(record)
        self.file.write("\n")

    def close(self) -> None:
        self.file.close()


class _JsonListSink(_LineSink):
    """One JSON list, one record per line (what ``pandas.read_json`` and FastChat read)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.first = True

    def write(self, record: str) -> None:
        self.file.write("[\n" if self.first else ",\n")
        self.file.write(record)
        self.first = False

    def close(self) -> None:
        self.file.write("[]\n" if self.first else "\n]\n")
        self.file.close()


class _ParquetSink:
    """Rows gathered column by column and written one row group per batch."""

    def __init__(self, path: Path, schema) -> None:
        import pyarrow.parquet as pq

        self.schema = schema
        self.writer = pq.ParquetWriter(path, schema)
        self.columns: dict[str, list] = {name: [] for name in schema.names}
        self.rows = 0
        self.chars = 0

    def write(self, row: dict[str, Any], chars: int) -> None:
        for name, column in self.columns.items():
            column.append(row[name])
        self.rows += 1
        self.chars += chars
        if self.rows >= PARQUET_BATCH_ROWS or self.chars >= PARQUET_BATCH_CHARS:
            self.flush()

    def flush(self) -> None:
        import pyarrow as pa

        if self.rows:
            self.writer.write_batch(pa.RecordBatch.from_pydict(self.columns, schema=self.schema))
            for column in self.columns.values():
                column.clear()
            self.rows = self.chars = 0

    def close(self) -> None:
        self.flush()
        self.writer.close()


class _Texts:
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
        for ids in _batched(missing_prompts, _IN_BATCH):
            rows = Prompt.objects.filter(pk__in=ids).values_list(*_PROMPT_FIELDS)
            for pk, external_id, messages, category, language in rows:
                text = PromptText.build(external_id or str(pk), messages, category, language)
                self.prompts[pk] = text
                self.size += text.size
        for ids in _batched(missing_responses, _IN_BATCH):
            for pk, content in Response.objects.filter(pk__in=ids).values_list("id", "content"):
                text = ResponseText.build(content)
                self.responses[pk] = text
                self.size += text.size


class Epoch(Func):
    """PostgreSQL: a timestamp as seconds since 1970, a float, which spares a datetime object per row."""

    template = "EXTRACT(EPOCH FROM %(expressions)s)::double precision"
    output_field = FloatField()

    def get_db_converters(self, connection):
        return []  # already a float: skip the per-row float() of FloatField expressions


# The vote rows _VoteExport reads, in this order (JSON columns as text: most are "{}").
_FIELDS = (
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
_PROMPT, _LEFT, _RIGHT, _ITEM = 8, 9, 10, 13


@dataclass
class _Pair:
    prompt: PromptText
    chosen: ResponseText
    rejected: ResponseText
    chosen_model: int
    rejected_model: int
    margin: float | None


class _VoteExport:
    """Battles or preference pairs, one pass over the selected votes."""

    def __init__(self, campaign: Campaign, spec: Format, filters: ExportFilters) -> None:
        self.campaign, self.spec, self.filters = campaign, spec, filters
        self.names = dict(ModelEntry.objects.values_list("id", "name"))
        self.names_json = {pk: formats.dumps(name) for pk, name in self.names.items()}
        self.scales = {d.key: max(1, d.scale_max - d.scale_min) for d in campaign.dimensions.all()}
        self.key = (settings.ARENA_IP_SALT or settings.SECRET_KEY).encode()
        self.voters: dict[int, str] = {}
        self.texts = _Texts()
        self.agreement = spec.kind == "pairs" and filters.margin == "agreement"
        self.with_margin = spec.kind == "pairs" and filters.margin != "none"
        self.campaign_json = formats.dumps(campaign.slug)
        self.dimension_json = formats.dumps(filters.dimension or None)
        # Votes repeat a few score combinations: decode each distinct text once.
        self._scores: dict[str, tuple[dict, str]] = {"{}": ({}, "{}")}

    def scores(self, text: str) -> tuple[dict, str]:
        """A vote's scores (the stored text) decoded, and encoded for a battle record. Do not mutate."""
        known = self._scores.get(text)
        if known is None:
            if len(self._scores) > 50_000:
                self._scores = {"{}": ({}, "{}")}
            scores = _loads(text)
            known = self._scores[text] = (scores, formats.battle_scores_json(scores))
        return known

    # -- the query --

    def _winner_expression(self):
        """The winning model of a vote in SQL (the verdict's, or the dimension's higher score), and the
        annotations it needs."""
        if not self.filters.dimension:
            return F("winner_id"), {}
        scores = KeyTransform(self.filters.dimension, "scores")
        left = Cast(KeyTextTransform("left", scores), IntegerField())
        right = Cast(KeyTextTransform("right", scores), IntegerField())
        return Case(
            When(Q(_score_left__gt=F("_score_right")), then=F("left_model_id")),
            When(Q(_score_right__gt=F("_score_left")), then=F("right_model_id")),
            default=None,
            output_field=IntegerField(),
        ), {"_score_left": left, "_score_right": right}

    def queryset(self):
        filters = self.filters
        votes = Vote.objects.filter(campaign=self.campaign)
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
        names = list(_FIELDS)
        if filters.min_votes > 1 or self.agreement:
            # Counts per item (prompt x unordered model pair) among the selected votes, in the same query.
            lo, hi = Least("left_model_id", "right_model_id"), Greatest("left_model_id", "right_model_id")
            item = [F("prompt_id"), lo, hi]
            votes = votes.annotate(item_votes=Window(Count("id"), partition_by=item))
            names.append("item_votes")
            if self.agreement:
                winner, helpers = self._winner_expression()
                votes = votes.annotate(**helpers).annotate(
                    item_decided=Window(Count(winner), partition_by=item),
                    item_same=Window(Count("id"), partition_by=[*item, winner]),
                )
                names += ["item_decided", "item_same"]
            if filters.min_votes > 1:
                votes = votes.filter(item_votes__gte=filters.min_votes)
        return votes.order_by("id").values_list(*names)

    # -- records --

    def voter(self, voter_id: int) -> str:
        hashed = self.voters.get(voter_id)
        if hashed is None:
            if len(self.voters) > 100_000:
                self.voters.clear()
            hashed = self.voters[voter_id] = formats.voter_hash(self.key, voter_id)
        return hashed

    def battle(self, row: tuple, stats: Progress) -> str | None:
        (
            battle_id,
            when,
            verdict,
            scores_text,
            duration_ms,
            voter_id,
            left_model,
            right_model,
            prompt_id,
            left_id,
            right_id,
            flagged,
            conversation_text,
        ) = row[:13]
        scores, scores_json = self.scores(scores_text)
        dimension = self.filters.dimension
        if dimension:
            sides = scores.get(dimension) or {}
            winner = formats.score_winner(sides.get("left"), sides.get("right"))
            if winner is None:
                stats.skip("not scored on the dimension")
                return None
        else:
            winner = formats.WINNER[verdict]
        prompt = self.texts.prompts[prompt_id]
        conversation = _loads(conversation_text) if conversation_text != "{}" else None
        live_a = formats.live_messages(conversation, "left") if conversation else None
        if live_a is not None:
            live_b = formats.live_messages(conversation, "right") or []
            conversation_a = formats.dumps(formats.with_token_counts(live_a))
            conversation_b = formats.dumps(formats.with_token_counts(live_b))
            metadata = None  # battle_line counts the live turns
            turn = sum(1 for m in live_a if m["role"] == "user")
        else:
            answer_a, answer_b = self.texts.responses[left_id], self.texts.responses[right_id]
            conversation_a = formats.conversation_json(prompt, answer_a)
            conversation_b = formats.conversation_json(prompt, answer_b)
            metadata = formats.battle_metadata_json(answer_a, answer_b)
            turn = prompt.turn
        return formats.battle_line(
            prompt=prompt,
            model_a_json=self.names_json[left_model],
            model_b_json=self.names_json[right_model],
            winner=winner,
            voter=self.voter(voter_id),
            turn=turn,
            tstamp=when if isinstance(when, float) else when.timestamp(),
            battle_id=battle_id,
            campaign_json=self.campaign_json,
            verdict=verdict,
            dimension_json=self.dimension_json,
            scores_json=scores_json,
            duration_ms=duration_ms,
            flagged=flagged,
            conversation_a=conversation_a,
            conversation_b=conversation_b,
            conv_metadata_json=metadata,
        )

    def _margin(self, row: tuple, scores: dict, chosen: str, rejected: str) -> float | None:
        margin = self.filters.margin
        if margin == "agreement":
            votes, decided, same = row[_ITEM], row[_ITEM + 1], row[_ITEM + 2]
            return round((same - (decided - same)) / votes, 4) if votes else 0.0
        if margin == "scores":
            keys = [self.filters.dimension] if self.filters.dimension else list(self.scales)
            gaps = []
            for key in keys:
                sides = scores.get(key) or {}
                if sides.get(chosen) is not None and sides.get(rejected) is not None:
                    gaps.append((sides[chosen] - sides[rejected]) / self.scales.get(key, 1))
            return round(sum(gaps) / len(gaps), 4) if gaps else 0.0
        return None

    def pairs(self, row: tuple, stats: Progress) -> Iterator[_Pair]:
        """The preference pairs of one vote: its ranking of the two sides, expanded to pairs."""
        (
            _,
            _,
            verdict,
            scores_text,
            _,
            _,
            left_model,
            right_model,
            prompt_id,
            left_id,
            right_id,
            _,
            conversation_text,
        ) = row[:13]
        scores = self.scores(scores_text)[0]
        if self.filters.dimension:
            sides = scores.get(self.filters.dimension) or {}
            tiers = formats.tiers_from_scores([("left", sides.get("left")), ("right", sides.get("right"))])
        else:
            tiers = _VERDICT_TIERS.get(verdict, [])
        if len(tiers) < 2:
            stats.skip("tie, both bad or unscored")
            return
        prompt = self.texts.prompts[prompt_id]
        answers = {"left": self.texts.responses[left_id], "right": self.texts.responses[right_id]}
        if conversation_text != "{}":
            conversation = _loads(conversation_text)
            live = formats.live_messages(conversation, "left")
            if live is not None:
                if len(conversation["user"]) != 1:
                    stats.skip("multi-turn live battle")  # the two sides' earlier answers differ: no shared prompt
                    return
                prompt = PromptText.build(prompt.question_id, live[:1], prompt.category, prompt.language)
                for side in ("left", "right"):
                    answers[side] = ResponseText.build(formats.message_content((conversation.get(side) or [""])[0]))
        models = {"left": left_model, "right": right_model}
        for better, worse, _distance in formats.ranking_pairs(tiers):
            yield _Pair(
                prompt,
                answers[better],
                answers[worse],
                models[better],
                models[worse],
                self._margin(row, scores, better, worse),
            )

    # -- the pass --

    def write(self, path: Path, progress: ProgressCallback) -> Progress:
        spec = self.spec
        query = self.queryset()
        stats = Progress(rows_total=query.count())
        progress(stats)
        if spec.name == "parquet":
            sink: Any = _ParquetSink(path, formats.parquet_schema(self.with_margin))
        elif spec.name == "battles-json":
            sink = _JsonListSink(path)
        else:
            sink = _LineSink(path)
        try:
            for chunk in _batched(query.iterator(chunk_size=CHUNK_SIZE), CHUNK_SIZE):
                self.texts.load({row[_PROMPT] for row in chunk}, {r[i] for r in chunk for i in (_LEFT, _RIGHT)})
                for row in chunk:
                    if spec.kind == "battles":
                        line = self.battle(row, stats)
                        if line is not None:
                            sink.write(line)
                            stats.rows_written += 1
                        continue
                    for pair in self.pairs(row, stats):
                        self._write_pair(sink, row, pair)
                        stats.rows_written += 1
                stats.rows_done += len(chunk)
                progress(stats)
            if spec.kind == "battles" and self.filters.source != "humans":
                for line in battle_sources[0].lines(self.campaign, self.filters.source, self.filters):
                    sink.write(line)
                    stats.rows_written += 1
        finally:
            sink.close()
        return stats

    def _write_pair(self, sink: Any, row: tuple, pair: _Pair) -> None:
        name = self.spec.name
        if name == "openai-jsonl":
            sink.write(formats.openai_line(pair.prompt.messages_json, pair.chosen, pair.rejected))
        elif name == "trl-jsonl":
            tail = formats.pair_metadata_json(
                battle_id=row[0],
                prompt=pair.prompt,
                chosen_model_json=self.names_json[pair.chosen_model],
                rejected_model_json=self.names_json[pair.rejected_model],
                voter=self.voter(row[5]),
                margin=pair.margin if self.with_margin else formats.NO_MARGIN,
            )
            sink.write(formats.trl_line(pair.prompt.messages_json, pair.chosen, pair.rejected, tail))
        else:
            record = {
                "prompt": pair.prompt.messages,
                "chosen": formats.assistant_messages(pair.chosen),
                "rejected": formats.assistant_messages(pair.rejected),
                "margin": pair.margin,
                "battle_id": row[0],
                "question_id": pair.prompt.question_id,
                "chosen_model": self.names[pair.chosen_model],
                "rejected_model": self.names[pair.rejected_model],
                "category": pair.prompt.category,
                "language": pair.prompt.language,
                "voter_id": self.voter(row[5]),
            }
            sink.write(record, pair.prompt.size + pair.chosen.size + pair.rejected.size)


_VERDICT_TIERS = {"left": [["left"], ["right"]], "right": [["right"], ["left"]]}
_loads = json.loads


def _write_leaderboard(
    campaign: Campaign, spec: Format, filters: ExportFilters, path: Path, progress: ProgressCallback
) -> Progress:
    """Every stored snapshot of the default method (overall, per dimension, per category)."""
    from arena.leaderboards.models import LeaderboardSnapshot
    from arena.leaderboards.snapshots import DEFAULT_METHOD

    snapshots = LeaderboardSnapshot.objects.filter(campaign=campaign, method=DEFAULT_METHOD)
    if filters.dimension:
        snapshots = snapshots.filter(dimension=filters.dimension)
    if filters.category:
        snapshots = snapshots.filter(category=filters.category)
    snapshots = list(snapshots.order_by("dimension", "category"))
    if not snapshots:
        raise ArenaError("No leaderboard has been computed for this selection yet; it appears after the first votes.")
    stats = Progress(rows_total=sum(len(s.data.get("rows", [])) for s in snapshots))
    progress(stats)
    if spec.name == "leaderboard-csv":
        with open(path, "w", encoding="utf-8", newline="") as out:
            stats.rows_written += write_leaderboard_csv(out, snapshots)
    else:
        boards = []
        for snapshot in snapshots:
            data = snapshot.data
            boards.append(
                {
                    "dimension": snapshot.dimension,
                    "category": snapshot.category,
                    "method": snapshot.method,
                    "n_votes": snapshot.n_votes,
                    "computed_at": snapshot.computed_at.isoformat(),
                    "ties": data.get("ties"),
                    "tie_parameter": data.get("tie_parameter"),
                    "confidence": data.get("confidence"),
                    "bootstrap_rounds": data.get("bootstrap_rounds"),
                    "rows": data.get("rows", []),
                }
            )
            stats.rows_written += len(data.get("rows", []))
        document = {"campaign": campaign.slug, "title": campaign.title, "leaderboards": boards}
        path.write_text(formats.dumps(document) + "\n", encoding="utf-8")
    stats.rows_done = stats.rows_total
    progress(stats)
    return stats


# --- jobs -------------------------------------------------------------------------------------------


def export_dir() -> Path:
    return Path(settings.ARENA_EXPORT_DIR)


def start_export(
    campaign: Campaign, fmt: str, filters: ExportFilters | Mapping[str, Any] | None = None, user=None
) -> ExportJob:
    """Record an export job and hand it to a worker once the job row is committed."""
    spec = get_format(fmt)
    if not isinstance(filters, ExportFilters):
        filters = ExportFilters.parse(filters)
    filters.check(campaign, spec)
    with transaction.atomic():
        job = ExportJob.objects.create(
            campaign=campaign,
            format=spec.name,
            filters=filters.to_dict(),
            created_by=user if user is not None and user.is_authenticated else None,
        )
        transaction.on_commit(partial(_enqueue, job.pk))
    return job


def _enqueue(job_id: int) -> None:
    from arena.exports.tasks import run_export_job

    try:
        run_export_job.apply_async((job_id,), queue="default")
    except Exception:  # the broker is down: say so on the job instead of failing the request
        log.exception("could not enqueue export job %s", job_id)
        ExportJob.objects.filter(pk=job_id, status=ExportJob.Status.QUEUED).update(
            status=ExportJob.Status.FAILED,
            error="The task queue could not be reached; please start the export again.",
            finished_at=timezone.now(),
        )


def run_job(job_id: int) -> ExportJob | None:
    """Run a queued job (or take over one whose worker went silent). Returns None if there was
    nothing to do: the job is finished, gone, or running elsewhere. Never raises for a failed export:
    the job records the error."""
    now = timezone.now()
    runnable = Q(status=ExportJob.Status.QUEUED) | Q(
        status=ExportJob.Status.RUNNING, heartbeat_at__lt=now - STALE_AFTER
    )
    claimed = ExportJob.objects.filter(runnable, pk=job_id).update(
        status=ExportJob.Status.RUNNING,
        attempt=F("attempt") + 1,
        started_at=now,
        heartbeat_at=now,
        rows_done=0,
        rows_written=0,
        error="",
    )
    if claimed != 1:
        return None
    job = ExportJob.objects.select_related("campaign").get(pk=job_id)
    mine = ExportJob.objects.filter(pk=job.pk, attempt=job.attempt, status=ExportJob.Status.RUNNING)
    name = f"{job.campaign.slug}-{job.format}-{job.pk}-{job.attempt}.{FORMATS[job.format].extension}"
    path = export_dir() / name
    last = 0.0

    def report(stats: Progress) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= PROGRESS_INTERVAL:
            last = now
            mine.update(
                rows_total=stats.rows_total,
                rows_done=stats.rows_done,
                rows_written=stats.rows_written,
                heartbeat_at=timezone.now(),
            )

    try:
        stats = write_export(job.campaign, job.format, ExportFilters.parse(job.filters), path, report)
    except Exception as error:
        if isinstance(error, ArenaError):
            message = error.message
        else:
            log.exception("export job %s failed", job.pk)
            message = f"The export failed: {type(error).__name__}: {error}"
        mine.update(status=ExportJob.Status.FAILED, error=message[:2000], finished_at=timezone.now())
    else:
        finished = mine.update(
            status=ExportJob.Status.DONE,
            file_name=name,
            file_size=path.stat().st_size,
            rows_total=stats.rows_total,
            rows_done=stats.rows_done,
            rows_written=stats.rows_written,
            finished_at=timezone.now(),
            heartbeat_at=timezone.now(),
        )
        if finished != 1:  # another run took the job over while this one was silent
            path.unlink(missing_ok=True)
    job.refresh_from_db()
    return job
