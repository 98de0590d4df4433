"""Real DAMON traces → the ``regions`` table (plus ``damos_apply`` and ``intervals_tune``).

Inputs: ``perf script`` text of ``damon:*`` tracepoints (perf's own layout,
damo's ``kdamond.x xxxx xxxx`` writer, the old five-field ``damon_aggregated``
without age, pointer-valued ``target_id``), ftrace text (``trace_pipe``,
``trace``, ``trace-cmd report`` with or without the flags column), and perf.data
files (the RAW payloads decoded with the tracepoint formats the file carries;
:func:`add_regions_from_perf_data`). Gzipped text is read transparently.

How events become snapshots (:func:`tracedamon.ingest.damon_assembly.assemble_regions`):

* exact duplicate events (same time, CPU, kdamond and payload: perf sometimes
  delivers one sample twice) are dropped and counted (``duplicates_dropped``);
* events are grouped by (kdamond pid, target id) and ordered by time; a
  snapshot ends where the data says so: the next region starts below the
  previous region's end (address restart), ``nr_regions`` changes, the time
  gap exceeds half the typical snapshot interval, or the snapshot already holds
  its ``nr_regions`` regions. A snapshot whose region count differs from its
  ``nr_regions`` is an error (lost or duplicated events), except a partial
  snapshot at the very start or end of a recording, which is dropped and
  counted;
* a kdamond restart starts a new ``run``: a new kdamond pid, or (when the
  input has no pid) a pause of more than 3 aggregation intervals, or a pause of
  more than 1.2 intervals after which the region count has at least halved and
  every age is 0 or 1 (a fresh kdamond).

``time_ns`` of a snapshot is the timestamp of its first event (damo's
``end_time`` convention), in the recording's clock. ``target`` is the kernel's
target index; pointer-valued ids (old kernels) are numbered by first
appearance and the originals kept in ``meta["damon_runs"]``. ``age`` is null
for the old five-field format; ``pid`` and ``nr_accesses_bp`` are null (a trace
names neither the monitored process nor the moving-sum value).

Other tables: ``damos_apply`` (one row per ``damos_before_apply`` event) and
``intervals_tune`` (one row per ``damon_monitor_intervals_tune`` event).

meta.json keys: ``duplicates_dropped``; ``skipped`` ({"lines", "events",
"snapshots"}: what ``skip_bad`` dropped); ``partial_snapshots_dropped``;
``intervals`` ({sample_us, aggr_us, source}: "record" when damo's
``<file>.kdamonds`` sidecar is beside the input, with ``measured_aggr_us``;
else "inferred": aggr_us = the median time between snapshots, sample_us =
aggr_us / the largest nr_accesses seen, with ``max_nr_accesses``; ``tuned``
when interval auto-tuning events are present); ``damon_source`` (perf.data,
perf-script, damo-perf-script, ftrace, damo-record); ``damon_runs`` (per run:
kdamond pid, targets, snapshot count, first/last time, median snapshot
interval, largest nr_accesses); ``age_field``;
``damon_other_events`` (counts of damon events not turned into tables);
``input_truncated`` (a gzip text cut short, read with ``skip_bad``); ``damon_clock``
(which clock ``time_ns`` is in).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError, TraceFormatError
from ..schema import DAMOS_APPLY, INTERVALS_TUNE
from ..units import parse_duration_ns
from .damon_assembly import Assembly, assemble_regions, drop_duplicates
from .damon_text import (
    AGGREGATED,
    BEFORE_APPLY,
    INTERVALS_TUNE_EV,  # noqa: F401
    KNOWN_EVENTS,
    TextTrace,
    _Events,
    _num,
)
from .detect import PERF_MAGIC, PERF_MAGIC_BE, head
from .tracing_data import decode_raw, parse_tracing_data


def is_perf_data(path) -> bool:
    """Whether ``path`` (gzip undone) starts with perf.data's magic."""
    return head(path, 8) in (PERF_MAGIC, PERF_MAGIC_BE)


# ---------------------------------------------------------------------------------------
# intervals


def human_time_us(text) -> int:
    """damo's human time text ("500 ms", "5 s", "1 m", "1,234 us", "60000000") → µs
    (``ValueError`` when it is none)."""
    if isinstance(text, (int, float)):
        return int(text)
    return int(round(parse_duration_ns(text, "us", "time") / 1000))


def sidecar_intervals(path: Path) -> dict | None:
    """Intervals from damo's ``<record>.kdamonds`` sidecar beside ``path``, if any."""
    cands = [path.with_name(path.name + ".kdamonds")]
    if path.suffix == ".gz":
        cands.append(path.with_name(path.stem + ".kdamonds"))
    for c in cands:
        if not c.is_file():
            continue
        try:
            kd = json.loads(c.read_text())
            iv = kd[0]["contexts"][0]["intervals"]
            return {
                "sample_us": human_time_us(iv["sample_us"]),
                "aggr_us": human_time_us(iv["aggr_us"]),
                "ops_update_us": human_time_us(iv.get("ops_update_us", 0)),
                "source": "record",
                "from": c.name,
            }
        except (ValueError, KeyError, IndexError, TypeError):
            return None
    return None


def inferred_intervals(info: Assembly) -> dict | None:
    meds = [v for v in info.median_interval_ns.values() if v]
    if not meds:
        return None
    aggr_us = int(round(meds[0] / 1000))
    mx = next(iter(info.max_nr_accesses.values()), 0)
    # aggr_us: the median time between snapshots; sample_us: aggr_us over the largest
    # nr_accesses seen (nr_accesses counts sampling intervals, at most aggr/sample)
    return {
        "sample_us": int(round(aggr_us / mx)) if mx else None,
        "aggr_us": aggr_us,
        "source": "inferred",
        "max_nr_accesses": mx,
    }


# ---------------------------------------------------------------------------------------
# writing


def _apply_table(ev: dict[str, np.ndarray]) -> pa.Table:
    age = ev["age"]
    return pa.table(
        {
            "time_ns": pa.array(ev["time_ns"], pa.int64()),
            "kdamond_pid": pa.array(ev["pid"], pa.int32(), mask=ev["pid"] < 0),
            "cpu": pa.array(ev["cpu"], pa.int32(), mask=ev["cpu"] < 0),
            "context": pa.array(ev["ctx"], pa.int32()),
            "scheme": pa.array(ev["scheme"], pa.int32()),
            "target": pa.array(ev["target_id"].astype(np.int64), pa.int64()),
            "nr_regions": pa.array(ev["nr_regions"], pa.uint32()),
            "start": pa.array(ev["start"], pa.uint64()),
            "end": pa.array(ev["end"], pa.uint64()),
            "nr_accesses": pa.array(ev["nr_accesses"], pa.uint32()),
            "age": pa.array(
                np.where(age >= 0, age, 0).astype(np.uint32), pa.uint32(), mask=age < 0
            ),
        },
        schema=DAMOS_APPLY,
    )


def _tune_table(ev: dict[str, np.ndarray]) -> pa.Table:
    return pa.table(
        {
            "time_ns": pa.array(ev["time_ns"], pa.int64()),
            "kdamond_pid": pa.array(ev["pid"], pa.int32(), mask=ev["pid"] < 0),
            "cpu": pa.array(ev["cpu"], pa.int32(), mask=ev["cpu"] < 0),
            "sample_us": pa.array(ev["sample_us"], pa.uint64()),
        },
        schema=INTERVALS_TUNE,
    )


_WRITE_ROWS = 1 << 20


def write_events(
    writer,
    path: Path,
    agg: dict,
    before: dict | None,
    tune: dict | None,
    *,
    locate,
    skip_bad: bool,
    source: str,
    extra_skipped: dict | None = None,
    run_gap_factor: float = 3.0,
) -> Assembly:
    """Assemble and write ``regions`` (+ ``damos_apply``/``intervals_tune``) and meta."""
    has_before = bool(before and len(before.get("time_ns", ())))
    if not agg or len(agg.get("time_ns", ())) == 0:
        if not has_before:
            raise TraceFormatError(path, "no damon:damon_aggregated events found")
        # `damo record --schemes_target_regions` traces only the regions DAMOS acts on:
        # they are no snapshots of the whole monitored space, so no `regions` table
        info = Assembly()
        writer.meta["damon_regions"] = (
            "none: the trace has damos_before_apply events only (see the damos_apply table)"
        )
    else:
        table, info = assemble_regions(
            agg, path=path, locate=locate, skip_bad=skip_bad, run_gap_factor=run_gap_factor
        )
        if table.num_rows == 0:
            raise TraceFormatError(path, "no complete DAMON snapshot in the input")
        for off in range(0, table.num_rows, _WRITE_ROWS):
            writer.write("regions", table.slice(off, _WRITE_ROWS))
    dups = info.duplicates_dropped
    if before and len(before.get("time_ns", ())):
        before, d2 = drop_duplicates(before)
        dups += d2
        o = np.lexsort((before["time_ns"],))
        writer.write("damos_apply", _apply_table({k: v[o] for k, v in before.items()}))
    if tune and len(tune.get("time_ns", ())):
        tune, d3 = drop_duplicates(tune, ("time_ns", "cpu", "pid", "sample_us"))
        dups += d3
        o = np.lexsort((tune["time_ns"],))
        writer.write("intervals_tune", _tune_table({k: v[o] for k, v in tune.items()}))
    m = writer.meta
    m["duplicates_dropped"] = m.get("duplicates_dropped", 0) + dups
    skipped = dict(m.get("skipped", {}))
    for k, v in (extra_skipped or {}).items():
        if v:
            skipped[k] = skipped.get(k, 0) + v
    if info.bad_snapshots:
        skipped["snapshots"] = skipped.get("snapshots", 0) + info.bad_snapshots
    if info.bad_events:
        skipped["events"] = skipped.get("events", 0) + info.bad_events
    m["skipped"] = skipped
    if info.partial_dropped:
        m["partial_snapshots_dropped"] = info.partial_dropped
    iv = sidecar_intervals(path) or inferred_intervals(info)
    if iv is not None and iv["source"] == "record" and info.median_interval_ns:
        med = next(iter(info.median_interval_ns.values()))
        if med:
            iv["measured_aggr_us"] = int(round(med / 1000))
    if tune and len(tune.get("time_ns", ())):
        # the trace itself says the sampling interval (from the first tuning on; the
        # intervals_tune table has every change)
        first = int(tune["sample_us"][0])
        if iv is None or iv["source"] == "inferred":
            iv = {
                "sample_us": first,
                "aggr_us": iv["aggr_us"] if iv else None,
                "source": "record",
                "aggr_us_source": "inferred" if iv else None,
            }
        iv["tuned"] = True
        iv["first_tuned_sample_us"] = first
    if iv is not None:
        m["intervals"] = iv
    m["damon_source"] = source
    m["damon_clock"] = {
        "perf.data": "perf sample clock",
        "perf-script": "perf sample clock",
        "damo-perf-script": "perf sample clock (damo: one time per snapshot)",
        "ftrace": "the tracing instance's trace_clock",
        "damo-record": "perf sample clock (damo record)",
    }.get(source, "unknown")
    m["damon_runs"] = info.runs
    m["age_field"] = info.has_age
    return info


# ---------------------------------------------------------------------------------------
# perf.data


def add_regions_from_perf_data(
    reader, writer, *, skip_bad: bool = False, path=None, run_gap_factor: float = 3.0
) -> Assembly | None:
    """Decode the ``damon:*`` samples of an open perf.data and write ``regions`` etc.

    ``reader`` is :func:`tracedamon.ingest.perf_data.open_perf_data`'s object
    (``.tracing_data``, ``.events``, ``iter_sample_batches()``). The RAW
    payloads are decoded with the tracepoint formats stored in the file.
    """
    path = Path(path if path is not None else getattr(reader, "path", "<perf.data>"))
    names = [e.get("name") for e in reader.events]
    if not any(n and n.startswith("damon:") for n in names):
        return None
    formats = _TracepointFormats(reader, path)
    wanted = {f"damon:{e}" for e in KNOWN_EVENTS}
    acc = {e: _Events() for e in KNOWN_EVENTS}
    others: dict[str, int] = {}
    for batch in reader.iter_sample_batches():
        if batch.num_rows == 0:
            continue
        ev_col = batch.column(batch.schema.get_field_index("event"))
        if pa.types.is_dictionary(ev_col.type):
            ev_col = ev_col.dictionary_decode()
        for name in pc.unique(ev_col).to_pylist():
            if name is None or not name.startswith("damon:"):
                continue
            if name not in wanted:
                others[name] = others.get(name, 0) + int(pc.sum(pc.equal(ev_col, name)).as_py())
                continue
            short = name.split(":", 1)[1]
            b = batch.filter(pc.equal(ev_col, name))
            acc[short].add(**_decode_damon_rows(b, name, formats.get(), path))
    agg = acc[AGGREGATED].get() if len(acc[AGGREGATED]) else {}
    if not agg and not len(acc[BEFORE_APPLY]):
        return None
    info = write_events(
        writer,
        path,
        agg,
        acc[BEFORE_APPLY].get() if len(acc[BEFORE_APPLY]) else None,
        acc[INTERVALS_TUNE_EV].get() if len(acc[INTERVALS_TUNE_EV]) else None,
        locate=lambda off: {"offset": off} if off >= 0 else {},
        skip_bad=skip_bad,
        source="perf.data",
        run_gap_factor=run_gap_factor,
    )
    if others:
        writer.meta["damon_other_events"] = others
    return info


#: the tracepoint fields each DAMON event's columns are decoded from
_PAYLOAD_FIELDS = {
    AGGREGATED: ["target_id", "nr_regions", "start", "end", "nr_accesses", "age"],
    BEFORE_APPLY: [
        "context_idx",
        "scheme_idx",
        "target_idx",
        "start",
        "end",
        "nr_accesses",
        "age",
        "nr_regions",
    ],
    INTERVALS_TUNE_EV: ["sample_us"],
}


class _TracepointFormats:
    """The perf.data's tracepoint formats, parsed when first needed (a pipe stream
    may deliver its tracing data as a record, so it is looked at that late)."""

    def __init__(self, reader, path: Path):
        self.reader = reader
        self.path = path
        self.parsed = None

    def get(self):
        if self.parsed is None:
            blob = self.reader.tracing_data
            if not blob:
                raise TraceFormatError(
                    self.path,
                    "the file has damon: events but no tracing "
                    "data (the event formats needed to decode them)",
                )
            self.parsed = parse_tracing_data(blob, path=self.path)
        return self.parsed


def _decode_damon_rows(b: pa.RecordBatch, name: str, td, path: Path) -> dict[str, np.ndarray]:
    """The columns of the samples ``b`` of DAMON event ``name``: their RAW payloads
    decoded with the tracepoint format ``td`` holds, plus time, pid, cpu and offset."""
    short = name.split(":", 1)[1]
    fmt = td.event(name)
    if fmt is None:
        raise TraceFormatError(path, f"no format for {name} in the file's tracing data")
    have = [f for f in _PAYLOAD_FIELDS[short] if f in fmt.by_name]
    off_np = _num(b.column(b.schema.get_field_index("file_offset")), pa.int64(), -1)
    try:
        dec = decode_raw(
            b.column(b.schema.get_field_index("raw")),
            fmt,
            names=have + (["common_pid"] if "common_pid" in fmt.by_name else []),
            big_endian=td.big_endian,
            path=path,
        )
    except TraceFormatError as e:
        raise TraceFormatError(
            path, e.problem, offset=int(off_np[0]) if len(off_np) else None
        ) from None
    pid = _num(b.column(b.schema.get_field_index("pid")), pa.int64(), -1)
    if "common_pid" in dec:
        pid = np.where(pid >= 0, pid, dec["common_pid"].astype(np.int64))
    common = {
        "time_ns": _num(b.column(b.schema.get_field_index("time_ns")), pa.int64(), 0),
        "pid": pid,
        "cpu": _num(b.column(b.schema.get_field_index("cpu")), pa.int32(), -1),
        "loc": off_np,
    }
    if short == INTERVALS_TUNE_EV:
        return {**common, "sample_us": dec["sample_us"].astype(np.uint64)}
    return {**common, **_region_columns(short, dec, b.num_rows)}


def _region_columns(short: str, dec: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """A region event's columns from its decoded fields (``damon_aggregated`` or
    ``damos_before_apply``; an old kernel's format may lack nr_regions or age)."""
    cols = {
        "target_id": dec["target_idx" if short == BEFORE_APPLY else "target_id"].astype(np.uint64),
        "nr_regions": dec["nr_regions"].astype(np.uint32)
        if "nr_regions" in dec
        else np.zeros(n, np.uint32),
        "start": dec["start"].astype(np.uint64),
        "end": dec["end"].astype(np.uint64),
        "nr_accesses": dec["nr_accesses"].astype(np.uint32),
        "age": dec["age"].astype(np.int64) if "age" in dec else np.full(n, -1, np.int64),
    }
    if short == BEFORE_APPLY:
        cols["ctx"] = dec["context_idx"].astype(np.int32)
        cols["scheme"] = dec["scheme_idx"].astype(np.int32)
    return cols


# ---------------------------------------------------------------------------------------
# entry point


def perf_data_regions(reader, writer, *, path, skip_bad: bool = False, run_gap_factor: float = 3.0):
    """:func:`add_regions_from_perf_data`, refusing a perf.data without DAMON events
    (``path``: the user's name of the file). The caller opens the perf.data (and
    decompresses it) and reports what a cut-short recording lost."""
    info = add_regions_from_perf_data(
        reader, writer, skip_bad=skip_bad, path=path, run_gap_factor=run_gap_factor
    )
    if info is None:
        t = reader.truncation or {}
        if "TRACING_DATA" in t.get("features_lost", ()):
            raise TraceFormatError(
                path,
                "perf record did not finish, so the tracepoint "
                "formats and event names it writes at its end are "
                "missing: damon events can be neither found nor "
                "decoded (stop perf record with Ctrl-C or kill -INT)",
            )
        raise TraceFormatError(
            path, "no damon:damon_aggregated (or damos_before_apply) samples in this perf.data"
        )
    return info


def ingest_into(
    path, writer, *, progress=None, skip_bad: bool = False, run_gap_factor: float = 3.0, **opts
) -> None:
    """Read a DAMON trace as text (perf script, damo's writer, ftrace / trace-cmd;
    gzip undone) into ``writer``. A perf.data holding DAMON tracepoints is the
    caller's to open (:func:`perf_data_regions`; :mod:`tracedamon.pipeline.ingest`
    does it). ``progress(done, total, what)``: bytes of the file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: not a file")
    tt = TextTrace(path, skip_bad=skip_bad, progress=progress).parse()
    if not len(tt.agg) and not len(tt.before):
        raise TraceFormatError(path, "no damon_aggregated events found (not a DAMON trace?)")
    source = max(tt.layouts, key=tt.layouts.get) if tt.layouts else "text"
    write_events(
        writer,
        path,
        tt.agg.get() if len(tt.agg) else {},
        tt.before.get() if len(tt.before) else None,
        tt.tune.get() if len(tt.tune) else None,
        locate=lambda ln: {"line": ln},
        skip_bad=skip_bad,
        source=source,
        extra_skipped={"lines": tt.skipped_lines},
        run_gap_factor=run_gap_factor,
    )
    if tt.other_events:
        writer.meta["damon_other_events"] = tt.other_events
    if tt.truncated:
        writer.meta["input_truncated"] = True
