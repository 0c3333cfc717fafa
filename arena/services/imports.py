"""Importing campaigns, prompts and pre-written responses from files.

Every import is all or nothing: the whole file is parsed and validated first, every problem is
reported with its line number, and only a clean file is written, in one transaction. Re-importing
the same file is idempotent: prompts are matched by ``external_id``, responses by (prompt, model).

Prompt file formats (documented in the README):
- JSONL, one prompt per line: {"external_id": "p1", "prompt": "text" | "messages": [...],
  "category": "...", "language": "en", "responses": {"<model name>": "<answer>", ...}}
- CSV with a header: external_id, prompt (or messages as a JSON list), category, language, and
  optionally model and response; several rows may share an external_id to give several responses.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from arena.models import Campaign, Dimension, ModelEntry, Prompt, Response
from arena.rendering import render_markdown
from arena.services.errors import ArenaError
from arena.services.items import create_items

ROLES = {"system", "user", "assistant"}
MAX_TEXT = 200_000


class ImportFailed(ArenaError):
    """The file had problems; ``errors`` lists them as "line N: message"."""

    def __init__(self, errors: list[str]) -> None:
        shown = errors[:50]
        more = f"\n... and {len(errors) - 50} more" if len(errors) > 50 else ""
        super().__init__("Nothing was imported:\n" + "\n".join(shown) + more)
        self.errors = errors


@dataclass
class PromptRow:
    line: int
    external_id: str
    messages: list[dict[str, str]]
    category: str = ""
    language: str = ""
    responses: dict[str, str] = field(default_factory=dict)


@dataclass
class ImportSummary:
    prompts_created: int = 0
    prompts_updated: int = 0
    responses_written: int = 0

    def __str__(self) -> str:
        return (
            f"{self.prompts_created} prompts created, {self.prompts_updated} updated, "
            f"{self.responses_written} responses written"
        )


def clean_messages(value: Any) -> list[dict[str, str]]:
    """An OpenAI-style message list ending with a user turn, or a clear ValueError."""
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("the prompt is empty")
        return [{"role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise ValueError("messages must be a non-empty list of {role, content} objects")
    messages = []
    for index, message in enumerate(value):
        if not isinstance(message, dict):
            raise ValueError(f"message {index + 1} is not an object")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise ValueError(f"message {index + 1}: role must be one of system, user, assistant")
        if not isinstance(content, str):
            raise ValueError(f"message {index + 1}: content must be text")
        if len(content) > MAX_TEXT:
            raise ValueError(f"message {index + 1}: content is longer than {MAX_TEXT} characters")
        messages.append({"role": role, "content": content})
    if messages[-1]["role"] != "user":
        raise ValueError("the last message must be the user's")
    return messages


def _text(value: Any, name: str, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text")
    if len(value) > limit:
        raise ValueError(f"{name} is longer than {limit} characters")
    return value.strip()


def _row_from_record(line: int, record: Any) -> PromptRow:
    if not isinstance(record, dict):
        raise ValueError("expected a JSON object")
    if "messages" in record:
        messages = clean_messages(record["messages"])
    elif "prompt" in record:
        messages = clean_messages(record["prompt"])
    else:
        raise ValueError('give "prompt" (text) or "messages" (a list)')
    responses = record.get("responses") or {}
    if not isinstance(responses, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in responses.items()
    ):
        raise ValueError('"responses" must map model names to answer texts')
    for name, answer in responses.items():
        if len(answer) > MAX_TEXT:
            raise ValueError(f"the response of {name!r} is longer than {MAX_TEXT} characters")
    row = PromptRow(
        line=line,
        external_id=_text(record.get("external_id", record.get("id")), "external_id", 200),
        messages=messages,
        category=_text(record.get("category"), "category", 64),
        language=_text(record.get("language"), "language", 16),
        responses=dict(responses),
    )
    _check_storable(row)
    return row


def _check_storable(row: PromptRow) -> None:
    """Text the database can store: PostgreSQL refuses NUL characters, UTF-8 refuses lone surrogates."""
    texts = [row.external_id, row.category, row.language, *(m["content"] for m in row.messages)]
    for value in [*texts, *(part for pair in row.responses.items() for part in pair)]:
        _check_storable_text(value)


def _check_storable_text(value: str) -> None:
    if "\x00" in value:
        raise ValueError("the text contains a NUL character (\\u0000), which cannot be stored")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("the text contains an invalid Unicode escape (a lone surrogate)") from None


def parse_jsonl(lines: Iterable[str]) -> tuple[list[PromptRow], list[str]]:
    rows, errors = [], []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            rows.append(_row_from_record(number, json.loads(raw)))
        except json.JSONDecodeError as error:
            errors.append(f"line {number}: not valid JSON ({error.msg})")
        except ValueError as error:
            errors.append(f"line {number}: {error}")
    return rows, errors


def parse_csv(text: str) -> tuple[list[PromptRow], list[str]]:
    reader = csv.DictReader(io.StringIO(text))
    try:
        columns = set(reader.fieldnames or [])
        return _parse_csv_rows(reader, columns)
    except csv.Error as error:  # broken quoting: the rest of the file cannot be read reliably
        return [], [f"line {max(reader.line_num, 1)}: not valid CSV ({error})"]


def _parse_csv_rows(reader: csv.DictReader, columns: set[str]) -> tuple[list[PromptRow], list[str]]:
    if not columns & {"prompt", "messages"}:
        return [], ['line 1: the header needs a "prompt" or "messages" column']
    rows: dict[str, PromptRow] = {}
    ordered: list[PromptRow] = []
    errors: list[str] = []
    for record in reader:
        number = reader.line_num
        try:
            if None in record:
                raise ValueError("more fields than the header has")
            data: dict[str, Any] = {k: v for k, v in record.items() if k in {"external_id", "category", "language"}}
            if record.get("messages"):
                data["messages"] = json.loads(record["messages"])
            else:
                data["prompt"] = record.get("prompt") or ""
            model, answer = (record.get("model") or "").strip(), record.get("response") or ""
            if model and not answer.strip():
                raise ValueError(f"the response of {model!r} is empty")
            row = _row_from_record(number, data)
            previous = rows.get(row.external_id) if row.external_id else None
            if previous is not None:
                if previous.messages != row.messages:
                    raise ValueError(f"external_id {row.external_id!r} appears with two different prompts")
                row = previous
            else:
                ordered.append(row)
                if row.external_id:
                    rows[row.external_id] = row
            if model:
                _check_storable_text(answer)
                row.responses[model] = answer
        except json.JSONDecodeError as error:
            errors.append(f"line {number}: messages is not valid JSON ({error.msg})")
        except ValueError as error:
            errors.append(f"line {number}: {error}")
    return ordered, errors


def parse_prompt_file(name: str, data: bytes) -> list[PromptRow]:
    """Parse a JSONL or CSV prompt file (by extension); raise ImportFailed listing every problem."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ImportFailed([f"the file is not UTF-8 text (byte {error.start})"]) from None
    if name.lower().endswith(".csv"):
        rows, errors = parse_csv(text)
    elif name.lower().endswith((".jsonl", ".ndjson", ".json")):
        rows, errors = parse_jsonl(text.splitlines())
    else:
        raise ImportFailed([f"{name}: unknown file type; use .jsonl or .csv"])
    seen: dict[str, int] = {}
    for row in rows:
        if row.external_id and not name.lower().endswith(".csv"):
            if row.external_id in seen:
                errors.append(f"line {row.line}: external_id {row.external_id!r} also on line {seen[row.external_id]}")
            seen[row.external_id] = row.line
    if not rows and not errors:
        errors.append("the file holds no prompt")
    if errors:
        raise ImportFailed(errors)
    return rows


def import_prompts(campaign: Campaign, rows: list[PromptRow]) -> ImportSummary:
    """Write parsed prompts and responses into a campaign, all or nothing."""
    models_by_name = {m.name: m for m in campaign.contenders.all()}
    errors = [
        f"line {row.line}: model {name!r} is not in this campaign"
        for row in rows
        for name in row.responses
        if name not in models_by_name
    ]
    errors += [
        f"line {row.line}: responses need an external_id so that re-imports can match them"
        for row in rows
        if row.responses and not row.external_id
    ]
    if errors:
        raise ImportFailed(errors)
    summary = ImportSummary()
    with transaction.atomic():
        existing = dict(
            campaign.prompts.filter(external_id__in=[r.external_id for r in rows if r.external_id]).values_list(
                "external_id", "id"
            )
        )
        new, updated = [], []
        for row in rows:
            prompt = Prompt(
                campaign=campaign,
                external_id=row.external_id,
                messages=row.messages,
                category=row.category,
                language=row.language,
            )
            if row.external_id in existing:
                prompt.id = existing[row.external_id]
                updated.append(prompt)
            else:
                new.append(prompt)
        Prompt.objects.bulk_create(new, batch_size=2000)
        Prompt.objects.bulk_update(updated, ["messages", "category", "language"], batch_size=2000)
        summary.prompts_created, summary.prompts_updated = len(new), len(updated)
        ids = {p.external_id: p.id for p in updated} | {p.external_id: p.id for p in new if p.external_id}
        now = timezone.now()
        responses = [
            Response(
                prompt_id=ids[row.external_id],
                model=models_by_name[name],
                content=answer,
                html=render_markdown(answer),
                status=Response.Status.DONE,
                source=Response.Source.IMPORTED,
                updated_at=now,
            )
            for row in rows
            for name, answer in row.responses.items()
        ]
        Response.objects.bulk_create(
            responses,
            batch_size=2000,
            update_conflicts=True,
            unique_fields=["prompt", "model"],
            update_fields=["content", "html", "status", "source", "error", "updated_at"],
        )
        summary.responses_written = len(responses)
        create_items(campaign, {ids[row.external_id] for row in rows if row.responses})
    return summary


# --- Whole campaigns from one JSON file -----------------------------------------------------------

CAMPAIGN_FIELDS = {
    "title", "instructions", "status", "mode", "access", "allow_tie", "allow_both_bad", "sampling",
    "vote_limit", "daily_vote_limit", "votes_per_item", "task", "ranking_size",
}  # fmt: skip
MODEL_FIELDS = {"backend", "backend_settings", "params", "is_active", "weight"}


def load_campaign(spec: dict[str, Any]) -> tuple[Campaign, ImportSummary]:
    """Create or update a campaign, its models, dimensions, prompts and responses from a dict.

    The format is the one of arena/demo/demo_campaign.json (see the README).
    """
    if not isinstance(spec, dict) or not spec.get("slug") or not spec.get("title"):
        raise ImportFailed(['the campaign needs at least "slug" and "title"'])
    unknown = set(spec) - CAMPAIGN_FIELDS - {"slug", "dimensions", "models", "prompts"}
    if unknown:
        raise ImportFailed([f"unknown campaign fields: {', '.join(sorted(unknown))}"])
    rows, errors = [], []
    for index, record in enumerate(spec.get("prompts") or [], start=1):
        try:
            rows.append(_row_from_record(index, record))
        except ValueError as error:
            errors.append(f"prompt {index}: {error}")
    if errors:
        raise ImportFailed(errors)
    with transaction.atomic():
        campaign, _ = Campaign.objects.update_or_create(
            slug=spec["slug"], defaults={k: v for k, v in spec.items() if k in CAMPAIGN_FIELDS}
        )
        campaign.full_clean()
        for model_spec in spec.get("models") or []:
            extra = set(model_spec) - MODEL_FIELDS - {"name"}
            if extra:
                raise ImportFailed([f"model {model_spec.get('name')!r}: unknown fields {', '.join(sorted(extra))}"])
            entry, _ = ModelEntry.objects.get_or_create(
                name=model_spec["name"], defaults={k: v for k, v in model_spec.items() if k in MODEL_FIELDS}
            )
            entry.full_clean()
            campaign.contenders.add(entry)
        for order, dim in enumerate(spec.get("dimensions") or []):
            Dimension.objects.update_or_create(
                campaign=campaign,
                key=dim["key"],
                defaults={
                    "label": dim.get("label", dim["key"]),
                    "help_text": dim.get("help_text", ""),
                    "scale_min": dim.get("scale_min", 1),
                    "scale_max": dim.get("scale_max", 5),
                    "order": order,
                },
            )
        summary = import_prompts(campaign, rows) if rows else ImportSummary()
    return campaign, summary
