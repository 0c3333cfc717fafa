"""Reading battle files: CSV, JSON lines (our export), and the public Chatbot Arena JSON list.

All three carry ``model_a``, ``model_b`` and ``winner`` (``model_a`` / ``model_b`` / ``tie`` /
``tie (bothbad)``); other fields are ignored. Malformed input raises `InputError` with the file and
line number, and nothing is returned half-read.

Two paths read the same files to the same battles: the fast one (`ratings.columnar`: pyarrow
for CSV, msgspec for JSON, no Python per row) reads every regular file; a file it refuses is read
again row by row here, which
says which line is wrong. Lines end at ``\n`` (or ``\r\n``) only: U+2028, U+0085 and the other
characters ``str.splitlines`` would split at are text inside a record.
"""

from __future__ import annotations

import csv
import io
import json
import mmap
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .columnar import read_columns, valid_utf8
from .counts import _OUTCOME_NAMES, Outcome, PairCounts

__all__ = ["FORMATS", "Battles", "InputError", "detect_format", "read_battles"]

FORMATS = ("battles-jsonl", "fastchat-json", "csv")
_EXTENSIONS = {".jsonl": "battles-jsonl", ".ndjson": "battles-jsonl", ".json": "fastchat-json", ".csv": "csv"}
_BOM = b"\xef\xbb\xbf"


class InputError(ValueError):
    """Malformed input, located by file and line."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        self.message, self.path, self.line = message, path, line
        where = ":".join(str(p) for p in (path, line) if p is not None)
        super().__init__(f"{where}: {message}" if where else message)


@dataclass(frozen=True, eq=False)
class Battles:
    """Battles read from a file, in file order: ``a[i]`` and ``b[i]`` index ``models``."""

    models: tuple[str, ...]
    a: np.ndarray
    b: np.ndarray
    outcome: np.ndarray

    def __len__(self) -> int:
        return len(self.outcome)

    @property
    def model_a(self) -> list[str]:
        return [self.models[i] for i in self.a.tolist()]

    @property
    def model_b(self) -> list[str]:
        return [self.models[i] for i in self.b.tolist()]

    def counts(self) -> PairCounts:
        return PairCounts.from_battles(self.a, self.b, self.outcome, models=self.models)

    @classmethod
    def from_names(cls, model_a: list[str], model_b: list[str], outcome: np.ndarray) -> Battles:
        index = {name: i for i, name in enumerate(dict.fromkeys(model_a + model_b))}
        a = np.fromiter(map(index.__getitem__, model_a), dtype=np.int32, count=len(model_a))
        b = np.fromiter(map(index.__getitem__, model_b), dtype=np.int32, count=len(model_b))
        return cls(tuple(index), a, b, outcome)


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
        data = _mapped(path)
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror or exc}", path=str(path)) from None
    if fmt == "csv" and not valid_utf8(data):  # JSON is checked piece by piece by the fast path
        raise InputError("not UTF-8 text", path=str(path))
    columns = read_columns(data, fmt, anony_only)
    if columns is not None:
        if not len(columns[3]):  # every record skipped by --anony-only
            raise InputError("no battles found", path=str(path))
        return Battles(*columns)
    if not valid_utf8(data):
        raise InputError("not UTF-8 text", path=str(path))
    return _read_rows(path, str(data, "utf-8"), fmt, anony_only)


def _mapped(path: str | Path) -> memoryview:
    """The file's bytes, less a UTF-8 BOM, memory-mapped (no copy; the fast path hands read pages back)."""
    if not os.path.isfile(path):  # a directory maps as an empty file; open() says what is wrong
        open(path, "rb").close()
    with open(path, "rb") as file:
        if not os.fstat(file.fileno()).st_size:
            return memoryview(b"")
        data = memoryview(mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ))
    return data[len(_BOM) :] if bytes(data[: len(_BOM)]) == _BOM else data


def _read_rows(path: str | Path, text: str, fmt: str, anony_only: bool) -> Battles:
    """The row-by-row reader: slower, and it locates the first bad record."""
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
    return Battles.from_names(a, b, np.array(out, dtype=np.int8))


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
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in ("model_a", "model_b", "winner") if c not in (reader.fieldnames or [])]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)} in the header", line=1)
    for record in reader:
        if None in record:
            raise InputError("more fields than the header", line=reader.line_num)
        yield reader.line_num, record


_JSON_SPACE = " \t\r\n"


def _jsonl_records(text: str) -> Iterator[tuple[int, Any]]:
    decode = json.JSONDecoder(strict=False).decode  # a raw control character in a string is text
    for number, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip(_JSON_SPACE):
            continue
        try:
            yield number, decode(raw)
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON: {exc.msg} (column {exc.colno})", line=number) from None


def _json_list_records(text: str) -> Iterator[tuple[int, Any]]:
    """Decode a JSON list element by element, to report the line of a bad record."""
    decoder = json.JSONDecoder(strict=False)
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
