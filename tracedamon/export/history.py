"""Reading region histories a bounded number of rows at a time.

A *region history* is a table with the REGIONS schema (``tracedamon.schema``): one
row per DAMON region per aggregation snapshot, written by ``tracedamon replay`` or
by the ingest of a DAMON trace. :func:`open_history` opens one from any source
(a ``.parquet`` file, a trace directory's ``regions`` table, a replay result, an
Arrow table or a DataFrame) and learns what analyses need up front from a pass
over the narrow columns (run, target, pid, snapshot, time_ns, nr_accesses):

* ``snaps``: one row per snapshot (sorted by key, run, snapshot) with its window
  ``[t0, t1)`` computed by the rules in :mod:`tracedamon.export.grid`;
* ``keys`` (the address spaces: pid when every row has one, else target), the
  time span, the largest nr_accesses, the intervals, the row count;
* ``sparse`` and ``coverage`` (see below).

:meth:`HistorySource.iter_batches` then hands out whole snapshots, at most about
``batch_rows`` rows at a time, as numpy arrays (:class:`Batch`); a snapshot whose
rows span Parquet row groups is stitched together. Snapshots come in file order,
which must keep each snapshot's rows together and each address space's snapshots
in time order (tracedamon writes them so). A file that does not is read whole into
memory instead, with a warning; sources already in memory are sorted there.

Sparse histories. A replay written with ``--accessed-only`` (or past
``--max-rows``) leaves out the rows whose nr_accesses is 0; its metadata says
``"sparse": true`` and lists the monitor's ``coverage`` (per target, the address
ranges it covered from a snapshot on). With ``fill_sparse=True`` (the default) the
reader gives every snapshot the rows a dense file would have had, byte for byte:
every byte inside coverage that no row covers becomes part of a row with
nr_accesses 0 (``filled`` set; adjacent idle bytes form one row), and a snapshot
that had no accessed region at all (so no row in the file) is put back with its
time. The age of a filled byte is not recorded anywhere: it is NaN. An older
file with ``accessed_only`` but no coverage is read with coverage = the union of
its rows per target over the whole run, with a warning that idle bytes outside
every region ever accessed are unknown.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError, TraceFormatError

#: Rows handed out per batch (a batch always holds whole snapshots, so one
#: snapshot larger than this makes a larger batch).
BATCH_ROWS = 1 << 20

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
        import pyarrow.parquet as pq

        self.path = path
        try:
            self.pf = pq.ParquetFile(path)
            schema = self.pf.schema_arrow
        except Exception as e:  # pyarrow's errors on a corrupt or foreign file
            raise TraceFormatError(path, f"not a readable Parquet table ({e})") from None
        self.names = set(schema.names)
        md = self.pf.metadata
        self.rg_rows = np.array([md.row_group(i).num_rows for i in range(md.num_row_groups)],
                                np.int64)
        self.rg_start = np.concatenate([[0], np.cumsum(self.rg_rows)]).astype(np.int64)
        self.num_rows = int(self.rg_start[-1])
        self.batch_rows = max(1, int(batch_rows))

    def _constants(self, g: int, columns) -> dict:
        """Columns among run, target and pid that row group ``g``'s statistics show to
        hold one value (or only nulls): they need not be decoded."""
        out = {}
        rg = self.pf.metadata.row_group(g)
        for j in range(rg.num_columns):
            cc = rg.column(j)
            name = cc.path_in_schema
            if name not in ("run", "target", "pid") or name not in columns:
                continue
            stt = cc.statistics
            if stt is None or not stt.has_null_count:
                continue
            if stt.null_count == rg.num_rows:
                out[name] = None
            elif (stt.null_count == 0 and stt.has_min_max and stt.min == stt.max
                    and isinstance(stt.min, int)):
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
                it = self.pf.iter_batches(batch_size=self.batch_rows, row_groups=[int(g)],
                                          columns=read)
                for b in it:
                    n = b.num_rows
                    names = b.schema.names
                    d = _normalise(
                        lambda c: b.column(names.index(c)) if c in names else None,
                        n, [c for c in columns if c not in const], self.path, row0)
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
                raise TraceFormatError(self.path, f"row group {g} (rows from {row0}): "
                                                  f"not readable ({e})") from None


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
            self._it = (self.rows.chunks(self.columns, [g])
                        if isinstance(self.rows, _ParquetRows)
                        else self.rows.chunks(self.columns))
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
                    raise TraceFormatError(getattr(self.rows, "path", "<history>"),
                                           f"row {r}: the file ended early (changed while "
                                           "being read?)")
                r0, d, n = self._chunk
                i0, i1 = r - r0, min(b, r0 + n) - r0
                for c in parts:
                    parts[c].append(d[c][i0:i1])
                r = r0 + i1
        return {c: (np.concatenate(v) if len(v) != 1 else v[0]) if v else
                np.zeros(0, _dtype(c)) for c, v in parts.items()}


def _dtype(c: str):
    return {"start": np.uint64, "end": np.uint64, "nr_accesses": np.float64,
            "age": np.float64, "pid_ok": bool}.get(c, np.int64)


# ----------------------------------------------------------------------------------
# metadata
# ----------------------------------------------------------------------------------
def _find_key(d: Any, names: tuple[str, ...], depth: int = 0):
    """First value of any key in ``names`` found in a nested dict (breadth first)."""
    if depth > 6 or not isinstance(d, dict):
        return None
    for n in names:
        if n in d and isinstance(d[n], (int, float)) and not isinstance(d[n], bool):
            return d[n]
        if n in d and isinstance(d[n], str):
            try:
                return float(d[n])
            except ValueError:
                pass
    for v in d.values():
        if isinstance(v, dict):
            r = _find_key(v, names, depth + 1)
            if r is not None:
                return r
    return None


def intervals_from_meta(meta: dict) -> tuple[float | None, float | None]:
    """(sample_us, aggr_us) recorded in a source's metadata, if any."""
    s = _find_key(meta, ("sample_us", "sample_interval_us"))
    a = _find_key(meta, ("aggr_us", "aggr_interval_us"))
    if s is not None and a is not None and s > 0 and a > 0:
        return float(s), float(a)
    return None, None


def replay_meta(meta: dict) -> dict:
    """The ``replay`` object of a source's metadata ({} when it is not a replay)."""
    for d in (meta, meta.get("parquet") if isinstance(meta, dict) else None):
        if isinstance(d, dict) and isinstance(d.get("replay"), dict):
            return d["replay"]
    return {}


def _parse_coverage(raw, where: str) -> dict:
    """{target: (froms int64 array, [ranges (n, 2) uint64 per from])} of a coverage list."""
    if not isinstance(raw, list):
        raise TraceFormatError(where, "metadata: coverage is not a list")
    per: dict[int, dict[int, list]] = {}
    for i, e in enumerate(raw):
        if (not isinstance(e, (list, tuple)) or len(e) != 4
                or not all(isinstance(x, int) and not isinstance(x, bool) for x in e)):
            raise TraceFormatError(where, f"metadata: coverage entry {i} is not "
                                          "[snapshot_from, target, start, end]")
        k, t, s, en = e
        if s < 0 or en < s or en >= 1 << 64:
            raise TraceFormatError(where, f"metadata: coverage entry {i} has a bad range "
                                          f"{s}-{en}")
        per.setdefault(int(t), {}).setdefault(int(k), []).append((s, en))
    out = {}
    for t, by in per.items():
        froms = np.array(sorted(by), np.int64)
        rngs = []
        for k in froms.tolist():
            r = [(s, e) for s, e in by[k] if e > s]
            arr = np.array(r, dtype=np.uint64).reshape(-1, 2)
            rngs.append(_merge(arr[:, 0], arr[:, 1]))
        out[t] = (froms, rngs)
    return out


def _merge(s: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Union of [s, e) intervals, adjacent ones merged, as an (n, 2) uint64 array."""
    s = np.asarray(s, np.uint64)
    e = np.asarray(e, np.uint64)
    if len(s) == 0:
        return np.zeros((0, 2), np.uint64)
    o = np.argsort(s, kind="stable")
    s, e = s[o], e[o]
    run_end = np.maximum.accumulate(e)
    new = np.ones(len(s), bool)
    new[1:] = s[1:] > run_end[:-1]
    idx = np.flatnonzero(new)
    return np.stack([s[idx], np.maximum.reduceat(e, idx)], axis=1)


# ----------------------------------------------------------------------------------
# snapshot windows
# ----------------------------------------------------------------------------------
def snapshot_windows(key, run, t1, aggr_us: float | None) -> tuple[np.ndarray, float, float]:
    """Windows ``t0`` of snapshots sorted by (key, run, snapshot) with ends ``t1``.

    The rules of :mod:`tracedamon.export.grid`: a snapshot starts where the previous
    one of its (key, run) ended; the first one of a run gets the run's mean snapshot
    spacing (or one aggregation interval); no window is longer than 1.5 aggregation
    intervals. Returns (t0, aggregation interval used in ns, median spacing in ns).
    """
    key = np.asarray(key)
    run = np.asarray(run)
    t1 = np.asarray(t1, np.int64)
    n = len(t1)
    first = np.ones(n, bool)
    first[1:] = (key[1:] != key[:-1]) | (run[1:] != run[:-1])
    prev = np.empty(n, np.int64)
    prev[1:] = t1[:-1]
    if n:
        prev[0] = t1[0]
    gaps = (t1 - prev)[~first]
    gaps = gaps[gaps > 0]
    if aggr_us:
        aggr_ns = float(aggr_us) * 1000.0
    elif len(gaps):
        aggr_ns = float(np.median(gaps))
    else:
        aggr_ns = 1.0
    if n == 0:
        return np.zeros(0, np.int64), aggr_ns, aggr_ns
    gid = np.cumsum(first) - 1
    n_in = np.bincount(gid)
    t_first = t1[first]
    t_last = np.maximum.reduceat(t1, np.flatnonzero(first))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_gap = np.where(n_in > 1, (t_last - t_first) / np.maximum(n_in - 1, 1), np.nan)
    first_len = np.where(np.isfinite(mean_gap) & (mean_gap > 0), np.ceil(mean_gap),
                         round(aggr_ns))
    cap = 1.5 * max(aggr_ns, float(np.nanmax(mean_gap)) if np.isfinite(mean_gap).any() else 0.0)
    t0 = np.where(first, t1 - first_len[gid].astype(np.int64), prev)
    t0 = np.maximum(t0, t1 - int(math.ceil(cap)))
    t0 = np.minimum(t0, t1 - 1)
    measured = float(np.median(gaps)) if len(gaps) else aggr_ns
    return t0.astype(np.int64), aggr_ns, measured


# ----------------------------------------------------------------------------------
# batches
# ----------------------------------------------------------------------------------
@dataclass
class Batch:
    """Whole snapshots of one history, as numpy arrays.

    ``snap``: the snapshots' indices into ``source.snaps`` (in stream order);
    ``offsets``: rows of the k-th snapshot are ``offsets[k]:offsets[k + 1]``, sorted by
    start and disjoint. Row arrays: ``start``, ``end`` (uint64), ``nr_accesses``,
    ``age`` (float64; age NaN when unknown, e.g. a filled byte), ``time_ns`` (int64),
    ``filled`` (bool: a row put in by filling a sparse snapshot). Per-snapshot arrays
    (``key``, ``run``, ``target``, ``snapshot``, ``t0``, ``t1``) come from
    ``source.snaps``.
    """

    source: "HistorySource"
    snap: np.ndarray
    offsets: np.ndarray
    start: np.ndarray
    end: np.ndarray
    nr_accesses: np.ndarray
    age: np.ndarray
    time_ns: np.ndarray
    filled: np.ndarray

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def n_snapshots(self) -> int:
        return len(self.snap)

    def _col(self, c):
        return self.source._snap_arrays[c][self.snap]

    @property
    def key(self) -> np.ndarray:
        return self._col("key")

    @property
    def run(self) -> np.ndarray:
        return self._col("run")

    @property
    def target(self) -> np.ndarray:
        return self._col("target")

    @property
    def snapshot(self) -> np.ndarray:
        return self._col("snapshot")

    @property
    def t0(self) -> np.ndarray:
        return self._col("t0")

    @property
    def t1(self) -> np.ndarray:
        return self._col("t1")

    @property
    def row_snap(self) -> np.ndarray:
        """Per row: its snapshot's index into ``source.snaps``."""
        return np.repeat(self.snap, np.diff(self.offsets))

    @property
    def row_local(self) -> np.ndarray:
        """Per row: its snapshot's position in this batch (0 .. n_snapshots - 1)."""
        return np.repeat(np.arange(len(self.snap)), np.diff(self.offsets))

    def snapshots(self) -> Iterator["Snapshot"]:
        sa = self.source._snap_arrays
        for k, s in enumerate(self.snap.tolist()):
            a, b = int(self.offsets[k]), int(self.offsets[k + 1])
            yield Snapshot(s, sa["key"][s], int(sa["run"][s]), int(sa["target"][s]),
                           int(sa["snapshot"][s]), int(sa["t0"][s]), int(sa["t1"][s]),
                           self.start[a:b], self.end[a:b], self.nr_accesses[a:b],
                           self.age[a:b], self.filled[a:b])


@dataclass
class Snapshot:
    """One snapshot: its index into ``source.snaps``, identity, window and regions."""

    snap: int
    key: Any
    run: int
    target: int
    snapshot: int
    t0: int
    t1: int
    start: np.ndarray
    end: np.ndarray
    nr_accesses: np.ndarray
    age: np.ndarray
    filled: np.ndarray


# ----------------------------------------------------------------------------------
# the source
# ----------------------------------------------------------------------------------
@dataclass
class HistorySource:
    """A region history opened for streaming (see :func:`open_history`).

    Attributes
    ----------
    name, path : what to call it; the Parquet file read (None in memory)
    meta : the source's metadata (trace directory ``meta.json`` + Parquet metadata
        under ``"parquet"``, or the table's own)
    sample_us, aggr_us : the intervals when known (else None)
    aggr_ns_est : the aggregation interval used for windows (ns)
    aggr_ns_measured : median spacing of consecutive snapshots (ns)
    sparse : rows with nr_accesses 0 were left out (see the module docstring)
    coverage : {target: (snapshot_from array, [ranges (n, 2)])} for a sparse source
    coverage_origin : "metadata", "rows" (an older file: the union of its rows) or None
    key_column : "pid" or "target"
    snaps : DataFrame, one row per snapshot sorted by (key, run, snapshot): key, run,
        target, pid, snapshot, t0, t1, rows (in the file), nr_max (largest nr_accesses
        of its rows), synthetic (no row in the file: an idle snapshot of a sparse
        history), order (position in the stream)
    rows : rows in the file
    streamed : read row group by row group (False: held in memory)
    """

    name: str
    path: str | None
    meta: dict
    sample_us: float | None
    aggr_us: float | None
    aggr_ns_est: float
    aggr_ns_measured: float
    sparse: bool
    coverage: dict | None
    coverage_origin: str | None
    key_column: str
    snaps: pd.DataFrame
    rows: int
    streamed: bool
    batch_rows: int = BATCH_ROWS
    _rows: Any = field(default=None, repr=False)
    _snap_arrays: dict = field(default_factory=dict, repr=False)
    _plan: np.ndarray | None = field(default=None, repr=False)  # snap indices, stream order
    _first_row: np.ndarray | None = field(default=None, repr=False)  # per snap (-1: none)
    _cache: dict = field(default_factory=dict, repr=False)

    # -- whole-run facts ------------------------------------------------------------
    @property
    def keys(self) -> list:
        return sorted(pd.unique(self.snaps["key"]).tolist())

    @property
    def n_snapshots(self) -> int:
        return len(self.snaps)

    @property
    def t_start(self) -> int:
        return int(self.snaps["t0"].min())

    @property
    def t_end(self) -> int:
        return int(self.snaps["t1"].max())

    @property
    def nr_accesses_max(self) -> float:
        """The largest nr_accesses of any row."""
        return float(self.snaps["nr_max"].max()) if len(self.snaps) else 0.0

    @property
    def max_nr_accesses(self) -> float:
        """aggr/sample when the intervals are known, else the largest nr_accesses seen."""
        if self.sample_us and self.aggr_us:
            return float(self.aggr_us) / float(self.sample_us)
        m = self.nr_accesses_max
        return m if m > 0 else 1.0

    @property
    def max_source(self) -> str:
        return "intervals" if (self.sample_us and self.aggr_us) else "observed"

    def coverage_at(self, target: int, snapshot: int) -> np.ndarray | None:
        """The ranges a sparse source's monitor covered for ``target`` at ``snapshot``
        ((n, 2) uint64), or None when the source is dense or has no entry then."""
        if not self.sparse or not self.coverage or target not in self.coverage:
            return None
        froms, rngs = self.coverage[target]
        i = int(np.searchsorted(froms, snapshot, side="right")) - 1
        return rngs[i] if i >= 0 else None

    def address_unit(self) -> int:
        """4096 when every region boundary (and coverage bound) is page aligned, else 1."""
        if "unit" not in self._cache:
            unit = 4096
            page = np.uint64(4096)
            for _, d in self._rows.chunks(["start", "end"]):
                if (d["start"] % page).any() or (d["end"] % page).any():
                    unit = 1
                    break
            if unit == 4096 and self.sparse and self.coverage:
                for _, rngs in self.coverage.values():
                    if any((r % page).any() for r in rngs):
                        unit = 1
            self._cache["unit"] = unit
        return self._cache["unit"]

    # -- streaming ------------------------------------------------------------------
    def iter_batches(self, *, key=None, fill_sparse: bool = True,
                     batch_rows: int | None = None) -> Iterator[Batch]:
        """Whole snapshots in stream order, about ``batch_rows`` rows at a time.

        ``key``: only the snapshots of that address space (row groups holding none
        of its rows are skipped unread). ``fill_sparse``: give a sparse source's
        snapshots their idle bytes (nr_accesses 0, age NaN, ``filled``) and its idle
        snapshots back, so that they read as the dense history would.
        """
        limit = int(batch_rows or self.batch_rows)
        sa = self._snap_arrays
        plan = self._plan
        if key is not None:
            plan = plan[sa["key"][plan] == key]
        if not fill_sparse:
            plan = plan[~sa["synthetic"][plan]]
        if len(plan) == 0:
            return
        nrows = sa["rows"][plan]
        # cut the plan into batches of whole snapshots of about `limit` rows
        cum = np.cumsum(nrows)
        bounds = [0]
        base = 0
        while bounds[-1] < len(plan):
            i = int(np.searchsorted(cum, base + limit, side="right"))
            i = max(i, bounds[-1] + 1)
            bounds.append(min(i, len(plan)))
            base = int(cum[bounds[-1] - 1])
        cur = _Cursor(self._rows, _ROWS)
        where = self.path or self.name
        for b0, b1 in zip(bounds[:-1], bounds[1:]):
            snaps = plan[b0:b1]
            rows = sa["rows"][snaps]
            have = rows > 0
            first = self._first_row[snaps[have]]
            ranges = _merge_ranges(first, first + rows[have])
            d = cur.read(ranges)
            offsets = np.concatenate([[0], np.cumsum(rows)]).astype(np.int64)
            batch = Batch(self, snaps, offsets, d["start"], d["end"], d["nr_accesses"],
                          d["age"], d["time_ns"], np.zeros(len(d["start"]), bool))
            _check_batch(batch, where, self._first_row[snaps])
            if fill_sparse and self.sparse:
                batch = self._fill(batch, where)
            yield batch

    def iter_snapshots(self, *, key=None, fill_sparse: bool = True) -> Iterator[Snapshot]:
        """One :class:`Snapshot` at a time, in stream order (see :meth:`iter_batches`)."""
        for b in self.iter_batches(key=key, fill_sparse=fill_sparse):
            yield from b.snapshots()

    def _fill(self, b: Batch, where: str) -> Batch:
        sa = self._snap_arrays
        tgt = sa["target"][b.snap]
        snapno = sa["snapshot"][b.snap]
        covs = [self.coverage_at(int(t), int(s)) for t, s in zip(tgt.tolist(), snapno.tolist())]
        parts = []  # (local snapshot positions, rows of those snapshots after filling)
        k = 0
        S = len(b.snap)
        while k < S:
            c = covs[k]
            j = k + 1
            while j < S and covs[j] is c:
                j += 1
            parts.append(_fill_group(b, k, j, c, where, sa, b.snap))
            k = j
        start = np.concatenate([p[0] for p in parts])
        end = np.concatenate([p[1] for p in parts])
        nr = np.concatenate([p[2] for p in parts])
        age = np.concatenate([p[3] for p in parts])
        tns = np.concatenate([p[4] for p in parts])
        filled = np.concatenate([p[5] for p in parts])
        counts = np.concatenate([p[6] for p in parts])
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return Batch(self, b.snap, offsets, start, end, nr, age, tns, filled)

    def to_history(self, *, fill_sparse: bool = True):
        """The whole history in memory, as :class:`tracedamon.export.grid.History`."""
        from .grid import History

        parts = list(self.iter_batches(fill_sparse=fill_sparse))
        sa = self._snap_arrays
        if parts:
            snap = np.concatenate([p.row_snap for p in parts])
            cols = {c: np.concatenate([getattr(p, c) for p in parts])
                    for c in ("start", "end", "nr_accesses", "age", "time_ns")}
        else:
            snap = np.zeros(0, np.int64)
            cols = {c: np.zeros(0, _dtype(c)) for c in ("start", "end", "nr_accesses", "age",
                                                        "time_ns")}
        o = np.lexsort((cols["start"], snap))
        snap = snap[o]
        df = pd.DataFrame({
            "run": sa["run"][snap],
            "target": sa["target"][snap],
            "snapshot": sa["snapshot"][snap],
            "time_ns": cols["time_ns"][o],
            "start": cols["start"][o],
            "end": cols["end"][o],
            "nr_accesses": cols["nr_accesses"][o],
            "age": cols["age"][o],
        })
        if self.key_column == "pid":
            df["pid"] = sa["pid"][snap]
        else:
            pid = pd.array(sa["pid"][snap], dtype="Int64")
            pid[~sa["pid_ok"][snap]] = pd.NA
            df["pid"] = pid
        df["key"] = sa["key"][snap]
        df["snap"] = snap
        snaps = self.snaps[["key", "run", "target", "snapshot", "t0", "t1"]].reset_index(
            drop=True)
        return History(df, snaps, self.name, self.meta, self.sample_us, self.aggr_us,
                       self.aggr_ns_est, self.aggr_ns_measured, source=self)


def _merge_ranges(a: np.ndarray, b: np.ndarray) -> list[tuple[int, int]]:
    """Row ranges [a_i, b_i) (ascending, disjoint) with touching ones joined."""
    if len(a) == 0:
        return []
    join = np.ones(len(a), bool)
    join[1:] = a[1:] != b[:-1]
    idx = np.flatnonzero(join)
    ends = np.concatenate([idx[1:], [len(a)]]) - 1
    return list(zip(a[idx].tolist(), b[ends].tolist()))


def _check_batch(b: Batch, where: str, first_rows: np.ndarray) -> None:
    """Regions sorted by start (sorting a snapshot whose rows are not), non-empty and
    disjoint within each snapshot."""
    n = len(b.start)
    if n == 0:
        return
    bad = np.flatnonzero(b.end <= b.start)
    row0 = np.repeat(first_rows, np.diff(b.offsets))
    local = np.arange(n) - np.repeat(b.offsets[:-1], np.diff(b.offsets))
    if len(bad):
        i = int(bad[0])
        raise TraceFormatError(where, f"row {int(row0[i] + local[i])}: region end "
                                      f"{int(b.end[i])} <= start {int(b.start[i])}")
    lid = b.row_local
    same = lid[1:] == lid[:-1]
    if (same & (b.start[1:] < b.start[:-1])).any():
        o = np.lexsort((b.start, lid))
        for c in ("start", "end", "nr_accesses", "age", "time_ns"):
            setattr(b, c, getattr(b, c)[o])
        row0, local = row0[o], local[o]
    over = np.flatnonzero(same & (b.start[1:] < b.end[:-1]))
    if len(over):
        i = int(over[0]) + 1
        sa = b.source._snap_arrays
        s = b.snap[lid[i]]
        raise TraceFormatError(
            where,
            f"regions overlap within snapshot {int(sa['snapshot'][s])} of target "
            f"{int(sa['target'][s])} (region {int(b.start[i])}-{int(b.end[i])} at row "
            f"{int(row0[i] + local[i])} starts before {int(b.end[i - 1])})")


def _fill_group(b: Batch, k0: int, k1: int, cov, where, sa, snaps):
    """Rows of the batch's snapshots k0..k1-1 (sharing coverage ``cov``) with the idle
    bytes of ``cov`` put in as nr_accesses 0 rows."""
    r0, r1 = int(b.offsets[k0]), int(b.offsets[k1])
    st, en = b.start[r0:r1], b.end[r0:r1]
    counts_in = np.diff(b.offsets[k0:k1 + 1])
    S = k1 - k0
    lid = np.repeat(np.arange(S), counts_in)
    if cov is None or len(cov) == 0:
        if r1 > r0:
            s = snaps[k0 + int(lid[0])]
            raise TraceFormatError(
                where, f"target {int(sa['target'][s])} has regions in snapshot "
                f"{int(sa['snapshot'][s])}, outside the coverage in the file's metadata")
        return (st, en, b.nr_accesses[r0:r1], b.age[r0:r1], b.time_ns[r0:r1],
                b.filled[r0:r1], counts_in)
    cs, ce = cov[:, 0], cov[:, 1]
    m = len(cs)
    j = np.searchsorted(cs, st, side="right") - 1
    ok = (j >= 0) & (en <= ce[np.maximum(j, 0)])
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        s = snaps[k0 + int(lid[i])]
        raise TraceFormatError(
            where, f"region {int(st[i])}-{int(en[i])} of target {int(sa['target'][s])} in "
            f"snapshot {int(sa['snapshot'][s])} lies outside the coverage in the file's "
            "metadata")
    cell = lid.astype(np.int64) * m + j
    n = len(st)
    firstc = np.ones(n, bool)
    firstc[1:] = cell[1:] != cell[:-1]
    lastc = np.ones(n, bool)
    lastc[:-1] = cell[1:] != cell[:-1]
    prev_end = np.empty(n, np.uint64)
    if n:
        prev_end[1:] = en[:-1]
        prev_end[firstc] = cs[j[firstc]]
    g_s = [prev_end, en[lastc]]
    g_e = [st, ce[j[lastc]]]
    g_l = [lid, lid[lastc]]
    empty = np.ones(S * m, bool)
    empty[cell] = False
    ec = np.flatnonzero(empty)
    g_s.append(cs[ec % m])
    g_e.append(ce[ec % m])
    g_l.append(ec // m)
    gs, ge, gl = np.concatenate(g_s), np.concatenate(g_e), np.concatenate(g_l)
    keep = ge > gs
    gs, ge, gl = gs[keep], ge[keep], gl[keep]
    t1 = sa["t1"][snaps[k0:k1]]
    start = np.concatenate([st, gs])
    end = np.concatenate([en, ge])
    loc = np.concatenate([lid, gl])
    o = np.lexsort((start, loc))
    nr = np.concatenate([b.nr_accesses[r0:r1], np.zeros(len(gs))])[o]
    age = np.concatenate([b.age[r0:r1], np.full(len(gs), np.nan)])[o]
    tns = np.concatenate([b.time_ns[r0:r1], t1[gl]])[o]
    filled = np.concatenate([b.filled[r0:r1], np.ones(len(gs), bool)])[o]
    counts = np.bincount(loc, minlength=S)
    return start[o], end[o], nr, age, tns, filled, counts


# ----------------------------------------------------------------------------------
# opening
# ----------------------------------------------------------------------------------
def _source_rows(src, batch_rows: int):
    """(row source, metadata, name, path) of any accepted source."""
    from .grid import History

    if isinstance(src, History):
        raise TypeError("already a History")
    if isinstance(src, HistorySource):
        raise TypeError("already a HistorySource")
    if isinstance(src, pd.DataFrame):
        cols = {}
        for c in _ALL:
            if c in src.columns:
                try:
                    cols[c] = pa.array(src[c], from_pandas=True)
                except (pa.ArrowException, TypeError, ValueError) as e:
                    raise TraceFormatError("frame", f"column {c}: unusable values ({e})") \
                        from None
        t = pa.table(cols) if cols else pa.table({"_": pa.nulls(len(src))})
        return t, dict(src.attrs.get("tracedamon", {})), "frame", None
    if (hasattr(src, "table") and isinstance(getattr(src, "table"), pa.Table)
            and isinstance(getattr(src, "metadata", None), dict)):
        # a replay result (engine.replay.RegionHistory): its table and its metadata
        return src.table, {"replay": src.metadata}, "replay", None
    if isinstance(src, (pa.Table, pa.RecordBatch)):
        t = src if isinstance(src, pa.Table) else pa.Table.from_batches([src])
        meta = {}
        raw = (t.schema.metadata or {}).get(b"tracedamon")
        if raw:
            try:
                meta = json.loads(raw)
            except ValueError:
                meta = {}
        return t, meta, "table", None
    from ..ingest.writer import read_parquet_metadata
    from ..trace import Trace, open_trace

    tr = src if isinstance(src, Trace) else open_trace(src)
    p = tr.path
    if p.is_file():
        f = p
    else:
        if not tr.has("regions"):
            raise InputError(f"{p}: holds no regions table (replay it, or ingest a DAMON trace)")
        f = tr.file("regions")
    rows = _ParquetRows(str(f), batch_rows)
    meta = dict(tr.meta)
    try:
        meta["parquet"] = read_parquet_metadata(f)
    except Exception:
        pass
    return rows, meta, p.name, str(f)


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
    acc: dict[str, list] = {c: [] for c in ("run", "target", "pid", "pid_ok", "snapshot",
                                            "t1", "rows", "nr_max", "first")}
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
        g = {"run": d["run"][idx], "target": d["target"][idx], "pid": d["pid"][idx],
             "pid_ok": d["pid_ok"][idx], "snapshot": d["snapshot"][idx], "t1": t1,
             "rows": cnt, "nr_max": nrm, "first": row0 + idx}
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
    return {c: (np.concatenate(v) if v else np.zeros(0, _dtype(c) if c != "pid_ok" else bool))
            for c, v in acc.items()}


def open_history(src, *, name: str | None = None, sample_us: float | None = None,
                 aggr_us: float | None = None, batch_rows: int = BATCH_ROWS) -> HistorySource:
    """Open a region history for streaming: a trace directory holding a ``regions``
    table, a regions ``.parquet`` file, a replay result, an Arrow table or a DataFrame
    with the REGIONS columns. Reads the narrow columns once (see the module docstring);
    the rows are read by :meth:`HistorySource.iter_batches`.

    ``sample_us``/``aggr_us`` override the intervals of the source's metadata.
    """
    rows, meta, nm, path = _source_rows(src, batch_rows)
    where = path or nm
    names = rows.names if isinstance(rows, _ParquetRows) else set(rows.column_names)
    missing = [c for c in _REQUIRED if c not in names]
    if missing:
        raise TraceFormatError(where, f"not a region history: missing column(s) "
                                      f"{', '.join(missing)}")
    if isinstance(rows, pa.Table):
        rows = _sorted_memory(_table_arrays(rows, where), rows.num_rows, batch_rows)
    if rows.num_rows == 0:
        raise InputError(f"{where}: the region history is empty")
    g = _scan(rows, where, None if isinstance(rows, _ParquetRows) else rows.key_col)
    all_pid = bool(g["pid_ok"].all())
    key = g["pid"] if all_pid else g["target"]
    streamed = isinstance(rows, _ParquetRows)
    if streamed:
        gdf = pd.DataFrame({"key": key, "run": g["run"], "snapshot": g["snapshot"],
                            "t1": g["t1"]})
        dup = gdf.duplicated(["key", "run", "snapshot"]).any()
        same = key[1:] == key[:-1]
        # per key, time must not go backwards in stream order
        order_ok = True
        if not dup:
            o = np.argsort(key, kind="stable")
            ks, ts = key[o], g["t1"][o]
            order_ok = not ((ks[1:] == ks[:-1]) & (ts[1:] < ts[:-1])).any()
        del same
        if dup or not order_ok:
            warnings.warn(
                f"{where}: rows are not grouped by (run, target, snapshot) in time order; "
                f"reading all {rows.num_rows:,} rows into memory", HistoryWarning, stacklevel=2)
            import pyarrow.parquet as pq

            try:
                t = pq.read_table(where, columns=[c for c in _ALL if c in names])
            except Exception as e:
                raise TraceFormatError(where, f"not a readable Parquet table ({e})") from None
            rows = _sorted_memory(_table_arrays(t, where), t.num_rows, batch_rows)
            del t
            streamed = False
            g = _scan(rows, where, rows.key_col)
            key = g["pid"] if all_pid else g["target"]
    rmeta = replay_meta(meta)
    s_us, a_us = intervals_from_meta(meta)
    if sample_us:
        s_us = float(sample_us)
    if aggr_us:
        a_us = float(aggr_us)

    sparse = bool(rmeta.get("sparse", rmeta.get("accessed_only", False)))
    coverage = None
    origin = None
    if sparse:
        if "coverage" in rmeta:
            coverage = _parse_coverage(rmeta["coverage"], where)
            origin = "metadata"
        else:
            coverage = _rows_coverage(rows, g)
            origin = "rows"
            warnings.warn(
                f"{where}: holds only regions with accesses and no record of what the "
                "monitor covered (written by an older tracedamon): idle bytes outside every "
                "region ever accessed are unknown and read as not monitored",
                HistoryWarning, stacklevel=2)

    snaps = pd.DataFrame({
        "key": key, "run": g["run"], "target": g["target"], "pid": g["pid"],
        "pid_ok": g["pid_ok"], "snapshot": g["snapshot"], "t1": g["t1"], "rows": g["rows"],
        "nr_max": g["nr_max"], "first": g["first"], "synthetic": np.zeros(len(key), bool),
        "order": np.arange(len(key), dtype=np.float64)})
    if sparse:
        snaps = _add_idle_snapshots(snaps, coverage, rmeta, meta, all_pid, where)
    snaps = snaps.sort_values(["key", "run", "snapshot"], kind="stable").reset_index(drop=True)
    t0, aggr_ns, measured = snapshot_windows(snaps["key"].to_numpy(), snaps["run"].to_numpy(),
                                             snaps["t1"].to_numpy(np.int64), a_us)
    snaps.insert(snaps.columns.get_loc("t1"), "t0", t0)
    plan = np.argsort(snaps["order"].to_numpy(), kind="stable")
    snaps["order"] = np.argsort(plan)
    sa = {c: snaps[c].to_numpy() for c in snaps.columns}
    hs = HistorySource(
        name=name or nm, path=path, meta=meta,
        sample_us=s_us if (s_us and a_us) else None,
        aggr_us=a_us if (s_us and a_us) else None,
        aggr_ns_est=aggr_ns, aggr_ns_measured=measured, sparse=sparse, coverage=coverage,
        coverage_origin=origin, key_column="pid" if all_pid else "target",
        snaps=snaps.drop(columns=["first"]), rows=int(rows.num_rows), streamed=streamed,
        batch_rows=batch_rows, _rows=rows, _snap_arrays=sa, _plan=plan,
        _first_row=sa["first"])
    return hs


def _rows_coverage(rows, g) -> dict:
    """An older sparse file's coverage: the union of each target's rows over the run."""
    per: dict[int, list] = {}
    for _, d in rows.chunks(["target", "start", "end"]):
        for t in np.unique(d["target"]).tolist():
            m = d["target"] == t
            u = _merge(d["start"][m], d["end"][m])
            prev = per.get(t)
            if prev is not None:
                u = _merge(np.concatenate([prev[:, 0], u[:, 0]]),
                           np.concatenate([prev[:, 1], u[:, 1]]))
            per[t] = u
    out = {}
    for t, u in per.items():
        first = int(g["snapshot"][g["target"] == t].min())
        out[int(t)] = (np.array([min(first, 0)], np.int64), [u])
    return out


def _snapshot_times(present: dict, wanted: np.ndarray, rmeta: dict) -> dict:
    """Times of snapshot numbers ``wanted`` of a replay whose snapshots ``present``
    ({number: time_ns}) are known: the replay's own grid (t0 + (n + 1) × aggregation)
    when every present snapshot lies on it, else interpolated between neighbours."""
    cfg = rmeta.get("config") or {}
    t0 = rmeta.get("t0_ns")
    s_us, a_us = cfg.get("sample_us"), cfg.get("aggr_us")
    known_n = np.array(sorted(present), np.int64)
    known_t = np.array([present[k] for k in known_n.tolist()], np.int64)
    if (isinstance(t0, int) and s_us and a_us and not rmeta.get("tune_events")
            and int(a_us) >= int(s_us) > 0):
        step = (int(a_us) // int(s_us)) * int(s_us) * 1000
        if len(known_n) == 0 or (t0 + (known_n + 1) * step == known_t).all():
            return {int(k): int(t0 + (k + 1) * step) for k in wanted.tolist()}
    if len(known_n) == 0:
        return {}
    if len(known_n) == 1:
        step = float(a_us) * 1000 if a_us else 0.0
        return {int(k): int(round(known_t[0] + (k - known_n[0]) * step)) for k in wanted.tolist()}
    t = np.interp(wanted, known_n, known_t)
    # beyond either end: the mean spacing
    slope = (known_t[-1] - known_t[0]) / (known_n[-1] - known_n[0])
    t = np.where(wanted < known_n[0], known_t[0] + (wanted - known_n[0]) * slope, t)
    t = np.where(wanted > known_n[-1], known_t[-1] + (wanted - known_n[-1]) * slope, t)
    return {int(k): int(round(v)) for k, v in zip(wanted.tolist(), t.tolist())}


def _add_idle_snapshots(snaps: pd.DataFrame, coverage: dict, rmeta: dict, meta: dict,
                        all_pid: bool, where: str) -> pd.DataFrame:
    """A sparse history's snapshots with no row (nothing accessed), put back: for each
    run and target, every snapshot number of the run at which the target's coverage is
    not empty."""
    if not coverage:
        return snaps
    add = []
    tmeta = {int(t["target"]): t.get("pid") for t in rmeta.get("targets") or []
             if isinstance(t, dict) and isinstance(t.get("target"), int)}
    n_replay = rmeta.get("snapshots")
    for run, gr in snaps.groupby("run", sort=True):
        present = dict(zip(gr["snapshot"].tolist(), gr["t1"].tolist()))
        lo = int(gr["snapshot"].min())
        hi = int(gr["snapshot"].max())
        if isinstance(n_replay, int) and len(snaps["run"].unique()) == 1:
            lo, hi = 0, max(hi, n_replay - 1)
        numbers = np.arange(min(lo, 0) if isinstance(n_replay, int) else lo, hi + 1)
        times = None
        for t, (froms, rngs) in coverage.items():
            have = set(gr.loc[gr["target"] == t, "snapshot"].tolist())
            i = np.searchsorted(froms, numbers, side="right") - 1
            ok = i >= 0
            nonempty = np.array([len(rngs[k]) > 0 for k in range(len(rngs))], bool)
            ok[ok] &= nonempty[i[ok]]
            missing = [k for k in numbers[ok].tolist() if k not in have]
            if not missing:
                continue
            if times is None:
                times = _snapshot_times(present, numbers, rmeta)
            rows_t = gr[gr["target"] == t]
            if len(rows_t):
                pid, pid_ok = int(rows_t["pid"].iat[0]), bool(rows_t["pid_ok"].iat[0])
            else:
                p = tmeta.get(t)
                pid, pid_ok = (int(p), True) if isinstance(p, int) else (0, False)
            if all_pid and not pid_ok:
                warnings.warn(f"{where}: target {t} has no accessed region and no known pid: "
                              "its idle snapshots are left out", HistoryWarning, stacklevel=3)
                continue
            key = pid if all_pid else t
            # stream position: after the last snapshot of this key (else of any key) that
            # ends no later
            same = snaps[(snaps["run"] == run) & (snaps["key"] == key)] if all_pid else \
                snaps[(snaps["run"] == run) & (snaps["target"] == t)]
            ref = same if len(same) else snaps[snaps["run"] == run]
            rt = ref["t1"].to_numpy()
            ro = ref["order"].to_numpy()
            so = np.argsort(rt, kind="stable")
            for k in missing:
                tk = times.get(k)
                if tk is None:
                    continue
                i = int(np.searchsorted(rt[so], tk, side="right")) - 1
                pos = (ro[so][i] + 0.5 + k * 1e-9) if i >= 0 else (ro.min() - 0.5 + k * 1e-9)
                add.append({"key": key, "run": run, "target": t, "pid": pid, "pid_ok": pid_ok,
                            "snapshot": k, "t1": tk, "rows": 0, "nr_max": 0.0, "first": -1,
                            "synthetic": True, "order": pos})
    if not add:
        return snaps
    return pd.concat([snaps, pd.DataFrame(add)], ignore_index=True)


__all__ = ["open_history", "HistorySource", "Batch", "Snapshot", "HistoryWarning",
           "snapshot_windows", "intervals_from_meta", "replay_meta", "BATCH_ROWS"]
