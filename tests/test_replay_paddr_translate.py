"""paddr replays of virtual samples: `--ops paddr --access perf --pagemap DIR`.

Each sample's virtual address is translated to its frame through the pagemap snapshots
of its pid: the snapshot nearest in time among those in which the page is present.
Oracles: the same translation done by hand with `Translator.virt_to_phys` (one
snapshot at a time, then the nearest that maps the page), replayed as physical samples
(`--access perf-phys`); and, on the real paddr run of the corpus, the workload's
ground-truth frames (ground_truth_pfn_runs.tsv).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import need_corpus

import tracedamon
from tracedamon.cli import main
from tracedamon.pipeline.replay import replay
from tracedamon.engine.translate import Translator
from tracedamon.ingest import ingest
from tracedamon.store.writer import read_parquet_metadata

PAGE = 4096
RUN1 = ("damon-paddr-run1", "paddr_run1")


def by_hand(tbl: pa.Table, pm) -> pa.Table:
    """The samples with phys_addr translated by hand: each snapshot on its own through
    ``Translator.virt_to_phys``, then per sample the nearest snapshot in time among those
    that map its page (ties: the earlier) -- a distance matrix, samples x snapshots."""
    pm = pd.DataFrame(pm)
    pid = tbl.column("pid").to_numpy(zero_copy_only=False).astype(np.int64)
    va = tbl.column("addr").to_numpy(zero_copy_only=False).astype(np.uint64)
    t = tbl.column("time_ns").to_numpy(zero_copy_only=False).astype(np.int64)
    snaps = pm.groupby("snapshot").time_ns.min().sort_values(kind="stable")
    each = np.stack(
        [Translator(pm[pm.snapshot == s]).virt_to_phys(pid, va, t) for s in snaps.index], axis=1
    )
    dist = np.abs(t[:, None].astype(np.float64) - snaps.to_numpy()[None, :])
    dist[each == 0] = np.inf
    best = np.argmin(dist, axis=1)
    phys = each[np.arange(t.size), best]
    keep = phys != 0
    out = tbl.filter(pa.array(keep))
    col = pa.array(phys[keep].astype(np.uint64))
    if "phys_addr" in out.column_names:
        return out.set_column(out.column_names.index("phys_addr"), "phys_addr", col)
    return out.append_column("phys_addr", col)


def synthetic(n=6000, seed=0):
    """Virtual samples of pid 42 over 256 pages, two pagemap snapshots: at 0.5 s only the
    first 128 pages are present, at 1.5 s all (the later half faults in between, like a
    population phase), with different frames for a few pages (a migration)."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, 2_000_000_000, n))
    vpage = np.where(rng.random(n) < 0.6, rng.integers(0, 16, n), rng.integers(16, 256, n))
    base = 0x7F0000000000
    tbl = pa.table(
        {
            "time_ns": pa.array(t, pa.int64()),
            "pid": pa.array(np.full(n, 42), pa.int32()),
            "event": pa.array(["page-faults"] * n),
            "addr": pa.array((base + vpage * PAGE + 17).astype(np.uint64)),
        }
    )
    rows = []
    for snap, tm, npg in ((0, 500_000_000, 128), (1, 1_500_000_000, 256)):
        pfn = 0x10000 + (np.arange(256) * 7919) % 4096
        if snap == 1:
            pfn[:8] += 5000  # migrated
        rows.append(
            pd.DataFrame(
                {
                    "snapshot": snap,
                    "time_ns": tm,
                    "pid": 42,
                    "vaddr_start": base + np.arange(npg) * PAGE,
                    "vaddr_end": base + (np.arange(npg) + 1) * PAGE,
                    "pfn_start": pfn[:npg],
                    "flags": 1,
                }
            )
        )
    return tbl, pd.concat(rows, ignore_index=True)


@pytest.mark.parametrize("access", ["perf", "abit"])
def test_virtual_samples_replay_as_their_frames(access):
    tbl, pm = synthetic()
    hand = by_hand(tbl, pm)
    assert hand.num_rows == tbl.num_rows  # every page is present in some snapshot
    kw = dict(ops="paddr", ranges=["0x10000000-0x12000000"], seed=4)
    got = replay(tbl, access=access, pagemap=pm, **kw)
    want = replay(hand, access="perf-phys" if access == "perf" else "abit", **kw)
    assert got.table.equals(want.table)
    assert got.df.nr_accesses.max() > 0
    assert got.metadata["address_source"].startswith("virtual, translated to physical")
    assert want.metadata["address_source"] == "physical"
    # the nearest snapshot alone misses the later half's early faults (not yet present)
    nearest = Translator(pm).virt_to_phys(
        np.full(tbl.num_rows, 42), tbl.column("addr").to_numpy(), tbl.column("time_ns").to_numpy()
    )
    assert (nearest == 0).sum() > 100


@pytest.fixture(scope="module")
def run1(tmp_path_factory):
    d = tmp_path_factory.mktemp("run1")
    pf = ingest(need_corpus(*RUN1, "perf_pagefaults.data"), d / "pf.td")
    pm = ingest(need_corpus(*RUN1), d / "pm.td", format="pagemap")
    return pf, pm


def truth_frames() -> dict[int, int]:
    """Workload page (vaddr) -> frame, from ground_truth_pfn_runs.tsv."""
    out = {}
    for line in need_corpus(*RUN1, "ground_truth_pfn_runs.tsv").read_text().splitlines():
        if line.startswith("#"):
            continue
        _, va, pfn, n = line.split("\t")
        va, pfn, n = int(va, 16), int(pfn, 16), int(n)
        for k in range(n):
            out[va + k * PAGE] = pfn + k
    return out


def test_real_paddr_run_from_page_fault_samples(run1, tmp_path, capsys):
    """perf_pagefaults.data (virtual addresses of the workload's population faults)
    with the run's pagemap snapshots, replayed as paddr from the command line."""
    pf, pm = run1
    out = tmp_path / "paddr.parquet"
    assert (
        main(["replay", str(pf), "--ops", "paddr", "--pagemap", str(pm), "-o", str(out), "-q"]) == 0
    )
    got = tracedamon.open_trace(out).table("paddr")
    samples = tracedamon.open_trace(pf).table(
        "samples", columns=["time_ns", "pid", "event", "addr"]
    )
    pmdf = tracedamon.open_trace(pm).df("pagemap")
    hand = by_hand(samples, pmdf)
    assert hand.num_rows == samples.num_rows == 16383
    # the by-hand translation agrees with the ground truth for the workload buffer
    truth = truth_frames()
    va = hand.column("addr").to_numpy() // PAGE * PAGE
    ph = hand.column("phys_addr").to_numpy() // PAGE
    inbuf = np.array([v in truth for v in va.tolist()])
    assert inbuf.sum() > 16000
    assert all(truth[v] == p for v, p in zip(va[inbuf].tolist(), ph[inbuf].tolist()))
    meta = read_parquet_metadata(out)["replay"]
    rg = [tuple(r) for r in meta["targets"][0]["ranges"]]
    want = replay(hand, ops="paddr", access="perf-phys", ranges=rg)
    assert got.select(want.table.column_names).equals(want.table)
    assert meta["samples_used"] == 16383
    # accessed regions hold workload frames
    frames = np.array(sorted(set(truth.values())), np.int64) * PAGE
    df = got.to_pandas()
    acc = df[df.nr_accesses > 0]
    assert len(acc)
    i = np.searchsorted(frames, acc.start.to_numpy(np.int64))
    assert (i < frames.size).all() and (
        frames[np.minimum(i, frames.size - 1)] < acc.end.to_numpy(np.int64)
    ).all()


@pytest.mark.parametrize("seed", range(5))
def test_virt_to_phys_present_equals_the_slow_rule(seed):
    """Random presence over five snapshots (and a second pid): the translator's
    nearest-present rule equals the distance-matrix reference."""
    rng = np.random.default_rng(seed)
    rows = []
    times = np.sort(rng.choice(np.arange(0, 10_000_000_000, 1_000_000), 5, replace=False))
    for snap, tm in enumerate(times):
        for pid in (42, 43):
            present = rng.random(64) < 0.4
            pg = np.flatnonzero(present)
            rows.append(
                pd.DataFrame(
                    {
                        "snapshot": snap,
                        "time_ns": tm,
                        "pid": pid,
                        "vaddr_start": 0x7F0000000000 + pg * PAGE,
                        "vaddr_end": 0x7F0000000000 + (pg + 1) * PAGE,
                        "pfn_start": 0x1000 + snap * 100 + pg,
                        "flags": 1,
                    }
                )
            )
    pm = pd.concat(rows, ignore_index=True)
    n = 3000
    tbl = pa.table(
        {
            "time_ns": pa.array(np.sort(rng.integers(0, 11_000_000_000, n))),
            "pid": pa.array(rng.choice([42, 43, 44], n).astype(np.int32)),
            "addr": pa.array(
                (0x7F0000000000 + rng.integers(0, 64, n) * PAGE + rng.integers(0, PAGE, n)).astype(
                    np.uint64
                )
            ),
        }
    )
    got = Translator(pm).virt_to_phys_present(
        tbl.column("pid").to_numpy(),
        tbl.column("addr").to_numpy(),
        tbl.column("time_ns").to_numpy(),
    )
    want = by_hand(tbl, pm)
    assert (got != 0).sum() == want.num_rows and (
        got[tbl.column("pid").to_numpy() == 44] == 0
    ).all()
    assert (got[got != 0] == want.column("phys_addr").to_numpy()).all()
