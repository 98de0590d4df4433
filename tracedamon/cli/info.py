"""`tracedamon info`: what an input, a trace directory or a Parquet table holds, as text.

The reading is :mod:`tracedamon.pipeline.info`'s; this module renders its dicts.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from ..units import format_bytes, format_duration_ns

HELP = (
    "Print what a perf.data, a DAMON trace or a trace directory holds: events, "
    "sample counts, time span, pids, lost samples, layout, regions.\n\n"
    "Example:  tracedamon info perf.data"
)


def info_cmd(src: Path = typer.Argument(..., help="input file or trace directory")) -> None:
    typer.echo(describe(src))


def register(app: typer.Typer) -> None:
    app.command("info", help=HELP)(info_cmd)


def describe(path: str | os.PathLike) -> str:
    """Summary text of a trace directory, a .parquet table (a region history is
    described as one), or any input (ingested to a temporary place)."""
    # heavy: loaded when the command runs (see tracedamon.cli)
    from ..pipeline.info import inspect

    d = inspect(path)
    if d["kind"] == "trace":
        return render(d["summary"])
    if d["kind"] == "history":
        return render_history(d)
    return f"{d['path']}: {d['what']} ({d['rows']} rows)\n  columns: {', '.join(d['columns'])}"


def _fmt_ns(ns: int | None) -> str:
    if ns is None:
        return "-"
    return f"{ns / 1e9:.6f} s"


def render(s: dict) -> str:
    lines = [f"{s['path']}"]
    for k in ("layout", "byte_order", "perf_version", "hostname", "os_release", "arch", "cpu_desc"):
        if k in s:
            lines.append(f"  {k}: {s[k]}")
    if "nrcpus" in s and isinstance(s["nrcpus"], dict):
        lines.append(f"  cpus: {s['nrcpus'].get('online')} online of {s['nrcpus'].get('avail')}")
    c = s.get("compression")
    if isinstance(c, dict):
        lines.append(
            f"  compression: {c.get('type')} level {c.get('level')} (ratio {c.get('ratio')})"
        )
    t = s.get("truncation")
    if isinstance(t, dict) and t.get("description"):
        lines.append(f"  truncated recording: {t['description']}")
    lines.append("  tables: " + ", ".join(f"{k} ({v} rows)" for k, v in s["tables"].items()))
    if "time_span_ns" in s:
        a, b = s["time_span_ns"]
        dur = (b - a) if a is not None and b is not None else None
        lines.append(
            f"  samples: {sum(s['events'].values())} from {_fmt_ns(a)} to {_fmt_ns(b)}"
            + (f" ({dur / 1e9:.3f} s)" if dur is not None else "")
        )
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
            f"regions per snapshot {run['regions_per_snapshot'][0]}-{run['regions_per_snapshot'][1]}"
        )
    if "pagemap" in s:
        pm = s["pagemap"]
        lines.append(
            f"  pagemap: {pm['snapshots']} snapshots, pids {pm['pids']}, {pm['pages']} pages"
        )
    for k in (
        "record_counts",
        "skipped",
        "duplicates_dropped",
        "partial_snapshots_dropped",
        "intervals",
        "samples_out_of_order",
        "unknown_sample_ids",
        "unknown_record_types",
    ):
        if s.get(k) not in (None, {}, []):
            lines.append(f"  {k}: {s[k]}")
    for table, cols in (s.get("absent_columns") or {}).items():
        lines.append(
            f"  {table} columns not recorded (left out of {table}.parquet, read "
            f"back as nulls): {', '.join(cols)}"
        )
    return "\n".join(lines)


def _us(v) -> str:
    return "-" if v is None else format_duration_ns(float(v) * 1000, smallest="us")


def describe_history(path: str | os.PathLike, meta: dict | None = None) -> str:
    """What a region-history .parquet holds (a replay's output, or a regions table):
    snapshots, targets, time span, whether every region is listed or only those with
    accesses, and the replay's configuration when it has one."""
    from ..pipeline.info import inspect_history  # heavy: see tracedamon.cli

    return render_history(inspect_history(path, meta))


def _exit_text(t: dict) -> str:
    """When a replay target's process exited (its leader; the last thread if later)."""
    last = t.get("exit_ns")
    return (
        f"pid {t.get('pid')} at {_fmt_ns(t['mm_exit_ns'])}"
        + ("" if last == t["mm_exit_ns"] else f" (last thread {_fmt_ns(last)})" if last else "")
        + ("" if last else " (a thread outlives the trace)")
    )


def render_history(d: dict) -> str:
    """The text of :func:`describe_history`, from :func:`~tracedamon.pipeline.info.inspect_history`."""
    p, meta, st = d["path"], d["meta"], d["stats"]
    rp = meta.get("replay")
    who = (
        " written by tracedamon replay"
        if rp
        else (", the regions table of a trace directory" if meta.get("table") == "regions" else "")
    )
    lines = [f"{p}: region history{who} ({st['rows']} rows)"]
    a, b = st["time_span_ns"]
    if st["snapshots"]:
        agg = st["aggregation_ns_median"]
        lines.append(
            f"  snapshots: {st['snapshots']} from {_fmt_ns(a)} to {_fmt_ns(b)} "
            f"({(b - a) / 1e9:.3f} s)" + (f", every {agg / 1e6:.1f} ms" if agg else "")
        )
        tg = ", ".join(
            f"{t}" + (f" (pid {pid})" if pid is not None else "") for t, pid in st["targets"][:10]
        )
        more = len(st["targets"]) - 10
        lines.append(f"  targets: {tg}" + (f" ... {more} more" if more > 0 else ""))
        lo, hi = st["address_span"]
        r0, r1 = st["regions_per_snapshot"]
        lines.append(
            f"  addresses 0x{lo:x}-0x{hi:x} ({format_bytes(hi - lo, 1)}), regions per "
            f"snapshot {r0}-{r1}, {st['accessed_rows']} rows with accesses"
        )
    else:
        lines.append("  no snapshot")
    if rp:
        if rp.get("accessed_only"):
            why = rp.get("accessed_only_reason")
            lines.append(
                "  sparse: only regions with accesses are listed" + (f" ({why})" if why else "")
            )
        else:
            lines.append("  every region of every snapshot is listed")
        c = rp.get("config") or {}
        ev = rp.get("events")
        lines.append(
            f"  replay: ops {rp.get('ops')}, access {rp.get('access')}"
            + (f" ({', '.join(map(str, ev))})" if ev else "")
            + f", sample {_us(c.get('sample_us'))}, aggregation "
            f"{_us(c.get('aggr_us'))}, update {_us(c.get('update_us'))}"
        )
        lines.append(
            f"  regions {c.get('min_nr_regions')}-{c.get('max_nr_regions')}, "
            f"region size {c.get('min_region')}-{c.get('max_region') or 'any'}, "
            f"min_nr_regions mode {c.get('min_nr_regions_mode')}, seed "
            f"{rp.get('seed', c.get('seed'))}"
            + (f", kernel {rp['kernel']}" if rp.get("kernel") else "")
        )
        gone = [t for t in rp.get("targets") or [] if t.get("mm_exit_ns") is not None]
        if gone:  # (targets whose process exited in the trace: monitored until then)
            lines.append("  exits: " + ", ".join(_exit_text(t) for t in gone))
        fo = rp.get("folios")
        if fo:  # (abit with large folios in the pagemap snapshots; else 4 KiB pages)
            sizes = ", ".join(f"{n} x {z}" for z, n in (fo.get("folios") or {}).items())
            lines.append(
                f"  folio model: {rp.get('folio_model')} ({sizes}; "
                f"{fo.get('checked_whole', 0)} checked whole"
                + (
                    ""
                    if fo.get("heads_recorded", True)
                    else "; no head pages recorded: THP taken as 2 MiB folios"
                )
                + ")"
            )
        inp = rp.get("input") or {}
        names = [i.get("name") for i in inp.get("inputs", []) if isinstance(i, dict)]
        src = inp.get("trace") or "-"
        lines.append(
            f"  input: {src}"
            + (f" ({', '.join(map(str, names))})" if names else "")
            + (f", {rp['samples_used']} samples used" if "samples_used" in rp else "")
            + (
                f", t0 {_fmt_ns(rp['t0_ns'])} ({rp.get('t0_source')})"
                if rp.get("t0_ns") is not None
                else ""
            )
        )
        for w in rp.get("warnings") or []:
            lines.append(f"  warning: {w}")
    elif meta.get("config"):
        c = meta["config"]
        lines.append(
            "  intervals: " + ", ".join(f"{k} {_us(v)}" for k, v in c.items() if k.endswith("_us"))
        )
    return "\n".join(lines)
