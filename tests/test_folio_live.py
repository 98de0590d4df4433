"""Folios from a live snapshot of a process that got a transparent huge page.

The target (tests/helpers/pagemap_target.c, mode "thp") writes a 4 MiB, 2 MiB-aligned
MADV_HUGEPAGE buffer and prints its own frames.  Oracles: the kernel's AnonHugePages
for the buffer's VMA in /proc/PID/smaps (bytes mapped by PMD-mapped THPs) and the
target's self-read frames.
"""

from __future__ import annotations

import numpy as np
import pytest

from test_pagemap_live import IS_ROOT, Target, _smaps_anon_huge, _thp_enabled, target_bin  # noqa: F401
from tracedamon.engine.folio import MODEL_FOLIOS, PMD_PAGES, FolioModel
from tracedamon.pipeline.replay import replay
from tracedamon.ingest.pagemap_capture import capture
from tracedamon.schema import PAGEMAP_FLAG_COMPOUND_HEAD, PAGEMAP_FLAG_THP
from tracedamon.store.trace import open_trace

PAGE = 4096
MB2 = 2 << 20


def test_live_thp_snapshot_gives_pmd_folios(target_bin, tmp_path):  # noqa: F811
    mode = _thp_enabled()
    if "[never]" in mode or not mode:
        pytest.skip(f"transparent huge pages are off ({mode.strip() or 'no THP sysfs'})")
    if not IS_ROOT:
        pytest.skip("THP flags come from /proc/kpageflags: they need CAP_SYS_ADMIN")
    t = Target(target_bin, "thp", 1024)
    try:
        huge = _smaps_anon_huge(t.pid, t.buf)
        if huge == 0:
            pytest.skip("the kernel gave no huge page to the MADV_HUGEPAGE buffer")
        capture(tmp_path / "h.td", pid=t.pid, count=1)
        huge_after = _smaps_anon_huge(t.pid, t.buf)
    finally:
        t.stop()
    assert huge == huge_after, "THP state changed during the capture"
    tr = open_trace(tmp_path / "h.td")
    pm = tr.table("pagemap")
    lo, hi = t.buf, t.buf + t.npages * PAGE
    model = FolioModel(pm, [t.pid], False)
    assert model.large and model.stats["heads_recorded"]
    sel = (model.lo >= lo) & (model.hi <= hi)
    whole = sel & (model.whole == 1)
    # every PMD-mapped THP the kernel counts is a whole 2 MiB folio of the model
    assert int(whole.sum()) * MB2 == huge
    assert ((model.hi - model.lo)[whole] == MB2).all() and (model.fsz[whole] == MB2).all()
    for a in model.lo[whole].tolist():
        assert a % MB2 == 0
        assert t.pfns[(a - lo) // PAGE] % PMD_PAGES == 0  # the head frame
    # the capture marks the head page of each: one head per THP, at its first page
    f = pm.to_pandas()
    f = f[(f.pid == t.pid) & (f.vaddr_start >= lo) & (f.vaddr_end <= hi)]
    heads = f[(f["flags"] & PAGEMAP_FLAG_COMPOUND_HEAD) != 0]
    assert sorted(heads.vaddr_start.tolist()) == sorted(model.lo[whole].tolist())
    assert ((heads["flags"] & PAGEMAP_FLAG_THP) != 0).all()

    # replay: one sample in the last page of each THP per 1 ms, over 100 ms: with folios
    # every region inside a THP is accessed in every sample interval
    t_snap = int(f.time_ns.min())
    times = np.arange(t_snap, t_snap + 100_000_000, 1_000_000)
    thps = model.lo[whole].tolist()
    addr = np.array([thps[i % len(thps)] + MB2 - PAGE for i in range(times.size)], np.uint64)
    n = times.size
    s = {
        "time_ns": times,
        "pid": np.full(n, t.pid, np.int32),
        "event": ["e"] * n,
        "addr": addr,
        "phys_addr": np.zeros(n, np.uint64),
    }
    kw = dict(
        ops="fvaddr",
        pids=[t.pid],
        ranges=[f"{lo:#x}-{hi:#x}"],
        access="abit",
        sample_us=5000,
        aggr_us=50000,
        min_region=0x10000,
        max_region=0x10000,
    )
    h = replay(s, pagemap=pm, **kw)
    assert h.metadata["folio_model"] == MODEL_FOLIOS
    df = h.df
    inside = np.zeros(len(df), bool)
    for a in thps:
        inside |= (df.start >= a) & (df.end <= a + MB2)
    assert inside.any() and (df.nr_accesses[inside] == 10).all()
    h4 = replay(s, pagemap=pm, folios="4k", **kw)
    assert h4.df.nr_accesses[inside].max() < 10
