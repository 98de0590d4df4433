"""Live pagemap capture of a real process with a known set of touched pages.

The target (tests/helpers/pagemap_target.c, compiled here) writes a known
subset of its buffer's pages and, when it may, prints the frames of its own
pages read from /proc/self/pagemap -- an oracle independent of our decoder and
of our capture. It waits on stdin, so each test decides when it ends.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tracedamon.engine.translate import Translator
from tracedamon.errors import CaptureError, InputError
from tracedamon.ingest.pagemap_capture import CaptureWarning, PagemapCapture, capture
from tracedamon.schema import (
    PAGEMAP_FLAG_EXCLUSIVE,
    PAGEMAP_FLAG_FILE,
    PAGEMAP_FLAG_PRESENT,
    PAGEMAP_FLAG_THP,
)
from tracedamon.store.trace import open_trace

HELPER = Path(__file__).parent / "helpers" / "pagemap_target.c"
PAGE = 4096


def _has_cap_sys_admin() -> bool:
    """Whether this process may read frame numbers (CAP_SYS_ADMIN in its effective set)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> 21 & 1)
    return os.geteuid() == 0


IS_ROOT = _has_cap_sys_admin()  # frames are readable (root with CAP_SYS_ADMIN)
pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")


@pytest.fixture(scope="module")
def target_bin(tmp_path_factory):
    out = tmp_path_factory.mktemp("helper") / "pagemap_target"
    subprocess.run(["gcc", "-O2", "-Wall", "-o", str(out), str(HELPER)], check=True)
    return out


class Target:
    """A running pagemap_target: its buffer address, page count and self-read frames."""

    def __init__(self, binary, mode, npages):
        self.proc = subprocess.Popen(
            [str(binary), mode, str(npages)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.pid = self.proc.pid
        self.pfns: dict[int, int] = {}
        while True:
            line = self.proc.stdout.readline()
            assert line, "target exited before it was ready"
            f = line.split()
            if f[0] == "buf":
                self.buf, self.npages = int(f[1], 16), int(f[2])
            elif f[0] == "pfn":
                self.pfns[int(f[1])] = int(f[2])
            elif f[0] == "ready":
                break

    def send(self, cmd: str, expect: str | None = None):
        self.proc.stdin.write(cmd)
        self.proc.stdin.flush()
        if expect:
            assert self.proc.stdout.readline().strip() == expect

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.send("q")
            except BrokenPipeError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def pattern_target(target_bin):
    t = Target(target_bin, "pattern", 300)
    yield t
    t.stop()


def _page_states(pm, lo, hi):
    """Per-page (present, pfn, flags) of [lo, hi) from pagemap rows (slow, obvious)."""
    n = (hi - lo) // PAGE
    present = np.zeros(n, bool)
    pfn = np.zeros(n, np.int64)
    flags = np.zeros(n, np.int64)
    for r in pm.itertuples():
        for va in range(max(r.vaddr_start, lo), min(r.vaddr_end, hi), PAGE):
            i = (va - lo) // PAGE
            present[i] = bool(r.flags & PAGEMAP_FLAG_PRESENT)
            flags[i] = r.flags
            if r.pfn_start is not None and not np.isnan(r.pfn_start):
                pfn[i] = int(r.pfn_start) + (va - r.vaddr_start) // PAGE
    return present, pfn, flags


def test_capture_pattern_pages_frames_and_round_trip(pattern_target, tmp_path):
    t = pattern_target
    res = capture(tmp_path / "p.td", pid=t.pid, interval="10ms", count=2)
    assert res.snapshots == 2 and res.stopped_by == "count"
    tr_dir = open_trace(tmp_path / "p.td")
    pm = tr_dir.df("pagemap")
    maps = tr_dir.df("maps")
    assert sorted(pm.snapshot.unique()) == [0, 1]
    assert (pm.pid == t.pid).all()
    # the buffer is one VMA of the maps table
    lo, hi = t.buf, t.buf + t.npages * PAGE
    assert ((maps.start == lo) & (maps.end == hi) & (maps.perms == "rw-p")).sum() == 2
    expect = np.array([i % 3 != 2 for i in range(t.npages)])
    for s in (0, 1):
        present, pfn, flags = _page_states(pm[pm.snapshot == s], lo, hi)
        assert (present == expect).all()
        # private anonymous pages written once: exclusive, not file-backed
        assert (flags[expect] & PAGEMAP_FLAG_EXCLUSIVE).all()
        assert not (flags[expect] & PAGEMAP_FLAG_FILE).any()
        assert (flags[~expect] == 0).all()
        # the program's own text is a file mapping: its present pages carry the file flag
        text = maps[
            (maps.snapshot == s) & (maps.perms == "r-xp") & maps.path.str.endswith("pagemap_target")
        ]
        assert len(text) == 1
        _, _, tflags = _page_states(
            pm[pm.snapshot == s], int(text.start.iloc[0]), int(text.end.iloc[0])
        )
        tpresent = (tflags & PAGEMAP_FLAG_PRESENT) != 0
        assert tpresent.any() and (tflags[tpresent] & PAGEMAP_FLAG_FILE).all()
        if IS_ROOT:
            assert (pfn[expect] > 0).all()
            assert {i: int(pfn[i]) for i in np.flatnonzero(expect)} == t.pfns
    if not IS_ROOT:
        pytest.skip(
            "no CAP_SYS_ADMIN (not root): frames read as 0, so frame values and "
            "the round trip cannot be checked (presence and flags were)"
        )
    # round trip vaddr -> frame -> vaddr, for every byte offset kind
    tr = Translator.from_tables(tr_dir.table("pagemap"))
    idx = np.arange(t.npages)
    va = (lo + idx * PAGE + (idx * 37) % PAGE).astype(np.uint64)
    when = int(pm.time_ns.max())
    pa_ = tr.virt_to_phys(np.full(idx.size, t.pid), va, when)
    exp_pa = np.array(
        [t.pfns.get(i, 0) * PAGE + (i * 37) % PAGE if i in t.pfns else 0 for i in idx], np.uint64
    )
    assert (pa_ == exp_pa).all()
    pids, back = tr.phys_to_virt(pa_[expect], when)
    assert (pids == t.pid).all() and (back == va[expect]).all()
    # meta records what was captured
    meta = tr_dir.meta["pagemap"]
    assert meta["clock"] == "CLOCK_MONOTONIC" and meta["pfns_known"] is True
    assert [m["present_pages_with_frame"] >= expect.sum() for m in meta["snapshots"]] == [True] * 2


def test_snapshot_times_are_monotonic_clock(pattern_target, tmp_path):
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    capture(tmp_path / "p.td", pid=pattern_target.pid, interval="20ms", count=3)
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    t = open_trace(tmp_path / "p.td")
    times = sorted(t.df("pagemap").groupby("snapshot").time_ns.first())
    assert before <= times[0] and times[-1] <= after
    # fixed grid anchored at the first snapshot: snapshot k starts no earlier than
    # k intervals after it (a lower bound the capture loop guarantees; no upper bound)
    assert all(b - times[0] >= k * 20_000_000 for k, b in enumerate(times))


def _poll(predicate, *, tries: int, step: float) -> bool:
    """Wait for ``predicate`` to hold, checking up to ``tries`` times ``step`` seconds
    apart (a bounded wait for the other process, not a measurement)."""
    for _ in range(tries):
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def test_process_exits_mid_capture_keeps_snapshots(target_bin, tmp_path):
    t = Target(target_bin, "pattern", 30)

    def after(k, snap):
        if k == 1:  # let the process exit (it stays a zombie, unreaped)
            t.send("q")

            def zombie():
                st = Path(f"/proc/{t.pid}/stat").read_text()
                return st[st.rindex(")") + 2] == "Z"

            _poll(zombie, tries=1000, step=0.01)

    try:
        with pytest.warns(CaptureWarning, match="exited"):
            res = capture(
                tmp_path / "x.td", pid=t.pid, interval="10ms", count=50, on_snapshot=after
            )
    finally:
        t.stop()
    assert res.snapshots == 2 and res.stopped_by == "exit"
    tr = open_trace(tmp_path / "x.td")
    assert sorted(tr.df("pagemap").snapshot.unique()) == [0, 1]
    assert sorted(tr.df("maps").snapshot.unique()) == [0, 1]
    assert tr.meta["pagemap"]["stopped_by"] == "exit"
    assert not list(tmp_path.glob(".x.td*"))  # no temporary directory left behind


def test_mapping_vanishing_between_maps_and_pagemap(pattern_target, tmp_path):
    t = pattern_target
    lo, hi = t.buf, t.buf + t.npages * PAGE
    with PagemapCapture(t.pid) as cap:
        with pytest.warns(CaptureWarning, match=f"vanished.*0x{lo:x}-0x{hi:x}"):
            snap = cap.snapshot(0, after_maps=lambda: t.send("u", "unmapped"))
        pm = snap.pagemap.to_pandas()
        inside = (pm.vaddr_end > lo) & (pm.vaddr_start < hi)
        assert not inside.any()
        assert snap.info["vanished_mappings"] and snap.maps.num_rows == snap.info["vmas"]
        # the next snapshot sees the remaining first half, touched as before
        snap = cap.snapshot(1)
        present, _, _ = _page_states(snap.pagemap.to_pandas(), lo, lo + t.npages // 2 * PAGE)
        assert (present == np.array([i % 3 != 2 for i in range(t.npages // 2)])).all()


def test_errors_no_process_and_nothing_written(tmp_path):
    p = subprocess.Popen(["true"])
    p.wait()
    with pytest.raises(CaptureError, match="no such process"):
        capture(tmp_path / "n.td", pid=p.pid, count=1)
    assert not (tmp_path / "n.td").exists() and not list(tmp_path.iterdir())


def test_cli_command_mode_until_exit(target_bin, tmp_path):
    from tracedamon.cli import main

    out = tmp_path / "c.td"
    rc = main(
        [
            "snapshot",
            "--interval",
            "50ms",
            "-o",
            str(out),
            "--",
            str(target_bin),
            "pattern",
            "60",
            "300",
        ]
    )
    assert rc == 0
    t = open_trace(out)
    pm = t.df("pagemap")
    assert pm.snapshot.nunique() >= 2
    meta = t.meta["pagemap"]
    assert meta["cmd"][0] == str(target_bin) and meta["stopped_by"] == "exit"


def test_cli_errors_are_one_line(tmp_path, capsys):
    from tracedamon.cli import main

    p = subprocess.Popen(["true"])
    p.wait()
    rc = main(["snapshot", "--pid", str(p.pid), "-o", str(tmp_path / "e.td")])
    err = capsys.readouterr().err
    assert rc == CaptureError.exit_code and err.count("\n") == 1 and "no such process" in err
    rc = main(["snapshot", "-o", str(tmp_path / "e.td")])
    assert rc != 0 and "give --pid" in capsys.readouterr().err


@pytest.mark.skipif(
    not IS_ROOT or shutil.which("setpriv") is None,
    reason="needs root and setpriv to capture once without CAP_SYS_ADMIN",
)
def test_without_cap_sys_admin_frames_are_unknown(target_bin, tmp_path):
    """The kernel zeroes PFNs for readers without CAP_SYS_ADMIN: presence is kept, frames not."""
    out = tmp_path / "u.td"
    r = subprocess.run(
        [
            "setpriv",
            "--bounding-set",
            "-sys_admin",
            "--inh-caps",
            "-sys_admin",
            sys.executable,
            "-m",
            "tracedamon",
            "snapshot",
            "--interval",
            "50ms",
            "-o",
            str(out),
            "--",
            str(target_bin),
            "pattern",
            "30",
            "200",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert "frames as 0" in r.stderr and "CAP_SYS_ADMIN" in r.stderr
    t = open_trace(out)
    pm = t.df("pagemap")
    present = (pm["flags"] & PAGEMAP_FLAG_PRESENT) != 0
    assert present.any() and pm.pfn_start.isna().all()
    assert t.meta["pagemap"]["pfns_known"] is False
    # a translator built on it translates nothing
    tr = Translator.from_tables(t.table("pagemap"))
    row = pm[present].iloc[0]
    assert tr.virt_to_phys([row.pid], [row.vaddr_start], [row.time_ns])[0] == 0


def _thp_enabled() -> str:
    try:
        return Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return ""


def _smaps_anon_huge(pid, start) -> int:
    """AnonHugePages (bytes) of the VMA starting at ``start``, from /proc/PID/smaps."""
    cur = None
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        f = line.split()
        if "-" in f[0] and len(f) >= 5 and not f[0].endswith(":"):
            cur = int(f[0].split("-")[0], 16)
        elif f[0] == "AnonHugePages:" and cur == start:
            return int(f[1]) * 1024
    return 0


def test_thp_mapping(target_bin, tmp_path):
    mode = _thp_enabled()
    if "[never]" in mode or not mode:
        pytest.skip(f"transparent huge pages are off ({mode.strip() or 'no THP sysfs'})")
    t = Target(target_bin, "thp", 1024)  # 4 MiB, 2 MiB-aligned, MADV_HUGEPAGE
    try:
        huge = _smaps_anon_huge(t.pid, t.buf)
        if huge == 0:
            pytest.skip(
                "the kernel gave no huge page to the MADV_HUGEPAGE buffer "
                f"(THP mode {mode.strip()}; AnonHugePages 0)"
            )
        capture(tmp_path / "h.td", pid=t.pid, count=1)
        huge_after = _smaps_anon_huge(t.pid, t.buf)
    finally:
        t.stop()
    tr_dir = open_trace(tmp_path / "h.td")
    pm = tr_dir.df("pagemap")
    lo, hi = t.buf, t.buf + t.npages * PAGE
    present, pfn, flags = _page_states(pm, lo, hi)
    assert present.all()
    if not tr_dir.meta["pagemap"]["kpageflags"] == "read" or not IS_ROOT:
        pytest.skip(
            "THP flags come from /proc/kpageflags by frame number: they need root "
            "(CAP_SYS_ADMIN); presence was checked"
        )
    thp_bytes = int(((flags & PAGEMAP_FLAG_THP) != 0).sum()) * PAGE
    assert thp_bytes in (huge, huge_after)
    # each 2 MiB THP: 512 contiguous frames starting at a 2 MiB-aligned frame
    thp_pages = np.flatnonzero(flags & PAGEMAP_FLAG_THP)
    for first in thp_pages[::512]:
        assert (lo + first * PAGE) % (2 << 20) == 0
        assert pfn[first] % 512 == 0
        assert (np.diff(pfn[first : first + 512]) == 1).all()
    if IS_ROOT:
        assert {i: int(pfn[i]) for i in range(t.npages)} == t.pfns
        tr = Translator.from_tables(tr_dir.table("pagemap"))
        va = np.arange(lo, hi, 4099, dtype=np.uint64)
        when = int(pm.time_ns.max())
        paddr = tr.virt_to_phys(t.pid, va, when)
        exp = np.array(
            [t.pfns[(v - lo) // PAGE] * PAGE + (v - lo) % PAGE for v in va.tolist()], np.uint64
        )
        assert (paddr == exp).all()
        pids, back = tr.phys_to_virt(paddr, when)
        assert (pids == t.pid).all() and (back == va).all()


def test_chunked_reads_give_the_same_runs(target_bin, monkeypatch):
    """An idle target read with 7-page preads (runs joined across chunks) and whole VMAs.

    The target's MADV_HUGEPAGE buffer gives runs of 512 contiguous frames when the
    kernel backs it with huge pages, so runs straddle chunk boundaries."""
    from tracedamon.ingest import pagemap_capture as pm

    t = Target(target_bin, "thp", 1024)
    try:
        with PagemapCapture(t.pid) as cap:
            sa = cap.snapshot(0)
            monkeypatch.setattr(pm, "CHUNK_PAGES", 7)
            b = cap.snapshot(1).pagemap.to_pandas()
    finally:
        t.stop()
    a = sa.pagemap.to_pandas()
    lo, hi = t.buf, t.buf + t.npages * PAGE

    def buffer_rows(d):
        d = d[(d.vaddr_start >= lo) & (d.vaddr_end <= hi)]
        return d.drop(columns=["snapshot", "time_ns"]).reset_index(drop=True)

    ra, rb = buffer_rows(a), buffer_rows(b)
    assert int((ra.vaddr_end - ra.vaddr_start).sum()) == hi - lo
    assert ra.equals(rb)
    # the comparison means something only if some run straddles a 7-page chunk boundary
    maps = sa.maps.to_pandas()
    vma_start = int(maps[(maps.start <= lo) & (maps.end >= hi)].start.iloc[0])
    first = (ra.vaddr_start.to_numpy() - vma_start) // PAGE
    last = (ra.vaddr_end.to_numpy() - vma_start) // PAGE - 1
    if not (first // 7 != last // 7).any():
        pytest.skip(
            "no run of the buffer crosses a chunk boundary (no physically "
            "contiguous frames: no THP given); the equality above still held"
        )


def test_duration_bounds_the_number_of_snapshots(pattern_target, tmp_path):
    res = capture(tmp_path / "d.td", pid=pattern_target.pid, interval="30ms", duration="100ms")
    # snapshots sit on a 30 ms grid from the first and none starts after 100 ms: at most 4
    assert res.stopped_by == "duration" and 1 <= res.snapshots <= 4
    t = open_trace(tmp_path / "d.td")
    times = sorted(t.df("maps").groupby("snapshot").time_ns.first())
    assert len(times) == res.snapshots and times[-1] - times[0] <= 100_000_000


def test_sigint_stops_and_commits(pattern_target, tmp_path):
    out = tmp_path / "i.td"
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tracedamon",
            "snapshot",
            "--pid",
            str(pattern_target.pid),
            "--interval",
            "50ms",
            "-o",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # wait until the first snapshot is in the temporary directory, then Ctrl-C
    _poll(
        lambda: any(q.name == "pagemap.parquet" for q in tmp_path.glob(".i.td*/*")),
        tries=1200,
        step=0.05,
    )
    time.sleep(0.2)
    p.send_signal(2)
    so, se = p.communicate(timeout=60)
    assert p.returncode == 0, se
    assert "stopped by interrupt" in so
    t = open_trace(out)
    assert t.meta["pagemap"]["stopped_by"] == "interrupt"
    n = t.df("pagemap").snapshot.nunique()
    assert n >= 1 and n == t.df("maps").snapshot.nunique() == len(t.meta["pagemap"]["snapshots"])


def test_several_pids_one_exits(target_bin, tmp_path):
    a = Target(target_bin, "pattern", 30)
    b = Target(target_bin, "pattern", 60)

    def after(k, snap):
        if k == 1 and snap.info["pid"] == b.pid:
            a.send("q")
            a.proc.wait()

    try:
        with pytest.warns(CaptureWarning, match=f"pid {a.pid}"):
            res = capture(
                tmp_path / "m.td", pid=[a.pid, b.pid], interval="20ms", count=4, on_snapshot=after
            )
    finally:
        a.stop()
        b.stop()
    assert res.snapshots == 4 and res.stopped_by == "count"
    t = open_trace(tmp_path / "m.td")
    pm = t.df("pagemap")
    per_pid = pm.groupby("pid").snapshot.unique().apply(sorted).to_dict()
    assert per_pid == {a.pid: [0, 1], b.pid: [0, 1, 2, 3]}
    assert t.meta["pagemap"]["pids"] == [a.pid, b.pid]
    if IS_ROOT:  # each process's frames translate back to that process
        tr = Translator.from_tables(t.table("pagemap"))
        for tg in (a, b):
            idx = np.array(sorted(tg.pfns))
            when = int(pm[pm.pid == tg.pid].time_ns.min())
            pids, va = tr.phys_to_virt(np.array([tg.pfns[i] for i in idx], np.uint64) * PAGE, when)
            assert (pids == tg.pid).all() and (va == tg.buf + idx * PAGE).all()


@pytest.mark.skipif(
    not IS_ROOT or shutil.which("setpriv") is None,
    reason="needs root and setpriv to run a target as another user",
)
def test_other_users_process_is_a_clear_error(tmp_path):
    """Without ptrace rights over the target (another user, no capabilities): one-line error."""
    target = subprocess.Popen(
        ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "sleep", "30"]
    )
    try:
        time.sleep(0.2)
        r = subprocess.run(
            [
                "setpriv",
                "--bounding-set",
                "-all",
                "--inh-caps",
                "-all",
                sys.executable,
                "-m",
                "tracedamon",
                "snapshot",
                "--pid",
                str(target.pid),
                "--count",
                "1",
                "-o",
                str(tmp_path / "o.td"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        target.kill()
        target.wait()
    assert r.returncode == CaptureError.exit_code
    assert r.stderr.strip().count("\n") == 0 and "permission denied" in r.stderr
    assert not (tmp_path / "o.td").exists()


def test_clock_choice(pattern_target, tmp_path):
    before = time.clock_gettime_ns(time.CLOCK_REALTIME)
    capture(
        tmp_path / "r.td", pid=pattern_target.pid, count=2, interval="10ms", clock="CLOCK_REALTIME"
    )
    after = time.clock_gettime_ns(time.CLOCK_REALTIME)
    t = open_trace(tmp_path / "r.td")
    assert t.meta["pagemap"]["clock"] == "CLOCK_REALTIME"
    times = t.df("pagemap").time_ns
    assert before <= times.min() and times.max() <= after
    with pytest.raises(InputError, match="unknown clock"):
        capture(tmp_path / "x.td", pid=pattern_target.pid, count=1, clock="jiffies")
