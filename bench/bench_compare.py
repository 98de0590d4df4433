"""Benchmark: comparing region histories.

1. ``tracedamon compare`` of two large region histories (default 10 M rows each), as
   whole processes under ``/usr/bin/time -v``: wall time and peak RSS, for
   ``compare A B -o m.json`` (metrics and the cells grid), ``--truth``, truth scoring
   alone, and the same on the sparse forms of both histories (their metrics are
   checked equal to the dense ones). The inputs are made on the fly: what a fixed
   4 KiB replay writes for a synthetic trace (every 4 KiB page of a 40 MiB area a
   region, hot / warm / cold pages), written straight to Parquet a row group of whole
   snapshots at a time; the second history sees the same workload with other random
   draws.
2. ``raster`` (one compiled pass) against a straightforward per-region Python loop
   that visits only the cells each region overlaps (the reference), on the same
   synthetic history; both results are checked equal.
3. tracedamon's damo-compatible heatmap of the real DAMON run-1 record against
   ``damo report heatmap --output raw`` (damo 3.4.3) on the same record, at the same
   resolution, with the pixels checked equal (ours reads the ingested record; the
   ingest is timed separately).

    .venv/bin/python bench/bench_compare.py [--rows 10000000] [--repeat 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
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
TD = ROOT / ".venv" / "bin" / "tracedamon"
sys.path.insert(0, str(ROOT))
from tracedamon.export.grid import load_history, raster, uniform_bins  # noqa: E402
from tracedamon.export.heatmap import damo_heatmap  # noqa: E402

PAGE = 4096
BASE = 0x7F0000000000
AGGR_NS = 100_000_000
T0 = 1_000_000_000_000


# ----------------------------------------------------------------------------------
# inputs
# ----------------------------------------------------------------------------------
def write_history(path: Path, snapshots: int, pages: int, seed: int, *, sparse: bool) -> int:
    """A fixed-granularity region history of a synthetic hot/warm/cold workload,
    written a row group (whole snapshots, about 1 M rows) at a time. Returns rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tracedamon.schema import METADATA_KEY, REGIONS

    rng = np.random.default_rng(seed)
    hot = np.zeros(pages, bool)
    hot[pages // 10 : pages // 10 + pages // 20] = True  # 5 % hot
    warm = np.zeros(pages, bool)
    warm[pages // 2 : pages // 2 + pages // 5] = True  # 20 % warm
    start = (BASE + np.arange(pages, dtype=np.uint64) * PAGE).astype(np.uint64)
    age = np.zeros(pages, np.int64)
    last = np.zeros(pages, np.int64)
    meta = {
        "replay": {
            "config": {
                "sample_us": 5000,
                "aggr_us": 100000,
                "min_region": PAGE,
                "max_region": PAGE,
            },
            "t0_ns": T0 - AGGR_NS,
            "snapshots": snapshots,
            "tune_events": [],
            "accessed_only": sparse,
            "sparse": sparse,
            "coverage": [[0, 0, int(BASE), int(BASE + pages * PAGE)]],
            "targets": [{"target": 0, "pid": 4242}],
        }
    }
    schema = REGIONS.with_metadata({METADATA_KEY: json.dumps(meta).encode()})
    per_group = max(1, (1 << 20) // pages)
    rows = 0
    with pq.ParquetWriter(path, schema, compression="zstd") as w:
        for s0 in range(0, snapshots, per_group):
            cols = {c: [] for c in ("snapshot", "start", "nr", "age")}
            for s in range(s0, min(snapshots, s0 + per_group)):
                nr = np.where(
                    hot,
                    rng.integers(15, 21, pages),
                    np.where(warm, rng.binomial(20, 0.1, pages), rng.binomial(20, 0.002, pages)),
                )
                # DAMON's age: aggregations since nr_accesses last changed by more
                # than a tenth of the maximum (20)
                changed = np.abs(nr - last) > 2
                age = np.where(changed, 0, age + 1)
                last = nr
                keep = nr > 0 if sparse else np.ones(pages, bool)
                cols["snapshot"].append(np.full(int(keep.sum()), s))
                cols["start"].append(start[keep])
                cols["nr"].append(nr[keep])
                cols["age"].append(age[keep])
            snap = np.concatenate(cols["snapshot"])
            st = np.concatenate(cols["start"])
            n = len(snap)
            t = pa.table(
                {
                    "run": np.zeros(n, np.int32),
                    "snapshot": snap.astype(np.int64),
                    "time_ns": (T0 + snap * AGGR_NS).astype(np.int64),
                    "target": np.zeros(n, np.int32),
                    "pid": np.full(n, 4242, np.int32),
                    "start": st,
                    "end": st + np.uint64(PAGE),
                    "nr_accesses": np.concatenate(cols["nr"]).astype(np.uint32),
                    "age": np.concatenate(cols["age"]).astype(np.uint32),
                    "nr_accesses_bp": pa.nulls(n, pa.uint32()),
                },
                schema=schema,
            )
            w.write_table(t, row_group_size=n)
            rows += n
    return rows


def write_truth(path: Path, pages: int) -> None:
    h0, h1 = BASE + pages // 10 * PAGE, BASE + (pages // 10 + pages // 20) * PAGE
    w0, w1 = BASE + pages // 2 * PAGE, BASE + (pages // 2 + pages // 5) * PAGE
    path.write_text(
        "start,end,label\n"
        f"{BASE:#x},{h0:#x},cold0\n{h0:#x},{h1:#x},hot\n{h1:#x},{w0:#x},cold1\n"
        f"{w0:#x},{w1:#x},warm\n{w1:#x},{BASE + pages * PAGE:#x},cold2\n"
    )


# ----------------------------------------------------------------------------------
# measuring a whole process
# ----------------------------------------------------------------------------------
def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one process, from /usr/bin/time -v."""
    r = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", r.stderr).group(
        1
    )
    secs = 0.0
    for part in wall.split(":"):
        secs = secs * 60 + float(part)
    return secs, rss / 1024


def large_compare(rows: int, repeat: int, keep: Path | None) -> None:
    pages = 10_000
    snapshots = max(2, rows // pages)
    d = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="bench_compare."))
    d.mkdir(parents=True, exist_ok=True)
    try:
        t = time.perf_counter()
        n = {}
        for name, seed, sparse in (
            ("a", 1, False),
            ("b", 2, False),
            ("a.sparse", 1, True),
            ("b.sparse", 2, True),
        ):
            n[name] = write_history(d / f"{name}.parquet", snapshots, pages, seed, sparse=sparse)
        write_truth(d / "truth.csv", pages)
        print(
            f"inputs: {snapshots} snapshots x {pages:,} regions of 4 KiB: "
            f"{n['a']:,} and {n['b']:,} rows; sparse forms {n['a.sparse']:,} and "
            f"{n['b.sparse']:,} rows ({time.perf_counter() - t:.1f} s to write)"
        )
        a, b = str(d / "a.parquet"), str(d / "b.parquet")
        sa, sb = str(d / "a.sparse.parquet"), str(d / "b.sparse.parquet")
        truth = str(d / "truth.csv")
        cases = [
            (
                "compare A B -o m.json (metrics + cells grid)",
                [str(TD), "compare", a, b, "-o", str(d / "m.json"), "-q", "--force"],
            ),
            (
                "compare A B --truth T -o m.json",
                [
                    str(TD),
                    "compare",
                    a,
                    b,
                    "--truth",
                    truth,
                    "-o",
                    str(d / "mt.json"),
                    "-q",
                    "--force",
                ],
            ),
            (
                "compare A --truth T (truth scoring alone)",
                [str(TD), "compare", a, "--truth", truth, "-o", str(d / "t.json"), "-q", "--force"],
            ),
            (
                "compare A' B' -o m.json (the sparse forms)",
                [str(TD), "compare", sa, sb, "-o", str(d / "ms.json"), "-q", "--force"],
            ),
        ]
        for label, cmd in cases:
            runs = [timed(cmd) for _ in range(repeat)]
            wall = sorted(r[0] for r in runs)[len(runs) // 2]
            rss = max(r[1] for r in runs)
            print(f"{label}: {wall:.1f} s wall (median of {repeat}), peak RSS {rss:.0f} MB")
        m = json.loads((d / "m.json").read_text())
        ms = json.loads((d / "ms.json").read_text())
        same = all(_close(m[k], ms[k]) for k in ("heat", "hot", "wss", "wss_series"))
        print(
            f"  heat Spearman {m['heat']['spearman']:.3f}, hot F1 (0.5) "
            f"{m['hot']['0.5']['f1']:.3f}, WSS relative error "
            f"{m['wss']['relative_error']:.4f}; sparse metrics equal to dense: {same}"
        )
    finally:
        if not keep:
            shutil.rmtree(d, ignore_errors=True)


def _close(x, y) -> bool:
    if isinstance(x, dict):
        return set(x) == set(y) and all(_close(x[k], y[k]) for k in x)
    if isinstance(x, list):
        return len(x) == len(y) and all(_close(u, v) for u, v in zip(x, y))
    if isinstance(x, float) and isinstance(y, float):
        return abs(x - y) <= 1e-9 * max(1.0, abs(x), abs(y))
    return x == y


# ----------------------------------------------------------------------------------
# raster and the damo heatmap
# ----------------------------------------------------------------------------------
def synthetic(S, R, seed=0, span=1 << 30):
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.integers(1, span // 4096, size=(S, R - 1)), axis=1) * 4096
    b = np.concatenate([np.zeros((S, 1), np.int64), cuts, np.full((S, 1), span)], axis=1)
    st, en = b[:, :-1].ravel(), b[:, 1:].ravel()
    keep = en > st
    s = np.repeat(np.arange(S), R)[keep]
    return pd.DataFrame(
        {
            "snapshot": s,
            "time_ns": (s + 1) * 100_000_000,
            "start": st[keep].astype(np.uint64),
            "end": en[keep].astype(np.uint64),
            "nr_accesses": rng.integers(0, 21, size=keep.sum()),
            "age": rng.integers(0, 50, size=keep.sum()),
        }
    )


def reference_raster(h, te, bs, be, v):
    out = np.zeros((len(te) - 1, len(bs)))
    T0_, T1_ = h.snaps["t0"].to_numpy(), h.snaps["t1"].to_numpy()
    bsi, bei = bs.astype(np.int64), be.astype(np.int64)
    for sn, s, e, val in zip(
        h.df["snap"].to_numpy(),
        h.df["start"].to_numpy().astype(np.int64),
        h.df["end"].to_numpy().astype(np.int64),
        v,
    ):
        t0, t1 = T0_[sn], T1_[sn]
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
    r = None
    for _ in range(repeat):
        t = time.perf_counter()
        r = fn()
        ts.append(time.perf_counter() - t)
    return min(ts), r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--rows",
        type=int,
        default=10_000_000,
        help="rows of each large history (0: skip that case)",
    )
    ap.add_argument("--keep", type=Path, default=None, help="make the inputs here and keep them")
    args = ap.parse_args()

    if args.rows:
        large_compare(args.rows, args.repeat, args.keep)

    df = synthetic(200, 100)  # 20k regions
    h = load_history(df)
    te = np.linspace(h.t_start, h.t_end, 201).astype(np.int64)
    bs, be = uniform_bins(np.array([[0, 1 << 30]], np.uint64), (1 << 30) // 512)
    v = h.df["nr_accesses"].to_numpy().astype(float)
    tf, res = best(lambda: raster(h, te, bs, be, [v])[0][0], args.repeat)
    tr, ref = best(lambda: reference_raster(h, te, bs, be, v), 1)
    assert np.allclose(res, ref)
    print(
        f"raster 20k regions, 200x512 grid: compiled {tf:.3f} s, per-region loop {tr:.3f} s, "
        f"ratio {tr / tf:.0f}x (results equal)"
    )

    rec = CORPUS / "damon-paddr-run1" / "paddr_run1" / "damo_from_perf_data.json_compressed"
    if rec.exists() and DAMO.exists():
        from tracedamon.ingest import ingest

        with tempfile.TemporaryDirectory() as d:
            td = Path(d) / "run1.td"
            ti, _ = best(lambda: ingest([rec], td, force=True), 1)
            tt, hm = best(lambda: damo_heatmap(td, time_bins=500, addr_bins=500), args.repeat)
            td_, r = best(
                lambda: subprocess.run(
                    [
                        str(DAMO),
                        "report",
                        "heatmap",
                        "--input",
                        str(rec),
                        "--output",
                        "raw",
                        "--resol",
                        "500",
                        "500",
                    ],
                    capture_output=True,
                    check=True,
                    text=True,
                ),
                1,
            )
            rows = [ln.split() for ln in r.stdout.splitlines() if ln.strip()]
            theirs = np.array([float(x[2]) for x in rows])
            tu = int(hm.t_edges[1] - hm.t_edges[0])
            au = int(hm.bin_end[0] - hm.bin_start[0])
            ti_ = np.array([int(x[0]) // tu for x in rows])
            ai_ = np.array([int(x[1]) // au for x in rows])
            ours = hm.matrix[ti_, ai_]
            same = np.allclose(np.nan_to_num(ours), np.nan_to_num(theirs), rtol=1e-9, atol=1e-12)
            print(
                f"run-1 record heatmap 500x500 (damo accounting): tracedamon {tt:.3f} s "
                f"(+ ingest {ti:.2f} s once), damo {td_:.2f} s, ratio {td_ / tt:.0f}x "
                f"(damo / tracedamon); pixels equal: {same}"
            )


if __name__ == "__main__":
    main()
