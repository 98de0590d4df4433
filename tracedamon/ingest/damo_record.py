"""damo record files (``json_compressed``, ``json``) → the ``regions`` table.

damo (the DAMON user-space tool) writes a list of DamonRecord objects, one per
(kdamond, context, target), each with its monitoring ``intervals`` and a list
of snapshots; a snapshot has ``start_time``/``end_time`` (ns strings) and
regions whose ``start``/``end`` are strings with thousands separators
(``"4,294,967,296"``), ``nr_accesses`` as ``{samples, percent}`` and ``age`` as
``{usec, aggr_intervals}``. ``json_compressed`` is a raw zlib stream of the same
text. gzip (and zstd) wrapped files are read too.

damo's other record types, ``perf_data`` and ``perf_script``, are DAMON traces and
go to :mod:`tracedamon.ingest.damon_trace`.

The record is validated, not trusted: damo cuts trace lines into snapshots by
counting ``nr_regions`` lines, so one duplicated perf sample shifts every later
snapshot by one region (the shifted snapshots start with the previous
snapshot's last region, and a one-region snapshot appears a few milliseconds
after the last one). Such a record is reported as a :class:`TraceFormatError`
naming the record and snapshot; ``skip_bad=True`` drops the bad snapshots and
counts them in ``meta["skipped"]["snapshots"]``. Ingest the perf.data or the
trace text of the same recording for the clean regions.

``time_ns`` is the snapshot's ``end_time`` (damo stamps it with the time of the
snapshot's first trace event, which is what the DAMON trace readers use too).
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import zstandard

from ..errors import InputError, TraceFormatError
from ..units import parse_bytes
from .detect import GZIP_MAGIC, ZSTD_MAGIC, head
from .damon_trace import human_time_us, is_perf_data, sidecar_intervals, write_events
from .damon_trace import ingest_into as damon_ingest_into


def _is_zlib(head: bytes) -> bool:
    return len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0


def _is_trace_text(path: Path) -> bool:
    first = head(path)
    return first.lstrip()[:1] not in (b"[", b"{") and (
        b"damon:damon_" in first or b"damon_aggregated: " in first
    )


def read_text(path: Path) -> str:
    """The JSON text of a damo record (plain, zlib, gzip or zstd)."""
    data = path.read_bytes()
    size = len(data)
    if not data:
        raise TraceFormatError(path, "empty file", offset=0)
    try:
        if data[:2] == GZIP_MAGIC:
            data = gzip.decompress(data)
        if data[:4] == ZSTD_MAGIC:
            data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
        elif _is_zlib(data[:2]):
            d = zlib.decompressobj()
            data = d.decompress(data)
            if not d.eof:
                raise TraceFormatError(path, "zlib stream is truncated", offset=size)
    except (OSError, EOFError, zlib.error, zstandard.ZstdError) as e:
        raise TraceFormatError(path, f"cannot decompress damo record: {e}", offset=0) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TraceFormatError(path, "damo record is not UTF-8 JSON text", offset=e.start) from None


_NUM_RE = re.compile(r"^-?[\d,]+$")
_DAMO_SIZE = re.compile(r"-?[\d,]*\.?\d+\s*(?:[KMGTPE]i)?B")  # damo's "1.500 KiB"


def to_int(v, what: str) -> int | None:
    """A damo number: int, float, numeric string with thousands separators, or null."""
    if v is None:
        return None
    if isinstance(v, bool):
        raise ValueError(f"{what}: boolean {v!r} where a number was expected")
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError(f"{what}: {v!r} is not a number")
        return int(v)
    if isinstance(v, str):
        s = v.strip()
        if _NUM_RE.match(s):
            return int(s.replace(",", ""))
        if _DAMO_SIZE.fullmatch(s):
            return parse_bytes(s, what)
        try:
            return human_time_us(s)
        except ValueError:
            pass
    raise ValueError(f"{what}: cannot read {v!r} as a number")


def _intervals(rec: dict) -> dict | None:
    iv = rec.get("intervals")
    if not iv:
        return None
    s, a = iv.get("sample_us"), iv.get("aggr_us")
    if s is None or a is None:
        return None
    out = {"sample_us": to_int(s, "sample_us"), "aggr_us": to_int(a, "aggr_us")}
    u = iv.get("ops_update_us")
    if u is not None:
        out["ops_update_us"] = to_int(u, "ops_update_us")
    return out


class _BadValue(ValueError):
    def __init__(self, msg: str, index: int):
        super().__init__(msg)
        self.index = index


def _ints(vals: list, what: str, dtype) -> tuple[np.ndarray, np.ndarray]:
    """damo numbers (ints, or strings with thousands separators, or null) → (values,
    null mask), converted many at a time; anything unusual goes element by element
    through :func:`to_int`, so that a bad value is named (``_BadValue.index``)."""
    a = None
    try:
        a = pa.array(vals)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError):
        pass
    if a is not None:
        try:
            if pa.types.is_null(a.type):
                return np.zeros(len(vals), dtype), np.ones(len(vals), bool)
            if pa.types.is_string(a.type):
                a = pc.replace_substring(a, ",", "")
            if pa.types.is_string(a.type) or pa.types.is_integer(a.type):
                c = pc.cast(a, pa.from_numpy_dtype(np.dtype(dtype)))
                return (
                    np.array(pc.fill_null(c, 0).to_numpy(zero_copy_only=False)),
                    np.array(pc.is_null(c).to_numpy(zero_copy_only=False)),
                )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    info = np.iinfo(dtype)
    out = np.zeros(len(vals), dtype)
    null = np.zeros(len(vals), bool)
    for j, v in enumerate(vals):
        try:
            x = to_int(v, what)
        except ValueError as e:
            raise _BadValue(str(e), j) from None
        if x is None:
            null[j] = True
        elif not info.min <= x <= info.max:
            raise _BadValue(f"{what} {x} is out of range", j)
        else:
            out[j] = x
    return out, null


def _floats(vals: list, what: str) -> np.ndarray:
    out = np.full(len(vals), np.nan)
    for j, v in enumerate(vals):
        if v is None:
            continue
        try:
            out[j] = float(str(v).replace(",", "").rstrip("%"))
        except ValueError:
            raise _BadValue(f"{what}: cannot read {v!r} as a number", j) from None
    return out


def _is_placeholder(regs: list) -> bool:
    """damo's fake closing snapshot: one region 0-0 with nr_accesses -1."""
    if len(regs) != 1 or not isinstance(regs[0], dict):
        return False
    r = regs[0]
    na = r.get("nr_accesses")
    na = na.get("samples") if isinstance(na, dict) else na
    try:
        return (
            to_int(r.get("start"), "start") == 0 == to_int(r.get("end"), "end")
            and (to_int(na, "nr_accesses") or 0) < 0
        )
    except ValueError:
        return False


def _record_regions(path, ri: int, rec: dict, iv: dict | None):
    """The snapshots of one record: [(snapshot index, end time, number of regions)],
    and flat numpy columns of all their regions. Raises TraceFormatError naming the
    record, snapshot and region of a bad value."""
    snaps = rec.get("snapshots")
    kept, regs_all, fake = [], [], 0
    for si, snap in enumerate(snaps):
        if not isinstance(snap, dict):
            raise TraceFormatError(path, f"record {ri} snapshot {si}: not an object")
        regs = snap.get("regions") or []
        if not isinstance(regs, list) or not all(isinstance(r, dict) for r in regs):
            raise TraceFormatError(
                path, f"record {ri} snapshot {si}: regions is not a list of objects"
            )
        if _is_placeholder(regs):
            fake += 1
            continue
        if not regs:
            continue
        try:
            t_end = to_int(snap.get("end_time"), "end_time")
        except ValueError as e:
            raise TraceFormatError(path, f"record {ri} snapshot {si}: {e}") from None
        if t_end is None:
            raise TraceFormatError(path, f"record {ri} snapshot {si}: no end_time")
        kept.append((si, t_end, len(regs)))
        regs_all.extend(regs)
    counts = np.asarray([k[2] for k in kept], np.int64)
    first = np.concatenate([[0], np.cumsum(counts)])

    def where(j: int) -> str:
        k = int(np.searchsorted(first, j, side="right") - 1)
        return f"record {ri} snapshot {kept[k][0]} region {j - int(first[k])}"

    na = [r.get("nr_accesses") for r in regs_all]
    ag = [r.get("age") for r in regs_all]
    try:
        start, s_null = _ints([r.get("start") for r in regs_all], "start", np.uint64)
        end, e_null = _ints([r.get("end") for r in regs_all], "end", np.uint64)
        samples, n_null = _ints(
            [x.get("samples") if isinstance(x, dict) else x for x in na], "nr_accesses", np.int64
        )
        aggrs, a_null = _ints(
            [x.get("aggr_intervals") if isinstance(x, dict) else x for x in ag], "age", np.int64
        )
        if n_null.any():
            pct = _floats(
                [x.get("percent") if isinstance(x, dict) else None for x in na],
                "nr_accesses.percent",
            )
            need = n_null & ~np.isnan(pct)
            if need.any():
                if not iv or not iv["sample_us"]:
                    raise _BadValue(
                        "nr_accesses given only as a percent and the record has no intervals",
                        int(np.flatnonzero(need)[0]),
                    )
                ratio = iv["aggr_us"] / iv["sample_us"]
                samples[need] = np.round(pct[need] * ratio / 100).astype(np.int64)
                n_null &= ~need
        if a_null.any() and iv and iv["aggr_us"]:
            usec, u_null = _ints(
                [x.get("usec") if isinstance(x, dict) else None for x in ag], "age.usec", np.int64
            )
            fill = a_null & ~u_null
            aggrs[fill] = usec[fill] // iv["aggr_us"]
            a_null &= ~fill
    except _BadValue as e:
        raise TraceFormatError(path, f"{where(e.index)}: {e}") from None
    for mask, what in ((s_null, "start"), (e_null, "end"), (n_null, "nr_accesses")):
        if mask.any():
            raise TraceFormatError(path, f"{where(int(np.flatnonzero(mask)[0]))}: no {what}")
    bad = (samples < 0) | (samples >= 1 << 32) | (~a_null & ((aggrs < 0) | (aggrs >= 1 << 32)))
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise TraceFormatError(
            path,
            f"{where(j)}: out-of-range value (nr_accesses {int(samples[j])}, age {int(aggrs[j])})",
        )
    age = np.where(a_null, -1, aggrs)
    return kept, first, start, end, samples.astype(np.uint32), age, fake


def _snapshot_problems(kept, first, start, end) -> list[str | None]:
    """Per kept snapshot: why its regions cannot be right (or None)."""
    n = len(start)
    snap_of = np.repeat(np.arange(len(kept)), [k[2] for k in kept])
    empty = start >= end
    disorder = np.zeros(n, bool)
    disorder[1:] = (start[1:] < end[:-1]) & (snap_of[1:] == snap_of[:-1])
    out: list[str | None] = [None] * len(kept)
    for j in np.flatnonzero(empty | disorder)[::-1]:  # keep the first per snapshot
        k = int(snap_of[j])
        r = int(j - first[k])
        if empty[j]:
            out[k] = f"region {r} ({int(start[j])}-{int(end[j])}) is empty or reversed"
        else:
            out[k] = (
                f"region {r} starts at {int(start[j])}, below the end of region "
                f"{r - 1} ({int(end[j - 1])}): regions out of address order"
            )
    times = np.asarray([k[1] for k in kept], np.int64)
    d = np.diff(times)
    typical = float(np.median(d[d > 0])) if (d > 0).any() else None
    for k in range(1, len(kept)):
        if out[k] is None and typical and times[k] - times[k - 1] < typical / 2:
            out[k] = (
                f"it follows the previous snapshot by "
                f"{(times[k] - times[k - 1]) / 1e9:.6f} s, the record's typical "
                f"interval is {typical / 1e9:.6f} s"
            )
    return out


def ingest_into(
    path, writer, *, progress=None, skip_bad: bool = False, run_gap_factor: float = 3.0, **opts
) -> None:
    """Read a damo record (json or json_compressed) into ``writer``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: not a file")
    if is_perf_data(path):
        # damo's perf_data record type: the pipeline opens it with the perf.data reader
        raise InputError(
            f"{path}: a perf.data (damo's perf_data record type): read it "
            "with tracedamon.ingest, which hands its DAMON tracepoints to the "
            "DAMON trace reader"
        )
    if _is_trace_text(path):
        # damo's perf_script record type is a DAMON trace
        return damon_ingest_into(
            path, writer, progress=progress, skip_bad=skip_bad, run_gap_factor=run_gap_factor
        )
    doc = _load_records(path)
    cols: dict[str, list] = {k: [] for k in _EVENT_COLUMNS}
    groups: dict[tuple, int] = {}
    intervals_by_group: dict[int, dict | None] = {}
    bad_snapshots = 0
    fake_dropped = 0
    for ri, rec in enumerate(doc):
        gkey, iv, tid = _record_header(path, ri, rec)
        g = groups.setdefault(gkey, len(groups))
        intervals_by_group.setdefault(g, iv)
        kept, first, start, end, nr_acc, age, fake = _record_regions(path, ri, rec, iv)
        fake_dropped += fake
        keep, bad = _consistent_regions(path, ri, tid, kept, first, start, end, skip_bad)
        bad_snapshots += bad
        if not keep.any():
            continue
        counts = np.asarray([k[2] for k in kept], np.int64)
        m = int(keep.sum())
        cols["start"].append(start[keep])
        cols["end"].append(end[keep])
        cols["nr_accesses"].append(nr_acc[keep])
        cols["age"].append(age[keep])
        cols["time_ns"].append(np.repeat(np.asarray([k[1] for k in kept], np.int64), counts)[keep])
        cols["pid"].append(np.full(m, g, np.int64))
        cols["cpu"].append(np.full(m, -1, np.int32))
        cols["target_id"].append(np.full(m, tid, np.uint64))
        cols["nr_regions"].append(np.repeat(counts, counts)[keep].astype(np.uint32))
        cols["loc"].append(np.full(m, ri, np.int64))
    if not cols["time_ns"]:
        raise TraceFormatError(path, "the damo record holds no snapshot")
    ev = {k: np.concatenate(v) for k, v in cols.items()}
    info = write_events(
        writer,
        path,
        ev,
        None,
        None,
        locate=lambda i: {},
        skip_bad=skip_bad,
        source="damo-record",
        run_gap_factor=run_gap_factor,
        extra_skipped={"snapshots": bad_snapshots},
    )
    _record_meta(writer.meta, path, doc, groups, intervals_by_group, info, fake_dropped)


#: the event columns a damo record's regions become (those of the DAMON trace readers)
_EVENT_COLUMNS = (
    "time_ns",
    "pid",
    "cpu",
    "target_id",
    "nr_regions",
    "start",
    "end",
    "nr_accesses",
    "age",
    "loc",
)


def _load_records(path: Path) -> list[dict]:
    """The list of DamonRecord objects of a damo record file (a bare record, or a
    ``records``/``damon_records`` list in an object, is accepted too)."""
    text = read_text(path)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise TraceFormatError(path, f"invalid JSON: {e.msg}", line=e.lineno) from None
    if isinstance(doc, dict):
        for key in ("records", "damon_records"):
            if isinstance(doc.get(key), list):
                doc = doc[key]
                break
        else:
            doc = [doc]
    if not isinstance(doc, list) or not all(isinstance(r, dict) for r in doc):
        raise TraceFormatError(path, "not a damo record: expected a list of records")
    return doc


def _record_header(path: Path, ri: int, rec: dict) -> tuple[tuple, dict | None, int]:
    """Record ``ri``'s (kdamond_idx, context_idx), intervals and target id, checked."""
    if not isinstance(rec.get("snapshots"), list):
        raise TraceFormatError(path, f"record {ri}: no snapshots list")
    gkey = (rec.get("kdamond_idx"), rec.get("context_idx"))
    try:
        iv = _intervals(rec)
    except ValueError as e:
        raise TraceFormatError(path, f"record {ri}: bad intervals: {e}") from None
    try:
        tid = to_int(rec.get("target_id", 0), "target_id") or 0
    except ValueError as e:
        raise TraceFormatError(path, f"record {ri}: {e}") from None
    if tid < 0 or tid >= 1 << 64:
        raise TraceFormatError(path, f"record {ri}: target_id {tid} out of range")
    return gkey, iv, tid


def _consistent_regions(path, ri, tid, kept, first, start, end, skip_bad) -> tuple[np.ndarray, int]:
    """Which regions of record ``ri`` belong to consistent snapshots, and how many
    snapshots are not: an inconsistent snapshot, and every later one of the record, is
    an error, or (``skip_bad``) left out."""
    problems = _snapshot_problems(kept, first, start, end)
    misaligned_at = None
    keep = np.ones(len(start), bool)
    bad = 0
    for k, (si, t_end, _) in enumerate(kept):
        why = problems[k]
        if why is None and misaligned_at is not None:
            # once damo's line counting is off, every later snapshot of the record
            # holds regions of its neighbours, even where their order looks fine
            why = f"it follows the misaligned snapshot {misaligned_at}"
        elif why is not None and misaligned_at is None:
            misaligned_at = si
        if why is None:
            continue
        if not skip_bad:

            def problem(skip):
                return (
                    f"record {ri} (target_id {tid}) snapshot {si} at "
                    f"{t_end / 1e9:.6f} s is inconsistent: {why}. damo cuts "
                    "snapshots by counting lines, so a duplicated or lost trace "
                    "event shifts regions between snapshots; ingest the perf.data "
                    "or trace text of this recording instead, or use "
                    f"{skip} to drop such snapshots"
                )

            raise TraceFormatError(
                path, problem("skip_bad=True"), cli_problem=problem("--skip-bad")
            )
        bad += 1
        keep[first[k] : first[k + 1]] = False
    return keep, bad


def _record_meta(meta, path, doc, groups, intervals_by_group, info, fake_dropped) -> None:
    """meta.json keys of a damo record: each run's kdamond and context index (the pid
    column carried their group), the record's intervals, and the record counts."""
    inv = {v: k for k, v in groups.items()}
    for r in meta.get("damon_runs", []):
        g = r.pop("kdamond_pid", None)
        kd, ctx = inv.get(g, (None, None))
        r["kdamond_idx"], r["context_idx"] = kd, ctx
    iv = next((v for v in intervals_by_group.values() if v), None)
    if iv is not None:
        iv = dict(iv, source="record")
        meas = next((v for v in info.median_interval_ns.values() if v), None)
        if meas:
            iv["measured_aggr_us"] = int(round(meas / 1000))
        meta["intervals"] = iv
    elif (sc := sidecar_intervals(path)) is not None:
        meta["intervals"] = sc
    if fake_dropped:
        meta["damo_placeholder_snapshots_dropped"] = fake_dropped
    meta["damo_records"] = len(doc)
    schemed = sum(1 for r in doc if r.get("scheme_idx") is not None)
    if schemed:
        # `damo record --schemes_target_regions` (or a DAMOS snapshot): each snapshot
        # lists the regions a scheme was applied to, not the whole monitored space
        meta["damo_scheme_records"] = schemed
