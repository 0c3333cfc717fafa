"""The fast path of `ratings.io`: battle files decoded in C, checked once per distinct value.

CSV is parsed by pyarrow into columns; JSON lines and JSON lists by msgspec into small records of the
three (or four, with ``anony``) fields read, skipping every other field without building it (2.5x
pyarrow's JSON reader on the same files). Model names and outcomes are then checked and mapped once per
*distinct* value, never per row.

JSON is decoded in pieces of about 4 MB (`CHUNK`), cut where a record starts on a new line (JSON lines: at a
newline; a JSON list: at a comma, newline and the indentation of its first record, then ``{``, which a raw
newline, never inside a JSON string, puts between records), and each piece's pages of the memory-mapped file
are handed back to the system once read: memory stays at a piece's records however large the file. A
piece that does not decode as whole records (an odd layout) sends the file to one decode of the whole.

Every function here returns None when the file is anything but regular (a parse error, a missing or
non-string field, an unknown outcome, a model battling itself; in JSON lines a blank line, a line not
starting with ``{`` or two records on one line): the caller then reads it again row by row, which finds
the first bad record and says on which line it is. Both paths accept the same files and return the same
battles (tests/ratings/test_io.py).
"""

from __future__ import annotations

import csv
import mmap
from collections.abc import Callable, Iterator, Sequence
from operator import attrgetter
from typing import Any, Literal, NamedTuple

import msgspec
import numpy as np

from .counts import _OUTCOME_NAMES, Outcome

__all__ = ["Columns", "read_columns", "valid_utf8"]

_FIELDS = ("model_a", "model_b", "winner")
_ANONY_FALSE = (False, "false", "False", "0", 0)  # anony values that drop a record (as the row reader)
CHUNK = 1 << 22  # bytes of JSON decoded at a time: small pieces reuse the memory of the last (fewer page faults)
_WHITESPACE = b" \t\r\n"

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
_LITERAL_LIMIT = 5000  # distinct names (or winner spellings) beyond which fields stay plain strings


class _Decoder:
    """A format's record decoder that learns the names and winner spellings it has seen.

    Once the first piece is read, the three fields are typed as ``Literal`` of the values seen: msgspec
    then returns one shared str object per value instead of a new string per row, so coding the columns
    hashes nothing anew (it costs half as much). A piece holding a value not seen before fails that
    check and is decoded again with plain string fields, and the new values are learned."""

    def __init__(self, fmt: str, anony_only: bool) -> None:
        self.fmt, self.anony_only = fmt, anony_only
        self.plain = _DECODERS[fmt, anony_only]
        self.literal: msgspec.json.Decoder | None = None
        self.seen: tuple[dict[str, None], dict[str, None]] = ({}, {})  # names, winners

    def decode(self, piece: memoryview | bytes) -> list[Any]:
        if self.literal is not None:
            try:
                return self._run(self.literal, piece)
            except msgspec.ValidationError:
                pass  # a new name or spelling (or a bad record: the plain decoder says so)
        return self._run(self.plain, piece)

    def _run(self, decoder: msgspec.json.Decoder, piece: memoryview | bytes) -> list[Any]:
        return decoder.decode(piece) if self.fmt == "fastchat-json" else decoder.decode_lines(piece)

    def learn(self, model_a: _Coded, model_b: _Coded, winner: _Coded) -> None:
        names, winners = self.seen
        size = (len(names), len(winners))
        names.update(dict.fromkeys(model_a.values))
        names.update(dict.fromkeys(model_b.values))
        winners.update(dict.fromkeys(winner.values))
        if (len(names), len(winners)) == size or max(len(names), len(winners)) > _LITERAL_LIMIT:
            return
        name, spelling = Literal[tuple(names)], Literal[tuple(winners)]  # type: ignore[valid-type]
        fields: list[Any] = [("model_a", name), ("model_b", name), ("winner", spelling)]
        if self.anony_only:
            fields.append(("anony", bool | int | float | str | None, True))
        record = msgspec.defstruct("Battle", fields, gc=False)
        self.literal = msgspec.json.Decoder(list[record] if self.fmt == "fastchat-json" else record)


def valid_utf8(data: memoryview) -> bool:
    """Whether ``data`` is UTF-8, checked by Arrow's validator (about 20x faster than decoding it)."""
    import pyarrow as pa

    offsets = pa.py_buffer(np.array([0, len(data)], dtype=np.int64))
    try:
        pa.LargeStringArray.from_buffers(1, offsets, pa.py_buffer(data)).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def read_columns(data: memoryview, fmt: str, anony_only: bool, *, chunk: int = CHUNK) -> Columns | None:
    """The battles in a file's bytes (UTF-8, without a BOM), or None when the row reader must look."""
    if fmt == "csv":
        return _csv_columns(data, anony_only)
    pieces = _json_list_pieces(data, chunk) if fmt == "fastchat-json" else _json_lines_pieces(data, chunk)
    decoder = _Decoder(fmt, anony_only)
    release = _releaser(data)
    coded: list[tuple[_Coded, _Coded, _Coded]] = []
    bracketed = bytearray(max(stop - start for start, stop in pieces) + 2) if len(pieces) > 1 else None
    try:
        for start, stop in pieces:
            piece = data[start:stop]
            if not valid_utf8(piece):
                return None
            if fmt == "fastchat-json":
                records = decoder.decode(_bracket(piece, bracketed) if pieces != [(0, len(data))] else piece)
            else:
                records = decoder.decode(piece)
                if len(records) != _record_lines(piece):
                    return None  # a blank line, a line not starting with "{" or two records on one line
            if anony_only:
                records = [r for r in records if r.anony not in _ANONY_FALSE]
            coded.append(tuple(_encode(list(map(attrgetter(name), records))) for name in _FIELDS))  # type: ignore[misc]
            del records
            decoder.learn(*coded[-1])
            release(stop)
    except msgspec.MsgspecError:
        if fmt == "fastchat-json" and len(pieces) > 1:  # maybe a cut inside a record: decode the list whole
            return read_columns(data, fmt, anony_only, chunk=len(data))
        return None
    if not coded:
        return None
    return _columns(*(_concat([c[k] for c in coded]) for k in range(3)))


def _bracket(piece: memoryview, buffer: bytearray | None) -> memoryview | bytes:
    """``[`` + piece + ``]``, written into ``buffer`` (reused from piece to piece: one copy, no new pages)."""
    if buffer is None:
        return b"[" + piece + b"]"
    end = len(piece) + 1
    buffer[0] = ord("[")
    buffer[1:end] = piece
    buffer[end] = ord("]")
    return memoryview(buffer)[: end + 1]


def _releaser(data: memoryview) -> Callable[[int], None]:
    """A function handing back to the system the pages of ``data[:stop]`` (read, never needed again) when
    ``data`` is a memory-mapped file (`ratings.io` maps files so): they leave this process's resident
    memory, and the kernel's page cache keeps them."""
    mapped = data.obj if isinstance(data, memoryview) else None
    if not isinstance(mapped, mmap.mmap) or not hasattr(mmap, "MADV_DONTNEED"):
        return lambda stop: None
    offset = len(mapped) - len(data)  # `ratings.io` strips a BOM at the start only

    def release(stop: int) -> None:
        end = (offset + stop) // mmap.PAGESIZE * mmap.PAGESIZE
        if end > 0:
            mapped.madvise(mmap.MADV_DONTNEED, 0, end)

    return release


def _json_lines_pieces(data: memoryview, chunk: int) -> list[tuple[int, int]]:
    """Byte ranges of about ``chunk`` bytes, each ending after a newline (the last at the end)."""

    def after_newline(lo: int, hi: int) -> tuple[int, int] | None:
        found = _rfind(data, b"\n", lo, hi)
        return None if found < 0 else (found + 1, found + 1)

    return list(_cut(chunk, after_newline, 0, len(data)))


def _json_list_pieces(data: memoryview, chunk: int) -> list[tuple[int, int]]:
    """Byte ranges of a JSON list's records, between its brackets, cut at the comma that separates two
    records (``,`` + the whitespace before the first record + ``{``); the whole data when it fits in a chunk
    or the list has no newline before its first record (then a comma and a brace could be inside a record)."""
    first = _skip(data, 0, 1)
    last = _skip(data, len(data) - 1, -1)
    if len(data) <= chunk or first >= len(data) or data[first] != ord("[") or last <= first or data[last] != ord("]"):
        return [(0, len(data))]
    opening = _skip(data, first + 1, 1)
    if opening >= last or data[opening] != ord("{") or b"\n" not in bytes(data[first + 1 : opening]):
        return [(0, len(data))]
    separator = b"," + bytes(data[first + 1 : opening]) + b"{"

    def at_separator(lo: int, hi: int) -> tuple[int, int] | None:
        found = _rfind(data, separator, lo, hi)
        return None if found < 0 else (found, found + 1)  # the comma belongs to neither piece

    return list(_cut(chunk, at_separator, first + 1, last))


def _cut(
    chunk: int, find: Callable[[int, int], tuple[int, int] | None], start: int, stop: int
) -> Iterator[tuple[int, int]]:
    """Ranges from ``start`` to ``stop`` of at most ``chunk`` bytes; ``find(lo, hi)`` gives the last place to
    cut in [lo, hi) as (end of this piece, start of the next), or None (then the rest is one piece)."""
    while stop - start > chunk:
        cut = find(start + 1, start + chunk)
        if cut is None:
            break
        yield start, cut[0]
        start = cut[1]
    yield start, stop


def _rfind(data: memoryview, needle: bytes, lo: int, hi: int) -> int:
    """The last position of ``needle`` starting in data[lo:hi], or -1 (a mapped file searches in place)."""
    source = data.obj if isinstance(data.obj, mmap.mmap) else None
    if source is not None:
        offset = len(source) - len(data)
        found = source.rfind(needle, offset + lo, offset + hi + len(needle) - 1)
        return found - offset if found >= 0 else -1
    found = bytes(data[lo : hi + len(needle) - 1]).rfind(needle)
    return found + lo if found >= 0 else -1


def _skip(data: memoryview, i: int, direction: int) -> int:
    """The first position from ``i`` (going by ``direction``) that holds no JSON whitespace."""
    while 0 <= i < len(data) and data[i] in _WHITESPACE:
        i += direction
    return i


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
            read_options=pcsv.ReadOptions(use_threads=False),  # Arrow's threads cost 3x the CPU for no gain on 2 cores
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
    return _columns(*(_dictionary_column(table.column(name)) for name in _FIELDS))


class _Coded(NamedTuple):
    """A column as the index of each row's value in ``values`` (its distinct values)."""

    codes: np.ndarray
    values: list[str]


def _dictionary_column(column: Any) -> _Coded:
    """A pyarrow string column, coded."""
    array = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    encoded = array.dictionary_encode()
    return _Coded(encoded.indices.to_numpy(zero_copy_only=False), encoded.dictionary.to_pylist())


def _encode(values: Sequence[str]) -> _Coded:
    distinct = list(dict.fromkeys(values))
    position = {v: i for i, v in enumerate(distinct)}
    return _Coded(np.fromiter(map(position.__getitem__, values), dtype=np.int32, count=len(values)), distinct)


def _concat(parts: list[_Coded]) -> _Coded:
    """One column from the columns of consecutive pieces."""
    if len(parts) == 1:
        return parts[0]
    distinct = list(dict.fromkeys(v for part in parts for v in part.values))
    position = {v: i for i, v in enumerate(distinct)}
    codes = [np.array([position[v] for v in part.values], dtype=np.int32)[part.codes] for part in parts]
    return _Coded(np.concatenate(codes), distinct)


def _columns(model_a: _Coded, model_b: _Coded, winner: _Coded) -> Columns | None:
    """Check and map the three coded columns."""
    codes_a, values_a = model_a
    codes_b, values_b = model_b
    codes_w, values_w = winner
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
