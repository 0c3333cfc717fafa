"""The fast path of `ratings.io`: battle files decoded in C, checked once per distinct value.

CSV is parsed by pyarrow into columns; JSON lines and JSON lists by msgspec into small records of the
three (or four, with ``anony``) fields read, skipping every other field without building it (2.5x
pyarrow's JSON reader on the same files). Model names and outcomes are then checked and mapped once per
*distinct* value, never per row.

Every function here returns None when the file is anything but regular (a parse error, a missing or
non-string field, an unknown outcome, a model battling itself; in JSON lines a blank line, a line not
starting with ``{`` or two records on one line): the caller then reads it again row by row, which finds
the first bad record and says on which line it is. Both paths accept the same files and return the same
battles (tests/ratings/test_ratings_io.py).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from operator import attrgetter
from typing import Any

import msgspec
import numpy as np

from .counts import _OUTCOME_NAMES, Outcome

__all__ = ["Columns", "read_columns", "valid_utf8"]

_FIELDS = ("model_a", "model_b", "winner")
_ANONY_FALSE = (False, "false", "False", "0", 0)  # anony values that drop a record (as the row reader)

Columns = tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray]  # models, a index, b index, outcome


class _Battle(msgspec.Struct, gc=False):
    model_a: str
    model_b: str
    winner: str


class _AnonyBattle(_Battle, gc=False):
    anony: bool | int | float | str | None = True


_DECODERS = {
    (fmt, anony): msgspec.json.Decoder(list[cls] if fmt == "fastchat-json" else cls)
    for fmt in ("battles-jsonl", "fastchat-json")
    for anony, cls in ((False, _Battle), (True, _AnonyBattle))
}


def valid_utf8(data: memoryview) -> bool:
    """Whether ``data`` is UTF-8, checked by Arrow's validator (about 20x faster than decoding it)."""
    import pyarrow as pa

    offsets = pa.py_buffer(np.array([0, len(data)], dtype=np.int64))
    try:
        pa.LargeStringArray.from_buffers(1, offsets, pa.py_buffer(data)).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def read_columns(data: memoryview, fmt: str, anony_only: bool) -> Columns | None:
    """The battles in a file's bytes (UTF-8, without a BOM), or None when the row reader must look."""
    if fmt == "csv":
        return _csv_columns(data, anony_only)
    try:
        if fmt == "fastchat-json":
            records = _DECODERS[fmt, anony_only].decode(data)
        else:
            records = _DECODERS[fmt, anony_only].decode_lines(data)
            if len(records) != _record_lines(data):
                return None  # a blank line, a line not starting with "{" or two records on one line
    except msgspec.MsgspecError:
        return None
    if anony_only:
        records = [r for r in records if r.anony not in _ANONY_FALSE]
    return _columns(*(list(map(attrgetter(name), records)) for name in _FIELDS))


def _record_lines(data: memoryview, chunk: int = 1 << 24) -> int | None:
    """How many lines the text has when every line starts with ``{`` (a newline at the very end closes the
    last line), else None. With as many records as such lines, each line holds exactly one record."""
    text = np.frombuffer(data, dtype=np.uint8)
    if not len(text) or text[0] != ord("{"):
        return None
    lines = 1
    for start in range(0, len(text), chunk):
        after = np.flatnonzero(text[start : start + chunk] == ord("\n")) + (start + 1)
        after = after[after < len(text)]
        if not np.all(text[after] == ord("{")):
            return None
        lines += len(after)
    return lines


def _csv_columns(data: memoryview, anony_only: bool) -> Columns | None:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    header = next(csv.reader([bytes(data[:65536]).split(b"\n", 1)[0].decode("utf-8", "replace").rstrip("\r")]), [])
    wanted = [*_FIELDS, "anony"] if anony_only and "anony" in header else list(_FIELDS)
    if any(header.count(name) > 1 for name in wanted):
        return None  # a repeated column: the row reader takes its last value, as csv.DictReader does
    try:
        table = pcsv.read_csv(
            pa.BufferReader(pa.py_buffer(data)),
            convert_options=pcsv.ConvertOptions(
                include_columns=wanted,
                column_types={name: pa.string() for name in wanted},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowException, ValueError):
        return None
    if "anony" in wanted:
        dropped = pc.is_in(table.column("anony"), value_set=pa.array([v for v in _ANONY_FALSE if isinstance(v, str)]))
        table = table.filter(pc.invert(dropped))
    return _columns(*(_DictionaryColumn(table.column(name)) for name in _FIELDS))


class _DictionaryColumn:
    """A pyarrow string column as (index of each row's value, distinct values)."""

    def __init__(self, column: Any) -> None:
        array = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
        encoded = array.dictionary_encode()
        self.codes = encoded.indices.to_numpy(zero_copy_only=False)
        self.values: list[str] = encoded.dictionary.to_pylist()


def _encode(values: Sequence[str] | _DictionaryColumn) -> tuple[np.ndarray, list[str]]:
    if isinstance(values, _DictionaryColumn):
        return values.codes, values.values
    distinct = list(dict.fromkeys(values))
    position = {v: i for i, v in enumerate(distinct)}
    return np.fromiter(map(position.__getitem__, values), dtype=np.int32, count=len(values)), distinct


def _columns(model_a: Any, model_b: Any, winner: Any) -> Columns | None:
    """Check and map the three columns (lists of str, or pyarrow dictionary columns)."""
    codes_a, values_a = _encode(model_a)
    codes_b, values_b = _encode(model_b)
    codes_w, values_w = _encode(winner)
    if any(v is None for v in values_a + values_b + values_w):  # a CSV row with fewer fields
        return None
    names_a = [v.strip() for v in values_a]
    names_b = [v.strip() for v in values_b]
    if not all(names_a) or not all(names_b):
        return None
    index = {name: i for i, name in enumerate(dict.fromkeys(names_a + names_b))}
    outcome_of = [_OUTCOME_NAMES.get(v.strip().lower()) for v in values_w]
    if any(code is None or code == Outcome.SKIP for code in outcome_of):
        return None
    a = np.array([index[n] for n in names_a], dtype=np.int32)[codes_a]
    b = np.array([index[n] for n in names_b], dtype=np.int32)[codes_b]
    if np.any(a == b):
        return None
    outcome = np.array(outcome_of, dtype=np.int8)[codes_w]
    return tuple(index), a, b, outcome
