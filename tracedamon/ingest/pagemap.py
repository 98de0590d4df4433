"""Pagemap snapshots: live capture of ``/proc/PID/{maps,pagemap}`` and a reader of
raw snapshot files, both into the ``maps`` and ``pagemap`` tables.

What a snapshot holds
---------------------
* ``maps``: one row per VMA of ``/proc/PID/maps`` (start, end, perms, offset, dev,
  inode, path).
* ``pagemap``: one row per *run* of virtual pages of one VMA that have equal flags
  and, when present, physically contiguous frames: ``[vaddr_start, vaddr_end)`` →
  frames ``pfn_start ...``. ``pfn_start`` is null for pages that are not present
  (never touched, or swapped) and for present pages whose frame the kernel hid
  (read without CAP_SYS_ADMIN: the kernel zeroes the PFN field since Linux 4.2).
  Flags are :data:`tracedamon.schema.PAGEMAP_FLAG_*`, decoded from the pagemap
  entry (kernel Documentation/admin-guide/mm/pagemap.rst):

  ====  =============================  ==========================
  bit   pagemap entry                   flag
  ====  =============================  ==========================
  63    page present                    ``PAGEMAP_FLAG_PRESENT``
  62    page swapped                    ``PAGEMAP_FLAG_SWAPPED``
  61    file page or shared anonymous   ``PAGEMAP_FLAG_FILE``
  56    page exclusively mapped         ``PAGEMAP_FLAG_EXCLUSIVE``
  55    PTE soft-dirty                  ``PAGEMAP_FLAG_SOFT_DIRTY``
  0-54  PFN when present                ``pfn_start``
  ====  =============================  ==========================

  and, where ``/proc/kpageflags`` is readable (root), from the frame's page flags:
  ``KPF_THP`` (bit 22) → ``PAGEMAP_FLAG_THP``, ``KPF_HUGE`` (bit 17, hugetlbfs) →
  ``PAGEMAP_FLAG_HUGE``, and ``KPF_COMPOUND_HEAD`` (bit 15) of a THP or hugetlb page
  → ``PAGEMAP_FLAG_COMPOUND_HEAD``: the first page of its folio, so a large folio
  is a head page followed by its tails (where the folio ends:
  :mod:`tracedamon.engine.folio`). Huge pages need no other special case: pagemap
  reports every 4 KiB sub-page with its own frame, so a 2 MiB THP is a run of 512
  contiguous frames (a head row of one page, then a row of 511 tails).

Clock: snapshots are stamped with ``CLOCK_MONOTONIC`` by default (``time_ns`` =
when the snapshot began reading; ``meta.json`` keeps begin and end of every
snapshot); ``clock=`` / ``--clock`` takes any clock ``perf record -k`` takes.
To line them up with perf samples, record with ``perf record -k CLOCK_MONOTONIC``
(or ``-k mono``): the sample times are then on the same clock. perf's default
clock (the kernel's local clock) tracks CLOCK_MONOTONIC closely on x86 but not
exactly -- the damon-paddr-run1 recording measured perf = monotonic - 1.19 ms
-- so pass ``-k CLOCK_MONOTONIC`` when the pagemap is needed, or shift the
snapshot times by the measured offset.

Decoding is vectorised: each VMA's pagemap range is one ``os.pread`` (in chunks of
at most :data:`tracedamon.ingest.pagemap_capture.CHUNK_PAGES` pages) and the
run-length encoding is done with numpy. The live capture (processes, signals,
pidfds) is :mod:`tracedamon.ingest.pagemap_capture`; this module decodes and reads
snapshot files.
"""

from __future__ import annotations

import json
import os
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa

from ..errors import InputError, TraceFormatError
from ..units import PAGE_SIZE
from ..units import parse_duration_ns as _parse_duration_ns
from ..schema import (
    MAPS,
    PAGEMAP,
    PAGEMAP_FLAG_EXCLUSIVE,
    PAGEMAP_FLAG_FILE,
    PAGEMAP_FLAG_COMPOUND_HEAD,
    PAGEMAP_FLAG_HUGE,
    PAGEMAP_FLAG_PRESENT,
    PAGEMAP_FLAG_SOFT_DIRTY,
    PAGEMAP_FLAG_SWAPPED,
    PAGEMAP_FLAG_THP,
)
from ..store.trace import open_trace
from .detect import PAGEMAP_TABLES, pagemap_index_of, trace_dir_tables

# pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst)
PM_PRESENT = 1 << 63
PM_SWAPPED = 1 << 62
PM_FILE = 1 << 61
PM_EXCLUSIVE = 1 << 56
PM_SOFT_DIRTY = 1 << 55
PM_PFN_MASK = (1 << 55) - 1
# /proc/kpageflags bits (include/uapi/linux/kernel-page-flags.h)
KPF_COMPOUND_HEAD = 15
KPF_COMPOUND_TAIL = 16
KPF_HUGE = 17
KPF_THP = 22

ENTRY_BYTES = 8
#: PROT_NONE mappings larger than this are not read (address-space reservations)
MAX_NONE_VMA_BYTES = 64 << 30


#: clocks a snapshot can be stamped with, by the names ``perf record -k`` accepts
CLOCKS = {
    "monotonic": time.CLOCK_MONOTONIC,
    "mono": time.CLOCK_MONOTONIC,
    "monotonic_raw": time.CLOCK_MONOTONIC_RAW,
    "raw": time.CLOCK_MONOTONIC_RAW,
    "boottime": time.CLOCK_BOOTTIME,
    "boot": time.CLOCK_BOOTTIME,
    "realtime": time.CLOCK_REALTIME,
    "real": time.CLOCK_REALTIME,
    "tai": time.CLOCK_TAI,
}


def clock_id(name: str) -> tuple[int, str]:
    """(clock id, canonical ``CLOCK_*`` name) of a clock name as ``perf record -k`` takes it."""
    key = name.strip().lower()
    key = key[len("clock_") :] if key.startswith("clock_") else key
    if key not in CLOCKS:
        raise InputError(
            f"unknown clock {name!r} (choose from monotonic, monotonic_raw, "
            "boottime, realtime, tai)"
        )
    cid = CLOCKS[key]
    canon = {
        time.CLOCK_MONOTONIC: "CLOCK_MONOTONIC",
        time.CLOCK_MONOTONIC_RAW: "CLOCK_MONOTONIC_RAW",
        time.CLOCK_BOOTTIME: "CLOCK_BOOTTIME",
        time.CLOCK_REALTIME: "CLOCK_REALTIME",
        time.CLOCK_TAI: "CLOCK_TAI",
    }[cid]
    return cid, canon


class CaptureWarning(UserWarning):
    """Something during a capture, or in the snapshots read, the user should know (data
    is still written)."""


# ---------------------------------------------------------------------------------
# decoding


def entry_flags(entries: np.ndarray) -> np.ndarray:
    """``PAGEMAP_FLAG_*`` (uint32) of raw pagemap entries (uint64), vectorised."""
    e = np.asarray(entries, dtype=np.uint64)
    f = np.zeros(e.shape, np.uint32)
    for bit, flag in (
        (PM_PRESENT, PAGEMAP_FLAG_PRESENT),
        (PM_SWAPPED, PAGEMAP_FLAG_SWAPPED),
        (PM_FILE, PAGEMAP_FLAG_FILE),
        (PM_EXCLUSIVE, PAGEMAP_FLAG_EXCLUSIVE),
        (PM_SOFT_DIRTY, PAGEMAP_FLAG_SOFT_DIRTY),
    ):
        f |= np.where((e & np.uint64(bit)) != 0, np.uint32(flag), np.uint32(0))
    return f


def entry_frames(entries: np.ndarray) -> np.ndarray:
    """PFN (uint64) of present entries; 0 for not present (incl. swapped) entries."""
    e = np.asarray(entries, dtype=np.uint64)
    return np.where((e & np.uint64(PM_PRESENT)) != 0, e & np.uint64(PM_PFN_MASK), np.uint64(0))


def kpageflags_to_flags(kflags: np.ndarray) -> np.ndarray:
    """``PAGEMAP_FLAG_THP`` / ``_HUGE`` / ``_COMPOUND_HEAD`` (uint32) from /proc/kpageflags
    words.  The head flag is kept only on THP and hugetlb pages (other compound pages,
    e.g. a driver's, are no folio DAMON checks)."""
    k = np.asarray(kflags, dtype=np.uint64)
    f = np.where(
        (k >> np.uint64(KPF_THP)) & np.uint64(1), np.uint32(PAGEMAP_FLAG_THP), np.uint32(0)
    )
    f |= np.where(
        (k >> np.uint64(KPF_HUGE)) & np.uint64(1), np.uint32(PAGEMAP_FLAG_HUGE), np.uint32(0)
    )
    f |= np.where(
        ((k >> np.uint64(KPF_COMPOUND_HEAD)) & np.uint64(1)).astype(bool) & (f != 0),
        np.uint32(PAGEMAP_FLAG_COMPOUND_HEAD),
        np.uint32(0),
    )
    return f.astype(np.uint32)


def encode_runs(
    vaddr_start: int, pfn: np.ndarray, flags: np.ndarray, page_size: int = PAGE_SIZE
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Run-length encode per-page frames and flags of consecutive virtual pages.

    A run continues while the flags are equal and, for pages with a known frame
    (``pfn != 0``), the frame is the previous one + 1; pages with no known frame
    (``pfn == 0``) form runs of their own. Returns ``(vaddr_start, vaddr_end,
    pfn_start, flags)`` arrays (``pfn_start`` 0 = none).
    """
    pfn = np.asarray(pfn, dtype=np.uint64)
    flags = np.asarray(flags, dtype=np.uint32)
    n = pfn.size
    if n == 0:
        z = np.zeros(0, np.uint64)
        return z, z, z, np.zeros(0, np.uint32)
    known = pfn != 0
    brk = np.ones(n, bool)
    if n > 1:
        brk[1:] = (
            (flags[1:] != flags[:-1])
            | (known[1:] != known[:-1])
            | (known[1:] & (pfn[1:] != pfn[:-1] + np.uint64(1)))
        )
    starts = np.flatnonzero(brk)
    ends = np.append(starts[1:], n)
    ps = np.uint64(page_size)
    base = np.uint64(vaddr_start)
    return (
        base + starts.astype(np.uint64) * ps,
        base + ends.astype(np.uint64) * ps,
        pfn[starts],
        flags[starts],
    )


def join_runs(vs, ve, pfn, flags, page_size: int = PAGE_SIZE):
    """Join runs that continue each other (used at chunk boundaries)."""
    if vs.size < 2:
        return vs, ve, pfn, flags
    ps = np.uint64(page_size)
    npages = (ve - vs) // ps
    cont = (
        (vs[1:] == ve[:-1])
        & (flags[1:] == flags[:-1])
        & (
            ((pfn[1:] == 0) & (pfn[:-1] == 0))
            | ((pfn[:-1] != 0) & (pfn[1:] == pfn[:-1] + npages[:-1]))
        )
    )
    if not cont.any():
        return vs, ve, pfn, flags
    keep = np.ones(vs.size, bool)
    keep[1:] = ~cont
    idx = np.flatnonzero(keep)
    last = np.append(idx[1:], vs.size) - 1
    return vs[idx], ve[last], pfn[idx], flags[idx]


# ---------------------------------------------------------------------------------
# /proc/PID/maps text

_MAPS_RE = re.compile(
    r"^([0-9a-fA-F]+)-([0-9a-fA-F]+)\s+(\S{4})\s+([0-9a-fA-F]+)\s+"
    r"([0-9a-fA-F]+:[0-9a-fA-F]+)\s+(\d+)\s*(.*)$"
)


@dataclass
class Vma:
    start: int
    end: int
    perms: str
    offset: int | None = None
    dev: str | None = None
    inode: int | None = None
    path: str = ""


def parse_maps(text: str, path: str | os.PathLike = "<maps>") -> list[Vma]:
    """VMAs of ``/proc/PID/maps`` text; a malformed line raises TraceFormatError (line no.)."""
    vmas = []
    for no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = _MAPS_RE.match(line)
        if not m:
            raise TraceFormatError(path, f"not a /proc/PID/maps line: {line[:80]!r}", line=no)
        start, end = int(m.group(1), 16), int(m.group(2), 16)
        if end <= start:
            raise TraceFormatError(path, f"mapping end 0x{end:x} <= start 0x{start:x}", line=no)
        vmas.append(
            Vma(
                start,
                end,
                m.group(3),
                int(m.group(4), 16),
                m.group(5),
                int(m.group(6)),
                m.group(7).strip(),
            )
        )
    return vmas


def _covered(vma: Vma, others: Sequence[Vma]) -> bool:
    """Whether ``vma``'s range is fully covered by ``others`` (sorted)."""
    pos = vma.start
    for o in others:
        if o.end <= pos:
            continue
        if o.start > pos:
            return False
        pos = o.end
        if pos >= vma.end:
            return True
    return pos >= vma.end


# ---------------------------------------------------------------------------------
# tables


@dataclass
class _Runs:
    vs: list = field(default_factory=list)
    ve: list = field(default_factory=list)
    pfn: list = field(default_factory=list)
    flags: list = field(default_factory=list)

    def add(self, vs, ve, pfn, flags):
        self.vs.append(vs)
        self.ve.append(ve)
        self.pfn.append(pfn)
        self.flags.append(flags)

    def arrays(self):
        if not self.vs:
            z = np.zeros(0, np.uint64)
            return z, z, z, np.zeros(0, np.uint32)
        return (
            np.concatenate(self.vs),
            np.concatenate(self.ve),
            np.concatenate(self.pfn),
            np.concatenate(self.flags),
        )


def pagemap_table(snapshot: int, time_ns: int, pid: int, vs, ve, pfn, flags) -> pa.Table:
    """A ``pagemap`` table from run arrays (``pfn`` 0 → null)."""
    n = len(vs)
    pfn = np.asarray(pfn, dtype=np.uint64)
    return pa.table(
        {
            "snapshot": pa.array(np.full(n, snapshot, np.int32)),
            "time_ns": pa.array(np.full(n, time_ns, np.int64)),
            "pid": pa.array(np.full(n, pid, np.int32)),
            "vaddr_start": pa.array(np.asarray(vs, np.uint64)),
            "vaddr_end": pa.array(np.asarray(ve, np.uint64)),
            "pfn_start": pa.array(pfn, mask=pfn == 0),
            "flags": pa.array(np.asarray(flags, np.uint32)),
        },
        schema=PAGEMAP,
    )


def maps_table(snapshot: int, time_ns: int, pid: int, vmas: Sequence[Vma]) -> pa.Table:
    n = len(vmas)
    return pa.table(
        {
            "snapshot": pa.array(np.full(n, snapshot, np.int32)),
            "time_ns": pa.array(np.full(n, time_ns, np.int64)),
            "pid": pa.array(np.full(n, pid, np.int32)),
            "start": pa.array([v.start for v in vmas], pa.uint64()),
            "end": pa.array([v.end for v in vmas], pa.uint64()),
            "perms": pa.array([v.perms for v in vmas], pa.string()),
            "offset": pa.array([v.offset for v in vmas], pa.uint64()),
            "dev": pa.array([v.dev for v in vmas], pa.string()),
            "inode": pa.array([v.inode for v in vmas], pa.uint64()),
            "path": pa.array([v.path for v in vmas], pa.string()),
        },
        schema=MAPS,
    )


@dataclass
class Snapshot:
    """One captured or read snapshot: its tables and a summary for ``meta.json``."""

    maps: pa.Table
    pagemap: pa.Table
    info: dict


def _summary(number, pid, t_begin, t_end, vs, ve, pfn, flags, page_size, **extra) -> dict:
    npages = (ve - vs) // np.uint64(page_size)
    present = (flags & PAGEMAP_FLAG_PRESENT) != 0
    return {
        "snapshot": int(number),
        "pid": int(pid),
        "t_begin_ns": int(t_begin),
        "t_end_ns": int(t_end),
        "runs": int(vs.size),
        "present_pages": int(npages[present].sum()),
        "present_pages_with_frame": int(npages[present & (pfn != 0)].sum()),
        "swapped_pages": int(npages[(flags & PAGEMAP_FLAG_SWAPPED) != 0].sum()),
        "thp_pages": int(npages[(flags & PAGEMAP_FLAG_THP) != 0].sum()),
        **extra,
    }


def parse_duration_ns(text: str | int | float) -> int:
    """``"1s"``, ``"500ms"``, ``"250us"``, ``"2m"``, ``"1.5"`` (seconds) → ns."""
    try:
        ns = _parse_duration_ns(text, "s", "duration")
    except ValueError:
        ns = -1
    if ns < 0:
        raise InputError(f"bad duration {text!r} (examples: 1s, 500ms, 2m)")
    return ns


# ---------------------------------------------------------------------------------
# raw snapshot files (pagemap_snapN.maps / .pagemap.bin / .index.json)

_SNAP_RE = re.compile(r"snap(\d+)\.index\.json$")


def _key_line(text: str, key: str, nth: int = 0, after: str | None = None) -> int:
    """Line of the ``nth`` occurrence of JSON key ``key`` (after key ``after``); 1 if absent."""
    pos = 0
    if after is not None:
        m = re.search(rf'"{re.escape(after)}"\s*:', text)
        pos = m.end() if m else 0
    for i, m in enumerate(re.finditer(rf'"{re.escape(key)}"\s*:', text[pos:])):
        if i == nth:
            return text.count("\n", 0, pos + m.start()) + 1
    return 1


def _load_index(path: Path) -> dict:
    try:
        text = path.read_text()
    except UnicodeDecodeError as e:
        raise TraceFormatError(path, f"not UTF-8 text: {e.reason}", offset=e.start) from None
    try:
        idx = json.loads(text)
    except json.JSONDecodeError as e:
        raise TraceFormatError(path, f"invalid JSON: {e.msg}", line=e.lineno) from None
    if not isinstance(idx, dict):
        raise TraceFormatError(path, "index is not a JSON object", line=1)
    for key in ("pid", "t_begin_ns", "vmas"):
        if key not in idx:
            raise TraceFormatError(path, f"index has no {key!r} field", line=1)
    for key in ("pid", "t_begin_ns") + (("t_end_ns",) if "t_end_ns" in idx else ()):
        v = idx[key]
        if (
            not isinstance(v, int)
            or isinstance(v, bool)
            or not (0 <= v < (1 << 31 if key == "pid" else 1 << 63))
        ):
            raise TraceFormatError(
                path, f"{key} {v!r} is not a valid integer", line=_key_line(text, key)
            )
    if idx.get("entry_bytes", ENTRY_BYTES) != ENTRY_BYTES:
        raise TraceFormatError(
            path,
            f"entry_bytes {idx['entry_bytes']} (only 8 is known)",
            line=_key_line(text, "entry_bytes"),
        )
    if idx.get("byte_order", "little") != "little":
        raise TraceFormatError(
            path,
            f"byte_order {idx['byte_order']!r} (only little)",
            line=_key_line(text, "byte_order"),
        )
    ps = idx.get("page_size", PAGE_SIZE)
    if not isinstance(ps, int) or ps <= 0 or ps & (ps - 1):
        raise TraceFormatError(
            path, f"page_size {ps!r} is not a power of two", line=_key_line(text, "page_size")
        )
    if not isinstance(idx["vmas"], list):
        raise TraceFormatError(path, "'vmas' is not a list", line=_key_line(text, "vmas"))
    idx["_text"] = text
    return idx


def snapshot_files(path: str | os.PathLike) -> list[Path]:
    """The ``*.index.json`` files of a snapshot directory, or the index of the one
    raw snapshot file given (its ``.index.json``, ``.pagemap.bin`` or ``.maps``), in
    snapshot order (``snapN`` in the name, else the name)."""
    p = Path(path)
    if p.is_file():
        idx = pagemap_index_of(p)
        if idx is None:
            raise InputError(
                f"{p}: not a pagemap snapshot file (*.index.json, or a "
                ".pagemap.bin / .maps beside its .index.json)"
            )
        return [idx]
    files = sorted(p.glob("*.index.json"))
    if not files:
        raise InputError(f"{p}: no pagemap snapshot (*.index.json) in this directory")
    return sorted(files, key=_snapshot_order)


def _snapshot_order(q: Path):
    m = _SNAP_RE.search(q.name)
    return (0, int(m.group(1)), q.name) if m else (1, 0, q.name)


def read_snapshot_file(index_path: str | os.PathLike, number: int) -> Snapshot:
    """One raw snapshot (index JSON + .pagemap.bin + .maps) as tables."""
    ip = Path(index_path)
    idx = _load_index(ip)
    text = idx.pop("_text")

    def vline(i: int) -> int:
        return _key_line(text, "start", i, after="vmas")

    ps = idx.get("page_size", PAGE_SIZE)
    pid = idx["pid"]
    t_begin = idx["t_begin_ns"]
    t_end = idx.get("t_end_ns", t_begin)
    bin_name = idx.get("bin_file") or ip.name[: -len(".index.json")] + ".pagemap.bin"
    bp = ip.with_name(Path(bin_name).name)
    if not bp.is_file():
        raise TraceFormatError(
            ip, f"its pagemap data {bp.name} is missing", line=_key_line(text, "bin_file")
        )
    size = bp.stat().st_size
    if size % ENTRY_BYTES:
        raise TraceFormatError(
            bp,
            f"size {size} is not a multiple of {ENTRY_BYTES} bytes",
            offset=size - size % ENTRY_BYTES,
        )
    data = np.memmap(bp, dtype="<u8", mode="r") if size else np.zeros(0, "<u8")
    runs = _Runs()
    idx_vmas = []
    short = []
    prev_end = -1
    for i, v in enumerate(idx["vmas"]):
        try:
            start, end, off, n = (v["start"], v["end"], v["bin_offset"], v["nr_entries"])
        except (KeyError, TypeError) as e:
            raise TraceFormatError(ip, f"vmas[{i}]: missing field ({e})", line=vline(i)) from None
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in (start, end, off, n)):
            raise TraceFormatError(
                ip,
                f"vmas[{i}]: start, end, bin_offset and nr_entries must be integers",
                line=vline(i),
            )
        if start < 0 or end >= 1 << 64:
            raise TraceFormatError(ip, f"vmas[{i}]: address outside 0..2^64", line=vline(i))
        if end <= start or start % ps or end % ps:
            raise TraceFormatError(ip, f"vmas[{i}]: bad range 0x{start:x}-0x{end:x}", line=vline(i))
        if start < prev_end:
            raise TraceFormatError(
                ip, f"vmas[{i}]: overlaps or precedes the previous VMA", line=vline(i)
            )
        prev_end = end
        npages = (end - start) // ps
        if n < 0 or n > npages:
            raise TraceFormatError(
                ip, f"vmas[{i}]: nr_entries {n} outside 0..{npages}", line=vline(i)
            )
        if off < 0 or off % ENTRY_BYTES:
            raise TraceFormatError(
                ip, f"vmas[{i}]: bin_offset {off} not a multiple of 8", line=vline(i)
            )
        if off + n * ENTRY_BYTES > size:
            raise TraceFormatError(
                bp,
                f"truncated: vmas[{i}] (0x{start:x}) needs "
                f"{n * ENTRY_BYTES} bytes here but the file is {size} bytes",
                offset=off,
            )
        if n < npages:
            short.append(f"0x{start:x}-0x{end:x}")
        e = np.asarray(data[off // ENTRY_BYTES : off // ENTRY_BYTES + n])
        if n:
            runs.add(*encode_runs(start, entry_frames(e), entry_flags(e), ps))
        idx_vmas.append(Vma(start, end, str(v.get("perms", "")), path=str(v.get("name", ""))))
    mp = ip.with_name(ip.name[: -len(".index.json")] + ".maps")
    if mp.is_file():
        try:
            vmas = parse_maps(mp.read_bytes().decode("utf-8", errors="backslashreplace"), mp)
        except OSError as e:
            raise InputError(f"{mp}: {e.strerror}") from None
    else:
        vmas = idx_vmas
    vs, ve, pfn, flags = runs.arrays()
    present = (flags & PAGEMAP_FLAG_PRESENT) != 0
    info = _summary(
        number,
        pid,
        t_begin,
        t_end,
        vs,
        ve,
        pfn,
        flags,
        ps,
        vmas=len(vmas),
        source_file=ip.name,
        short_vmas=short,
        clock=str(idx.get("clock", "CLOCK_MONOTONIC")),
        pfns_hidden=bool(present.any() and not (pfn[present] != 0).any()),
    )
    return Snapshot(
        maps_table(number, t_begin, pid, vmas),
        pagemap_table(number, t_begin, pid, vs, ve, pfn, flags),
        info,
    )


def ingest_into(path, writer, *, progress=None, **options) -> None:
    """Read pagemap snapshots into the ``maps`` and ``pagemap`` tables.

    ``path`` is one input or a list of them, each: a directory of raw snapshot files
    (``*.index.json`` + ``.pagemap.bin`` + ``.maps``), one raw snapshot file (any of
    the three), or a trace directory that holds only ``maps`` and ``pagemap`` (what
    ``tracedamon snapshot`` writes). Raw snapshot numbers come from ``snapN`` in the
    file names (else the position in name order); ``time_ns`` is the index's
    ``t_begin_ns``; a trace directory keeps its numbers and times. The same snapshot
    of the same pid given twice is an error. Options: ``time_offset_ns`` (added to
    every time, e.g. to move CLOCK_MONOTONIC onto perf's default clock).
    """
    offset = int(options.pop("time_offset_ns", 0) or 0)
    for ignored in ("skip_bad", "strict"):
        options.pop(ignored, None)
    if options:
        raise InputError(f"pagemap reader: unknown option(s) {', '.join(sorted(options))}")
    inputs = [Path(path)] if isinstance(path, (str, os.PathLike)) else [Path(q) for q in path]
    raw: list[Path] = []
    traces: list[Path] = []
    for q in inputs:
        tables = trace_dir_tables(q)
        if tables is None:
            raw += [f for f in snapshot_files(q) if f.resolve() not in {r.resolve() for r in raw}]
        elif tables and tables <= PAGEMAP_TABLES:
            if q.resolve() not in {t.resolve() for t in traces}:
                traces.append(q)
        else:
            raise InputError(
                f"{q}: a trace directory with {', '.join(sorted(tables)) or 'no'} "
                "tables, not pagemap snapshots only"
            )
    raw.sort(key=_snapshot_order)
    seen: dict[tuple[int, int], str] = {}

    def claim(number: int, pid: int, where: str) -> None:
        other = seen.setdefault((number, pid), where)
        if other != where:
            raise InputError(
                f"{where}: snapshot {number} of pid {pid} is also in {other}; "
                "ingest the two captures into separate directories"
            )

    metas = []
    for i, f in enumerate(raw):
        m = _SNAP_RE.search(f.name)
        number = int(m.group(1)) if m else i
        snap = read_snapshot_file(f, number)
        claim(number, snap.info["pid"], str(f))
        if offset:
            snap = Snapshot(
                _shift(snap.maps, offset),
                _shift(snap.pagemap, offset),
                dict(
                    snap.info,
                    t_begin_ns=snap.info["t_begin_ns"] + offset,
                    t_end_ns=snap.info["t_end_ns"] + offset,
                ),
            )
        writer.write("maps", snap.maps)
        writer.write("pagemap", snap.pagemap)
        metas.append(dict(snap.info, source="files"))
        for s in snap.info["short_vmas"]:
            warnings.warn(
                CaptureWarning(
                    f"{f.name}: VMA {s} has fewer entries than pages (the capture read it short)"
                )
            )
    live: dict = {}
    for d in traces:
        tr = open_trace(d)
        pm_meta = dict(tr.meta.get("pagemap") or {})
        snaps = pm_meta.get("snapshots") or []
        if tr.has("pagemap"):
            keys = (
                tr.table("pagemap", columns=["snapshot", "pid"])
                .group_by(["snapshot", "pid"])
                .aggregate([])
                .to_pylist()
            )
            for k in keys:
                claim(k["snapshot"], k["pid"], str(d))
        for name in ("maps", "pagemap"):
            for t in tr.iter_tables(name):
                writer.write(name, _shift(t, offset) if offset else t)
        clock = pm_meta.get("clock", "CLOCK_MONOTONIC")
        for sm in snaps:
            sm = dict(sm, source=pm_meta.get("source", "live"), clock=sm.get("clock", clock))
            if offset:
                sm.update(t_begin_ns=sm["t_begin_ns"] + offset, t_end_ns=sm["t_end_ns"] + offset)
            metas.append(sm)
        if len(traces) == 1 and not raw:
            live = {k: v for k, v in pm_meta.items() if k not in ("snapshots", "clock")}
    clocks = sorted({m.get("clock", "CLOCK_MONOTONIC") for m in metas})
    if len(clocks) > 1:
        warnings.warn(
            CaptureWarning(f"{', '.join(map(str, inputs))}: snapshots on different clocks {clocks}")
        )
    clock = clocks[0] if len(clocks) == 1 else "mixed"
    sources = sorted({m["source"] for m in metas})
    metas.sort(key=lambda m: (m["snapshot"], m["pid"]))
    writer.meta["pagemap"] = {
        **live,
        "source": sources[0] if len(sources) == 1 else "mixed",
        "clock": clock if not offset else f"{clock} + {offset} ns",
        "snapshots": metas,
        "pfns_known": not any(s.get("pfns_hidden") for s in metas),
        "inputs": [str(q) for q in inputs],
    }


def _shift(t: pa.Table, offset: int) -> pa.Table:
    i = t.schema.get_field_index("time_ns")
    return t.set_column(
        i, t.schema.field(i), pa.array(t.column(i).to_numpy() + np.int64(offset), pa.int64())
    )


__all__ = [
    "CaptureWarning",
    "Snapshot",
    "encode_runs",
    "entry_flags",
    "entry_frames",
    "kpageflags_to_flags",
    "join_runs",
    "parse_maps",
    "read_snapshot_file",
    "snapshot_files",
    "ingest_into",
    "parse_duration_ns",
]
