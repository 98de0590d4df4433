"""Replay: a trace directory's samples → the region history DAMON would have produced.

``tracedamon.replay(trace_dir_or_samples, **options)`` is the notebook entry
point; ``tracedamon replay`` is a thin layer over it.  This module does the
I/O and the bookkeeping (reading tables, choosing targets and the access
source, the time grid, the output's metadata); the monitor itself is
:mod:`tracedamon.engine.core` (and :mod:`tracedamon.engine.fixed` for
fixed-granularity replays).

Time grid.  Sample interval ``k`` covers ``[t0 + k*S, t0 + (k+1)*S)`` where
``t0`` is ``start_ns`` or else the time of the first sample in the trace (any
pid, any event); aggregation ``n`` covers sample intervals ``[n*N, (n+1)*N)``
with ``N = aggr_us // sample_us``; only complete aggregations are emitted and
the replay ends with the interval of the trace's last sample.  A snapshot's
``time_ns`` is the end of its aggregation.  (With intervals auto-tuning the
interval length changes at tuning points; the grid continues from there.)

``start_ns="auto"`` (``--start auto``) helps vaddr on ``perf record -- cmd`` traces:
at the first sample the process has too few mappings for the kernel's
three-regions rule, so (like the kernel) the target would have no regions until
the first ops update.  ``auto`` starts instead at the time from which the
target's mappings give three regions covering the most of its samples until the
first ops update (:func:`tracedamon.engine.ops.vaddr.auto_start`); without it the
warning names that time.  The metadata's ``t0_auto`` records the choice and why.

Memory.  A trace directory's samples are streamed: a first pass over the narrow
columns (time_ns, pid, event) gives the time span, the event names and the
samples per pid; the monitor then gets the samples batch by batch (one Parquet
reader per row group, ``BATCH_ROWS`` rows a batch) through
:class:`tracedamon.engine.access.StreamedSamples`, so a replay holds a batch plus
one segment's samples whatever the trace's length (``--start auto`` adds two
cheap passes, see :func:`_auto_start`).  A samples file not in time order, and
perf-phys translation for vaddr/fvaddr, read the whole table instead.

Fixed granularity writes every region of every snapshot unless that exceeds
``max_rows``; then only regions with accesses are written (``accessed_only``), with
a warning and ``accessed_only_reason`` in the metadata.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import __version__
from ..errors import ConfigError, InputError
from ..schema import REGIONS
from ..units import format_bytes
from .address import check_ranges, engine_addresses, to_unsigned
from .access import (ACCESS, StreamedSamples, _event_names, choose_events, filter_events,
                     physical_samples, translated_samples, virtual_samples)
from .config import MonitorConfig
from .core import History, Monitor, Target, abit_subpage_error
from .ops.fvaddr import aligned_union, normalize_ranges
from .ops.paddr import default_range
from .ops.vaddr import VmaTimeline, _covered, auto_start
from .prng import GENERATOR as PRNG_GENERATOR
from .rng import GENERATOR

# I/O of the replay (reading a trace directory, streaming the history to Parquet): it
# moves out of the engine to tracedamon.pipeline, and these imports with it
from ..store.atomic import DAMON_TRACE_TEXT, atomic_path, text_marker
from ..store.history import ROW_GROUP_ROWS as HISTORY_ROW_GROUP_ROWS
from ..store.history import HistoryWriter
from ..store.parquet import ParquetReader, read_table
from ..store.trace import Trace, open_trace
from ..store.writer import file_provenance

OPS = ("vaddr", "fvaddr", "paddr")
SAMPLE_COLUMNS = ["time_ns", "pid", "event", "addr", "phys_addr"]
DEFAULT_OUTPUT = "replay.parquet"
BATCH_ROWS = 1 << 17               # samples read per batch when streaming a trace directory
MAX_ROWS = 20_000_000               # default cap on rows written with every region listed
DENSE_FIXED_MAX_REGIONS = 1 << 22   # fixed granularity through the dense engine (abit)


ROW_GROUP_ROWS = HISTORY_ROW_GROUP_ROWS   # rows per row group of a written history
COARSE_BYTES = 1 << 30      # "hottest regions": regions this large are coarse, not hot spots


def _snapshot_slices(table: pa.Table):
    """Zero-copy slices of a history table (rows in snapshot order), one per snapshot."""
    if table.num_rows == 0:
        return
    snap = table.column("snapshot").to_numpy()
    cut = np.concatenate([[0], np.flatnonzero(snap[1:] != snap[:-1]) + 1, [snap.size]])
    for lo, hi in zip(cut[:-1], cut[1:]):
        yield table.slice(int(lo), int(hi - lo))


class RegionHistory:
    """The region snapshots of one replay (REGIONS schema) and how they were made.

    ``.df`` / ``.to_pandas()`` give a pandas DataFrame, ``.table`` the Arrow table,
    ``.to_parquet(path)`` writes it atomically with the metadata (config, seed,
    input provenance) in the file's key-value metadata, ``.metadata`` is that dict.
    A history replayed with ``output=`` lives in its file (``.path``): ``.table`` reads
    it on demand, and the summary, :meth:`hottest` and the DAMON-trace text read it row
    group by row group.

    Sparse histories.  The metadata's ``sparse`` is true when rows with nr_accesses 0
    were left out (``accessed_only``, asked for or past ``max_rows``), and ``coverage``
    (written for every replay) lists what the monitor covered: ``[snapshot_from, target,
    start, end]`` entries, the union of the target's regions (adjacent ranges merged) in
    effect from snapshot ``snapshot_from`` until the target's next entry, sorted by
    (snapshot_from, target, start), emitted only when it changes (vaddr: at ops updates;
    fvaddr and paddr: once); ``[snapshot_from, target, 0, 0]`` when the target has no
    region.  In a sparse history a byte inside the coverage that no row of a snapshot
    covers had nr_accesses 0 then; a byte outside it was not monitored.
    """

    def __init__(self, table: pa.Table | None, metadata: dict, path=None):
        self._table = table
        self.metadata = metadata
        self.path = Path(path) if path is not None else None
        self._df = None
        self._totals = None

    @property
    def table(self) -> pa.Table:
        if self._table is None:
            self._table = read_table(self.path).replace_schema_metadata(None)
        return self._table

    @property
    def df(self):
        if self._df is None:
            self._df = self.table.to_pandas()
        return self._df

    def to_pandas(self):
        return self.table.to_pandas()

    def tables(self, columns: list[str] | None = None):
        """The rows as a sequence of tables in snapshot order (the file's row groups, or
        slices of the table in memory): bounded memory for a history in a file."""
        if self._table is None and self.path is not None:
            pf = ParquetReader(self.path)
            for g in range(pf.num_row_groups):
                yield pf.read_row_group(g, columns=columns).replace_schema_metadata(None)
            return
        t = self.table if columns is None else self.table.select(columns)
        for off in range(0, max(t.num_rows, 1), ROW_GROUP_ROWS):
            yield t.slice(off, ROW_GROUP_ROWS)

    def to_parquet(self, path: str | os.PathLike, *, force: bool = False) -> Path:
        """Write the history atomically (row groups of whole snapshots, see
        :class:`HistoryWriter`); an existing ``path`` is replaced only with
        ``force=True`` and only if it is a region history tracedamon wrote."""
        if self.path is not None and self._table is None and \
                Path(path).resolve() == self.path.resolve():
            return self.path
        w = HistoryWriter(path, force=force, row_group_rows=ROW_GROUP_ROWS)
        try:
            for tb in self.tables():
                for one in _snapshot_slices(tb):
                    w.add(one)
        except BaseException as e:
            raise w.abort(e) from None
        return w.close(self.metadata)

    def damon_trace_lines(self, comm: str = "kdamond.0", pid: int = 0):
        """The history as ``perf script`` lines of ``damon:damon_aggregated`` events
        (spec §14), one per region, stamped with the snapshot's time: the text form
        real DAMON traces have, so DAMON-trace tools (and tracedamon's own ingest) read
        a replay like a recording."""
        if self.metadata.get("accessed_only"):
            raise ConfigError("a DAMON trace lists every region (nr_regions), but this "
                              "history holds only regions with accesses ("
                              f"{self.metadata.get('accessed_only_reason') or 'accessed_only'}"
                              "); replay without accessed_only (and a larger max_rows) to "
                              "write one")
        # pass 1: regions per (snapshot, target); pass 2: the lines
        nreg: dict[tuple[int, int], int] = {}
        for t in self.tables(["snapshot", "target"]):
            if t.num_rows == 0:
                continue
            g = t.group_by(["snapshot", "target"], use_threads=False).aggregate(
                [("target", "count")])
            for k1, k2, c in zip(*(g.column(x).to_pylist() for x in (
                    "snapshot", "target", "target_count"))):
                nreg[(k1, k2)] = nreg.get((k1, k2), 0) + c
        for t in self.tables(["snapshot", "time_ns", "target", "start", "end", "nr_accesses",
                              "age"]):
            cols = [t.column(c).to_pylist() for c in t.column_names]
            for snap, ns, tgt, st, en, nr, age in zip(*cols):
                yield (f"{comm} {pid} [000] {ns // 1_000_000_000}.{ns % 1_000_000_000:09d}: "
                       f"damon:damon_aggregated: target_id={tgt} "
                       f"nr_regions={nreg[(snap, tgt)]} {st}-{en}: {nr} {age}")

    def to_damon_trace(self, path: str | os.PathLike, *, force: bool = False) -> Path:
        """Write :meth:`damon_trace_lines` to a text file (atomically), then a comment
        line by which tracedamon recognises the file as its own (``force=True``
        replaces only such a file, never a recorded trace)."""
        with atomic_path(path, kind=DAMON_TRACE_TEXT, force=force) as tmp, \
                open(tmp, "w") as f:
            for line in self.damon_trace_lines():
                f.write(line + "\n")
            f.write(text_marker(DAMON_TRACE_TEXT))
        return Path(path)

    @property
    def n_snapshots(self) -> int:
        return int(self.metadata.get("snapshots", 0))

    def __len__(self) -> int:
        if self._table is None and self.path is not None:
            return ParquetReader(self.path).num_rows
        return self.table.num_rows

    def __repr__(self) -> str:
        return (f"<RegionHistory {self.n_snapshots} snapshots, {len(self)} region rows, "
                f"ops={self.metadata.get('ops')} access={self.metadata.get('access')}>")

    def _region_totals(self):
        """Per region (target, start, end) over all snapshots: snapshots, total and max
        age; aggregated row group by row group, partial results merged as they grow."""
        if self._totals is not None:
            return self._totals
        keys = ["target", "start", "end"]
        aggs = [("nr_accesses", "count"), ("nr_accesses", "sum"), ("age", "max")]
        parts: list[pa.Table] = []
        held = 0

        def combine(ts):
            t = pa.concat_tables(ts)
            return t.group_by(keys, use_threads=False).aggregate(
                [("n", "sum"), ("total", "sum"), ("max_age", "max")]).rename_columns(
                keys + ["n", "total", "max_age"])

        for t in self.tables(keys + ["nr_accesses", "age"]):
            if t.num_rows == 0:
                continue
            g = t.group_by(keys, use_threads=False).aggregate(aggs).rename_columns(
                keys + ["n", "total", "max_age"])
            parts.append(g)
            held += g.num_rows
            if held > 2 * ROW_GROUP_ROWS and len(parts) > 1:
                parts = [combine(parts)]
                held = parts[0].num_rows
        if not parts:
            self._totals = pa.table({k: pa.array([], pa.int64()) for k in
                                     keys + ["n", "total", "max_age"]}).to_pandas()
        else:
            self._totals = (combine(parts) if len(parts) > 1 else parts[0]).to_pandas()
        return self._totals

    def hottest(self, n: int = 5, coarse: bool = False):
        """The ``n`` regions (target, start, end) with the most accesses summed over all
        snapshots, most first: columns target, start, end, size, snapshots (in which the
        region existed with these bounds), total_accesses, mean_accesses, max_age and
        ``coarse`` (``size >= COARSE_BYTES``, 1 GiB).

        A region counts as accessed in a sample interval when one sample hits any page of
        it (perf checks) or its one sampled page (abit), whatever its size: a region of a
        gigabyte or more with a high count is an artefact of coarse regions, not a hot
        spot.  Coarse regions are left out unless ``coarse=True``;
        :meth:`coarse_accessed` summarises them."""
        g = self._region_totals()
        cols = ["target", "start", "end", "size", "snapshots", "total_accesses",
                "mean_accesses", "max_age", "coarse"]
        if len(g) == 0:
            import pandas as pd
            return pd.DataFrame({c: [] for c in cols})
        g = g.rename(columns={"n": "snapshots", "total": "total_accesses"})
        g["size"] = (g["end"].astype(np.uint64) - g["start"].astype(np.uint64)).astype(
            np.uint64)
        g["mean_accesses"] = g["total_accesses"] / g["snapshots"]
        g["coarse"] = g["size"] >= COARSE_BYTES
        if not coarse:
            g = g[~g["coarse"]]
        g = g.sort_values(["total_accesses", "target", "start", "end"],
                          ascending=[False, True, True, True], kind="stable")
        return g[cols].head(n).reset_index(drop=True)

    def coarse_accessed(self) -> dict:
        """Regions of 1 GiB or more that had accesses: how many, the largest, and the
        highest mean nr_accesses among them."""
        g = self._region_totals()
        if len(g) == 0:
            return {"regions": 0, "largest": 0, "max_mean_accesses": 0.0}
        size = g["end"].astype(np.uint64) - g["start"].astype(np.uint64)
        sel = (size >= COARSE_BYTES) & (g["total"] > 0)
        if not sel.any():
            return {"regions": 0, "largest": 0, "max_mean_accesses": 0.0}
        return {"regions": int(sel.sum()), "largest": int(size[sel].max()),
                "max_mean_accesses": float((g["total"][sel] / g["n"][sel]).max())}

    def summary(self, n: int = 5) -> str:
        m = self.metadata
        lines = [f"replay: ops={m['ops']} access={m['access']} targets={len(m['targets'])} "
                 f"seed={m['config']['seed']}"
                 + (f" kernel={m['kernel']}" if m.get("kernel") else ""),
                 f"snapshots: {self.n_snapshots}   region rows: {len(self)}"
                 + ("   (only regions with accesses)" if m.get("accessed_only") else ""),
                 f"samples used: {m['samples_used']}   max nr_accesses per aggregation: "
                 f"{m['config']['aggr_us'] // m['config']['sample_us']}"]
        for w in m.get("warnings", []):
            lines.append(f"warning: {w}")
        hot = self.hottest(n)
        hot = hot[hot.total_accesses > 0]
        if len(hot):
            lines.append("hottest regions (most nr_accesses summed over all snapshots; "
                         "regions under 1 GiB):")
            for r in hot.itertuples():
                lines.append(f"  target {r.target}  {int(r.start):#x}-{int(r.end):#x} "
                             f"({_size(int(r.size))})  mean nr_accesses "
                             f"{r.mean_accesses:.1f} in {r.snapshots} snapshots")
        c = self.coarse_accessed()
        if c["regions"]:
            rule = ("the one page it samples was accessed" if m["access"] == "abit" else
                    "one sample hits any of its pages")
            lines.append(
                f"coarse: {c['regions']} region(s) of 1 GiB or more had accesses (the "
                f"largest {_size(c['largest'])}, mean nr_accesses up to "
                f"{c['max_mean_accesses']:.1f}); a region counts as accessed when {rule}, "
                "whatever its size, so these are no hot spots and are not ranked (a "
                "smaller --max-region or more --min-nr-regions splits them)")
        return "\n".join(lines)


def _size(b: int) -> str:
    return format_bytes(b, 1, exact=True, largest="GiB")


def _as_table(obj) -> pa.Table | None:
    if obj is None:
        return None
    if isinstance(obj, pa.Table):
        return obj
    import pandas as pd
    if isinstance(obj, pd.DataFrame):
        return pa.Table.from_pandas(obj, preserve_index=False)
    if isinstance(obj, dict):
        return pa.table(obj)
    raise InputError(f"cannot use a {type(obj).__name__} as a table")


class _Source:
    """The samples (SAMPLE_COLUMNS) of a replay: an in-memory table, or a trace
    directory's samples file read in batches of ``BATCH_ROWS`` rows, so that a replay
    holds a bounded number of samples whatever the trace's length.

    Samples that carry a thread id but no pid (``perf script`` text printed without
    the pid field shows the tid alone) get their pid from the trace's ``tasks`` rows
    (COMM/FORK: tid -> pid) where those know the thread, else the tid itself (a
    single-threaded process's pid); ``tid_as_pid`` counts them (see :func:`_scan`)."""

    def __init__(self, table: pa.Table | None = None, path=None, trace=None, tasks=None):
        self.table, self.path, self.trace = table, path, trace
        self.pid_from_tid = (self.null_status("pid") != "none" and self.has("tid")
                             and self.null_status("tid") != "all")
        self._tid_pid: tuple[np.ndarray, np.ndarray] | None = None
        if self.pid_from_tid and tasks is not None and len(tasks):
            tk = tasks[tasks["pid"].notna() & tasks["tid"].notna()]
            tk = tk.drop_duplicates("tid", keep="last")
            o = np.argsort(tk["tid"].to_numpy(np.int64), kind="stable")
            self._tid_pid = (tk["tid"].to_numpy(np.int64)[o], tk["pid"].to_numpy(np.int64)[o])

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
        """"none" (no row lacks the column), "all" (absent or null everywhere) or
        "some" (or unknown)."""
        nulls, n = self.null_count(name)
        return "some" if nulls is None else "none" if nulls == 0 else \
            "all" if nulls == n else "some"

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
            tb = tb.set_column(tb.column_names.index("pid"), "pid",
                               pa.array(p.astype(np.int32), mask=p < 0))
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


def _scan(src: _Source, phys: bool = False) -> dict:
    """One pass over the narrow columns (time_ns, pid, event): the time span, whether
    the times are sorted, the event names and, per (event, pid), the number of samples,
    of samples with a virtual address and (``phys``) of samples with a non-zero
    physical address.  The address columns are read only where the file's statistics
    say that some rows lack them."""
    t_min = t_max = last = None
    ordered = True
    names: set[str] = set()
    counts: dict[tuple, list[int]] = {}
    addr_st = src.null_status("addr")
    phys_st = src.null_status("phys_addr") if phys else "all"
    cols = ["time_ns", "pid", "event"] + (["addr"] if addr_st == "some" else []) + \
        (["phys_addr"] if phys_st != "all" else [])
    for tb in src.tables(cols):
        ev = tb.column("event")
        names.update(_event_names(ev))
        tv = tb.column("time_ns").drop_null().to_numpy()
        if tv.size:
            lo, hi = int(tv.min()), int(tv.max())
            t_min = lo if t_min is None else min(t_min, lo)
            t_max = hi if t_max is None else max(t_max, hi)
            if ordered and ((last is not None and tv[0] < last) or np.any(tv[1:] < tv[:-1])):
                ordered = False
            last = int(tv[-1])
        ok = pc.and_(pc.is_valid(tb.column("time_ns")), pc.is_valid(tb.column("pid")))
        cnt = {"event": ev.cast(pa.string()), "pid": tb.column("pid")}
        aggs = [("pid", "count")]
        # per-row address flags only where rows differ (else: all or none of them)
        if addr_st == "some":
            cnt["a"] = pc.cast(pc.is_valid(tb.column("addr")), pa.int64())
            aggs.append(("a", "sum"))
        if phys_st != "all":
            ph = tb.column("phys_addr")
            cnt["p"] = pc.cast(pc.and_(pc.is_valid(ph), pc.not_equal(ph.fill_null(0), 0)),
                               pa.int64())
            aggs.append(("p", "sum"))
        g = pa.table(cnt).filter(ok)
        if g.num_rows:
            agg = g.group_by(["event", "pid"], use_threads=False).aggregate(aggs)
            k_ = agg.column("pid_count").to_pylist()
            a_ = agg.column("a_sum").to_pylist() if addr_st == "some" else \
                (k_ if addr_st == "none" else [0] * len(k_))
            p_ = agg.column("p_sum").to_pylist() if phys_st != "all" else [0] * len(k_)
            for e, pid_, k, na, nph in zip(agg.column("event").to_pylist(),
                                           agg.column("pid").to_pylist(), k_, a_, p_):
                c = counts.setdefault((e, pid_), [0, 0, 0])
                c[0] += k
                c[1] += na
                c[2] += nph
    return {"t_first": t_min, "t_last": t_max, "ordered": ordered, "names": sorted(names),
            "counts": counts}


def _load(source, mmaps, maps, pagemap_table):
    """(samples source, mmaps df, maps df, pagemap df|None, trace meta, provenance)."""
    if isinstance(source, (str, os.PathLike, Trace)):
        tr = source if isinstance(source, Trace) else open_trace(source)
        if not tr.has("samples"):
            raise InputError(f"{tr.path}: has no samples table (ingest a perf.data first)")
        have = tr.columns("samples")
        if "time_ns" not in have:
            raise InputError(f"{tr.file('samples')}: the samples have no times (recorded "
                             "without PERF_SAMPLE_TIME); a replay needs them")
        if "event" not in have:
            raise InputError(f"{tr.file('samples')}: lacks the event column")
        # only the columns the replay uses, streamed batch by batch (see _Source)
        samples = _Source(path=tr.file("samples"), trace=tr,
                          tasks=tr.df("tasks") if tr.has("tasks") else None)
        mm = tr.df("mmaps") if mmaps is None else _as_table(mmaps).to_pandas()
        mp = (tr.df("maps") if tr.has("maps") else None) if maps is None \
            else _as_table(maps).to_pandas()
        pm = tr.df("pagemap") if tr.has("pagemap") else None
        prov = {"trace": str(tr.path), "inputs": tr.meta.get("inputs"),
                "samples": file_provenance(tr.file("samples"))}
        meta = tr.meta
    else:
        samples = _as_table(source)
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
                        c, pa.array(["sample"] * samples.num_rows, pa.string()))
        keep = SAMPLE_COLUMNS + (["tid"] if "tid" in samples.column_names else [])
        samples = _Source(table=samples.select(keep))
        mm = _as_table(mmaps).to_pandas() if mmaps is not None else None
        mp = _as_table(maps).to_pandas() if maps is not None else None
        pm = None
        prov = {"samples": "in-memory table", "rows": samples.table.num_rows}
        meta = {}
    if pagemap_table is not None:
        pm = pagemap_table
    return samples, mm, mp, pm, meta, prov


def replay(source, *, ops: str = "vaddr", pids=None, ranges=None, access: str = "perf",
           events=None, pagemap=None, start_ns: int | str | None = None,
           accessed_only: bool = False, max_rows: int | None = MAX_ROWS, mmaps=None, maps=None,
           config: MonitorConfig | None = None, fixed_engine: bool = True, progress=None,
           output: str | os.PathLike | None = None, force: bool = False,
           **params) -> RegionHistory:
    """Run the DAMON monitor over recorded samples and return the region history.

    Parameters
    ----------
    source : trace directory path (or ``Trace``), or a samples table (Arrow table,
        pandas DataFrame or dict of columns: time_ns, pid, event, addr, phys_addr)
    ops : "vaddr" (targets are pids; regions follow their mappings), "fvaddr"
        (fixed ``ranges``, optionally of given ``pids``) or "paddr" (physical memory)
    pids : list of pids (vaddr default: the process with the most samples)
    ranges : list of "START-END" strings or (start, end) pairs (fvaddr, paddr)
    access : "perf" (the samples' virtual addresses; paddr: at the frames the pagemap
        maps them to), "perf-phys" (their physical addresses; vaddr/fvaddr: translated
        back through the pagemap) or "abit" (the accessed-bit check emulated)
    events : event names whose samples count (default: all; several are OR'ed)
    pagemap : a trace directory (or pagemap DataFrame) with pagemap snapshots, for
        perf-phys with vaddr/fvaddr and for paddr from virtual samples (default: the
        trace's own pagemap table)
    start_ns : t0 of the time grid (default: the first sample of the trace), or
        ``"auto"``: for vaddr, the time from which the targets' mappings give three
        regions that cover the most of their samples until the first ops update (see
        :func:`tracedamon.engine.ops.vaddr.auto_start`; the choice and why go into the
        metadata as ``t0_auto``); for fvaddr and paddr, the first sample
    accessed_only : write only regions with nr_accesses > 0
    max_rows : fixed granularity writes every region of every snapshot; when that would
        exceed ``max_rows`` rows (default 20 M) the replay writes only regions with
        accesses instead, with a warning and ``accessed_only_reason`` in the metadata
        (the result equals ``accessed_only=True``).  ``None``: no limit
    output : write the history to this Parquet file as the replay runs, snapshot by
        snapshot (memory stays bounded whatever the number of rows; the file appears
        whole or not at all); the returned history then reads its rows from the file
    config : a MonitorConfig; or give its fields as keyword arguments
        (sample_us=5000, aggr_us=100000, update_us=60000000, min_nr_regions=10,
        max_nr_regions=1000, min_region=4096, max_region=None, seed=0,
        min_nr_regions_mode=None (the kernel profile's: legacy for released kernels),
        kernel="released" (or "released-nofix", "mainline-2026": see
        :mod:`tracedamon.engine.profiles`), goal_*, fix_*)

    Raises InputError (ConfigError for contradictory options) when the replay has
    nothing to do, with the reason: no sample of the ``pids``, no sample with the address
    the access check needs, a trace shorter than one aggregation, no mapping of a vaddr
    process, no region in any snapshot.
    """
    if config is None:
        config = MonitorConfig(**params)
    elif params:
        config = config.replace(**params)
    if ops not in OPS:
        raise ConfigError(f"ops must be one of {', '.join(OPS)}, not {ops!r}",
                          cli_message=f"--ops must be one of {', '.join(OPS)}, not {ops!r}")
    if access not in ACCESS:
        raise ConfigError(f"access must be one of {', '.join(ACCESS)}, not {access!r}",
                          cli_message=f"--access must be one of {', '.join(ACCESS)}, "
                                      f"not {access!r}")
    if access == "abit" and config.subpage:
        raise abit_subpage_error(config.min_region)
    if max_rows is not None and (isinstance(max_rows, bool) or not isinstance(max_rows, int)
                                 or max_rows < 0):
        raise ConfigError(f"max_rows must be a non-negative integer, not {max_rows!r}",
                          cli_message=f"--max-rows must be a non-negative integer, not "
                                      f"{max_rows!r}")
    pids = [int(p) for p in (pids or [])]
    pm_in = None
    if pagemap is not None and not isinstance(pagemap, (str, os.PathLike)):
        pm_in = _as_table(pagemap).to_pandas()
    src, mm, mp, pm, meta, prov = _load(source, mmaps, maps, pm_in)
    if pagemap is not None and isinstance(pagemap, (str, os.PathLike)):
        ptr = open_trace(pagemap)
        if not ptr.has("pagemap"):
            raise InputError(f"{pagemap}: has no pagemap table")
        pm = ptr.df("pagemap")
    physical = ops == "paddr"
    if physical and pids:
        why = "does not apply to paddr (physical memory has no process)"
        raise ConfigError(f"pids={pids} {why}", cli_message=f"--pid {why}")
    # which address of a sample the targets see: the virtual one (vaddr/fvaddr with perf
    # or abit), the physical one (paddr with perf-phys), or the other one translated
    # through pagemap snapshots (vaddr/fvaddr with perf-phys; paddr with perf, and paddr
    # with abit when the samples carry no physical address)
    want_phys = access == "perf-phys" or (physical and access == "abit")
    # pass 1, narrow columns: time span, event names, samples (with addresses) per pid
    scan = _scan(src, phys=want_phys)
    if scan["t_first"] is None:
        raise InputError("the trace has no timed samples to replay")
    t_first, t_last = scan["t_first"], scan["t_last"]
    auto = isinstance(start_ns, str) and start_ns.strip().lower() == "auto"
    if isinstance(start_ns, str) and not auto:
        try:
            start_ns = int(start_ns.replace("_", ""), 0)
        except ValueError:
            raise ConfigError(f"start_ns: {start_ns!r} is not a time in ns or 'auto'",
                              cli_message=f"--start: {start_ns!r} is not a time in ns or "
                                          "'auto'") from None
    t0 = t_first if (start_ns is None or auto) else int(start_ns)
    names = scan["names"]
    chosen = choose_events(names, list(events or []))
    warnings: list[str] = []
    target_meta: list[dict] = []
    timelines: list[VmaTimeline] = []
    nulls = src.null_count("pid")[0] if src.pid_from_tid else 0
    if nulls:
        warnings.append(
            f"{nulls} samples carry a thread id but no pid (perf script text printed "
            "without the pid field shows the tid alone): "
            + ("the trace's COMM/FORK records give the pid of the threads they know, "
               if src._tid_pid is not None else "")
            + "a thread id stands for its pid otherwise (exact for single-threaded "
            "processes; print the pid field with perf script -F pid,tid,... to be sure)")

    # samples per pid of the chosen events: all, with a virtual, with a physical address
    per_pid: dict = {}
    for (e, p_), c in scan["counts"].items():
        if chosen == names or e in chosen:
            q = per_pid.setdefault(p_, [0, 0, 0])
            for k in range(3):
                q[k] += c[k]
    n_all = sum(q[0] for q in per_pid.values())
    n_virt = sum(q[1] for q in per_pid.values())
    n_phys = sum(q[2] for q in per_pid.values())
    what = f"{n_all:,} samples" + (f" (events: {', '.join(chosen)})" if chosen else "")
    regions_hint = ("; its regions table is a DAMON trace (DAMON's own result), not "
                    "samples to replay" if meta.get("tables", {}).get("regions") else "")

    def no_addresses(kind: str, how: str, cli_how: str | None = None):
        def msg(h):
            return (f"none of the trace's {what} carries a {kind} address, so the replay "
                    f"has nothing to count; {h}{regions_hint}")
        return InputError(msg(how), cli_message=msg(cli_how or how))

    translator = None
    if (physical and access == "perf") or (not physical and access == "perf-phys") or \
            (physical and access == "abit" and n_phys == 0 and pm is not None and len(pm)):
        if pm is None or len(pm) == 0:
            if physical:
                msg = ("paddr with {perf} counts the samples' virtual addresses at the "
                       "physical frames they map to, which needs pagemap snapshots: give "
                       "{pagemap} or ingest them into the trace directory; for samples "
                       "with physical addresses use {phys}")
                raise ConfigError(
                    msg.format(perf="access='perf'", pagemap="pagemap=DIR",
                               phys="access='perf-phys'"),
                    cli_message=msg.format(perf="--access perf", pagemap="--pagemap DIR",
                                           phys="--access perf-phys"))
            msg = ("perf-phys with vaddr/fvaddr needs pagemap snapshots: give {} or ingest "
                   "them into the trace directory")
            raise InputError(msg.format("pagemap=DIR"),
                             cli_message=msg.format("--pagemap DIR"))
        from .translate import Translator
        translator = Translator.from_tables(pm)
    address_source = ("virtual" if not physical and access != "perf-phys" else
                      "physical" if translator is None else
                      "physical, translated to virtual through pagemap snapshots"
                      if not physical else
                      "virtual, translated to physical through pagemap snapshots")
    if address_source.startswith("virtual") and n_virt == 0:
        raise no_addresses("data (virtual)", "record with `perf mem record`, or `perf record "
                           "-d` (software events: page faults)")
    if address_source.startswith("physical") and n_phys == 0:
        how = "record with `perf mem record --phys-data` (or `perf record --phys-data`)"
        alt = ", or replay the virtual addresses with {} and pagemap snapshots ({})"
        raise no_addresses("physical", how + (alt.format("access='perf'", "pagemap=DIR")
                                               if physical else ""),
                           how + (alt.format("--access perf", "--pagemap DIR")
                                  if physical else ""))
    use_pid = 1 if address_source.startswith("virtual") else 2

    def samples_of(p) -> str:
        q = per_pid.get(p)
        return (f"the trace has no sample of pid {p}" if q is None else
                f"pid {p} has {q[0]:,} samples, none with an address")

    def pid_list() -> str:
        top = sorted(((q[use_pid], p_) for p_, q in per_pid.items() if p_ is not None
                      and q[use_pid]), reverse=True)[:5]
        return ", ".join(f"{p_} ({n:,})" for n, p_ in top) or "none"

    if pids and not (not physical and access == "perf-phys"):
        # (perf-phys finds the process of a frame in the pagemap, not in the sample)
        missing = [p for p in pids if not per_pid.get(p, [0, 0, 0])[use_pid]]
        if len(missing) == len(pids):
            def msg(given):
                return (f"{'; '.join(samples_of(p) for p in missing)} ({given}); the "
                        f"processes with the most samples with addresses: {pid_list()}")
            raise InputError(msg(f"pids={pids}"),
                             cli_message=msg(" ".join(f"--pid {p}" for p in pids)))
        for p in missing:
            warnings.append(f"pid {p}: no sample with an address (its target stays idle)")
    if not scan["ordered"] or (access == "perf-phys" and ops != "paddr"):
        # streaming needs time order; the pagemap translation works on the whole table
        src.materialize()

    def selected(columns=SAMPLE_COLUMNS):
        for tb in src.tables(columns):
            yield filter_events(tb, chosen, names)

    n_untrans = [0]

    def physical_of(tb):
        """(time_ns, phys_addr) of the samples: recorded, or translated by the pagemap."""
        if translator is None:
            return physical_samples(tb)
        s_ = tb.filter(pc.and_(pc.is_valid(tb.column("addr")), pc.is_valid(tb.column("pid"))))
        t_ = s_.column("time_ns").to_numpy(zero_copy_only=False).astype(np.int64)
        v_ = s_.column("addr").to_numpy(zero_copy_only=False).astype(np.uint64)
        p_ = s_.column("pid").to_numpy(zero_copy_only=False).astype(np.int64)
        ph = translator.virt_to_phys_present(p_, v_, t_)
        ok = ph != 0
        n_untrans[0] += int((~ok).sum())
        a_, keep = engine_addresses(ph[ok])
        t_ = t_[ok]
        return (t_ if keep is None else t_[keep]), a_

    # -- targets ---------------------------------------------------------------------
    if physical:
        def convert(tb):
            pt, pa_ = physical_of(tb)
            return pt, np.zeros(pt.size, np.int64), pa_
        tpids: list[int | None] = [None]
        if ranges:
            rg, rsrc = normalize_ranges(ranges), "--range"
        else:
            try:
                rg, rsrc = default_range(meta, np.zeros(0, np.int64),
                                         config.profile.paddr_default)
            except InputError:
                # the span of the sampled physical addresses: their min and max suffice
                ext = []
                for tb in selected(["time_ns", "pid", "event", "addr", "phys_addr"]):
                    a = physical_of(tb)[1]
                    a = a[a > 0]
                    if a.size:
                        ext += [a.min(), a.max()]
                n_untrans[0] = 0
                rg, rsrc = default_range(meta, np.array(ext, np.int64),
                                         config.profile.paddr_default)
        rg = aligned_union(check_ranges(rg, "paddr range"), config.min_region)
        targets = [Target(lambda t, rg=rg: rg, pid=None)]
        target_meta.append({"target": 0, "pid": None, "ranges": rg.tolist(), "ranges_source": rsrc})
    else:
        if ops == "fvaddr":
            if not ranges:
                raise ConfigError("fvaddr needs at least one range (ranges=['START-END'])",
                                  cli_message="fvaddr needs at least one --range START-END")
            rg = aligned_union(normalize_ranges(ranges), config.min_region)
            tpids = list(pids) if pids else [None]
            targets = [Target(lambda t, rg=rg: rg, pid=p) for p in tpids]
            for i, p in enumerate(tpids):
                target_meta.append({"target": i, "pid": p, "ranges": rg.tolist(),
                                    "ranges_source": "--range"})
        else:
            if ranges:
                msg = ("{} applies to fvaddr and paddr; vaddr follows the process's "
                       "mappings (use {} for fixed ranges)")
                raise ConfigError(msg.format("ranges", "ops='fvaddr'"),
                                  cli_message=msg.format("--range", "--ops fvaddr"))
            if not pids:
                cand = {p_: q[use_pid] for p_, q in per_pid.items()
                        if p_ is not None and q[use_pid]}
                if not cand:
                    msg = f"none of the trace's {what} with addresses carries a pid; give "
                    raise InputError(msg + "pids=[PID]", cli_message=msg + "--pid PID")
                most = max(cand.values())
                pids = [min(p_ for p_, n in cand.items() if n == most)]
                warnings.append(f"no --pid given: monitoring pid {pids[0]}, the process with "
                                "the most samples with addresses")
            tpids = list(pids)
            targets = []
            for i, p in enumerate(tpids):
                tl = VmaTimeline(p, mm, mp, arch=meta.get("arch"))
                timelines.append(tl)
                targets.append(Target(tl.ranges_at, pid=p, dynamic=True, three_regions=True))
                target_meta.append({"target": i, "pid": p, "vma_source": tl.source})
                if tl.dropped:
                    # the gate area / kernel half: mapped in the trace, never in the mm
                    target_meta[-1]["mappings_left_out"] = [
                        {"start": s_, "end": e_, "name": n_} for s_, e_, n_ in tl.dropped]
            no_vmas = [p for p, tl in zip(tpids, timelines) if tl.source == "none"]
            if no_vmas:
                def msg(fixed):
                    return (f"vaddr follows a process's mappings, and the trace has none of "
                            f"pid {', '.join(map(str, no_vmas))} (no perf MMAP records: "
                            "`perf script` text shows them only with --show-mmap-events; no "
                            f"/proc/PID/maps snapshots): replay fixed ranges with {fixed}, or "
                            "ingest the perf.data")
                raise InputError(msg("ops='fvaddr', ranges=['START-END']"),
                                 cli_message=msg("--ops fvaddr --range START-END"))
        if access == "perf-phys":
            tr = translator

            def convert(tb):
                t_, g_, a_, _ = translated_samples(tb, tpids, tr)
                return t_, g_, a_
        else:
            def convert(tb):
                return virtual_samples(tb, tpids)

    def streamed_batches():
        """(time_ns, target, addr) of the samples the targets see, in time order, one
        batch at a time (called again for each pass)."""
        for tb in selected():
            t_, g_, a_ = convert(tb)
            keep = g_ >= 0
            if not keep.all():
                t_, g_, a_ = t_[keep], g_[keep], a_[keep]
            yield t_, g_, a_

    access_batches = streamed_batches
    if not src.streamed:
        # the whole table in memory: convert it once, sorted by time like AccessSamples
        tb = next(selected())
        if access == "perf-phys" and ops != "paddr":
            s_time, s_tgt, s_addr, untranslated = translated_samples(tb, tpids, tr)
            if untranslated:
                warnings.append(f"{untranslated} samples' physical addresses did not translate")
        else:
            s_time, s_tgt, s_addr = convert(tb)
        del tb
        keep = s_tgt >= 0
        if not keep.all():
            s_time, s_tgt, s_addr = s_time[keep], s_tgt[keep], s_addr[keep]
        if s_time.size > 1 and np.any(np.diff(s_time) < 0):
            order = np.argsort(s_time, kind="stable")
            s_time, s_tgt, s_addr = s_time[order], s_tgt[order], s_addr[order]
        one = (s_time, s_tgt, s_addr)

        def one_batch():
            yield one
        access_batches = one_batch

    # -- t0 and the vaddr targets' initial regions -----------------------------------------
    t0_auto = None
    if timelines:
        need = auto or any(tl.ranges_at(t0) is None for tl in timelines)
        if need:
            t0_auto = _auto_start(timelines, access_batches, t_first, t_last,
                                  config.update_us * 1000)
        if auto:
            if t0_auto["time_ns"] is None:
                def msg(start, fixed):
                    return (f"{start}: the mappings of pid(s) "
                            f"{', '.join(str(p) for p in tpids)} never give three regions in "
                            f"this trace, so vaddr has nothing to monitor (use {fixed})")
                raise InputError(msg("start_ns='auto'", "ops='fvaddr' with ranges"),
                                 cli_message=msg("--start auto", "--ops fvaddr --range"))
            t0 = t0_auto["time_ns"]
            t0_auto["reason"] = (
                "the first time from which the targets' mappings give three regions that "
                f"cover the most samples until the first ops update: {t0_auto['covered']} of "
                f"the {t0_auto['samples_in_window']} samples from then until "
                f"{config.update_us} us later; the first sample is at {t_first} ns")
        for i, (tl, p) in enumerate(zip(timelines, tpids)):
            r0 = tl.ranges_at(t0)
            target_meta[i]["initial_ranges"] = None if r0 is None else r0.tolist()
            if r0 is None:
                hint = ""
                if t0_auto is not None and t0_auto["time_ns"] is not None:
                    f3 = t0_auto["first_three_regions_ns"]
                    hint = ((f"; its mappings give three regions from {f3} ns on" if f3
                             is not None else "") +
                            f"; try --start {t0_auto['time_ns']} (what --start auto picks: "
                            f"the three regions then cover {t0_auto['covered']} of the "
                            f"{t0_auto['samples_in_window']} samples until the first ops "
                            "update)")
                warnings.append(f"pid {p}: no three regions at replay start (mappings "
                                f"known then: {len(tl.vmas_at(t0))}); the target has no "
                                f"regions until an ops update finds them{hint}")
    elif auto:
        t0_auto = {"time_ns": t0, "reason": f"--ops {ops} has fixed ranges: the first sample"}
    t0_source = "auto" if auto else "--start" if start_ns is not None else "first sample"
    _check_span(config, t0, t_last, t0_source)
    acc = StreamedSamples(access_batches(), t0)

    # -- run -------------------------------------------------------------------------
    writer = (HistoryWriter(output, force=force, row_group_rows=ROW_GROUP_ROWS,
                            inputs=[source if isinstance(source, (str, os.PathLike)) else None,
                                    pagemap if isinstance(pagemap, (str, os.PathLike)) else None])
              if output is not None else None)
    try:
        hist, metadata = _run(
            config, targets, acc, t0, t_last, access=access, physical=physical,
            accessed_only=accessed_only, max_rows=max_rows, fixed_engine=fixed_engine,
            progress=progress, writer=writer, warnings=warnings)
        used = acc.drain()                # the samples from t0 on (the rest of the stream)
        if translator is not None and physical and n_untrans[0]:
            warnings.append(f"{n_untrans[0]} samples' virtual addresses did not translate "
                            "to a frame (their page is present in none of the pagemap "
                            "snapshots of their pid)")
        if used == 0:
            if translator is not None and n_untrans[0]:
                raise InputError(f"no sample's address translated through the pagemap "
                                 f"snapshots ({n_untrans[0]:,} did not): the snapshots must "
                                 "be of the same run and processes as the samples")
            def msg(source):
                return (f"no sample of the targets from t0 on ({t0} ns, {source}; the last "
                        f"sample is at {t_last} ns): nothing to replay")
            raise InputError(msg("start_ns" if t0_source == "--start" else t0_source),
                             cli_message=msg(t0_source))
        if hist.n_snapshots == 0:
            _check_span(config, t0, t_last, t0_source, always=True)
        if all(e[2] == e[3] for e in hist.coverage):
            why = [w for w in warnings if "no three regions" in w]
            raise InputError(
                "no target had a region in any snapshot, so the history would be empty"
                + (": " + "; ".join(why) if why else " (the targets' ranges are empty)"))
        metadata.update({
            "ops": ops, "access": access, "events": chosen, "targets": target_meta,
            "t0_ns": t0, "t0_source": t0_source, "address_source": address_source,
            "t0_auto": t0_auto, "t_last_ns": t_last, "samples_used": used,
            "input": prov, "warnings": warnings,
        })
        if writer is not None:
            return RegionHistory(None, metadata, writer.close(metadata))
    except BaseException as e:
        if writer is None:
            raise
        raise writer.abort(e) from None
    return RegionHistory(history_table(hist, [t.pid for t in targets]), metadata)


def _run(config, targets, acc, t0, t_last, *, access, physical, accessed_only, max_rows,
         fixed_engine, progress, writer, warnings) -> tuple[History, dict]:
    """Run the monitor; snapshots go to ``writer`` as they are taken (or stay in the
    returned History).  Returns the History and the engine's part of the metadata."""
    pids = [t.pid for t in targets]
    sink = None
    if writer is not None:
        def sink(cols):
            writer.add(history_table(History(*cols), pids))
    use_fixed = (fixed_engine and config.fixed_granularity and access != "abit"
                 and not config.tuning)
    reason = None
    if use_fixed:
        from .fixed import FixedMonitor
        mon = FixedMonitor(config, targets)
        hist = mon.run(acc, t0, t_last, accessed_only=accessed_only, max_rows=max_rows,
                       progress=progress, sink=sink)
        reason = mon.auto_accessed_only
    else:
        if config.fixed_granularity:
            from .fixed import expected_snapshots, grid_regions
            # the grid at start, or at the end if the mappings grew by then
            nreg = max(grid_regions(targets, t, config.max_region) for t in (t0, t_last))
            rows = nreg * expected_snapshots(config, t0, t_last)
            if not accessed_only and max_rows is not None and rows > max_rows:
                accessed_only = True
                reason = (f"every region of every snapshot would be {rows:,} rows (more "
                          f"than {max_rows:,}): only regions with accesses are written")
        mon = Monitor(config, targets, access="abit" if access == "abit" else "perf",
                      physical=physical, max_fixed_regions=DENSE_FIXED_MAX_REGIONS)
        hist = mon.run(acc, t0, t_last, accessed_only=accessed_only, progress=progress,
                       sink=sink)
    if reason is not None:
        accessed_only = True
        warnings.append(reason + " (pass --accessed-only to ask for this, or a larger "
                        "--max-rows / --min-region)")
    metadata = {
        "engine": f"tracedamon {__version__}",
        "engine_path": "fixed-granularity (sparse)" if use_fixed else "adaptive",
        "config": config.to_dict(),
        "generator": GENERATOR if config.profile.prng == "pcg32" else PRNG_GENERATOR,
        "seed": config.seed,
        "snapshots": hist.n_snapshots,
        "accessed_only": bool(accessed_only),
        # the sparse-history contract: rows with nr_accesses 0 left out; coverage says
        # what was monitored (see RegionHistory)
        "sparse": bool(accessed_only),
        "coverage": [list(map(int, e)) for e in hist.coverage],
        "rows": "regions with nr_accesses > 0 only" if accessed_only else "every region",
        "accessed_only_reason": (reason if reason is not None else
                                 "asked for" if accessed_only else None),
        "max_rows": max_rows,
        "folio_model": "4 KiB pages",
        "tune_events": [list(map(int, e)) for e in hist.tune_events],
    }
    if config.kernel != "released":        # (the default profile: no key, as before)
        metadata["kernel"] = config.kernel
    return hist, metadata


def _check_span(config: MonitorConfig, t0: int, t_last: int, t0_source: str,
                always: bool = False) -> None:
    """Refuse a replay that cannot complete one aggregation (it would write no snapshot):
    the last sample must fall in the last sample interval of the first aggregation."""
    S = config.sample_us * 1000
    if not always and t_last >= t0 + (config.aggr_samples - 1) * S:
        return
    # t0_source names the option where the user gave t0 ("--start"): start_ns in the API
    api_source = "start_ns" if t0_source == "--start" else t0_source

    def late(source):
        return (f"the replay starts after the trace's last sample (t0 = {t0} ns ({source}), "
                f"last sample at {t_last} ns): no snapshot")

    def short(source, aggr):
        return (f"the trace spans {(t_last - t0) / 1e6:.6g} ms from t0 = {t0} ns ({source}) "
                f"to its last sample, shorter than one aggregation interval "
                f"({config.aggr_us / 1000:g} ms, {aggr}): no snapshot")
    if t_last < t0:
        raise InputError(late(api_source), cli_message=late(t0_source))
    raise InputError(short(api_source, f"aggr_us={config.aggr_us}"),
                     cli_message=short(t0_source, f"--aggr-us {config.aggr_us}"))


def every_stride(batches, stride: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per target ``i``: (time_ns, addr) of its samples number 0, ``stride[i]``,
    ``2*stride[i]``, ... (counted over all ``batches`` of (time_ns, target, addr))."""
    ntgt = len(stride)
    seen = np.zeros(ntgt, np.int64)
    thin: list[list] = [[] for _ in range(ntgt)]
    for t, g, a in batches:
        for i in range(ntgt):
            sel = np.nonzero(g == i)[0]
            k = (-seen[i]) % stride[i]          # the first index here that is a multiple
            thin[i].append((t[sel[k::stride[i]]], a[sel[k::stride[i]]]))
            seen[i] += sel.size
    return [(np.concatenate([x[0] for x in th]) if th else np.zeros(0, np.int64),
             np.concatenate([x[1] for x in th]) if th else np.zeros(0, np.int64))
            for th in thin]


def _auto_start(timelines, access_batches, t_first: int, t_last: int, window_ns: int) -> dict:
    """:func:`tracedamon.engine.ops.vaddr.auto_start` over streamed samples.

    ``auto_start`` scores the candidates on every ``stride``-th sample of each target
    (``stride = count // max_samples``) and counts the chosen candidate's coverage
    exactly over the samples of its window.  Here: one pass counts each target's
    samples, a second keeps the same every-``stride``-th samples (scored by
    ``auto_start`` itself, with nothing left to thin), and a third reads only the
    chosen window for the exact counts -- the same result without holding all samples.
    """
    import inspect
    max_samples = inspect.signature(auto_start).parameters["max_samples"].default
    ntgt = len(timelines)
    count = np.zeros(ntgt, np.int64)
    for _, g, _ in access_batches():
        count += np.bincount(g, minlength=ntgt)[:ntgt]
    per_tgt = every_stride(access_batches(), np.maximum(1, count // max_samples))
    res = auto_start(timelines, per_tgt, t_first, t_last, window_ns,
                     max_samples=np.iinfo(np.int64).max)
    del per_tgt
    c = res["time_ns"]
    if c is None:
        return res
    regs = [tl.ranges_at(c) for tl in timelines]
    covered = within = 0
    for t, g, a in access_batches():
        if t.size == 0 or t[-1] < c:
            continue
        if t[0] >= c + window_ns:
            break
        for i in range(ntgt):
            sel = g == i
            ti, ai = t[sel], a[sel]
            covered += _covered(regs[i], ti, ai, c, c + window_ns)
            within += int(np.searchsorted(ti, c + window_ns) - np.searchsorted(ti, c))
    res["covered"], res["samples_in_window"] = covered, within
    return res


def history_table(h: History, pids: list[int | None]) -> pa.Table:
    """A REGIONS Arrow table from the engine's column arrays."""
    n = h.start.size
    pid_by_target = np.array([-1 if p is None else p for p in pids] or [-1], np.int64)
    pid = pid_by_target[h.target] if n else np.zeros(0, np.int64)
    cols = {
        "run": pa.array(np.zeros(n, np.int32)),
        "snapshot": pa.array(h.snapshot.astype(np.int64)),
        "time_ns": pa.array(h.time_ns.astype(np.int64)),
        "target": pa.array(h.target.astype(np.int32)),
        "pid": pa.array(pid.astype(np.int32), mask=pid < 0),
        "start": pa.array(to_unsigned(h.start, "region start")),
        "end": pa.array(to_unsigned(h.end, "region end")),
        "nr_accesses": pa.array(h.nr_accesses.astype(np.uint32)),
        "age": pa.array(h.age.astype(np.uint32)),
        "nr_accesses_bp": pa.array(h.nr_accesses_bp.astype(np.uint32)),
    }
    return pa.table(cols, schema=REGIONS)
