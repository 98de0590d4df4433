"""Benchmark: `tracedamon sweep` of 48 configurations on a real 2 M-sample recording.

The trace is made on the fly with the real perf (``perf record -e page-faults -c 1 -d
-- pagefault_loop N``, as bench_ingest.py does) and ingested.  The grid:
sample-us 5000/10000/20000 x min-nr-regions 10/50 x max-nr-regions 200/1000 x access
perf/abit x aggr-us 100000/200000 = 48 configurations, vaddr with --start auto, no
scoring (the replays are what is measured).  Figures, all from this one run:

1. bare engine: ``tracedamon.replay`` of each configuration in this process on the
   samples already in memory, summed (one core): each replay on a table of its own
   (scanning the samples and converting their addresses anew each time), and each on
   one shared source (``table_source``: what replays derive from the samples alone is
   made once, as a sweep's worker does) -- the floor;
2. ``sweep --workers 1``: the same in-process, through the sweep (one read of the
   samples, then every configuration), against 1 (overhead over the floor);
3. ``sweep --workers 2``: a Dask LocalCluster of two worker processes, cluster start-up
   included; also ``LocalCluster`` of one worker, for the scaling from 1 to 2; the same
   over a fleet of ``FLEET`` recordings (copies of this one under other names);
4. 48 separate ``tracedamon replay`` processes, two at a time (both cores busy, as in 3);
5. per-task scheduling overhead: 400 tasks that do nothing, on the two-worker cluster;
6. peak RSS per worker (``worker_peak_rss_mb``) after 12 and after 48 configurations;
7. the ceiling of 1 -> 2 processes on this machine, without Dask: the bare engine's
   replays on a shared source (samples in memory, kernels loaded) in one forked
   process, against the same replays split between two forked processes running at
   once (each sharing its own source).

The machine may be shared: the load average (uptime) is printed before and after;
ratios are measured within this one run.

    .venv/bin/python bench/bench_sweep.py [--samples 2000000] [--workdir DIR] [--reuse]
    .venv/bin/python bench/bench_sweep.py --quick        # 200 k samples, 12 configurations
    .venv/bin/python bench/bench_sweep.py --reuse --ways engine,inproc,lc1,lc2,ceiling

Every measurement runs ``--repeat`` times (default 3), in alternated rounds, and the
medians are compared.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

GRID = [
    "sample-us=5000,10000,20000",
    "min-nr-regions=10,50",
    "max-nr-regions=200,1000",
    "access=perf,abit",
    "aggr-us=100000,200000",
]
FLEET = 4  # recordings in the fleet sweep (fleet1, fleet2)
QUICK_GRID = ["sample-us=5000,10000,20000", "min-nr-regions=10,50", "access=perf,abit"]
TD = ROOT / ".venv" / "bin" / "tracedamon"


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def noop(x):
    return x


def imported_rss(_):
    """Peak RSS (MiB) of a worker once tracedamon's replay and compare are imported."""
    import tracedamon.pipeline.replay  # noqa: F401
    import tracedamon.export.compare  # noqa: F401
    from tracedamon.pipeline.sweep.task import peak_rss_mb

    return peak_rss_mb()


def clock() -> tuple[float, float]:
    """(wall s, CPU s of this process and of its finished children: the worker and
    replay processes, once they are waited for)."""
    import resource

    me, ch = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return time.perf_counter(), me.ru_utime + me.ru_stime + ch.ru_utime + ch.ru_stime


def since(t0) -> tuple[float, float]:
    t1 = clock()
    return t1[0] - t0[0], t1[1] - t0[1]


def trace(workdir: Path, n: int, reuse: bool) -> Path:
    from bench_ingest import record

    import tracedamon

    td = workdir / f"pf-{n}.td"
    if reuse and td.exists():
        return td
    data = record(workdir, n, reuse)
    shutil.rmtree(td, ignore_errors=True)
    tracedamon.ingest(data, td)
    return td


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=2_000_000)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/tracedamon-bench-sweep"))
    ap.add_argument("--reuse", action="store_true", help="reuse an earlier recording")
    ap.add_argument("--quick", action="store_true", help="200 k samples, 12 configurations")
    ap.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="rounds of every measurement, alternated (medians compared)",
    )
    ap.add_argument(
        "--ways",
        default="engine,shared,inproc,lc1,lc2,fleet1,fleet2,lc1-spawn,lc2-spawn,separate,ceiling",
        help="the measurements to make (engine and inproc are always made)",
    )
    args = ap.parse_args(argv)
    wanted = set(args.ways.split(",")) | {"engine", "shared", "inproc"}
    if not shutil.which("perf"):
        print("perf is not installed: no recording to sweep", file=sys.stderr)
        return 1
    import tracedamon
    from tracedamon.engine.config import MonitorConfig
    from tracedamon.pipeline.replay import SAMPLE_COLUMNS
    from tracedamon.pipeline.samples import table_source
    from tracedamon.pipeline.sweep.grid import configurations, parse_grid
    from tracedamon.pipeline.sweep import runner
    from tracedamon.pipeline.sweep.runner import run_dask
    from tracedamon.pipeline.sweep.task import RUN_COLUMNS

    grid = QUICK_GRID if args.quick else GRID
    n = 200_000 if args.quick else args.samples
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"load before: {uptime()}")
    td = trace(args.workdir, n, args.reuse)
    tr = tracedamon.open_trace(td)
    print(f"trace: {td}, {tr.num_rows('samples'):,} samples")
    cfgs = configurations(parse_grid(grid), {"start": "auto"})
    print(f"grid: {' '.join(grid)} -> {len(cfgs)} configurations (vaddr, --start auto)")

    # 1. the bare engine, samples in memory
    s = tr.table("samples", columns=SAMPLE_COLUMNS)
    mm, fields = tr.table("mmaps"), set(MonitorConfig.__dataclass_fields__)
    tracedamon.replay(s, mmaps=mm, start_ns="auto")  # numba's first load

    def replays(source_of, cs):
        """Every configuration of ``cs`` replayed on ``source_of()``'s samples."""
        for c in cs:
            kw = dict(c.replay)
            cfg = MonitorConfig(**{k: kw.pop(k) for k in list(kw) if k in fields})
            tracedamon.replay(source_of(), mmaps=mm, config=cfg, **kw)

    def bare_engine():
        t0 = clock()
        replays(lambda: s, cfgs)
        return (None, *since(t0), None)

    def shared_engine():
        t0 = clock()
        one = table_source(s)
        replays(lambda: one, cfgs)
        return (None, *since(t0), None)

    # a fleet: the recording under FLEET names (copies), each a source of its own (read,
    # hashed and prepared once per worker that runs it), as a sweep over many recordings
    fleet = []
    for i in range(FLEET):
        f = args.workdir / "fleet" / f"run{i}.td"
        if not f.exists():
            shutil.copytree(td, f)
        fleet.append(f)

    def timed_sweep(sources=(td,), **kw):
        """(table, wall s, CPU s, wall s once a Dask cluster was up)"""
        t0 = clock()
        up = {}
        df = tracedamon.sweep(
            list(sources),
            grid,
            fixed={"start": "auto"},
            on_start=lambda c: up.setdefault("t", time.perf_counter()),
            **kw,
        )
        w, c = since(t0)
        return df, w, c, w - (up.get("t", t0[0]) - t0[0])

    cmds = []
    for i, c in enumerate(cfgs):
        v = c.values
        cmds.append(
            f"{TD} replay {td} --start auto --sample-us {v['sample-us']} "
            f"--aggr-us {v.get('aggr-us', 100000)} --min-nr-regions "
            f"{v['min-nr-regions']} --max-nr-regions {v.get('max-nr-regions', 1000)} "
            f"--access {v['access']} -q -o {args.workdir}/sep-{i}.parquet"
        )
    listing = args.workdir / "cmds.txt"
    listing.write_text("\n".join(cmds) + "\n")

    def spawned(**kw):
        """A sweep on a LocalCluster whose workers are spawned (Dask's default start
        method) rather than forked: the way sweeps ran before."""
        keep = runner.start_method
        runner.start_method = lambda: None
        try:
            return timed_sweep(**kw)
        finally:
            runner.start_method = keep

    def ceiling():
        """(None, wall of one process, wall of two, CPU of the two): forked children
        that inherit the samples and the loaded kernels, so that only the replays are
        timed."""
        ctx = multiprocessing.get_context("fork")

        def part(cs):
            one = table_source(s)
            replays(lambda: one, cs)

        def timed(parts):
            t0 = clock()
            ps = [ctx.Process(target=part, args=(p,)) for p in parts]
            for p in ps:
                p.start()
            for p in ps:
                p.join()
            return since(t0)

        w_one, _ = timed([cfgs])
        w_two, c_two = timed([cfgs[0::2], cfgs[1::2]])
        return (None, w_one, w_two, c_two)

    def separate():
        t0 = clock()
        subprocess.run(f"xargs -P 2 -I CMD sh -c CMD < {listing}", shell=True, check=True)
        res = since(t0)
        for i in range(len(cmds)):
            (args.workdir / f"sep-{i}.parquet").unlink(missing_ok=True)
        return (None, *res, None)

    # every way once per round, rounds alternated so that a change of the machine's load
    # falls on all of them; medians compared
    ways = {
        "engine": bare_engine,
        "shared": shared_engine,
        "inproc": lambda: timed_sweep(workers=1),
        "lc1": lambda: timed_sweep(workers=1, in_process=False),
        "lc2": lambda: timed_sweep(workers=2, in_process=False),
        "fleet1": lambda: timed_sweep(fleet, workers=1, in_process=False),
        "fleet2": lambda: timed_sweep(fleet, workers=2, in_process=False),
        "lc1-spawn": lambda: spawned(workers=1, in_process=False),
        "lc2-spawn": lambda: spawned(workers=2, in_process=False),
        "separate": separate,
        "ceiling": ceiling,
    }
    ways = {k: fn for k, fn in ways.items() if k in wanted}
    runs: dict[str, list] = {k: [] for k in ways}
    for r in range(args.repeat):
        for k, fn in ways.items():
            runs[k].append(fn())
        print(
            f"   round {r + 1}: " + ", ".join(f"{k} {runs[k][-1][1]:.1f} s" for k in ways),
            flush=True,
        )
    s = None  # the samples table is not needed past here

    def med(k):
        rs = sorted(runs[k], key=lambda x: x[1])
        return rs[len(rs) // 2]

    def spread(k):
        return "/".join(f"{x[1]:.1f}" for x in runs[k])

    _, we, ce, _ = med("engine")
    _, ws, cs_, _ = med("shared")
    df1, w1, c1, _ = med("inproc")
    print(f"medians of {args.repeat} round(s) (wall s of each round in brackets):")
    print(
        f"1. bare engine, {len(cfgs)} replays summed (one core): {we:.2f} s wall "
        f"[{spread('engine')}], {ce:.2f} s CPU, each on a table of its own; {ws:.2f} s "
        f"wall [{spread('shared')}], {cs_:.2f} s CPU on one shared source ({we / ws:.2f}x "
        "faster)"
    )
    print(
        f"2. sweep in-process (--workers 1): {w1:.2f} s wall [{spread('inproc')}] = "
        f"{w1 / we:.2f}x the bare engine on tables of their own, {w1 / ws:.2f}x on a "
        f"shared source; {c1:.2f} s CPU = {c1 / cs_:.2f}x the shared one's CPU"
    )
    cols = [c for c in df1.columns if c not in RUN_COLUMNS]
    df2 = None
    if "lc2" in runs:
        df2, w2, c2, ul2 = med("lc2")
        assert df1[cols].equals(df2[cols]), "tables differ"
        print(
            f"3. sweep on a LocalCluster of 2 workers: {w2:.2f} s wall [{spread('lc2')}] = "
            f"{w2 / ws:.2f}x the bare engine's summed time (shared source), "
            f"{w2 / (ws / 2):.2f}x half of it, "
            f"{w1 / w2:.2f}x faster than in-process; {c2:.2f} s CPU in all processes, of "
            f"which {df2.replay_cpu_s.sum():.2f} s inside the replays (in-process: "
            f"{df1.replay_cpu_s.sum():.2f} s)"
        )
    if "lc1" in runs and "lc2" in runs:
        dl1, wl1, cl1, ul1 = med("lc1")
        assert df1[cols].equals(dl1[cols]), "tables differ"
        print(
            f"   LocalCluster of 1 worker: {wl1:.2f} s wall [{spread('lc1')}], {cl1:.2f} s CPU "
            f"-> scaling from 1 to 2 workers: {wl1 / w2:.2f}x; once the cluster is up "
            f"({ul1:.2f} s vs {ul2:.2f} s): {ul1 / ul2:.2f}x"
        )
    if "fleet1" in runs and "fleet2" in runs:
        f1, f2 = med("fleet1"), med("fleet2")
        assert f1[0][cols].equals(f2[0][cols]), "tables differ"
        print(
            f"   a fleet of {FLEET} recordings (copies of this one), {len(f2[0])} tasks: "
            f"LocalCluster of 1 worker {f1[1]:.2f} s [{spread('fleet1')}], of 2 workers "
            f"{f2[1]:.2f} s [{spread('fleet2')}] -> scaling from 1 to 2 workers: "
            f"{f1[1] / f2[1]:.2f}x; once the cluster is up ({f1[3]:.2f} s vs {f2[3]:.2f} s): "
            f"{f1[3] / f2[3]:.2f}x"
        )
    for k in ("lc1-spawn", "lc2-spawn"):
        if k in runs:
            d, w, c, u = med(k)
            assert df1[cols].equals(d[cols]), "tables differ"
            print(
                f"   LocalCluster of {k[2]} spawned worker(s), as before: {w:.2f} s wall "
                f"[{spread(k)}], {c:.2f} s CPU, {u:.2f} s once up; "
                f"{d.replay_cpu_s.sum():.2f} s CPU inside the replays"
            )
    if "lc1-spawn" in runs and "lc2-spawn" in runs:
        print(
            f"   scaling from 1 to 2 spawned workers: {med('lc1-spawn')[1] / med('lc2-spawn')[1]:.2f}x"
        )
    if "separate" in runs and "lc2" in runs:
        _, wsep, csep, _ = med("separate")
        print(
            f"4. {len(cfgs)} separate `tracedamon replay` processes, 2 at a time: {wsep:.2f} s "
            f"wall [{spread('separate')}], {csep:.2f} s CPU -> the 2-worker sweep is "
            f"{wsep / w2:.2f}x faster (wall), uses {csep / c2:.2f}x less CPU"
        )
    if "ceiling" in runs:
        one = sorted(x[1] for x in runs["ceiling"])[len(runs["ceiling"]) // 2]
        two = sorted(x[2] for x in runs["ceiling"])[len(runs["ceiling"]) // 2]
        print(
            f"7. ceiling without Dask: the {len(cfgs)} replays in one forked process {one:.2f} s "
            f"[{spread('ceiling')}], split between two at once "
            f"{two:.2f} s [{'/'.join(f'{x[2]:.1f}' for x in runs['ceiling'])}] -> {one / two:.2f}x"
        )
    if df2 is None:
        print(f"load after: {uptime()}")
        return 0

    # 5. per-task overhead on tiny tasks, and what an idle worker holds
    marks = {}
    t = time.perf_counter()
    run_dask(
        noop,
        list(range(400)),
        lambda task, r: marks.__setitem__("end", time.perf_counter()),
        workers=2,
        on_start=lambda c: marks.__setitem__("up", time.perf_counter()),
    )
    per = (marks["end"] - marks["up"]) / 400
    print(
        f"5. 400 no-op tasks on 2 workers: {1e3 * per:.2f} ms per task once the cluster is up "
        f"(start-up {marks['up'] - t:.2f} s)"
    )
    base = []
    run_dask(imported_rss, [0], lambda task, r: base.append(r), workers=1)

    # 6. memory per worker: the peak so far, early in its run and at its end (rows in
    # task order, which is the order each worker took them up)
    mb = tr.table("samples", columns=SAMPLE_COLUMNS).nbytes / 2**20
    parts = []
    for w, g in df2.groupby("worker", sort=True):
        r = g.worker_peak_rss_mb.to_numpy()
        parts.append(
            f"{r[min(2, len(r) - 1)]:.0f} MB after {min(3, len(r))} tasks, "
            f"{r.max():.0f} MB after all its {len(r)}"
        )
    print(
        "6. peak RSS per worker (LocalCluster of 2): "
        + "; ".join(parts)
        + (
            f". LocalCluster of 1 after all {len(dl1)} tasks: {dl1.worker_peak_rss_mb.max():.0f} MB"
            if "lc1" in runs
            else ""
        )
        + ". A worker that has only imported "
        f"tracedamon's engine: {base[0]:.0f} MB; the samples columns a worker keeps: "
        f"{mb:.0f} MB"
    )
    print(f"load after: {uptime()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
