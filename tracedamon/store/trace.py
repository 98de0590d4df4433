"""Reading a trace directory (or a single regions.parquet) back."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa

from ..errors import InputError
from ..schema import TABLES, conform
from ..schema import empty as _empty
from .parquet import ParquetReader, filters_to_expression, read_schema, read_table

__all__ = ["Trace", "open_trace"]


class Trace:
    """The tables of a trace directory, read on demand.

    ``trace.table("samples")`` returns an Arrow table (empty with the right schema
    when the directory has none); ``trace.df("regions")`` a pandas DataFrame.
    Tables of a known name always come back in their full schema
    (:func:`tracedamon.schema.conform`), whether or not their file left out the columns
    no row has.  (:class:`tracedamon.store.url.UrlTrace` reads one behind an fsspec
    URL: the same methods over its ``_fs`` filesystem.)
    """

    _fs = None  # the filesystem the files are on: None is the local one

    def __init__(self, path: str | os.PathLike):
        p = Path(path)
        if not p.exists():
            raise InputError(f"{p}: no such file or directory")
        self.path = p
        if p.is_file():
            if p.suffix != ".parquet":
                raise InputError(f"{p}: not a trace directory or a .parquet table")
            self._files = {p.stem: p}
            self.meta: dict = {}
        else:
            self._files = {q.stem: q for q in p.glob("*.parquet")}
            mp = p / "meta.json"
            self.meta = json.loads(mp.read_text()) if mp.exists() else {}
            if not self._files and not mp.exists():
                raise InputError(f"{p}: not a trace directory (no meta.json, no .parquet)")

    def has(self, name: str) -> bool:
        return name in self._files

    def file(self, name: str) -> Path:
        if name not in self._files:
            raise InputError(f"{self.path}: has no {name} table")
        return self._files[name]

    def table(self, name: str, columns: list[str] | None = None, filters=None) -> pa.Table:
        if name not in self._files:
            schema = TABLES.get(name)
            if schema is None:
                raise InputError(f"{self.path}: has no {name} table")
            t = _empty(schema)
            return t.select(columns) if columns else t
        schema = TABLES.get(name)
        if schema is None:
            return read_table(
                self._files[name], columns=columns, filters=filters, filesystem=self._fs
            )
        have = set(read_schema(self._files[name], filesystem=self._fs).names)
        read = None if columns is None else [c for c in columns if c in have]
        if filters is not None and not _names_in(filters) <= have:
            # a filter on a column the file left out (all null): apply it to the
            # restored table
            t = conform(read_table(self._files[name], filesystem=self._fs), schema)
            t = t.filter(filters_to_expression(filters))
            return t.select(columns) if columns is not None else t
        t = read_table(self._files[name], columns=read, filters=filters, filesystem=self._fs)
        return conform(t, schema, columns)

    def iter_tables(self, name: str, columns: list[str] | None = None, batch_rows: int = 1 << 20):
        """Table ``name`` as a sequence of tables of at most ``batch_rows`` rows, in
        file order, each in the full schema (see :meth:`table`): bounded memory."""
        if name not in self._files:
            return
        schema = TABLES.get(name)
        pf = ParquetReader(self._files[name], filesystem=self._fs)
        have = set(pf.names)
        read = None if columns is None else [c for c in columns if c in have]
        # (a reader per row group: see ParquetReader.iter_batches)
        for b in pf.iter_batches(batch_rows, columns=read):
            t = pa.Table.from_batches([b])
            yield t if schema is None else conform(t, schema, columns)

    def columns(self, name: str) -> list[str]:
        """The columns table ``name``'s file holds (a narrower file may leave out the
        columns no row has; :meth:`table` restores them)."""
        return read_schema(self.file(name), filesystem=self._fs).names

    def df(self, name: str, columns: list[str] | None = None, filters=None):
        return self.table(name, columns, filters).to_pandas()

    def num_rows(self, name: str) -> int:
        if name not in self._files:
            return 0
        return ParquetReader(self._files[name], filesystem=self._fs).num_rows

    def tables(self) -> list[str]:
        return sorted(self._files)


def _names_in(filters) -> set:
    """Column names a pyarrow DNF filter (list of tuples, or list of lists) tests."""
    if filters and isinstance(filters[0], tuple):
        return {t[0] for t in filters}
    return {t[0] for g in filters for t in g}


def open_trace(path: str | os.PathLike) -> Trace:
    """Open a trace directory (or one ``.parquet`` table) for reading."""
    return Trace(path)
