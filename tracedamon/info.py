"""`tracedamon info`: a readable summary of what an input or a trace directory holds."""
from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import pyarrow as pa

from .schema import TABLES
from .store.parquet import ParquetReader, read_metadata
from .store.trace import Trace
from .units import PAGE_SIZE, format_bytes, format_duration_ns


def _fmt_ns(ns: int | None) -> str:
    if ns is None:
        return "-"
    return f"{ns / 1e9:.6f} s"


def _sample_stats(trace: Trace) -> dict:
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
                continue            # a row group without times
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
                counter[None] += rows           # left out of the file: all null
                continue
            st = stats(g, name)
            if st is not None and st.constant:
                counter[st.min] += rows         # one value in the whole row group
            else:
                read.append(name)
        if has_time and not time_stats:
            read.append("time_ns")
        if not read:
            continue
        import pyarrow.compute as pc        # only here: 50 ms to load, often unneeded
        batch = pf.read_row_group(g, columns=read)
        for name, counter in (("pid", per_pid), ("event_id", per_event)):
            if name in read:
                vc = pc.value_counts(batch.column(name))
                counter.update(dict(zip(vc.field("values").to_pylist(),
                                        vc.field("counts").to_pylist())))
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
    for key in ("layout", "byte_order", "compression", "perf_version", "hostname", "os_release", "arch",
                "cpu_desc", "nrcpus", "record_counts", "skipped", "duplicates_dropped",
                "partial_snapshots_dropped", "intervals", "samples_out_of_order",
                "unknown_sample_ids", "unknown_record_types", "absent_columns",
                "truncation"):
        if key in meta:
            out[key] = meta[key]
    if trace.num_rows("samples"):
        out.update(_sample_stats(trace))
    if trace.num_rows("lost"):
        lt = trace.table("lost", columns=["kind", "lost"])
        lt = pa.table({"kind": lt.column("kind").cast(pa.string()), "lost": lt.column("lost")})
        agg = lt.group_by("kind", use_threads=False).aggregate([("lost", "sum")])
        out["lost"] = {str(k): int(v or 0) for k, v in sorted(zip(
            agg.column("kind").to_pylist(), agg.column("lost_sum").to_pylist()))}
    if trace.num_rows("regions"):
        r = trace.df("regions", columns=["run", "snapshot", "time_ns", "target", "start", "end"])
        runs = []
        for run, g in r.groupby("run"):
            per = g.groupby("snapshot").size()
            times = g.groupby("snapshot")["time_ns"].first().sort_values()
            step = int(times.diff().median()) if len(times) > 1 else None
            runs.append({
                "run": int(run), "snapshots": int(per.size),
                "targets": sorted(int(x) for x in g["target"].unique()),
                "time_span_ns": [int(times.iloc[0]), int(times.iloc[-1])],
                "aggregation_ns_median": step,
                "address_span": [int(g["start"].min()), int(g["end"].max())],
                "regions_per_snapshot": [int(per.min()), int(per.max())],
            })
        out["runs"] = runs
    if trace.num_rows("pagemap"):
        pm = trace.df("pagemap", columns=["snapshot", "pid", "vaddr_start", "vaddr_end"])
        out["pagemap"] = {"snapshots": int(pm["snapshot"].nunique()),
                          "pids": sorted(int(x) for x in pm["pid"].unique()),
                          "pages": int(((pm["vaddr_end"] - pm["vaddr_start"]) // PAGE_SIZE).sum())}
    return out


def render(s: dict) -> str:
    lines = [f"{s['path']}"]
    for k in ("layout", "byte_order", "perf_version", "hostname", "os_release", "arch", "cpu_desc"):
        if k in s:
            lines.append(f"  {k}: {s[k]}")
    if "nrcpus" in s and isinstance(s["nrcpus"], dict):
        lines.append(f"  cpus: {s['nrcpus'].get('online')} online of {s['nrcpus'].get('avail')}")
    c = s.get("compression")
    if isinstance(c, dict):
        lines.append(f"  compression: {c.get('type')} level {c.get('level')} "
                     f"(ratio {c.get('ratio')})")
    t = s.get("truncation")
    if isinstance(t, dict) and t.get("description"):
        lines.append(f"  truncated recording: {t['description']}")
    lines.append("  tables: " + ", ".join(f"{k} ({v} rows)" for k, v in s["tables"].items()))
    if "time_span_ns" in s:
        a, b = s["time_span_ns"]
        dur = (b - a) if a is not None and b is not None else None
        lines.append(f"  samples: {sum(s['events'].values())} from {_fmt_ns(a)} to {_fmt_ns(b)}"
                     + (f" ({dur / 1e9:.3f} s)" if dur is not None else ""))
        for e, n in s["events"].items():
            lines.append(f"    event {e}: {n}")
        top = list(s["pids"].items())
        for pid, n in top[:10]:
            lines.append(f"    pid {pid}: {n}")
        if len(top) > 10:
            lines.append(f"    ... {len(top) - 10} more pids")
    if "lost" in s:
        lines.append("  lost: " + ", ".join(f"{k} {v}" for k, v in s["lost"].items()))
    for run in s.get("runs", []):
        a, b = run["time_span_ns"]
        lo, hi = run["address_span"]
        agg = run["aggregation_ns_median"]
        lines.append(
            f"  run {run['run']}: {run['snapshots']} snapshots over {(b - a) / 1e9:.3f} s, "
            f"aggregation {agg / 1e6 if agg else 0:.1f} ms, targets {run['targets']}, "
            f"addresses 0x{lo:x}-0x{hi:x} ({format_bytes(hi - lo, 1)}), "
            f"regions per snapshot {run['regions_per_snapshot'][0]}-{run['regions_per_snapshot'][1]}")
    if "pagemap" in s:
        pm = s["pagemap"]
        lines.append(f"  pagemap: {pm['snapshots']} snapshots, pids {pm['pids']}, "
                     f"{pm['pages']} pages")
    for k in ("record_counts", "skipped", "duplicates_dropped", "partial_snapshots_dropped",
              "intervals", "samples_out_of_order", "unknown_sample_ids", "unknown_record_types"):
        if s.get(k) not in (None, {}, []):
            lines.append(f"  {k}: {s[k]}")
    for table, cols in (s.get("absent_columns") or {}).items():
        lines.append(f"  {table} columns not recorded (left out of {table}.parquet, read "
                     f"back as nulls): {', '.join(cols)}")
    return "\n".join(lines)


def _us(v) -> str:
    return "-" if v is None else format_duration_ns(float(v) * 1000, smallest="us")


def _history_stats(path: Path) -> dict:
    """Snapshots, time span, targets, address span and regions per snapshot of a region
    history file, read a batch of narrow columns at a time (bounded memory)."""
    import pyarrow.compute as pc

    pf = ParquetReader(path)
    names = pf.names
    cols = [c for c in ("run", "snapshot", "time_ns", "target", "pid", "start", "end",
                        "nr_accesses") if c in names]
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
        import numpy as np
        step = int(np.median(np.diff(np.array(ts, dtype=np.int64))))
    return {"rows": pf.num_rows, "snapshots": len(per_snap),
            "time_span_ns": [ts[0], ts[-1]] if ts else [None, None],
            "aggregation_ns_median": step,
            "targets": sorted(targets, key=lambda tp: (tp[0], tp[1] or 0)),
            "address_span": [lo, hi], "accessed_rows": accessed,
            "regions_per_snapshot": [min(per_snap.values()), max(per_snap.values())]
            if per_snap else [0, 0]}


def describe_history(path: str | os.PathLike, meta: dict | None = None) -> str:
    """What a region-history .parquet holds (a replay's output, or a regions table):
    snapshots, targets, time span, whether every region is listed or only those with
    accesses, and the replay's configuration when it has one."""
    p = Path(path)
    if meta is None:
        meta = read_metadata(p) or {}
    st = _history_stats(p)
    rp = meta.get("replay")
    who = " written by tracedamon replay" if rp else (
        ", the regions table of a trace directory" if meta.get("table") == "regions"
        else "")
    lines = [f"{p}: region history{who} ({st['rows']} rows)"]
    a, b = st["time_span_ns"]
    if st["snapshots"]:
        agg = st["aggregation_ns_median"]
        lines.append(f"  snapshots: {st['snapshots']} from {_fmt_ns(a)} to {_fmt_ns(b)} "
                     f"({(b - a) / 1e9:.3f} s)"
                     + (f", every {agg / 1e6:.1f} ms" if agg else ""))
        tg = ", ".join(f"{t}" + (f" (pid {pid})" if pid is not None else "")
                       for t, pid in st["targets"][:10])
        more = len(st["targets"]) - 10
        lines.append(f"  targets: {tg}" + (f" ... {more} more" if more > 0 else ""))
        lo, hi = st["address_span"]
        r0, r1 = st["regions_per_snapshot"]
        lines.append(f"  addresses 0x{lo:x}-0x{hi:x} ({format_bytes(hi - lo, 1)}), regions per "
                     f"snapshot {r0}-{r1}, {st['accessed_rows']} rows with accesses")
    else:
        lines.append("  no snapshot")
    if rp:
        if rp.get("accessed_only"):
            why = rp.get("accessed_only_reason")
            lines.append("  sparse: only regions with accesses are listed"
                         + (f" ({why})" if why else ""))
        else:
            lines.append("  every region of every snapshot is listed")
        c = rp.get("config") or {}
        ev = rp.get("events")
        lines.append(f"  replay: ops {rp.get('ops')}, access {rp.get('access')}"
                     + (f" ({', '.join(map(str, ev))})" if ev else "")
                     + f", sample {_us(c.get('sample_us'))}, aggregation "
                     f"{_us(c.get('aggr_us'))}, update {_us(c.get('update_us'))}")
        lines.append(f"  regions {c.get('min_nr_regions')}-{c.get('max_nr_regions')}, "
                     f"region size {c.get('min_region')}-{c.get('max_region') or 'any'}, "
                     f"min_nr_regions mode {c.get('min_nr_regions_mode')}, seed "
                     f"{rp.get('seed', c.get('seed'))}"
                     + (f", kernel {rp['kernel']}" if rp.get("kernel") else ""))
        fo = rp.get("folios")
        if fo:          # (abit with large folios in the pagemap snapshots; else 4 KiB pages)
            sizes = ", ".join(f"{n} x {z}" for z, n in (fo.get("folios") or {}).items())
            lines.append(f"  folio model: {rp.get('folio_model')} ({sizes}; "
                         f"{fo.get('checked_whole', 0)} checked whole"
                         + ("" if fo.get("heads_recorded", True) else
                            "; no head pages recorded: THP taken as 2 MiB folios") + ")")
        inp = rp.get("input") or {}
        names = [i.get("name") for i in inp.get("inputs", []) if isinstance(i, dict)]
        src = inp.get("trace") or "-"
        lines.append(f"  input: {src}" + (f" ({', '.join(map(str, names))})" if names else "")
                     + (f", {rp['samples_used']} samples used" if "samples_used" in rp else "")
                     + (f", t0 {_fmt_ns(rp['t0_ns'])} ({rp.get('t0_source')})"
                        if rp.get("t0_ns") is not None else ""))
        for w in rp.get("warnings") or []:
            lines.append(f"  warning: {w}")
    elif meta.get("config"):
        c = meta["config"]
        lines.append("  intervals: " + ", ".join(f"{k} {_us(v)}" for k, v in c.items()
                                                 if k.endswith("_us")))
    return "\n".join(lines)


def _describe_parquet(p: Path) -> str:
    from .store.atomic import HISTORY_COLUMNS, parquet_info, parquet_what
    meta, names = parquet_info(p)
    if not names:
        from .errors import InputError
        raise InputError(f"{p}: not a Parquet file")
    table = (meta or {}).get("table")
    if meta is not None and table in (None, "regions") and "attribution" not in meta \
            and HISTORY_COLUMNS <= set(names):
        return describe_history(p, meta)
    if meta is not None and table in TABLES:
        # one table of a trace directory: as part of its directory
        s = summarize(Trace(p))
        s["tables"] = {table: s["tables"].pop(p.stem)} if p.stem in s["tables"] else \
            s["tables"]
        return render(s)
    rows = ParquetReader(p).num_rows
    return (f"{p}: {parquet_what(meta)} ({rows} rows)\n"
            f"  columns: {', '.join(names)}")


def describe(path: str | os.PathLike) -> str:
    """Summary text of a trace directory, a .parquet table (a region history is
    described as one), or any input (ingested to a temporary place)."""
    p = Path(path)
    if p.is_dir() and (p / "meta.json").exists():
        return render(summarize(Trace(p)))
    if p.is_file() and p.suffix == ".parquet":
        return _describe_parquet(p)
    from .errors import shown_as
    from .ingest import ingest
    tmp = Path(tempfile.mkdtemp(prefix="tracedamon-info-"))
    try:
        dest = ingest([p], tmp / "t.td")
        s = summarize(Trace(dest))
        s["path"] = str(p)
        return render(s)
    except BaseException as e:
        # an error of the temporary trace directory names what the user gave
        raise shown_as(e, {tmp / "t.td": f"{p} (ingested into a temporary directory)",
                           tmp: "a temporary directory"})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
