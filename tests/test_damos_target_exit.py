"""DAMOS on a target whose process has exited: the kernel's rules, worked by hand.

What the kernel does (``mm/damon/core.c``, ``mm/damon/vaddr.c``, v6.15 ... v6.18):

* ``kdamond_apply_schemes`` walks every target's regions, valid or not;
* ``damos_apply_scheme`` splits for the quota, runs the core filters, emits
  ``damos_before_apply``, calls the ops, then charges the quota by the region's size
  (``quota->charged_sz += sz``, whatever was applied), sets the resume point when the
  quota is full, resets the region's age (any action but ``stat``) and updates the
  stats: ``nr_tried``/``sz_tried`` by the region, ``nr_applied`` only when
  ``sz_applied`` is not 0;
* vaddr's ``damon_va_apply_scheme`` (``damos_madvise``, ``damos_va_migrate``,
  ``damos_va_stat``) returns 0 bytes applied and 0 bytes passed when
  ``damon_get_mm()`` finds no mm, i.e. from the target's leader's exit on.

So after the exit the dead target's regions show in ``damos_apply`` (tried) with nothing
applied, and still charge the quota and lose their age.

The trace (``test_target_exit._trace``): processes A and B sample their hot page every
0.5 ms from T0; A exits at T0 + 35.5 ms, B at T0 + 72 ms; 1 ms sample intervals, 10 ms
aggregations: snapshots 0..6 at T0 + 10 ms ... T0 + 70 ms, and DAMOS runs at each of
them.  At 10, 20, 30 ms both have their mm; at 40 .. 70 ms A has none.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_target_exit import MS, OPTS, T0, A, B, _trace

from tracedamon import replay
from tracedamon.damos_replay import in_loop
from tracedamon.damos_run import damos
from tracedamon.engine.config import MonitorConfig
from tracedamon.engine.core import AccessSamples, Monitor
from tracedamon.engine.fixed import FixedMonitor
from tracedamon.engine.damos import (
    AccessPattern,
    Context,
    Filter,
    Quota,
    Scheme,
    apply_schemes,
    new_state,
)

UMAX = 2**32 - 1
LMAX = 2**64 - 1
EXIT_A = T0 + 35 * MS + MS // 2


def every(action: str, quota: Quota = Quota(), filters=()) -> Scheme:
    """A scheme whose access pattern every region matches."""
    return Scheme(action, AccessPattern(0, LMAX, 0, UMAX, 0, UMAX), quota, filters=filters)


@pytest.fixture(scope="module")
def exits(tmp_path_factory):
    return _trace(tmp_path_factory.mktemp("damos-exit"), {(A, A): EXIT_A, (B, B): T0 + 72 * MS})


def _per_step(apps: pd.DataFrame, stats: pd.DataFrame) -> pd.DataFrame:
    """Per step: the applications' bytes and counts per target, and the scheme's stats
    counters' increments over the step."""
    apps = apps.assign(sz=(apps.end.astype("int64") - apps.start.astype("int64")))
    g = apps.groupby(["time_ns", "target"]).sz.agg(["size", "sum"]).unstack(fill_value=0)
    st = stats.sort_values("time_ns").set_index("time_ns")
    cols = ["nr_tried", "sz_tried", "nr_applied", "sz_applied", "sz_ops_filter_passed"]
    inc = st[cols].astype("int64").diff().fillna(st[cols].astype("int64")).astype("int64")
    out = pd.DataFrame(
        {
            "n0": g["size"][0],
            "n1": g["size"][1],
            "sz0": g["sum"][0],
            "sz1": g["sum"][1],
        }
    ).join(inc)
    assert len(out) == len(st)
    return out


def _check_pageout_everything(apps: pd.DataFrame, stats: pd.DataFrame, outcome) -> None:
    s = _per_step(apps, stats)
    assert s.index.tolist() == [T0 + k * 10 * MS for k in range(1, 8)]
    alive = s.index < EXIT_A
    # every region of both targets is tried at every step, before and after the exit
    assert (s.n0 > 0).all() and (s.n1 > 0).all()
    assert (s.nr_tried == s.n0 + s.n1).all()
    assert (s.sz_tried == s.sz0 + s.sz1).all()
    # vaddr pageout madvises the whole (page-aligned) region: while A has its mm both
    # targets' bytes are applied; after its exit only B's
    assert (s.sz_applied[alive] == (s.sz0 + s.sz1)[alive]).all()
    assert (s.nr_applied[alive] == (s.n0 + s.n1)[alive]).all()
    assert (s.sz_applied[~alive] == s.sz1[~alive]).all()
    assert (s.nr_applied[~alive] == s.n1[~alive]).all()
    assert (s.sz_ops_filter_passed == 0).all()  # madvise actions evaluate no ops filters
    # the outcome model pages out what was applied: nothing of A after its exit
    o = outcome.to_pandas().set_index("time_ns")
    assert o.bytes_applied.astype("int64").reindex(s.index).tolist() == s.sz_applied.tolist()


def test_in_loop_pageout_applies_nothing_to_the_exited_target(exits):
    h = replay(exits, pids=[A, B], damos=in_loop([every("pageout")]), **OPTS)
    apps = h.damos.applications.to_pandas()
    stats = h.damos.stats.to_pandas()
    _check_pageout_everything(apps, stats, h.damos.outcome)
    # the dead target is still walked: its regions lose their age like B's (the
    # snapshot written right after each step shows the reset)
    df = h.df
    assert (df[df.time_ns > EXIT_A].age == 0).all()


def test_offline_pageout_over_the_history_applies_nothing_after_the_exit(exits, tmp_path):
    # the history written by a replay without schemes records the exits in its
    # metadata; `tracedamon damos` over it follows the same rule
    out = tmp_path / "r.parquet"
    replay(exits, pids=[A, B], output=out, **OPTS)
    res = damos(out, [every("pageout")])
    _check_pageout_everything(res.applications.to_pandas(), res.stats.to_pandas(), res.outcome)
    # the in-memory history gives the same
    res2 = damos(replay(exits, pids=[A, B], **OPTS), [every("pageout")])
    assert res2.stats.equals(res.stats)


def test_the_in_loop_and_offline_stats_agree(exits):
    h = replay(exits, pids=[A, B], damos=in_loop([every("pageout")]), **OPTS)
    off = damos(replay(exits, pids=[A, B], **OPTS), [every("pageout")])
    cols = ["time_ns", "nr_tried", "sz_tried", "nr_applied", "sz_applied"]
    assert h.damos.stats.to_pandas()[cols].equals(off.stats.to_pandas()[cols])


def test_without_exit_records_every_step_applies_to_both(tmp_path):
    # the same sampling, no EXIT records: the history knows of no exit, and every
    # application to A is applied as before
    td = _trace(tmp_path, {}, samples_until={A: 35 * MS + MS // 2, B: 72 * MS})
    res = damos(replay(td, pids=[A, B], **OPTS), [every("pageout")])
    s = _per_step(res.applications.to_pandas(), res.stats.to_pandas())
    assert (s.sz_applied == s.sz0 + s.sz1).all()


def _two_targets():
    """Two vaddr targets of two 4 KiB-aligned regions each, every region idle and old."""
    regs = {
        "start": np.array([0x1000, 0x3000, 0x10000, 0x14000], np.int64),
        "end": np.array([0x3000, 0x4000, 0x14000, 0x15000], np.int64),
        "nr": np.zeros(4, np.int64),
        "age": np.full(4, 7, np.int64),
        "toff": np.array([0, 2, 4], np.int64),
    }
    return regs


CTX = Context("vaddr", 1000, 10_000, 4096)


@pytest.mark.parametrize("action", ["pageout", "cold", "willneed", "migrate_hot", "stat"])
def test_each_vaddr_action_applies_and_passes_nothing_without_an_mm(action):
    # target 0's mm went at 5 ms; the step runs at 10 ms.  stat gets an anon filter so
    # that it counts passed bytes (damos_va_stat counts nothing without ops filters).
    filters = (Filter("anon", matching=True, allow=True),) if action == "stat" else ()
    state = new_state([every(action, filters=filters)], CTX)
    res = apply_schemes(state, _two_targets(), sis=10, now_ns=10 * MS, mm_exit_ns=[5 * MS, None])
    a = res.applications
    assert a["target"].tolist() == [0, 0, 1, 1]  # both targets walked, in order
    assert a["sz_applied"][:2].tolist() == [0, 0]
    assert a["sz_ops_filter_passed"][:2].tolist() == [0, 0]
    st = state.states[0]
    assert (st.nr_tried, st.sz_tried) == (4, 0x3000 + 0x5000)
    live = 0x5000 if action != "stat" else 0  # stat acts on nothing
    assert (st.nr_applied, st.sz_applied) == (2 if live else 0, live)
    # passed bytes: the whole of target 1 (no page data: every page passes) where the
    # ops filter (migrate's walk, stat's filter), none for the madvise actions
    counts = action in ("migrate_hot", "stat")
    assert st.sz_ops_filter_passed == (0x5000 if counts else 0)
    # the region walk is the kernel's whatever the mm: charged by size, ages reset
    assert st.charged_sz == 0x8000
    ages = res.regions["age"].tolist()
    assert ages == ([7, 7, 7, 7] if action == "stat" else [0, 0, 0, 0])


def test_the_dead_target_charges_the_quota():
    # a 16 KiB quota: target 0 (no mm) takes 12 KiB of it (8 + 4 KiB, nothing
    # applied); target 1's first region (16 KiB) is split at the 4 KiB left, which is
    # applied; the quota is then full, the resume point right after that piece
    # (released: charge_addr_from = r->ar.end)
    q = Quota(sz=0x4000, reset_interval_ms=1000)
    state = new_state([every("pageout", quota=q)], CTX)
    res = apply_schemes(state, _two_targets(), sis=10, now_ns=10 * MS, mm_exit_ns=[5 * MS, None])
    a = res.applications
    sizes = (a["end"] - a["start"]).tolist()
    assert list(zip(a["target"].tolist(), sizes)) == [(0, 0x2000), (0, 0x1000), (1, 0x1000)]
    assert a["sz_applied"].tolist() == [0, 0, 0x1000]
    st = state.states[0]
    assert (st.charged_sz, st.sz_applied, st.nr_applied) == (0x4000, 0x1000, 1)
    assert (st.charge_target_from, st.charge_addr_from) == (1, 0x11000)


def test_an_mm_exit_after_the_step_changes_nothing():
    # has_mm holds strictly before the exit: at 10 ms an exit at 10 ms + 1 ns is ahead
    state = new_state([every("pageout")], CTX)
    apply_schemes(state, _two_targets(), sis=10, now_ns=10 * MS, mm_exit_ns=[10 * MS + 1, None])
    assert state.states[0].sz_applied == 0x8000
    # from the exit's own time on the mm is gone
    state = new_state([every("pageout")], CTX)
    apply_schemes(state, _two_targets(), sis=10, now_ns=10 * MS, mm_exit_ns=[10 * MS, None])
    assert state.states[0].sz_applied == 0x5000


def test_the_ops_time_model_counts_no_call_that_found_no_mm():
    # total_charged_ns (what a time quota reads) models the ops' time per call and per
    # byte; a call that finds no mm returns before any page: only target 1's 2 calls
    # and 20 KiB are timed
    ctx = Context("vaddr", 1000, 10_000, 4096, ns_per_region_call=1000, ns_per_byte=1.0)
    state = new_state([every("pageout")], ctx)
    apply_schemes(state, _two_targets(), sis=10, now_ns=10 * MS, mm_exit_ns=[5 * MS, None])
    assert state.states[0].total_charged_ns == 2 * 1000 + 0x5000


def test_paddr_has_no_mm_to_lose():
    state = new_state([every("pageout")], Context("paddr", 1000, 10_000, 4096))
    apply_schemes(state, _two_targets(), sis=10, now_ns=10 * MS, mm_exit_ns=[5 * MS, None])
    assert state.states[0].sz_applied == 0x8000


# -- a context without targets ------------------------------------------------------------
# kdamond_need_stop() returns true when the ops set has target_valid and no target is
# valid: its loop over the targets finds none, so a vaddr/fvaddr context with no target
# stops before its first sample interval; paddr (no target_valid) never stops this way.
# The replay never builds such a context (vaddr without pids takes the process with the
# most samples, fvaddr without pids one target of every process, a pid without samples
# is refused), so this is the engine's own rule.


@pytest.mark.parametrize("engine", ["listing", "sparse"])
@pytest.mark.parametrize("ops", ["vaddr", "fvaddr", "paddr"])
def test_a_context_without_targets(engine, ops):
    cfg = MonitorConfig(
        sample_us=1000, aggr_us=4000, update_us=10**9, min_region=4096, max_region=4096
    )
    t = np.arange(0, 20 * MS, MS, dtype=np.int64)
    acc = AccessSamples(t, np.zeros(t.size, np.int64), np.full(t.size, 0x1008, np.int64))
    mon = (Monitor if engine == "listing" else FixedMonitor)(cfg, [], ops=ops)
    h = mon.run(acc, 0, 20 * MS)
    # paddr: every aggregation the samples complete (20 ms / 4 ms), each of no region
    assert h.n_snapshots == (5 if ops == "paddr" else 0)
    assert h.start.size == 0
