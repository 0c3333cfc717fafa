"""File writers of the vote exports: JSON lines, one JSON list, Parquet.

Rule: a sink takes records as they are built and keeps at most one batch in memory (Parquet: one row
group of at most `PARQUET_BATCH_ROWS` rows or about `PARQUET_BATCH_CHARS` characters of text); the
caller closes it, which writes the end of the file. Which sink a format gets is `open_sink`'s choice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from arena.exports import formats
from arena.exports.formats import Format

PARQUET_BATCH_ROWS = 10_000  # rows per Parquet row group, at most ...
PARQUET_BATCH_CHARS = 32_000_000  # ... and at most about this much text


class LineSink:
    """JSON lines."""

    def __init__(self, path: Path) -> None:
        self.file = open(path, "w", encoding="utf-8", newline="\n", buffering=1 << 20)  # noqa: SIM115

    def write(self, record: str) -> None:
        self.file.write(record)
        self.file.write("\n")

    def close(self) -> None:
        self.file.close()


class JsonListSink(LineSink):
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


class ParquetSink:
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


def open_sink(spec: Format, path: Path, *, with_margin: bool) -> Any:
    """The sink of a battle or pair format: Parquet, one JSON list (battles-json), or JSON lines."""
    if spec.name == "parquet":
        return ParquetSink(path, formats.parquet_schema(with_margin))
    if spec.name == "battles-json":
        return JsonListSink(path)
    return LineSink(path)
