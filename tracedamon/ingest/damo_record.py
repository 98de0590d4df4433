"""damo record files (``json_compressed``, ``json``) → the ``regions`` table.

damo (the DAMON user-space tool) writes a list of DamonRecord objects, one per
(kdamond, context, target), each with its monitoring ``intervals`` and a list
of snapshots; a snapshot has ``start_time``/``end_time`` (ns strings) and
regions whose ``start``/``end`` are strings with thousands separators
(``"4,294,967,296"``), ``nr_accesses`` as ``{samples, percent}`` and ``age`` as
``{usec, aggr_intervals}``. ``json_compressed`` is a raw zlib stream of the same
text. gzip (and zstd) wrapped files are read too.

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

from ..errors import InputError, TraceFormatError
from .damon_trace import human_time_us, sidecar_intervals, write_events

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def _is_zlib(head: bytes) -> bool:
    return len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0


def read_text(path: Path) -> str:
    """The JSON text of a damo record (plain, zlib, gzip or zstd)."""
    data = path.read_bytes()
    if not data:
        raise TraceFormatError(path, "empty file", offset=0)
    try:
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        if data[:4] == _ZSTD_MAGIC:
            import zstandard
            data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
        elif _is_zlib(data[:2]):
            d = zlib.decompressobj()
            data = d.decompress(data)
            if not d.eof:
                raise TraceFormatError(path, "zlib stream is truncated",
                                       offset=len(path.read_bytes()))
    except (OSError, EOFError, zlib.error) as e:
        raise TraceFormatError(path, f"cannot decompress damo record: {e}", offset=0) from None
    except Exception as e:  # zstandard.ZstdError
        if type(e).__name__ == "ZstdError":
            raise TraceFormatError(path, f"cannot decompress damo record: {e}",
                                   offset=0) from None
        raise
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TraceFormatError(path, "damo record is not UTF-8 JSON text",
                               offset=e.start) from None


_NUM_RE = re.compile(r"^-?[\d,]+$")
_SIZE_UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
               "PiB": 1 << 50, "EiB": 1 << 60}


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
        m = re.fullmatch(r"(-?[\d,]*\.?\d+)\s*([KMGTPE]i)?B", s)
        if m:
            return int(float(m[1].replace(",", "")) * _SIZE_UNITS[(m[2] or "") + "B"])
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


def _check_snapshot(regions: list[tuple], prev_time: int | None, time_ns: int,
                    typical: float | None) -> str | None:
    for j, (s, e, _, _) in enumerate(regions):
        if s >= e:
            return f"region {j} ({s}-{e}) is empty or reversed"
        if j and s < regions[j - 1][1]:
            return (f"region {j} starts at {s}, below the end of region {j - 1} "
                    f"({regions[j - 1][1]}): regions out of address order")
    if prev_time is not None and typical and time_ns - prev_time < typical / 2:
        return (f"it follows the previous snapshot by {(time_ns - prev_time) / 1e9:.6f} s, "
                f"the record's typical interval is {typical / 1e9:.6f} s")
    return None


def ingest_into(path, writer, *, progress: bool = False, skip_bad: bool = False,
                run_gap_factor: float = 3.0, **opts) -> None:
    """Read a damo record (json or json_compressed) into ``writer``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: not a file")
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
    cols: dict[str, list] = {k: [] for k in ("time_ns", "pid", "cpu", "target_id", "nr_regions",
                                             "start", "end", "nr_accesses", "age", "loc")}
    groups: dict[tuple, int] = {}
    intervals_by_group: dict[int, dict | None] = {}
    bad_snapshots = 0
    fake_dropped = 0
    loc_of: list[tuple[int, int]] = []
    for ri, rec in enumerate(doc):
        snaps = rec.get("snapshots")
        if not isinstance(snaps, list):
            raise TraceFormatError(path, f"record {ri}: no snapshots list")
        gkey = (rec.get("kdamond_idx"), rec.get("context_idx"))
        g = groups.setdefault(gkey, len(groups))
        try:
            iv = _intervals(rec)
        except ValueError as e:
            raise TraceFormatError(path, f"record {ri}: bad intervals: {e}") from None
        intervals_by_group.setdefault(g, iv)
        try:
            tid = to_int(rec.get("target_id", 0), "target_id") or 0
        except ValueError as e:
            raise TraceFormatError(path, f"record {ri}: {e}") from None
        if tid < 0 or tid >= 1 << 64:
            raise TraceFormatError(path, f"record {ri}: target_id {tid} out of range")
        ratio = (iv["aggr_us"] / iv["sample_us"]) if iv and iv["sample_us"] else None
        parsed = []
        for si, snap in enumerate(snaps):
            try:
                t_end = to_int(snap.get("end_time"), "end_time")
                if t_end is None:
                    raise ValueError("snapshot without end_time")
                regs = []
                for j, r in enumerate(snap.get("regions") or []):
                    s, e = to_int(r.get("start"), "start"), to_int(r.get("end"), "end")
                    if s is None or e is None:
                        raise ValueError(f"region {j} without start/end")
                    na = r.get("nr_accesses")
                    if isinstance(na, dict):
                        nv = to_int(na.get("samples"), "nr_accesses.samples")
                        if nv is None and na.get("percent") is not None:
                            if ratio is None:
                                raise ValueError("nr_accesses given only as a percent and "
                                                 "the record has no intervals")
                            nv = int(round(float(na["percent"]) * ratio / 100))
                    else:
                        nv = to_int(na, "nr_accesses")
                    ag = r.get("age")
                    if isinstance(ag, dict):
                        av = to_int(ag.get("aggr_intervals"), "age.aggr_intervals")
                        if av is None and ag.get("usec") is not None and iv:
                            av = to_int(ag["usec"], "age.usec") // iv["aggr_us"]
                    else:
                        av = to_int(ag, "age")
                    regs.append((s, e, nv, av))
            except ValueError as e:
                raise TraceFormatError(path, f"record {ri} snapshot {si}: {e}") from None
            if len(regs) == 1 and regs[0][0] == regs[0][1] == 0 and (regs[0][2] or 0) < 0:
                fake_dropped += 1          # damo's placeholder closing snapshot
                continue
            if not regs:
                continue
            for s, e, nv, av in regs:
                if nv is None or nv < 0 or nv >= 1 << 32 or s < 0 or e >= 1 << 64 or \
                        (av is not None and not 0 <= av < 1 << 32):
                    raise TraceFormatError(path, f"record {ri} snapshot {si}: region {s}-{e} "
                                           f"has an out-of-range value (nr_accesses {nv}, "
                                           f"age {av})")
            parsed.append((si, t_end, regs))
        times = np.asarray([p[1] for p in parsed], np.int64)
        d = np.diff(times)
        typical = float(np.median(d[d > 0])) if (d > 0).any() else None
        prev_t = None
        misaligned_at = None
        for si, t_end, regs in parsed:
            why = _check_snapshot(regs, prev_t, t_end, typical)
            prev_t = t_end
            if why is None and misaligned_at is not None:
                # once damo's line counting is off, every later snapshot of the record
                # holds regions of its neighbours, even where their order looks fine
                why = f"it follows the misaligned snapshot {misaligned_at}"
            elif why is not None and misaligned_at is None:
                misaligned_at = si
            if why is not None:
                if not skip_bad:
                    raise TraceFormatError(
                        path, f"record {ri} (target_id {tid}) snapshot {si} at "
                        f"{t_end / 1e9:.6f} s is inconsistent: {why}. damo cuts snapshots by "
                        "counting lines, so a duplicated or lost trace event shifts regions "
                        "between snapshots; ingest the perf.data or trace text of this "
                        "recording instead, or use --skip-bad to drop such snapshots")
                bad_snapshots += 1
                continue
            n = len(regs)
            loc_of.append((ri, si))
            arr = np.asarray([(s, e) for s, e, _, _ in regs], dtype=np.uint64)
            cols["start"].append(arr[:, 0])
            cols["end"].append(arr[:, 1])
            cols["nr_accesses"].append(np.asarray([r[2] for r in regs], np.uint32))
            cols["age"].append(np.asarray([-1 if r[3] is None else r[3] for r in regs],
                                          np.int64))
            cols["time_ns"].append(np.full(n, t_end, np.int64))
            cols["pid"].append(np.full(n, g, np.int64))
            cols["cpu"].append(np.full(n, -1, np.int32))
            cols["target_id"].append(np.full(n, tid, np.uint64))
            cols["nr_regions"].append(np.full(n, n, np.uint32))
            cols["loc"].append(np.full(n, len(loc_of) - 1, np.int64))
    if not cols["time_ns"]:
        raise TraceFormatError(path, "the damo record holds no snapshot")
    ev = {k: np.concatenate(v) for k, v in cols.items()}

    def locate(i):
        return {}

    info = write_events(writer, path, ev, None, None, locate=locate, skip_bad=skip_bad,
                        source="damo-record", run_gap_factor=run_gap_factor,
                        extra_skipped={"snapshots": bad_snapshots})
    # the pid column above carried the (kdamond_idx, context_idx) group; say so in meta
    inv = {v: k for k, v in groups.items()}
    for r in writer.meta.get("damon_runs", []):
        g = r.pop("kdamond_pid", None)
        kd, ctx = inv.get(g, (None, None))
        r["kdamond_idx"], r["context_idx"] = kd, ctx
    iv = next((v for v in intervals_by_group.values() if v), None)
    if iv is not None:
        iv = dict(iv, source="record")
        meas = next((v for v in info.median_interval_ns.values() if v), None)
        if meas:
            iv["measured_aggr_us"] = int(round(meas / 1000))
        writer.meta["intervals"] = iv
    elif (sc := sidecar_intervals(path)) is not None:
        writer.meta["intervals"] = sc
    if fake_dropped:
        writer.meta["damo_placeholder_snapshots_dropped"] = fake_dropped
    writer.meta["damo_records"] = len(doc)
