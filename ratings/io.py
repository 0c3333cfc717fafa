"""Reading battle files: CSV, JSON lines (our export), and the public Chatbot Arena JSON list.

All three carry ``model_a``, ``model_b`` and ``winner`` (``model_a`` / ``model_b`` / ``tie`` /
``tie (bothbad)``); other fields are ignored. Malformed input raises `InputError` with the file and
line number, and nothing is returned half-read.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .counts import _OUTCOME_NAMES, Outcome, PairCounts

__all__ = ["FORMATS", "Battles", "InputError", "detect_format", "read_battles"]

FORMATS = ("battles-jsonl", "fastchat-json", "csv")
_EXTENSIONS = {".jsonl": "battles-jsonl", ".ndjson": "battles-jsonl", ".json": "fastchat-json", ".csv": "csv"}


class InputError(ValueError):
    """Malformed input, located by file and line."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        self.message, self.path, self.line = message, path, line
        where = ":".join(str(p) for p in (path, line) if p is not None)
        super().__init__(f"{where}: {message}" if where else message)


@dataclass(frozen=True)
class Battles:
    """Battles read from a file, in file order."""

    model_a: list[str]
    model_b: list[str]
    outcome: np.ndarray

    def __len__(self) -> int:
        return len(self.model_a)

    def counts(self) -> PairCounts:
        return PairCounts.from_battles(self.model_a, self.model_b, self.outcome)


def detect_format(path: str | Path) -> str:
    """Format from the file extension (.csv, .jsonl/.ndjson, .json)."""
    fmt = _EXTENSIONS.get(Path(path).suffix.lower())
    if fmt is None:
        raise InputError(f"cannot tell the format from the extension; pass one of {', '.join(FORMATS)}", path=str(path))
    return fmt


def read_battles(path: str | Path, format: str | None = None, *, anony_only: bool = False) -> Battles:
    """Read a battle file. ``anony_only`` skips records whose ``anony`` field is false."""
    fmt = format or detect_format(path)
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}", path=str(path))
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror or exc}", path=str(path)) from None
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", path=str(path)) from None
    records = {"csv": _csv_records, "battles-jsonl": _jsonl_records, "fastchat-json": _json_list_records}[fmt]
    a: list[str] = []
    b: list[str] = []
    out: list[int] = []
    current = None  # line of the record being read, for errors raised while checking it
    try:
        for line, record in records(text):
            current = line
            parsed = _battle(record, anony_only)
            if parsed is not None:
                a.append(parsed[0])
                b.append(parsed[1])
                out.append(parsed[2])
    except InputError as exc:
        raise InputError(exc.message, path=str(path), line=exc.line if exc.line is not None else current) from None
    if not a:
        raise InputError("no battles found", path=str(path))
    return Battles(a, b, np.array(out, dtype=np.int8))


def _battle(record: Any, anony_only: bool) -> tuple[str, str, int] | None:
    if not isinstance(record, dict):
        raise InputError(f"expected an object with model_a, model_b and winner, got {type(record).__name__}")
    if anony_only and record.get("anony", True) in (False, "false", "False", "0", 0):
        return None
    for key in ("model_a", "model_b", "winner"):
        value = record.get(key)
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"missing or empty {key!r}")
    a, b, winner = record["model_a"].strip(), record["model_b"].strip(), record["winner"]
    code = _OUTCOME_NAMES.get(winner.strip().lower())
    if code is None or code == Outcome.SKIP:
        raise InputError(f"invalid winner {winner!r} (expected model_a, model_b, tie or 'tie (bothbad)')")
    if a == b:
        raise InputError(f"model {a!r} battles itself")
    return a, b, int(code)


def _csv_records(text: str) -> Iterator[tuple[int, Any]]:
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in ("model_a", "model_b", "winner") if c not in (reader.fieldnames or [])]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)} in the header", line=1)
    for record in reader:
        if None in record:
            raise InputError("more fields than the header", line=reader.line_num)
        yield reader.line_num, record


def _jsonl_records(text: str) -> Iterator[tuple[int, Any]]:
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            yield number, json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON: {exc.msg} (column {exc.colno})", line=number) from None


def _json_list_records(text: str) -> Iterator[tuple[int, Any]]:
    """Decode a JSON list element by element, to report the line of a bad record."""
    decoder = json.JSONDecoder()
    pos, line = 0, 1

    def skip(i: int) -> int:
        while i < len(text) and text[i] in " \t\r\n":
            i += 1
        return i

    def line_at(i: int) -> int:
        nonlocal pos, line
        line += text.count("\n", pos, i)
        pos = i
        return line

    i = skip(0)
    if i >= len(text) or text[i] != "[":
        raise InputError("expected a JSON list of battle records", line=line_at(i))
    i = skip(i + 1)
    if i < len(text) and text[i] == "]":
        return
    while True:
        try:
            record, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON: {exc.msg}", line=exc.lineno) from None
        yield line_at(i), record
        i = skip(end)
        if i < len(text) and text[i] == ",":
            i = skip(i + 1)
        elif i < len(text) and text[i] == "]":
            if skip(i + 1) != len(text):
                raise InputError("unexpected data after the list", line=line_at(skip(i + 1)))
            return
        else:
            raise InputError("expected ',' or ']' after a record", line=line_at(min(i, len(text))))
