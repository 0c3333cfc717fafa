"""Reading an uploaded file in one of the import formats, chosen by name or detected."""

from __future__ import annotations

import json
from dataclasses import dataclass

from arena.services.imports.plain import parse_csv, parse_jsonl
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
    options = options or ImportOptions()
    if options.format not in FORMATS:
        raise ImportFailed([f"unknown format {options.format!r}; use one of {', '.join(FORMATS)}"])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ImportFailed([f"the file is not UTF-8 text (byte {error.start})"]) from None
    fmt = detect_format(name, text) if options.format == "auto" else options.format
    if fmt == "csv":
        rows, errors = parse_csv(text)
    elif fmt == "jsonl":
        rows, errors = parse_jsonl(text)
    elif fmt == "trl":
        rows, errors = parse_trl(text, TrlOptions(options.chosen_model, options.rejected_model))
    else:
        rows, errors = parse_battles(text)
    if not rows and not errors:
        errors.append("the file holds no prompt")
    return rows, errors
