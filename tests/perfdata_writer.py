"""Test-only perf.data writer: files with exactly the content a test asks for.

This machine's perf has no hardware PMU, so real recordings cannot hold real
DATA_SRC values, WEIGHT / WEIGHT_STRUCT latencies, branch stacks, transactions
and so on. This module writes such files from a description, so a test knows the
exact truth it wrote and can compare a reader's output (perf's own `perf
script`, or tracedamon's native reader) with it.

The writer is in tests/perfdata/ (constants, records, encode, assemble); this module
gives its public names.

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

from perfdata.constants import (
    S,
    SAMPLE_BIT_NAMES,
    F,
    BRANCH_HW_INDEX,
    BRANCH_ANY,
    FLAG_DISABLED,
    FLAG_INHERIT,
    FLAG_MMAP,
    FLAG_COMM,
    FLAG_FREQ,
    FLAG_TASK,
    FLAG_MMAP_DATA,
    FLAG_SAMPLE_ID_ALL,
    FLAG_MMAP2,
    FLAG_COMM_EXEC,
    REC,
    MISC_KERNEL,
    MISC_USER,
    MISC_MMAP_DATA,
    MISC_COMM_EXEC,
    MISC_EXACT_IP,
    MISC_MMAP_BUILD_ID,
    FEAT,
    PIPE_LAST_FEATURE,
    MAGIC,
    ATTR_SIZES,
    SAMPLE_ID_BITS,
    KNOWN_BITS,
)
from perfdata.records import (
    Event,
    Sample,
    Mmap,
    Mmap2,
    Comm,
    Fork,
    Exit,
    Lost,
    LostSamples,
    Throttle,
    FinishedRound,
    FinishedInit,
    IdIndex,
    RawRecord,
)
from perfdata.encode import (
    encode_sample,
    weight_struct,
    trailer,
    encode_record,
)
from perfdata.assemble import (
    assign_ids,
    check_events,
    build_data,
    write_perf_data,
)

__all__ = [
    "S",
    "SAMPLE_BIT_NAMES",
    "F",
    "BRANCH_HW_INDEX",
    "BRANCH_ANY",
    "FLAG_DISABLED",
    "FLAG_INHERIT",
    "FLAG_MMAP",
    "FLAG_COMM",
    "FLAG_FREQ",
    "FLAG_TASK",
    "FLAG_MMAP_DATA",
    "FLAG_SAMPLE_ID_ALL",
    "FLAG_MMAP2",
    "FLAG_COMM_EXEC",
    "REC",
    "MISC_KERNEL",
    "MISC_USER",
    "MISC_MMAP_DATA",
    "MISC_COMM_EXEC",
    "MISC_EXACT_IP",
    "MISC_MMAP_BUILD_ID",
    "FEAT",
    "PIPE_LAST_FEATURE",
    "MAGIC",
    "ATTR_SIZES",
    "SAMPLE_ID_BITS",
    "KNOWN_BITS",
    "Event",
    "Sample",
    "Mmap",
    "Mmap2",
    "Comm",
    "Fork",
    "Exit",
    "Lost",
    "LostSamples",
    "Throttle",
    "FinishedRound",
    "FinishedInit",
    "IdIndex",
    "RawRecord",
    "encode_sample",
    "weight_struct",
    "trailer",
    "encode_record",
    "assign_ids",
    "check_events",
    "build_data",
    "write_perf_data",
]
