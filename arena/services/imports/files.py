"""Reading an uploaded file in one of the import formats, chosen by name or detected."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from arena.services.imports.plain import jsonl_rows, parse_csv, parse_jsonl
from arena.services.imports.preferences import (
    DEFAULT_CHOSEN_MODEL,
    DEFAULT_REJECTED_MODEL,
    TrlOptions,
    parse_battles,
    parse_trl,
)
from arena.services.imports.rows import ImportFailed, PromptRow

FORMATS = {
    "auto": "Detect: .csv is CSV; otherwise JSON lines, recognised by the first record's fields",
    "jsonl": "Prompts, JSON lines (external_id, prompt or messages, category, language, responses)",
    "csv": "Prompts, CSV (external_id, prompt or messages, category, language, model, response)",
    "trl": "Preference pairs, TRL JSON lines (prompt, chosen, rejected)",
    "battles": "Battles, JSON lines (question_id, model_a, model_b, conversation_a, conversation_b)",
}
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson", ".json")


@dataclass(frozen=True)
class ImportOptions:
    """How to read a file and what to do with the models it names."""

    format: str = "auto"
    chosen_model: str = DEFAULT_CHOSEN_MODEL  # TRL records without "chosen_model"
    rejected_model: str = DEFAULT_REJECTED_MODEL
    add_models: bool = False  # add models the file names to the campaign (created if new)


def detect_format(name: str, text: str) -> str:
    """The format of a file given as "auto": by extension, then by the first JSON record's fields."""
    lowered = name.lower()
    if lowered.endswith(".csv"):
        return "csv"
    if not lowered.endswith(JSON_LINES_SUFFIXES):
        raise ImportFailed([f"{name}: unknown file type; use .jsonl or .csv, or choose the format"])
    for raw in text.split("\n"):
        if raw.strip():
            try:
                first = json.loads(raw)
            except json.JSONDecodeError:
                return "jsonl"  # the parser reports the line
            if isinstance(first, dict):
                if "chosen" in first and "rejected" in first:
                    return "trl"
                if "conversation_a" in first or "model_a" in first:
                    return "battles"
            return "jsonl"
    return "jsonl"


def parse_prompt_file(name: str, data: bytes, options: ImportOptions | None = None) -> list[PromptRow]:
    """Parse a prompt file; raise ImportFailed listing every problem by line."""
    rows, errors = read_prompt_file(name, data, options)
    if errors:
        raise ImportFailed(errors)
    return rows


def read_prompt_file(name: str, data: bytes, options: ImportOptions | None = None) -> tuple[list[PromptRow], list[str]]:
    """The rows of every valid record and a "line N: ..." error for each invalid one (a file-wide
    problem, such as bad encoding, is raised as ImportFailed at once)."""
    prompt_file = open_prompt_file(name, data, options)
    rows, errors = _parse(prompt_file.fmt, prompt_file.text, prompt_file.options)
    if not rows and not errors:
        errors.append("the file holds no prompt")
    return rows, errors


def open_prompt_file(name: str, data: bytes, options: ImportOptions | None = None) -> PromptFile:
    """The file decoded, with its format (ImportFailed at once for a file-wide problem)."""
    options = options or ImportOptions()
    if options.format not in FORMATS:
        raise ImportFailed([f"unknown format {options.format!r}; use one of {', '.join(FORMATS)}"])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ImportFailed([f"the file is not UTF-8 text (byte {error.start})"]) from None
    fmt = detect_format(name, text) if options.format == "auto" else options.format
    return PromptFile(fmt, text, options)


def _parse(fmt: str, text: str, options: ImportOptions) -> tuple[list[PromptRow], list[str]]:
    if fmt == "csv":
        return parse_csv(text)
    if fmt == "jsonl":
        return parse_jsonl(text)
    if fmt == "trl":
        return parse_trl(text, TrlOptions(options.chosen_model, options.rejected_model))
    return parse_battles(text)


_NO_MESSAGES: list = []  # shared by checked rows, never changed


def checked_row(row: PromptRow) -> PromptRow:
    """What check_rows needs of a row: its line, external_id and model names (not the texts)."""
    names = dict.fromkeys(map(sys.intern, row.responses), "")
    return PromptRow(row.line, row.external_id, _NO_MESSAGES, responses=names)


@dataclass
class PromptFile:
    """A decoded file in a known format, read twice: ``check`` for the errors, ``rows`` to write it.

    Arena's JSONL is never held as rows: ``check`` keeps of each row only what the checks against
    the campaign need (line, external_id, model names), and ``rows`` reads the file again, one row at
    a time, for a writer that writes in batches. The other formats merge records that share an id
    (a prompt's answers may be on any line), so they are parsed once and their rows kept.
    """

    fmt: str
    text: str
    options: ImportOptions
    _rows: list[PromptRow] | None = None

    @property
    def streams(self) -> bool:
        """Whether the file is read one row at a time (Arena's JSONL), rather than parsed whole."""
        return self.fmt == "jsonl"

    def items(self) -> Iterator[PromptRow | str]:
        """Each row, or an error as "line N: ...", in file order (a streaming file only)."""
        return jsonl_rows(self.text)

    def check(self) -> tuple[list[PromptRow], list[str]]:
        """Rows for check_rows (only line, external_id and model names where the file streams) and the errors."""
        if self.streams:
            rows, errors = [], []
            for item in jsonl_rows(self.text):
                if isinstance(item, str):
                    errors.append(item)
                else:
                    rows.append(checked_row(item))
        else:
            rows, errors = _parse(self.fmt, self.text, self.options)
            self._rows = rows
            self.text = ""  # the rows hold what is written: the text is no longer needed
        if not rows and not errors:
            errors.append("the file holds no prompt")
        return rows, errors

    def rows(self) -> Iterator[PromptRow]:
        """The whole rows, in file order, once ``check`` found no error."""
        if self._rows is not None:
            yield from self._rows
            return
        for item in jsonl_rows(self.text):
            if isinstance(item, PromptRow):
                yield item
