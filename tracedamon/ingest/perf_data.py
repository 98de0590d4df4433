"""Native perf.data reader: ``tracedamon ingest perf.data`` without ``perf``.

Reads every layout ``perf record`` writes (docs/perf-data-format.md):

* a regular file (104-byte header, attrs and feature sections),
* a pipe stream (``perf record -o -``: attrs, features, event names and tracing
  data arrive as records),
* a ``perf record --threads`` directory (``data`` + bare ``data.N`` streams),

with zstd-compressed record streams (COMPRESSED / COMPRESSED2: one zstd stream per
file, records split across payloads). Records are decoded many at a time from a
byte buffer by the numba kernels of :mod:`tracedamon.ingest.perf_records`; the data
section is processed in chunks (:data:`CHUNK_BYTES`), so memory stays bounded.

Public API
----------
``open_perf_data(path) -> PerfData``
    ``.events`` (list of dicts: event_id, name, type, config, sample_type, ids ...),
    ``.meta`` (header features), ``.tracing_data`` (the tracing-data blob or None),
    ``.layout``, and ``iter_sample_batches()`` yielding Arrow RecordBatches in the
    :data:`~tracedamon.schema.SAMPLES` schema.
``ingest_into(path, writer, *, progress=False, on_damon_events=None, **opts)``
    the reader behind ``tracedamon ingest``: writes ``samples``, ``events``,
    ``mmaps``, ``tasks`` and ``lost`` and the header features into ``writer.meta``
    (hostname, os_release, perf_version, arch, nrcpus, cpu_desc, cpuid, total_mem_kb,
    cmdline, event_desc, events, sample_time, clock_id / clock_data, compression,
    group_desc, pmu_mappings, layout, record_counts, unknown_sample_ids ...). When an
    event is a ``damon:`` tracepoint it calls ``on_damon_events(reader, writer)``: the
    caller (:func:`tracedamon.ingest.ingest`) hands them to
    :func:`tracedamon.ingest.damon_trace.add_regions_from_perf_data`, so this module
    imports neither the DAMON reader nor ``perf script``'s
    (:func:`tracedamon.ingest.perf_script.ingest_via_perf`, chosen by the caller too).

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
:data:`MAX_PENDING` pending samples, the earliest pending samples are emitted to
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

import functools
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa

from ..errors import ConfigError, TraceFormatError
from ..schema import SAMPLES
from ..schema import empty as _empty
from . import data_src as _ds
from . import perf_records as K
from .arrays import py_array, table_from_pylist

#: bytes of records decoded at a time (and the logical size of decompressed chunks);
#: 2 MiB rather than 4 takes ~45 MB off the peak RSS of a 10 M-sample ingest at the
#: same speed (the per-chunk scratch arrays scale with it)
CHUNK_BYTES = 2 << 20
#: samples held back for sorting before the oldest are emitted regardless of rounds
MAX_PENDING = 1_000_000
#: rows collected before a batch is handed to the writer (one Parquet row group each);
#: 64 Ki rather than 128 Ki rows takes ~40 MB off the peak RSS of a whole 10 M-sample
#: `tracedamon ingest` (fewer batches in flight), at the same CPU time
WRITE_ROWS = 1 << 16

MAGIC_LE = 0x32454C4946524550
MAGIC_BE = 0x50455246494C4532

RECORD_NAMES = {
    1: "MMAP", 2: "LOST", 3: "COMM", 4: "EXIT", 5: "THROTTLE", 6: "UNTHROTTLE", 7: "FORK",
    8: "READ", 9: "SAMPLE", 10: "MMAP2", 11: "AUX", 12: "ITRACE_START", 13: "LOST_SAMPLES",
    14: "SWITCH", 15: "SWITCH_CPU_WIDE", 16: "NAMESPACES", 17: "KSYMBOL", 18: "BPF_EVENT",
    19: "CGROUP", 20: "TEXT_POKE", 21: "AUX_OUTPUT_HW_ID", 64: "HEADER_ATTR",
    65: "HEADER_EVENT_TYPE", 66: "HEADER_TRACING_DATA", 67: "HEADER_BUILD_ID",
    68: "FINISHED_ROUND", 69: "ID_INDEX", 70: "AUXTRACE_INFO", 71: "AUXTRACE",
    72: "AUXTRACE_ERROR", 73: "THREAD_MAP", 74: "CPU_MAP", 75: "STAT_CONFIG", 76: "STAT",
    77: "STAT_ROUND", 78: "EVENT_UPDATE", 79: "TIME_CONV", 80: "HEADER_FEATURE",
    81: "COMPRESSED", 82: "FINISHED_INIT", 83: "COMPRESSED2",
}

FEATURE_NAMES = {
    1: "TRACING_DATA", 2: "BUILD_ID", 3: "HOSTNAME", 4: "OSRELEASE", 5: "VERSION", 6: "ARCH",
    7: "NRCPUS", 8: "CPUDESC", 9: "CPUID", 10: "TOTAL_MEM", 11: "CMDLINE", 12: "EVENT_DESC",
    13: "CPU_TOPOLOGY", 14: "NUMA_TOPOLOGY", 15: "BRANCH_STACK", 16: "PMU_MAPPINGS",
    17: "GROUP_DESC", 18: "AUXTRACE", 19: "STAT", 20: "CACHE", 21: "SAMPLE_TIME",
    22: "MEM_TOPOLOGY", 23: "CLOCKID", 24: "DIR_FORMAT", 25: "BPF_PROG_INFO", 26: "BPF_BTF",
    27: "COMPRESSED", 28: "CPU_PMU_CAPS", 29: "CLOCK_DATA", 30: "HYBRID_TOPOLOGY",
    31: "PMU_CAPS", 32: "CPU_DOMAIN_INFO",
}

_BUILTIN_PMU = {0: "hardware", 1: "software", 2: "tracepoint", 3: "hw_cache", 4: "raw",
                5: "breakpoint"}
_HW_NAMES = ["cycles", "instructions", "cache-references", "cache-misses",
             "branch-instructions", "branch-misses", "bus-cycles", "stalled-cycles-frontend",
             "stalled-cycles-backend", "ref-cycles"]
_SW_NAMES = ["cpu-clock", "task-clock", "page-faults", "context-switches", "cpu-migrations",
             "minor-faults", "major-faults", "alignment-faults", "emulation-faults", "dummy",
             "bpf-output", "cgroup-switches"]

_REVBITS = bytes(int(f"{x:08b}"[::-1], 2) for x in range(256))

_TRAILER_BITS = (K.S_TID, K.S_TIME, K.S_ID, K.S_STREAM_ID, K.S_CPU, K.S_IDENTIFIER)
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
            raise TraceFormatError(path, f"perf_event_attr size {size} below 64 (VER0)",
                                   offset=offset)
        b = bytes(raw[: min(size, len(raw), 136)]).ljust(136, b"\0")
        (typ, sz, config, period, st, rf, flags, _wk, _bp, config1, config2, bst,
         regs_user, stack_user, clockid, regs_intr, aux_wm, max_stack, _r, aux_ss, _r2,
         sig_data, config3) = struct.unpack_from(f"{e}IIQQQQQIIQQQQIiQIHHIIQQ", b, 0)
        if be:
            # the flag bits: perf reverses the bits of each byte (swap_bitfield), which
            # turns a big-endian machine's one-bit fields into their little-endian places
            flags = int.from_bytes(bytes(_REVBITS[x] for x in b[40:48]), "little")
        a = cls(index=index, type=typ, size=size, config=config, sample_period_or_freq=period,
                sample_type=st, read_format=rf, flags=flags, config1=config1, config2=config2,
                branch_sample_type=bst, sample_regs_user=regs_user,
                sample_stack_user=stack_user, clockid=clockid, sample_regs_intr=regs_intr,
                aux_watermark=aux_wm, sample_max_stack=max_stack, aux_sample_size=aux_ss,
                sig_data=sig_data, config3=config3, file_offset=offset)
        if st & ~K.S_KNOWN:
            raise TraceFormatError(path, f"attr {index}: unknown sample_type bits "
                                   f"0x{st & ~K.S_KNOWN:x}: the sample layout is undecidable",
                                   offset=offset)
        if rf & ~0x1F and st & K.S_READ:
            raise TraceFormatError(path, f"attr {index}: unknown read_format bits "
                                   f"0x{rf & ~0x1F:x}: the READ layout is undecidable",
                                   offset=offset)
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
    if st & K.S_IDENTIFIER:
        return 0
    if not st & K.S_ID:
        return -1
    return 8 * sum(1 for b in (K.S_IP, K.S_TID, K.S_TIME, K.S_ADDR) if st & b)


def _id_pos_trailer(st: int) -> int:
    """Bytes back from the record end where the trailer's id starts (perf's is_pos)."""
    if st & K.S_IDENTIFIER:
        return 8
    if not st & K.S_ID:
        return -1
    return 8 * (1 + bool(st & K.S_CPU) + bool(st & K.S_STREAM_ID))


# ----------------------------------------------------------------------------------------
# feature sections
# ----------------------------------------------------------------------------------------
def _feature_index_plausible(index: list[tuple[int, int]] | None, index_end: int,
                             fsize: int) -> bool:
    """Whether ``index`` (the (offset, size) entries read where the feature index
    belongs) is one perf wrote: every section lies between the index and the end of
    the file. A recording perf did not finish has records there instead; a record's
    first eight bytes (type, misc, size >= 8) read as an offset beyond 2**51."""
    if not index:
        return False
    return all(size == 0 or (off >= index_end and off + size <= fsize)
               for off, size in index)


class _Cur:
    """A bounds-checked cursor over one section, in the file's byte order."""

    def __init__(self, data: bytes, path, base: int, what: str, be: bool = False):
        self.d = data
        self.p = 0
        self.path = path
        self.base = base
        self.what = what
        self._u32 = struct.Struct(">I" if be else "<I").unpack_from
        self._u64 = struct.Struct(">Q" if be else "<Q").unpack_from

    def _need(self, n: int):
        if self.p + n > len(self.d) or n < 0:
            raise TraceFormatError(self.path, f"{self.what}: section ends inside a field",
                                   offset=self.base + self.p)

    def u32(self) -> int:
        self._need(4)
        v = self._u32(self.d, self.p)[0]
        self.p += 4
        return v

    def u64(self) -> int:
        self._need(8)
        v = self._u64(self.d, self.p)[0]
        self.p += 8
        return v

    def raw(self, n: int) -> bytes:
        self._need(n)
        v = self.d[self.p:self.p + n]
        self.p += n
        return bytes(v)

    def string(self) -> str:
        n = self.u32()
        return self.raw(n).split(b"\0", 1)[0].decode("utf-8", "replace")

    def strings(self) -> list[str]:
        n = self.u32()
        if n > len(self.d):
            raise TraceFormatError(self.path, f"{self.what}: impossible string count {n}",
                                   offset=self.base + self.p - 4)
        return [self.string() for _ in range(n)]

    @property
    def left(self) -> int:
        return len(self.d) - self.p


# ----------------------------------------------------------------------------------------
# the reader
# ----------------------------------------------------------------------------------------
@dataclass
class _Source:
    path: Path
    start: int
    #: None: the records run to the end of the file (a pipe stream, a ``data.N`` of a
    #: directory, a recording perf did not finish); a record cut by the end of such a
    #: file is the end of a truncated recording, not corruption
    end: int | None
    label: str


class PerfData:
    """An opened perf.data (file, pipe stream or directory). See the module doc."""

    def __init__(self, path: str | os.PathLike, *, strict: bool = False):
        self.path = Path(path)
        #: refuse a recording that was cut short instead of reading what it holds
        self.strict = strict
        #: what a truncated recording lost (see :meth:`_note_truncation`), else None
        self.truncation: dict | None = None
        #: per record stream (source label): (first byte, end of its last complete
        #: record), filled as each stream is read to its end
        self.stream_ends: dict[str, tuple[int, int]] = {}
        self.meta: dict = {}
        self.attrs: list[Attr] = []
        self.tracing_data: bytes | None = None
        self.features: dict[int, bytes] = {}
        self._id2attr: dict[int, int] = {}
        self._attr_offsets: set = set()
        self._params = None
        self.sources: list[_Source] = []
        #: a file written on a big-endian machine: records are turned little-endian
        #: chunk by chunk (perf_records.scan_records_be and the be_fix_* kernels)
        self.big_endian = False
        self._e = "<"
        #: filled by ingest_into: seconds the Parquet thread was busy (wall, CPU)
        self.timings: dict[str, float] = {}
        if self.path.is_dir():
            self._open_directory(self.path)
        else:
            self._open_file(self.path)
            if self.layout == "file" and (self.meta.get("dir_format", 0) >= 1 or
                                          self.meta.get("unfinished_recording")) and \
                    self.path.name == "data" and any(self.path.parent.glob("data.[0-9]*")):
                # (an unfinished --threads recording never wrote its DIR_FORMAT feature)
                # the 'data' file of a --threads directory: read the whole directory
                self._open_directory(self.path.parent, opened=True)
        if self.layout == "pipe":
            self._prologue()
        self._finish_open()

    # -- opening ---------------------------------------------------------------------
    def _open_directory(self, d: Path, opened: bool = False):
        data = d / "data"
        if not data.is_file():
            raise TraceFormatError(d, "directory has no 'data' file (not a perf.data "
                                   "directory)")
        if not opened:
            self._open_file(data)
        if self.layout == "pipe":
            raise TraceFormatError(data, "a perf.data directory's 'data' is a pipe stream")
        self.layout = "directory"
        extra = []
        for q in d.iterdir():
            if q.name.startswith("data.") and q.name[5:].isdigit() and q.is_file():
                extra.append((int(q.name[5:]), q))
        for _, q in sorted(extra):
            self.sources.append(_Source(q, 0, None, q.name))

    def _open_file(self, p: Path):
        try:
            f = open(p, "rb")
        except OSError as e:
            raise TraceFormatError(p, f"cannot read: {e.strerror}") from None
        with f:
            fsize = os.fstat(f.fileno()).st_size
            head = f.read(104)
            if len(head) < 16:
                raise TraceFormatError(p, "file too short for a perf.data header "
                                       f"({len(head)} bytes)", offset=0)
            magic, hsize = struct.unpack_from("<QQ", head, 0)
            if magic == MAGIC_BE:
                self.big_endian = True
                self._e = ">"
                self.meta["byte_order"] = "big"
                hsize = struct.unpack_from(">Q", head, 8)[0]
            elif magic != MAGIC_LE:
                if head[:8] == b"PERFFILE":
                    raise TraceFormatError(p, "perf.data version 1 ('PERFFILE') is not "
                                           "supported", offset=0)
                raise TraceFormatError(p, f"not a perf.data file (magic {head[:8]!r})", offset=0)
            self.file_size = fsize
            if hsize == 16 and self.big_endian:
                # perf 6.1 cannot read one either ("Can't parse sample"), so there is no
                # oracle to check a reader against
                raise TraceFormatError(p, "big-endian pipe streams are not supported: "
                                       "record to a file (perf record -o FILE), or run "
                                       "perf inject -i - -o FILE on the recording machine",
                                       offset=0)
            if hsize == 16:
                self.layout = "pipe"
                self.sources = [_Source(p, 16, None, p.name)]
                return
            if hsize not in (104, 72):
                raise TraceFormatError(p, f"perf.data header size {hsize} (expected 104)",
                                       offset=8)
            if len(head) < hsize:
                raise TraceFormatError(p, "file ends inside the perf.data header", offset=len(head))
            self.layout = "file"
            e = self._e
            attr_size, a_off, a_size, d_off, d_size = struct.unpack_from(f"{e}QQQQQ", head, 16)
            bitmap = 0
            if hsize == 104:
                w = struct.unpack_from(f"{e}4Q", head, 72)
                bitmap = w[0] | w[1] << 64 | w[2] << 128 | w[3] << 192
                if self.big_endian and not bitmap >> 3 & 1:
                    # a 32-bit big-endian writer's bitmap is in 32-bit words (perf tells
                    # them apart by the HOSTNAME bit, which every perf record sets)
                    w32 = struct.unpack_from(">8I", head, 72)
                    alt = sum(v << (32 * k) for k, v in enumerate(w32))
                    if alt >> 3 & 1:
                        bitmap = alt
            for name, off, size, fo in (("attrs", a_off, a_size, 24), ("data", d_off, d_size, 40)):
                if off < hsize and size:
                    raise TraceFormatError(p, f"{name} section overlaps the header", offset=fo)
                if off + size > fsize:
                    raise TraceFormatError(p, f"{name} section [{off}, {off + size}) lies "
                                           f"outside the file ({fsize} bytes)", offset=fo)
            if a_size and d_size and a_off < d_off + d_size and d_off < a_off + a_size:
                raise TraceFormatError(p, "attrs and data sections overlap", offset=24)
            if attr_size < 64 + 16:
                raise TraceFormatError(p, f"attr_size {attr_size} too small", offset=16)
            if a_size % attr_size:
                raise TraceFormatError(p, f"attrs section size {a_size} is not a multiple of "
                                       f"attr_size {attr_size}", offset=24)
            self._header = dict(attr_size=attr_size, attrs=(a_off, a_size), data=(d_off, d_size))
            # attrs + their ids
            f.seek(a_off)
            blob = f.read(a_size)
            for i in range(a_size // attr_size):
                ent = blob[i * attr_size:(i + 1) * attr_size]
                a = Attr.parse(i, ent[: attr_size - 16], path=p, offset=a_off + i * attr_size,
                               be=self.big_endian)
                ids_off, ids_size = struct.unpack_from(f"{e}QQ", ent, attr_size - 16)
                if ids_off + ids_size > fsize or ids_size % 8:
                    raise TraceFormatError(p, f"attr {i}: ids section [{ids_off}, "
                                           f"{ids_off + ids_size}) invalid",
                                           offset=a_off + (i + 1) * attr_size - 16)
                f.seek(ids_off)
                a.ids = list(struct.unpack(f"{e}{ids_size // 8}Q", f.read(ids_size)))
                self.attrs.append(a)
            # features: perf record writes the header twice, at the start with data.size
            # 0 (and the feature bits it means to write) and at the end with the data
            # size, right before the feature sections. data.size 0 without a feature
            # index behind it is a recording perf did not finish (killed, or still
            # running): its records run to the end of the file.
            bits = [b for b in range(256) if bitmap >> b & 1]
            feat_off = d_off + d_size
            index = None
            if bits and feat_off + 16 * len(bits) <= fsize:
                f.seek(feat_off)
                raw = f.read(16 * len(bits))
                index = [struct.unpack_from(f"{e}QQ", raw, 16 * k) for k in range(len(bits))]
            if not d_size and not _feature_index_plausible(index, feat_off + 16 * len(bits),
                                                            fsize):
                self.meta["unfinished_recording"] = True
                if self.strict:
                    why = ("data size 0 in the header: perf record did not finish (killed, "
                           "or still running); without {} the records it wrote are read")
                    raise TraceFormatError(p, why.format("strict=True"), offset=48,
                                           cli_problem=why.format("--strict"))
                self._note_truncation(unfinished=True,
                                      features_lost=[FEATURE_NAMES.get(b, str(b)) for b in bits])
                self.sources = [_Source(p, d_off, None, p.name)]
                return
            lost = []
            if bits and index is None:
                # the file ends before the feature index (cut after the data section)
                if self.strict:
                    raise TraceFormatError(p, f"the file ({fsize} bytes) ends before its "
                                           f"feature index [{feat_off}, "
                                           f"{feat_off + 16 * len(bits)})", offset=feat_off)
                lost = [FEATURE_NAMES.get(b, str(b)) for b in bits]
            for k, b in enumerate(bits if index is not None else ()):
                off, size = index[k]
                if size == 0:
                    continue
                if off + size > fsize:
                    # perf skips a feature it cannot read and goes on with the data
                    if self.strict:
                        raise TraceFormatError(p, f"feature {FEATURE_NAMES.get(b, b)} "
                                               f"section [{off}, {off + size}) lies outside "
                                               f"the file", offset=feat_off + 16 * k)
                    lost.append(FEATURE_NAMES.get(b, str(b)))
                    continue
                f.seek(off)
                self._feature(b, f.read(size), p, off)
            if lost:
                self._note_truncation(features_lost=lost)
            self.sources = [_Source(p, d_off, d_off + d_size, p.name)]

    # -- truncated recordings --------------------------------------------------------
    def _note_truncation(self, *, unfinished: bool = False, features_lost=(),
                         partial: dict | None = None, compressed: dict | None = None,
                         gzip: dict | None = None):
        """Remember what a recording cut short lost (idempotent: a file may be read in
        more than one pass). ``partial``: a record cut by the end of a file;
        ``compressed``: the decompressed start of a record whose rest was never
        written; ``gzip``: the gzip file this one came from ended early
        (:func:`tracedamon.ingest.gz.gunzip_to`)."""
        t = self.truncation
        if t is None:
            t = self.truncation = {"unfinished": False, "features_lost": [],
                                   "partial_records": [], "compressed_tails": [],
                                   "gzip_cut": None}
        t["unfinished"] |= unfinished
        if gzip is not None:
            t["gzip_cut"] = gzip
        t["features_lost"] += [n for n in features_lost if n not in t["features_lost"]]
        for key, item in (("partial_records", partial), ("compressed_tails", compressed)):
            if item is not None and item not in t[key]:
                t[key].append(item)

    # -- features --------------------------------------------------------------------
    def _feature(self, fid: int, data: bytes, path, base: int):
        name = FEATURE_NAMES.get(fid)
        if name is None:
            self.meta.setdefault("unknown_features", []).append(fid)
            return
        self.features[fid] = data
        c = _Cur(data, path, base, f"feature {name}", be=self.big_endian)
        m = self.meta
        if fid == 1:
            self.tracing_data = bytes(data)
        elif fid in (3, 4, 5, 6, 8, 9):
            key = {3: "hostname", 4: "os_release", 5: "perf_version", 6: "arch", 8: "cpu_desc",
                   9: "cpuid"}[fid]
            m[key] = c.string()
        elif fid == 7:
            avail = c.u32()
            online = c.u32()
            m["nrcpus"] = {"avail": avail, "online": online}
        elif fid == 10:
            m["total_mem_kb"] = c.u64()
        elif fid == 11:
            m["cmdline"] = c.strings()
        elif fid == 12:
            nr = c.u32()
            asz = c.u32()
            descs = []
            for _ in range(nr):
                c.raw(asz)
                nids = c.u32()
                nm = c.string()
                if nids > c.left // 8:
                    raise TraceFormatError(path, "feature EVENT_DESC: id count past the end",
                                           offset=base + c.p)
                ids = [c.u64() for _ in range(nids)]
                descs.append({"name": nm, "ids": ids})
            m["event_desc"] = descs
            self._apply_names(descs)
        elif fid == 13:
            m["cpu_topology"] = {"sockets": c.strings(), "threads": c.strings()}
        elif fid == 14:
            nodes = []
            for _ in range(min(c.u32(), 1 << 16)):
                nodes.append({"node": c.u32(), "mem_total_kb": c.u64(), "mem_free_kb": c.u64(),
                              "cpus": c.string()})
            m["numa_topology"] = nodes
        elif fid == 16:
            pm = {}
            for _ in range(min(c.u32(), 1 << 16)):
                t = c.u32()
                pm[c.string()] = t
            m["pmu_mappings"] = pm
        elif fid == 17:
            groups = []
            for _ in range(min(c.u32(), 1 << 16)):
                groups.append({"name": c.string(), "leader_idx": c.u32(), "nr_members": c.u32()})
            m["group_desc"] = groups
        elif fid == 21:
            m["sample_time"] = {"first_ns": c.u64(), "last_ns": c.u64()}
        elif fid == 22:
            ver, bs, nn = c.u64(), c.u64(), c.u64()
            nodes = []
            for _ in range(min(nn, 1 << 16)):
                # per node: u64 node, u64 size (bits in the node's bitmap), then the
                # bitmap as perf writes every bitmap: u64 nr_bits, ceil(nr_bits/64) words
                node, _size, nbits = c.u64(), c.u64(), c.u64()
                words = [c.u64() for _ in range((nbits + 63) // 64)]
                blocks = [w * 64 + b for w, x in enumerate(words) for b in range(64) if x >> b & 1]
                nodes.append({"node": node, "blocks": blocks})
            m["mem_topology"] = {"version": ver, "block_size": bs, "nodes": nodes}
        elif fid == 23:
            m["clock_resolution_ns"] = c.u64()
        elif fid == 24:
            m["dir_format"] = c.u64()
        elif fid == 27:
            ver, typ, lvl, ratio, mlen = (c.u32() for _ in range(5))
            m["compression"] = {"version": ver, "type": "zstd" if typ == 1 else typ,
                                "level": lvl, "ratio": ratio, "mmap_len": mlen}
        elif fid == 29:
            ver, clk = c.u32(), c.u32()
            m["clock_data"] = {"version": ver, "clockid": clk, "tod_ns": c.u64(),
                               "clockid_ns": c.u64()}
            m["clock_id"] = clk
        elif fid == 20:
            ver, nr = c.u32(), c.u32()
            levels = []
            for _ in range(min(nr, 1 << 10)):
                lv = {"level": c.u32(), "line_size": c.u32(), "sets": c.u32(), "ways": c.u32()}
                lv.update(type=c.string(), size=c.string(), map=c.string())
                levels.append(lv)
            m["cache"] = levels

    def _apply_names(self, descs):
        for d in descs:
            for i in d["ids"]:
                a = self._id2attr.get(i)
                if a is None:
                    a = next((x.index for x in self.attrs if i in x.ids), None)
                if a is not None and d["name"]:
                    self.attrs[a].name = d["name"]
                    break
        else:
            # EVENT_DESC lists events in attr order; use it when ids do not tell
            for k, d in enumerate(descs):
                if k < len(self.attrs) and self.attrs[k].name is None and d["name"]:
                    self.attrs[k].name = d["name"]

    def _finish_open(self):
        self._rebuild_ids()
        self.meta["layout"] = self.layout
        self.meta["events"] = [{"event_id": a.index, "name": self.event_name(a.index),
                                "ids": list(a.ids)} for a in self.attrs]

    def _rebuild_ids(self):
        self._id2attr = {}
        for a in self.attrs:
            for i in a.ids:
                self._id2attr.setdefault(i, a.index)
        self._params = None

    def event_name(self, idx: int) -> str:
        a = self.attrs[idx]
        return a.name or a.default_name()

    def event_names_array(self) -> pa.Array:
        """The event names as an Arrow string array (the samples' event dictionary),
        rebuilt only when the attrs or their names change."""
        names = tuple(self.event_name(i) for i in range(len(self.attrs)))
        cached = getattr(self, "_names_array", None)
        if cached is None or cached[0] != names:
            cached = (names, _ds.str_array(list(names)))
            self._names_array = cached
        return cached[1]

    # -- pipe prologue ---------------------------------------------------------------
    def _prologue(self):
        """Pipe streams: read the records before the first sample (attrs, features,
        event names, tracing data) so that ``events`` is known before iterating."""
        st = _PassState(self, sideband=False)
        for ch in self._chunks(self.sources[0], st):
            self._header_records(ch, st)
            if (ch.types == 9).any() or (ch.types == 82).any():
                break

    # -- public ----------------------------------------------------------------------
    @property
    def events(self) -> list[dict]:
        out = []
        for a in self.attrs:
            out.append({
                "event_id": a.index, "name": self.event_name(a.index), "pmu": self._pmu(a),
                "type": a.type, "config": a.config, "config1": a.config1,
                "config2": a.config2, "config3": a.config3, "sample_type": a.sample_type,
                "read_format": a.read_format, "flags": a.flags, "freq": a.freq,
                "sample_period": None if a.freq else a.sample_period_or_freq,
                "sample_freq": a.sample_period_or_freq if a.freq else None,
                "precise_ip": a.precise_ip, "sample_id_all": a.sample_id_all,
                "branch_sample_type": a.branch_sample_type,
                "sample_regs_user": a.sample_regs_user, "sample_regs_intr": a.sample_regs_intr,
                "sample_stack_user": a.sample_stack_user,
                "clockid": a.clockid if a.use_clockid else None, "attr_size": a.size,
                "ids": list(a.ids),
            })
        return out

    def _pmu(self, a: Attr) -> str:
        for name, t in (self.meta.get("pmu_mappings") or {}).items():
            if t == a.type and a.type >= 4:
                return name
        return _BUILTIN_PMU.get(a.type, f"type{a.type}")

    def iter_sample_batches(self, *, progress: bool = False) -> Iterator[pa.RecordBatch]:
        """Every sample as RecordBatches in the SAMPLES schema, in the order the module
        doc describes."""
        st = _PassState(self, sideband=False)
        for blk in self._sample_tables(st, progress=progress):
            yield from finish_samples(self, blk).to_batches()

    # -- the record pass -------------------------------------------------------------
    def _sample_tables(self, st: "_PassState", progress: bool = False) -> Iterator["_Block"]:
        bar = _Progress(self, progress)
        try:
            streams = [self._source_tables(src, st, bar, k)
                       for k, src in enumerate(self.sources)]
            it = streams[0] if len(streams) == 1 else _merge_streams(streams)
            yield from it
        finally:
            bar.close()
        st.finish_meta()

    def _source_tables(self, src: _Source, st: "_PassState", bar, k: int):
        order = _Orderer(st)
        for ch in self._chunks(src, st):
            bar.advance(src, ch.consumed)
            self._header_records(ch, st)
            d = self._decode_chunk(ch, st, k)
            if st.sideband:
                st.collect_sideband(ch, k)
                st._compact()
            yield from order.add(d[0] if d is not None else None, ch.rounds_end)
        yield from order.finish()

    # -- chunking --------------------------------------------------------------------
    def _chunks(self, src: _Source, st: "_PassState") -> Iterator["_Chunk"]:
        yield from _chunk_source(self, src, st)

    # -- header-ish records (pipe mode, ID_INDEX, EVENT_UPDATE) ---------------------
    def _header_records(self, ch: "_Chunk", st: "_PassState"):
        ot = ch.types[ch.other]
        sel = ch.other[(ot == 64) | (ot == 66) | (ot == 69) | (ot == 78) | (ot == 80)]
        if not sel.size:
            return
        changed = False
        buf = ch.buf
        for i in sel:
            off = int(ch.offs[i])
            typ = int(ch.types[i])
            fo = int(ch.fileoff[i])
            size = int.from_bytes(buf[off + 6:off + 8].tobytes(), "little")
            body = buf[off + 8:off + size].tobytes()
            if typ == 64:
                # a second pass over a pipe stream sees the same records again (records
                # inside one COMPRESSED container share its offset: key on the bytes too)
                key = (fo, body)
                if key in self._attr_offsets:
                    continue
                if len(body) < 8:
                    raise TraceFormatError(ch.path, "HEADER_ATTR record too short", offset=fo)
                asz = struct.unpack_from(f"{self._e}I", body, 4)[0] or 64
                if asz > len(body):
                    raise TraceFormatError(ch.path, "HEADER_ATTR attr larger than the record",
                                           offset=fo)
                a = Attr.parse(len(self.attrs), body[:asz], path=ch.path, offset=fo,
                               be=self.big_endian)
                nids = (len(body) - asz) // 8
                a.ids = list(struct.unpack_from(f"{self._e}{nids}Q", body, asz))
                self.attrs.append(a)
                self._attr_offsets.add(key)
                self._rebuild_ids()
                changed = True
            elif typ == 66:
                if len(body) < 4:
                    raise TraceFormatError(ch.path, "HEADER_TRACING_DATA record too short",
                                           offset=fo)
                n = struct.unpack_from("<I", body, 0)[0]
                self.tracing_data = buf[off + size:off + size + n].tobytes()
            elif typ == 69:
                if len(body) < 8:
                    raise TraceFormatError(ch.path, "ID_INDEX record too short", offset=fo)
                nr = struct.unpack_from("<Q", body, 0)[0]
                if 8 + 32 * nr > len(body):
                    raise TraceFormatError(ch.path, f"ID_INDEX with {nr} entries larger than "
                                           "the record", offset=fo)
                entries = []
                for k in range(nr):
                    i_id, idx, cpu, tid = struct.unpack_from("<QQQQ", body, 8 + 32 * k)
                    entries.append((i_id, idx, cpu, tid))
                    if idx < len(self.attrs) and i_id not in self._id2attr:
                        self.attrs[idx].ids.append(i_id)
                        self._id2attr[i_id] = idx
                        changed = True
                st.id_index = entries
            elif typ == 78:
                if len(body) < 16:
                    raise TraceFormatError(ch.path, "EVENT_UPDATE record too short", offset=fo)
                utype, uid = struct.unpack_from(f"{self._e}QQ", body, 0)
                if utype == 2:
                    nm = body[16:].split(b"\0", 1)[0].decode("utf-8", "replace")
                    a = self._id2attr.get(uid)
                    if a is None:
                        a = next((x.index for x in self.attrs if uid in x.ids), None)
                    if a is not None:
                        self.attrs[a].name = nm
                        changed = True
            elif typ == 80:
                if len(body) < 8:
                    raise TraceFormatError(ch.path, "HEADER_FEATURE record too short", offset=fo)
                fid = struct.unpack_from(f"{self._e}Q", body, 0)[0]
                if len(body) > 8:
                    self._feature(int(fid), body[8:], ch.path, fo + 16)
        if changed:
            self._finish_open()

    # -- per-attr kernel parameters --------------------------------------------------
    def params(self):
        if self._params is None:
            at = self.attrs
            ids = np.array(sorted(self._id2attr), dtype=np.uint64)
            ida = np.array([self._id2attr[int(i)] for i in ids], dtype=np.int32)
            id_poss = {_id_pos_sample(a.sample_type) for a in at}
            self._params = dict(
                st=np.array([a.sample_type for a in at], dtype=np.int64),
                rf=np.array([a.read_format & 0x1F for a in at], dtype=np.int64),
                bhw=np.array([bool(a.branch_sample_type & (1 << 17)) for a in at], np.int64),
                bcnt=np.array([bool(a.branch_sample_type & (1 << 19)) for a in at], np.int64),
                nru=np.array([bin(a.sample_regs_user).count("1") for a in at], np.int64),
                nri=np.array([bin(a.sample_regs_intr).count("1") for a in at], np.int64),
                ids=ids, ida=ida,
                id_pos=(id_poss.pop() if len(id_poss) == 1 else None),
                period=np.array([0 if a.freq else a.sample_period_or_freq for a in at],
                                dtype=np.uint64),
                freq=np.array([a.freq for a in at], dtype=bool),
                fixed=K.fixed_layouts([a.sample_type for a in at]),
            )
        return self._params

    def attr_of_record(self, buf, off: int, size: int) -> int | None:
        """perf's evlist__event2evsel for a non-SAMPLE record (None: unknown id)."""
        if not self.attrs:
            return None
        if len(self.attrs) == 1:
            return 0
        first = self.attrs[0]
        if not first.sample_id_all:
            return 0
        pos = _id_pos_trailer(first.sample_type)
        if pos < 0:
            return 0
        if pos > size - 8:
            return None
        v = int.from_bytes(buf[off + size - pos:off + size - pos + 8].tobytes(), "little")
        return self._id2attr.get(v)

    # -- sample decoding -------------------------------------------------------------
    def _decode_matrix(self, n: int) -> np.ndarray:
        """An n × NCOLS column-major scratch matrix, reused from chunk to chunk (the
        sample columns are copied out of it)."""
        m = getattr(self, "_scratch", None)
        if m is None or m.shape[0] < n:
            m = np.empty((max(n, 1024), K.NCOLS), dtype=np.uint64, order="F")
            self._scratch = m
        return m[:n]

    def _decode_chunk(self, ch: "_Chunk", st: "_PassState", stream: int):
        sel = np.flatnonzero(ch.types == 9)
        if not sel.size:
            return None
        if not self.attrs:
            raise TraceFormatError(ch.path, "sample record before any attr",
                                   offset=int(ch.fileoff[sel[0]]))
        P = self.params()
        offs = ch.offs[sel]
        sizes = ch.sizes[sel]
        n = len(sel)
        if len(self.attrs) == 1:
            attr = np.zeros(n, dtype=np.int32)
        else:
            if P["id_pos"] is None or P["id_pos"] < 0:
                raise TraceFormatError(ch.path, "several events but their samples carry no "
                                       "common ID/IDENTIFIER position",
                                       offset=int(ch.fileoff[sel[0]]))
            attr = np.empty(n, dtype=np.int32)
            K.sample_attrs(ch.buf, ch.buf64, offs, sizes, P["id_pos"], P["ids"], P["ida"], attr)
            bad = np.flatnonzero(attr == -2)
            if bad.size:
                raise TraceFormatError(ch.path, "sample record too short to hold its id",
                                       offset=int(ch.fileoff[sel[bad[0]]]))
            unk = attr < 0
            nunk = int(unk.sum())
            if nunk:
                st.unknown_sample_ids += nunk
                keep = ~unk
                sel, offs, sizes, attr = sel[keep], offs[keep], sizes[keep], attr[keep]
                n = len(sel)
                if not n:
                    return None
        if self.big_endian:
            K.be_fix_samples(ch.buf, offs, sizes, attr, P["st"], P["rf"], P["bhw"],
                             P["bcnt"], P["nru"], P["nri"])
        out = self._decode_matrix(n)
        err = np.zeros(n, dtype=np.int8)
        nslot, cols, deltas, need = P["fixed"]
        if (nslot >= 0).any():
            K.gather_fixed_attrs(ch.buf, ch.buf64, offs, sizes, attr, nslot, cols, deltas,
                                 need, out, err)
        if (nslot < 0).any():
            var_attr = np.where(nslot[attr] < 0, attr, -1).astype(np.int32)
            K.decode_samples(ch.buf, ch.buf64, offs, sizes, var_attr, P["st"], P["rf"],
                             P["bhw"], P["bcnt"], P["nru"], P["nri"], out, err)
        if err.any():
            i = int(np.flatnonzero(err)[0])
            raise TraceFormatError(ch.path, K.ERR_TEXT[int(err[i])],
                                   offset=int(ch.fileoff[sel[i]]))
        misc = np.empty(n, dtype=np.uint16)
        K.gather_u16(ch.buf, offs, 4, misc)
        blk = _sample_block(P, ch, out, attr, misc, ch.fileoff_of(sel, offs),
                            ch.round_idx(sel))
        if any(a.sample_type & K.S_READ for a in self.attrs):
            blk = _expand_read(self, ch, out, attr, blk, st)
        st.add_samples(blk.cols["event_id"][0], len(self.attrs))
        return blk, ch.rounds_end


# ----------------------------------------------------------------------------------------
# decoded samples as numpy columns (sorted before they become Arrow)
# ----------------------------------------------------------------------------------------
class _Block:
    """Decoded samples: ``cols[name] = (values, valid-or-None)`` numpy arrays in the
    SAMPLES column types, ``lists[name]`` Arrow arrays (callchain, raw) or None,
    ``times`` (the sort key, int64) and ``rounds`` (FINISHED_ROUNDs before each row)."""

    __slots__ = ("cols", "lists", "times", "rounds", "has_time")

    def __init__(self, cols, lists, times, rounds, has_time):
        self.cols = cols
        self.lists = lists
        self.times = times
        self.rounds = rounds
        self.has_time = has_time

    def __len__(self):
        return len(self.times)

    def take(self, idx: np.ndarray) -> "_Block":
        cols = {k: None if c is None else (c[0][idx], None if c[1] is None else c[1][idx])
                for k, c in self.cols.items()}
        lists = {k: None if a is None else a.take(_ds.np_to_arrow(np.asarray(idx, np.int64),
                                                                 pa.int64()))
                 for k, a in self.lists.items()}
        return _Block(cols, lists, self.times[idx], self.rounds[idx], self.has_time)

    def slice(self, a: int, b: int) -> "_Block":
        cols = {k: None if c is None else (c[0][a:b], None if c[1] is None else c[1][a:b])
                for k, c in self.cols.items()}
        lists = {k: None if x is None else x.slice(a, b - a) for k, x in self.lists.items()}
        return _Block(cols, lists, self.times[a:b], self.rounds[a:b], self.has_time)

    @staticmethod
    def concat(blocks: list["_Block"]) -> "_Block":
        if len(blocks) == 1:
            return blocks[0]
        cols = {}
        for k in blocks[0].cols:
            cs = [b.cols[k] for b in blocks]
            if all(c is None for c in cs):
                cols[k] = None
                continue
            dt = next(c[0].dtype for c in cs if c is not None)
            vals = np.concatenate([np.zeros(len(b), dt) if c is None else c[0]
                                   for b, c in zip(blocks, cs)])
            if all(c is not None and c[1] is None for c in cs):
                m = None
            else:
                m = np.concatenate([np.zeros(len(b), bool) if c is None else
                                    np.ones(len(b), bool) if c[1] is None else c[1]
                                    for b, c in zip(blocks, cs)])
            cols[k] = (vals, m)
        lists = {}
        for k in blocks[0].lists:
            arrs = [b.lists[k] for b in blocks]
            if all(x is None for x in arrs):
                lists[k] = None
            else:
                typ = SAMPLES.field(k).type
                lists[k] = pa.concat_arrays([pa.nulls(len(b), typ) if x is None else x
                                             for b, x in zip(blocks, arrs)])
        return _Block(cols, lists, np.concatenate([b.times for b in blocks]),
                      np.concatenate([b.rounds for b in blocks]),
                      any(b.has_time for b in blocks))

    def table(self, rd: "PerfData", schema: pa.Schema | None = None) -> pa.Table:
        """The block as an Arrow table in the SAMPLES schema, or in ``schema`` (a narrower
        form of it, see :func:`samples_file_schema`) when the block fits that."""
        n = len(self)
        arrays = {}
        for f in SAMPLES:
            k = f.name
            if k in self.cols:
                c = self.cols[k]
                if c is None:
                    arrays[k] = _nulls(n, f.type)
                else:
                    v, m = c
                    arrays[k] = _ds.np_to_arrow(v, f.type, m)
            elif k in self.lists:
                x = self.lists[k]
                arrays[k] = _nulls(n, f.type) if x is None else x
        arrays["event"] = pa.DictionaryArray.from_arrays(arrays["event_id"],
                                                         rd.event_names_array())
        c = self.cols["data_src"]
        if c is None or (c[1] is not None and not c[1].any()):
            for name in _ds.COLUMNS + ("mem_remote", "mem_hops", "mem_lvl_num"):
                arrays[name] = _nulls(n, SAMPLES.field(name).type)
        else:
            arrays.update(_ds.decode_column(*c))
        if schema is not None and _fits(arrays, schema, n):
            return pa.Table.from_arrays([arrays[f.name] for f in schema], schema=schema)
        return pa.Table.from_arrays([arrays[f.name] for f in SAMPLES], schema=SAMPLES)


def _fits(arrays: dict, schema: pa.Schema, n: int) -> bool:
    """Whether the SAMPLES ``arrays`` of n rows can be written in the narrower
    ``schema``: no value in a left-out column, no null in a non-nullable one."""
    absent, required = _narrowing(schema)
    return all(arrays[c].null_count == n for c in absent) and \
        not any(arrays[c].null_count for c in required)


_NARROWING: dict = {}


def _narrowing(schema: pa.Schema) -> tuple[list[str], list[str]]:
    """(columns left out, columns non-nullable) of a narrower form of SAMPLES."""
    key = id(schema)
    got = _NARROWING.get(key)
    if got is None or got[0] is not schema:
        names = set(schema.names)
        got = (schema, [c for c in SAMPLES.names if c not in names],
               [f.name for f in schema if not f.nullable])
        _NARROWING[key] = got
    return got[1], got[2]


#: the sample_type bits behind each SAMPLES column (the others: every record has them,
#: or see samples_file_schema)
_COLUMN_BITS = {
    "time_ns": K.S_TIME, "pid": K.S_TID, "tid": K.S_TID, "cpu": K.S_CPU, "ip": K.S_IP,
    "addr": K.S_ADDR, "phys_addr": K.S_PHYS_ADDR,
    "weight": K.S_WEIGHT | K.S_WEIGHT_STRUCT, "weight2": K.S_WEIGHT_STRUCT,
    "weight3": K.S_WEIGHT_STRUCT, "data_page_size": K.S_DATA_PAGE_SIZE,
    "code_page_size": K.S_CODE_PAGE_SIZE, "transaction": K.S_TRANSACTION,
    "cgroup": K.S_CGROUP, "stream_id": K.S_STREAM_ID, "callchain": K.S_CALLCHAIN,
    "raw": K.S_RAW,
    **{c: K.S_DATA_SRC for c in ("data_src",) + _ds.COLUMNS + ("mem_remote", "mem_hops",
                                                              "mem_lvl_num")},
}


def samples_file_schema(rd: "PerfData") -> pa.Schema:
    """The narrowest form of SAMPLES that the file's events allow: a column that no
    event records is left out, and a column that every event records is non-nullable.

    A guess for files whose events change after the first samples are written (a
    pipe stream adding an event): the writer widens the file if a batch breaks it.
    """
    sts = [a.sample_type for a in rd.attrs]
    read = any(st & K.S_READ for st in sts)
    fields = []
    for f in SAMPLES:
        bits = _COLUMN_BITS.get(f.name)
        if f.name == "sample_id":
            # READ rows carry the ids of the group's members (read_format ID)
            bits = K.S_ID | K.S_IDENTIFIER
            every = not read and all(st & bits for st in sts)
            none = not read and not any(st & bits for st in sts)
        elif f.name == "period":
            # sampled PERIOD, else the attr's fixed period; READ rows: counter deltas
            every = all((a.sample_type & K.S_PERIOD) or not a.freq for a in rd.attrs)
            none = not read and not any((a.sample_type & K.S_PERIOD) or not a.freq
                                        for a in rd.attrs)
        elif bits is None:                  # event, cpumode, misc, file_offset, ...
            every, none = True, False
        else:
            every = all(st & bits for st in sts)
            none = not any(st & bits for st in sts)
        if none:
            continue
        fields.append(f.with_nullable(False) if every else f)
    return pa.schema(fields)


_NULLS: dict = {}


def _nulls(n: int, typ: pa.DataType) -> pa.Array:
    """An all-null array of ``n`` rows: a zero-copy slice of a cached one."""
    a = _NULLS.get(typ)
    if a is None or len(a) < n:
        a = pa.nulls(max(n, 1 << 16), typ)
        _NULLS[typ] = a
    return a.slice(0, n)


def _presence(P, attr, bit):
    """None when every row has the field, a False array when none has, else per row."""
    has = (P["st"] & bit) != 0
    if has.all():
        return None
    if not has.any():
        return _NONE
    return has[attr]


class _NoneMask:
    """Marker: the field is absent from every row."""


_NONE = _NoneMask()


def _sample_block(P, ch, out, attr, misc, fileoff, rounds) -> _Block:
    n = len(attr)
    cols = {}

    def put(name, vals, pres):
        cols[name] = None if pres is _NONE else (vals, pres)

    pres_time = _presence(P, attr, K.S_TIME)
    times = out[:, K.C_TIME].view(np.int64)
    if pres_time is _NONE:
        times = np.zeros(n, np.int64)
    elif pres_time is not None:
        times = np.where(pres_time, times, 0)
    put("time_ns", times, pres_time)
    pres = _presence(P, attr, K.S_TID)
    if pres is _NONE:
        put("pid", np.zeros(n, np.int32), pres)
        put("tid", np.zeros(n, np.int32), pres)
    else:
        # the TID word is pid (low 32 bits) then tid: split through a 32-bit view
        halves = out[:, K.C_TID].view(np.int32)
        put("pid", halves[0::2].copy(), pres)
        put("tid", halves[1::2].copy(), pres)
    pres = _presence(P, attr, K.S_CPU)
    put("cpu", np.zeros(n, np.int32) if pres is _NONE else
        (out[:, K.C_CPU] & np.uint64(0xFFFFFFFF)).astype(np.uint32).view(np.int32), pres)
    cols["event_id"] = (attr, None)
    for name, col, bit in (("ip", K.C_IP, K.S_IP), ("addr", K.C_ADDR, K.S_ADDR),
                           ("phys_addr", K.C_PHYS_ADDR, K.S_PHYS_ADDR),
                           ("data_src", K.C_DATA_SRC, K.S_DATA_SRC),
                           ("data_page_size", K.C_DATA_PAGE_SIZE, K.S_DATA_PAGE_SIZE),
                           ("code_page_size", K.C_CODE_PAGE_SIZE, K.S_CODE_PAGE_SIZE),
                           ("transaction", K.C_TRANSACTION, K.S_TRANSACTION),
                           ("cgroup", K.C_CGROUP, K.S_CGROUP),
                           ("stream_id", K.C_STREAM_ID, K.S_STREAM_ID),
                           ("sample_id", K.C_ID, K.S_ID | K.S_IDENTIFIER)):
        pres = _presence(P, attr, bit)
        put(name, None if pres is _NONE else out[:, col], pres)
    # period: sampled, else the attr's fixed period (null in frequency mode)
    pres = _presence(P, attr, K.S_PERIOD)
    if pres is None:
        cols["period"] = (out[:, K.C_PERIOD], None)
    elif pres is _NONE and len(P["period"]) and (P["period"] == P["period"][0]).all() and \
            (P["freq"] == P["freq"][0]).all():
        # one fixed period for every event (perf record -c N): a shared constant column;
        # frequency mode without PERIOD: no period known (null)
        if P["freq"][0]:
            cols["period"] = (np.zeros(n, np.uint64), np.zeros(n, bool))
        else:
            cols["period"] = (_ds.constant(int(P["period"][0]), np.uint64, n), None)
    else:
        fixed = P["period"][attr]
        freq = P["freq"][attr]
        if pres is _NONE:
            vals, valid = fixed, ~freq
        else:
            vals, valid = np.where(pres, out[:, K.C_PERIOD], fixed), pres | ~freq
        cols["period"] = (vals, None if valid.all() else valid)
    # weight
    pw = _presence(P, attr, K.S_WEIGHT)
    ps = _presence(P, attr, K.S_WEIGHT_STRUCT)
    if pw is _NONE and ps is _NONE:
        put("weight", None, _NONE)
        put("weight2", np.zeros(n, np.uint16), _NONE)
        put("weight3", np.zeros(n, np.uint16), _NONE)
    else:
        w = out[:, K.C_WEIGHT]
        if ps is _NONE:
            put("weight", w, pw)
            put("weight2", np.zeros(n, np.uint16), _NONE)
            put("weight3", np.zeros(n, np.uint16), _NONE)
        else:
            s_rows = np.ones(n, bool) if ps is None else ps
            w_rows = np.zeros(n, bool) if pw is _NONE else (np.ones(n, bool) if pw is None
                                                          else pw)
            wv = np.where(s_rows, w & np.uint64(0xFFFFFFFF), w)
            anyw = s_rows | w_rows
            put("weight", wv, None if anyw.all() else anyw)
            put("weight2", (w >> np.uint64(32) & np.uint64(0xFFFF)).astype(np.uint16), ps)
            put("weight3", (w >> np.uint64(48)).astype(np.uint16), ps)
    cols["cpumode"] = ((misc & 7).astype(np.uint8), None)
    cols["misc"] = (misc, None)
    cols["file_offset"] = (np.asarray(fileoff, dtype=np.uint64), None)
    lists = {"callchain": None, "raw": None}
    pres = _presence(P, attr, K.S_CALLCHAIN)
    if pres is not _NONE:
        valid = np.ones(n, bool) if pres is None else pres
        nr = out[:, K.C_CC_NR].astype(np.int64) * valid
        off = np.where(valid, out[:, K.C_CC_OFF], 0).astype(np.int64)
        lo = np.empty(n + 1, dtype=np.int32)
        vals = np.empty(int(nr.sum()), dtype=np.uint64)
        K.gather_u64_lists(ch.buf, ch.buf64, off, nr, valid, lo, vals)
        lists["callchain"] = pa.ListArray.from_arrays(
            _ds.np_to_arrow(lo, pa.int32()), _ds.np_to_arrow(vals, pa.uint64()),
            mask=None if pres is None else _ds.np_to_arrow(~valid, pa.bool_()))
    pres = _presence(P, attr, K.S_RAW)
    if pres is not _NONE:
        valid = np.ones(n, bool) if pres is None else pres
        ln = out[:, K.C_RAW_LEN].astype(np.int64) * valid
        off = np.where(valid, out[:, K.C_RAW_OFF], 0).astype(np.int64)
        bo = np.empty(n + 1, dtype=np.int32)
        data = np.empty(int(ln.sum()), dtype=np.uint8)
        K.gather_bytes(ch.buf, off, ln, valid, bo, data)
        vb = None if pres is None else _ds.bitmap(valid)
        lists["raw"] = pa.Array.from_buffers(pa.binary(), n, [vb, pa.py_buffer(bo),
                                                             pa.py_buffer(data)])
    # copy the used columns out of the reused scratch matrix
    for k, c in list(cols.items()):
        if c is not None and np.may_share_memory(c[0], out):
            cols[k] = (c[0].copy(), c[1])
    times = cols["time_ns"][0] if cols["time_ns"] is not None else times
    return _Block(cols, lists, np.ascontiguousarray(times), rounds, pres_time is not _NONE)


def _expand_read(rd: PerfData, ch, out, attr, blk: _Block, st: "_PassState") -> _Block:
    """PERF_SAMPLE_READ: one row per read value (module doc), by a numba kernel; the
    previous counter values persist across chunks in ``st``."""
    P = rd.params()
    ids = P["ids"]
    if st.read_ids is None or not np.array_equal(st.read_ids, ids):
        old = dict(zip(st.read_ids.tolist(), st.read_prev_id.tolist())) \
            if st.read_ids is not None else {}
        st.read_prev_id = np.array([old.get(int(i), 0) for i in ids], dtype=np.uint64)
        st.read_ids = ids
    if len(st.read_prev_attr) < len(rd.attrs):
        st.read_prev_attr = np.concatenate([st.read_prev_attr, np.zeros(
            len(rd.attrs) - len(st.read_prev_attr), np.uint64)])
    read_off = np.ascontiguousarray(out[:, K.C_READ_OFF]).astype(np.int64)
    total = K.count_read_values(ch.buf, ch.buf64, attr, read_off, P["st"], P["rf"])
    o_row = np.empty(total, np.int64)
    o_attr = np.empty(total, np.int32)
    o_id = np.zeros(total, np.uint64)
    o_kind = np.empty(total, np.int8)
    o_per = np.zeros(total, np.uint64)
    k, unknown = K.expand_read(ch.buf, ch.buf64, attr, read_off, P["st"], P["rf"], ids,
                               P["ida"], st.read_prev_id, st.read_prev_attr, o_row, o_attr,
                               o_id, o_kind, o_per)
    st.unknown_sample_ids += int(unknown)
    o_row, o_attr, o_id, o_kind, o_per = (x[:k] for x in (o_row, o_attr, o_id, o_kind, o_per))
    nb = blk.take(o_row)
    keep = o_kind == 0
    nb.cols["event_id"] = (o_attr, None)
    old_sid = nb.cols["sample_id"]
    if old_sid is None:
        old_v, old_valid = np.zeros(k, np.uint64), np.zeros(k, bool)
    else:
        old_v = old_sid[0]
        old_valid = np.ones(k, bool) if old_sid[1] is None else old_sid[1]
    sid_v = np.where(keep, old_v, o_id).astype(np.uint64)
    sid_valid = np.where(keep, old_valid, o_kind == 1)
    nb.cols["sample_id"] = (sid_v, None if sid_valid.all() else sid_valid)
    per_v, per_m = nb.cols["period"]
    nb.cols["period"] = (np.where(keep, per_v, o_per).astype(np.uint64),
                         None if per_m is None else (per_m | ~keep))
    return nb


def finish_samples(rd: PerfData, blk: _Block, schema: pa.Schema | None = None) -> pa.Table:
    """A block as an Arrow table in the SAMPLES schema (dictionary columns added), or in
    the narrower ``schema`` when it fits (see :func:`samples_file_schema`)."""
    return blk.table(rd, schema)


# ----------------------------------------------------------------------------------------
# ordering
# ----------------------------------------------------------------------------------------
_I64_MIN = np.iinfo(np.int64).min
_I64_MAX = np.iinfo(np.int64).max


class _Orderer:
    """Holds back the samples of the last two rounds and emits the rest in time order.

    Pending samples are kept as a list of blocks (no copying while they are already
    in time order); only out-of-order data is concatenated and permuted."""

    def __init__(self, st):
        self.st = st
        self.parts: list[_Block] = []
        self.limit = _I64_MIN
        self.emitted_max = _I64_MIN

    def _n(self):
        return sum(len(b) for b in self.parts)

    def add(self, blk: _Block | None, nrounds: int):
        if blk is not None and len(blk):
            self.parts.append(blk)
        if not self.parts:
            return
        if not self.parts[0].has_time:
            yield from self._emit_all()
            return
        for b in self.parts:
            closed = b.rounds <= nrounds - 2
            if closed.any():
                self.limit = max(self.limit, int(b.times[closed].max()))
        yield from self._emit_upto(self.limit)
        if self._n() > MAX_PENDING:
            self.st.forced_flushes += 1
            self._sort()
            b = self.parts[0]
            cut = int(b.times[len(b) - MAX_PENDING // 2])
            yield from self._emit_upto(cut - 1 if cut > _I64_MIN else cut)
            if self._n() > MAX_PENDING:
                yield from self._emit_upto(cut)

    def _sorted(self) -> bool:
        prev = _I64_MIN
        for b in self.parts:
            t = b.times
            if not len(t):
                continue
            if t[0] < prev or (len(t) > 1 and not (t[1:] >= t[:-1]).all()):
                return False
            prev = int(t[-1])
        return True

    def _sort(self):
        if not self._sorted():
            m = _Block.concat(self.parts)
            self.parts = [m.take(np.argsort(m.times, kind="stable"))]

    def _emit_upto(self, limit):
        if not self.parts:
            return
        self._sort()
        keep = []
        for b in self.parts:
            k = int(np.searchsorted(b.times, limit, side="right"))
            if k:
                yield from self._emit(b if k == len(b) else b.slice(0, k))
            if k < len(b):
                # the held-back rest is a view: it keeps its block's arrays (one chunk's
                # samples, not the chunk's bytes) alive until it is emitted
                keep.append(b.slice(k, len(b)) if k else b)
        self.parts = keep

    def _emit(self, out: _Block):
        if out.has_time and len(out):
            tt = out.times
            if tt[0] < self.emitted_max:
                self.st.samples_out_of_order += int((tt < self.emitted_max).sum())
            self.emitted_max = max(self.emitted_max, int(tt[-1]))
        yield out

    def _emit_all(self):
        parts, self.parts = self.parts, []
        for b in parts:
            yield from self._emit(b)

    def finish(self):
        if not self.parts:
            return
        if self.parts[0].has_time:
            yield from self._emit_upto(_I64_MAX)
        else:
            yield from self._emit_all()


def _merge_streams(streams):
    """k-way merge of time-ordered block streams; ties by stream order."""
    bufs: list[list[_Block]] = [[] for _ in streams]
    last: list[int | None] = [None] * len(streams)
    live = list(range(len(streams)))
    while live:
        for k in list(live):
            if not bufs[k]:
                try:
                    b = next(streams[k])
                except StopIteration:
                    live.remove(k)
                    continue
                bufs[k].append(b)
                last[k] = int(b.times[-1])
        limit = min((last[k] for k in live), default=None)
        parts = []
        for k in range(len(streams)):
            keep = []
            for b in bufs[k]:
                cut = len(b) if limit is None else int(np.searchsorted(b.times, limit, "right"))
                if cut:
                    parts.append(b.slice(0, cut))
                if cut < len(b):
                    keep.append(b.slice(cut, len(b)))
            bufs[k] = keep
        if parts:
            m = _Block.concat(parts)
            yield m.take(np.argsort(m.times, kind="stable"))


# ----------------------------------------------------------------------------------------
# pass state and side-band records
# ----------------------------------------------------------------------------------------
class _PassState:
    def __init__(self, rd: PerfData, sideband: bool):
        self.rd = rd
        self.sideband = sideband
        self.record_counts: dict[int, int] = {}
        self.unknown_sample_ids = 0
        self.unknown_record_ids = 0
        self.samples_out_of_order = 0
        self.forced_flushes = 0
        self.nr_samples = np.zeros(len(rd.attrs), dtype=np.int64)
        self.read_ids = None                    # ids the read_prev_id array follows
        self.read_prev_id = np.zeros(0, np.uint64)
        self.read_prev_attr = np.zeros(0, np.uint64)
        self.id_index = None
        self.mmaps: list[tuple] = []
        self.tasks: list[tuple] = []
        self.lost: list[tuple] = []
        self._seq = 0
        #: side-band rows already converted to Arrow (bounded Python memory)
        self._done: dict[str, list[pa.Table]] = {"mmaps": [], "tasks": [], "lost": []}

    def add_samples(self, ev: np.ndarray, n: int):
        if len(self.nr_samples) < n:
            old = self.nr_samples
            self.nr_samples = np.zeros(n, dtype=np.int64)
            self.nr_samples[:len(old)] = old
        if n == 1:
            self.nr_samples[0] += len(ev)
        else:
            self.nr_samples += np.bincount(ev, minlength=len(self.nr_samples))[
                :len(self.nr_samples)]

    def count(self, types: np.ndarray):
        if not len(types):
            return
        nsamples = int(np.count_nonzero(types == 9))
        if nsamples:
            self.record_counts[9] = self.record_counts.get(9, 0) + nsamples
        if nsamples == len(types):
            return
        rest = types[types != 9] if nsamples else types
        u, c = np.unique(rest, return_counts=True)
        for t, k in zip(u.tolist(), c.tolist()):
            self.record_counts[t] = self.record_counts.get(t, 0) + k

    def finish_meta(self):
        m = self.rd.meta
        m["record_counts"] = {RECORD_NAMES.get(t, f"UNKNOWN_{t}"): c
                              for t, c in sorted(self.record_counts.items())}
        m["unknown_record_types"] = {str(t): c for t, c in sorted(self.record_counts.items())
                                     if t not in RECORD_NAMES}
        m["unknown_sample_ids"] = self.unknown_sample_ids
        m["samples_out_of_order"] = self.samples_out_of_order
        if self.forced_flushes:
            m["forced_flushes"] = self.forced_flushes
        if self.record_counts.get(70) or self.record_counts.get(71):
            # Arm SPE / Intel PT: the accesses are in AUX data, which perf decodes
            m["aux_data"] = ("AUX-area trace data (AUXTRACE) is not decoded by the native "
                             "reader: ingest with --via-perf (perf script) to get its samples")
        if self.id_index is not None:
            m["id_index"] = [{"id": i, "idx": x, "cpu": _s32(c), "tid": _s32(t)}
                             for i, x, c, t in self.id_index]

    # -- side-band -------------------------------------------------------------------
    #: a chunk with at least this many MMAP/MMAP2/COMM/FORK/EXIT records decodes them
    #: in bulk (numba, straight to Arrow); fewer go record by record through Python
    #: (small files then never need pyarrow.compute to sort them)
    SIDEBAND_BULK = 512

    def collect_sideband(self, ch: "_Chunk", stream: int):
        types = ch.types
        sel = ch.other[np.isin(types[ch.other], (1, 2, 3, 4, 5, 6, 7, 10, 13))]
        if not len(sel):
            return
        rd = self.rd
        if rd.big_endian and rd.attrs:
            _be_fix_sideband(rd, ch, sel)
        seqs = np.arange(self._seq + 1, self._seq + 1 + len(sel), dtype=np.int64)
        self._seq += len(sel)
        layout = _trailer_layout(rd)
        if layout is not None and len(sel) >= self.SIDEBAND_BULK:
            bulk = np.isin(types[sel], (1, 3, 4, 7, 10))
            self._bulk(ch, sel[bulk], seqs[bulk], stream, layout)
            sel, seqs = sel[~bulk], seqs[~bulk]
        buf = ch.buf
        for i, q in zip(sel.tolist(), seqs.tolist()):
            off = int(ch.offs[i])
            typ = int(types[i])
            size = int(ch.sizes[i])
            rec = buf[off:off + size].tobytes()
            misc = struct.unpack_from("<H", rec, 4)[0]
            ai = rd.attr_of_record(buf, off, size)
            if ai is None and rd.attrs:
                # an id no attr owns (perf's synthesized records may carry id 0): the
                # trailer layout is still the one all attrs share
                self.unknown_record_ids += 1
                ai = 0
            tr = _trailer(rd, ai, rec) or {}
            blen = size - (rd.attrs[ai].trailer_len if ai is not None else 0)
            body = rec[8:blen]
            try:
                self._one(typ, misc, body, tr, ai, (stream, q))
            except struct.error:
                raise TraceFormatError(ch.path, f"{RECORD_NAMES[typ]} record too short "
                                       f"({size} bytes)", offset=int(ch.fileoff[i])) from None

    def _bulk(self, ch: "_Chunk", sel: np.ndarray, seqs: np.ndarray, stream: int,
              layout: tuple[int, int, int]):
        """MMAP, MMAP2, COMM, FORK and EXIT records of a chunk decoded by a numba kernel
        into Arrow tables (the rows :meth:`_one` makes, for many records at once)."""
        from ..schema import MMAPS, TASKS
        n = len(sel)
        tl, time_pos, id_back = layout
        offs, sizes, types = ch.offs[sel], ch.sizes[sel], ch.types[sel]
        misc = np.empty(n, np.uint16)
        time = np.zeros(n, np.int64)
        has_time = np.zeros(n, bool)
        rid = np.zeros(n, np.uint64)
        has_rid = np.zeros(n, bool)
        f32 = np.zeros((n, 6), np.uint32)
        f64 = np.zeros((n, 5), np.uint64)
        bid_len = np.full(n, -1, np.int64)
        s_off = np.zeros(n, np.int64)
        s_len = np.zeros(n, np.int64)
        err = np.zeros(n, np.int8)
        K.sideband_fields(ch.buf, ch.buf64, offs, sizes, types, tl, time_pos, id_back,
                          misc, time, has_time, rid, has_rid, f32, f64, bid_len, s_off,
                          s_len, err)
        if err.any():
            i = int(np.flatnonzero(err)[0])
            raise TraceFormatError(ch.path, f"{RECORD_NAMES[int(types[i])]} record too "
                                   f"short ({int(sizes[i])} bytes)",
                                   offset=int(ch.fileoff_of(sel[i:i + 1], offs[i:i + 1])[0]))
        rd = self.rd
        if len(rd.attrs) > 1 and id_back >= 0:
            known = np.fromiter(rd._id2attr, dtype=np.uint64, count=len(rd._id2attr))
            self.unknown_record_ids += int(np.count_nonzero(~has_rid)) + int(
                np.count_nonzero(has_rid & ~np.isin(rid, known)))
        s32 = f32.view(np.int32)

        def strings(rows):
            return _utf8_column(ch.buf, s_off[rows], s_len[rows])

        def keys(rows, t, tvalid):
            return [_ds.np_to_arrow(np.where(tvalid, t, -1) if tvalid is not None else t,
                                    pa.int64()),
                    _ds.np_to_arrow(np.full(len(rows), stream, np.int32), pa.int32()),
                    _ds.np_to_arrow(seqs[rows], pa.int64())]

        mm = np.flatnonzero((types == 1) | (types == 10))
        if len(mm):
            t = time[mm]
            tv = None if has_time[mm].all() else has_time[mm]
            is2 = types[mm] == 10
            bid = bid_len[mm] >= 0
            inode = is2 & ~bid
            bo = np.empty(len(mm) + 1, np.int32)
            hexdata = np.empty(int(np.maximum(bid_len[mm], 0).sum()) * 2, np.uint8)
            K.hex_bytes(ch.buf, s_off[mm] - 28, np.where(bid, bid_len[mm], -1), K._HEX, bo,
                        hexdata)
            build_id = pa.Array.from_buffers(
                pa.string(), len(mm), [_ds.bitmap(bid), pa.py_buffer(bo),
                                       pa.py_buffer(hexdata)], null_count=int((~bid).sum()))
            m = misc[mm]
            cols = [
                _ds.np_to_arrow(t, pa.int64(), tv),
                _ds.np_to_arrow(s32[mm, 0].copy(), pa.int32()),
                _ds.np_to_arrow(s32[mm, 1].copy(), pa.int32()),
                _ds.np_to_arrow(f64[mm, 0].copy(), pa.uint64()),
                _ds.np_to_arrow(f64[mm, 1].copy(), pa.uint64()),
                _ds.np_to_arrow(f64[mm, 2].copy(), pa.uint64()),
                _ds.np_to_arrow(f32[mm, 4].copy(), pa.uint32(), is2),
                _ds.np_to_arrow(f32[mm, 5].copy(), pa.uint32(), is2),
                strings(mm),
                build_id,
                _ds.np_to_arrow(f32[mm, 2].copy(), pa.uint32(), inode),
                _ds.np_to_arrow(f32[mm, 3].copy(), pa.uint32(), inode),
                _ds.np_to_arrow(f64[mm, 3].copy(), pa.uint64(), inode),
                _ds.np_to_arrow(f64[mm, 4].copy(), pa.uint64(), inode),
                _ds.np_to_arrow((m & 0x2000) != 0, pa.bool_()),
                _ds.np_to_arrow((m & 7).astype(np.uint8), pa.uint8()),
                _ds.np_to_arrow(types[mm].astype(np.uint8), pa.uint8()),
            ]
            self._done["mmaps"].append(pa.Table.from_arrays(
                keys(mm, t, tv) + cols, names=["_kt", "_ks", "_kq"] + MMAPS.names))
        tk = np.flatnonzero((types == 3) | (types == 4) | (types == 7))
        if len(tk):
            ty = types[tk]
            comm = ty == 3
            # FORK/EXIT: the trailer's time, else the record's own; COMM: the trailer's
            t = np.where(comm | has_time[tk], time[tk], f64[tk, 0].view(np.int64))
            tv = has_time[tk] | ~comm
            if tv.all():
                tv = None
            kind = pa.DictionaryArray.from_arrays(
                _ds.np_to_arrow(np.where(comm, 0, np.where(ty == 4, 1, 2)).astype(np.int32),
                                pa.int32()), _TASK_KINDS)
            m = misc[tk]
            names = strings(tk)
            cols = [
                _ds.np_to_arrow(t, pa.int64(), tv),
                kind,
                _ds.np_to_arrow(s32[tk, 0].copy(), pa.int32()),
                _ds.np_to_arrow(s32[tk, 1].copy(), pa.int32()),
                _ds.np_to_arrow(s32[tk, 2].copy(), pa.int32(), ~comm),
                _ds.np_to_arrow(s32[tk, 3].copy(), pa.int32(), ~comm),
                pa.Array.from_buffers(pa.string(), len(tk), [_ds.bitmap(comm)] +
                                      names.buffers()[1:],
                                      null_count=int((~comm).sum())),
                _ds.np_to_arrow((m & 0x2000) != 0, pa.bool_(), comm),
            ]
            self._done["tasks"].append(pa.Table.from_arrays(
                keys(tk, t, tv) + cols, names=["_kt", "_ks", "_kq"] + TASKS.names))

    def _one(self, typ, misc, body, tr, ai, seq):
        time = tr.get("time")
        if typ in (1, 10):
            pid, tid, start, length, pgoff = struct.unpack_from("<IIQQQ", body, 0)
            prot = flags = maj = mn = ino = igen = None
            build_id = None
            if typ == 10:
                if misc & 0x4000:
                    bsz = body[32]
                    build_id = body[36:36 + min(bsz, 20)].hex()
                else:
                    maj, mn, ino, igen = struct.unpack_from("<IIQQ", body, 32)
                prot, flags = struct.unpack_from("<II", body, 56)
                fname = body[64:]
            else:
                fname = body[32:]
            fname = fname.split(b"\0", 1)[0].decode("utf-8", "replace")
            self.mmaps.append((_key(time), seq, time, _s32(pid), _s32(tid), start, length, pgoff,
                               prot, flags, fname, build_id, maj, mn, ino, igen,
                               bool(misc & 0x2000), misc & 7, typ))
        elif typ == 3:
            pid, tid = struct.unpack_from("<II", body, 0)
            comm = body[8:].split(b"\0", 1)[0].decode("utf-8", "replace")
            self.tasks.append((_key(time), seq, time, "COMM", _s32(pid), _s32(tid), None, None,
                               comm, bool(misc & 0x2000)))
        elif typ in (4, 7):
            pid, ppid, tid, ptid, btime = struct.unpack_from("<IIIIQ", body, 0)
            t = time if time is not None else btime
            self.tasks.append((_key(t), seq, t, "EXIT" if typ == 4 else "FORK", _s32(pid),
                               _s32(tid), _s32(ppid), _s32(ptid), None, None))
        elif typ == 2:
            i, n = struct.unpack_from("<QQ", body, 0)
            ev = self.rd._id2attr.get(i)
            self.lost.append((_key(time), seq, time, "LOST", ev, i, tr.get("pid"), tr.get("tid"),
                              tr.get("cpu"), n))
        elif typ == 13:
            (n,) = struct.unpack_from("<Q", body, 0)
            sid = tr.get("id")
            ev = self.rd._id2attr.get(sid) if sid is not None else None
            if ev is None and len(self.rd.attrs) == 1 and sid is None:
                ev = 0
            self.lost.append((_key(time), seq, time, "LOST_SAMPLES", ev, sid, tr.get("pid"),
                              tr.get("tid"), tr.get("cpu"), n))
        elif typ in (5, 6):
            t, i, _sid = struct.unpack_from("<QQQ", body, 0)
            ev = self.rd._id2attr.get(i)
            self.lost.append((_key(t), seq, t, "THROTTLE" if typ == 5 else "UNTHROTTLE", ev, i,
                              tr.get("pid"), tr.get("tid"), tr.get("cpu"), 0))

    #: side-band rows kept as Python tuples before they are converted to Arrow
    SIDEBAND_BATCH = 50_000

    def _compact(self, final: bool = False):
        from ..schema import LOST, MMAPS, TASKS
        for name, schema in (("mmaps", MMAPS), ("tasks", TASKS), ("lost", LOST)):
            rows = getattr(self, name)
            if not rows or (not final and len(rows) < self.SIDEBAND_BATCH):
                continue
            cols = list(zip(*rows))
            arrays = [py_array(list(cols[0]), pa.int64()),
                      py_array([q[0] for q in cols[1]], pa.int32()),
                      py_array([q[1] for q in cols[1]], pa.int64())]
            for f, vals in zip(schema, cols[2:]):
                arrays.append(py_array(list(vals), f.type))
            names = ["_kt", "_ks", "_kq"] + schema.names
            self._done[name].append(pa.Table.from_arrays(arrays, names=names))
            rows.clear()

    def sideband_tables(self) -> dict[str, pa.Table]:
        """The mmaps, tasks and lost tables, sorted by time (records without a time
        first), ties in stream and file order."""
        from ..schema import LOST, MMAPS, TASKS
        out = {}
        for name, schema in (("mmaps", MMAPS), ("tasks", TASKS), ("lost", LOST)):
            parts = self._done[name]
            rows = getattr(self, name)
            if not parts:
                # all rows still in Python (fewer than SIDEBAND_BATCH): sorted there, by
                # (time key, (stream, sequence)), without loading pyarrow.compute
                rows.sort(key=lambda r: (r[0], r[1]))
                cols = list(zip(*rows))
                out[name] = pa.Table.from_arrays(
                    [py_array(list(c), f.type) for f, c in zip(schema, cols[2:])],
                    schema=schema) if rows else _empty(schema)
                rows.clear()
                continue
            self._compact(final=True)
            t = pa.concat_tables(parts).unify_dictionaries() if len(parts) > 1 else parts[0]
            t = t.sort_by([("_kt", "ascending"), ("_ks", "ascending"), ("_kq", "ascending")])
            out[name] = t.select(schema.names).cast(schema)
        return out


def _key(t):
    return -1 if t is None else t


_TASK_KINDS = _ds.str_array(["COMM", "EXIT", "FORK"])


def _be_fix_sideband(rd: "PerfData", ch: "_Chunk", sel: np.ndarray) -> None:
    """Big-endian side-band records of a chunk made little-endian, each with the
    trailer layout of its attr (found as attr_of_record finds it: the id at the
    position the first attr's layout gives; the trailer words are swapped already)."""
    offs, sizes, types = ch.offs[sel], ch.sizes[sel], ch.types[sel]
    attr = np.zeros(len(sel), np.int64)
    first = rd.attrs[0]
    pos = _id_pos_trailer(first.sample_type)
    if len(rd.attrs) > 1 and first.sample_id_all and pos >= 0:
        for k in range(len(sel)):
            o, z = int(offs[k]), int(sizes[k])
            if pos <= z - 8:
                v = int.from_bytes(ch.buf[o + z - pos:o + z - pos + 8].tobytes(), "little")
                attr[k] = rd._id2attr.get(v, 0)
    tl_a = np.array([a.trailer_len for a in rd.attrs], np.int64)
    tid_a = np.array([_trailer_offset(a, K.S_TID) for a in rd.attrs], np.int64)
    cpu_a = np.array([_trailer_offset(a, K.S_CPU) for a in rd.attrs], np.int64)
    K.be_fix_sideband(ch.buf, offs, sizes, types, attr, tl_a, tid_a, cpu_a)


def _trailer_offset(a: Attr, bit: int) -> int:
    """Where field ``bit`` sits in attr ``a``'s sample_id_all trailer (-1: not there)."""
    if not a.trailer_len or not a.sample_type & bit:
        return -1
    before = _TRAILER_BITS[:_TRAILER_BITS.index(bit)]     # the trailer's own order
    return 8 * sum(1 for b in before if a.sample_type & b)


def _trailer_layout(rd: "PerfData") -> tuple[int, int, int] | None:
    """(trailer length, TIME offset in it or -1, how far back from a record's end its
    id sits or -1 when ids are not looked up) when every attr shares one sample_id_all
    trailer layout (perf writes files so); None otherwise."""
    if not rd.attrs:
        return None
    first = rd.attrs[0]
    key = (first.sample_id_all, first.sample_type & _TRAILER_MASK)
    if any((a.sample_id_all, a.sample_type & _TRAILER_MASK) != key for a in rd.attrs[1:]):
        return None
    tl = first.trailer_len
    time_pos = _trailer_offset(first, K.S_TIME)
    id_back = -1
    if len(rd.attrs) > 1 and first.sample_id_all:
        id_back = _id_pos_trailer(first.sample_type)
    return tl, time_pos, id_back


def _utf8_column(buf: np.ndarray, off: np.ndarray, ln: np.ndarray) -> pa.Array:
    """Strings at ``buf[off[i]:off[i]+ln[i]]`` as an Arrow string array; bytes that are
    not UTF-8 become U+FFFD, as ``bytes.decode("utf-8", "replace")`` makes them."""
    n = len(off)
    bo = np.empty(n + 1, np.int32)
    data = np.empty(int(ln.sum()), np.uint8)
    K.gather_bytes(buf, off, ln, np.ones(n, bool), bo, data)
    arr = pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(bo), pa.py_buffer(data)],
                                null_count=0)
    try:
        arr.validate(full=True)
        return arr
    except pa.ArrowInvalid:
        from .arrays import str_array
        raw = data.tobytes()
        return str_array([raw[bo[i]:bo[i + 1]].decode("utf-8", "replace") for i in range(n)])


def _s32(v):
    if v is None:
        return None
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def _trailer(rd: PerfData, ai, rec: bytes) -> dict | None:
    """The sample_id_all trailer of a non-SAMPLE record, parsed for attr ``ai``."""
    if ai is None:
        return None
    a = rd.attrs[ai]
    n = a.trailer_len
    if not n:
        return {}
    if n + 8 > len(rec):
        return {}
    p = len(rec) - n
    st = a.sample_type
    out = {}
    if st & K.S_TID:
        pid, tid = struct.unpack_from("<II", rec, p)
        out["pid"], out["tid"] = _s32(pid), _s32(tid)
        p += 8
    if st & K.S_TIME:
        out["time"] = struct.unpack_from("<q", rec, p)[0]
        p += 8
    if st & K.S_ID:
        out["id"] = struct.unpack_from("<Q", rec, p)[0]
        p += 8
    if st & K.S_STREAM_ID:
        out["stream_id"] = struct.unpack_from("<Q", rec, p)[0]
        p += 8
    if st & K.S_CPU:
        out["cpu"] = _s32(struct.unpack_from("<I", rec, p)[0])
        p += 8
    if st & K.S_IDENTIFIER:
        out["id"] = struct.unpack_from("<Q", rec, p)[0]
        p += 8
    return out


# ----------------------------------------------------------------------------------------
# chunked record streams (with zstd)
# ----------------------------------------------------------------------------------------
class _Chunk:
    """Complete records in logical (decompressed) order."""

    def __init__(self, path, buf, offs, types, sizes, fileoff, rounds_before, consumed):
        self.path = path
        self.buf = buf
        self.buf64 = K.as_u64_view(buf)
        self.offs = offs
        self.types = types
        self.sizes = sizes
        #: each record's file offset: an array, or an int when the chunk is a plain
        #: piece of the file starting at that offset (then computed only where needed)
        self._fileoff = fileoff
        self.rounds_before = rounds_before
        #: positions of the records that are not samples (usually few)
        self.other = np.flatnonzero(types != 9)
        self._round_pos = self.other[types[self.other] == 68]
        self.rounds_end = rounds_before + len(self._round_pos)
        self.consumed = consumed

    @property
    def fileoff(self) -> np.ndarray:
        if isinstance(self._fileoff, int):
            self._fileoff = self._fileoff + self.offs.astype(np.uint64)
        return self._fileoff

    def fileoff_of(self, sel: np.ndarray, offs: np.ndarray) -> np.ndarray:
        """File offsets of the records ``sel`` (``offs`` = ``self.offs[sel]``)."""
        if isinstance(self._fileoff, int):
            return (offs + self._fileoff).astype(np.uint64)
        return self._fileoff[sel]

    def round_idx(self, sel):
        """FINISHED_ROUNDs before each record of ``sel`` (counted from the stream start)."""
        return self.rounds_before + np.searchsorted(self._round_pos, sel).astype(np.int64)


def _aligned(n: int) -> np.ndarray:
    return np.empty(max(n, 8), dtype=np.uint8)


def _scan(path, buf, start, end, base_fileoff, be: bool = False):
    """Record boundaries in buf[start:end]; ``be``: a big-endian stream, whose complete
    records are rewritten little-endian in place (perf_records.scan_records_be)."""
    cap = (end - start) // 8 + 1
    offs = np.empty(cap, np.int64)
    types = np.empty(cap, np.uint32)
    sizes = np.empty(cap, np.int64)
    scan = K.scan_records_be if be else K.scan_records
    n, stop, err = scan(buf, start, end, offs, types, sizes)
    if err == 1:
        size = int(buf[stop + 6]) | int(buf[stop + 7]) << 8
        if be:
            size = int(buf[stop + 6]) << 8 | int(buf[stop + 7])
        raise TraceFormatError(path, f"record header size {size} is below 8 (corrupt record "
                               "stream)", offset=base_fileoff + stop)
    if err == 2:
        raise TraceFormatError(path, "AUXTRACE record announces an impossible payload size",
                               offset=base_fileoff + stop)
    # views of arrays sized for the worst case (8-byte records): they live as long as
    # their chunk, a few MB
    return offs[:n], types[:n], sizes[:n], stop


def _chunk_source(rd: PerfData, src: _Source, st: _PassState) -> Iterator[_Chunk]:
    path = src.path
    try:
        f = open(path, "rb")
    except OSError as e:
        raise TraceFormatError(path, f"cannot read: {e.strerror}") from None
    with f:
        fsize = os.fstat(f.fileno()).st_size
        end = src.end if src.end is not None else fsize
        if end > fsize:
            raise TraceFormatError(path, f"data section ends at {end}, past the end of the "
                                   f"file ({fsize} bytes)", offset=fsize)
        f.seek(src.start)
        pos = src.start                 # file offset of carry[0]
        carry = np.zeros(0, np.uint8)
        rounds = 0
        z = _Zstd(path)
        want = CHUNK_BYTES
        while True:
            remaining = end - pos - len(carry)
            nread = min(want, remaining)
            buf = _aligned(len(carry) + nread)
            buf[:len(carry)] = carry
            got = f.readinto(memoryview(buf)[len(carry):len(carry) + nread]) if nread > 0 else 0
            filled = len(carry) + got
            eof = got < nread or end - pos - filled == 0
            offs, types, sizes, stop = _scan(path, buf, 0, filled, pos, rd.big_endian)
            if len(offs) == 0 and not eof:
                # a record larger than the buffer (tracing data / AUXTRACE payload)
                order = "big" if rd.big_endian else "little"
                hdr_size = int.from_bytes(buf[6:8].tobytes(), order) if filled >= 8 else 0
                need = hdr_size
                typ = int.from_bytes(buf[0:4].tobytes(), order) if filled >= 8 else 0
                if typ == 66 and filled >= 12:
                    need += int.from_bytes(buf[8:12].tobytes(), order)
                elif typ == 71 and filled >= 16:
                    need += int.from_bytes(buf[8:16].tobytes(), order)
                if pos + need > end:
                    if src.end is not None or rd.strict:
                        raise TraceFormatError(path, f"{RECORD_NAMES.get(typ, 'record')} of "
                                               f"{need} bytes runs past the end of the data",
                                               offset=pos)
                    # the file ends inside this record: a truncated recording
                    rd._note_truncation(partial=_partial_record(
                        src, pos, end - pos, typ, need))
                    _finish_truncated(rd, src, z, pos)
                    return
                if typ == 71:
                    # skip the AUX payload without loading it
                    st.count(np.array([71], np.uint32))
                    pos += need
                    f.seek(pos)
                    carry = np.zeros(0, np.uint8)
                    continue
                want = max(want, need + 8)
                carry = buf[:filled].copy()
                continue
            want = CHUNK_BYTES
            if eof and stop < filled:
                order = "big" if rd.big_endian else "little"
                typ = int.from_bytes(buf[stop:stop + 4].tobytes(), order) \
                    if filled - stop >= 4 else None
                if src.end is not None or rd.strict:
                    raise TraceFormatError(path, "truncated record at the end of the data ("
                                           f"{filled - stop} bytes left, "
                                           f"type {typ if typ is not None else '?'})",
                                           offset=pos + stop)
                # the records run to the end of the file (module doc: truncated
                # recordings): the complete ones are read, this one is reported
                size = int.from_bytes(buf[stop + 6:stop + 8].tobytes(), order) \
                    if filled - stop >= 8 else None
                rd._note_truncation(partial=_partial_record(src, pos + stop, filled - stop,
                                                            typ, size))
                filled = stop
            carry = buf[stop:filled].copy()
            consumed = stop
            comp = (types == 81) | (types == 83)
            st.count(types)
            if not comp.any():
                ch = _Chunk(path, buf, offs, types, sizes, int(pos), rounds, consumed)
                rounds = ch.rounds_end
                yield ch
                del ch
            else:
                for ch in _decompress_chunks(path, z, buf, offs, types, sizes, pos, rounds,
                                             consumed, st, rd.big_endian):
                    rounds = ch.rounds_end
                    yield ch
            pos += stop
            del buf, offs, types, sizes
            if eof:
                _finish_truncated(rd, src, z, pos)
                return


def _partial_record(src: _Source, offset: int, have: int, typ, size) -> dict:
    """What a truncated recording lost at its end: the record at ``offset`` of which
    ``have`` bytes were written (``typ``/``size`` from its header, None if cut)."""
    return {"file": src.label, "offset": int(offset), "bytes": int(have),
            "type": RECORD_NAMES.get(typ, f"type {typ}") if typ is not None else None,
            "size": int(size) if size is not None else None}


def _finish_truncated(rd: PerfData, src: _Source, z: "_Zstd", end_of_records: int) -> None:
    """End of one record stream: remember where its complete records end, and what is
    left of a record that a compressed stream had only begun (the rest of it was never
    written: an open-ended stream was cut; in a closed section it is corruption)."""
    rd.stream_ends[src.label] = (src.start, int(end_of_records))
    if z.carry_len():
        if src.end is not None or rd.strict:
            raise TraceFormatError(src.path, f"compressed stream ends inside a record "
                                   f"({z.carry_len()} bytes left over)", offset=z.last_offset)
        typ = int.from_bytes(z.carry[:4], "big" if rd.big_endian else "little") \
            if z.carry_len() >= 4 else None
        size = int.from_bytes(z.carry[6:8], "big" if rd.big_endian else "little") \
            if z.carry_len() >= 8 else None
        rd._note_truncation(compressed={
            "file": src.label, "offset": int(z.last_offset), "bytes": z.carry_len(),
            "type": RECORD_NAMES.get(typ, f"type {typ}") if typ is not None else None,
            "size": size})


class _Zstd:
    """One long-lived zstd stream (perf's COMPRESSED records of one file)."""

    def __init__(self, path):
        self.path = path
        self.d = None
        self.carry = b""
        self.last_offset = 0

    def carry_len(self):
        return len(self.carry)

    def feed(self, payload: bytes, fileoff: int) -> bytes:
        import zstandard
        self.last_offset = fileoff
        out = []
        data = payload
        try:
            while data:
                if self.d is None:
                    self.d = zstandard.ZstdDecompressor().decompressobj()
                out.append(self.d.decompress(data))
                if getattr(self.d, "eof", False):
                    data = getattr(self.d, "unused_data", b"")
                    self.d = None
                else:
                    data = b""
        except zstandard.ZstdError as e:
            raise TraceFormatError(self.path, f"corrupt zstd data in COMPRESSED record: {e}",
                                   offset=fileoff) from None
        return b"".join(out)


def _decompress_chunks(path, z: _Zstd, buf, offs, types, sizes, pos, rounds, consumed, st,
                       be: bool = False):
    """Logical chunks for an outer chunk that holds COMPRESSED records: inner records
    take the position (and file offset) of their container."""
    pieces: list[tuple[np.ndarray, np.ndarray]] = []   # (bytes, per-record fileoff)
    piece_bytes = 0
    n = len(offs)
    i = 0

    def flush():
        nonlocal pieces, piece_bytes, rounds
        if not pieces:
            return None
        total = sum(len(p[0]) for p in pieces)
        lb = _aligned(total)
        fo_parts = []
        k = 0
        for data, fo in pieces:
            lb[k:k + len(data)] = data
            k += len(data)
            fo_parts.append(fo)
        o, t, s, stop = _scan(path, lb, 0, total, 0)
        if stop != total:
            raise TraceFormatError(path, "record boundary lost in compressed data",
                                   offset=int(fo_parts[0][0]) if len(fo_parts[0]) else pos)
        fileoff = np.concatenate(fo_parts) if fo_parts else np.zeros(0, np.uint64)
        ch = _Chunk(path, lb, o, t, s, fileoff, rounds, 0)
        rounds = ch.rounds_end
        pieces = []
        piece_bytes = 0
        return ch

    while i < n:
        typ = int(types[i])
        if typ not in (81, 83):
            j = i
            while j < n and int(types[j]) not in (81, 83):
                j += 1
            a, b = int(offs[i]), int(offs[j - 1] + sizes[j - 1])
            pieces.append((buf[a:b], pos + offs[i:j].astype(np.uint64)))
            piece_bytes += b - a
            i = j
        else:
            off = int(offs[i])
            size = int(sizes[i])
            fo = pos + off
            if typ == 81:
                payload = buf[off + 8:off + size].tobytes()
            else:
                if size < 16:
                    raise TraceFormatError(path, "COMPRESSED2 record too short", offset=fo)
                dsz = int.from_bytes(buf[off + 8:off + 16].tobytes(), "little")
                if 16 + dsz > size:
                    raise TraceFormatError(path, "COMPRESSED2 data size exceeds the record",
                                           offset=fo)
                payload = buf[off + 16:off + 16 + dsz].tobytes()
            data = z.carry + z.feed(payload, fo)
            arr = np.frombuffer(data, dtype=np.uint8)
            ab = _aligned(len(arr))
            ab[:len(arr)] = arr
            # the records of a big-endian stream are made little-endian here, once; the
            # pieces are then scanned again as little-endian (flush)
            o, t, s, stop = _scan(path, ab, 0, len(arr), 0, be)
            z.carry = data[stop:]
            if stop:
                st.count(t)
                pieces.append((ab[:stop], np.full(len(o), fo, dtype=np.uint64)))
                piece_bytes += stop
            i += 1
        if piece_bytes >= CHUNK_BYTES:
            ch = flush()
            if ch is not None:
                yield ch
    ch = flush()
    if ch is not None:
        ch.consumed = consumed
        yield ch


# ----------------------------------------------------------------------------------------
# progress
# ----------------------------------------------------------------------------------------
class _Progress:
    def __init__(self, rd: PerfData, enabled: bool):
        self.p = None
        total = 0
        for s in rd.sources:
            try:
                total += (s.end if s.end is not None else s.path.stat().st_size) - s.start
            except OSError:
                pass
        if enabled and total > (64 << 20):
            from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                                       TimeRemainingColumn, TransferSpeedColumn)
            self.p = Progress(TextColumn("ingest {task.description}"), BarColumn(),
                              DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
            self.p.start()
            self.task = self.p.add_task(rd.path.name, total=total)

    def advance(self, src, n):
        if self.p is not None:
            self.p.advance(self.task, n)

    def close(self):
        if self.p is not None:
            self.p.stop()
            self.p = None


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
    from ..errors import InputError
    if not p.exists():
        raise InputError(f"{p}: no such file or directory")
    if not p.is_dir() and not p.is_file():
        # the reader makes more than one pass (a pipe stream's header records first)
        raise InputError(f"{p}: not a regular file; save the perf stream to a file first "
                         "(perf record -o - > perf.data)")
    return PerfData(p, strict=strict)


def truncation_summary(rd: PerfData, name: str | None = None,
                       nr_samples: int | None = None) -> dict | None:
    """What a truncated recording lost, for ``meta.json`` (None when nothing was
    lost): the facts of ``rd.truncation``, the bytes of complete records read
    (``data_bytes_kept``), a ``description`` and the one-line ``message`` (the
    description, naming the file) a warning shows."""
    t = rd.truncation
    if t is None:
        return None
    kept = sum(b - a for a, b in rd.stream_ends.values())
    if t["gzip_cut"]:
        why = (f"the gzip stream ends early (after {t['gzip_cut']['gzip_bytes']} compressed "
               "bytes)")
    elif t["unfinished"]:
        why = ("perf record did not finish (data size 0 in the header: it was killed, "
               "or is still running)")
    elif t["partial_records"] or t["compressed_tails"]:
        why = "the record stream ends inside a record"
    else:
        why = "the file ends before some of its feature sections"
    if t["gzip_cut"] and t["unfinished"]:
        why += ", and perf record did not finish (data size 0 in the header)"
    lost = []
    fl = t["features_lost"]
    if fl:
        lost.append(f"{len(fl)} header feature section{'s' * (len(fl) > 1)} "
                    f"({', '.join(fl[:4])}{', ...' if len(fl) > 4 else ''})")
    for r in t["partial_records"]:
        what = f"{r['type']} record" if r["type"] else "record"
        of = f" of {r['size']}" if r["size"] else ""
        where = f" of {r['file']}" if len(rd.sources) > 1 else ""
        lost.append(f"a partial {what} at byte offset {r['offset']}{where} "
                    f"({r['bytes']}{of} bytes)")
    for r in t["compressed_tails"]:
        what = f"{r['type']} record" if r["type"] else "record"
        of = f" of {r['size']}" if r["size"] else ""
        lost.append(f"the start of a {what} ({r['bytes']}{of} bytes) decompressed from the "
                    f"COMPRESSED record at byte offset {r['offset']}")
    if "TRACING_DATA" in fl and any(a.type == 2 for a in rd.attrs):
        lost.append("the tracepoint formats, so tracepoint events (damon:...) can be "
                    "neither named nor decoded")
    if t["unfinished"]:
        lost.append("whatever perf had not yet written")
    elif t["gzip_cut"] and not lost:
        lost.append("whatever followed the cut")
    samples = f", {nr_samples} samples" if nr_samples is not None else ""
    desc = f"{why}; read {kept} bytes of records{samples}; lost: {'; '.join(lost)}"
    return dict(t, data_bytes_kept=kept, description=desc,
                message=f"{name or rd.path}: truncated recording: {desc}")


def report_truncation(rd: PerfData, writer, name: str | None = None,
                      nr_samples: int | None = None) -> None:
    """Put what a truncated recording lost into ``writer.meta`` (``truncated``,
    ``truncation``) and warn once (:class:`~tracedamon.errors.InputWarning`)."""
    import warnings

    from ..errors import InputWarning
    summ = truncation_summary(rd, name, nr_samples)
    if summ is None:
        return
    writer.meta["truncated"] = True
    writer.meta["truncation"] = summ
    warnings.warn(InputWarning(summ["message"]), stacklevel=3)


def events_table(rd: PerfData, nr_samples=None) -> pa.Table:
    from ..schema import EVENTS
    evs = rd.events
    for e in evs:
        e["nr_samples"] = int(nr_samples[e["event_id"]]) if nr_samples is not None and \
            e["event_id"] < len(nr_samples) else 0
    return table_from_pylist(evs, schema=EVENTS)


#: Parquet options of the samples table: dictionary encoding for the low-cardinality
#: columns only (trying it on addresses and times costs more than it saves), delta
#: encoding for the sorted ones, statistics for the columns people filter on, and zstd
#: only where it shrinks something: dictionary indices, RLE'd nulls and constant
#: columns gain nothing from it, yet every compressed page pays for a fresh zstd
#: context (measured on 10 M page-fault samples: 1.55 -> 1.36 s CPU of Parquet
#: encoding, file size unchanged to 1 %).
#: weight, sample_id, stream_id, cgroup and transaction take few distinct values: they
#: are dictionary-encoded too (Parquet falls back to plain pages past 1 MiB of
#: dictionary), so they need no compression either.
_HIGH_CARDINALITY = ("time_ns", "ip", "addr", "phys_addr", "file_offset", "callchain",
                     "raw")
_ZSTD_COLUMNS = _HIGH_CARDINALITY + ("mem_remote",)
_SAMPLES_PARQUET = {
    # keys are Parquet column paths (a list's values live in "callchain.list.element")
    "compression": {(f"{f.name}.list.element" if pa.types.is_list(f.type) else f.name):
                    "zstd" if f.name in _ZSTD_COLUMNS else "none" for f in SAMPLES},
    "use_dictionary": [f.name for f in SAMPLES if f.name not in _HIGH_CARDINALITY],
    "column_encoding": {"time_ns": "DELTA_BINARY_PACKED",
                        "file_offset": "DELTA_BINARY_PACKED"},
    "write_statistics": ["time_ns", "pid", "tid", "cpu", "event_id", "addr", "phys_addr"],
}


class _BackgroundWriter:
    """Writes one table's batches from a thread (Parquet encoding releases the GIL), so
    decoding and writing overlap; at most one batch waits, so memory stays bounded."""

    def __init__(self, writer, name: str):
        import queue
        import threading
        self.writer = writer
        self.name = name
        self.q: queue.Queue = queue.Queue(maxsize=1)
        self.err: BaseException | None = None
        #: seconds the thread spent writing: wall and its own CPU (for bench/)
        self.busy_s = 0.0
        self.cpu_s = 0.0
        self.t = threading.Thread(target=self._run, name="tracedamon-parquet", daemon=True)

    def _run(self):
        import time
        while True:
            item = self.q.get()
            if item is None:
                return
            if self.err is None:
                t0, c0 = time.perf_counter(), time.thread_time()
                try:
                    self.writer.write(self.name, item)
                except BaseException as e:      # re-raised in the caller's thread
                    self.err = e
                self.busy_s += time.perf_counter() - t0
                self.cpu_s += time.thread_time() - c0

    def put(self, table: pa.Table):
        if self.err is not None:
            raise self.err
        self.q.put(table)

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        self.q.put(None)
        self.t.join()
        if exc_type is None and self.err is not None:
            raise self.err


def ingest_into(path, writer, *, progress: bool = False, all_columns: bool = False,
                strict: bool = False, source_name: str | None = None,
                gzip_cut: dict | None = None, on_damon_events=None, **opts):
    """Decode ``path`` into ``writer`` (a :class:`~tracedamon.store.sink.TableSink`):
    samples, events, mmaps, tasks, lost tables and the header features in
    ``writer.meta``.

    The samples file leaves out the columns no event of the file records and declares
    non-nullable those every event records (:func:`samples_file_schema`; readers
    restore the full schema); ``all_columns=True`` writes the full schema instead.
    ``on_damon_events(reader, writer)`` is called when the recording holds ``damon:``
    tracepoint events, for the DAMON reader to turn them into regions
    (:func:`tracedamon.ingest.damon_trace.add_regions_from_perf_data`; the caller
    chooses, :func:`tracedamon.ingest.ingest` does). Decoding through ``perf script``
    instead is :func:`tracedamon.ingest.perf_script.ingest_via_perf`.

    A truncated recording is read up to its last complete record; ``meta.json`` says
    what was lost (``truncated``, ``truncation``) and an
    :class:`~tracedamon.errors.InputWarning` names it (``source_name``: the name to
    give the input in it, e.g. the gzip file this one was decompressed from;
    ``gzip_cut``: that gzip stream ended early, see
    :func:`tracedamon.ingest.gz.gunzip_to`). ``strict=True`` refuses such a
    recording instead.
    """
    if opts.get("via_perf"):
        raise ConfigError("the native perf.data reader does not run perf: via_perf goes "
                          "through tracedamon.ingest.perf_script.ingest_via_perf "
                          "(tracedamon.ingest.ingest picks it)")
    rd = open_perf_data(path, strict=strict)
    if gzip_cut:
        rd._note_truncation(gzip=gzip_cut)
    st = _PassState(rd, sideband=True)
    topts = getattr(writer, "table_options", None)
    if topts is not None and not writer.rows("samples"):
        topts.setdefault("samples", _SAMPLES_PARQUET)
    narrow = None
    with _BackgroundWriter(writer, "samples") as bg:
        pend: list[pa.Table] = []
        rows = 0
        for blk in rd._sample_tables(st, progress=progress):
            if narrow is None and not all_columns and hasattr(writer, "set_file_schema") \
                    and not writer.started("samples"):
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
    meta["samples_order"] = ("time_ns ascending, ties in file order (perf's FINISHED_ROUND "
                             "rule; violations counted in samples_out_of_order)")
    writer.meta.update(meta)
    if on_damon_events is not None and any(rd.event_name(a.index).startswith("damon:")
                                           for a in rd.attrs):
        on_damon_events(rd, writer)
    report_truncation(rd, writer, source_name, int(st.nr_samples.sum()))
    return rd
