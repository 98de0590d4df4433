"""Benchmark: tracedamon's DAMON trace ingest vs damo's own conversion of the same file.

For each input, two things are timed (wall clock, best of ``--repeat``):

* ``tracedamon``: :func:`tracedamon.ingest.ingest` into a fresh trace directory
  (perf.data is decoded natively; text is parsed with vectorised regexes);
* ``damo``: ``damo convert_record_format --format json_compressed`` (damo 3.4.3,
  the tool's own parser; for perf.data it runs ``perf script`` first).

It then reads damo's output back with tracedamon's damo reader and checks that
both give the same regions (run, snapshot, start, end, nr_accesses, age), so the
two conversions did the same work; where damo's record is inconsistent (damo
counts damos_before_apply regions into its snapshots), the "same" column says
why. Inputs: run 1 of the corpus (perf script text,
perf.data), damo's test perf script, and the run-1 text repeated ``--scale``
times with shifted timestamps (a longer recording). Prints one line per input
and the time ratio damo / tracedamon.

    .venv/bin/python bench/bench_damon_ingest.py [--repeat 3] [--scale 8]

damo is only given files: ``convert_record_format`` parses them and never
touches /sys/kernel/mm/damon.
"""

from __future__ import annotations

import argparse
import gzip
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
DAMO = ROOT / ".venv" / "bin" / "damo"

sys.path.insert(0, str(ROOT))
from tracedamon.ingest import ingest  # noqa: E402
from tracedamon.errors import TraceFormatError  # noqa: E402
from tracedamon.store.trace import open_trace  # noqa: E402

KEY = ["run", "snapshot", "start", "end", "nr_accesses", "age"]


def _best(fn, repeat):
    best = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    return best


def scaled_copy(src_gz: Path, dest: Path, times: int) -> Path:
    """The run-1 perf script text repeated ``times`` times, each copy shifted later
    by the span of the original plus one aggregation (same kdamond pid)."""
    lines = gzip.open(src_gz, "rt").read().splitlines(keepends=True)
    ts = re.compile(r"(\s)(\d+)\.(\d{6}):")
    t_first = float(ts.search(lines[0]).group(2) + "." + ts.search(lines[0]).group(3))
    t_last = float(ts.search(lines[-1]).group(2) + "." + ts.search(lines[-1]).group(3))
    span = t_last - t_first + 5.12
    with open(dest, "w") as out:
        for k in range(times):
            shift_us = int(round(k * span * 1e6))

            def sub(m, shift_us=shift_us):
                us = int(m.group(2)) * 1_000_000 + int(m.group(3)) + shift_us
                return f"{m.group(1)}{us // 1_000_000}.{us % 1_000_000:06d}:"

            out.writelines(ts.sub(sub, ln, count=1) for ln in lines)
    return dest


def run_one(name: str, path: Path, tmp: Path, repeat: int) -> dict:
    n = [0]

    def ours():
        n[0] += 1
        ingest([path], tmp / f"{name}.{n[0]}.td", format="damon")

    def damos():
        out = tmp / f"{name}.damo.json_compressed"
        r = subprocess.run(
            [
                str(DAMO),
                "convert_record_format",
                "--record_file",
                str(path),
                "--format",
                "json_compressed",
                "--output_file",
                str(out),
            ],
            capture_output=True,
            text=True,
        )
        if r.returncode != 0 or not out.exists():
            raise RuntimeError(f"damo failed on {path}: {r.stdout}{r.stderr}")

    t_ours = _best(ours, repeat)
    t_damo = _best(damos, repeat)
    a = open_trace(tmp / f"{name}.1.td").df("regions")
    try:
        b_dir = ingest(
            [tmp / f"{name}.damo.json_compressed"], tmp / f"{name}.back.td", format="damo"
        )
    except TraceFormatError as e:
        same = (
            "NO: damo's record is inconsistent ("
            + e.problem.split(" is inconsistent: ")[-1].split(". damo cuts")[0]
            + ")"
        )
    else:
        b = open_trace(b_dir).df("regions")
        same = (
            "yes"
            if len(a) == len(b)
            and a[KEY].astype("float64").fillna(-1).equals(b[KEY].astype("float64").fillna(-1))
            else "NO"
        )
    return {
        "input": name,
        "regions": len(a),
        "snapshots": int(a.groupby(["run", "snapshot"]).ngroups),
        "size_mb": path.stat().st_size / 1e6,
        "tracedamon_s": t_ours,
        "damo_s": t_damo,
        "ratio": t_damo / t_ours,
        "same_regions": same,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--scale", type=int, default=8)
    args = ap.parse_args(argv)
    if not DAMO.exists():
        sys.exit(f"damo not found at {DAMO} (pip install damo==3.4.3 in .venv)")
    run1 = CORPUS / "damon-paddr-run1" / "paddr_run1"
    tmp = Path(tempfile.mkdtemp(prefix="bench-damon-"))
    try:
        # damo recognises text by `file -b`, so it gets plain (not gzipped) text
        txt = tmp / "run1_perf_script.txt"
        with gzip.open(run1 / "perf_script.txt.gz", "rb") as g, open(txt, "wb") as o:
            shutil.copyfileobj(g, o)
        ftrace = tmp / "run1_ftrace.txt"
        with gzip.open(run1 / "ftrace_trace_pipe.txt.gz", "rb") as g, open(ftrace, "wb") as o:
            shutil.copyfileobj(g, o)
        inputs = [
            ("damo-tests perf script (5-field)", CORPUS / "damo-tests" / "perf.data.script"),
            ("run1 ftrace (+damos_before_apply)", ftrace),
            ("run1 perf script", txt),
            ("run1 perf.data", run1 / "damo_record_perf_data.data"),
            (
                f"run1 perf script x{args.scale}",
                scaled_copy(run1 / "perf_script.txt.gz", tmp / "scaled.txt", args.scale),
            ),
        ]
        print(
            f"{'input':<36} {'MB':>6} {'snaps':>6} {'regions':>8} {'tracedamon':>11} "
            f"{'damo':>8} {'damo/td':>8}  same"
        )
        for i, (name, path) in enumerate(inputs):
            r = run_one(f"in{i}", path, tmp, args.repeat)
            print(
                f"{name:<36} {r['size_mb']:6.1f} {r['snapshots']:6d} {r['regions']:8d} "
                f"{r['tracedamon_s']:10.3f}s {r['damo_s']:7.3f}s {r['ratio']:7.1f}x  "
                f"{r['same_regions']}"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
