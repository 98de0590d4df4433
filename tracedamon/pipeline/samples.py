"""The samples a replay reads: an in-memory table or a trace directory's samples file.

:class:`SampleSource` streams a trace directory's samples batch by batch (or holds an
in-memory table); :func:`scan_samples` makes the first pass over their narrow columns;
:func:`load_source` opens what a replay was given (a trace directory, a ``Trace``, or a
table) with the tables the replay needs beside the samples.  The rest turns Arrow
tables of samples into the engine's arrays (time_ns, target, addr): event selection,
virtual and physical addresses, perf-phys translation through pagemap snapshots.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..engine.address import engine_addresses
from ..errors import ConfigError, InputError
from ..store.parquet import ParquetReader
from ..store.trace import Trace, open_trace
from ..store.writer import file_provenance

SAMPLE_COLUMNS = ["time_ns", "pid", "event", "addr", "phys_addr"]
BATCH_ROWS = 1 << 17  # samples read per batch when streaming a trace directory
#: what an in-memory source keeps for the replays given it (SampleSource.remember): at
#: most MEMO_ENTRIES results (scans, start choices), of which at most MEMO_ARRAYS are the
#: (time_ns, target, addr) arrays of a selection (24 bytes per sample each)
MEMO_ENTRIES = 32
MEMO_ARRAYS = 2


def _np(col: pa.ChunkedArray, dtype) -> np.ndarray:
    return col.to_numpy(zero_copy_only=False).astype(dtype, copy=False)


def event_names(col: pa.ChunkedArray) -> list[str]:
    if pa.types.is_dictionary(col.type):
        names = set()
        for ch in col.chunks:
            used = pc.unique(ch.indices).drop_null().to_numpy(zero_copy_only=False)
            d = ch.dictionary.to_pylist()
            names.update(d[int(i)] for i in used)
        return sorted(n for n in names if n is not None)
    return sorted(x for x in pc.unique(col).to_pylist() if x is not None)


def choose_events(names: list[str], events: list[str] | None) -> list[str]:
    """The selected event names (all ``names`` when ``events`` is empty)."""
    if events:
        unknown = [e for e in events if e not in names]
        if unknown:
            raise ConfigError(
                f"event(s) {', '.join(unknown)} not in the trace; it holds: "
                f"{', '.join(names) or 'no samples'}"
            )
        return sorted(set(events))
    return names


def select(samples: pa.Table, events: list[str] | None) -> tuple[pa.Table, list[str]]:
    """Rows of the selected events (all when ``events`` is empty) with a time."""
    names = event_names(samples.column("event"))
    chosen = choose_events(names, events)
    return filter_events(samples, chosen, names), chosen


def filter_events(samples: pa.Table, chosen: list[str], names: list[str]) -> pa.Table:
    """Rows of the ``chosen`` events (of the trace's ``names``) that have a time."""
    ev = samples.column("event")
    if chosen != names:
        if pa.types.is_dictionary(ev.type):
            masks = []
            for ch in ev.chunks:
                keep = np.isin(
                    np.array(ch.dictionary.to_pylist(), dtype=object),
                    np.array(chosen, dtype=object),
                )
                idx = ch.indices.fill_null(0).to_numpy(zero_copy_only=False)
                m = keep[idx] if keep.size else np.zeros(len(ch), bool)
                masks.append(m & ~ch.is_null().to_numpy(zero_copy_only=False))
            mask = pa.array(np.concatenate(masks) if masks else np.zeros(0, bool))
        else:
            mask = pc.is_in(ev, value_set=pa.array(chosen, pa.string()))
        samples = samples.filter(mask)
    if samples.column("time_ns").null_count:
        samples = samples.filter(pc.is_valid(samples.column("time_ns")))
    return samples


def virtual_samples(samples: pa.Table, pids: list[int | None]) -> tuple[np.ndarray, ...]:
    """(time_ns, target, addr) from virtual addresses; target = index of the pid in
    ``pids`` (a ``None`` pid takes every process's samples)."""
    s = samples
    if s.column("addr").null_count:
        s = s.filter(pc.is_valid(s.column("addr")))
    t = _np(s.column("time_ns"), np.int64)
    pc_ = s.column("pid")
    pid = _np(pc_.fill_null(-1) if pc_.null_count else pc_, np.int64)
    addr, keep = engine_addresses(_np(s.column("addr"), np.uint64))
    if keep is not None:  # kernel addresses: no region can hold them
        t, pid = t[keep], pid[keep]
    return t, targets_of(pid, pids), addr


def targets_of(pid: np.ndarray, pids: list[int | None]) -> np.ndarray:
    tgt = np.full(pid.shape, -1, np.int64)
    for i, p in reversed(list(enumerate(pids))):
        if p is None:
            tgt[:] = i
        else:
            tgt[pid == p] = i
    return tgt


def physical_samples(samples: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """(time_ns, phys_addr) of the samples that carry a physical address."""
    s = samples.filter(pc.is_valid(samples.column("phys_addr")))
    t = _np(s.column("time_ns"), np.int64)
    a, keep = engine_addresses(_np(s.column("phys_addr"), np.uint64))
    if keep is not None:
        t = t[keep]
    keep = a != 0
    return t[keep], a[keep]


def translated_samples(samples: pa.Table, pids: list[int | None], translator):
    """perf-phys for vaddr targets: physical → (pid, virtual) through pagemap snapshots."""
    t, a = physical_samples(samples)
    if t.size == 0:
        raise InputError(
            "perf-phys access: no sample carries a physical address "
            "(record with `perf mem record --phys-data`)"
        )
    vpid, vaddr = translator.phys_to_virt(a.view(np.uint64), t)
    vpid = np.asarray(vpid, np.int64)
    ok = vpid >= 0
    vaddr, keep = engine_addresses(np.asarray(vaddr, np.uint64)[ok])
    t, vpid = t[ok], vpid[ok]
    if keep is not None:
        t, vpid = t[keep], vpid[keep]
    return t, targets_of(vpid, pids), vaddr, int((~ok).sum())


def as_table(obj) -> pa.Table | None:
    if obj is None:
        return None
    if isinstance(obj, pa.Table):
        return obj
    if isinstance(obj, pd.DataFrame):
        return pa.Table.from_pandas(obj, preserve_index=False)
    if isinstance(obj, dict):
        return pa.table(obj)
    raise InputError(f"cannot use a {type(obj).__name__} as a table")


class SampleSource:
    """The samples (SAMPLE_COLUMNS) of a replay: an in-memory table, or a trace
    directory's samples file read in batches of ``BATCH_ROWS`` rows, so that a replay
    holds a bounded number of samples whatever the trace's length.

    Samples that carry a thread id but no pid (``perf script`` text printed without
    the pid field shows the tid alone) get their pid from the trace's ``tasks`` rows
    (COMM/FORK: tid -> pid) where those know the thread, else the tid itself (a
    single-threaded process's pid); ``tid_as_pid`` counts them (see :func:`scan_samples`)."""

    def __init__(self, table: pa.Table | None = None, path=None, trace=None, tasks=None):
        self.table, self.path, self.trace = table, path, trace
        self._memo: OrderedDict[tuple, object] = OrderedDict()
        self._lock = threading.Lock()
        self.pid_from_tid = (
            self.null_status("pid") != "none"
            and self.has("tid")
            and self.null_status("tid") != "all"
        )
        self._tid_pid: tuple[np.ndarray, np.ndarray] | None = None
        if self.pid_from_tid and tasks is not None and len(tasks):
            tk = tasks[tasks["pid"].notna() & tasks["tid"].notna()]
            tk = tk.drop_duplicates("tid", keep="last")
            o = np.argsort(tk["tid"].to_numpy(np.int64), kind="stable")
            self._tid_pid = (tk["tid"].to_numpy(np.int64)[o], tk["pid"].to_numpy(np.int64)[o])

    def remember(self, key: tuple, make):
        """``make()``, kept under ``key`` when the samples are in memory: what a replay
        derives from the samples alone (the scan, the addresses its targets see), so
        that replays of one in-memory source with other settings (a sweep's
        configurations) share it.  Arrays come back read-only (nothing may change what
        the next replay reads); at most :data:`MEMO_ENTRIES` kept, least recently used
        dropped first.  A streamed source keeps nothing (``make()`` every time)."""
        if self.table is None:
            return make()
        with self._lock:  # a Dask worker of several threads runs tasks side by side
            if key in self._memo:
                self._memo.move_to_end(key)
                return self._memo[key]
        got = make()
        arrays = [a for a in (got if isinstance(got, tuple) else ()) if isinstance(a, np.ndarray)]
        for a in arrays:
            a.flags.writeable = False
        with self._lock:
            # a bounded memo: at most MEMO_ARRAYS selections' arrays (each as large as the
            # samples' columns), at most MEMO_ENTRIES entries in all
            big = [k for k, v in self._memo.items() if isinstance(v, tuple) and k != key]
            while arrays and len(big) >= MEMO_ARRAYS:
                del self._memo[big.pop(0)]
            while len(self._memo) >= MEMO_ENTRIES:
                self._memo.popitem(last=False)
            self._memo[key] = got
        return got

    @property
    def knows_threads(self) -> bool:
        """Whether the trace's tasks give the pid of threads (see the class docstring)."""
        return self._tid_pid is not None

    @property
    def streamed(self) -> bool:
        return self.table is None

    def has(self, name: str) -> bool:
        if self.table is not None:
            return name in self.table.column_names
        return name in self.trace.columns("samples")

    def null_count(self, name: str) -> tuple[int | None, int]:
        """(rows lacking column ``name``, rows); None when unknown.  For a file this
        comes from the Parquet statistics: no data is read."""
        if self.table is not None:
            n = self.table.num_rows
            if name not in self.table.column_names:
                return n, n
            return self.table.column(name).null_count, n
        pf = ParquetReader(self.path)
        if name not in pf.names:
            return pf.num_rows, pf.num_rows
        nulls = 0
        for g in range(pf.num_row_groups):
            st = pf.statistics(g, name)
            if st is None or st.null_count is None:
                return None, pf.num_rows
            nulls += st.null_count
        return nulls, pf.num_rows

    def null_status(self, name: str) -> str:
        """ "none" (no row lacks the column), "all" (absent or null everywhere) or
        "some" (or unknown)."""
        nulls, n = self.null_count(name)
        return (
            "some" if nulls is None else "none" if nulls == 0 else "all" if nulls == n else "some"
        )

    def _with_pid(self, tb: pa.Table, columns: list[str]) -> pa.Table:
        pid = tb.column("pid")
        if pid.null_count:
            miss = ~pid.is_valid().to_numpy(zero_copy_only=False)
            p = pid.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
            tid = tb.column("tid")
            tv = tid.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
            fill = tv[miss]
            if self._tid_pid is not None and fill.size:
                keys, vals = self._tid_pid
                i = np.minimum(np.searchsorted(keys, fill), max(keys.size - 1, 0))
                known = (keys.size > 0) & (keys[i] == fill)
                fill = np.where(known, vals[i], fill)
            p[miss] = fill
            tb = tb.set_column(
                tb.column_names.index("pid"), "pid", pa.array(p.astype(np.int32), mask=p < 0)
            )
        return tb.select(columns)

    def tables(self, columns: list[str]):
        """The samples' ``columns`` as a sequence of tables, in file order."""
        read = list(columns)
        fix = self.pid_from_tid and "pid" in columns
        if fix and "tid" not in read:
            read.append("tid")
        if self.table is not None:
            tb = self.table.select(read)
            yield self._with_pid(tb, columns) if fix else tb
            return
        # columns the file left out (no event recorded them) come back as nulls
        for tb in self.trace.iter_tables("samples", read, batch_rows=BATCH_ROWS):
            yield self._with_pid(tb, columns) if fix else tb

    def materialize(self) -> None:
        """Read the whole table into memory (unsorted files, perf-phys translation)."""
        if self.table is None:
            cols = SAMPLE_COLUMNS + (["tid"] if self.pid_from_tid else [])
            self.table = self.trace.table("samples", columns=cols)


def scan_samples(src: SampleSource, phys: bool = False) -> dict:
    """One pass over the narrow columns (time_ns, pid, event): the time span, whether
    the times are sorted, the event names and, per (event, pid), the number of samples,
    of samples with a virtual address and (``phys``) of samples with a non-zero
    physical address.  The address columns are read only where the file's statistics
    say that some rows lack them.  Kept by an in-memory source (read-only to callers)."""
    return src.remember(("scan", phys), lambda: _scan(src, phys))


def _scan(src: SampleSource, phys: bool) -> dict:
    t_min = t_max = last = None
    ordered = True
    names: set[str] = set()
    counts: dict[tuple, list[int]] = {}
    addr_st = src.null_status("addr")
    phys_st = src.null_status("phys_addr") if phys else "all"
    cols = (
        ["time_ns", "pid", "event"]
        + (["addr"] if addr_st == "some" else [])
        + (["phys_addr"] if phys_st != "all" else [])
    )
    for tb in src.tables(cols):
        ev = tb.column("event")
        names.update(event_names(ev))
        tv = tb.column("time_ns").drop_null().to_numpy()
        if tv.size:
            lo, hi = int(tv.min()), int(tv.max())
            t_min = lo if t_min is None else min(t_min, lo)
            t_max = hi if t_max is None else max(t_max, hi)
            if ordered and ((last is not None and tv[0] < last) or np.any(tv[1:] < tv[:-1])):
                ordered = False
            last = int(tv[-1])
        # grouped by the event's dictionary codes where the column is dictionary-encoded
        # (one dictionary per batch): the names come out the same, without a string each
        cnt = {"event": ev, "pid": tb.column("pid")}
        aggs = [("pid", "count")]
        # per-row address flags only where rows differ (else: all or none of them)
        if addr_st == "some":
            cnt["a"] = pc.cast(pc.is_valid(tb.column("addr")), pa.int64())
            aggs.append(("a", "sum"))
        if phys_st != "all":
            ph = tb.column("phys_addr")
            cnt["p"] = pc.cast(
                pc.and_(pc.is_valid(ph), pc.not_equal(ph.fill_null(0), 0)), pa.int64()
            )
            aggs.append(("p", "sum"))
        g = pa.table(cnt)
        if pa.types.is_dictionary(ev.type):
            g = g.unify_dictionaries()
        if tb.column("time_ns").null_count or tb.column("pid").null_count:
            g = g.filter(pc.and_(pc.is_valid(tb.column("time_ns")), pc.is_valid(tb.column("pid"))))
        if g.num_rows:
            agg = g.group_by(["event", "pid"], use_threads=False).aggregate(aggs)
            k_ = agg.column("pid_count").to_pylist()
            a_ = (
                agg.column("a_sum").to_pylist()
                if addr_st == "some"
                else (k_ if addr_st == "none" else [0] * len(k_))
            )
            p_ = agg.column("p_sum").to_pylist() if phys_st != "all" else [0] * len(k_)
            for e, pid_, k, na, nph in zip(
                agg.column("event").to_pylist(), agg.column("pid").to_pylist(), k_, a_, p_
            ):
                c = counts.setdefault((e, pid_), [0, 0, 0])
                c[0] += k
                c[1] += na
                c[2] += nph
    return {
        "t_first": t_min,
        "t_last": t_max,
        "ordered": ordered,
        "names": sorted(names),
        "counts": counts,
    }


def load_source(source, mmaps, maps, pagemap_table, trace_meta: dict | None = None):
    """(samples source, mmaps df, maps df, pagemap df|None, trace meta, provenance).

    A samples table knows nothing of its trace: ``trace_meta`` (the trace directory's
    metadata) stands in for the trace's own."""
    if isinstance(source, (str, os.PathLike, Trace)):
        tr = source if isinstance(source, Trace) else open_trace(source)
        if not tr.has("samples"):
            raise InputError(f"{tr.path}: has no samples table (ingest a perf.data first)")
        have = tr.columns("samples")
        if "time_ns" not in have:
            raise InputError(
                f"{tr.file('samples')}: the samples have no times (recorded "
                "without PERF_SAMPLE_TIME); a replay needs them"
            )
        if "event" not in have:
            raise InputError(f"{tr.file('samples')}: lacks the event column")
        # only the columns the replay uses, streamed batch by batch (see SampleSource)
        samples = SampleSource(
            path=tr.file("samples"), trace=tr, tasks=tr.df("tasks") if tr.has("tasks") else None
        )
        mm = tr.df("mmaps") if mmaps is None else as_table(mmaps).to_pandas()
        mp = (
            (tr.df("maps") if tr.has("maps") else None)
            if maps is None
            else as_table(maps).to_pandas()
        )
        pm = tr.df("pagemap") if tr.has("pagemap") else None
        prov = {
            "trace": str(tr.path),
            "inputs": tr.meta.get("inputs"),
            "samples": file_provenance(tr.file("samples")),
        }
        meta = tr.meta
    else:
        samples = source if isinstance(source, SampleSource) else table_source(source)
        mm = as_table(mmaps).to_pandas() if mmaps is not None else None
        mp = as_table(maps).to_pandas() if maps is not None else None
        pm = None
        prov = {"samples": "in-memory table", "rows": samples.table.num_rows}
        meta = dict(trace_meta or {})
    if pagemap_table is not None:
        pm = pagemap_table
    return samples, mm, mp, pm, meta, prov


def table_source(table) -> SampleSource:
    """An in-memory table of samples (a pyarrow Table, DataFrame or dict of columns)
    as a replay's source: the SAMPLE_COLUMNS it lacks added as nulls (``event`` as
    "sample").  One source given to many replays (a sweep's worker does) lets them
    share what they derive from the samples (:meth:`SampleSource.remember`)."""
    samples = as_table(table)
    if samples is None:
        raise InputError("no samples given")
    for c in SAMPLE_COLUMNS:
        if c not in samples.column_names:
            if c in ("time_ns", "addr", "phys_addr"):
                if c == "time_ns":
                    raise InputError("the samples table has no time_ns column")
                samples = samples.append_column(c, pa.nulls(samples.num_rows, pa.uint64()))
            elif c == "pid":
                samples = samples.append_column(c, pa.nulls(samples.num_rows, pa.int32()))
            else:
                samples = samples.append_column(
                    c, pa.array(["sample"] * samples.num_rows, pa.string())
                )
    keep = SAMPLE_COLUMNS + (["tid"] if "tid" in samples.column_names else [])
    return SampleSource(table=samples.select(keep))
