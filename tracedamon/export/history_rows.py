"""Reading the rows of a region history: a Parquet file a row group at a time, or arrays
in memory, in tracedamon's reading types (start/end uint64, nr_accesses/age float64 with
NaN for an unknown age, the rest int64), and the pass over the narrow columns that finds
the snapshots (:func:`_scan`). Used by :mod:`tracedamon.export.history`."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import TraceFormatError
from ..store.parquet import ParquetReader

#: Rows handed out per batch (a batch always holds whole snapshots, so one
#: snapshot larger than this makes a larger batch).
BATCH_ROWS = 1 << 18

_REQUIRED = ("snapshot", "time_ns", "start", "end", "nr_accesses")
_ALL = ("run", "target", "pid", "snapshot", "time_ns", "start", "end", "nr_accesses", "age")
_NARROW = ("run", "target", "pid", "snapshot", "time_ns", "nr_accesses")
_ROWS = ("time_ns", "start", "end", "nr_accesses", "age")


class HistoryWarning(UserWarning):
    """Something a user should know about how a region history was read."""


# ----------------------------------------------------------------------------------
# column normalisation
# ----------------------------------------------------------------------------------
def _arrow_numpy(col, name: str, where: str, row0: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(values, valid) of one Arrow column in tracedamon's reading types.

    start/end: uint64; nr_accesses/age: float64 (NaN when null); the rest int64.
    ``valid`` is None when the column has no null."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    if pa.types.is_null(col.type):
        col = pa.nulls(len(col), pa.int64())
    valid = None
    if col.null_count:
        valid = col.is_valid().to_numpy(zero_copy_only=False)
        if name in _REQUIRED:
            bad = int(np.flatnonzero(~valid)[0])
            raise TraceFormatError(where, f"row {row0 + bad}: {name} is null")
    try:
        if name in ("start", "end"):
            arr = col.cast(pa.uint64())
            out = arr.to_numpy(zero_copy_only=False)
        elif name in ("nr_accesses", "age"):
            arr = col.cast(pa.float64())
            out = arr.to_numpy(zero_copy_only=False)
        else:
            arr = col.cast(pa.int64())
            if valid is not None:
                arr = pc.fill_null(arr, 0)
            out = arr.to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError) as e:
        raise TraceFormatError(where, f"column {name}: unusable values ({e})") from None
    if name == "age" and valid is not None:
        out = np.where(valid, out, np.nan)
    return np.ascontiguousarray(out), valid


def _normalise(get, n: int, columns, where: str, row0: int) -> dict:
    """Numpy arrays of ``columns`` from ``get(name)`` (an Arrow column or None)."""
    out: dict[str, np.ndarray] = {}
    for c in columns:
        col = get(c)
        if col is None:
            if c in _REQUIRED:
                raise TraceFormatError(where, f"not a region history: missing column {c}")
            if c == "age":
                out[c] = np.full(n, np.nan)
            elif c == "pid":
                out[c] = np.zeros(n, np.int64)
                out["pid_ok"] = np.zeros(n, bool)
            else:
                out[c] = np.zeros(n, np.int64)
            continue
        v, ok = _arrow_numpy(col, c, where, row0)
        out[c] = v
        if c == "pid":
            out["pid_ok"] = np.ones(n, bool) if ok is None else ok
    return out


# ----------------------------------------------------------------------------------
# row sources: a Parquet file read row group by row group, or arrays in memory
# ----------------------------------------------------------------------------------
class _ParquetRows:
    def __init__(self, path: str, batch_rows: int):
        self.path = path
        try:
            self.pf = ParquetReader(path)
        except Exception as e:  # pyarrow's errors on a corrupt or foreign file
            raise TraceFormatError(path, f"not a readable Parquet table ({e})") from None
        self.names = set(self.pf.names)
        self.rg_rows = np.array(
            [self.pf.row_group_rows(i) for i in range(self.pf.num_row_groups)], np.int64
        )
        self.rg_start = np.concatenate([[0], np.cumsum(self.rg_rows)]).astype(np.int64)
        self.num_rows = int(self.rg_start[-1])
        self.batch_rows = max(1, int(batch_rows))

    def _constants(self, g: int, columns) -> dict:
        """Columns among run, target and pid that row group ``g``'s statistics show to
        hold one value (or only nulls): they need not be decoded."""
        out = {}
        rows = self.pf.row_group_rows(g)
        for name in ("run", "target", "pid"):
            if name not in columns:
                continue
            stt = self.pf.statistics(g, name)
            if stt is None or stt.null_count is None:
                continue
            if stt.null_count == rows:
                out[name] = None
            elif stt.constant and isinstance(stt.min, int):
                out[name] = int(stt.min)
        return out

    def chunks(self, columns, row_groups=None) -> Iterator[tuple[int, dict]]:
        groups = range(len(self.rg_rows)) if row_groups is None else row_groups
        for g in groups:
            row0 = int(self.rg_start[g])
            const = self._constants(int(g), columns)
            read = [c for c in columns if c in self.names and c not in const]
            try:
                # one reader per row group: a reader over the whole file keeps memory
                # for every row it has read (see Trace.iter_tables)
                it = self.pf.iter_batches(self.batch_rows, columns=read, row_groups=[int(g)])
                for b in it:
                    n = b.num_rows
                    names = b.schema.names
                    d = _normalise(
                        lambda c: b.column(names.index(c)) if c in names else None,
                        n,
                        [c for c in columns if c not in const],
                        self.path,
                        row0,
                    )
                    for c, v in const.items():
                        if v is None:
                            d.update(_normalise(lambda _: None, n, [c], self.path, row0))
                        else:
                            d[c] = np.full(n, v, np.int64)
                            if c == "pid":
                                d["pid_ok"] = np.ones(n, bool)
                    yield row0, d
                    row0 += n
            except TraceFormatError:
                raise
            except (pa.ArrowException, OSError, ValueError) as e:
                raise TraceFormatError(
                    self.path, f"row group {g} (rows from {row0}): not readable ({e})"
                ) from None


class _MemoryRows:
    def __init__(self, arrays: dict, num_rows: int, batch_rows: int):
        self.arrays = arrays
        self.num_rows = num_rows
        self.batch_rows = max(1, int(batch_rows))
        self.rg_start = np.array([0, num_rows], np.int64)

    def chunks(self, columns, row_groups=None) -> Iterator[tuple[int, dict]]:
        for r0 in range(0, self.num_rows, self.batch_rows):
            r1 = min(self.num_rows, r0 + self.batch_rows)
            d = {c: self.arrays[c][r0:r1] for c in columns}
            if "pid" in columns:
                d["pid_ok"] = self.arrays["pid_ok"][r0:r1]
            yield r0, d


class _Cursor:
    """Reads ascending row ranges of a row source, forward only."""

    def __init__(self, rows, columns):
        self.rows = rows
        self.columns = list(columns)
        self._it = None
        self._chunk = None  # (row0, dict, n)
        self._next_group = 0
        self._group_end = 0

    def _advance(self, need_row: int) -> bool:
        """Make the current chunk the one holding ``need_row`` (skipping whole row
        groups before it without decoding them)."""
        while True:
            if self._chunk is not None:
                r0, _, n = self._chunk
                if r0 <= need_row < r0 + n:
                    return True
                if need_row < r0:
                    raise AssertionError("cursor moved backwards")
            if self._it is not None and need_row >= self._group_end:
                self._it = None  # the rest of this row group is not needed
            if self._it is not None:
                nxt = next(self._it, None)
                if nxt is not None:
                    r0, d = nxt
                    n = len(d[self.columns[0]])
                    self._chunk = (r0, d, n)
                    continue
                self._it = None
            starts = self.rows.rg_start
            g = self._next_group
            if g >= len(starts) - 1:
                return False
            # skip row groups that end before the row we need
            while g < len(starts) - 1 and starts[g + 1] <= need_row:
                g += 1
            if g >= len(starts) - 1:
                return False
            self._next_group = g + 1
            self._group_end = int(starts[g + 1])
            self._it = (
                self.rows.chunks(self.columns, [g])
                if isinstance(self.rows, _ParquetRows)
                else self.rows.chunks(self.columns)
            )
            self._chunk = None

    def read(self, ranges) -> dict:
        """Concatenated arrays of the rows of ``ranges`` [(r0, r1), ...] (ascending)."""
        parts: dict[str, list] = {c: [] for c in self.columns}
        if "pid" in self.columns:
            parts["pid_ok"] = []
        for a, b in ranges:
            r = a
            while r < b:
                if not self._advance(r):
                    raise TraceFormatError(
                        getattr(self.rows, "path", "<history>"),
                        f"row {r}: the file ended early (changed while being read?)",
                    )
                r0, d, n = self._chunk
                i0, i1 = r - r0, min(b, r0 + n) - r0
                for c in parts:
                    parts[c].append(d[c][i0:i1])
                r = r0 + i1
        return {
            c: (np.concatenate(v) if len(v) != 1 else v[0]) if v else np.zeros(0, _dtype(c))
            for c, v in parts.items()
        }


def _dtype(c: str):
    return {
        "start": np.uint64,
        "end": np.uint64,
        "nr_accesses": np.float64,
        "age": np.float64,
        "pid_ok": bool,
    }.get(c, np.int64)


def _merge_ranges(a: np.ndarray, b: np.ndarray) -> list[tuple[int, int]]:
    """Row ranges [a_i, b_i) (ascending, disjoint) with touching ones joined."""
    if len(a) == 0:
        return []
    join = np.ones(len(a), bool)
    join[1:] = a[1:] != b[:-1]
    idx = np.flatnonzero(join)
    ends = np.concatenate([idx[1:], [len(a)]]) - 1
    return list(zip(a[idx].tolist(), b[ends].tolist()))


def _table_arrays(t: pa.Table, where: str) -> dict:
    names = t.column_names
    return _normalise(lambda c: t.column(c) if c in names else None, t.num_rows, _ALL, where, 0)


def _sorted_memory(arrays: dict, n: int, batch_rows: int) -> _MemoryRows:
    """Arrays sorted by (key, run, snapshot, start) -- then by time within a key if that
    order is not already time order."""
    key = arrays["pid"] if arrays["pid_ok"].all() else arrays["target"]
    o = np.lexsort((arrays["start"], arrays["snapshot"], arrays["run"], key))
    arrays = {c: v[o] for c, v in arrays.items()}
    key = key[o]
    if n:
        ch = np.zeros(n, bool)
        ch[0] = True
        for c in (key, arrays["run"], arrays["snapshot"]):
            ch[1:] |= c[1:] != c[:-1]
        gid = np.cumsum(ch) - 1
        t1 = np.minimum.reduceat(arrays["time_ns"], np.flatnonzero(ch))
        gk = key[ch]
        same = gk[1:] == gk[:-1]
        if (same & (t1[1:] < t1[:-1])).any():
            o = np.lexsort((arrays["start"], arrays["snapshot"], arrays["run"], t1[gid], key))
            arrays = {c: v[o] for c, v in arrays.items()}
    mem = _MemoryRows(arrays, n, batch_rows)
    mem.key_col = "pid" if arrays["pid_ok"].all() else "target"
    return mem


def _scan(rows, where: str, key_col: str | None = None) -> dict:
    """Snapshot groups in stream order from a pass over the narrow columns.

    A group is a run of rows with the same (run, target, pid, snapshot), or with
    ``key_col`` the same (key, run, snapshot) (its target and pid: the first row's)."""
    acc: dict[str, list] = {
        c: []
        for c in ("run", "target", "pid", "pid_ok", "snapshot", "t1", "rows", "nr_max", "first")
    }
    last = None
    for row0, d in rows.chunks(_NARROW):
        n = len(d["snapshot"])
        if n == 0:
            continue
        if key_col is None:
            cols = [d["run"], d["target"], d["pid"], d["pid_ok"], d["snapshot"]]
        else:
            cols = [d[key_col], d["run"], d["snapshot"]]
        ch = np.zeros(n, bool)
        ch[0] = True
        for c in cols:
            ch[1:] |= c[1:] != c[:-1]
        ident = np.array([int(c[0]) for c in cols])
        idx = np.flatnonzero(ch)
        cnt = np.diff(np.concatenate([idx, [n]]))
        t1 = np.minimum.reduceat(d["time_ns"], idx)
        nrm = np.maximum.reduceat(d["nr_accesses"], idx)
        g = {
            "run": d["run"][idx],
            "target": d["target"][idx],
            "pid": d["pid"][idx],
            "pid_ok": d["pid_ok"][idx],
            "snapshot": d["snapshot"][idx],
            "t1": t1,
            "rows": cnt,
            "nr_max": nrm,
            "first": row0 + idx,
        }
        if last is not None and (ident == last).all():
            # the first snapshot here continues the last one of the previous chunk
            acc["rows"][-1][-1] += cnt[0]
            acc["t1"][-1][-1] = min(acc["t1"][-1][-1], t1[0])
            acc["nr_max"][-1][-1] = max(acc["nr_max"][-1][-1], nrm[0])
            g = {c: v[1:] for c, v in g.items()}
        if len(g["rows"]):
            for c, v in g.items():
                acc[c].append(np.array(v))
        last = np.array([int(c[-1]) for c in cols])
    return {
        c: (np.concatenate(v) if v else np.zeros(0, _dtype(c) if c != "pid_ok" else bool))
        for c, v in acc.items()
    }
