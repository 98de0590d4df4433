"""`tracedamon snapshot` of a process that execs: every snapshot is kept.

An open /proc/PID/pagemap reads the address space the process had when it was
opened; once the process execs, reads of it return nothing. A command started
through a wrapper that execs the real program (``env``, ``nice``, ``taskset``, a
``#!/usr/bin/env`` script) therefore used to keep one snapshot (the wrapper's,
then "short read") or none ("process exited before the first snapshot"), and a
``--pid`` process that exec'd was dropped as if it had exited. The workload here
maps and touches an anonymous area, says where and when, and sleeps; each snapshot
taken after it said so must hold every page of that area.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tracedamon.ingest import pagemap_capture as pm
from tracedamon.ingest.pagemap_capture import CaptureWarning, PagemapCapture, capture
from tracedamon.schema import PAGEMAP_FLAG_PRESENT
from tracedamon.store.trace import open_trace

from conftest import ROOT

PAGE = os.sysconf("SC_PAGE_SIZE")
AREA = 64 * PAGE

# maps and touches AREA bytes, writes "ADDRESS READY_NS" (CLOCK_MONOTONIC) to argv[1],
# sleeps argv[2] seconds, appends its exit time
WORKLOAD = f"""
import ctypes, mmap, os, sys, time
m = mmap.mmap(-1, {AREA})
for off in range(0, {AREA}, {PAGE}):
    m[off] = 1
addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(f"{{addr}} {{time.clock_gettime_ns(time.CLOCK_MONOTONIC)}}\\n")
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(float(sys.argv[2]))
with open(sys.argv[1], "a") as f:
    f.write(f"{{time.clock_gettime_ns(time.CLOCK_MONOTONIC)}}\\n")
"""


def _workload(tmp_path: Path) -> Path:
    p = tmp_path / "workload.py"
    p.write_text(WORKLOAD)
    return p


def _present_bytes(pm, pid: int, snapshot: int, lo: int, hi: int) -> int:
    rows = pm[(pm.pid == pid) & (pm.snapshot == snapshot)]
    rows = rows[(rows["flags"] & PAGEMAP_FLAG_PRESENT) != 0]
    s = np.maximum(rows.vaddr_start.to_numpy(np.int64), lo)
    e = np.minimum(rows.vaddr_end.to_numpy(np.int64), hi)
    return int(np.clip(e - s, 0, None).sum())


def _check_snapshots(out: Path, ready: Path, interval_s: float, alive_s: float) -> int:
    """Every snapshot taken after the workload was ready holds its whole area; the
    snapshots are numbered 0..n-1; returns n."""
    t = open_trace(out)
    pm = t.df("pagemap")
    info = t.meta["pagemap"]["snapshots"]
    n = len(info)
    assert sorted(pm.snapshot.unique()) == list(range(n))
    addr, ready_ns = (int(x) for x in ready.read_text().split()[:2])
    after_ready = [s for s in info if s["mono_begin_ns"] >= ready_ns]
    # the workload lived alive_s after it was ready: a snapshot every interval_s
    # (at least half of them on a loaded machine)
    assert len(after_ready) >= int(alive_s / interval_s) // 2, (n, len(after_ready))
    for s in after_ready:
        got = _present_bytes(pm, s["pid"], s["snapshot"], addr, addr + AREA)
        assert got == AREA, (s["snapshot"], got)
        assert not s["vanished_mappings"], s
    return n


# a launcher in Python execs its program some 10 ms after the start, coreutils' at once
LAUNCHER = [sys.executable, "-c", "import os, sys; os.execvp(sys.argv[1], sys.argv[1:])"]


@pytest.mark.parametrize(
    "wrapper", [["env"], ["nice", "-n", "1"], LAUNCHER], ids=["env", "nice", "launcher"]
)
def test_command_started_through_a_wrapper_keeps_every_snapshot(tmp_path, wrapper):
    ready = tmp_path / "ready"
    out = tmp_path / "c.td"
    r = subprocess.run(
        [sys.executable, "-m", "tracedamon", "snapshot", "-i", "200ms", "-q", "-o", str(out)]
        + ["--", *wrapper, sys.executable, str(_workload(tmp_path)), str(ready), "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    # a command that ran to its end: no warning that it exited; a snapshot that met
    # its dynamic loader mapping and unmapping files may say that a mapping vanished
    for line in r.stderr.splitlines():
        assert "mapping(s) vanished or changed" in line, r.stderr
    _check_snapshots(out, ready, 0.2, 2.0)
    meta = open_trace(out).meta["pagemap"]
    assert meta["stopped_by"] == "exit" and meta["cmd"][: len(wrapper)] == wrapper


def test_pid_that_execs_is_followed_into_its_new_program(tmp_path):
    """--pid mode: the process execs after a few snapshots; the capture goes on."""
    ready = tmp_path / "ready"
    wl = _workload(tmp_path)
    execs = (
        "import os, sys, time; time.sleep(0.6); "
        f"os.execv(sys.executable, [sys.executable, {str(wl)!r}, {str(ready)!r}, '2'])"
    )
    p = subprocess.Popen([sys.executable, "-c", execs])
    try:
        # --pid mode says that it exited (and a snapshot may meet the loader's mappings)
        with pytest.warns(CaptureWarning, match="process exited; kept"):
            res = capture(tmp_path / "p.td", pid=p.pid, interval="200ms", kpageflags=False)
    finally:
        p.kill()
        p.wait()
    assert res.stopped_by == "exit"
    n = _check_snapshots(tmp_path / "p.td", ready, 0.2, 2.0)
    assert res.snapshots == n


# generation argv[2] of a program that maps a one-page file gen<argv[2]>.map in folder
# argv[1], says its generation on stdout, and execs its next generation on SIGUSR1
GENERATION = """
import mmap, os, signal, sys, time
folder, n = sys.argv[1], int(sys.argv[2])
f = open(f"{folder}/gen{n}.map", "wb+")
f.truncate(mmap.PAGESIZE)
m = mmap.mmap(f.fileno(), mmap.PAGESIZE)
nxt = [sys.executable, "-c", sys.argv[3], folder, str(n + 1), sys.argv[3]]
signal.signal(signal.SIGUSR1, lambda *a: os.execv(sys.executable, nxt))
print(n, flush=True)
time.sleep(30)
"""


@pytest.fixture
def execs_on_sigusr1(tmp_path):
    """A process that execs its next generation on SIGUSR1 (each maps its own file);
    ``exec_now()`` sends the signal and waits until the new generation has mapped its
    file. Yields (pid, exec_now, gen) where ``gen(n)`` is generation n's file."""
    p = subprocess.Popen(
        [sys.executable, "-c", GENERATION, str(tmp_path), "0", GENERATION],
        stdout=subprocess.PIPE,
        text=True,
    )
    done = [0]

    def exec_now():
        os.kill(p.pid, signal.SIGUSR1)
        done[0] += 1
        assert p.stdout.readline() == f"{done[0]}\n"

    try:
        assert p.stdout.readline() == "0\n"
        yield p.pid, exec_now, lambda n: str(tmp_path / f"gen{n}.map")
    finally:
        p.kill()
        p.wait()
        p.stdout.close()


def _is_whole_snapshot_of(snap, new: str, old: str) -> None:
    """The snapshot is of the program that mapped ``new`` (none of the one that mapped
    ``old``), and its pagemap covers its maps."""
    maps = snap.maps.to_pandas()
    pm = snap.pagemap.to_pandas()
    assert (maps.path == new).any() and not (maps.path == old).any()
    assert not snap.info["vanished_mappings"]
    vsys = maps.path == "[vsyscall]"
    assert int((pm.vaddr_end - pm.vaddr_start).sum()) == int((maps.end - maps.start)[~vsys].sum())


def test_exec_between_maps_and_pagemap_is_taken_again(execs_on_sigusr1):
    """The process execs after the snapshot read maps, before its pagemap: the
    snapshot is taken again, of the new program, not reported as an exit."""
    pid, exec_now, gen = execs_on_sigusr1
    calls = []

    def hook():
        calls.append(1)
        if len(calls) == 1:
            exec_now()

    with PagemapCapture(pid, kpageflags=False) as cap:
        snap = cap.snapshot(0, after_maps=hook)
    assert len(calls) == 2  # the first attempt met the exec
    _is_whole_snapshot_of(snap, gen(1), gen(0))


def test_exec_before_maps_is_read_again_is_taken_again(execs_on_sigusr1, monkeypatch):
    """The process execs after the pagemap was read, before maps is read again: the
    snapshot is taken again rather than kept with every mapping "vanished"."""
    pid, exec_now, gen = execs_on_sigusr1
    reads = []
    real = PagemapCapture._read_maps

    def read_maps(self):
        reads.append(1)
        if len(reads) == 2:  # the first attempt's second reading of maps
            exec_now()
        return real(self)

    monkeypatch.setattr(PagemapCapture, "_read_maps", read_maps)
    with PagemapCapture(pid, kpageflags=False) as cap:
        snap = cap.snapshot(0)
    assert len(reads) == 4  # two attempts, each reading maps twice
    _is_whole_snapshot_of(snap, gen(1), gen(0))


def test_exec_between_the_open_and_the_read_of_maps_is_taken_again(execs_on_sigusr1, monkeypatch):
    """/proc/PID/maps is bound to the address space at its open too: opened before an
    exec and read after it, it reads empty although the process lives on."""
    pid, exec_now, gen = execs_on_sigusr1
    seen = []
    real = pm._read_proc_text

    def read_proc_text(path):
        if not path.endswith("/maps") or seen:
            return real(path)
        with open(path, "rb") as f:
            exec_now()
            text = f.read().decode()
        seen.append(text)
        return text

    monkeypatch.setattr(pm, "_read_proc_text", read_proc_text)
    with PagemapCapture(pid, kpageflags=False) as cap:
        snap = cap.snapshot(0)
    assert seen == [""]  # what the kernel gave: nothing
    _is_whole_snapshot_of(snap, gen(1), gen(0))


def test_a_chain_of_execs_during_a_snapshot_is_followed_to_its_end(execs_on_sigusr1):
    """A chain of wrappers (pyenv's shims: bash execs bash execs ... python) execs several
    times within milliseconds: every attempt at the snapshot may meet an exec."""
    pid, exec_now, gen = execs_on_sigusr1
    calls = []

    def hook():
        calls.append(1)
        if len(calls) <= 5:
            exec_now()

    with PagemapCapture(pid, kpageflags=False) as cap:
        snap = cap.snapshot(0, after_maps=hook)
    assert len(calls) == 6  # five attempts met an exec
    _is_whole_snapshot_of(snap, gen(5), gen(4))
