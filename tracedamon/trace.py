"""Reading a trace directory (or a single regions.parquet) back."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .errors import InputError
from .schema import TABLES


class Trace:
    """The tables of a trace directory, read on demand.

    ``trace.table("samples")`` returns an Arrow table (empty with the right schema
    when the directory has none); ``trace.df("regions")`` a pandas DataFrame.
    """

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
            t = schema.empty_table()
            return t.select(columns) if columns else t
        return pq.read_table(self._files[name], columns=columns, filters=filters)

    def df(self, name: str, columns: list[str] | None = None, filters=None):
        return self.table(name, columns, filters).to_pandas()

    def num_rows(self, name: str) -> int:
        if name not in self._files:
            return 0
        return pq.ParquetFile(self._files[name]).metadata.num_rows

    def tables(self) -> list[str]:
        return sorted(self._files)


def open_trace(path: str | os.PathLike) -> Trace:
    """Open a trace directory (or one ``.parquet`` table) for reading."""
    return Trace(path)
