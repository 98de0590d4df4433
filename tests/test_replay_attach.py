"""vaddr replays of attach-mode recordings (`perf record -p PID`) see the kernel's VMAs.

`perf record -p PID` synthesizes MMAP records from /proc/PID/maps, which lists the
x86-64 `[vsyscall]` gate page at 0xffffffffff600000.  The kernel's VMA walk never sees
that page (it belongs to no mm), so DAMON's three regions are built without it.
Oracles: /proc/PID/maps of the running workload (read by the test while perf is
attached), the three-regions rule of the spec (§10.1) applied to it here, and the
workload's own layout (sample_traces/src/hotcold.c: 32 hot pages at 0x200000000000
faulted every 10 ms, 256 cold pages after them).
"""

from __future__ import annotations

import shutil
import signal
import subprocess

import numpy as np
import pandas as pd
import pytest
from conftest import SAMPLES, need_corpus, requires_perf

import tracedamon
from tracedamon.engine.access import StreamedSamples
from tracedamon.pipeline.samples import virtual_samples
from tracedamon.engine.address import ENGINE_LIMIT, user_limit, user_vma_mask
from tracedamon.engine.core import AccessSamples
from tracedamon.engine.ops.vaddr import VmaTimeline, three_regions
from tracedamon.pipeline.replay import replay
from tracedamon.errors import ConfigError
from tracedamon.ingest import ingest

PAGE = 4096
HOT = 0x200000000000
HOT_END = HOT + 32 * PAGE
VSYSCALL = 0xFFFFFFFFFF600000


def spec_three_regions(vmas):
    """Spec §10.1, written out: cut the two biggest gaps between sorted VMAs."""
    vmas = sorted(vmas)
    gaps = sorted(
        ((vmas[i][0] - vmas[i - 1][1], i) for i in range(1, len(vmas))), key=lambda g: (-g[0], g[1])
    )[:2]
    (_, i), (_, j) = sorted(gaps, key=lambda g: g[1])
    return [(vmas[0][0], vmas[i - 1][1]), (vmas[i][0], vmas[j - 1][1]), (vmas[j][0], vmas[-1][1])]


# -- unit level: which mappings the VMA walk sees -------------------------------------------
def mmaps_frame(rows):
    return pd.DataFrame(
        {
            "time_ns": [0] * len(rows),
            "pid": [7] * len(rows),
            "start": np.array([r[0] for r in rows], np.uint64),
            "length": np.array([r[1] for r in rows], np.uint64),
            "filename": [r[2] for r in rows],
        }
    )


USER = [
    (0x555555554000, 0x1000, "/bin/prog"),
    (0x555555560000, 0x21000, "[heap]"),
    (0x7F0000000000, 0x200000, "//anon"),
    (0x7FFFFFFDE000, 0x21000, "[stack]"),
]


@pytest.mark.parametrize(
    "extra",
    [
        [(VSYSCALL, 0x1000, "[vsyscall]")],
        [(0xFFFFFFFF81000000, 0x1200000, "[kernel.kallsyms]_text")],  # kernel half
        [(0x0100000000000000, 0x1000, "//anon")],  # above x86-64's 5-level TASK_SIZE
        [(0x7FF000000000, 0x1000, "[vsyscall]")],  # a gate area by name
    ],
)
def test_mappings_the_vma_walk_does_not_see_are_left_out(extra):
    want = three_regions(np.array([(s, s + n) for s, n, _ in USER]))
    tl = VmaTimeline(7, mmaps_frame(USER + extra), arch="x86_64")
    assert tl.ranges_at(0).tolist() == want.tolist()
    assert [(s, e) for s, e, _ in tl.dropped] == [(s, s + n) for s, n, _ in extra]
    # the same from /proc/PID/maps snapshots (path instead of filename)
    rows = USER + extra
    maps = pd.DataFrame(
        {
            "snapshot": 0,
            "time_ns": 5,
            "pid": 7,
            "start": np.array([s for s, _, _ in rows], np.uint64),
            "end": np.array([s + n for s, n, _ in rows], np.uint64),
            "path": [p for _, _, p in rows],
        }
    )
    tl = VmaTimeline(7, None, maps, arch="x86_64")
    assert tl.source == "maps" and tl.ranges_at(10).tolist() == want.tolist()


def test_user_limit_per_architecture():
    assert user_limit("x86_64") == 0x00FFFFFFFFFFF000
    assert user_limit("aarch64") == 1 << 52
    assert user_limit(None) == user_limit("s390x") == 1 << 63
    # the top-most x86-64 user page (5-level) is kept, the next page is not
    top = 0x00FFFFFFFFFFF000
    assert user_vma_mask([top - PAGE, top], [top, top + PAGE], None, "x86_64").tolist() == [
        True,
        False,
    ]
    # aarch64 VMAs above 2**48 (52-bit VAs) are real
    assert user_vma_mask([1 << 50], [(1 << 50) + PAGE], None, "aarch64").tolist() == [True]


def test_kernel_addresses_never_reach_the_engine_as_negative_numbers():
    import pyarrow as pa

    addr = np.array([HOT, VSYSCALL, 0xFFFF888000000000, HOT + PAGE], np.uint64)
    tbl = pa.table(
        {
            "time_ns": pa.array([1, 2, 3, 4], pa.int64()),
            "pid": pa.array([7] * 4, pa.int32()),
            "addr": pa.array(addr),
            "phys_addr": pa.array(np.full(4, 0x100000, np.uint64)),
        }
    )
    t, g, a = virtual_samples(tbl, [7])
    assert t.tolist() == [1, 4] and a.tolist() == [HOT, HOT + PAGE] and (a >= 0).all()
    acc = AccessSamples(np.arange(4), np.zeros(4), addr)
    assert acc.page.tolist() == [HOT, HOT + PAGE] and acc.time_ns.tolist() == [0, 3]
    st = StreamedSamples([(np.arange(4), np.zeros(4, np.int64), addr)], 0)
    assert st.window(0, 10)[2].tolist() == [HOT, HOT + PAGE]
    # ranges past the engine's bound are refused, not wrapped
    with pytest.raises(ConfigError, match="2\\*\\*63"):
        replay(tbl, ops="fvaddr", ranges=[(VSYSCALL, VSYSCALL + PAGE)])
    with pytest.raises(ConfigError, match="2\\*\\*63"):
        replay(
            tbl,
            ops="paddr",
            access="perf-phys",
            ranges=[(ENGINE_LIMIT - PAGE, ENGINE_LIMIT + PAGE)],
        )


# -- a real attach-mode recording from the corpus ------------------------------------------
@pytest.fixture(scope="module")
def corpus_attach(tmp_path_factory):
    f = need_corpus("damon-paddr-run1", "paddr_run1", "perf_pagefaults.data")
    return ingest(f, tmp_path_factory.mktemp("pf") / "pf.td")


def test_corpus_attach_recording_monitors_the_process_not_the_gate_page(corpus_attach, tmp_path):
    """perf_pagefaults.data: `perf record -e page-faults -d -c 8 -p 7727`, whose MMAPs
    include [vsyscall]; its pagemap snapshots' maps files list the process's VMAs."""
    mm = tracedamon.open_trace(corpus_attach).df("mmaps")
    assert (mm.filename == "[vsyscall]").any()  # perf did synthesize it
    maps_file = need_corpus("damon-paddr-run1", "paddr_run1", "pagemap_snap1.maps")
    vmas = []
    for line in maps_file.read_text().splitlines():
        rng, *rest = line.split()
        if rest[-1] == "[vsyscall]":
            continue
        s, e = (int(x, 16) for x in rng.split("-"))
        vmas.append((s, e))
    h = replay(corpus_attach, pids=[7727])
    t = h.metadata["targets"][0]
    assert [tuple(r) for r in t["initial_ranges"]] == spec_three_regions(vmas)
    assert t["mappings_left_out"] == [
        {"start": VSYSCALL, "end": VSYSCALL + PAGE, "name": "[vsyscall]"}
    ]
    span = sum(e - s for s, e in t["initial_ranges"])
    assert span < 2 << 30  # about 1 GiB, not 128 TiB
    df = h.df
    assert (df.end.astype(np.uint64) <= np.uint64(user_limit("x86_64"))).all()
    # the population phase is seen: the 512 MiB buffer's faults make regions accessed
    assert df.nr_accesses.max() > 0
    _round_trip(h, tmp_path)


def _round_trip(h, tmp_path):
    """The replay as DAMON trace text is read back by tracedamon's DAMON ingest."""
    txt = h.to_damon_trace(tmp_path / "replay.damon.txt")
    back = tracedamon.open_trace(ingest(txt, tmp_path / "back.td", format="damon")).df("regions")
    cols = ["snapshot", "time_ns", "target", "start", "end", "nr_accesses", "age"]
    assert back[cols].reset_index(drop=True).equals(h.df[cols].reset_index(drop=True))


# -- live recordings made here with the real perf -------------------------------------------
@pytest.fixture(scope="module")
def hotcold_bin(tmp_path_factory):
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    out = tmp_path_factory.mktemp("bin") / "hotcold"
    subprocess.run(["gcc", "-O1", "-o", str(out), str(SAMPLES / "src" / "hotcold.c")], check=True)
    return out


def proc_vmas(pid: int) -> list[tuple[int, int, str]]:
    out = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split()
            s, e = (int(x, 16) for x in parts[0].split("-"))
            out.append((s, e, parts[5] if len(parts) > 5 else ""))
    return out


def record_attached(binary, tmp) -> tuple:
    """perf record -p of a running hotcold; returns (perf.data, pid, its /proc maps)."""
    data = tmp / "attach.data"
    # 3 s of work: perf may take a while to attach on a busy machine
    w = subprocess.Popen([str(binary), "-d", "3000"], stderr=subprocess.PIPE, text=True)
    try:
        assert w.stderr.readline().startswith("hotcold base=")  # mapped and populated
        vmas = proc_vmas(w.pid)
        p = subprocess.Popen(
            [
                "perf",
                "record",
                "-q",
                "-e",
                "page-faults",
                "-c",
                "1",
                "-d",
                "-p",
                str(w.pid),
                "-o",
                str(data),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        w.wait(timeout=30)
        try:
            p.wait(timeout=30)  # perf -p ends when its target exits
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGINT)
            p.wait(timeout=30)
    finally:
        if w.poll() is None:
            w.kill()
            w.wait()
    return data, w.pid, vmas


def check_replays(td, pid, tmp, **kw):
    """perf and abit replays of pid see the hot pages; no region leaves user space."""
    hp = replay(td, pids=[pid], sample_us=10_000, **kw)
    ha = replay(td, pids=[pid], sample_us=10_000, access="abit", seed=1, **kw)
    for h in (hp, ha):
        df = h.df
        assert h.n_snapshots >= 5 and len(df)
        assert (df.end.astype(np.uint64) <= np.uint64(user_limit("x86_64"))).all()
        hot = df[(df.start.astype(np.int64) <= HOT) & (df.end.astype(np.int64) > HOT)]
        seen = hot.groupby("snapshot").nr_accesses.max()
        seen = seen.reindex(range(h.n_snapshots), fill_value=0)
        if h.metadata["access"] == "perf":
            # the hot page is faulted every 10 ms: accessed in (nearly) every snapshot
            assert (seen > 0).sum() >= h.n_snapshots - 2, (h.metadata["access"], seen)
        else:
            # the accessed-bit check looks at one random page of a region per interval: while
            # the regions are still large (the first aggregations) it may miss the hot page;
            # once they have split around it, it sees it (nearly) every time
            late = seen.iloc[h.n_snapshots // 2 :]
            assert (late > 0).sum() >= len(late) - 1, (h.metadata["access"], seen)
    _round_trip(hp, tmp)
    return hp, ha


@requires_perf
def test_live_attach_recording(hotcold_bin, tmp_path):
    data, pid, vmas = record_attached(hotcold_bin, tmp_path)
    td = ingest(data, tmp_path / "attach.td")
    mm = tracedamon.open_trace(td).df("mmaps")
    assert ((mm.pid == pid) & (mm.filename == "[vsyscall]")).any()
    hp, _ = check_replays(td, pid, tmp_path, start_ns="auto")
    t = hp.metadata["targets"][0]
    user = [(s, e) for s, e, name in vmas if name != "[vsyscall]"]
    assert [tuple(r) for r in t["initial_ranges"]] == spec_three_regions(user)
    assert t["initial_ranges"][0] == [HOT, HOT + 288 * PAGE]  # the workload's area
    assert [m["name"] for m in t["mappings_left_out"]] == ["[vsyscall]"]


@requires_perf
def test_live_command_recording(hotcold_bin, tmp_path):
    data = tmp_path / "cmd.data"
    subprocess.run(
        [
            "perf",
            "record",
            "-q",
            "-e",
            "page-faults",
            "-c",
            "1",
            "-d",
            "-o",
            str(data),
            "--",
            str(hotcold_bin),
            "-d",
            "1500",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    td = ingest(data, tmp_path / "cmd.td")
    pid = int(tracedamon.open_trace(td).df("samples").pid.mode()[0])
    hp, _ = check_replays(td, pid, tmp_path, start_ns="auto")
    t = hp.metadata["targets"][0]
    assert t["initial_ranges"][0] == [HOT, HOT + 288 * PAGE]
    assert "mappings_left_out" not in t  # perf -- cmd records no gate page
