"""What an input, a trace directory or a Parquet table holds, read for `tracedamon info`.

The reading side of ``info``: row-group statistics and narrow column batches in bounded
memory, returned as plain dicts; :mod:`tracedamon.cli.info` renders them as text. An
input that is not yet a trace directory is ingested into a temporary one first.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..errors import InputError, shown_as
from ..ingest import ingest
from ..schema import TABLES
from ..store.atomic import HISTORY_COLUMNS, parquet_info, parquet_what
from ..store.parquet import ParquetReader, read_metadata
from ..store.trace import Trace
from ..units import PAGE_SIZE


def sample_stats(trace: Trace) -> dict:
    """Time span, samples per event and per pid, in bounded memory.

    Row-group statistics answer without reading the rows where they can: the time span
    when every row group has min/max (perf.data ingest writes them), a count when a
    row group holds one pid (or one event) only. Other row groups are read one at a
    time, narrow columns only.
    """
    pf = ParquetReader(trace.file("samples"))
    names_in_file = pf.names
    stats = pf.statistics

    has_time = "time_ns" in names_in_file
    tmin = tmax = None
    time_stats = has_time and pf.num_row_groups > 0
    for g in range(pf.num_row_groups if has_time else 0):
        st = stats(g, "time_ns")
        if st is None or not st.has_min_max:
            if st is not None and st.null_count == pf.row_group_rows(g):
                continue  # a row group without times
            time_stats = False
            break
        tmin = st.min if tmin is None else min(tmin, st.min)
        tmax = st.max if tmax is None else max(tmax, st.max)
    per_event: Counter = Counter()
    per_pid: Counter = Counter()
    for g in range(pf.num_row_groups):
        rows = pf.row_group_rows(g)
        read = []
        for name, counter in (("pid", per_pid), ("event_id", per_event)):
            if name not in names_in_file:
                counter[None] += rows  # left out of the file: all null
                continue
            st = stats(g, name)
            if st is not None and st.constant:
                counter[st.min] += rows  # one value in the whole row group
            else:
                read.append(name)
        if has_time and not time_stats:
            read.append("time_ns")
        if not read:
            continue
        # only here: pyarrow.compute takes 50 ms to load, and the summary an ingest
        # prints mostly answers from the row-group statistics (tests/test_arrays.py)
        import pyarrow.compute as pc

        batch = pf.read_row_group(g, columns=read)
        for name, counter in (("pid", per_pid), ("event_id", per_event)):
            if name in read:
                vc = pc.value_counts(batch.column(name))
                counter.update(
                    dict(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist()))
                )
        if "time_ns" in read:
            t = batch.column("time_ns")
            if t.null_count < len(t):
                lo, hi = pc.min(t).as_py(), pc.max(t).as_py()
                tmin = lo if tmin is None else min(tmin, lo)
                tmax = hi if tmax is None else max(tmax, hi)
    names = {}
    if trace.has("events"):
        ev = ParquetReader(trace.file("events")).read(columns=["event_id", "name"]).to_pylist()
        names = {e["event_id"]: e["name"] or f"event {e['event_id']}" for e in ev}
    return {
        "time_span_ns": [tmin, tmax],
        "events": {names.get(k, str(k)): n for k, n in sorted(per_event.items())},
        "pids": dict(per_pid.most_common()),
    }


def summarize(trace: Trace) -> dict:
    """A dict summary of a trace directory (what `info` prints)."""
    out: dict = {"path": str(trace.path), "tables": {t: trace.num_rows(t) for t in trace.tables()}}
    meta = trace.meta
    for key in (
        "layout",
        "byte_order",
        "compression",
        "perf_version",
        "hostname",
        "os_release",
        "arch",
        "cpu_desc",
        "nrcpus",
        "record_counts",
        "skipped",
        "duplicates_dropped",
        "partial_snapshots_dropped",
        "intervals",
        "samples_out_of_order",
        "unknown_sample_ids",
        "unknown_record_types",
        "absent_columns",
        "truncation",
    ):
        if key in meta:
            out[key] = meta[key]
    if trace.num_rows("samples"):
        out.update(sample_stats(trace))
    if trace.num_rows("lost"):
        lt = trace.table("lost", columns=["kind", "lost"])
        lt = pa.table({"kind": lt.column("kind").cast(pa.string()), "lost": lt.column("lost")})
        agg = lt.group_by("kind", use_threads=False).aggregate([("lost", "sum")])
        out["lost"] = {
            str(k): int(v or 0)
            for k, v in sorted(
                zip(agg.column("kind").to_pylist(), agg.column("lost_sum").to_pylist())
            )
        }
    if trace.num_rows("regions"):
        r = trace.df("regions", columns=["run", "snapshot", "time_ns", "target", "start", "end"])
        runs = []
        for run, g in r.groupby("run"):
            per = g.groupby("snapshot").size()
            times = g.groupby("snapshot")["time_ns"].first().sort_values()
            step = int(times.diff().median()) if len(times) > 1 else None
            runs.append(
                {
                    "run": int(run),
                    "snapshots": int(per.size),
                    "targets": sorted(int(x) for x in g["target"].unique()),
                    "time_span_ns": [int(times.iloc[0]), int(times.iloc[-1])],
                    "aggregation_ns_median": step,
                    "address_span": [int(g["start"].min()), int(g["end"].max())],
                    "regions_per_snapshot": [int(per.min()), int(per.max())],
                }
            )
        out["runs"] = runs
    if trace.num_rows("pagemap"):
        pm = trace.df("pagemap", columns=["snapshot", "pid", "vaddr_start", "vaddr_end"])
        out["pagemap"] = {
            "snapshots": int(pm["snapshot"].nunique()),
            "pids": sorted(int(x) for x in pm["pid"].unique()),
            "pages": int(((pm["vaddr_end"] - pm["vaddr_start"]) // PAGE_SIZE).sum()),
        }
    return out


def history_stats(path: Path) -> dict:
    """Snapshots, time span, targets, address span and regions per snapshot of a region
    history file, read a batch of narrow columns at a time (bounded memory)."""
    import pyarrow.compute as pc  # as in sample_stats: 50 ms, loaded when needed

    pf = ParquetReader(path)
    names = pf.names
    cols = [
        c
        for c in ("run", "snapshot", "time_ns", "target", "pid", "start", "end", "nr_accesses")
        if c in names
    ]
    per_snap: Counter = Counter()
    times: dict = {}
    targets: set = set()
    lo = hi = None
    accessed = 0
    for b in pf.iter_batches(1 << 20, columns=cols):
        run = b.column("run").to_numpy() if "run" in cols else None
        snap = b.column("snapshot").to_numpy()
        key = list(zip(run.tolist(), snap.tolist())) if run is not None else snap.tolist()
        per_snap.update(key)
        for k, t in zip(key, b.column("time_ns").to_pylist()):
            times.setdefault(k, t)
        pids = b.column("pid").to_pylist() if "pid" in cols else [None] * b.num_rows
        targets.update(zip(b.column("target").to_pylist(), pids))
        if b.num_rows:
            a, z = pc.min(b.column("start")).as_py(), pc.max(b.column("end")).as_py()
            lo = a if lo is None else min(lo, a)
            hi = z if hi is None else max(hi, z)
            accessed += int(pc.sum(pc.greater(b.column("nr_accesses"), 0)).as_py() or 0)
    ts = sorted(times.values())
    step = None
    if len(ts) > 1:
        step = int(np.median(np.diff(np.array(ts, dtype=np.int64))))
    return {
        "rows": pf.num_rows,
        "snapshots": len(per_snap),
        "time_span_ns": [ts[0], ts[-1]] if ts else [None, None],
        "aggregation_ns_median": step,
        "targets": sorted(targets, key=lambda tp: (tp[0], tp[1] or 0)),
        "address_span": [lo, hi],
        "accessed_rows": accessed,
        "regions_per_snapshot": [min(per_snap.values()), max(per_snap.values())]
        if per_snap
        else [0, 0],
    }


def inspect(path: str | os.PathLike) -> dict:
    """What ``path`` holds, as a dict whose ``kind`` says how to read the rest:

    - ``trace``: a trace directory, an input (ingested into a temporary directory; its
      ``path`` is the input's), or one table of a trace directory: ``summary`` as
      :func:`summarize` gives it;
    - ``history``: a region history (a replay's output, a regions table): ``path``,
      ``meta`` (its metadata) and ``stats`` (:func:`history_stats`);
    - ``parquet``: any other Parquet file: ``path``, ``what``, ``rows``, ``columns``.
    """
    p = Path(path)
    if p.is_dir() and (p / "meta.json").exists():
        return {"kind": "trace", "summary": summarize(Trace(p))}
    if p.is_file() and p.suffix == ".parquet":
        return _inspect_parquet(p)
    tmp = Path(tempfile.mkdtemp(prefix="tracedamon-info-"))
    try:
        dest = ingest([p], tmp / "t.td")
        s = summarize(Trace(dest))
        s["path"] = str(p)
        return {"kind": "trace", "summary": s}
    except BaseException as e:
        # an error of the temporary trace directory names what the user gave
        raise shown_as(
            e,
            {
                tmp / "t.td": f"{p} (ingested into a temporary directory)",
                tmp: "a temporary directory",
            },
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _inspect_parquet(p: Path) -> dict:
    meta, names = parquet_info(p)
    if not names:
        raise InputError(f"{p}: not a Parquet file")
    table = (meta or {}).get("table")
    if (
        meta is not None
        and table in (None, "regions")
        and "attribution" not in meta
        and HISTORY_COLUMNS <= set(names)
    ):
        return inspect_history(p, meta)
    if meta is not None and table in TABLES:
        # one table of a trace directory: as part of its directory
        s = summarize(Trace(p))
        s["tables"] = {table: s["tables"].pop(p.stem)} if p.stem in s["tables"] else s["tables"]
        return {"kind": "trace", "summary": s}
    return {
        "kind": "parquet",
        "path": p,
        "what": parquet_what(meta),
        "rows": ParquetReader(p).num_rows,
        "columns": names,
    }


def inspect_history(path: str | os.PathLike, meta: dict | None = None) -> dict:
    """A region history's metadata and :func:`history_stats` (``kind`` ``history``)."""
    p = Path(path)
    if meta is None:
        meta = read_metadata(p) or {}
    return {"kind": "history", "path": p, "meta": meta, "stats": history_stats(p)}
