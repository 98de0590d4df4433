"""Benchmark: `tracedamon ingest perf.data` against `perf script` on a large real file.

Records (once; kept under --workdir, never in the repository) about N page-fault
samples with the real perf:

    perf record -e page-faults -c 1 -d -- pagefault_loop N

(bench/pagefault_loop.c touches anonymous pages and drops them with MADV_DONTNEED, so
every touch faults), then measures, each as a whole process (start-up included; wall,
user+sys CPU and peak RSS from /usr/bin/time):

1. ``tracedamon ingest FILE`` (decode + Parquet written),
2. ``perf script -F pid,tid,time,addr > /dev/null``,
3. the pipeline users build today: that perf script piped into pandas ``read_csv`` and
   ``to_parquet``,

and, in-process, the decoder alone: the record-boundary scan plus the fixed-layout
sample kernel over the whole data section (samples/s), and the full
``iter_sample_batches()`` path (decode, sort, Arrow).

    .venv/bin/python bench/bench_ingest.py                  # ~10 M samples (~480 MB)
    .venv/bin/python bench/bench_ingest.py --samples 1000000
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV_BIN = Path(sys.executable).parent
TIME = "/usr/bin/time"

PIPELINE = r"""
import sys, pandas as pd
df = pd.read_csv(sys.stdin, sep=r"\s+", header=None, names=["pidtid", "time", "addr"],
                 dtype=str, engine="c")
pt = df["pidtid"].str.split("/", expand=True)
out = pd.DataFrame({
    "pid": pt[0].astype("int32"), "tid": pt[1].astype("int32"),
    "time_ns": (df["time"].str.rstrip(":").astype(float) * 1e9).round().astype("int64"),
    "addr": df["addr"].map(lambda s: int(s, 16)).astype("uint64"),
})
out.to_parquet(sys.argv[1])
print(len(out), file=sys.stderr)
"""


# the reader without the CLI around it (no input hashing, no summary printed)
READER_ONLY = r"""
import shutil, sys
from tracedamon.ingest.perf_data import ingest_into
from tracedamon.store.writer import TraceDirWriter
shutil.rmtree(sys.argv[2], ignore_errors=True)
with TraceDirWriter(sys.argv[2]) as w:
    ingest_into(sys.argv[1], w)
shutil.rmtree(sys.argv[2])
"""


def build_workload(workdir: Path) -> Path:
    exe = workdir / "pagefault_loop"
    src = HERE / "pagefault_loop.c"
    if not exe.exists() or exe.stat().st_mtime < src.stat().st_mtime:
        subprocess.run(["gcc", "-O2", "-o", str(exe), str(src)], check=True)
    return exe


def record(workdir: Path, n: int, reuse: bool) -> Path:
    data = workdir / f"pf-{n}.data"
    if reuse and data.exists():
        return data
    exe = build_workload(workdir)
    t0 = time.time()
    subprocess.run(
        [
            "perf",
            "record",
            "-N",
            "-q",
            "-o",
            str(data),
            "-e",
            "page-faults",
            "-c",
            "1",
            "-d",
            "--",
            str(exe),
            str(n),
        ],
        check=True,
        cwd=workdir,
    )
    print(f"recorded {data} ({data.stat().st_size / 1e6:.0f} MB) in {time.time() - t0:.1f} s")
    return data


def timed(cmd: str) -> dict:
    """Run a shell command under /usr/bin/time: wall s, cpu s, max RSS MB."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        full = f"{TIME} -f '%e %U %S %M' -o {tf.name} sh -c {shlex_quote(cmd)}"
        r = subprocess.run(full, shell=True, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"failed: {cmd}\n{r.stderr[-2000:]}")
        wall, user, sys_, rss = tf.read().split()[-4:]
    return {
        "wall": float(wall),
        "cpu": float(user) + float(sys_),
        "rss_mb": int(rss) / 1024,
        "stderr": r.stderr,
    }


def median_run(runs: list[dict]) -> dict:
    """The run with the median wall time, with the spread of all runs; peak RSS is
    the largest seen."""
    srt = sorted(runs, key=lambda r: r["wall"])
    mid = dict(srt[len(srt) // 2])
    mid["walls"] = [r["wall"] for r in srt]
    mid["rss_mb"] = max(r["rss_mb"] for r in runs)
    return mid


def shlex_quote(s: str) -> str:
    import shlex

    return shlex.quote(s)


def decoder_alone(data: Path) -> dict:
    """Kernel throughput over the whole data section, and the full iterate path."""
    import numpy as np

    from tracedamon.ingest.perf.layout import NCOLS
    from tracedamon.ingest.perf.sample_kernels import gather_fixed_attrs
    from tracedamon.ingest.perf.scan import scan_records
    from tracedamon.ingest.perf.words import as_u64_view
    from tracedamon.ingest.perf.stream import CHUNK_BYTES
    from tracedamon.ingest.perf_data import open_perf_data

    rd = open_perf_data(data)
    src = rd.sources[0]
    P = rd.params()
    nslot, cols, deltas, need = P["fixed"]
    # warm the kernels (numba cache load) on a small piece
    with open(data, "rb") as f:
        f.seek(src.start)
        piece = np.frombuffer(f.read(1 << 20), np.uint8).copy()
    cap = len(piece) // 8 + 1
    o, t, s = np.empty(cap, np.int64), np.empty(cap, np.uint32), np.empty(cap, np.int64)
    scan_records(piece, 0, len(piece), o, t, s)
    out = np.empty((4, NCOLS), np.uint64, order="F")
    gather_fixed_attrs(
        piece,
        as_u64_view(piece),
        o[:4],
        s[:4],
        np.zeros(4, np.int32),
        nslot,
        cols,
        deltas,
        need,
        out,
        np.zeros(4, np.int8),
    )
    n_samples = 0
    kernel_s = 0.0
    buf = np.empty(CHUNK_BYTES + 65536, np.uint8)
    carry = 0
    with open(data, "rb") as f:
        f.seek(src.start)
        left = src.end - src.start
        while left > 0:
            got = f.readinto(memoryview(buf)[carry : carry + min(CHUNK_BYTES, left)])
            left -= got
            end = carry + got
            cap = end // 8 + 1
            o, t, s = np.empty(cap, np.int64), np.empty(cap, np.uint32), np.empty(cap, np.int64)
            t0 = time.perf_counter()
            n, stop, _err = scan_records(buf, 0, end, o, t, s)
            sel = np.flatnonzero(t[:n] == 9)
            so, ss = o[sel], s[sel]
            out = np.empty((len(sel), NCOLS), np.uint64, order="F")
            err = np.zeros(len(sel), np.int8)
            gather_fixed_attrs(
                buf,
                as_u64_view(buf),
                so,
                ss,
                np.zeros(len(sel), np.int32),
                nslot,
                cols,
                deltas,
                need,
                out,
                err,
            )
            kernel_s += time.perf_counter() - t0
            n_samples += len(sel)
            rest = end - stop
            buf[:rest] = buf[stop:end]
            carry = rest
    t0 = time.perf_counter()
    c0 = time.process_time()
    rows = sum(b.num_rows for b in rd.iter_sample_batches())
    it_wall, it_cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "samples": n_samples,
        "kernel_s": kernel_s,
        "iter_rows": rows,
        "iter_wall": it_wall,
        "iter_cpu": it_cpu,
        **split_ingest(data),
    }


def split_ingest(data: Path) -> dict:
    """ingest_into in this (warm) process: wall, the main thread's CPU (decode, sort,
    Arrow) and the Parquet thread's CPU (encoding the samples table), which is the
    critical path on two cores."""
    from tracedamon.ingest.perf_data import ingest_into
    from tracedamon.store.writer import TraceDirWriter

    out = Path(tempfile.mkdtemp(prefix="bench-ingest-", dir=data.parent)) / "t.td"
    try:
        t0, c0 = time.perf_counter(), time.thread_time()
        with TraceDirWriter(out) as w:
            rd = ingest_into(data, w)
        wall, main_cpu = time.perf_counter() - t0, time.thread_time() - c0
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)
    return {
        "warm_wall": wall,
        "main_cpu": main_cpu,
        "parquet_cpu": rd.timings.get("parquet_thread_cpu_s", float("nan")),
        "parquet_busy": rd.timings.get("parquet_thread_busy_s", float("nan")),
    }


def startup_s() -> float:
    """Wall seconds of a process that only imports what the CLI ingest needs."""
    t0 = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import tracedamon.cli, tracedamon.ingest.perf_data, tracedamon.info",
        ],
        check=True,
    )
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=10_000_000)
    ap.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "tracedamon-bench"
    )
    ap.add_argument("--reuse", action="store_true", help="reuse an existing recording")
    ap.add_argument("--keep", action="store_true", help="keep the recording and outputs")
    ap.add_argument("--skip-pipeline", action="store_true")
    ap.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of tracedamon ingest and of perf script (medians compared)",
    )
    a = ap.parse_args(argv)
    if not shutil.which("perf"):
        print("perf is not installed: nothing to compare with", file=sys.stderr)
        return 1
    a.workdir.mkdir(parents=True, exist_ok=True)
    data = record(a.workdir, a.samples, a.reuse)
    size_mb = data.stat().st_size / 1e6
    td = a.workdir / "out.td"
    pq_out = a.workdir / "pipeline.parquet"
    # the two whole processes that give the headline ratio run alternately, --repeat
    # times each; the medians are compared (the machine is shared and noisy)
    ingests, perfs = [], []
    for _ in range(a.repeat):
        ingests.append(
            timed(f"{VENV_BIN / 'tracedamon'} ingest {data} -o {td} --force > /dev/null")
        )
        perfs.append(timed(f"perf script -i {data} -F pid,tid,time,addr > /dev/null"))
    ingest, perf = median_run(ingests), median_run(perfs)
    reader_only = timed(
        f"{sys.executable} -c {shlex_quote(READER_ONLY)} {data} {a.workdir / 'reader.td'}"
    )
    pipe = None
    if not a.skip_pipeline:
        pipe = timed(
            f"perf script -i {data} -F pid,tid,time,addr | "
            f"{sys.executable} -c {shlex_quote(PIPELINE)} {pq_out}"
        )
    dec = decoder_alone(data)
    from tracedamon.store.trace import open_trace

    rows = open_trace(td).num_rows("samples")
    print()
    print(
        f"input: {data} ({size_mb:.0f} MB, {dec['samples']:,} SAMPLE records, "
        f"{rows:,} rows ingested)"
    )
    print(f"{'':34} {'wall s':>8} {'cpu s':>8} {'peak RSS MB':>12}")
    for name, r in (
        ("tracedamon ingest (whole process)", ingest),
        ("  reader only (ingest_into)", reader_only),
        ("perf script -F pid,tid,time,addr", perf),
        ("perf script | pandas -> parquet", pipe),
    ):
        if r:
            print(f"{name:34} {r['wall']:8.2f} {r['cpu']:8.2f} {r['rss_mb']:12.0f}")
    if a.repeat > 1:
        print(
            f"({a.repeat} runs each, alternating; median shown; walls: tracedamon "
            f"{', '.join(f'{w:.2f}' for w in ingest['walls'])}, perf script "
            f"{', '.join(f'{w:.2f}' for w in perf['walls'])}; peak RSS: the largest)"
        )
    print(
        f"speed-up vs perf script:    wall {perf['wall'] / ingest['wall']:.2f}x, "
        f"cpu {perf['cpu'] / ingest['cpu']:.2f}x (reader only: wall "
        f"{perf['wall'] / reader_only['wall']:.2f}x, cpu "
        f"{perf['cpu'] / reader_only['cpu']:.2f}x)"
    )
    if pipe:
        print(
            f"speed-up vs pandas pipeline: wall {pipe['wall'] / ingest['wall']:.2f}x, "
            f"cpu {pipe['cpu'] / ingest['cpu']:.2f}x"
        )
    print(
        f"decoder kernels alone (scan + fixed-layout decode): "
        f"{dec['samples'] / dec['kernel_s'] / 1e6:.1f} M samples/s"
    )
    print(
        f"iter_sample_batches (decode, sort, Arrow): "
        f"{dec['iter_rows'] / dec['iter_wall'] / 1e6:.1f} M samples/s wall, "
        f"{dec['iter_rows'] / dec['iter_cpu'] / 1e6:.1f} M samples/s cpu"
    )
    st = startup_s()
    print(
        f"warm in-process ingest_into: {dec['warm_wall']:.2f} s wall; main thread "
        f"(decode, sort, Arrow) {dec['main_cpu']:.2f} s CPU; Parquet thread "
        f"{dec['parquet_cpu']:.2f} s CPU ({dec['parquet_busy']:.2f} s busy)"
    )
    busiest = max(dec["main_cpu"], dec["parquet_cpu"])
    print(
        f"start-up (imports only): {st:.2f} s wall.  Floor of the whole process on two "
        f"cores ~ start-up + the busier thread = {st + busiest:.2f} s "
        f"(perf script / floor = {perf['wall'] / (st + busiest):.2f}x)"
    )
    load = os.getloadavg()
    print(
        f"load average during the run: {load[0]:.1f} on {os.cpu_count()} CPUs "
        "(the machine is shared: compare ratios, not absolute times)"
    )
    if not a.keep:
        shutil.rmtree(td, ignore_errors=True)
        pq_out.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
