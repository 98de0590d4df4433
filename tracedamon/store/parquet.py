"""Parquet files, read and written: the one module of tracedamon that imports
``pyarrow.parquet`` (the trace-directory and history writers of this package aside).

- :func:`encode_metadata` / :func:`read_metadata`: tracedamon's JSON metadata under
  :data:`tracedamon.schema.METADATA_KEY`, the only functions that know the key;
- :class:`ParquetReader`: one file's schema, row groups and their column statistics,
  read row group by row group (bounded memory);
- :func:`read_table`, :func:`read_schema`: a whole table, a file's schema;
- :func:`open_writer`: a streaming ``pyarrow.parquet.ParquetWriter`` (zstd by default),
  for writers that put their file in place themselves (see :mod:`tracedamon.store.writer`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

import pyarrow as pa
import pyarrow.parquet as pq

from .. import __version__
from ..schema import METADATA_KEY, SCHEMA_VERSION

__all__ = [
    "encode_metadata",
    "read_metadata",
    "ColumnStatistics",
    "ParquetReader",
    "read_table",
    "read_schema",
    "filters_to_expression",
    "open_writer",
    "arrow_schema_entry",
]


# ----------------------------------------------------------------------------------
# tracedamon's metadata
# ----------------------------------------------------------------------------------
def encode_metadata(extra: dict | None = None) -> dict[bytes, bytes]:
    """tracedamon's metadata (schema and tracedamon versions, plus ``extra``) as the
    key-value entry of a Parquet file or an Arrow schema."""
    meta = {"schema_version": SCHEMA_VERSION, "tracedamon_version": __version__}
    if extra:
        meta.update(extra)
    return {METADATA_KEY: json.dumps(meta, sort_keys=True, default=str).encode()}


def _decode(kv: Mapping[bytes, bytes] | None) -> dict | None:
    raw = (kv or {}).get(METADATA_KEY)
    return json.loads(raw) if raw else None


def read_metadata(source) -> dict | None:
    """tracedamon's JSON metadata, or None when there is none.

    ``source`` is a Parquet file's path, a :class:`ParquetReader`, or an Arrow
    schema / table / record batch (an in-memory table keeps it in its schema). A file's
    key-value metadata is looked at first (trace-directory tables and region histories
    write it when they are closed), then its Arrow schema's (single tables keep it there
    too). Raises ``ValueError`` for metadata that is not JSON, and pyarrow's errors for a
    file that is not readable Parquet.
    """
    if isinstance(source, (pa.Table, pa.RecordBatch)):
        source = source.schema
    if isinstance(source, pa.Schema):
        return _decode(source.metadata)
    md = source._pf.metadata if isinstance(source, ParquetReader) else pq.read_metadata(source)
    meta = _decode(md.metadata)
    if meta is None:
        meta = _decode(md.schema.to_arrow_schema().metadata)
    return meta


def arrow_schema_entry(schema: pa.Schema) -> bytes:
    """The ``ARROW:schema`` key-value entry ``pq.write_table`` would write for ``schema``
    (a streaming writer that adds its metadata at the end writes the same footer)."""
    buf = pa.BufferOutputStream()
    pq.write_table(schema.empty_table(), buf)
    return pq.read_metadata(pa.BufferReader(buf.getvalue())).metadata[b"ARROW:schema"]


# ----------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ColumnStatistics:
    """A column chunk's statistics in one row group: ``null_count`` (None: unknown),
    ``min``/``max`` (None: unknown, e.g. all values null)."""

    null_count: int | None
    min: Any = None
    max: Any = None

    @property
    def has_min_max(self) -> bool:
        return self.min is not None and self.max is not None

    @property
    def constant(self) -> bool:
        """No null and one value in the whole row group."""
        return self.null_count == 0 and self.has_min_max and self.min == self.max


class ParquetReader:
    """One Parquet file: its schema, its row groups with their statistics, and its rows
    read a row group at a time.

    >>> r = ParquetReader("run.td/samples.parquet")               # doctest: +SKIP
    >>> for g in range(r.num_row_groups):                         # doctest: +SKIP
    ...     st = r.statistics(g, "time_ns")
    """

    def __init__(self, path: str | os.PathLike, filesystem=None):
        self.path = path
        self._pf = pq.ParquetFile(path, filesystem=filesystem)
        self.schema: pa.Schema = self._pf.schema_arrow
        self.names: list[str] = self.schema.names
        md = self._pf.metadata
        self.num_rows: int = md.num_rows
        self.num_row_groups: int = md.num_row_groups

    def row_group_rows(self, g: int) -> int:
        return self._pf.metadata.row_group(g).num_rows

    def statistics(self, g: int, name: str) -> ColumnStatistics | None:
        """Column ``name``'s statistics in row group ``g``; None when the file has no
        such column or wrote no statistics for it."""
        if name not in self.names:
            return None
        rg = self._pf.metadata.row_group(g)
        for j in range(rg.num_columns):
            cc = rg.column(j)
            if cc.path_in_schema != name:
                continue
            st = cc.statistics
            if st is None:
                return None
            mm = st.has_min_max
            return ColumnStatistics(
                st.null_count if st.has_null_count else None,
                st.min if mm else None,
                st.max if mm else None,
            )
        return None

    def read_row_group(self, g: int, columns: list[str] | None = None) -> pa.Table:
        return self._pf.read_row_group(g, columns=columns)

    def iter_batches(
        self, batch_rows: int, columns: list[str] | None = None, row_groups=None
    ) -> Iterator[pa.RecordBatch]:
        """Record batches of at most ``batch_rows`` rows, in file order, of the given row
        groups (default: all). A reader per row group: one reader over the whole file
        keeps about 1.4 bytes per row read (pyarrow 26: 43 MB more Arrow memory by the
        end of 30 M samples)."""
        groups = range(self.num_row_groups) if row_groups is None else row_groups
        for g in groups:
            yield from self._pf.iter_batches(
                batch_size=batch_rows, row_groups=[int(g)], columns=columns
            )

    def read(self, columns: list[str] | None = None) -> pa.Table:
        return self._pf.read(columns=columns)

    @property
    def metadata(self) -> dict | None:
        """tracedamon's metadata of the file (:func:`read_metadata`)."""
        return read_metadata(self)

    def close(self) -> None:
        self._pf.close()

    def __enter__(self) -> "ParquetReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_table(
    path: str | os.PathLike, columns: list[str] | None = None, filters=None, filesystem=None
) -> pa.Table:
    """A whole Parquet file (or the given columns; ``filters`` in pyarrow's DNF form);
    ``filesystem`` an fsspec (or pyarrow) filesystem ``path`` is on (default: local)."""
    return pq.read_table(path, columns=columns, filters=filters, filesystem=filesystem)


def read_schema(path: str | os.PathLike, filesystem=None) -> pa.Schema:
    return pq.read_schema(path, filesystem=filesystem)


def filters_to_expression(filters):
    """A pyarrow DNF filter as a compute expression (to filter a table in memory)."""
    return pq.filters_to_expression(filters)


# ----------------------------------------------------------------------------------
# writing
# ----------------------------------------------------------------------------------
def open_writer(path: str | os.PathLike, schema: pa.Schema, **options) -> pq.ParquetWriter:
    """A streaming Parquet writer of ``schema`` at ``path`` (compression zstd unless
    ``options`` say otherwise). The caller owns the file: write it under a hidden name
    and move it into place (:mod:`tracedamon.store.atomic`)."""
    return pq.ParquetWriter(path, schema, **{"compression": "zstd", **options})


def write_table(table: pa.Table, path: str | os.PathLike, **options) -> None:
    """Write ``table`` to ``path`` in one go (zstd unless ``options`` say otherwise)."""
    pq.write_table(table, path, **{"compression": "zstd", **options})
