"""Arena's own prompt files: JSONL (one prompt per line) and CSV (one prompt, or prompt and model, per row)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any

from arena.services.imports.rows import (
    MAX_TEXT,
    PromptRow,
    check_storable,
    check_storable_text,
    clean_messages,
    label_field,
    text_field,
)

LIST_HINT = "; one object per line (a JSON list converts with: jq -c '.[]' file.json)"


def json_lines(text: str) -> Iterator[tuple[int, Any]]:
    """(line number, decoded value) for each non-blank line; a line that is not JSON raises ValueError.

    Lines end at "\\n" only: U+2028 and other Unicode line breaks may appear raw inside JSON strings.
    """
    start, number, end = 0, 0, len(text)
    while start < end:  # line by line, without a list of every line (the file may be large)
        stop = text.find("\n", start)
        stop = end if stop < 0 else stop
        raw, start, number = text[start:stop], stop + 1, number + 1
        if not raw.strip():
            continue
        try:
            yield number, json.loads(raw)
        except json.JSONDecodeError as error:
            yield number, ValueError(f"not valid JSON ({error.msg})")


def text_lines(text: str) -> Iterator[str]:
    """The lines of ``text``, each with its "\\n", as io.StringIO reads them (which would copy the text
    at 4 bytes a character: 100 MB for a 25 MB file)."""
    start, end = 0, len(text)
    while start < end:
        stop = text.find("\n", start)
        stop = end if stop < 0 else stop + 1
        yield text[start:stop]
        start = stop


def expect_object(value: Any) -> dict:
    if isinstance(value, ValueError):
        raise value
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object" + (LIST_HINT if isinstance(value, list) else ""))
    return value


def row_from_record(line: int, record: Any) -> PromptRow:
    """A prompt line: {"external_id", "prompt" | "messages", "category", "language", "responses": {model: text}}."""
    record = expect_object(record)
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
        external_id=text_field(record.get("external_id", record.get("id")), "external_id", 200),
        messages=messages,
        category=label_field(record.get("category"), "category", 64),
        language=label_field(record.get("language"), "language", 16),
        responses=dict(responses),
    )
    check_storable(row)
    return row


def parse_jsonl(text: str) -> tuple[list[PromptRow], list[str]]:
    rows: list[PromptRow] = []
    errors: list[str] = []
    for item in jsonl_rows(text):
        (errors if isinstance(item, str) else rows).append(item)
    return rows, errors


def jsonl_rows(text: str) -> Iterator[PromptRow | str]:
    """Each line's row, or its error as "line N: ...", in file order (one line at a time: a large file
    is never held as rows, see arena.services.imports.files.PromptFile)."""
    seen: dict[str, int] = {}
    for number, value in json_lines(text):
        try:
            row = row_from_record(number, value)
        except ValueError as error:
            yield f"line {number}: {error}"
            continue
        if row.external_id and row.external_id in seen:
            yield f"line {number}: external_id {row.external_id!r} also on line {seen[row.external_id]}"
            continue
        seen[row.external_id] = number
        yield row


def parse_csv(text: str) -> tuple[list[PromptRow], list[str]]:
    """Strict CSV: a quoted field must close right before a comma or the end of its line. The lenient
    reading took what follows a stray quote into the field, and an unclosed quote took every row
    after it into one prompt; now the row with the broken quoting is named and nothing is imported."""
    reader = csv.DictReader(text_lines(text), strict=True)
    try:
        columns = set(reader.fieldnames or [])
        return _parse_csv_rows(reader, columns)
    except _BrokenCsv as broken:  # the rest of the file cannot be read reliably
        return [], [str(broken)]
    except csv.Error as error:  # the header itself
        return [], [_broken_csv(1, error)]


class _BrokenCsv(Exception):
    pass


def _broken_csv(line: int, error: csv.Error) -> str:
    return (
        f"line {line}: not valid CSV ({error}); check the quotes of the row starting here: a quoted field ends "
        'with a quote right before a comma or the line\'s end, and a quote inside it is doubled ("")'
    )


def _csv_records(reader: csv.DictReader) -> Iterator[dict]:
    """The records; _BrokenCsv names the line where a record that cannot be read starts."""
    while True:
        start = reader.line_num + 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise _BrokenCsv(_broken_csv(start, error)) from None
        yield record


def _parse_csv_rows(reader: csv.DictReader, columns: set[str]) -> tuple[list[PromptRow], list[str]]:
    if not columns & {"prompt", "messages"}:
        return [], ['line 1: the header needs a "prompt" or "messages" column']
    rows: dict[str, PromptRow] = {}
    ordered: list[PromptRow] = []
    errors: list[str] = []
    for record in _csv_records(reader):
        number = reader.line_num
        try:
            if None in record:
                raise ValueError("more fields than the header has")
            data: dict[str, Any] = {k: v for k, v in record.items() if k in {"external_id", "category", "language"}}
            if record.get("messages"):
                try:
                    data["messages"] = json.loads(record["messages"])
                except json.JSONDecodeError as error:
                    raise ValueError(f"messages is not valid JSON ({error.msg})") from None
            else:
                data["prompt"] = record.get("prompt") or ""
            model, answer = (record.get("model") or "").strip(), record.get("response") or ""
            if model and not answer.strip():
                raise ValueError(f"the response of {model!r} is empty")
            if len(answer) > MAX_TEXT:
                raise ValueError(f"the response of {model!r} is longer than {MAX_TEXT} characters")
            row = row_from_record(number, data)
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
                check_storable_text(model)
                check_storable_text(answer)
                row.responses[model] = answer
        except ValueError as error:
            errors.append(f"line {number}: {error}")
    return ordered, errors
