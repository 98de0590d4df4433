"""Targets that exit: the kernel's rules (tracedamon.engine.lifetime) on constructed traces.

The traces are perf.data files written with the test-only writer: page-fault-like samples
with addresses, MMAP2 records giving each process three mappings (so vaddr has three
regions at once), and the EXIT records perf writes when a thread exits.  The expected
figures below come from the kernel's rules, worked by hand:

* interval ``q`` covers ``[T0 + q ms, T0 + (q + 1) ms)``; an aggregation is 10 intervals;
* a target whose leader exited at ``g`` counts nothing in an interval that ends at or
  after ``g`` (``damon_va_check_accesses`` finds no mm), and nothing after;
* its regions are still reported (``kdamond_reset_aggregated`` walks every target);
* the loop stops before the first interval that starts when no target is valid
  (``kdamond_need_stop``): an aggregation cut short writes no snapshot.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from perfdata_writer import S, Comm, Event, Exit, Fork, Mmap2, Sample, assign_ids, write_perf_data

from typer.testing import CliRunner

from tracedamon import ingest, open_trace, replay
from tracedamon.cli import app
from tracedamon.engine.config import MonitorConfig
from tracedamon.engine.core import AccessSamples, Monitor, Target
from tracedamon.engine.fixed import FixedMonitor
from tracedamon.errors import InputError
from tracedamon.pipeline.exits import process_exits

MS = 1_000_000
T0 = 1_000 * MS  # the first sample
A, B, C = 100, 200, 300  # two monitored processes and a bystander that samples on
A_THREAD = 101
MAPS = {A: 0x1000_0000, B: 0x5000_0000, C: 0x9000_0000}
SEG = 0x10000  # three mappings of 64 KiB, 16 MiB apart: two big gaps
HOT = 0x3000  # the page each process touches, in its first mapping
OPTS = dict(sample_us=1000, aggr_us=10_000, update_us=10**9, seed=1)


def _event() -> Event:
    ev = Event(
        "page-faults",
        type=1,
        config=2,
        sample_type=S.IP | S.TID | S.TIME | S.ADDR | S.ID | S.CPU | S.PERIOD,
    )
    assign_ids([ev])
    return ev


def _trace(tmp_path, exits: dict, threads=(), samples_until=None) -> str:
    """A trace directory: processes A, B and C, each sampling its hot page every 0.5 ms
    from T0 on until it exits (``samples_until[pid]`` overrides; C until 150 ms);
    ``exits`` = {(pid, tid): time}; ``threads`` = [(pid, tid, fork_time)]."""
    ev = _event()
    recs: list = []
    for pid, base in MAPS.items():
        sid = dict(pid=pid, tid=pid, time=T0 - 10 * MS)
        recs.append(Comm(ev, pid=pid, tid=pid, comm=f"p{pid}", exec=True, sid=sid))
        for k in range(3):
            recs.append(
                Mmap2(
                    ev,
                    pid=pid,
                    tid=pid,
                    start=base + k * 0x100_0000,
                    len=SEG,
                    prot=3,
                    flags=0x22,
                    filename="//anon",
                    sid=sid,
                )
            )
    for pid, tid, t in threads:
        recs.append(Fork(ev, pid=pid, ppid=pid, tid=tid, ptid=pid, time=t, sid=dict(time=t)))
    ends = {A: 150 * MS, B: 150 * MS, C: 150 * MS}
    for (pid, tid), t in exits.items():
        if tid == pid:
            ends[pid] = t - T0
    ends.update(samples_until or {})
    for step in range(0, 300):
        t = T0 + step * MS // 2
        for pid in (A, B, C):
            if t - T0 < ends[pid]:
                recs.append(
                    Sample(
                        ev,
                        ip=0x401000,
                        pid=pid,
                        tid=pid,
                        time=t,
                        addr=MAPS[pid] + HOT + 8,
                        id=ev.ids[0],
                        cpu=0,
                        period=1,
                    )
                )
    for (pid, tid), t in exits.items():
        recs.append(Exit(ev, pid=pid, ppid=1, tid=tid, ptid=1, time=t, sid=dict(time=t)))
    recs.sort(key=lambda r: r["time"] if isinstance(r, Sample) else r.sid.get("time", 0))
    path = write_perf_data(str(tmp_path / "exit.data"), [ev], recs)
    out = tmp_path / "exit.td"
    ingest(path, out)
    return str(out)


def _hot_nr(df: pd.DataFrame, target: int) -> list[int]:
    """Per snapshot, nr_accesses of the region of ``target`` holding its hot page."""
    base = MAPS[(A, B)[target]] + HOT
    d = df[(df.target == target) & (df.start <= base) & (df.end > base)]
    return d.sort_values("snapshot").nr_accesses.tolist()


@pytest.mark.parametrize("fixed", [False, True])
def test_one_process_exits_the_other_goes_on_then_both_exit(tmp_path, fixed):
    # A exits at 35.5 ms: its samples at 30.0 .. 34.5 ms count (intervals 30..34: 5);
    # the one at 35.0 ms lies in interval 35, checked at 36 ms when the mm is gone.
    # B exits at 72 ms: the loop stops before interval 72, so aggregation 7 (70..79)
    # is cut short: snapshots 0..6, although C's samples go on to 150 ms.
    td = _trace(tmp_path, {(A, A): T0 + 35 * MS + MS // 2, (B, B): T0 + 72 * MS})
    extra = dict(min_region=4096, max_region=4096) if fixed else {}
    h = replay(td, pids=[A, B], **OPTS, **extra)
    df = h.df
    assert sorted(df.snapshot.unique()) == list(range(7))
    assert df.time_ns.max() == T0 + 70 * MS
    assert _hot_nr(df, 0) == [10, 10, 10, 5, 0, 0, 0]
    assert _hot_nr(df, 1) == [10] * 7
    # A's regions are still reported after its exit, idle, over the same three regions
    a = df[df.target == 0]
    assert a.groupby("snapshot").size().index.tolist() == list(range(7))
    assert (a[a.snapshot >= 4].nr_accesses == 0).all()
    spans = a.groupby("snapshot").apply(lambda g: int((g.end - g.start).sum()))
    assert spans.nunique() == 1
    t = h.metadata["targets"]
    assert (t[0]["mm_exit_ns"], t[0]["exit_ns"]) == (T0 + 35 * MS + MS // 2,) * 2
    assert (t[1]["mm_exit_ns"], t[1]["exit_ns"]) == (T0 + 72 * MS,) * 2


def test_info_names_the_exits(tmp_path):
    td = _trace(
        tmp_path,
        {(A, A): T0 + 35 * MS, (A, A_THREAD): T0 + 45 * MS, (B, B): T0 + 72 * MS},
        threads=[(A, A_THREAD, T0 - 5 * MS)],
    )
    out = tmp_path / "r.parquet"
    replay(td, pids=[A, B], output=out, **OPTS)
    res = CliRunner().invoke(app, ["info", str(out)])
    assert res.exit_code == 0, res.output
    assert "  exits: pid 100 at 1.035000 s (last thread 1.045000 s), pid 200 at 1.072000 s" in (
        res.output
    )


def test_without_exits_the_history_runs_to_the_last_sample(tmp_path):
    # the same processes, no EXIT records: the history ends with C's last sample
    td = _trace(tmp_path, {}, samples_until={A: 35 * MS + MS // 2, B: 72 * MS})
    h = replay(td, pids=[A, B], **OPTS)
    assert h.df.snapshot.max() == 14
    assert "exit_ns" not in h.metadata["targets"][0]


def test_leader_exits_before_its_thread(tmp_path):
    # A's leader exits at 35.5 ms, its thread 101 at 45.2 ms: the target has no mm from
    # 35.5 ms (A's samples after it are lost, as in the kernel, which looks the mm up
    # through the leader) and stays valid until 45.2 ms; with B gone at 40 ms the loop
    # stops before interval 46: aggregation 4 (40..49) is cut short.
    td = _trace(
        tmp_path,
        {
            (A, A): T0 + 35 * MS + MS // 2,
            (A, A_THREAD): T0 + 45 * MS + MS // 5,
            (B, B): T0 + 40 * MS,
        },
        threads=[(A, A_THREAD, T0 - 5 * MS)],
        samples_until={A: 45 * MS},
    )
    h = replay(td, pids=[A, B], **OPTS)
    df = h.df
    assert sorted(df.snapshot.unique()) == [0, 1, 2, 3]
    assert _hot_nr(df, 0) == [10, 10, 10, 5]
    t = h.metadata["targets"][0]
    assert (t["mm_exit_ns"], t["exit_ns"]) == (T0 + 35 * MS + MS // 2, T0 + 45 * MS + MS // 5)


def test_every_target_gone_before_the_first_aggregation(tmp_path):
    td = _trace(tmp_path, {(A, A): T0 + 5 * MS})
    with pytest.raises(InputError, match=r"exited \(pid 100 at 1005000000 ns\) before the first"):
        replay(td, pids=[A], **OPTS)


def test_fvaddr_of_every_process_has_no_exit(tmp_path):
    # fvaddr without pids monitors the ranges in every process: no one process's exit
    # applies; the history ends with the last sample (C's, at 44.5 ms)
    td = _trace(tmp_path, {(A, A): T0 + 35 * MS, (B, B): T0 + 40 * MS, (C, C): T0 + 45 * MS})
    h = replay(td, ops="fvaddr", ranges=["0x10000000-0x10010000"], **OPTS)
    assert h.df.snapshot.max() == 3
    assert "exit_ns" not in h.metadata["targets"][0]


def test_process_exits_from_tasks_rows():
    rows = pd.DataFrame(
        [
            (10, "COMM", 7, 7),
            (11, "FORK", 7, 8),
            (50, "EXIT", 7, 7),
            (60, "EXIT", 7, 8),
            # pid 7 reused by a new process afterwards: its rows are not the target's
            (70, "FORK", 7, 7),
            (90, "EXIT", 7, 7),
            (20, "EXIT", 9, 10),  # a thread of 9 exits; 9 itself never does
        ],
        columns=["time_ns", "kind", "pid", "tid"],
    )
    assert process_exits(rows, 7) == (50, 60)
    assert process_exits(rows, 9) == (None, None)
    assert process_exits(rows, 11) == (None, None)
    # a single-threaded process: its leader's exit is the end
    assert process_exits(rows.iloc[[0, 2]], 7) == (50, 50)
    # the leader exited, a thread has no EXIT in the trace: the target stays valid
    assert process_exits(rows[(rows.time_ns != 60)], 7) == (50, None)


def _engine_case(ops: str):
    """Two fvaddr/paddr-style targets over one page each; samples every interval."""
    cfg = MonitorConfig(
        sample_us=1000, aggr_us=4000, update_us=10**9, min_region=4096, max_region=4096
    )
    rg0 = np.array([[0x10000, 0x11000]], np.int64)
    rg1 = np.array([[0x20000, 0x21000]], np.int64)
    t = np.arange(0, 20 * MS, MS // 2, dtype=np.int64)
    tgt = np.tile([0, 1], t.size // 2)[: t.size]
    addr = np.where(tgt == 0, 0x10008, 0x20008)
    targets = [
        Target(lambda _t, r=rg0: r, pid=1, exit_ns=6 * MS + 1, mm_exit_ns=5 * MS + 1),
        Target(lambda _t, r=rg1: r, pid=2, exit_ns=10 * MS),
    ]
    return cfg, targets, AccessSamples(t, tgt, addr)


@pytest.mark.parametrize("engine", ["listing", "sparse"])
def test_engine_counts_and_stops(engine):
    # target 0: mm gone at 5 ms + 1 ns: intervals 0..3 count (ends 1..4 ms), interval 4
    # (end 5 ms < 5 ms + 1) too, then nothing; target 1 exits at 10 ms: the loop stops
    # before interval 10, so the third aggregation (8..11) is cut short.
    cfg, targets, acc = _engine_case("fvaddr")
    if engine == "listing":
        h = Monitor(cfg, targets, ops="fvaddr").run(acc, 0, 20 * MS)
    else:
        h = FixedMonitor(cfg, targets, ops="fvaddr").run(acc, 0, 20 * MS)
    assert h.n_snapshots == 2
    by = {(int(s), int(g)): int(n) for s, g, n in zip(h.snapshot, h.target, h.nr_accesses)}
    assert by == {(0, 0): 4, (0, 1): 4, (1, 0): 1, (1, 1): 4}


def test_paddr_targets_are_always_valid():
    cfg, targets, acc = _engine_case("paddr")
    h = Monitor(cfg, targets, ops="paddr").run(acc, 0, 20 * MS)
    assert h.n_snapshots == 5  # every aggregation the samples complete


def test_a_samples_table_takes_its_traces_tasks(tmp_path):
    # an in-memory replay (the sweep's workers replay tables) gets the exits from the
    # tasks given with it, and so equals the trace directory's replay
    td = _trace(tmp_path, {(A, A): T0 + 35 * MS + MS // 2, (B, B): T0 + 72 * MS})
    tr = open_trace(td)
    side = dict(mmaps=tr.df("mmaps"), trace_meta=tr.meta)
    h = replay(tr.table("samples"), pids=[A, B], tasks=tr.df("tasks"), **side, **OPTS)
    assert h.table.equals(replay(td, pids=[A, B], **OPTS).table)
    assert h.metadata["targets"][1]["exit_ns"] == T0 + 72 * MS
    with pytest.raises(InputError, match=r"the tasks table given lacks the column\(s\) kind, pid"):
        replay(tr.table("samples"), pids=[A], tasks={"time_ns": [1], "tid": [1]}, **side, **OPTS)
