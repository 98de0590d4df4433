"""Benchmark: rasterising and comparing region histories.

1. ``raster`` (vectorised numpy) against a straightforward per-region Python loop
   that visits only the cells each region overlaps (the reference), on the same
   synthetic history; both results are checked equal.
2. ``compare`` end to end on synthetic histories of 100k and 1M region rows.
3. tracedamon's damo-compatible heatmap of the real DAMON run-1 record against
   ``damo report heatmap --output raw`` (damo 3.4.3) on the same record, at the same
   resolution, with the pixels checked equal (ours reads the ingested record; the
   ingest is timed separately).

Prints one line per case with wall-clock seconds (best of ``--repeat``) and ratios.

    .venv/bin/python bench/bench_compare.py [--repeat 3]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
DAMO = ROOT / ".venv" / "bin" / "damo"
sys.path.insert(0, str(ROOT))
from tracedamon.export.compare import compare  # noqa: E402
from tracedamon.export.grid import load_history, raster, uniform_bins  # noqa: E402
from tracedamon.export.heatmap import damo_heatmap  # noqa: E402


def synthetic(S, R, seed=0, span=1 << 30):
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.integers(1, span // 4096, size=(S, R - 1)), axis=1) * 4096
    b = np.concatenate([np.zeros((S, 1), np.int64), cuts, np.full((S, 1), span)], axis=1)
    st, en = b[:, :-1].ravel(), b[:, 1:].ravel()
    keep = en > st
    s = np.repeat(np.arange(S), R)[keep]
    return pd.DataFrame({"snapshot": s, "time_ns": (s + 1) * 100_000_000,
                         "start": st[keep].astype(np.uint64), "end": en[keep].astype(np.uint64),
                         "nr_accesses": rng.integers(0, 21, size=keep.sum()),
                         "age": rng.integers(0, 50, size=keep.sum())})


def reference_raster(h, te, bs, be, v):
    out = np.zeros((len(te) - 1, len(bs)))
    T0, T1 = h.snaps["t0"].to_numpy(), h.snaps["t1"].to_numpy()
    bsi, bei = bs.astype(np.int64), be.astype(np.int64)
    for sn, s, e, val in zip(h.df["snap"].to_numpy(), h.df["start"].to_numpy().astype(np.int64),
                             h.df["end"].to_numpy().astype(np.int64), v):
        t0, t1 = T0[sn], T1[sn]
        i0 = max(0, np.searchsorted(te, t0, "right") - 1)
        i1 = min(len(te) - 1, np.searchsorted(te, t1, "left"))
        j0 = np.searchsorted(bei, s, "right")
        j1 = np.searchsorted(bsi, e, "left")
        for i in range(i0, i1):
            ot = min(t1, te[i + 1]) - max(t0, te[i])
            for j in range(j0, j1):
                out[i, j] += val * ot * (min(e, bei[j]) - max(s, bsi[j]))
    return out


def best(fn, repeat):
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        r = fn()
        ts.append(time.perf_counter() - t)
    return min(ts), r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    df = synthetic(200, 100)            # 20k regions
    h = load_history(df)
    te = np.linspace(h.t_start, h.t_end, 201).astype(np.int64)
    bs, be = uniform_bins(np.array([[0, 1 << 30]], np.uint64), (1 << 30) // 512)
    v = h.df["nr_accesses"].to_numpy().astype(float)
    tf, (fast,), = best(lambda: raster(h, te, bs, be, [v])[0], args.repeat)[0], \
        (raster(h, te, bs, be, [v])[0][0],)
    tr, ref = best(lambda: reference_raster(h, te, bs, be, v), 1)
    assert np.allclose(fast, ref)
    print(f"raster 20k regions, 200x512 grid: numpy {tf:.3f} s, per-region loop {tr:.3f} s, "
          f"ratio {tr / tf:.0f}x (results equal)")

    for S, R in ((1000, 100), (2000, 500)):
        a = synthetic(S, R, seed=1)
        b = synthetic(S, R, seed=2)
        t, res = best(lambda: compare(a, b), args.repeat)
        print(f"compare {len(a):,} vs {len(b):,} region rows: {t:.2f} s "
              f"({len(a) / t / 1e6:.2f} M rows/s per side), grid {res.metrics['grid']['time_bins']}x"
              f"{res.metrics['grid']['address_bins']}")

    rec = CORPUS / "damon-paddr-run1" / "paddr_run1" / "damo_from_perf_data.json_compressed"
    if rec.exists() and DAMO.exists():
        from tracedamon.ingest import ingest
        with tempfile.TemporaryDirectory() as d:
            td = Path(d) / "run1.td"
            ti, _ = best(lambda: ingest([rec], td, force=True), 1)
            tt, hm = best(lambda: damo_heatmap(td, time_bins=500, addr_bins=500), args.repeat)
            td_, r = best(lambda: subprocess.run([str(DAMO), "report", "heatmap", "--input", str(rec),
                                                  "--output", "raw", "--resol", "500", "500"],
                                                 capture_output=True, check=True, text=True), 1)
            rows = [ln.split() for ln in r.stdout.splitlines() if ln.strip()]
            theirs = np.array([float(x[2]) for x in rows])
            tu = int(hm.t_edges[1] - hm.t_edges[0])
            au = int(hm.bin_end[0] - hm.bin_start[0])
            ti_ = np.array([int(x[0]) // tu for x in rows])
            ai_ = np.array([int(x[1]) // au for x in rows])
            ours = hm.matrix[ti_, ai_]
            same = np.allclose(np.nan_to_num(ours), np.nan_to_num(theirs), rtol=1e-9, atol=1e-12)
            print(f"run-1 record heatmap 500x500 (damo accounting): tracedamon {tt:.3f} s "
                  f"(+ ingest {ti:.2f} s once), damo {td_:.2f} s, ratio {td_ / tt:.0f}x "
                  f"(damo / tracedamon); pixels equal: {same}")


if __name__ == "__main__":
    main()
