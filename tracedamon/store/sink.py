"""The interface readers write their tables to (:class:`TableSink`).

Ingest readers depend on this interface only, not on how the tables are stored;
:class:`tracedamon.store.writer.TraceDirWriter` implements it (a trace directory of
Parquet files plus ``meta.json``), and a test may hand a reader any object that does.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # only for the annotations: pyarrow is not needed here
    import pyarrow as pa

__all__ = ["TableSink"]


@runtime_checkable
class TableSink(Protocol):
    """Where a reader puts what it decoded: rows of the tables of
    :mod:`tracedamon.schema`, batch by batch, and facts about the input in ``meta``.

    ``meta`` becomes the trace directory's ``meta.json`` (JSON values only);
    ``table_options`` holds per-table storage options (Parquet writer keywords such as
    per-column encodings) a reader may set before the table's first write.
    """

    meta: dict[str, Any]
    table_options: dict[str, dict]

    def write(self, name: str, data: "pa.RecordBatch | pa.Table") -> None:
        """Append rows to table ``name`` (its schema's column types; columns it lacks
        are null)."""

    def rows(self, name: str) -> int:
        """Rows written to table ``name`` so far."""

    def row_counts(self) -> dict[str, int]:
        """Rows written so far, per table opened."""

    def started(self, name: str) -> bool:
        """Whether table ``name`` has been opened for writing."""

    def set_file_schema(self, name: str, schema: "pa.Schema") -> None:
        """Store table ``name`` in a narrower form of its schema (columns no row has
        left out, columns no row lacks non-nullable); before its first write."""

    @property
    def tmpdir(self) -> Path:
        """A private directory for scratch files, removed with a failed output (files
        left in it become part of the output: remove them when done)."""
