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

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa

from ..errors import InputError, TraceFormatError
from ..store.parquet import read_metadata, read_table
from ..store.trace import Trace, open_trace
from ..units import PAGE_SIZE
from .history_frame import HistoryFrame
from .history_rows import (  # noqa: F401  (BATCH_ROWS, HistoryWarning: part of this API)
    _ALL,
    _REQUIRED,
    _ROWS,
    BATCH_ROWS,
    HistoryWarning,
    _Cursor,
    _dtype,
    _merge_ranges,
    _ParquetRows,
    _scan,
    _sorted_memory,
    _table_arrays,
)
from .history_sparse import (
    _add_idle_snapshots,
    _fill_group,
    _parse_coverage,
    _rows_coverage,
)


# ----------------------------------------------------------------------------------
# metadata
# ----------------------------------------------------------------------------------
def find_key(d: Any, names: tuple[str, ...], depth: int = 0):
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
            r = find_key(v, names, depth + 1)
            if r is not None:
                return r
    return None


def intervals_from_meta(meta: dict) -> tuple[float | None, float | None]:
    """(sample_us, aggr_us) recorded in a source's metadata, if any."""
    s = find_key(meta, ("sample_us", "sample_interval_us"))
    a = find_key(meta, ("aggr_us", "aggr_interval_us"))
    if s is not None and a is not None and s > 0 and a > 0:
        return float(s), float(a)
    return None, None


def replay_meta(meta: dict) -> dict:
    """The ``replay`` object of a source's metadata ({} when it is not a replay)."""
    for d in (meta, meta.get("parquet") if isinstance(meta, dict) else None):
        if isinstance(d, dict) and isinstance(d.get("replay"), dict):
            return d["replay"]
    return {}


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
    first_len = np.where(np.isfinite(mean_gap) & (mean_gap > 0), np.ceil(mean_gap), round(aggr_ns))
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
            yield Snapshot(
                s,
                sa["key"][s],
                int(sa["run"][s]),
                int(sa["target"][s]),
                int(sa["snapshot"][s]),
                int(sa["t0"][s]),
                int(sa["t1"][s]),
                self.start[a:b],
                self.end[a:b],
                self.nr_accesses[a:b],
                self.age[a:b],
                self.filled[a:b],
            )


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
        """PAGE_SIZE when every region boundary (and coverage bound) is page aligned, else 1."""
        if "unit" not in self._cache:
            unit = PAGE_SIZE
            page = np.uint64(PAGE_SIZE)
            for _, d in self._rows.chunks(["start", "end"]):
                if (d["start"] % page).any() or (d["end"] % page).any():
                    unit = 1
                    break
            if unit == PAGE_SIZE and self.sparse and self.coverage:
                for _, rngs in self.coverage.values():
                    if any((r % page).any() for r in rngs):
                        unit = 1
            self._cache["unit"] = unit
        return self._cache["unit"]

    # -- streaming ------------------------------------------------------------------
    def iter_batches(
        self,
        *,
        key=None,
        fill_sparse: bool = True,
        batch_rows: int | None = None,
        age: bool = True,
        time_ns: bool = True,
    ) -> Iterator[Batch]:
        """Whole snapshots in stream order, about ``batch_rows`` rows at a time.

        ``key``: only the snapshots of that address space (row groups holding none
        of its rows are skipped unread). ``fill_sparse``: give a sparse source's
        snapshots their idle bytes (nr_accesses 0, age NaN, ``filled``) and its idle
        snapshots back, so that they read as the dense history would. ``age=False`` /
        ``time_ns=False``: do not read those columns (the batch's ``age`` is then NaN,
        its ``time_ns`` the snapshots' ends).
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
        cur = _Cursor(
            self._rows, [c for c in _ROWS if (c != "age" or age) and (c != "time_ns" or time_ns)]
        )
        where = self.path or self.name
        for b0, b1 in zip(bounds[:-1], bounds[1:]):
            snaps = plan[b0:b1]
            rows = sa["rows"][snaps]
            have = rows > 0
            first = self._first_row[snaps[have]]
            ranges = _merge_ranges(first, first + rows[have])
            d = cur.read(ranges)
            offsets = np.concatenate([[0], np.cumsum(rows)]).astype(np.int64)
            if not age:
                d["age"] = np.full(len(d["start"]), np.nan)
            if not time_ns:
                d["time_ns"] = np.repeat(sa["t1"][snaps], rows)
            batch = Batch(
                self,
                snaps,
                offsets,
                d["start"],
                d["end"],
                d["nr_accesses"],
                d["age"],
                d["time_ns"],
                np.zeros(len(d["start"]), bool),
            )
            _check_batch(batch, where, self._first_row[snaps])
            if fill_sparse and self.sparse:
                batch = self._fill(batch, where)
            yield batch

    def iter_snapshots(
        self, *, key=None, fill_sparse: bool = True, age: bool = True, time_ns: bool = True
    ) -> Iterator[Snapshot]:
        """One :class:`Snapshot` at a time, in stream order (see :meth:`iter_batches`)."""
        for b in self.iter_batches(key=key, fill_sparse=fill_sparse, age=age, time_ns=time_ns):
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
        """The whole history in memory, as :class:`tracedamon.export.history_frame.HistoryFrame`."""
        parts = list(self.iter_batches(fill_sparse=fill_sparse))
        sa = self._snap_arrays
        if parts:
            snap = np.concatenate([p.row_snap for p in parts])
            cols = {
                c: np.concatenate([getattr(p, c) for p in parts])
                for c in ("start", "end", "nr_accesses", "age", "time_ns")
            }
        else:
            snap = np.zeros(0, np.int64)
            cols = {
                c: np.zeros(0, _dtype(c)) for c in ("start", "end", "nr_accesses", "age", "time_ns")
            }
        o = np.lexsort((cols["start"], snap))
        snap = snap[o]
        df = pd.DataFrame(
            {
                "run": sa["run"][snap],
                "target": sa["target"][snap],
                "snapshot": sa["snapshot"][snap],
                "time_ns": cols["time_ns"][o],
                "start": cols["start"][o],
                "end": cols["end"][o],
                "nr_accesses": cols["nr_accesses"][o],
                "age": cols["age"][o],
            }
        )
        if self.key_column == "pid":
            df["pid"] = sa["pid"][snap]
        else:
            pid = pd.array(sa["pid"][snap], dtype="Int64")
            pid[~sa["pid_ok"][snap]] = pd.NA
            df["pid"] = pid
        df["key"] = sa["key"][snap]
        df["snap"] = snap
        snaps = self.snaps[["key", "run", "target", "snapshot", "t0", "t1"]].reset_index(drop=True)
        return HistoryFrame(
            df,
            snaps,
            self.name,
            self.meta,
            self.sample_us,
            self.aggr_us,
            self.aggr_ns_est,
            self.aggr_ns_measured,
            source=self,
        )


def _check_batch(b: Batch, where: str, first_rows: np.ndarray) -> None:
    """Regions sorted by start (sorting a snapshot whose rows are not), non-empty and
    disjoint within each snapshot."""
    n = len(b.start)
    if n == 0:
        return

    def row_of(i: int) -> int:  # the file row of batch row i (for messages)
        k = int(np.searchsorted(b.offsets, i, side="right")) - 1
        return int(first_rows[k]) + i - int(b.offsets[k])

    bad = np.flatnonzero(b.end <= b.start)
    if len(bad):
        i = int(bad[0])
        raise TraceFormatError(
            where, f"row {row_of(i)}: region end {int(b.end[i])} <= start {int(b.start[i])}"
        )
    starts = b.offsets[:-1][np.diff(b.offsets) > 0]
    same = np.ones(n, bool)
    same[starts] = False
    same = same[1:]
    perm = None
    if (same & (b.start[1:] < b.start[:-1])).any():
        perm = np.lexsort((b.start, b.row_local))
        for c in ("start", "end", "nr_accesses", "age", "time_ns"):
            setattr(b, c, getattr(b, c)[perm])
    over = np.flatnonzero(same & (b.start[1:] < b.end[:-1]))
    if len(over):
        i = int(over[0]) + 1
        sa = b.source._snap_arrays
        k = int(np.searchsorted(b.offsets, i, side="right")) - 1
        s = b.snap[k]
        row = row_of(int(perm[i]) if perm is not None else i)
        raise TraceFormatError(
            where,
            f"regions overlap within snapshot {int(sa['snapshot'][s])} of target "
            f"{int(sa['target'][s])} (region {int(b.start[i])}-{int(b.end[i])} at row "
            f"{row} starts before {int(b.end[i - 1])})",
        )


# ----------------------------------------------------------------------------------
# opening
# ----------------------------------------------------------------------------------
def _source_rows(src, batch_rows: int):
    """(row source, metadata, name, path) of any accepted source."""
    if isinstance(src, HistorySource):
        raise TypeError("already a HistorySource")
    name = "frame"
    if isinstance(src, HistoryFrame):  # one built by hand (else open_history took its source)
        meta, name = src.meta, src.name
        src = src.df.copy()
        src.attrs["tracedamon"] = meta
    if isinstance(src, pd.DataFrame):
        cols = {}
        for c in _ALL:
            if c in src.columns:
                try:
                    cols[c] = pa.array(src[c], from_pandas=True)
                except (pa.ArrowException, TypeError, ValueError) as e:
                    raise TraceFormatError("frame", f"column {c}: unusable values ({e})") from None
        t = pa.table(cols) if cols else pa.table({"_": pa.nulls(len(src))})
        return t, dict(src.attrs.get("tracedamon", {})), name, None
    if (
        hasattr(src, "table")
        and isinstance(getattr(src, "table"), pa.Table)
        and isinstance(getattr(src, "metadata", None), dict)
    ):
        # a replay result (engine.replay.RegionHistory): its table and its metadata
        return src.table, {"replay": src.metadata}, "replay", None
    if isinstance(src, (pa.Table, pa.RecordBatch)):
        t = src if isinstance(src, pa.Table) else pa.Table.from_batches([src])
        try:
            meta = read_metadata(t.schema) or {}
        except ValueError:
            meta = {}
        return t, meta, "table", None
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
        meta["parquet"] = read_metadata(f) or {}
    except Exception:
        pass
    return rows, meta, p.name, str(f)


def open_history(
    src,
    *,
    name: str | None = None,
    sample_us: float | None = None,
    aggr_us: float | None = None,
    batch_rows: int = BATCH_ROWS,
) -> HistorySource:
    """Open a region history for streaming: a trace directory holding a ``regions``
    table, a regions ``.parquet`` file, a replay result, an Arrow table or a DataFrame
    with the REGIONS columns. Reads the narrow columns once (see the module docstring);
    the rows are read by :meth:`HistorySource.iter_batches`.

    ``sample_us``/``aggr_us`` override the intervals of the source's metadata.
    """
    if isinstance(src, HistoryFrame) and isinstance(src.source, HistorySource):
        return src.source
    rows, meta, nm, path = _source_rows(src, batch_rows)
    where = path or nm
    names = rows.names if isinstance(rows, _ParquetRows) else set(rows.column_names)
    missing = [c for c in _REQUIRED if c not in names]
    if missing:
        raise TraceFormatError(
            where, f"not a region history: missing column(s) {', '.join(missing)}"
        )
    if isinstance(rows, pa.Table):
        rows = _sorted_memory(_table_arrays(rows, where), rows.num_rows, batch_rows)
    if rows.num_rows == 0:
        raise InputError(f"{where}: the region history is empty")
    g = _scan(rows, where, None if isinstance(rows, _ParquetRows) else rows.key_col)
    all_pid = bool(g["pid_ok"].all())
    streamed = isinstance(rows, _ParquetRows)
    if streamed and not _in_stream_order(g["pid"] if all_pid else g["target"], g):
        rows, g = _read_whole(rows, names, where, batch_rows)
        streamed = False
    key = g["pid"] if all_pid else g["target"]
    rmeta = replay_meta(meta)
    s_us, a_us = intervals_from_meta(meta)
    if sample_us:
        s_us = float(sample_us)
    if aggr_us:
        a_us = float(aggr_us)

    sparse = bool(rmeta.get("sparse", rmeta.get("accessed_only", False)))
    coverage, origin = _sparse_coverage(rows, g, rmeta, where) if sparse else (None, None)
    snaps = _snapshot_table(key, g)
    if sparse:
        snaps = _add_idle_snapshots(snaps, coverage, rmeta, meta, all_pid, where)
    snaps = snaps.sort_values(["key", "run", "snapshot"], kind="stable").reset_index(drop=True)
    t0, aggr_ns, measured = snapshot_windows(
        snaps["key"].to_numpy(), snaps["run"].to_numpy(), snaps["t1"].to_numpy(np.int64), a_us
    )
    snaps.insert(snaps.columns.get_loc("t1"), "t0", t0)
    plan = np.argsort(snaps["order"].to_numpy(), kind="stable")
    snaps["order"] = np.argsort(plan)
    sa = {c: snaps[c].to_numpy() for c in snaps.columns}
    hs = HistorySource(
        name=name or nm,
        path=path,
        meta=meta,
        sample_us=s_us if (s_us and a_us) else None,
        aggr_us=a_us if (s_us and a_us) else None,
        aggr_ns_est=aggr_ns,
        aggr_ns_measured=measured,
        sparse=sparse,
        coverage=coverage,
        coverage_origin=origin,
        key_column="pid" if all_pid else "target",
        snaps=snaps.drop(columns=["first"]),
        rows=int(rows.num_rows),
        streamed=streamed,
        batch_rows=batch_rows,
        _rows=rows,
        _snap_arrays=sa,
        _plan=plan,
        _first_row=sa["first"],
    )
    return hs


def _in_stream_order(key: np.ndarray, g: dict) -> bool:
    """Whether a file's snapshots (``g``: one entry per snapshot in file order) can be
    streamed: no (key, run, snapshot) twice, and per key no time going backwards."""
    gdf = pd.DataFrame({"key": key, "run": g["run"], "snapshot": g["snapshot"], "t1": g["t1"]})
    if gdf.duplicated(["key", "run", "snapshot"]).any():
        return False
    o = np.argsort(key, kind="stable")
    ks, ts = key[o], g["t1"][o]
    return not ((ks[1:] == ks[:-1]) & (ts[1:] < ts[:-1])).any()


def _read_whole(rows: _ParquetRows, names, where: str, batch_rows: int):
    """A file whose rows are not in stream order, read into memory and sorted there
    (with a warning): the rows and their snapshots' scan."""
    warnings.warn(
        f"{where}: rows are not grouped by (run, target, snapshot) in time order; "
        f"reading all {rows.num_rows:,} rows into memory",
        HistoryWarning,
        stacklevel=3,
    )
    try:
        t = read_table(where, columns=[c for c in _ALL if c in names])
    except Exception as e:
        raise TraceFormatError(where, f"not a readable Parquet table ({e})") from None
    mem = _sorted_memory(_table_arrays(t, where), t.num_rows, batch_rows)
    del t
    return mem, _scan(mem, where, mem.key_col)


def _sparse_coverage(rows, g: dict, rmeta: dict, where: str):
    """A sparse history's coverage and where it comes from: its metadata, or (an older
    file, with a warning) the union of its rows."""
    if "coverage" in rmeta:
        return _parse_coverage(rmeta["coverage"], where), "metadata"
    warnings.warn(
        f"{where}: holds only regions with accesses and no record of what the "
        "monitor covered (written by an older tracedamon): idle bytes outside every "
        "region ever accessed are unknown and read as not monitored",
        HistoryWarning,
        stacklevel=3,
    )
    return _rows_coverage(rows, g), "rows"


def _snapshot_table(key: np.ndarray, g: dict) -> pd.DataFrame:
    """One row per snapshot of the scan ``g``, in file order (``order``)."""
    return pd.DataFrame(
        {
            "key": key,
            "run": g["run"],
            "target": g["target"],
            "pid": g["pid"],
            "pid_ok": g["pid_ok"],
            "snapshot": g["snapshot"],
            "t1": g["t1"],
            "rows": g["rows"],
            "nr_max": g["nr_max"],
            "first": g["first"],
            "synthetic": np.zeros(len(key), bool),
            "order": np.arange(len(key), dtype=np.float64),
        }
    )


def as_source(src, name: str | None = None) -> HistorySource:
    """``src`` if it is already a :class:`HistorySource`, else :func:`open_history` of it."""
    return src if isinstance(src, HistorySource) else open_history(src, name=name)


__all__ = [
    "open_history",
    "as_source",
    "HistorySource",
    "Batch",
    "Snapshot",
    "HistoryWarning",
    "snapshot_windows",
    "intervals_from_meta",
    "replay_meta",
    "BATCH_ROWS",
]
