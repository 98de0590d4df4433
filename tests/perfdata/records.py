"""What a test describes: events (perf_event_attr), samples and side-band records."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from .constants import (
    _E,
    _pk,
    _REVBITS,
    ATTR_SIZES,
    FLAG_COMM,
    FLAG_COMM_EXEC,
    FLAG_DISABLED,
    FLAG_FREQ,
    FLAG_INHERIT,
    FLAG_MMAP,
    FLAG_MMAP2,
    FLAG_SAMPLE_ID_ALL,
    FLAG_TASK,
    MISC_USER,
    S,
)


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
