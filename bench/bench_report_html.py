"""The HTML report at scale: file size, build time and memory, and how soon the page is
interactive in real headless browsers (Chromium and Firefox).

Inputs are made on the fly (nothing big is stored), each a replay of synthetic samples
(bench_replay's workload: 80 % of the accesses in a 4 MiB hot set that moves every 10 s):

1. fixed 4 KiB granularity over 64 MiB, every region of every snapshot written (dense):
   16,384 regions × 640 snapshots = 10.5 M rows;
2. adaptive regions (min_nr_regions 1000, max 2000) over 1 GiB for 1000 s: about 10 M rows
   in 10,000 snapshots;
3. the real DAMON paddr run 1 of the corpus (ftrace capture, 27 k rows), when present.

For each: ``tracedamon report html`` as its own process under ``/usr/bin/time -v`` (wall
time, peak RSS), the file's size, then the page opened from file:// in Chromium (tests/
browser.py; each of ``--browsers``) ``--repeat`` times: the time from navigation start to the page's ``ready``
(first heatmap and charts drawn, handlers attached), and the time to redraw after a zoom
into 1/64 of the time and 1/256 of the address axis (and after a zoom back out).

    .venv/bin/python bench/bench_report_html.py [--repeat 3] [--quick]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
TD = ROOT / ".venv" / "bin" / "tracedamon"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))


def make_history(kind: str, out: Path, scale: float = 1.0) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from bench_replay import workload
    from tracedamon.pipeline.replay import replay

    if kind == "fixed":
        n, dur, span = int(3_000_000 * scale), 64.0 * scale, 64 << 20
        kw = dict(min_region=4096, max_region=4096)
    else:
        n, dur, span = int(10_000_000 * scale), 1000.0 * scale, 1 << 30
        kw = dict(min_nr_regions=1000, max_nr_regions=2000)
    t, _tg, a = workload(n, dur, span)
    tbl = pa.table(
        {
            "time_ns": t,
            "pid": pa.array(np.ones(n, np.int32)),
            "event": pa.DictionaryArray.from_arrays(
                pa.array(np.zeros(n, np.int32)), pa.array(["cpu/mem-loads/"])
            ),
            "addr": pa.array(a.astype(np.uint64)),
            "phys_addr": pa.nulls(n, pa.uint64()),
        }
    )
    rng = [f"{0x7F0000000000:#x}-{0x7F0000000000 + span:#x}"]
    r = replay(tbl, ops="fvaddr", ranges=rng, pids=[1], max_rows=None, **kw)
    pq.write_table(r.table, out, row_group_size=1 << 20)
    return len(r)


LIMIT = ["prlimit", f"--as={6 << 30}", "--"]  # the machine is shared: 6 GiB of address space


def build(src: Path, out: Path, *extra) -> dict:
    cmd = [
        *LIMIT,
        "/usr/bin/time",
        "-v",
        str(TD),
        "report",
        "html",
        str(src),
        "-o",
        str(out),
        *extra,
    ]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"report html failed: {p.stderr[-2000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", p.stderr).group(1)
    parts = [float(x) for x in wall.split(":")]
    secs = sum(v * 60**k for k, v in enumerate(reversed(parts)))
    return {"wall_s": secs, "rss_mb": rss / 1024, "size_mb": out.stat().st_size / 1e6}


def in_browser(path: Path, repeat: int, name: str = "chromium") -> dict:
    from browser import open_browser

    ready, zoom, back, modes = [], [], [], []
    with open_browser(name) as b:
        for _ in range(repeat):
            b.blank()
            b.open(path, timeout=120)
            errs = b.js("return tdReport.errors")
            if errs:
                raise SystemExit(f"page errors: {errs}")
            ready.append(b.js("return tdReport.readyMs") / 1000)
            v = b.js("return tdReport.getView()")
            modes.append(b.js("return tdReport.grid().mode"))
            t0, t1 = v["t0"], v["t1"]
            span = b.js(
                "var s = tdReport.meta.layers.a.spaces[0]; return [s.segments[0][0], "
                "s.segments[s.segments.length - 1][1]]"
            )
            mid_t = (t0 + t1) / 2
            mid_a = (span[0] + span[1]) // 2
            da = max(4096, (span[1] - span[0]) // 512)
            t = time.perf_counter()
            b.call(
                f"tdReport.setView({{t0: {mid_t - (t1 - t0) / 128}, t1: {mid_t + (t1 - t0) / 128},"
                f" a0: {mid_a - da}, a1: {mid_a + da}}})"
            )
            zoom.append(time.perf_counter() - t)
            modes.append(b.js("return tdReport.grid().mode"))
            t = time.perf_counter()
            b.call("tdReport.fullView()")
            back.append(time.perf_counter() - t)
            modes.append(b.js("return tdReport.grid().mode"))
    return {"ready_s": ready, "zoom_s": zoom, "full_s": back, "modes": sorted(set(modes))}


def fmt(xs):
    return f"{statistics.median(xs):.2f} s (runs {', '.join(f'{x:.2f}' for x in xs)})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="1/10 of the sizes")
    ap.add_argument(
        "--browsers",
        default="chromium,firefox",
        help="comma-separated: chromium, firefox (default: both)",
    )
    ap.add_argument("--make", nargs=3, metavar=("KIND", "OUT", "SCALE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.make:
        print(make_history(args.make[0], Path(args.make[1]), float(args.make[2])))
        return
    scale = 0.1 if args.quick else 1.0
    with tempfile.TemporaryDirectory(prefix="bench-html-") as d:
        d = Path(d)
        cases = []
        for kind in ("fixed", "adaptive"):
            src = d / f"{kind}.parquet"
            t = time.perf_counter()
            p = subprocess.run(
                [*LIMIT, sys.executable, __file__, "--make", kind, str(src), str(scale)],
                capture_output=True,
                text=True,
            )
            if p.returncode:
                raise SystemExit(f"making the {kind} history failed: {p.stderr[-2000:]}")
            n = int(p.stdout.split()[-1])
            print(
                f"# {kind}: {n:,} rows made in {time.perf_counter() - t:.1f} s "
                f"({src.stat().st_size / 1e6:.1f} MB Parquet)",
                flush=True,
            )
            cases.append((f"{kind}, {n / 1e6:.1f} M rows", src, []))
        ft = CORPUS / "damon-paddr-run1" / "paddr_run1" / "ftrace_trace_pipe.txt.gz"
        if ft.exists():
            td = d / "run1.td"
            subprocess.run(
                [str(TD), "ingest", str(ft), "-o", str(td)], check=True, capture_output=True
            )
            cases.append(("corpus paddr run 1, 27 k rows, --damos", td, ["--damos", str(td)]))
        for i, (name, src, extra) in enumerate(cases):
            out = d / f"r{i}.html"
            b = build(src, out, *extra)
            print(
                f"{name}: file {b['size_mb']:.2f} MB; build {b['wall_s']:.1f} s wall, "
                f"{b['rss_mb']:.0f} MB peak RSS",
                flush=True,
            )
            for browser in args.browsers.split(","):
                w = in_browser(out, args.repeat, browser)
                print(f"  {browser}: ready after navigation: {fmt(w['ready_s'])}")
                print(
                    f"  {browser}: redraw after a zoom to 1/128 time x 1/256 address: "
                    f"{fmt(w['zoom_s'])}; back to the full view: {fmt(w['full_s'])}; "
                    f"modes drawn: {w['modes']}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
