"""perf.data header: the file header, the attrs (event descriptions), the feature
sections' parsing helpers, and the record and feature names."""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass, field
from pathlib import Path


from ...errors import TraceFormatError
from . import layout as L

MAGIC_LE = 0x32454C4946524550
MAGIC_BE = 0x50455246494C4532

RECORD_NAMES = {
    1: "MMAP",
    2: "LOST",
    3: "COMM",
    4: "EXIT",
    5: "THROTTLE",
    6: "UNTHROTTLE",
    7: "FORK",
    8: "READ",
    9: "SAMPLE",
    10: "MMAP2",
    11: "AUX",
    12: "ITRACE_START",
    13: "LOST_SAMPLES",
    14: "SWITCH",
    15: "SWITCH_CPU_WIDE",
    16: "NAMESPACES",
    17: "KSYMBOL",
    18: "BPF_EVENT",
    19: "CGROUP",
    20: "TEXT_POKE",
    21: "AUX_OUTPUT_HW_ID",
    64: "HEADER_ATTR",
    65: "HEADER_EVENT_TYPE",
    66: "HEADER_TRACING_DATA",
    67: "HEADER_BUILD_ID",
    68: "FINISHED_ROUND",
    69: "ID_INDEX",
    70: "AUXTRACE_INFO",
    71: "AUXTRACE",
    72: "AUXTRACE_ERROR",
    73: "THREAD_MAP",
    74: "CPU_MAP",
    75: "STAT_CONFIG",
    76: "STAT",
    77: "STAT_ROUND",
    78: "EVENT_UPDATE",
    79: "TIME_CONV",
    80: "HEADER_FEATURE",
    81: "COMPRESSED",
    82: "FINISHED_INIT",
    83: "COMPRESSED2",
}

FEATURE_NAMES = {
    1: "TRACING_DATA",
    2: "BUILD_ID",
    3: "HOSTNAME",
    4: "OSRELEASE",
    5: "VERSION",
    6: "ARCH",
    7: "NRCPUS",
    8: "CPUDESC",
    9: "CPUID",
    10: "TOTAL_MEM",
    11: "CMDLINE",
    12: "EVENT_DESC",
    13: "CPU_TOPOLOGY",
    14: "NUMA_TOPOLOGY",
    15: "BRANCH_STACK",
    16: "PMU_MAPPINGS",
    17: "GROUP_DESC",
    18: "AUXTRACE",
    19: "STAT",
    20: "CACHE",
    21: "SAMPLE_TIME",
    22: "MEM_TOPOLOGY",
    23: "CLOCKID",
    24: "DIR_FORMAT",
    25: "BPF_PROG_INFO",
    26: "BPF_BTF",
    27: "COMPRESSED",
    28: "CPU_PMU_CAPS",
    29: "CLOCK_DATA",
    30: "HYBRID_TOPOLOGY",
    31: "PMU_CAPS",
    32: "CPU_DOMAIN_INFO",
}

_BUILTIN_PMU = {
    0: "hardware",
    1: "software",
    2: "tracepoint",
    3: "hw_cache",
    4: "raw",
    5: "breakpoint",
}
_HW_NAMES = [
    "cycles",
    "instructions",
    "cache-references",
    "cache-misses",
    "branch-instructions",
    "branch-misses",
    "bus-cycles",
    "stalled-cycles-frontend",
    "stalled-cycles-backend",
    "ref-cycles",
]
_SW_NAMES = [
    "cpu-clock",
    "task-clock",
    "page-faults",
    "context-switches",
    "cpu-migrations",
    "minor-faults",
    "major-faults",
    "alignment-faults",
    "emulation-faults",
    "dummy",
    "bpf-output",
    "cgroup-switches",
]

_REVBITS = bytes(int(f"{x:08b}"[::-1], 2) for x in range(256))

_TRAILER_BITS = (L.S_TID, L.S_TIME, L.S_ID, L.S_STREAM_ID, L.S_CPU, L.S_IDENTIFIER)
_TRAILER_MASK = sum(_TRAILER_BITS)


@functools.lru_cache(maxsize=None)
def _trailer_words(bits: int) -> int:
    return sum(1 for b in _TRAILER_BITS if bits & b)


# ----------------------------------------------------------------------------------------
# attrs
# ----------------------------------------------------------------------------------------
@dataclass
class Attr:
    """One perf_event_attr (an "evsel"), read tolerantly from any attr size."""

    index: int
    type: int
    size: int
    config: int
    sample_period_or_freq: int
    sample_type: int
    read_format: int
    flags: int
    config1: int = 0
    config2: int = 0
    branch_sample_type: int = 0
    sample_regs_user: int = 0
    sample_stack_user: int = 0
    clockid: int = 0
    sample_regs_intr: int = 0
    aux_watermark: int = 0
    sample_max_stack: int = 0
    aux_sample_size: int = 0
    sig_data: int = 0
    config3: int = 0
    ids: list = field(default_factory=list)
    name: str | None = None
    file_offset: int | None = None

    @classmethod
    def parse(cls, index: int, raw: bytes, *, path, offset: int, be: bool = False) -> "Attr":
        if len(raw) < 8:
            raise TraceFormatError(path, "perf_event_attr shorter than 8 bytes", offset=offset)
        e = ">" if be else "<"
        size = struct.unpack_from(f"{e}I", raw, 4)[0] or 64
        if size < 64:
            raise TraceFormatError(
                path, f"perf_event_attr size {size} below 64 (VER0)", offset=offset
            )
        b = bytes(raw[: min(size, len(raw), 136)]).ljust(136, b"\0")
        (
            typ,
            sz,
            config,
            period,
            st,
            rf,
            flags,
            _wk,
            _bp,
            config1,
            config2,
            bst,
            regs_user,
            stack_user,
            clockid,
            regs_intr,
            aux_wm,
            max_stack,
            _r,
            aux_ss,
            _r2,
            sig_data,
            config3,
        ) = struct.unpack_from(f"{e}IIQQQQQIIQQQQIiQIHHIIQQ", b, 0)
        if be:
            # the flag bits: perf reverses the bits of each byte (swap_bitfield), which
            # turns a big-endian machine's one-bit fields into their little-endian places
            flags = int.from_bytes(bytes(_REVBITS[x] for x in b[40:48]), "little")
        a = cls(
            index=index,
            type=typ,
            size=size,
            config=config,
            sample_period_or_freq=period,
            sample_type=st,
            read_format=rf,
            flags=flags,
            config1=config1,
            config2=config2,
            branch_sample_type=bst,
            sample_regs_user=regs_user,
            sample_stack_user=stack_user,
            clockid=clockid,
            sample_regs_intr=regs_intr,
            aux_watermark=aux_wm,
            sample_max_stack=max_stack,
            aux_sample_size=aux_ss,
            sig_data=sig_data,
            config3=config3,
            file_offset=offset,
        )
        if st & ~L.S_KNOWN:
            raise TraceFormatError(
                path,
                f"attr {index}: unknown sample_type bits "
                f"0x{st & ~L.S_KNOWN:x}: the sample layout is undecidable",
                offset=offset,
            )
        if rf & ~0x1F and st & L.S_READ:
            raise TraceFormatError(
                path,
                f"attr {index}: unknown read_format bits "
                f"0x{rf & ~0x1F:x}: the READ layout is undecidable",
                offset=offset,
            )
        return a

    # flags
    @property
    def freq(self) -> bool:
        return bool(self.flags >> 10 & 1)

    @property
    def sample_id_all(self) -> bool:
        return bool(self.flags >> 18 & 1)

    @property
    def precise_ip(self) -> int:
        return self.flags >> 15 & 3

    @property
    def use_clockid(self) -> bool:
        return bool(self.flags >> 25 & 1)

    @property
    def trailer_len(self) -> int:
        if not self.sample_id_all:
            return 0
        return 8 * _trailer_words(self.sample_type & _TRAILER_MASK)

    def default_name(self) -> str:
        if self.type == 1 and self.config < len(_SW_NAMES):
            return _SW_NAMES[self.config]
        if self.type == 0 and self.config < len(_HW_NAMES):
            return _HW_NAMES[self.config]
        return f"{_BUILTIN_PMU.get(self.type, 'type' + str(self.type))}/config=0x{self.config:x}/"


def _id_pos_sample(st: int) -> int:
    """Body offset of the id in a SAMPLE (perf's id_pos), -1 without ID/IDENTIFIER."""
    if st & L.S_IDENTIFIER:
        return 0
    if not st & L.S_ID:
        return -1
    return 8 * sum(1 for b in (L.S_IP, L.S_TID, L.S_TIME, L.S_ADDR) if st & b)


def _id_pos_trailer(st: int) -> int:
    """Bytes back from the record end where the trailer's id starts (perf's is_pos)."""
    if st & L.S_IDENTIFIER:
        return 8
    if not st & L.S_ID:
        return -1
    return 8 * (1 + bool(st & L.S_CPU) + bool(st & L.S_STREAM_ID))


# ----------------------------------------------------------------------------------------
# feature sections
# ----------------------------------------------------------------------------------------
def _feature_index_plausible(
    index: list[tuple[int, int]] | None, index_end: int, fsize: int
) -> bool:
    """Whether ``index`` (the (offset, size) entries read where the feature index
    belongs) is one perf wrote: every section lies between the index and the end of
    the file. A recording perf did not finish has records there instead; a record's
    first eight bytes (type, misc, size >= 8) read as an offset beyond 2**51."""
    if not index:
        return False
    return all(size == 0 or (off >= index_end and off + size <= fsize) for off, size in index)


@dataclass(frozen=True)
class FileHeader:
    """The 104-byte (or 72-byte, older) header of a regular perf.data file."""

    attr_size: int
    attrs: tuple[int, int]  # (offset, size) of the attrs section
    data: tuple[int, int]  # (offset, size) of the data section
    #: the feature bits (bit b set: feature b has a section after the data)
    bitmap: int


def _feature_bitmap(head: bytes, e: str, big_endian: bool) -> int:
    """The 256-bit feature bitmap at offset 72."""
    w = struct.unpack_from(f"{e}4Q", head, 72)
    bitmap = w[0] | w[1] << 64 | w[2] << 128 | w[3] << 192
    if big_endian and not bitmap >> 3 & 1:
        # a 32-bit big-endian writer's bitmap is in 32-bit words (perf tells
        # them apart by the HOSTNAME bit, which every perf record sets)
        w32 = struct.unpack_from(">8I", head, 72)
        alt = sum(v << (32 * k) for k, v in enumerate(w32))
        if alt >> 3 & 1:
            bitmap = alt
    return bitmap


def parse_file_header(head: bytes, hsize: int, p: Path, fsize: int, big_endian: bool) -> FileHeader:
    """The header of a regular file of ``fsize`` bytes (``head``: its first bytes,
    ``hsize`` the header size it gives), with its sections checked against the file:
    a TraceFormatError at the offending header field otherwise."""
    if hsize not in (104, 72):
        raise TraceFormatError(p, f"perf.data header size {hsize} (expected 104)", offset=8)
    if len(head) < hsize:
        raise TraceFormatError(p, "file ends inside the perf.data header", offset=len(head))
    e = ">" if big_endian else "<"
    attr_size, a_off, a_size, d_off, d_size = struct.unpack_from(f"{e}QQQQQ", head, 16)
    bitmap = _feature_bitmap(head, e, big_endian) if hsize == 104 else 0
    for name, off, size, fo in (("attrs", a_off, a_size, 24), ("data", d_off, d_size, 40)):
        if off < hsize and size:
            raise TraceFormatError(p, f"{name} section overlaps the header", offset=fo)
        if off + size > fsize:
            raise TraceFormatError(
                p,
                f"{name} section [{off}, {off + size}) lies outside the file ({fsize} bytes)",
                offset=fo,
            )
    if a_size and d_size and a_off < d_off + d_size and d_off < a_off + a_size:
        raise TraceFormatError(p, "attrs and data sections overlap", offset=24)
    if attr_size < 64 + 16:
        raise TraceFormatError(p, f"attr_size {attr_size} too small", offset=16)
    if a_size % attr_size:
        raise TraceFormatError(
            p,
            f"attrs section size {a_size} is not a multiple of attr_size {attr_size}",
            offset=24,
        )
    return FileHeader(attr_size, (a_off, a_size), (d_off, d_size), bitmap)
