"""Writing parsed prompt rows into a campaign: all or nothing, idempotent, in bulk, batch by batch.

Prompts are matched by (campaign, external_id) and responses by (prompt, model). Only what changed is
written: rows are compared with the stored prompts, and answers with a digest of the stored
responses (computed in SQL), so re-importing the same file writes nothing and renders nothing. New
and changed answers are rendered to sanitised HTML (the Response's cached ``html``), which is most of
the cost of a large first import.

Rows are written in batches of BATCH prompts, as a pipeline: the database writes one batch's prompts
(and the previous batch's answers and items) while a thread renders the previous batch's answers, and
the rows may come from a file read as they are written (``checked`` holds what the checks need), so
memory holds about two batches whatever the size of the file. The checks run before anything is
written, and everything is one transaction.

On PostgreSQL the rows go through COPY, and upserts use ``INSERT ... ON CONFLICT`` from temporary
tables (an order of magnitude faster than ORM bulk inserts, and safe against a concurrent import of
the same prompts); foreign keys are checked as each statement ends rather than all at commit, so that
this work also overlaps the rendering. Other databases (the embedded SQLite) run one ``executemany``
per statement (an INSERT of the new prompts, an UPDATE of the changed ones, an upsert of the
answers), without model instances. Items, the pairs that voters are handed out, are created for every
prompt whose answers were written, with `arena.services.items.create_items`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice

from django.db import IntegrityError, connection, transaction
from django.db.models.functions import MD5
from django.utils import timezone

from arena.core.hot_sql import columns, sql
from arena.model_validation import model_name_problem
from arena.models import Campaign, ModelEntry, Prompt, Response
from arena.rendering import render_markdown
from arena.services.imports.rows import ImportFailed, ImportSummary, PromptRow, model_name
from arena.services.items import create_items

CHUNK = 5000
CONCURRENT_CHANGE = (
    "the campaign's prompts or answers changed while the file was imported (another import at the same time?); "
    "nothing was imported: import the file again"
)
BATCH = 5000  # prompts per batch: read, written, rendered and copied together


@dataclass
class _Answer:
    prompt_id: int
    model_id: int
    content: str
    html: str = ""


def import_prompts(
    campaign: Campaign,
    rows: Iterable[PromptRow],
    *,
    add_models: bool = False,
    use_copy: bool | None = None,
    checked: Sequence[PromptRow] | None = None,
    verify: Callable[[], list[str]] | None = None,
) -> ImportSummary:
    """Write parsed prompts and responses into a campaign, all or nothing.

    ``add_models`` adds the models the rows name to the campaign (creating static-backend entries for
    unknown names); otherwise an unknown model is an error. ``use_copy`` forces (or avoids) the
    PostgreSQL COPY path; by default it is used on PostgreSQL. ``rows`` may be read once, as it is
    written: either ``checked`` gives the same rows, checked before anything is written
    (``PromptFile.check``: only their lines, ids and model names), or ``verify``, called once every
    row was written, gives the errors found while they were read (then nothing is kept; the rows
    must stop before one that cannot be written). Otherwise ``rows`` is a list and is checked itself.
    """
    if use_copy is None:
        use_copy = connection.vendor == "postgresql"
    if checked is None and verify is None:
        checked = rows = list(rows)
    models_by_name = {m.name: m.id for m in campaign.contenders.all()}
    errors = [] if checked is None else check_rows(checked, models_by_name, add_models)
    if errors:
        raise ImportFailed(errors)
    summary = ImportSummary()
    try:
        with transaction.atomic():
            if use_copy:
                # Foreign keys are checked as each statement ends, while the next batch is rendered,
                # instead of all at once at commit.
                _set_constraints("IMMEDIATE")
            if add_models:
                summary.models_added = _add_models(campaign, checked, models_by_name)
            _write(campaign, rows, models_by_name, summary, use_copy)
            if verify is not None and (errors := verify()):
                raise ImportFailed(errors)  # rolls back what was written
    except IntegrityError as error:
        # Only when another import (or an edit) wrote the same prompts or answers since they were read.
        raise ImportFailed([CONCURRENT_CHANGE]) from error
    finally:
        if use_copy and connection.in_atomic_block and not connection.needs_rollback:
            _set_constraints("DEFERRED")  # Django's foreign keys are all DEFERRABLE INITIALLY DEFERRED
    return summary


def _set_constraints(mode: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"SET CONSTRAINTS ALL {mode}")


def _write(
    campaign: Campaign,
    rows: Iterable[PromptRow],
    models_by_name: dict[str, int],
    summary: ImportSummary,
    use_copy: bool,
) -> None:
    """Batch by batch, as a pipeline: while the database writes one batch's prompts (and the previous
    batch's answers and items), a thread renders the answers of the batch before. Memory holds about
    two batches, whatever the size of the file."""
    render = _renderer()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-render") as pool:
        pending: Future | None = None
        try:
            for batch in _batches(rows, BATCH):
                answers = _write_prompts(campaign, batch, models_by_name, summary, use_copy)
                rendering = pool.submit(_render_answers, answers, render)
                if pending is not None:
                    _write_answers(campaign, pending.result(), use_copy)
                pending = rendering
            if pending is not None:
                _write_answers(campaign, pending.result(), use_copy)
        finally:
            if pending is not None:
                pending.cancel()


def _batches(rows: Iterable[PromptRow], size: int) -> Iterator[list[PromptRow]]:
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch


def check_rows(rows: Sequence[PromptRow], models_by_name: dict[str, int], add_models: bool) -> list[str]:
    """What stops these rows from being written into a campaign with these models, as "line N: ..."."""
    errors = [
        f"line {row.line}: responses need an external_id so that re-imports can match them"
        for row in rows
        if row.responses and not row.external_id
    ]
    seen: dict[str, int] = {}
    for row in rows:
        if row.external_id in seen:
            errors.append(f"line {row.line}: external_id {row.external_id!r} also on line {seen[row.external_id]}")
        elif row.external_id:
            seen[row.external_id] = row.line
    unknown: dict[str, list[int]] = {}
    for row in rows:
        for name in row.responses:
            if name not in models_by_name:
                unknown.setdefault(name, []).append(row.line)
    existing: list[str] | None = None
    for name, lines in unknown.items():
        more = f" (and {len(lines) - 1} more lines)" if len(lines) > 1 else ""
        if not add_models:
            errors.append(
                f"line {lines[0]}: model {name!r} is not in this campaign{more}; add it to the campaign "
                "or import with the option to add models"
            )
            continue
        try:
            if model_name(name, "a model name") != name:
                raise ValueError(f"model name {name!r} starts or ends with spaces")
        except ValueError as error:
            errors.append(f"line {lines[0]}: {error}{more}")
            continue
        if existing is None:
            existing = list(ModelEntry.objects.values_list("name", flat=True))
        if name not in existing:  # a new entry (an existing one of this exact name is reused)
            problem = model_name_problem(name, [*existing, *unknown])
            if problem:
                errors.append(f"line {lines[0]}: model name {name!r}: {problem}{more}")
    return errors


def _add_models(campaign: Campaign, rows: Sequence[PromptRow], models_by_name: dict[str, int]) -> list[str]:
    names = sorted({name for row in rows for name in row.responses} - set(models_by_name))
    if not names:
        return []
    entries = {e.name: e for e in ModelEntry.objects.filter(name__in=names)}
    for name in names:
        if name not in entries:
            entries[name] = ModelEntry.objects.create(name=name, backend="static")
    campaign.contenders.add(*entries.values())
    models_by_name.update({name: entry.id for name, entry in entries.items()})
    return names


# --- prompts -------------------------------------------------------------------------------------------


def _chunks(values: Sequence, size: int = CHUNK) -> Iterator[Sequence]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _fields(row: PromptRow) -> tuple:
    return row.messages, row.category, row.language


# A campaign's prompts by external id, the ids given as one array (PostgreSQL) or one JSON list (SQLite):
# one parameter instead of thousands for the ORM to prepare. NOT (external_id = '') lets the partial
# unique index serve the lookup. {fields} is filled in per statement.
_PROMPT_COLUMNS = {
    name: columns(Prompt, name) for name in ("id", "campaign", "external_id", "messages", "category", "language")
}
_KEYED_PROMPTS = {
    vendor: sql(
        f"SELECT {{external_id}}, {{fields}} FROM {{prompt}} WHERE {{campaign}} = %s AND {keys}",
        Prompt,
        **_PROMPT_COLUMNS,
    )
    for vendor, keys in (
        ("postgresql", "{external_id} = ANY(%s) AND NOT ({external_id} = '')"),
        ("sqlite", "{external_id} IN (SELECT value FROM json_each(%s)) AND NOT ({external_id} = '')"),
    )
}


def _keyed_prompts(campaign: Campaign, keys: list[str], *fields: str) -> list[tuple]:
    """(external_id, *fields) of the campaign's prompts with these external ids."""
    if not keys:
        return []
    statement = _KEYED_PROMPTS[connection.vendor].format(fields=", ".join(_PROMPT_COLUMNS[f] for f in fields))
    with connection.cursor() as cursor:
        cursor.execute(statement, [campaign.id, json.dumps(keys) if connection.vendor == "sqlite" else keys])
        return cursor.fetchall()


def _stored_prompts(campaign: Campaign, rows: Sequence[PromptRow]) -> dict[str, tuple]:
    """The campaign's prompts with the rows' external ids: (id, messages, category, language)."""
    keys = [row.external_id for row in rows if row.external_id]
    found = _keyed_prompts(campaign, keys, "id", "messages", "category", "language")
    return {
        ext: (pk, json.loads(messages) if isinstance(messages, str) else messages, category, language)
        for ext, pk, messages, category, language in found
    }


_PROMPT_INSERT = sql(
    "INSERT INTO {prompt} ({columns}) VALUES (%s, %s, %s, %s, %s, %s)",
    Prompt,
    columns=columns(Prompt, "campaign", "external_id", "messages", "category", "language", "created_at"),
)
_PROMPT_UPDATE = sql(
    "UPDATE {prompt} SET {messages} = %s, {category} = %s, {language} = %s WHERE {id} = %s", Prompt, **_PROMPT_COLUMNS
)


def _upsert_prompts_sql(campaign: Campaign, new: list[PromptRow], changed: list[PromptRow], ids: dict) -> dict:
    """Any database: one executemany per statement (no model instances: they cost more than the SQL)."""
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        if new:
            cursor.executemany(
                _PROMPT_INSERT,
                [(campaign.id, r.external_id, json.dumps(r.messages), r.category, r.language, now) for r in new],
            )
        if changed:
            cursor.executemany(
                _PROMPT_UPDATE, [(json.dumps(r.messages), r.category, r.language, ids[r.external_id]) for r in changed]
            )
    keys = [r.external_id for r in new if r.external_id]
    return dict(_keyed_prompts(campaign, keys, "id"))


def _upsert_prompts_copy(campaign: Campaign, rows: list[PromptRow]) -> dict:
    if not rows:
        return {}
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS pg_temp.arena_import_prompts")
        cursor.execute(
            "CREATE TEMP TABLE arena_import_prompts (line integer, external_id text, messages jsonb, category text, "
            "language text) ON COMMIT DROP"
        )
        with connection.wrap_database_errors, cursor.copy("COPY arena_import_prompts FROM STDIN") as copy:
            for row in rows:
                messages = json.dumps(row.messages, ensure_ascii=False)
                copy.write_row((row.line, row.external_id, messages, row.category, row.language))
        # The conflict target names the partial unique index prompt_external_id_unique, predicate included.
        cursor.execute(
            """
            INSERT INTO arena_prompt (campaign_id, external_id, messages, category, language, created_at)
            SELECT %s, external_id, messages, category, language, %s FROM arena_import_prompts ORDER BY line
            ON CONFLICT (campaign_id, external_id) WHERE NOT (external_id = '') DO UPDATE
            SET messages = EXCLUDED.messages, category = EXCLUDED.category, language = EXCLUDED.language
            RETURNING external_id, id
            """,
            [campaign.id, timezone.now()],
        )
        ids = {ext: pk for ext, pk in cursor.fetchall() if ext}
        cursor.execute("DROP TABLE arena_import_prompts")
    return ids


# --- responses -----------------------------------------------------------------------------------------


def _digest(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def _renderer() -> Callable[[str], str]:
    """render_markdown with a small cache: an answer repeated in the file (a refusal, an error text)
    is rendered once. Bounded, so that a file of long answers does not keep every HTML in memory."""
    return lru_cache(maxsize=4096)(render_markdown)


@dataclass
class _Answers:
    """One batch's answers to write: ``fresh`` ones (of prompts this import created) and ``changed`` ones."""

    fresh: list[_Answer]
    changed: list[_Answer]


def _write_prompts(
    campaign: Campaign,
    batch: list[PromptRow],
    models_by_name: dict[str, int],
    summary: ImportSummary,
    use_copy: bool,
) -> _Answers:
    """Write the batch's new and changed prompts; the answers that are new or differ from the stored ones."""
    stored = _stored_prompts(campaign, batch)
    new = [row for row in batch if not row.external_id or row.external_id not in stored]
    changed = [row for row in batch if row.external_id in stored and stored[row.external_id][1:] != _fields(row)]
    summary.prompts_created += len(new)
    summary.prompts_updated += len(changed)
    summary.prompts_unchanged += len(batch) - len(new) - len(changed)
    ids = {ext: values[0] for ext, values in stored.items()}
    if use_copy:
        written = _upsert_prompts_copy(campaign, [*new, *changed])
    else:
        written = _upsert_prompts_sql(campaign, new, changed, ids)
    ids.update(written)
    new_ids = {written[row.external_id] for row in new if row.external_id}
    wanted = [
        _Answer(ids[row.external_id], models_by_name[name], content)
        for row in batch
        for name, content in row.responses.items()
    ]
    digests: dict[tuple[int, int], str] = {}
    for chunk in _chunks(sorted({a.prompt_id for a in wanted} - new_ids)):
        found = (
            Response.objects.filter(prompt_id__in=chunk, status=Response.Status.DONE)
            .annotate(digest=MD5("content"))
            .values_list("prompt_id", "model_id", "digest")
        )
        digests.update(((p, m), digest) for p, m, digest in found)
    fresh = [a for a in wanted if a.prompt_id in new_ids]
    changed_answers = [
        a for a in wanted if a.prompt_id not in new_ids and digests.get((a.prompt_id, a.model_id)) != _digest(a.content)
    ]
    summary.responses_written += len(fresh) + len(changed_answers)
    summary.responses_unchanged += len(wanted) - len(fresh) - len(changed_answers)
    return _Answers(fresh, changed_answers)


def _render_answers(answers: _Answers, render: Callable[[str], str]) -> _Answers:
    """The rendering thread's work: each answer's sanitised HTML."""
    for answer in (*answers.fresh, *answers.changed):
        answer.html = render(answer.content)
    return answers


def _write_answers(campaign: Campaign, answers: _Answers, use_copy: bool) -> None:
    """Write a rendered batch of answers, then the items of their prompts."""
    if use_copy:
        # New prompts' answers go straight into the table (nothing to update).
        _copy_responses(answers.fresh, "arena_response")
        _upsert_responses_copy(answers.changed)
    else:
        _upsert_responses_sql([*answers.fresh, *answers.changed])
    create_items(campaign, {a.prompt_id for a in (*answers.fresh, *answers.changed)})


# Every NOT NULL column gets the model's default (Django applies defaults in Python, not in the table).
_RESPONSE_COLUMNS = (
    "prompt_id, model_id, content, html, status, source, error, params, finish_reason, attempts, cache_key, "
    "created_at, updated_at"
)
_RESPONSE_UPSERT = sql(
    f"""
    INSERT INTO {{response}} ({_RESPONSE_COLUMNS}) VALUES ({", ".join(["%s"] * 13)})
    ON CONFLICT (prompt_id, model_id) DO UPDATE
    SET content = excluded.content, html = excluded.html, status = excluded.status, source = excluded.source,
        error = excluded.error, cache_key = excluded.cache_key, updated_at = excluded.updated_at
    """,
    Response,
)


def _upsert_responses_sql(answers: list[_Answer]) -> None:
    """Any database: one executemany of an upsert (SQLite and PostgreSQL both have ON CONFLICT)."""
    if not answers:
        return
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    done, imported = str(Response.Status.DONE), str(Response.Source.IMPORTED)
    with connection.cursor() as cursor:
        cursor.executemany(
            _RESPONSE_UPSERT,
            [
                (a.prompt_id, a.model_id, a.content, a.html, done, imported, "", "{}", "", 0, "", now, now)
                for a in answers
            ],
        )


def _copy_responses(answers: Iterable[_Answer], table: str) -> None:
    """COPY imported, done responses into ``table`` (arena_response or the temporary upsert table)."""
    now = timezone.now()
    done, imported = str(Response.Status.DONE), str(Response.Source.IMPORTED)
    # COPY bypasses Django's cursor wrapper: wrap_database_errors turns psycopg errors into Django's.
    with (
        connection.cursor() as cursor,
        connection.wrap_database_errors,
        cursor.copy(f"COPY {table} ({_RESPONSE_COLUMNS}) FROM STDIN") as copy,
    ):
        for a in answers:
            copy.write_row((a.prompt_id, a.model_id, a.content, a.html, done, imported, "", "{}", "", 0, "", now, now))


def _upsert_responses_copy(answers: list[_Answer]) -> None:
    if not answers:
        return
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS pg_temp.arena_import_responses")
        cursor.execute(
            "CREATE TEMP TABLE arena_import_responses ON COMMIT DROP AS "
            f"SELECT {_RESPONSE_COLUMNS} FROM arena_response WITH NO DATA"
        )
        _copy_responses(answers, "arena_import_responses")
        cursor.execute(
            f"""
            INSERT INTO arena_response ({_RESPONSE_COLUMNS})
            SELECT {_RESPONSE_COLUMNS} FROM arena_import_responses ORDER BY prompt_id, model_id
            ON CONFLICT (prompt_id, model_id) DO UPDATE
            SET content = EXCLUDED.content, html = EXCLUDED.html, status = EXCLUDED.status,
                source = EXCLUDED.source, error = EXCLUDED.error, cache_key = EXCLUDED.cache_key,
                updated_at = EXCLUDED.updated_at
            """
        )
        cursor.execute("DROP TABLE arena_import_responses")
