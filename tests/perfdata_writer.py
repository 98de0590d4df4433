"""Test-only perf.data writer: files with exactly the content a test asks for.

This machine's perf has no hardware PMU, so real recordings cannot hold real
DATA_SRC values, WEIGHT / WEIGHT_STRUCT latencies, branch stacks, transactions
and so on. This module writes such files from a description, so a test knows the
exact truth it wrote and can compare a reader's output (perf's own `perf
script`, or tracedamon's native reader) with it.

Layout follows ``../shared/docs/perf-data-format.md``: the regular file
(header, id arrays, attrs, data, feature index and payloads) and the pipe
stream (HEADER_ATTR, HEADER_FEATURE, EVENT_UPDATE names), optional zstd
compression (one stream across PERF_RECORD_COMPRESSED payloads, flushed but
never ended, records split across payloads), attr sizes 64..136.

    >>> ev = Event("mem-loads", type=4, config=0x1cd,
    ...            sample_type=S.IP | S.TID | S.TIME | S.ADDR | S.DATA_SRC | S.WEIGHT)
    >>> recs = [Comm(ev, pid=7, tid=7, comm="x", exec=True, sid=dict(pid=7, tid=7, time=1)),
    ...         Sample(ev, ip=0x400000, pid=7, tid=7, time=2, addr=0x1000,
    ...                data_src=0x68100142, weight=29)]
    >>> write_perf_data("t.data", [ev], recs)          # doctest: +SKIP

Everything here is written for tests; it validates what it is given (a field the
sample_type does not carry, or a missing one, raises ValueError) so a test never
silently writes something other than what it believes.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

# ----------------------------------------------------------------------------------------
# constants (values from the UAPI header, as listed in the format spec)


class S:
    """PERF_SAMPLE_* bits."""

    IP = 1 << 0
    TID = 1 << 1
    TIME = 1 << 2
    ADDR = 1 << 3
    READ = 1 << 4
    CALLCHAIN = 1 << 5
    ID = 1 << 6
    CPU = 1 << 7
    PERIOD = 1 << 8
    STREAM_ID = 1 << 9
    RAW = 1 << 10
    BRANCH_STACK = 1 << 11
    REGS_USER = 1 << 12
    STACK_USER = 1 << 13
    WEIGHT = 1 << 14
    DATA_SRC = 1 << 15
    IDENTIFIER = 1 << 16
    TRANSACTION = 1 << 17
    REGS_INTR = 1 << 18
    PHYS_ADDR = 1 << 19
    AUX = 1 << 20
    CGROUP = 1 << 21
    DATA_PAGE_SIZE = 1 << 22
    CODE_PAGE_SIZE = 1 << 23
    WEIGHT_STRUCT = 1 << 24


SAMPLE_BIT_NAMES = {v: k for k, v in vars(S).items() if not k.startswith("_")}


class F:
    """PERF_FORMAT_* bits (read_format)."""

    TOTAL_TIME_ENABLED = 1
    TOTAL_TIME_RUNNING = 2
    ID = 4
    GROUP = 8
    LOST = 16


BRANCH_HW_INDEX = 1 << 17  # PERF_SAMPLE_BRANCH_HW_INDEX in branch_sample_type
BRANCH_ANY = 1 << 3

# attr flag bits
FLAG_DISABLED = 1 << 0
FLAG_INHERIT = 1 << 1
FLAG_MMAP = 1 << 8
FLAG_COMM = 1 << 9
FLAG_FREQ = 1 << 10
FLAG_TASK = 1 << 13
FLAG_MMAP_DATA = 1 << 17
FLAG_SAMPLE_ID_ALL = 1 << 18
FLAG_MMAP2 = 1 << 23
FLAG_COMM_EXEC = 1 << 24

# record types
REC = dict(
    MMAP=1,
    LOST=2,
    COMM=3,
    EXIT=4,
    THROTTLE=5,
    UNTHROTTLE=6,
    FORK=7,
    READ=8,
    SAMPLE=9,
    MMAP2=10,
    LOST_SAMPLES=13,
    CGROUP=19,
    HEADER_ATTR=64,
    FINISHED_ROUND=68,
    ID_INDEX=69,
    EVENT_UPDATE=78,
    HEADER_FEATURE=80,
    COMPRESSED=81,
    FINISHED_INIT=82,
)

MISC_KERNEL = 1
MISC_USER = 2
MISC_MMAP_DATA = 1 << 13
MISC_COMM_EXEC = 1 << 13
MISC_EXACT_IP = 1 << 14
MISC_MMAP_BUILD_ID = 1 << 14

# features
FEAT = dict(
    HOSTNAME=3,
    OSRELEASE=4,
    VERSION=5,
    ARCH=6,
    NRCPUS=7,
    CPUDESC=8,
    CPUID=9,
    TOTAL_MEM=10,
    CMDLINE=11,
    EVENT_DESC=12,
    COMPRESSED=27,
)
PIPE_LAST_FEATURE = 32  # perf 6.1's HEADER_LAST_FEATURE: the end-of-features marker

MAGIC = b"PERFILE2"


def _magic() -> bytes:
    """perf writes its magic as a u64: a big-endian machine's file starts "2ELIFREP"."""
    return MAGIC if _E[0] == "<" else MAGIC[::-1]


ATTR_SIZES = (64, 72, 80, 96, 104, 112, 120, 128, 136)

# order of the fixed-slot prefix and the trailer (spec §5, §6)
_TRAILER_ORDER = (S.TID, S.TIME, S.ID, S.STREAM_ID, S.CPU, S.IDENTIFIER)
SAMPLE_ID_BITS = S.TID | S.TIME | S.ID | S.STREAM_ID | S.CPU | S.IDENTIFIER
KNOWN_BITS = (1 << 25) - 1

#: the byte order being written: "<" (little-endian, the default) or ">" (a file as a
#: big-endian machine writes it); set by write_perf_data(byte_order=...)
_E = ["<"]


def _pk(fmt: str, *args) -> bytes:
    return struct.pack(_E[0] + fmt, *args)


def _u32(v: int) -> bytes:
    return _pk("I", v)


def _u64(v: int) -> bytes:
    return _pk("Q", v)


_REVBITS = bytes(int(f"{x:08b}"[::-1], 2) for x in range(256))

# perf_branch_entry's bit fields (position, width) on a little-endian machine; a
# big-endian one allocates them from the most significant bit down
_BRANCH_FIELDS = (
    (0, 1),
    (1, 1),
    (2, 1),
    (3, 1),
    (4, 16),
    (20, 4),
    (24, 2),
    (26, 4),
    (30, 3),
    (33, 31),
)


def _branch_flags(fl: int) -> int:
    """The flags word as the machine of the byte order being written holds it."""
    if _E[0] == "<":
        return fl
    out, top = 0, 64
    for pos, width in _BRANCH_FIELDS:
        top -= width
        out |= (fl >> pos & ((1 << width) - 1)) << top
    return out


def _pad8(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 8)


def _cstr8(s: str | bytes) -> bytes:
    """NUL-terminated string padded to a multiple of 8 (record bodies)."""
    b = s.encode() if isinstance(s, str) else s
    return _pad8(b + b"\0")


def _feat_str(s: str) -> bytes:
    """Feature string: u32 len (padded to 64) + NUL-terminated bytes."""
    b = s.encode() + b"\0"
    b += b"\0" * (-len(b) % 64)
    return _u32(len(b)) + b


# ----------------------------------------------------------------------------------------
# description objects


@dataclass(eq=False)
class Event:
    """One perf_event_attr. ``ids`` default to unique values chosen by the writer."""

    name: str
    type: int = 1
    config: int = 0
    sample_type: int = S.IP | S.TID | S.TIME
    read_format: int = 0
    sample_period: int = 1
    freq: bool = False
    sample_id_all: bool = True
    precise_ip: int = 0
    extra_flags: int = (
        FLAG_DISABLED
        | FLAG_INHERIT
        | FLAG_MMAP
        | FLAG_COMM
        | FLAG_TASK
        | FLAG_MMAP2
        | FLAG_COMM_EXEC
    )
    branch_sample_type: int = 0
    sample_regs_user: int = 0
    sample_stack_user: int = 0
    sample_regs_intr: int = 0
    config1: int = 0
    config2: int = 0
    config3: int = 0
    clockid: int = 0
    use_clockid: bool = False
    aux_sample_size: int = 0
    sample_max_stack: int = 0
    ids: list[int] | None = None

    @property
    def flags(self) -> int:
        f = self.extra_flags | ((self.precise_ip & 3) << 15)
        if self.freq:
            f |= FLAG_FREQ
        if self.sample_id_all:
            f |= FLAG_SAMPLE_ID_ALL
        if self.use_clockid:
            f |= 1 << 25
        return f

    def id(self) -> int:
        assert self.ids, "write_perf_data assigns ids"
        return self.ids[0]

    def attr_bytes(self, size: int) -> bytes:
        """The attr struct truncated to ``size`` bytes, with attr.size = size."""
        if size not in ATTR_SIZES:
            raise ValueError(f"attr size {size} not one of {ATTR_SIZES}")
        need = 64
        if self.config2:
            need = 72
        if self.branch_sample_type or self.sample_type & S.BRANCH_STACK:
            need = max(need, 80)
        if self.sample_regs_user or self.sample_stack_user or self.use_clockid:
            need = max(need, 96)
        if self.sample_regs_intr:
            need = max(need, 104)
        if self.aux_sample_size:
            need = max(need, 120)
        if self.config3:
            need = max(need, 136)
        if size < need:
            raise ValueError(
                f"event {self.name}: attr size {size} cannot hold its fields (needs {need})"
            )
        b = _pk(
            "IIQQQQQIIQ",
            self.type,
            size,
            self.config,
            self.sample_period,
            self.sample_type,
            self.read_format,
            self.flags,
            0,
            0,
            self.config1,
        )
        if _E[0] == ">":
            # a big-endian machine allocates the flag bits from the most significant bit
            # of the first byte on: for one-bit fields that is each little-endian byte
            # with its bits reversed (multi-bit fields such as precise_ip differ)
            le = struct.pack("<Q", self.flags)
            b = b[:40] + bytes(_REVBITS[x] for x in le) + b[48:]
        b += _pk(
            "QQQIiQIHHIIQQ",
            self.config2,
            self.branch_sample_type,
            self.sample_regs_user,
            self.sample_stack_user,
            self.clockid,
            self.sample_regs_intr,
            0,
            self.sample_max_stack,
            0,
            self.aux_sample_size,
            0,
            0,
            self.config3,
        )
        assert len(b) == 136
        return b[:size]


def _popcount(x: int) -> int:
    return bin(x).count("1")


@dataclass(eq=False)
class Sample:
    """One PERF_RECORD_SAMPLE of ``event``. Field names follow the sample_type bits:

    ip, pid, tid, time, addr, id (defaults to the event's first id), stream_id, cpu,
    period, read (dict: value or nr-less group list, see below), callchain (list of
    u64), raw (bytes; padded by the writer so 4+size is a multiple of 8), branch_stack
    (list of (from, to, flags)), branch_hw_idx, regs_user / regs_intr ((abi, [values])),
    stack_user ((bytes, dyn_size)), weight (u64; WEIGHT or the whole WEIGHT_STRUCT
    union), data_src, transaction, phys_addr, cgroup, data_page_size,
    code_page_size, aux (bytes).

    read: without GROUP ``{"value", "enabled", "running", "id", "lost"}``; with GROUP
    ``{"enabled", "running", "values": [{"value", "id", "lost"}, ...]}``.
    """

    event: Event
    misc: int = MISC_USER
    fields: dict[str, Any] = field(default_factory=dict)

    def __init__(self, event: Event, misc: int = MISC_USER, **fields):
        self.event = event
        self.misc = misc
        self.fields = fields

    def __getitem__(self, k):
        return self.fields[k]

    def get(self, k, default=None):
        return self.fields.get(k, default)


# Side-band records. `sid` values (pid, tid, time, id, stream_id, cpu) fill the
# sample_id trailer of `event` when it has sample_id_all.


@dataclass(eq=False)
class _SideBand:
    event: Event | None = None
    sid: dict[str, int] = field(default_factory=dict)
    misc: int = 0


@dataclass(eq=False)
class Mmap(_SideBand):
    pid: int = 0
    tid: int = 0
    start: int = 0
    len: int = 0
    pgoff: int = 0
    filename: str = ""


@dataclass(eq=False)
class Mmap2(_SideBand):
    pid: int = 0
    tid: int = 0
    start: int = 0
    len: int = 0
    pgoff: int = 0
    maj: int = 0
    min: int = 0
    ino: int = 0
    ino_generation: int = 0
    build_id: bytes | None = None  # set → the MMAP_BUILD_ID form
    prot: int = 5
    flags: int = 2
    filename: str = ""


@dataclass(eq=False)
class Comm(_SideBand):
    pid: int = 0
    tid: int = 0
    comm: str = ""
    exec: bool = False


@dataclass(eq=False)
class Fork(_SideBand):
    pid: int = 0
    ppid: int = 0
    tid: int = 0
    ptid: int = 0
    time: int = 0


@dataclass(eq=False)
class Exit(Fork):
    pass


@dataclass(eq=False)
class Lost(_SideBand):
    id: int | None = None
    lost: int = 0


@dataclass(eq=False)
class LostSamples(_SideBand):
    lost: int = 0


@dataclass(eq=False)
class Throttle(_SideBand):
    time: int = 0
    id: int | None = None
    stream_id: int = 0
    unthrottle: bool = False


@dataclass(eq=False)
class FinishedRound:
    pass


@dataclass(eq=False)
class FinishedInit:
    pass


@dataclass(eq=False)
class IdIndex:
    """PERF_RECORD_ID_INDEX: entries (id, attr index, cpu, tid); built from the events
    when ``entries`` is None."""

    entries: list[tuple[int, int, int, int]] | None = None


@dataclass(eq=False)
class RawRecord:
    """Any bytes, written as-is (for tests of unknown or broken records)."""

    data: bytes


# ----------------------------------------------------------------------------------------
# encoding


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


# ----------------------------------------------------------------------------------------
# features


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


# ----------------------------------------------------------------------------------------
# assembling a file


def assign_ids(events: Sequence[Event], start: int = 1000) -> None:
    nxt = start
    for ev in events:
        if ev.ids is None:
            ev.ids = [nxt, nxt + 1]
            nxt += 2
        else:
            nxt = max([nxt] + [i + 1 for i in ev.ids])


def check_events(events: Sequence[Event], *, pipe: bool = False) -> None:
    """perf's rules for matching records to attrs: with several events every attr
    has ID or IDENTIFIER, at the same position."""
    if len(events) > 1 or pipe and len(events) > 0:
        if len(events) > 1:
            for ev in events:
                if not ev.sample_type & (S.ID | S.IDENTIFIER):
                    raise ValueError(f"event {ev.name}: several events need ID or IDENTIFIER")
        ident = {bool(ev.sample_type & S.IDENTIFIER) for ev in events}
        if len(ident) > 1:
            raise ValueError("IDENTIFIER must be set on all events or none")
        if ident == {False}:
            pos = {_popcount(ev.sample_type & (S.IP | S.TID | S.TIME | S.ADDR)) for ev in events}
            trl = {_popcount(ev.sample_type & (S.CPU | S.STREAM_ID)) for ev in events}
            if len(pos) > 1 or len(trl) > 1:
                raise ValueError("events with ID but different id positions need IDENTIFIER")
    sia = {ev.sample_id_all for ev in events}
    if len(sia) > 1:
        raise ValueError("sample_id_all must be the same for all events")


def build_data(
    events: Sequence[Event],
    records: Iterable,
    *,
    compress: bool,
    chunks: Sequence[int] | None = None,
    compress_level: int = 1,
    where: list | None = None,
) -> bytes:
    """The record stream. With ``compress``, every record except FINISHED_ROUND goes into
    the zstd stream; a FINISHED_ROUND closes the current compressed run and sits between
    containers, as perf writes it.

    ``where`` (a list) receives, per record, ``(first, last)`` offsets *within the
    data section* of the record itself (uncompressed: first == last) or of the
    COMPRESSED containers holding its first and its last byte.
    """
    enc = [(r, encode_record(r, events)) for r in records]
    if not compress:
        pos = 0
        for _, b in enc:
            if where is not None:
                where.append((pos, pos))
            pos += len(b)
        return b"".join(b for _, b in enc)
    out = []
    out_pos = [0]
    pending = bytearray()
    pending_recs: list[tuple[int, int, int]] = []  # (record index, start, end) in pending
    import zstandard

    cobj = zstandard.ZstdCompressor(level=compress_level).compressobj()
    sizes = list(chunks) if chunks else []
    spans: dict[int, list] = {}

    def emit(b: bytes) -> int:
        off = out_pos[0]
        out.append(b)
        out_pos[0] += len(b)
        return off

    def flush_pending():
        nonlocal pending, pending_recs
        pos = 0
        while pos < len(pending):
            n = sizes.pop(0) if sizes else 4096
            n = max(1, n)
            piece = bytes(pending[pos : pos + n])
            payload = cobj.compress(piece) + cobj.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
            if 8 + len(payload) > 0xFFFF:
                raise ValueError("compressed piece too large for one record")
            off = emit(_pk("IHH", REC["COMPRESSED"], 0, 8 + len(payload)) + payload)
            for idx, a, e in pending_recs:
                if a < pos + n and e > pos:  # the record has bytes in this piece
                    sp = spans.setdefault(idx, [off, off])
                    sp[1] = off
            pos += n
        pending = bytearray()
        pending_recs = []

    for i, (r, b) in enumerate(enc):
        if isinstance(r, FinishedRound):
            flush_pending()
            off = emit(b)
            spans[i] = [off, off]
        else:
            pending_recs.append((i, len(pending), len(pending) + len(b)))
            pending += b
    flush_pending()
    if where is not None:
        where.extend(tuple(spans[i]) for i in range(len(enc)))
    return b"".join(out)


def write_perf_data(
    path,
    events: Sequence[Event],
    records: Iterable,
    *,
    layout: str = "file",
    compress: bool = False,
    attr_size: int = 128,
    chunks: Sequence[int] | None = None,
    compress_level: int = 1,
    mmap_len: int = 1 << 20,
    meta: dict | None = None,
    id_index: bool = False,
    event_update_names: bool = True,
    feature_end_marker: bool = True,
    info: dict | None = None,
    byte_order: str = "little",
) -> str:
    """Write a perf.data file; returns its path.

    ``layout``: "file" (regular) or "pipe". ``attr_size``: bytes of perf_event_attr
    (64..136; the file header's attr_size is this + 16). ``chunks``: compression piece
    sizes (see :func:`build_data`). ``id_index``: put an ID_INDEX record first.
    ``info`` (a dict) receives ``offsets``: per given record, the file offsets
    ``(first, last)`` of the record itself, or of the COMPRESSED records holding its
    first and last byte; and ``data_offset``.
    """
    events = list(events)
    assign_ids(events)
    check_events(events, pipe=layout == "pipe")
    for ev in events:
        ev.attr_bytes(attr_size)  # validates the size
    records = list(records)
    if id_index:
        records = [IdIndex()] + records
    where: list = []
    if byte_order not in ("little", "big"):
        raise ValueError(f"byte_order {byte_order!r}")
    _E[0] = "<" if byte_order == "little" else ">"
    try:
        data = build_data(
            events,
            records,
            compress=compress,
            chunks=chunks,
            compress_level=compress_level,
            where=where,
        )
        feats = _features(
            events, attr_size, meta or {}, compress_level if compress else None, mmap_len
        )
        if layout == "file":
            blob = _file_layout(events, attr_size, data, feats)
            data_off = len(blob) - len(data) - _feature_tail_len(feats)
        elif layout == "pipe":
            blob = _pipe_layout(
                events, attr_size, data, feats, event_update_names, feature_end_marker
            )
            data_off = len(blob) - len(data)
        else:
            raise ValueError(f"unknown layout {layout!r}")
    finally:
        _E[0] = "<"
    assert blob[data_off : data_off + len(data)] == data
    if info is not None:
        skip = 1 if id_index else 0
        info["data_offset"] = data_off
        info["offsets"] = [(data_off + a, data_off + b) for a, b in where[skip:]]
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(blob)
    os.replace(tmp, path)
    return os.fspath(path)


def _feature_tail_len(feats) -> int:
    return 16 * len(feats) + sum(len(p) for p in feats.values())


def _file_layout(events, attr_size, data, feats) -> bytes:
    hdr_size = 104
    pos = hdr_size
    id_blobs = []
    id_sections = []
    for ev in events:
        b = b"".join(_u64(i) for i in ev.ids)
        id_sections.append((pos, len(b)))
        id_blobs.append(b)
        pos += len(b)
    attrs_off = pos
    attrs = b"".join(
        ev.attr_bytes(attr_size) + _pk("QQ", *sec) for ev, sec in zip(events, id_sections)
    )
    data_off = attrs_off + len(attrs)
    feat_off = data_off + len(data)
    bits = sorted(feats)
    index_size = 16 * len(bits)
    payload_pos = feat_off + index_size
    index = b""
    payloads = b""
    for bit in bits:
        p = feats[bit]
        index += _pk("QQ", payload_pos, len(p))
        payloads += p
        payload_pos += len(p)
    bitmap = [0, 0, 0, 0]
    for bit in bits:
        bitmap[bit // 64] |= 1 << (bit % 64)
    header = _magic() + _pk("QQ", hdr_size, attr_size + 16)
    header += _pk("QQ", attrs_off, len(attrs))
    header += _pk("QQ", data_off, len(data))
    header += _pk("QQ", 0, 0)
    header += _pk("4Q", *bitmap)
    assert len(header) == hdr_size
    return header + b"".join(id_blobs) + attrs + data + index + payloads


def _pipe_layout(events, attr_size, data, feats, event_update_names, end_marker) -> bytes:
    out = [_magic() + _u64(16)]
    for ev in events:
        body = ev.attr_bytes(attr_size) + b"".join(_u64(i) for i in ev.ids)
        out.append(_header(REC["HEADER_ATTR"], 0, body))
    for bit in sorted(feats):
        if bit == FEAT["EVENT_DESC"]:
            continue  # perf sends names as EVENT_UPDATE in pipe mode
        out.append(_header(REC["HEADER_FEATURE"], 0, _u64(bit) + feats[bit]))
    if end_marker:
        out.append(_header(REC["HEADER_FEATURE"], 0, _u64(PIPE_LAST_FEATURE)))
    if event_update_names:
        for ev in events:
            body = _u64(2) + _u64(ev.ids[0]) + _cstr8(ev.name)
            out.append(_header(REC["EVENT_UPDATE"], 0, body))
    out.append(data)
    return b"".join(out)
