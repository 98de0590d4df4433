"""DAMON trace ingest of generated traces, whose snapshots are known by construction:
every text layout round-trips, and a lost event never yields a wrong snapshot.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracedamon.errors import TraceFormatError
from tracedamon.ingest import ingest
from tracedamon.store.trace import open_trace

# --- generated traces: snapshots known by construction -------------------------------


def _layout(kind, comm, pid, cpu, t_ns, ev, fields):
    sec, ns = divmod(t_ns, 10**9)
    us = ns // 1000
    if kind == "perf":
        return f"{comm:>16} {pid:>6} [{cpu:03d}] {sec:>5}.{us:06d}: {'damon:' + ev:>30}: {fields}\n"
    if kind == "perf_ns":
        return f"{comm:>16} {pid}/{pid} [{cpu:03d}] {sec}.{ns:09d}: 1 damon:{ev}: {fields}\n"
    if kind == "ftrace":
        return f"{comm:>16}-{pid:<7} [{cpu:03d}] .N... {sec:>5}.{us:06d}: {ev}: {fields}\n"
    return f"{comm}-{pid} [{cpu:03d}] {sec}.{us:06d}: {ev}: {fields}\n"  # trace-cmd 3.2


@st.composite
def damon_histories(draw):
    """Runs of a kdamond with 1-2 targets: each snapshot a sorted, disjoint region list."""
    runs = []
    t = draw(st.integers(1, 10**5)) * 10**6
    for r in range(draw(st.integers(1, 2))):
        pid = 100 + r
        ntg = draw(st.integers(1, 2))
        snaps = []
        for s in range(draw(st.integers(1, 6))):
            per_tg = []
            for tg in range(ntg):
                n = draw(st.integers(1, 7))
                cuts = sorted(draw(st.sets(st.integers(1, 10**6), min_size=n + 1, max_size=n + 1)))
                base = (tg + 1) << 40
                regs = [
                    (
                        base + cuts[i] * 4096,
                        base + cuts[i + 1] * 4096,
                        draw(st.integers(0, 20)),
                        draw(st.integers(0, 300)),
                    )
                    for i in range(n)
                ]
                per_tg.append(regs)
            snaps.append((t, per_tg))
            t += 100_000_000 + draw(st.integers(0, 3_000_000))
        runs.append((pid, ntg, snaps))
        t += 10**9
    return runs


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    damon_histories(),
    st.sampled_from(["perf", "perf_ns", "ftrace", "tracecmd"]),
    st.lists(st.integers(0, 10**6), max_size=3),
    st.data(),
)
def test_generated_traces_round_trip(tmp_path, runs, kind, dups, data):
    lines, expect, tunes = [], [], []
    for r_i, (pid, ntg, snaps) in enumerate(runs):
        for s_i, (t, per_tg) in enumerate(snaps):
            for tg, regs in enumerate(per_tg):
                for k, (a, b, nr, age) in enumerate(regs):
                    tt = t + tg * 50_000 + k * 2_000
                    lines.append(
                        _layout(
                            kind,
                            "kdamond.0",
                            pid,
                            1,
                            tt,
                            "damon_aggregated",
                            f"target_id={tg} nr_regions={len(regs)} {a}-{b}: {nr} {age}",
                        )
                    )
                    expect.append(
                        (
                            r_i,
                            s_i,
                            tg,
                            a,
                            b,
                            nr,
                            age,
                            (t + tg * 50_000) // 1000 * 1000
                            if kind != "perf_ns"
                            else t + tg * 50_000,
                        )
                    )
            if data.draw(st.booleans()):
                lines.append(
                    _layout(
                        kind,
                        "kdamond.0",
                        pid,
                        0,
                        t + 90_000_000,
                        "damon_monitor_intervals_tune",
                        f"sample_us={5000 + s_i}",
                    )
                )
                tunes.append(5000 + s_i)
    for d in dups:  # exact duplicates, next to the original
        i = d % len(lines)
        lines.insert(i, lines[i])
    p = tmp_path / f"gen_{kind}.txt"
    p.write_text("".join(lines))
    out = tmp_path / f"gen_{kind}.td"
    ingest([p], out, format="damon", force=True)
    df = open_trace(out).df("regions")
    got = list(
        zip(
            df["run"],
            df["snapshot"],
            df["target"],
            df["start"],
            df["end"],
            df["nr_accesses"],
            df["age"],
            df["time_ns"],
        )
    )
    assert [tuple(int(x) for x in g) for g in got] == sorted(expect)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["duplicates_dropped"] == len(dups)
    tr = open_trace(out)
    if tunes:
        assert tr.df("intervals_tune")["sample_us"].tolist() == tunes
        assert meta["intervals"]["tuned"] is True
        assert meta["intervals"]["sample_us"] == tunes[0]
        assert meta["intervals"]["source"] == "record"
    else:
        assert tr.num_rows("intervals_tune") == 0


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(damon_histories(), st.integers(0, 10**6), st.data())
def test_a_lost_line_never_yields_a_wrong_snapshot(tmp_path, runs, victim, data):
    """Remove one event anywhere: the reader either refuses (TraceFormatError) or returns
    only snapshots that are exactly right (a partial one at an edge, or a one-region
    snapshot that vanished whole, is simply absent)."""
    lines, truth = [], {}
    for pid, ntg, snaps in runs:
        for t, per_tg in snaps:
            for tg, regs in enumerate(per_tg):
                t0 = t + tg * 50_000
                truth[(pid, tg, t0 // 1000 * 1000)] = [(a, b, n, g) for a, b, n, g in regs]
                for k, (a, b, nr, age) in enumerate(regs):
                    lines.append(
                        _layout(
                            "perf",
                            "kdamond.0",
                            pid,
                            1,
                            t0 + k * 2_000,
                            "damon_aggregated",
                            f"target_id={tg} nr_regions={len(regs)} {a}-{b}: {nr} {age}",
                        )
                    )
    del lines[victim % len(lines)]
    if not lines:
        return
    p = tmp_path / "lost.txt"
    p.write_text("".join(lines))
    out = tmp_path / "lost.td"
    try:
        ingest([p], out, format="damon", force=True)
    except TraceFormatError as e:
        assert e.line is not None or "no complete" in str(e) or "no damon" in str(e)
        return
    df = open_trace(out).df("regions")
    meta = json.loads((out / "meta.json").read_text())
    pid_of_run = {r["run"]: r["kdamond_pid"] for r in meta["damon_runs"]}
    for (run, snap, tg), g in df.groupby(["run", "snapshot", "target"]):
        key = (pid_of_run[run], tg, int(g["time_ns"].iloc[0]))
        got = [
            tuple(int(x) for x in r)
            for r in g[["start", "end", "nr_accesses", "age"]].itertuples(index=False)
        ]
        assert key in truth and got == truth[key]
