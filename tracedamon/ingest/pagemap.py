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
at most :data:`CHUNK_PAGES` pages) and the run-length encoding is done with numpy.
"""
from __future__ import annotations

import errno
import json
import os
import re
import select
import signal
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pyarrow as pa

from ..errors import CaptureError, InputError, TraceFormatError
from ..units import PAGE_SIZE
from ..units import parse_duration_ns as _parse_duration_ns
from ..schema import (MAPS, PAGEMAP, PAGEMAP_FLAG_EXCLUSIVE, PAGEMAP_FLAG_FILE,
                      PAGEMAP_FLAG_COMPOUND_HEAD, PAGEMAP_FLAG_HUGE, PAGEMAP_FLAG_PRESENT,
                      PAGEMAP_FLAG_SOFT_DIRTY, PAGEMAP_FLAG_SWAPPED, PAGEMAP_FLAG_THP)

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
#: largest number of pagemap entries read by one pread (8 MiB of entries = 32 GiB of VMA)
CHUNK_PAGES = 1 << 20
#: PROT_NONE mappings larger than this are not read (address-space reservations)
MAX_NONE_VMA_BYTES = 64 << 30


#: clocks a snapshot can be stamped with, by the names ``perf record -k`` accepts
CLOCKS = {
    "monotonic": time.CLOCK_MONOTONIC, "mono": time.CLOCK_MONOTONIC,
    "monotonic_raw": time.CLOCK_MONOTONIC_RAW, "raw": time.CLOCK_MONOTONIC_RAW,
    "boottime": time.CLOCK_BOOTTIME, "boot": time.CLOCK_BOOTTIME,
    "realtime": time.CLOCK_REALTIME, "real": time.CLOCK_REALTIME,
    "tai": time.CLOCK_TAI,
}


def clock_id(name: str) -> tuple[int, str]:
    """(clock id, canonical ``CLOCK_*`` name) of a clock name as ``perf record -k`` takes it."""
    key = name.strip().lower()
    key = key[len("clock_"):] if key.startswith("clock_") else key
    if key not in CLOCKS:
        raise InputError(f"unknown clock {name!r} (choose from monotonic, monotonic_raw, "
                         "boottime, realtime, tai)")
    cid = CLOCKS[key]
    canon = {time.CLOCK_MONOTONIC: "CLOCK_MONOTONIC", time.CLOCK_MONOTONIC_RAW:
             "CLOCK_MONOTONIC_RAW", time.CLOCK_BOOTTIME: "CLOCK_BOOTTIME",
             time.CLOCK_REALTIME: "CLOCK_REALTIME", time.CLOCK_TAI: "CLOCK_TAI"}[cid]
    return cid, canon


class CaptureWarning(UserWarning):
    """Something during a live capture the user should know (data is still written)."""


class ProcessExited(CaptureError):
    """The captured process exited (or its pid was reused) during a snapshot."""


# ---------------------------------------------------------------------------------
# decoding


def entry_flags(entries: np.ndarray) -> np.ndarray:
    """``PAGEMAP_FLAG_*`` (uint32) of raw pagemap entries (uint64), vectorised."""
    e = np.asarray(entries, dtype=np.uint64)
    f = np.zeros(e.shape, np.uint32)
    for bit, flag in ((PM_PRESENT, PAGEMAP_FLAG_PRESENT), (PM_SWAPPED, PAGEMAP_FLAG_SWAPPED),
                      (PM_FILE, PAGEMAP_FLAG_FILE), (PM_EXCLUSIVE, PAGEMAP_FLAG_EXCLUSIVE),
                      (PM_SOFT_DIRTY, PAGEMAP_FLAG_SOFT_DIRTY)):
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
    f = np.where((k >> np.uint64(KPF_THP)) & np.uint64(1), np.uint32(PAGEMAP_FLAG_THP),
                 np.uint32(0))
    f |= np.where((k >> np.uint64(KPF_HUGE)) & np.uint64(1), np.uint32(PAGEMAP_FLAG_HUGE),
                  np.uint32(0))
    f |= np.where(((k >> np.uint64(KPF_COMPOUND_HEAD)) & np.uint64(1)).astype(bool) & (f != 0),
                  np.uint32(PAGEMAP_FLAG_COMPOUND_HEAD), np.uint32(0))
    return f.astype(np.uint32)


def encode_runs(vaddr_start: int, pfn: np.ndarray, flags: np.ndarray,
                page_size: int = PAGE_SIZE) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
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
        brk[1:] = ((flags[1:] != flags[:-1]) | (known[1:] != known[:-1])
                   | (known[1:] & (pfn[1:] != pfn[:-1] + np.uint64(1))))
    starts = np.flatnonzero(brk)
    ends = np.append(starts[1:], n)
    ps = np.uint64(page_size)
    base = np.uint64(vaddr_start)
    return (base + starts.astype(np.uint64) * ps, base + ends.astype(np.uint64) * ps,
            pfn[starts], flags[starts])


def join_runs(vs, ve, pfn, flags, page_size: int = PAGE_SIZE):
    """Join runs that continue each other (used at chunk boundaries)."""
    if vs.size < 2:
        return vs, ve, pfn, flags
    ps = np.uint64(page_size)
    npages = (ve - vs) // ps
    cont = ((vs[1:] == ve[:-1]) & (flags[1:] == flags[:-1])
            & (((pfn[1:] == 0) & (pfn[:-1] == 0))
               | ((pfn[:-1] != 0) & (pfn[1:] == pfn[:-1] + npages[:-1]))))
    if not cont.any():
        return vs, ve, pfn, flags
    keep = np.ones(vs.size, bool)
    keep[1:] = ~cont
    idx = np.flatnonzero(keep)
    last = np.append(idx[1:], vs.size) - 1
    return vs[idx], ve[last], pfn[idx], flags[idx]


# ---------------------------------------------------------------------------------
# /proc/PID/maps text

_MAPS_RE = re.compile(r"^([0-9a-fA-F]+)-([0-9a-fA-F]+)\s+(\S{4})\s+([0-9a-fA-F]+)\s+"
                      r"([0-9a-fA-F]+:[0-9a-fA-F]+)\s+(\d+)\s*(.*)$")


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
        vmas.append(Vma(start, end, m.group(3), int(m.group(4), 16), m.group(5),
                        int(m.group(6)), m.group(7).strip()))
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
        return (np.concatenate(self.vs), np.concatenate(self.ve), np.concatenate(self.pfn),
                np.concatenate(self.flags))


def pagemap_table(snapshot: int, time_ns: int, pid: int, vs, ve, pfn, flags) -> pa.Table:
    """A ``pagemap`` table from run arrays (``pfn`` 0 → null)."""
    n = len(vs)
    pfn = np.asarray(pfn, dtype=np.uint64)
    return pa.table({
        "snapshot": pa.array(np.full(n, snapshot, np.int32)),
        "time_ns": pa.array(np.full(n, time_ns, np.int64)),
        "pid": pa.array(np.full(n, pid, np.int32)),
        "vaddr_start": pa.array(np.asarray(vs, np.uint64)),
        "vaddr_end": pa.array(np.asarray(ve, np.uint64)),
        "pfn_start": pa.array(pfn, mask=pfn == 0),
        "flags": pa.array(np.asarray(flags, np.uint32)),
    }, schema=PAGEMAP)


def maps_table(snapshot: int, time_ns: int, pid: int, vmas: Sequence[Vma]) -> pa.Table:
    n = len(vmas)
    return pa.table({
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
    }, schema=MAPS)


@dataclass
class Snapshot:
    """One captured or read snapshot: its tables and a summary for ``meta.json``."""

    maps: pa.Table
    pagemap: pa.Table
    info: dict


def _summary(number, pid, t_begin, t_end, vs, ve, pfn, flags, page_size, **extra) -> dict:
    npages = (ve - vs) // np.uint64(page_size)
    present = (flags & PAGEMAP_FLAG_PRESENT) != 0
    return {"snapshot": int(number), "pid": int(pid), "t_begin_ns": int(t_begin),
            "t_end_ns": int(t_end), "runs": int(vs.size),
            "present_pages": int(npages[present].sum()),
            "present_pages_with_frame": int(npages[present & (pfn != 0)].sum()),
            "swapped_pages": int(npages[(flags & PAGEMAP_FLAG_SWAPPED) != 0].sum()),
            "thp_pages": int(npages[(flags & PAGEMAP_FLAG_THP) != 0].sum()), **extra}


# ---------------------------------------------------------------------------------
# live capture


def _read_proc_text(path: str) -> str:
    with open(path, "rb") as f:
        return f.read().decode("utf-8", errors="backslashreplace")


def _starttime(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks); None if the pid is gone."""
    try:
        s = _read_proc_text(f"/proc/{pid}/stat")
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(s[s.rindex(")") + 2:].split()[19])


class PagemapCapture:
    """Snapshots of one live process's ``maps`` and ``pagemap``.

    ``/proc/PID/pagemap`` is opened once: the open file stays bound to the
    process's address space, so a reused pid cannot be read by mistake (the
    start time in ``/proc/PID/stat`` is checked too).

    Raises :class:`CaptureError` when the process does not exist or its pagemap
    cannot be read (another user's process without root).
    """

    def __init__(self, pid: int, *, kpageflags: bool = True, page_size: int | None = None,
                 clock: str = "monotonic"):
        self.pid = int(pid)
        self.clock_id, self.clock = clock_id(clock)
        self.page_size = page_size or os.sysconf("SC_PAGE_SIZE")
        self.start_time = _starttime(self.pid)
        if self.start_time is None:
            raise CaptureError(f"pid {self.pid}: no such process")
        try:
            self.fd = os.open(f"/proc/{self.pid}/pagemap", os.O_RDONLY)
        except FileNotFoundError:
            raise CaptureError(f"pid {self.pid}: no such process") from None
        except PermissionError:
            raise CaptureError(f"pid {self.pid}: permission denied reading /proc/{self.pid}/"
                               "pagemap (capture processes of your own user, or run as root)"
                               ) from None
        self.kfd: int | None = None
        self.kpageflags_note = "not requested"
        if kpageflags:
            try:
                self.kfd = os.open("/proc/kpageflags", os.O_RDONLY)
                self.kpageflags_note = "read"
            except OSError as e:
                self.kpageflags_note = f"unreadable ({e.strerror}): THP/HUGE flags not recorded"
        self.pfns_zero_warned = False

    def close(self) -> None:
        for fd in (self.fd, self.kfd):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.fd = self.kfd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- one snapshot --------------------------------------------------------------
    def _read_maps(self) -> list[Vma]:
        try:
            text = _read_proc_text(f"/proc/{self.pid}/maps")
        except (FileNotFoundError, ProcessLookupError):
            raise ProcessExited(f"pid {self.pid}: process exited") from None
        except PermissionError:
            raise CaptureError(f"pid {self.pid}: permission denied reading its maps") from None
        except OSError as e:
            if e.errno == errno.ESRCH:
                raise ProcessExited(f"pid {self.pid}: process exited") from None
            raise CaptureError(f"pid {self.pid}: reading /proc/{self.pid}/maps failed: "
                               f"{e.strerror}") from None
        if _starttime(self.pid) != self.start_time:
            raise ProcessExited(f"pid {self.pid}: process exited (its pid was reused)")
        vmas = parse_maps(text, f"/proc/{self.pid}/maps")
        if not vmas:
            raise ProcessExited(f"pid {self.pid}: process has no user memory "
                                "(exited, a zombie, or a kernel thread)")
        return vmas

    def _pread(self, fd: int, nbytes: int, offset: int) -> bytes:
        buf = bytearray(nbytes)
        view = memoryview(buf)
        got = 0
        while got < nbytes:
            try:
                n = os.preadv(fd, [view[got:]], offset + got)
            except OSError as e:
                if e.errno in (errno.ESRCH, errno.EPERM) and fd == self.fd:
                    raise ProcessExited(f"pid {self.pid}: process exited") from None
                what = f"/proc/{self.pid}/pagemap" if fd == self.fd else "/proc/kpageflags"
                raise CaptureError(f"pid {self.pid}: reading {what} at byte {offset + got} "
                                   f"failed: {e.strerror}") from None
            if n == 0:
                break
            got += n
        return bytes(view[:got])

    def _read_vma(self, vma: Vma, runs: _Runs) -> int:
        """Read one VMA's pagemap into ``runs``; returns the bytes read."""
        ps = self.page_size
        npages = (vma.end - vma.start) // ps
        if vma.perms.startswith("---") and vma.end - vma.start > MAX_NONE_VMA_BYTES:
            runs.add(np.array([vma.start], np.uint64), np.array([vma.end], np.uint64),
                     np.zeros(1, np.uint64), np.zeros(1, np.uint32))
            return 0
        local = _Runs()
        done = 0
        total = 0
        while done < npages:
            n = min(CHUNK_PAGES, npages - done)
            va = vma.start + done * ps
            data = self._pread(self.fd, n * ENTRY_BYTES, va // ps * ENTRY_BYTES)
            total += len(data)
            if len(data) < n * ENTRY_BYTES:
                raise ProcessExited(f"pid {self.pid}: process exited while its pagemap was "
                                    f"read (short read at 0x{va:x})")
            e = np.frombuffer(data, dtype="<u8")
            pfn = entry_frames(e)
            fl = entry_flags(e)
            if self.kfd is not None:
                fl |= self._kflags(pfn)
            local.add(*encode_runs(va, pfn, fl, ps))
            done += n
        runs.add(*join_runs(*local.arrays(), page_size=ps))
        return total

    def _kflags(self, pfn: np.ndarray) -> np.ndarray:
        """THP/HUGE flags per page from /proc/kpageflags (one pread per contiguous frame run)."""
        out = np.zeros(pfn.size, np.uint32)
        idx = np.flatnonzero(pfn != 0)
        if not idx.size:
            return out
        p = pfn[idx]
        brk = np.ones(idx.size, bool)
        brk[1:] = (idx[1:] != idx[:-1] + 1) | (p[1:] != p[:-1] + np.uint64(1))
        starts = np.flatnonzero(brk)
        ends = np.append(starts[1:], idx.size)
        chunks = []
        kfd = self.kfd
        for s, e, f in zip(starts.tolist(), ends.tolist(), p[starts].tolist()):
            want = (e - s) * ENTRY_BYTES
            try:
                data = os.pread(kfd, want, f * ENTRY_BYTES)
            except OSError:                # the slow path names the error
                data = self._pread(kfd, want, f * ENTRY_BYTES)
            if len(data) < want:          # frame beyond the end of memory: no flags
                data += bytes(want - len(data))
            chunks.append(data)
        out[idx] = kpageflags_to_flags(np.frombuffer(b"".join(chunks), dtype="<u8"))
        return out

    def snapshot(self, number: int, *, after_maps: Callable[[], None] | None = None
                 ) -> Snapshot:
        """Read maps, then the pagemap of every VMA, then maps again.

        A VMA that is no longer (fully) mapped when maps is read again vanished
        while its pagemap was read: its pagemap rows are dropped and a
        :class:`CaptureWarning` names it. Raises :class:`ProcessExited` when the
        process is gone. ``after_maps`` is called between reading maps and pagemap
        (tests use it to change the mappings at that moment).
        """
        if self.fd is None:
            raise CaptureError("capture is closed")
        mono_begin = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        t_begin = time.clock_gettime_ns(self.clock_id)
        vmas = self._read_maps()
        if after_maps is not None:
            after_maps()
        runs = _Runs()
        per_vma = []
        nbytes = 0
        for v in vmas:
            if v.path == "[vsyscall]":        # above the user address space; not in pagemap
                per_vma.append(0)
                continue
            before = len(runs.vs)
            nbytes += self._read_vma(v, runs)
            per_vma.append(len(runs.vs) - before)
        t_end = time.clock_gettime_ns(self.clock_id)
        vanished = []
        try:
            after = self._read_maps()
        except ProcessExited:
            after = None
        if after is None:
            raise ProcessExited(f"pid {self.pid}: process exited during snapshot {number}")
        keep_chunks = []
        for v, nchunks in zip(vmas, per_vma):
            ok = _covered(v, after)
            if not ok:
                vanished.append(f"0x{v.start:x}-0x{v.end:x} {v.perms} {v.path}".rstrip())
            keep_chunks.extend([ok] * nchunks)
        if vanished:
            warnings.warn(CaptureWarning(
                f"pid {self.pid} snapshot {number}: {len(vanished)} mapping(s) vanished or "
                f"changed while the pagemap was read; their pages are left out: "
                + ", ".join(vanished[:5]) + (" ..." if len(vanished) > 5 else "")),
                stacklevel=2)
            runs = _Runs(*(list(x for x, k in zip(col, keep_chunks) if k)
                           for col in (runs.vs, runs.ve, runs.pfn, runs.flags)))
            vmas = [v for v in vmas if _covered(v, after)]
        vs, ve, pfn, flags = runs.arrays()
        present = (flags & PAGEMAP_FLAG_PRESENT) != 0
        pfns_hidden = bool(present.any() and not (pfn[present] != 0).any())
        if pfns_hidden and not self.pfns_zero_warned:
            self.pfns_zero_warned = True
            warnings.warn(CaptureWarning(
                f"pid {self.pid}: the kernel reports physical frames as 0 (reading "
                "/proc/PID/pagemap without CAP_SYS_ADMIN): presence and flags are recorded, "
                "frames are not, so virtual<->physical translation is impossible; run as "
                "root to record frames"), stacklevel=2)
        info = _summary(number, self.pid, t_begin, t_end, vs, ve, pfn, flags, self.page_size,
                        vmas=len(vmas), pagemap_bytes_read=nbytes, clock=self.clock,
                        mono_begin_ns=mono_begin, vanished_mappings=vanished,
                        pfns_hidden=pfns_hidden)
        return Snapshot(maps_table(number, t_begin, self.pid, vmas),
                        pagemap_table(number, t_begin, self.pid, vs, ve, pfn, flags), info)


def parse_duration_ns(text: str | int | float) -> int:
    """``"1s"``, ``"500ms"``, ``"250us"``, ``"2m"``, ``"1.5"`` (seconds) → ns."""
    try:
        ns = _parse_duration_ns(text, "s", "duration")
    except ValueError:
        ns = -1
    if ns < 0:
        raise InputError(f"bad duration {text!r} (examples: 1s, 500ms, 2m)")
    return ns


@dataclass
class CaptureResult:
    path: Path
    snapshots: int
    stopped_by: str                 # "count", "duration", "exit", "interrupt"
    exit_code: int | None = None    # of the command, in command mode
    warnings: list[str] = field(default_factory=list)


def _wait(deadline_ns: int, proc: subprocess.Popen | None, pidfds: dict[int, int]) -> list[int]:
    """Sleep until ``deadline_ns`` (monotonic). Returns early, with the pids that
    exited, when the command (``proc``) or a process with a pidfd in ``pidfds`` exits."""
    while True:
        left = deadline_ns - time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        if left <= 0:
            return []
        if proc is not None:
            try:
                proc.wait(timeout=left / 1e9)
                return [proc.pid]
            except subprocess.TimeoutExpired:
                return []
        if pidfds:
            r, _, _ = select.select(list(pidfds.values()), [], [], left / 1e9)
            if r:
                return [p for p, fd in pidfds.items() if fd in r]
            continue
        time.sleep(left / 1e9)


def capture(out: str | os.PathLike, *, pid: int | Sequence[int] | None = None,
            cmd: Sequence[str] | None = None, interval: str | int = "1s",
            count: int | None = None, duration: str | int | None = None,
            force: bool = False, kpageflags: bool = True, progress: bool = False,
            clock: str = "monotonic",
            on_snapshot: Callable[[int, Snapshot], None] | None = None) -> CaptureResult:
    """Snapshot running processes (``pid``: one or several) or a command (``cmd``) into
    trace directory ``out``.

    Snapshots are taken every ``interval`` (on a fixed grid from the first one;
    a snapshot that overruns is followed immediately by the next) until ``count``
    snapshots, ``duration`` elapsed, every process exited, or Ctrl-C. Snapshot
    number ``k`` holds every process still alive (each with its own ``time_ns``).
    Each snapshot is streamed into ``maps`` and ``pagemap`` as its own row group,
    and whatever was captured is committed when processes exit midway (a
    :class:`CaptureWarning` says so). In command mode the command is started
    first and waited for at the end (its exit status is in the result and in
    ``meta.json``). Raises :class:`CaptureError` when not even one snapshot could
    be taken (nothing is written then).

    ``clock`` stamps ``time_ns`` (the names of ``perf record -k``: monotonic, the
    default, monotonic_raw, boottime, realtime, tai); the interval grid itself
    always runs on CLOCK_MONOTONIC.

    ``on_snapshot(number, snapshot)`` is called after each process's snapshot is written.
    """
    from ..store.writer import TraceDirWriter

    pids = [] if pid is None else ([int(pid)] if isinstance(pid, (int, np.integer))
                                   else [int(p) for p in pid])
    if bool(pids) == bool(cmd):
        raise InputError("give either a pid or a command to start")
    if len(set(pids)) != len(pids):
        raise InputError("a pid is given twice")
    interval_ns = parse_duration_ns(interval)
    if interval_ns <= 0:
        raise InputError("the interval must be positive")
    _, clock_name = clock_id(clock)
    duration_ns = parse_duration_ns(duration) if duration is not None else None
    if count is not None and count <= 0:
        raise InputError("count must be positive", cli_message="--count must be positive")
    out = Path(out)
    from ..store.atomic import TRACE_DIR, check_output
    check_output(out, TRACE_DIR, force=force)       # before starting anything
    proc = None
    # what the first snapshot needs, loaded before it (and before a command starts):
    # pyarrow imports pandas on its first array, seconds on a busy machine, during
    # which a short command would run unobserved and the interval grid would slip
    _warm_up()
    if cmd:
        try:
            proc = subprocess.Popen(list(cmd))
        except OSError as e:
            raise CaptureError(f"cannot start {cmd[0]!r}: {e.strerror}") from None
        pids = [proc.pid]
    # an ended capture is worth a warning unless a command simply ran to its end
    warn_exit = proc is None or count is not None or duration_ns is not None
    seen: list[str] = []
    stopped_by = "exit"
    snaps_meta: list[dict] = []
    caps: dict[int, PagemapCapture] = {}
    pidfds: dict[int, int] = {}

    def drop(p: int, why: str) -> None:
        c = caps.pop(p, None)
        if c is not None:
            c.close()
        fd = pidfds.pop(p, None)
        if fd is not None:
            os.close(fd)
        if warn_exit:
            warnings.warn(CaptureWarning(why))

    try:
        for p in pids:
            caps[p] = PagemapCapture(p, kpageflags=kpageflags, clock=clock)
            if proc is None and hasattr(os, "pidfd_open"):
                try:
                    pidfds[p] = os.pidfd_open(p)
                except OSError:
                    pass
        page_size = next(iter(caps.values())).page_size
        kp_note = next(iter(caps.values())).kpageflags_note
        prov = {"source": "live", "pids": pids, "cmd": list(cmd) if cmd else None}
        writer = TraceDirWriter(out, provenance=prov, force=force, tables=("maps", "pagemap"))
        with writer as w, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CaptureWarning)
            bar = _progress(progress, count)
            t0 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            k = 0
            with _Interrupts() as intr:
                while True:
                    late = False
                    for i, p in enumerate(list(caps)):
                        try:
                            snap = caps[p].snapshot(k)
                        except ProcessExited as e:
                            drop(p, f"{e}; kept {k} snapshot(s) of it")
                            continue
                        if not snaps_meta:       # the grid is anchored at the first snapshot
                            t0 = snap.info["mono_begin_ns"]
                        elif i == 0 and duration_ns is not None and \
                                snap.info["mono_begin_ns"] - t0 > duration_ns:
                            # it began after the duration (a busy machine delayed it past
                            # the check below): not kept
                            late = True
                            break
                        w.write("maps", snap.maps)
                        w.write("pagemap", snap.pagemap)
                        snaps_meta.append(snap.info)
                        if on_snapshot is not None:
                            on_snapshot(k, snap)
                    if not snaps_meta:
                        raise CaptureError(f"pid {', '.join(map(str, pids))}: process exited "
                                           "before the first snapshot: nothing captured")
                    if late:
                        stopped_by = "duration"
                        break
                    if not caps:
                        stopped_by = "exit"
                        break
                    k += 1
                    if bar:
                        bar(k)
                    if count is not None and k >= count:
                        stopped_by = "count"
                        break
                    nxt = t0 + k * interval_ns
                    # an overrun snapshot is followed at once by the next: no later
                    # than the grid, and not after the duration either
                    start = max(nxt, time.clock_gettime_ns(time.CLOCK_MONOTONIC))
                    if duration_ns is not None and start - t0 > duration_ns:
                        stopped_by = "duration"
                        break
                    while caps:
                        ended = intr.wait(nxt, proc, pidfds)
                        if ended is None or not ended:
                            break
                        for p in ended:
                            drop(p, f"pid {p}: process exited; kept {k} snapshot(s) of it")
                    if intr.pending:
                        stopped_by = "interrupt"
                        break
                    if not caps:
                        stopped_by = "exit"
                        break
            seen = [str(c.message) for c in caught if issubclass(c.category, CaptureWarning)]
            w.meta["pagemap"] = {
                "source": "live", "clock": clock_name, "page_size": page_size,
                "pid": pids[0], "pids": pids, "cmd": list(cmd) if cmd else None,
                "interval_ns": interval_ns, "count": count, "duration_ns": duration_ns,
                "stopped_by": stopped_by, "kpageflags": kp_note,
                "pfns_known": not any(s["pfns_hidden"] for s in snaps_meta),
                "snapshots": snaps_meta, "warnings": seen,
                "time_alignment": f"record perf with -k {clock_name} to share this clock",
            }
        for msg in seen:                     # re-emit outside the recording block
            warnings.warn(CaptureWarning(msg), stacklevel=2)
    finally:
        for c in caps.values():
            c.close()
        for fd in pidfds.values():
            os.close(fd)
        exit_code = None
        if proc is not None:
            try:
                exit_code = proc.wait()
            except KeyboardInterrupt:
                proc.send_signal(signal.SIGINT)
                exit_code = proc.wait()
    nsnap = len({s["snapshot"] for s in snaps_meta})
    return CaptureResult(out, nsnap, stopped_by, exit_code, seen)


def _warm_up() -> None:
    """Build an empty snapshot's tables once, so that the first real snapshot
    imports nothing."""
    empty = np.zeros(0, np.uint64)
    maps_table(0, 0, 0, [])
    pagemap_table(0, 0, 0, empty, empty, empty, np.zeros(0, np.uint32))


class _Interrupts:
    """Ctrl-C (SIGINT) during a capture: stop after the snapshot being written.

    While waiting between snapshots, SIGINT ends the wait at once; while a
    snapshot is read or written it only sets ``pending``, so a row group is never
    cut in half. Only installed in the main thread (elsewhere SIGINT is left alone).
    """

    def __init__(self):
        self.pending = False
        self._waiting = False
        self._old = None

    def _handler(self, signum, frame):
        self.pending = True
        if self._waiting:
            raise KeyboardInterrupt

    def __enter__(self):
        import threading
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)

    def wait(self, deadline_ns, proc, pidfds):
        """:func:`_wait`, interruptible: None when interrupted, else the pids that exited."""
        self._waiting = True
        try:
            if self.pending:
                return None
            return _wait(deadline_ns, proc, pidfds)
        except KeyboardInterrupt:
            return None
        finally:
            self._waiting = False


def _progress(enabled: bool, total: int | None):
    if not enabled:
        return None
    import sys

    def bar(k: int) -> None:
        tail = f"/{total}" if total else ""
        sys.stderr.write(f"\rsnapshot {k}{tail}")
        sys.stderr.flush()
    return bar


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
        if not isinstance(v, int) or isinstance(v, bool) or not (
                0 <= v < (1 << 31 if key == "pid" else 1 << 63)):
            raise TraceFormatError(path, f"{key} {v!r} is not a valid integer",
                                   line=_key_line(text, key))
    if idx.get("entry_bytes", ENTRY_BYTES) != ENTRY_BYTES:
        raise TraceFormatError(path, f"entry_bytes {idx['entry_bytes']} (only 8 is known)",
                               line=_key_line(text, "entry_bytes"))
    if idx.get("byte_order", "little") != "little":
        raise TraceFormatError(path, f"byte_order {idx['byte_order']!r} (only little)",
                               line=_key_line(text, "byte_order"))
    ps = idx.get("page_size", PAGE_SIZE)
    if not isinstance(ps, int) or ps <= 0 or ps & (ps - 1):
        raise TraceFormatError(path, f"page_size {ps!r} is not a power of two",
                               line=_key_line(text, "page_size"))
    if not isinstance(idx["vmas"], list):
        raise TraceFormatError(path, "'vmas' is not a list", line=_key_line(text, "vmas"))
    idx["_text"] = text
    return idx


def snapshot_files(path: str | os.PathLike) -> list[Path]:
    """The ``*.index.json`` files of a snapshot directory, or the index of the one
    raw snapshot file given (its ``.index.json``, ``.pagemap.bin`` or ``.maps``), in
    snapshot order (``snapN`` in the name, else the name)."""
    from .detect import pagemap_index_of
    p = Path(path)
    if p.is_file():
        idx = pagemap_index_of(p)
        if idx is None:
            raise InputError(f"{p}: not a pagemap snapshot file (*.index.json, or a "
                             ".pagemap.bin / .maps beside its .index.json)")
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
    bin_name = idx.get("bin_file") or ip.name[:-len(".index.json")] + ".pagemap.bin"
    bp = ip.with_name(Path(bin_name).name)
    if not bp.is_file():
        raise TraceFormatError(ip, f"its pagemap data {bp.name} is missing",
                               line=_key_line(text, "bin_file"))
    size = bp.stat().st_size
    if size % ENTRY_BYTES:
        raise TraceFormatError(bp, f"size {size} is not a multiple of {ENTRY_BYTES} bytes",
                               offset=size - size % ENTRY_BYTES)
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
            raise TraceFormatError(ip, f"vmas[{i}]: start, end, bin_offset and nr_entries "
                                   "must be integers", line=vline(i))
        if start < 0 or end >= 1 << 64:
            raise TraceFormatError(ip, f"vmas[{i}]: address outside 0..2^64", line=vline(i))
        if end <= start or start % ps or end % ps:
            raise TraceFormatError(ip, f"vmas[{i}]: bad range 0x{start:x}-0x{end:x}",
                                   line=vline(i))
        if start < prev_end:
            raise TraceFormatError(ip, f"vmas[{i}]: overlaps or precedes the previous VMA",
                                   line=vline(i))
        prev_end = end
        npages = (end - start) // ps
        if n < 0 or n > npages:
            raise TraceFormatError(ip, f"vmas[{i}]: nr_entries {n} outside 0..{npages}",
                                   line=vline(i))
        if off < 0 or off % ENTRY_BYTES:
            raise TraceFormatError(ip, f"vmas[{i}]: bin_offset {off} not a multiple of 8",
                                   line=vline(i))
        if off + n * ENTRY_BYTES > size:
            raise TraceFormatError(bp, f"truncated: vmas[{i}] (0x{start:x}) needs "
                                   f"{n * ENTRY_BYTES} bytes here but the file is {size} bytes",
                                   offset=off)
        if n < npages:
            short.append(f"0x{start:x}-0x{end:x}")
        e = np.asarray(data[off // ENTRY_BYTES: off // ENTRY_BYTES + n])
        if n:
            runs.add(*encode_runs(start, entry_frames(e), entry_flags(e), ps))
        idx_vmas.append(Vma(start, end, str(v.get("perms", "")), path=str(v.get("name", ""))))
    mp = ip.with_name(ip.name[:-len(".index.json")] + ".maps")
    if mp.is_file():
        try:
            vmas = parse_maps(mp.read_bytes().decode("utf-8", errors="backslashreplace"), mp)
        except OSError as e:
            raise InputError(f"{mp}: {e.strerror}") from None
    else:
        vmas = idx_vmas
    vs, ve, pfn, flags = runs.arrays()
    present = (flags & PAGEMAP_FLAG_PRESENT) != 0
    info = _summary(number, pid, t_begin, t_end, vs, ve, pfn, flags, ps,
                    vmas=len(vmas), source_file=ip.name, short_vmas=short,
                    clock=str(idx.get("clock", "CLOCK_MONOTONIC")),
                    pfns_hidden=bool(present.any() and not (pfn[present] != 0).any()))
    return Snapshot(maps_table(number, t_begin, pid, vmas),
                    pagemap_table(number, t_begin, pid, vs, ve, pfn, flags), info)


def ingest_into(path, writer, *, progress: bool = False, **options) -> None:
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
    from ..store.trace import open_trace
    from .detect import PAGEMAP_TABLES, trace_dir_tables
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
            raw += [f for f in snapshot_files(q) if f.resolve() not in
                    {r.resolve() for r in raw}]
        elif tables and tables <= PAGEMAP_TABLES:
            if q.resolve() not in {t.resolve() for t in traces}:
                traces.append(q)
        else:
            raise InputError(f"{q}: a trace directory with {', '.join(sorted(tables)) or 'no'} "
                             "tables, not pagemap snapshots only")
    raw.sort(key=_snapshot_order)
    seen: dict[tuple[int, int], str] = {}

    def claim(number: int, pid: int, where: str) -> None:
        other = seen.setdefault((number, pid), where)
        if other != where:
            raise InputError(f"{where}: snapshot {number} of pid {pid} is also in {other}; "
                             "ingest the two captures into separate directories")
    metas = []
    for i, f in enumerate(raw):
        m = _SNAP_RE.search(f.name)
        number = int(m.group(1)) if m else i
        snap = read_snapshot_file(f, number)
        claim(number, snap.info["pid"], str(f))
        if offset:
            snap = Snapshot(_shift(snap.maps, offset), _shift(snap.pagemap, offset),
                            dict(snap.info, t_begin_ns=snap.info["t_begin_ns"] + offset,
                                 t_end_ns=snap.info["t_end_ns"] + offset))
        writer.write("maps", snap.maps)
        writer.write("pagemap", snap.pagemap)
        metas.append(dict(snap.info, source="files"))
        for s in snap.info["short_vmas"]:
            warnings.warn(CaptureWarning(f"{f.name}: VMA {s} has fewer entries than pages "
                                         "(the capture read it short)"))
    live: dict = {}
    for d in traces:
        tr = open_trace(d)
        pm_meta = dict(tr.meta.get("pagemap") or {})
        snaps = pm_meta.get("snapshots") or []
        if tr.has("pagemap"):
            keys = tr.table("pagemap", columns=["snapshot", "pid"]).group_by(
                ["snapshot", "pid"]).aggregate([]).to_pylist()
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
        warnings.warn(CaptureWarning(f"{', '.join(map(str, inputs))}: snapshots on "
                                     f"different clocks {clocks}"))
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
    return t.set_column(i, t.schema.field(i),
                        pa.array(t.column(i).to_numpy() + np.int64(offset), pa.int64()))


__all__ = ["PagemapCapture", "capture", "CaptureResult", "CaptureWarning", "ProcessExited",
           "Snapshot", "encode_runs", "entry_flags", "entry_frames", "kpageflags_to_flags",
           "join_runs", "parse_maps", "read_snapshot_file", "snapshot_files", "ingest_into",
           "parse_duration_ns"]
