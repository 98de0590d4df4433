"""Records to bytes: samples with their fields in sample_type order, side-band records
with their sample_id trailers, and the feature sections."""

from __future__ import annotations

from typing import Sequence

from .constants import (
    _branch_flags,
    _cstr8,
    _feat_str,
    _pk,
    _u32,
    _u64,
    BRANCH_HW_INDEX,
    F,
    FEAT,
    KNOWN_BITS,
    MISC_COMM_EXEC,
    MISC_MMAP_BUILD_ID,
    REC,
    S,
)
from .records import (
    _popcount,
    Comm,
    Event,
    Exit,
    FinishedInit,
    FinishedRound,
    Fork,
    IdIndex,
    Lost,
    LostSamples,
    Mmap,
    Mmap2,
    RawRecord,
    Sample,
    Throttle,
)


def _read_block(read_format: int, r: dict) -> bytes:
    out = b""
    if read_format & F.GROUP:
        vals = r["values"]
        out += _u64(len(vals))
        if read_format & F.TOTAL_TIME_ENABLED:
            out += _u64(r["enabled"])
        if read_format & F.TOTAL_TIME_RUNNING:
            out += _u64(r["running"])
        for v in vals:
            out += _u64(v["value"])
            if read_format & F.ID:
                out += _u64(v["id"])
            if read_format & F.LOST:
                out += _u64(v["lost"])
        return out
    out += _u64(r["value"])
    if read_format & F.TOTAL_TIME_ENABLED:
        out += _u64(r["enabled"])
    if read_format & F.TOTAL_TIME_RUNNING:
        out += _u64(r["running"])
    if read_format & F.ID:
        out += _u64(r["id"])
    if read_format & F.LOST:
        out += _u64(r["lost"])
    return out


def _regs(mask: int, v) -> bytes:
    abi, vals = v
    if abi == 0:
        return _u64(0)
    if len(vals) != _popcount(mask):
        raise ValueError(f"regs: {len(vals)} values for a mask of {_popcount(mask)} bits")
    return _u64(abi) + b"".join(_u64(x) for x in vals)


def _header(rtype: int, misc: int, body: bytes) -> bytes:
    size = 8 + len(body)
    if size > 0xFFFF:
        raise ValueError(f"record of type {rtype} too large ({size} bytes)")
    return _pk("IHH", rtype, misc, size) + body


def encode_sample(s: Sample) -> bytes:
    ev = s.event
    st = ev.sample_type
    if st & ~KNOWN_BITS:
        raise ValueError(f"unknown sample_type bits {st & ~KNOWN_BITS:#x}")
    if st & S.WEIGHT and st & S.WEIGHT_STRUCT:
        raise ValueError("WEIGHT and WEIGHT_STRUCT are exclusive")
    f = dict(s.fields)
    if st & (S.ID | S.IDENTIFIER):
        f.setdefault("id", ev.id())
    names = {
        S.IP: "ip",
        S.ADDR: "addr",
        S.STREAM_ID: "stream_id",
        S.PERIOD: "period",
        S.DATA_SRC: "data_src",
        S.TRANSACTION: "transaction",
        S.PHYS_ADDR: "phys_addr",
        S.CGROUP: "cgroup",
        S.DATA_PAGE_SIZE: "data_page_size",
        S.CODE_PAGE_SIZE: "code_page_size",
        S.TIME: "time",
    }
    allowed = {"id"} if st & (S.ID | S.IDENTIFIER) else set()
    for bit, nm in names.items():
        if st & bit:
            allowed.add(nm)
    extra = {
        S.TID: ("pid", "tid"),
        S.CPU: ("cpu",),
        S.READ: ("read",),
        S.CALLCHAIN: ("callchain",),
        S.RAW: ("raw",),
        S.BRANCH_STACK: ("branch_stack", "branch_hw_idx"),
        S.REGS_USER: ("regs_user",),
        S.STACK_USER: ("stack_user",),
        S.WEIGHT: ("weight",),
        S.WEIGHT_STRUCT: ("weight",),
        S.REGS_INTR: ("regs_intr",),
        S.AUX: ("aux",),
    }
    for bit, nms in extra.items():
        if st & bit:
            allowed.update(nms)
    unknown = set(f) - allowed
    if unknown:
        raise ValueError(f"sample of {ev.name}: fields {sorted(unknown)} not in its sample_type")
    b = b""
    if st & S.IDENTIFIER:
        b += _u64(f["id"])
    if st & S.IP:
        b += _u64(f["ip"])
    if st & S.TID:
        b += _pk("ii", f["pid"], f["tid"])
    if st & S.TIME:
        b += _u64(f["time"])
    if st & S.ADDR:
        b += _u64(f["addr"])
    if st & S.ID:
        b += _u64(f["id"])
    if st & S.STREAM_ID:
        b += _u64(f["stream_id"])
    if st & S.CPU:
        b += _pk("II", f["cpu"], 0)
    if st & S.PERIOD:
        b += _u64(f["period"])
    if st & S.READ:
        b += _read_block(ev.read_format, f["read"])
    if st & S.CALLCHAIN:
        cc = f["callchain"]
        b += _u64(len(cc)) + b"".join(_u64(x) for x in cc)
    if st & S.RAW:
        raw = f["raw"]
        raw = raw + b"\0" * (-(4 + len(raw)) % 8)
        b += _u32(len(raw)) + raw
    if st & S.BRANCH_STACK:
        br = f["branch_stack"]
        b += _u64(len(br))
        if ev.branch_sample_type & BRANCH_HW_INDEX:
            b += _u64(f.get("branch_hw_idx", 0))
        for frm, to, fl in br:
            b += _pk("QQQ", frm, to, _branch_flags(fl))
    if st & S.REGS_USER:
        b += _regs(ev.sample_regs_user, f["regs_user"])
    if st & S.STACK_USER:
        data, dyn = f["stack_user"]
        if not data:
            b += _u64(0)
        else:
            if len(data) % 8:
                raise ValueError("stack_user size must be a multiple of 8")
            b += _u64(len(data)) + data + _u64(dyn)
    if st & (S.WEIGHT | S.WEIGHT_STRUCT):
        b += _u64(f["weight"])
    if st & S.DATA_SRC:
        b += _u64(f["data_src"])
    if st & S.TRANSACTION:
        b += _u64(f["transaction"])
    if st & S.REGS_INTR:
        b += _regs(ev.sample_regs_intr, f["regs_intr"])
    if st & S.PHYS_ADDR:
        b += _u64(f["phys_addr"])
    if st & S.CGROUP:
        b += _u64(f["cgroup"])
    if st & S.DATA_PAGE_SIZE:
        b += _u64(f["data_page_size"])
    if st & S.CODE_PAGE_SIZE:
        b += _u64(f["code_page_size"])
    if st & S.AUX:
        aux = f["aux"]
        if len(aux) % 8:
            raise ValueError("aux size must be a multiple of 8")
        b += _u64(len(aux)) + aux
    return _header(REC["SAMPLE"], s.misc, b)


def weight_struct(var1: int, var2: int = 0, var3: int = 0) -> int:
    """The u64 of a WEIGHT_STRUCT sample from its three parts."""
    return (var1 & 0xFFFFFFFF) | (var2 & 0xFFFF) << 32 | (var3 & 0xFFFF) << 48


def trailer(ev: Event | None, sid: dict) -> bytes:
    if ev is None or not ev.sample_id_all:
        return b""
    st = ev.sample_type
    b = b""
    if st & S.TID:
        b += _pk("ii", sid.get("pid", -1), sid.get("tid", -1))
    if st & S.TIME:
        b += _u64(sid.get("time", 0))
    if st & S.ID:
        b += _u64(sid.get("id", ev.id()))
    if st & S.STREAM_ID:
        b += _u64(sid.get("stream_id", 0))
    if st & S.CPU:
        b += _pk("II", sid.get("cpu", 0), 0)
    if st & S.IDENTIFIER:
        b += _u64(sid.get("id", ev.id()))
    return b


def encode_record(r, events: Sequence[Event]) -> bytes:
    if isinstance(r, Sample):
        return encode_sample(r)
    if isinstance(r, RawRecord):
        return r.data
    if isinstance(r, FinishedRound):
        return _header(REC["FINISHED_ROUND"], 0, b"")
    if isinstance(r, FinishedInit):
        return _header(REC["FINISHED_INIT"], 0, b"")
    if isinstance(r, IdIndex):
        entries = r.entries
        if entries is None:
            entries = [(i, idx, 0, 0) for idx, ev in enumerate(events) for i in ev.ids]
        body = _u64(len(entries)) + b"".join(_pk("QQQQ", *e) for e in entries)
        return _header(REC["ID_INDEX"], 0, body)
    tr = trailer(r.event, r.sid)
    if isinstance(r, Mmap2):
        body = _pk("iiQQQ", r.pid, r.tid, r.start, r.len, r.pgoff)
        misc = r.misc
        if r.build_id is not None:
            bid = r.build_id
            body += _pk("BBH", len(bid), 0, 0) + bid + b"\0" * (20 - len(bid))
            misc |= MISC_MMAP_BUILD_ID
        else:
            body += _pk("IIQQ", r.maj, r.min, r.ino, r.ino_generation)
        body += _pk("II", r.prot, r.flags) + _cstr8(r.filename)
        return _header(REC["MMAP2"], misc, body + tr)
    if isinstance(r, Mmap):
        body = _pk("iiQQQ", r.pid, r.tid, r.start, r.len, r.pgoff) + _cstr8(r.filename)
        return _header(REC["MMAP"], r.misc, body + tr)
    if isinstance(r, Comm):
        misc = r.misc | (MISC_COMM_EXEC if r.exec else 0)
        return _header(REC["COMM"], misc, _pk("ii", r.pid, r.tid) + _cstr8(r.comm) + tr)
    if isinstance(r, Fork):  # Exit is a Fork
        t = REC["EXIT"] if isinstance(r, Exit) else REC["FORK"]
        body = _pk("iiiiQ", r.pid, r.ppid, r.tid, r.ptid, r.time)
        return _header(t, r.misc, body + tr)
    if isinstance(r, Lost):
        lid = r.id if r.id is not None else r.event.id()
        return _header(REC["LOST"], r.misc, _u64(lid) + _u64(r.lost) + tr)
    if isinstance(r, LostSamples):
        return _header(REC["LOST_SAMPLES"], r.misc, _u64(r.lost) + tr)
    if isinstance(r, Throttle):
        t = REC["UNTHROTTLE"] if r.unthrottle else REC["THROTTLE"]
        tid_ = r.id if r.id is not None else r.event.id()
        return _header(t, r.misc, _pk("QQQ", r.time, tid_, r.stream_id) + tr)
    raise TypeError(f"cannot encode {r!r}")


def _features(
    events: Sequence[Event], attr_size: int, meta: dict, compress_level: int | None, mmap_len: int
) -> dict[int, bytes]:
    feats: dict[int, bytes] = {
        FEAT["HOSTNAME"]: _feat_str(meta.get("hostname", "tdtest")),
        FEAT["OSRELEASE"]: _feat_str(meta.get("osrelease", "6.1.0-test")),
        FEAT["VERSION"]: _feat_str(meta.get("version", "6.1.187")),
        FEAT["ARCH"]: _feat_str(meta.get("arch", "x86_64")),
        FEAT["NRCPUS"]: _pk("II", meta.get("nr_cpus", 4), meta.get("nr_cpus", 4)),
        FEAT["CPUDESC"]: _feat_str(meta.get("cpudesc", "tracedamon test CPU")),
        FEAT["CPUID"]: _feat_str(meta.get("cpuid", "GenuineIntel,6,143,8")),
        FEAT["TOTAL_MEM"]: _u64(meta.get("total_mem_kb", 16 << 20)),
    }
    cmd = meta.get("cmdline", ["/usr/bin/perf", "record", "-d", "--", "./workload"])
    feats[FEAT["CMDLINE"]] = _u32(len(cmd)) + b"".join(_feat_str(c) for c in cmd)
    ed = _pk("II", len(events), attr_size)
    for ev in events:
        ed += ev.attr_bytes(attr_size) + _u32(len(ev.ids)) + _feat_str(ev.name)
        ed += b"".join(_u64(i) for i in ev.ids)
    feats[FEAT["EVENT_DESC"]] = ed
    if compress_level is not None:
        feats[FEAT["COMPRESSED"]] = _pk("IIIII", 1, 1, compress_level, 1, mmap_len)
    return feats
