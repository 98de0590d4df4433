"""Native perf.data reader: ``tracedamon ingest perf.data`` without ``perf``.

Reads every layout ``perf record`` writes (docs/perf-data-format.md):

* a regular file (104-byte header, attrs and feature sections),
* a pipe stream (``perf record -o -``: attrs, features, event names and tracing
  data arrive as records),
* a ``perf record --threads`` directory (``data`` + bare ``data.N`` streams),

with zstd-compressed record streams (COMPRESSED / COMPRESSED2: one zstd stream per
file, records split across payloads). Records are decoded many at a time from a
byte buffer by the numba kernels of :mod:`tracedamon.ingest.perf` (scan, byteswap,
sample_kernels, read_values, sideband_kernels); the data
section is processed in chunks (:data:`tracedamon.ingest.perf.stream.CHUNK_BYTES`),
so memory stays bounded. The reader's parts live in :mod:`tracedamon.ingest.perf`;
this module holds the entry points.

Public API
----------
``open_perf_data(path) -> PerfData``
    ``.events`` (list of dicts: event_id, name, type, config, sample_type, ids ...),
    ``.meta`` (header features), ``.tracing_data`` (the tracing-data blob or None),
    ``.layout``, and ``iter_sample_batches()`` yielding Arrow RecordBatches in the
    :data:`~tracedamon.schema.SAMPLES` schema.
``ingest_into(path, writer, *, progress=None, on_damon_events=None, **opts)``
    the reader behind ``tracedamon ingest``: writes ``samples``, ``events``,
    ``mmaps``, ``tasks`` and ``lost`` and the header features into ``writer.meta``
    (hostname, os_release, perf_version, arch, nrcpus, cpu_desc, cpuid, total_mem_kb,
    cmdline, event_desc, events, sample_time, clock_id / clock_data, compression,
    group_desc, pmu_mappings, layout, record_counts, unknown_sample_ids ...). When an
    event is a ``damon:`` tracepoint it calls ``on_damon_events(reader, writer)``: the
    caller (:func:`tracedamon.pipeline.ingest.ingest`) hands them to
    :func:`tracedamon.ingest.damon_trace.add_regions_from_perf_data`, so this module
    imports neither the DAMON reader nor ``perf script``'s
    (:func:`tracedamon.ingest.perf_run.ingest_via_perf`, chosen by the caller too).

Bad input raises :class:`~tracedamon.errors.TraceFormatError` naming the file and the
byte offset (of the record, or of the COMPRESSED container it came from); unknown
record types are counted in ``meta["record_counts"]`` (``UNKNOWN_<type>``), not fatal.

Truncated recordings
--------------------
``perf record`` writes its header twice: at the start with data size 0 and the
feature bits it means to write, and at its end with the data size, followed by the
feature sections. Killed (SIGKILL, OOM, a crash), or still running, it leaves data
size 0 and no feature sections; a pipe stream or a ``--threads`` ``data.N`` simply
stops; a record (or a zstd stream, or a gzip file) may be cut in the middle. Such a
recording is read up to its last complete record, the way perf reads a cut pipe
stream ("unexpected end of event stream": every complete record is delivered):
records run to the end of the file when the header's data size is 0 and no feature
index follows the data, and in pipe streams and ``data.N`` files. What was lost is
kept in ``PerfData.truncation`` (feature sections, a partial record and where it
starts, the decompressed start of a record whose compressed rest was never written)
and reported by :func:`ingest_into` (``meta["truncated"]``, ``meta["truncation"]``
and one :class:`~tracedamon.errors.InputWarning`). A feature section outside the
file is skipped and named, as perf skips it. perf 6.1 itself delivers no sample
from a file whose header says data size 0 (it warns and stops), so the oracle for
what is read there is perf on the same records with the header completed.
``strict=True`` refuses every one of these. What perf cannot read either stays an
error in any mode: a data section that ends past the end of the file (a finished
recording cut short afterwards: perf stops at the zeros, or dies of SIGBUS) or a
data size that ends inside a record.

Order of the ``samples`` rows
-----------------------------
Samples are in time order, ties in file order, under perf's ordered-events rule:
records written before a FINISHED_ROUND are never later than those written after
the *next* FINISHED_ROUND. The reader keeps the samples of the last two rounds
pending and emits the rest sorted (a stable sort on ``time_ns``). Should a file
break that rule, or a stream lack FINISHED_ROUND records and exceed
:data:`~tracedamon.ingest.perf.ordering.MAX_PENDING` pending samples, the earliest pending samples are emitted to
bound memory and any later sample older than one already emitted is counted in
``meta["samples_out_of_order"]`` (0 for every file perf writes). Directory
layouts merge the per-file streams by time (ties: ``data`` first, then
``data.0``, ``data.1``...). When no event records TIME, samples are emitted in file
order; when only some do, the others sort as time 0 (their ``time_ns`` is null). The side-band tables (mmaps, tasks, lost) are small; they are collected and
written sorted by time (stable; records without a time first, in file order).

Rows emitted per sample
-----------------------
One row per PERF_RECORD_SAMPLE, except with PERF_SAMPLE_READ, where the reader does
what perf does: one row per value of the read block (with a group, one row per
member: ``event_id``/``sample_id`` of the member, ``period`` = the increase of that
member's counter since the previous sample carrying the same id, as perf 6.1 keeps it
per sample id); rows whose period is 0 are not emitted (perf does not deliver them
either). Samples whose id matches no attr are
counted in ``meta["unknown_sample_ids"]``, not emitted.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pyarrow as pa

from ..errors import ConfigError
from ..schema import SAMPLES
from ..schema import empty as _empty
from ..store.background import SAMPLES_PARQUET, BackgroundWriter
from .arrays import table_from_pylist
from .perf.header import FEATURE_NAMES, RECORD_NAMES  # noqa: F401  (re-exported)
from .perf.reader import PerfData
from .perf.samples import finish_samples, samples_file_schema
from .perf.sideband import _PassState
from ..errors import InputError, InputWarning
from ..schema import EVENTS

#: rows collected before a batch is handed to the writer (one Parquet row group each);
#: 64 Ki rather than 128 Ki rows takes ~40 MB off the peak RSS of a whole 10 M-sample
#: `tracedamon ingest` (fewer batches in flight), at the same CPU time
WRITE_ROWS = 1 << 16


# ----------------------------------------------------------------------------------------
# entry points
# ----------------------------------------------------------------------------------------
def open_perf_data(path: str | os.PathLike, *, strict: bool = False) -> PerfData:
    """Open a perf.data file, pipe stream or ``--threads`` directory (see module doc).

    Raises :class:`~tracedamon.errors.TraceFormatError` naming the file and byte
    offset for malformed input. A truncated recording (module doc) is read up to its
    last complete record, what it lost is in ``.truncation``; ``strict=True`` refuses
    it instead.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or directory")
    if not p.is_dir() and not p.is_file():
        # the reader makes more than one pass (a pipe stream's header records first)
        raise InputError(
            f"{p}: not a regular file; save the perf stream to a file first "
            "(perf record -o - > perf.data)"
        )
    return PerfData(p, strict=strict)


def truncation_summary(
    rd: PerfData, name: str | None = None, nr_samples: int | None = None
) -> dict | None:
    """What a truncated recording lost, for ``meta.json`` (None when nothing was
    lost): the facts of ``rd.truncation``, the bytes of complete records read
    (``data_bytes_kept``), a ``description`` and the one-line ``message`` (the
    description, naming the file) a warning shows."""
    t = rd.truncation
    if t is None:
        return None
    kept = sum(b - a for a, b in rd.stream_ends.values())
    if t["gzip_cut"]:
        why = f"the gzip stream ends early (after {t['gzip_cut']['gzip_bytes']} compressed bytes)"
    elif t["unfinished"]:
        why = (
            "perf record did not finish (data size 0 in the header: it was killed, "
            "or is still running)"
        )
    elif t["partial_records"] or t["compressed_tails"]:
        why = "the record stream ends inside a record"
    else:
        why = "the file ends before some of its feature sections"
    if t["gzip_cut"] and t["unfinished"]:
        why += ", and perf record did not finish (data size 0 in the header)"
    lost = []
    fl = t["features_lost"]
    if fl:
        lost.append(
            f"{len(fl)} header feature section{'s' * (len(fl) > 1)} "
            f"({', '.join(fl[:4])}{', ...' if len(fl) > 4 else ''})"
        )
    for r in t["partial_records"]:
        what = f"{r['type']} record" if r["type"] else "record"
        of = f" of {r['size']}" if r["size"] else ""
        where = f" of {r['file']}" if len(rd.sources) > 1 else ""
        lost.append(
            f"a partial {what} at byte offset {r['offset']}{where} ({r['bytes']}{of} bytes)"
        )
    for r in t["compressed_tails"]:
        what = f"{r['type']} record" if r["type"] else "record"
        of = f" of {r['size']}" if r["size"] else ""
        lost.append(
            f"the start of a {what} ({r['bytes']}{of} bytes) decompressed from the "
            f"COMPRESSED record at byte offset {r['offset']}"
        )
    if "TRACING_DATA" in fl and any(a.type == 2 for a in rd.attrs):
        lost.append(
            "the tracepoint formats, so tracepoint events (damon:...) can be "
            "neither named nor decoded"
        )
    if t["unfinished"]:
        lost.append("whatever perf had not yet written")
    elif t["gzip_cut"] and not lost:
        lost.append("whatever followed the cut")
    samples = f", {nr_samples} samples" if nr_samples is not None else ""
    desc = f"{why}; read {kept} bytes of records{samples}; lost: {'; '.join(lost)}"
    return dict(
        t,
        data_bytes_kept=kept,
        description=desc,
        message=f"{name or rd.path}: truncated recording: {desc}",
    )


def report_truncation(
    rd: PerfData, writer, name: str | None = None, nr_samples: int | None = None
) -> None:
    """Put what a truncated recording lost into ``writer.meta`` (``truncated``,
    ``truncation``) and warn once (:class:`~tracedamon.errors.InputWarning`)."""
    summ = truncation_summary(rd, name, nr_samples)
    if summ is None:
        return
    writer.meta["truncated"] = True
    writer.meta["truncation"] = summ
    warnings.warn(InputWarning(summ["message"]), stacklevel=3)


def events_table(rd: PerfData, nr_samples=None) -> pa.Table:
    evs = rd.events
    for e in evs:
        e["nr_samples"] = (
            int(nr_samples[e["event_id"]])
            if nr_samples is not None and e["event_id"] < len(nr_samples)
            else 0
        )
    return table_from_pylist(evs, schema=EVENTS)


def ingest_into(
    path,
    writer,
    *,
    progress=None,
    all_columns: bool = False,
    strict: bool = False,
    source_name: str | None = None,
    gzip_cut: dict | None = None,
    on_damon_events=None,
    **opts,
):
    """Decode ``path`` into ``writer`` (a :class:`~tracedamon.store.sink.TableSink`):
    samples, events, mmaps, tasks, lost tables and the header features in
    ``writer.meta``.

    The samples file leaves out the columns no event of the file records and declares
    non-nullable those every event records (:func:`samples_file_schema`; readers
    restore the full schema); ``all_columns=True`` writes the full schema instead.
    ``on_damon_events(reader, writer)`` is called when the recording holds ``damon:``
    tracepoint events, for the DAMON reader to turn them into regions
    (:func:`tracedamon.ingest.damon_trace.add_regions_from_perf_data`; the caller
    chooses, :func:`tracedamon.pipeline.ingest.ingest` does). Decoding through ``perf script``
    instead is :func:`tracedamon.ingest.perf_run.ingest_via_perf`.

    A truncated recording is read up to its last complete record; ``meta.json`` says
    what was lost (``truncated``, ``truncation``) and an
    :class:`~tracedamon.errors.InputWarning` names it (``source_name``: the name to
    give the input in it, e.g. the gzip file this one was decompressed from;
    ``gzip_cut``: that gzip stream ended early, see
    :func:`tracedamon.ingest.gz.gunzip_to`). ``strict=True`` refuses such a
    recording instead.
    """
    if opts.get("via_perf"):
        raise ConfigError(
            "the native perf.data reader does not run perf: via_perf goes "
            "through tracedamon.ingest.perf_run.ingest_via_perf "
            "(the public tracedamon.ingest picks it)"
        )
    rd = open_perf_data(path, strict=strict)
    if gzip_cut:
        rd._note_truncation(gzip=gzip_cut)
    st = _PassState(rd, sideband=True)
    topts = getattr(writer, "table_options", None)
    if topts is not None and not writer.rows("samples"):
        topts.setdefault("samples", SAMPLES_PARQUET)
    narrow = None
    with BackgroundWriter(writer, "samples") as bg:
        pend: list[pa.Table] = []
        rows = 0
        for blk in rd._sample_tables(st, progress=progress):
            if (
                narrow is None
                and not all_columns
                and hasattr(writer, "set_file_schema")
                and not writer.started("samples")
            ):
                # decided at the first samples, when a pipe stream's attrs are known
                narrow = samples_file_schema(rd)
                writer.set_file_schema("samples", narrow)
            pend.append(finish_samples(rd, blk, narrow))
            rows += len(blk)
            if rows >= WRITE_ROWS:
                bg.put(pa.concat_tables(pend).unify_dictionaries())
                pend, rows = [], 0
        if pend:
            bg.put(pa.concat_tables(pend).unify_dictionaries())
    rd.timings.update(parquet_thread_busy_s=bg.busy_s, parquet_thread_cpu_s=bg.cpu_s)
    if not writer.rows("samples"):
        writer.write("samples", _empty(SAMPLES))
    writer.write("events", events_table(rd, st.nr_samples))
    for name, t in st.sideband_tables().items():
        writer.write(name, t)
    meta = dict(rd.meta)
    meta["unknown_record_ids"] = st.unknown_record_ids
    meta["samples_order"] = (
        "time_ns ascending, ties in file order (perf's FINISHED_ROUND "
        "rule; violations counted in samples_out_of_order)"
    )
    writer.meta.update(meta)
    if on_damon_events is not None and any(
        rd.event_name(a.index).startswith("damon:") for a in rd.attrs
    ):
        on_damon_events(rd, writer)
    report_truncation(rd, writer, source_name, int(st.nr_samples.sum()))
    return rd
