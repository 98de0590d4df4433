"""The perf.data writer's constants (the UAPI values the format spec lists) and byte
packing helpers; ``_E[0]`` is the byte order every encoder packs with (``write_perf_data``
sets it)."""

from __future__ import annotations

import struct


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
