"""Live pagemap capture: snapshots of running processes (or of a command it starts)
into a trace directory, on a fixed clock grid, until a count, a duration, the
processes' exit or an interrupt (``tracedamon snapshot``).

What a snapshot holds and how it is decoded is :mod:`tracedamon.ingest.pagemap`'s;
this module owns the processes, signals and pidfds.
"""

from __future__ import annotations

import errno
import os
import select
import signal
import subprocess
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..errors import CaptureError, InputError
from ..schema import PAGEMAP_FLAG_PRESENT
from ..store.atomic import TRACE_DIR, check_output
from ..store.writer import TraceDirWriter
from .pagemap import (
    ENTRY_BYTES,
    MAX_NONE_VMA_BYTES,
    CaptureWarning,
    Snapshot,
    Vma,
    _covered,
    _Runs,
    _summary,
    clock_id,
    encode_runs,
    entry_flags,
    entry_frames,
    join_runs,
    kpageflags_to_flags,
    maps_table,
    pagemap_table,
    parse_duration_ns,
    parse_maps,
)
from .progress import callback

#: largest number of pagemap entries read by one pread (8 MiB of entries = 32 GiB of VMA)
CHUNK_PAGES = 1 << 20


class ProcessExited(CaptureError):
    """The captured process exited (or its pid was reused) during a snapshot."""


class _AddressSpaceReplaced(Exception):
    """A read of ``pagemap`` came back short, or ``maps`` read empty: the address
    space the file was opened on is gone (the process exec'd, or exited, while the
    snapshot was taken). Its message says which, for when it keeps happening."""


#: attempts at one snapshot while the process keeps exec'ing (a chain of wrappers, such as
#: pyenv's shims, execs several times within milliseconds; this only bounds a process
#: that would exec forever, or a kernel thread, whose maps is always empty)
SNAPSHOT_ATTEMPTS = 100


# ---------------------------------------------------------------------------------
# live capture


def _read_proc_text(path: str) -> str:
    with open(path, "rb") as f:
        return f.read().decode("utf-8", errors="backslashreplace")


def _exited(pid: int) -> bool:
    """Whether the process is gone or a zombie (state Z or X in /proc/PID/stat)."""
    try:
        s = _read_proc_text(f"/proc/{pid}/stat")
    except (FileNotFoundError, ProcessLookupError):
        return True
    return s[s.rindex(")") + 2] in "ZX"


def _starttime(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks); None if the pid is gone."""
    try:
        s = _read_proc_text(f"/proc/{pid}/stat")
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(s[s.rindex(")") + 2 :].split()[19])


class PagemapCapture:
    """Snapshots of one live process's ``maps`` and ``pagemap``.

    An open ``/proc/PID/pagemap`` stays bound to the address space the process had
    when it was opened: once the process execs (a wrapper such as ``env``, ``nice``
    or ``taskset`` starting the real command, a ``#!/usr/bin/env`` script, a shell's
    ``exec``), reads of it come back empty although the process lives on. So each
    snapshot opens it afresh, before it reads ``maps`` (which is bound the same
    way, from its open to its read); an empty ``maps``, a pagemap read that comes
    back short, or a pagemap that no longer reads once ``maps`` was read again
    means that an address space went away during the snapshot (an exec, or the
    exit), and the snapshot is taken again (finding the process gone, if it exited).
    A reused pid is told apart by the start time in ``/proc/PID/stat``, checked
    after the open.

    Raises :class:`CaptureError` when the process does not exist or its pagemap
    cannot be read (another user's process without root).
    """

    def __init__(
        self,
        pid: int,
        *,
        kpageflags: bool = True,
        page_size: int | None = None,
        clock: str = "monotonic",
    ):
        self.pid = int(pid)
        self.clock_id, self.clock = clock_id(clock)
        self.page_size = page_size or os.sysconf("SC_PAGE_SIZE")
        self.start_time = _starttime(self.pid)
        if self.start_time is None:
            raise CaptureError(f"pid {self.pid}: no such process")
        self.fd: int | None = None
        # permissions are checked at once
        self._open_pagemap(gone=CaptureError(f"pid {self.pid}: no such process"))
        self.kfd: int | None = None
        self.kpageflags_note = "not requested"
        if kpageflags:
            try:
                self.kfd = os.open("/proc/kpageflags", os.O_RDONLY)
                self.kpageflags_note = "read"
            except OSError as e:
                self.kpageflags_note = f"unreadable ({e.strerror}): THP/HUGE flags not recorded"
        self.pfns_zero_warned = False

    def _open_pagemap(self, *, gone: CaptureError) -> None:
        """(Re)open ``/proc/PID/pagemap``, bound to the process's address space of now;
        ``gone`` is raised when the process is."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        try:
            self.fd = os.open(f"/proc/{self.pid}/pagemap", os.O_RDONLY)
        except (FileNotFoundError, ProcessLookupError):
            raise gone from None
        except PermissionError:
            raise CaptureError(
                f"pid {self.pid}: permission denied reading /proc/{self.pid}/"
                "pagemap (capture processes of your own user, or run as root)"
            ) from None

    def _still_reads(self, vma: Vma) -> bool:
        """Whether the open pagemap still reads (the first page of ``vma``): the
        kernel returns nothing once the address space it was opened on is gone."""
        offset = vma.start // self.page_size * ENTRY_BYTES
        return len(self._pread(self.fd, ENTRY_BYTES, offset)) == ENTRY_BYTES

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
            raise CaptureError(
                f"pid {self.pid}: reading /proc/{self.pid}/maps failed: {e.strerror}"
            ) from None
        if _starttime(self.pid) != self.start_time:
            raise ProcessExited(f"pid {self.pid}: process exited (its pid was reused)")
        vmas = parse_maps(text, f"/proc/{self.pid}/maps")
        if not vmas:  # also when it exec'd between the open of maps and its read
            raise _AddressSpaceReplaced(
                f"pid {self.pid}: process has no user memory (exited, a zombie, or a kernel thread)"
            )
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
                raise CaptureError(
                    f"pid {self.pid}: reading {what} at byte {offset + got} failed: {e.strerror}"
                ) from None
            if n == 0:
                break
            got += n
        return bytes(view[:got])

    def _read_vma(self, vma: Vma, runs: _Runs) -> int:
        """Read one VMA's pagemap into ``runs``; returns the bytes read."""
        ps = self.page_size
        npages = (vma.end - vma.start) // ps
        if vma.perms.startswith("---") and vma.end - vma.start > MAX_NONE_VMA_BYTES:
            runs.add(
                np.array([vma.start], np.uint64),
                np.array([vma.end], np.uint64),
                np.zeros(1, np.uint64),
                np.zeros(1, np.uint32),
            )
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
                raise _AddressSpaceReplaced(
                    f"pid {self.pid}: its pagemap read short at 0x{va:x} (its address space "
                    "was replaced, by exec, during the snapshot)"
                )
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
            except OSError:  # the slow path names the error
                data = self._pread(kfd, want, f * ENTRY_BYTES)
            if len(data) < want:  # frame beyond the end of memory: no flags
                data += bytes(want - len(data))
            chunks.append(data)
        out[idx] = kpageflags_to_flags(np.frombuffer(b"".join(chunks), dtype="<u8"))
        return out

    def snapshot(self, number: int, *, after_maps: Callable[[], None] | None = None) -> Snapshot:
        """Open the pagemap, read maps, then the pagemap of every VMA, then maps again.

        A VMA that is no longer (fully) mapped when maps is read again vanished
        while its pagemap was read: its pagemap rows are dropped and a
        :class:`CaptureWarning` names it. A snapshot during which the process
        exec'd is taken again, with the new address space. Raises
        :class:`ProcessExited` when the process is gone. ``after_maps`` is called
        between reading maps and pagemap (tests use it to change the mappings at
        that moment).
        """
        if self.fd is None:
            raise CaptureError("capture is closed")
        for _ in range(SNAPSHOT_ATTEMPTS):
            self._open_pagemap(gone=ProcessExited(f"pid {self.pid}: process exited"))
            try:
                return self._take(number, after_maps)
            except _AddressSpaceReplaced as e:
                why = str(e)
            if _exited(self.pid):
                break
        raise ProcessExited(why)

    def _take(self, number: int, after_maps: Callable[[], None] | None) -> Snapshot:
        """One attempt at :meth:`snapshot`, with the pagemap just opened; raises
        :class:`_AddressSpaceReplaced` when the address space went away meanwhile."""
        mono_begin = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        t_begin = time.clock_gettime_ns(self.clock_id)
        vmas = self._read_maps()
        if after_maps is not None:
            after_maps()
        runs = _Runs()
        per_vma = []
        nbytes = 0
        for v in vmas:
            if v.path == "[vsyscall]":  # above the user address space; not in pagemap
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
        if not self._still_reads(vmas[0]):  # an exec before maps was read again
            raise _AddressSpaceReplaced(
                f"pid {self.pid}: its address space was replaced (exec) during the snapshot"
            )
        keep_chunks = []
        for v, nchunks in zip(vmas, per_vma):
            ok = _covered(v, after)
            if not ok:
                vanished.append(f"0x{v.start:x}-0x{v.end:x} {v.perms} {v.path}".rstrip())
            keep_chunks.extend([ok] * nchunks)
        if vanished:
            warnings.warn(
                CaptureWarning(
                    f"pid {self.pid} snapshot {number}: {len(vanished)} mapping(s) vanished or "
                    f"changed while the pagemap was read; their pages are left out: "
                    + ", ".join(vanished[:5])
                    + (" ..." if len(vanished) > 5 else "")
                ),
                stacklevel=2,
            )
            runs = _Runs(
                *(
                    list(x for x, k in zip(col, keep_chunks) if k)
                    for col in (runs.vs, runs.ve, runs.pfn, runs.flags)
                )
            )
            vmas = [v for v in vmas if _covered(v, after)]
        vs, ve, pfn, flags = runs.arrays()
        present = (flags & PAGEMAP_FLAG_PRESENT) != 0
        pfns_hidden = bool(present.any() and not (pfn[present] != 0).any())
        if pfns_hidden and not self.pfns_zero_warned:
            self.pfns_zero_warned = True
            warnings.warn(
                CaptureWarning(
                    f"pid {self.pid}: the kernel reports physical frames as 0 (reading "
                    "/proc/PID/pagemap without CAP_SYS_ADMIN): presence and flags are recorded, "
                    "frames are not, so virtual<->physical translation is impossible; run as "
                    "root to record frames"
                ),
                stacklevel=2,
            )
        info = _summary(
            number,
            self.pid,
            t_begin,
            t_end,
            vs,
            ve,
            pfn,
            flags,
            self.page_size,
            vmas=len(vmas),
            pagemap_bytes_read=nbytes,
            clock=self.clock,
            mono_begin_ns=mono_begin,
            vanished_mappings=vanished,
            pfns_hidden=pfns_hidden,
        )
        return Snapshot(
            maps_table(number, t_begin, self.pid, vmas),
            pagemap_table(number, t_begin, self.pid, vs, ve, pfn, flags),
            info,
        )


@dataclass
class CaptureResult:
    path: Path
    snapshots: int
    stopped_by: str  # "count", "duration", "exit", "interrupt"
    exit_code: int | None = None  # of the command, in command mode
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


def capture(
    out: str | os.PathLike,
    *,
    pid: int | Sequence[int] | None = None,
    cmd: Sequence[str] | None = None,
    interval: str | int = "1s",
    count: int | None = None,
    duration: str | int | None = None,
    force: bool = False,
    kpageflags: bool = True,
    progress=None,
    clock: str = "monotonic",
    on_snapshot: Callable[[int, Snapshot], None] | None = None,
) -> CaptureResult:
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
    pids = _requested_pids(pid, cmd)
    interval_ns = parse_duration_ns(interval)
    if interval_ns <= 0:
        raise InputError("the interval must be positive")
    _, clock_name = clock_id(clock)
    duration_ns = parse_duration_ns(duration) if duration is not None else None
    if count is not None and count <= 0:
        raise InputError("count must be positive", cli_message="--count must be positive")
    out = Path(out)
    check_output(out, TRACE_DIR, force=force)  # before starting anything
    # what the first snapshot needs, loaded before it (and before a command starts):
    # pyarrow imports pandas on its first array, seconds on a busy machine, during
    # which a short command would run unobserved and the interval grid would slip
    _warm_up()
    proc = _start_command(cmd) if cmd else None
    if proc is not None:
        pids = [proc.pid]
    # an ended capture is worth a warning unless a command simply ran to its end
    procs = _Processes(warn_exit=proc is None or count is not None or duration_ns is not None)
    plan = _Plan(interval_ns, count, duration_ns, proc)
    try:
        procs.open(pids, kpageflags=kpageflags, clock=clock, pidfds=proc is None)
        first = next(iter(procs.caps.values()))
        prov = {"source": "live", "pids": pids, "cmd": list(cmd) if cmd else None}
        writer = TraceDirWriter(out, provenance=prov, force=force, tables=("maps", "pagemap"))
        with writer as w, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CaptureWarning)
            snaps_meta: list[dict] = []
            stopped_by = _snapshot_loop(procs, plan, w, snaps_meta, progress, on_snapshot)
            seen = [str(c.message) for c in caught if issubclass(c.category, CaptureWarning)]
            w.meta["pagemap"] = {
                "source": "live",
                "clock": clock_name,
                "page_size": first.page_size,
                "pid": pids[0],
                "pids": pids,
                "cmd": list(cmd) if cmd else None,
                "interval_ns": interval_ns,
                "count": count,
                "duration_ns": duration_ns,
                "stopped_by": stopped_by,
                "kpageflags": first.kpageflags_note,
                "pfns_known": not any(s["pfns_hidden"] for s in snaps_meta),
                "snapshots": snaps_meta,
                "warnings": seen,
                "time_alignment": f"record perf with -k {clock_name} to share this clock",
            }
        for msg in seen:  # re-emit outside the recording block
            warnings.warn(CaptureWarning(msg), stacklevel=2)
    finally:
        procs.close()
        exit_code = _wait_command(proc)
    nsnap = len({s["snapshot"] for s in snaps_meta})
    return CaptureResult(out, nsnap, stopped_by, exit_code, seen)


def _requested_pids(pid, cmd) -> list[int]:
    """The pids to capture (none in command mode), checked against the command."""
    pids = (
        []
        if pid is None
        else ([int(pid)] if isinstance(pid, (int, np.integer)) else [int(p) for p in pid])
    )
    if bool(pids) == bool(cmd):
        raise InputError("give either a pid or a command to start")
    if len(set(pids)) != len(pids):
        raise InputError("a pid is given twice")
    return pids


def _start_command(cmd: Sequence[str]) -> subprocess.Popen:
    try:
        return subprocess.Popen(list(cmd))
    except OSError as e:
        raise CaptureError(f"cannot start {cmd[0]!r}: {e.strerror}") from None


def _wait_command(proc: subprocess.Popen | None) -> int | None:
    """The command's exit status, once it ended (passing a Ctrl-C of the wait on to it)."""
    if proc is None:
        return None
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        return proc.wait()


@dataclass
class _Plan:
    """When to snapshot, and when to stop: every ``interval_ns`` on a grid, until
    ``count`` snapshots or ``duration_ns``, with the started command ``proc``."""

    interval_ns: int
    count: int | None
    duration_ns: int | None
    proc: subprocess.Popen | None


class _Processes:
    """The processes still captured: a :class:`PagemapCapture` each, and a pidfd each
    (that wakes the wait between snapshots when the process exits)."""

    def __init__(self, *, warn_exit: bool):
        self.warn_exit = warn_exit
        self.asked: list[int] = []
        self.caps: dict[int, PagemapCapture] = {}
        self.pidfds: dict[int, int] = {}

    def open(self, pids: list[int], *, kpageflags: bool, clock: str, pidfds: bool) -> None:
        self.asked = list(pids)
        for p in pids:
            self.caps[p] = PagemapCapture(p, kpageflags=kpageflags, clock=clock)
            if pidfds and hasattr(os, "pidfd_open"):
                try:
                    self.pidfds[p] = os.pidfd_open(p)
                except OSError:
                    pass

    def drop(self, p: int, why: str) -> None:
        """Stop capturing ``p`` (it exited); a :class:`CaptureWarning` says ``why``."""
        c = self.caps.pop(p, None)
        if c is not None:
            c.close()
        fd = self.pidfds.pop(p, None)
        if fd is not None:
            os.close(fd)
        if self.warn_exit:
            warnings.warn(CaptureWarning(why))

    def close(self) -> None:
        for c in self.caps.values():
            c.close()
        for fd in self.pidfds.values():
            os.close(fd)


def _snapshot_loop(
    procs: _Processes,
    plan: _Plan,
    w,
    snaps_meta: list[dict],
    progress,
    on_snapshot: Callable[[int, Snapshot], None] | None,
) -> str:
    """Take snapshots on the plan's grid, writing each into ``w`` and its summary into
    ``snaps_meta``, until a stop; returns what stopped it ("count", "duration",
    "exit", "interrupt")."""
    bar = _progress(progress, plan.count)
    t0 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    k = 0
    with _Interrupts() as intr:
        while True:
            t0, late = _snapshot_round(procs, plan, w, k, t0, snaps_meta, on_snapshot)
            if not snaps_meta:
                raise CaptureError(
                    f"pid {', '.join(map(str, procs.asked))}: process exited "
                    "before the first snapshot: nothing captured"
                )
            if late:
                return "duration"
            if not procs.caps:
                return "exit"
            k += 1
            if bar:
                bar(k)
            if plan.count is not None and k >= plan.count:
                return "count"
            nxt = t0 + k * plan.interval_ns
            # an overrun snapshot is followed at once by the next: no later
            # than the grid, and not after the duration either
            start = max(nxt, time.clock_gettime_ns(time.CLOCK_MONOTONIC))
            if plan.duration_ns is not None and start - t0 > plan.duration_ns:
                return "duration"
            while procs.caps:
                ended = intr.wait(nxt, plan.proc, procs.pidfds)
                if ended is None or not ended:
                    break
                for p in ended:
                    procs.drop(p, f"pid {p}: process exited; kept {k} snapshot(s) of it")
            if intr.pending:
                return "interrupt"
            if not procs.caps:
                return "exit"


def _snapshot_round(
    procs: _Processes,
    plan: _Plan,
    w,
    k: int,
    t0: int,
    snaps_meta: list[dict],
    on_snapshot: Callable[[int, Snapshot], None] | None,
) -> tuple[int, bool]:
    """Snapshot ``k`` of every process still alive (dropping those that exited).
    Returns the grid's anchor ``t0`` (the first snapshot's start) and whether the
    snapshot began after the duration (then it is not kept)."""
    for i, p in enumerate(list(procs.caps)):
        try:
            snap = procs.caps[p].snapshot(k)
        except ProcessExited as e:
            procs.drop(p, f"{e}; kept {k} snapshot(s) of it")
            continue
        if not snaps_meta:  # the grid is anchored at the first snapshot
            t0 = snap.info["mono_begin_ns"]
        elif (
            i == 0
            and plan.duration_ns is not None
            and snap.info["mono_begin_ns"] - t0 > plan.duration_ns
        ):
            # it began after the duration (a busy machine delayed it past the check in
            # the loop): not kept
            return t0, True
        w.write("maps", snap.maps)
        w.write("pagemap", snap.pagemap)
        snaps_meta.append(snap.info)
        if on_snapshot is not None:
            on_snapshot(k, snap)
    return t0, False


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


def _progress(progress, total: int | None):
    """``bar(k)``: ``k`` snapshots taken, reported to ``progress(k, total, "snapshot")``
    (:mod:`tracedamon.ingest.progress`); None without a callback."""
    cb = callback(progress)
    if cb is None:
        return None

    def bar(k: int) -> None:
        cb(k, total, "snapshot")

    return bar


__all__ = ["PagemapCapture", "capture", "CaptureResult", "CaptureWarning", "ProcessExited"]
