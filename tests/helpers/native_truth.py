"""tracedamon's native reader against a written case: the ``samples`` rows and side-band
tables expected from the records written, compared field by field (data_src decoded
text compared with what perf printed)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from tracedamon.ingest import ingest
from tracedamon.store.trace import open_trace

from helpers.perf_oracle import DECODE_WIDTH, expected_periods
from perfdata_writer import (
    MISC_MMAP_DATA,
    Comm,
    Exit,
    F,
    Fork,
    Lost,
    LostSamples,
    Mmap,
    Mmap2,
    S,
    Sample,
    Throttle,
)

# ----------------------------------------------------------------------------------------
# the native reader on the same files


def _native_tables(path: str, tmp: Path) -> dict[str, list[dict]]:
    tmp.mkdir(parents=True, exist_ok=True)
    out = ingest(path, tmp / "out.td", format="perf-data")
    tr = open_trace(out)
    return {
        n: tr.table(n).to_pylist() if tr.has(n) else []  # exact u64s (no NaN)
        for n in ("samples", "mmaps", "tasks", "lost")
    }


def expected_sideband(case: dict) -> dict[str, list[dict]]:
    """The native reader's side-band rows for the written records (time order = the
    written order here)."""
    events = case["events"]
    out: dict[str, list] = {"mmaps": [], "tasks": [], "lost": []}

    def ev_of(i):
        return next(k for k, e in enumerate(events) if i in e.ids)

    for r in case["records"]:
        sid = getattr(r, "sid", {})
        t = sid.get("time")
        if isinstance(r, (Mmap, Mmap2)):
            m = dict(
                time_ns=t,
                pid=r.pid,
                tid=r.tid,
                start=r.start,
                length=r.len,
                pgoff=r.pgoff,
                filename=r.filename,
                data=bool(r.misc & MISC_MMAP_DATA),
                cpumode=r.misc & 7,
                record_type=10 if isinstance(r, Mmap2) else 1,
            )
            if isinstance(r, Mmap2):
                m.update(prot=r.prot, flags=r.flags)
                if r.build_id is not None:
                    m.update(build_id=r.build_id.hex(), maj=None, ino=None)
                else:
                    m.update(
                        build_id=None,
                        maj=r.maj,
                        min=r.min,
                        ino=r.ino,
                        ino_generation=r.ino_generation,
                    )
            else:
                m.update(prot=None, flags=None, build_id=None)
            out["mmaps"].append(m)
        elif isinstance(r, Comm):
            out["tasks"].append(
                dict(time_ns=t, kind="COMM", pid=r.pid, tid=r.tid, comm=r.comm, exec=r.exec)
            )
        elif isinstance(r, Fork):
            out["tasks"].append(
                dict(
                    time_ns=t,
                    kind="EXIT" if isinstance(r, Exit) else "FORK",
                    pid=r.pid,
                    tid=r.tid,
                    ppid=r.ppid,
                    ptid=r.ptid,
                )
            )
        elif isinstance(r, (Lost, LostSamples, Throttle)):
            rid = r.event.ids[0] if not isinstance(r, (Lost, Throttle)) or r.id is None else r.id
            kind = (
                "LOST"
                if isinstance(r, Lost)
                else "LOST_SAMPLES"
                if isinstance(r, LostSamples)
                else "UNTHROTTLE"
                if r.unthrottle
                else "THROTTLE"
            )
            out["lost"].append(
                dict(time_ns=t, kind=kind, event_id=ev_of(rid), lost=getattr(r, "lost", 0))
            )
    return out


def expected_native_rows(case: dict) -> list[dict]:
    rows = []
    events = case["events"]
    samples = [r for r in case["records"] if isinstance(r, Sample)]
    # with READ the period is the increase of the read value, as perf delivers it
    for r, per in zip(samples, expected_periods(samples)):
        ev = r.event
        stype = ev.sample_type
        g = r.get
        w = g("weight")
        ds = g("data_src")
        rows.append(
            dict(
                time_ns=r["time"],
                pid=r["pid"],
                tid=r["tid"],
                cpu=g("cpu"),
                event_id=events.index(ev),
                event=ev.name,
                ip=r["ip"],
                addr=g("addr"),
                phys_addr=g("phys_addr"),
                period=per if not (ev.freq and not stype & S.PERIOD) else None,
                weight=None if w is None else (w & 0xFFFFFFFF if stype & S.WEIGHT_STRUCT else w),
                weight2=(w >> 32 & 0xFFFF) if stype & S.WEIGHT_STRUCT else None,
                weight3=(w >> 48 & 0xFFFF) if stype & S.WEIGHT_STRUCT else None,
                data_src=ds,
                mem_remote=None if ds is None else bool(ds >> 37 & 1),
                mem_hops=None if ds is None else ds >> 43 & 7,
                mem_lvl_num=None if ds is None else ds >> 33 & 0xF,
                data_page_size=g("data_page_size"),
                code_page_size=g("code_page_size"),
                transaction=g("transaction"),
                cgroup=g("cgroup"),
                stream_id=g("stream_id"),
                # with READ the row belongs to the read value's id (perf's per-member delivery)
                sample_id=(
                    r["read"]["values"][0]["id"] if ev.read_format & F.GROUP else r["read"]["id"]
                )
                if stype & S.READ
                else g("id"),
                cpumode=r.misc & 7,
                misc=r.misc,
                callchain=g("callchain"),
                raw=None if g("raw") is None else g("raw") + b"\0" * (-(4 + len(g("raw"))) % 8),
            )
        )
    return rows


def _norm(v):
    """pandas/pyarrow values → plain Python for comparison (None for nulls)."""
    if v is None:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    try:
        if v is pd.NA or v is pd.NaT:
            return None
    except ImportError:
        pass
    if hasattr(v, "tolist"):
        return v.tolist()
    if hasattr(v, "item"):
        return v.item()
    return v


def check_sideband(case: dict, tables: dict) -> None:
    """The native side-band rows equal the written ones (when every event has TIME, so
    that the time order is the written order)."""
    if not all(e.sample_type & S.TIME for e in case["events"]):
        return
    for name, rows in expected_sideband(case).items():
        got = tables[name]
        assert len(got) == len(rows), f"{name}: native {len(got)} rows, wrote {len(rows)}"
        for j, (g, w) in enumerate(zip(got, rows)):
            for k, v in w.items():
                assert g[k] == v, f"{name} row {j}: {k}: native {g[k]!r}, wrote {v!r}"


def check_native(
    path: str, case: dict, decodes: list[str | None], tmp: Path, decodes_known: bool = True
) -> None:
    tables = _native_tables(path, tmp)
    df = tables["samples"]
    want = expected_native_rows(case)
    assert len(df) == len(want)
    # the samples file leaves out only all-null columns, and declares non-nullable only
    # columns without a null (readers restore the full schema: checked row by row below)

    fs = pq.read_schema(tmp / "out.td" / "samples.parquet")
    for k in want[0] if want else {}:
        vals = [w[k] for w in want]
        if k not in fs.names:
            assert all(v is None for v in vals), f"column {k} left out but written"
        elif not fs.field(k).nullable:
            assert all(v is not None for v in vals), f"column {k} non-nullable with nulls"
    # file offsets: the record's own, or (compressed) one of the containers holding it
    offs = [o for r, o in zip(case["records"], case["offsets"]) if isinstance(r, Sample)]
    for i, (row, (first, last)) in enumerate(zip(df, offs)):
        assert row["file_offset"] in (first, last), (
            f"sample {i}: file_offset {row['file_offset']}, written at {first}..{last}"
        )
    check_sideband(case, tables)
    for i, (w, dec) in enumerate(zip(want, decodes)):
        row = df[i]
        for k, v in w.items():
            got = _norm(row[k])
            if k == "event":
                got = str(got)
            assert got == v, f"sample {i}: column {k}: native {got!r}, written {v!r}"
        cols = ("mem_op", "mem_level", "mem_snoop", "mem_tlb", "mem_lock", "mem_blk")
        if not decodes_known:
            continue
        if dec is None:
            for col in cols:
                assert _norm(row[col]) is None, f"sample {i}: {col} should be null"
            continue
        vals = [_norm(row[c]) for c in cols]
        assert all(v is not None for v in vals), f"sample {i}: {dict(zip(cols, vals))}"
        if w["data_src"] >> 43 & 7 > 4:
            continue  # hops 5-7 are undefined: perf 6.1 prints "(null)" there
        assert perf_decode_text(*map(str, vals)) == dec.rstrip(), (
            f"sample {i}: native {dict(zip(cols, vals))}, perf printed {dec!r}"
        )


def perf_decode_text(op, lvl, snp, tlb, lck, blk) -> str:
    """The data_src text perf script prints, from its parts (perf 6.1 spacing: the BLK
    value follows 'BLK ' with its own leading space; cut at 82 characters)."""
    full = f"|OP {op}|LVL {lvl}|SNP {snp}|TLB {tlb}|LCK {lck}|BLK  {blk.strip()}"
    return full[:DECODE_WIDTH].rstrip()
