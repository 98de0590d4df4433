"""Kernel profiles (``--kernel``): released and mainline-2026, each against the kernel.

Oracles: the kernel's own self-test vectors of ``prandom_u32_state`` (lib/random32.c,
``prandom_state_selftest``: lfsr113 against GSL's taus113), the KUnit cases of the mm
tree's mm/damon/tests/core-kunit.h (split above max/2, merge of a region list, merge
of two), worked examples computed by hand below from mm/damon/core.c's code
(``kdamond_split_regions``, ``damon_split_some_regions``, ``kdamond_merge_regions``,
``damon_find_biggest_system_ram`` / ``damon_find_system_rams_range``), and the
independent reference (tests/engine_reference.py), which models both profiles.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from engine_reference import MultiplyDraws, lfsr113
from tracedamon.engine import core
from tracedamon.engine.config import MonitorConfig
from tracedamon.engine.core import AccessSamples, Monitor, Target, merge_regions
from tracedamon.engine.ops.paddr import default_range
from tracedamon.engine.prng import lfsr113_below, lfsr113_new, lfsr113_next
from tracedamon.engine.profiles import PROFILES, kernel_profile
from tracedamon.errors import ConfigError

PAGE = 4096
GIB = 1 << 30
U32 = (1 << 32) - 1


# -- lfsr113 against the kernel's self-test ------------------------------------------------
def seed_early(seed: int) -> np.ndarray:
    """lib/random32.c's ``prandom_seed_early(state, seed, false)`` (the self-test's seeding:
    a 69069 LCG chain, each word raised above its minimum) -- written here for the test."""
    words, x = [], seed
    for low in (2, 8, 16, 128):
        x = (x * 69069) & U32
        x = x + low if x < low else x
        words.append(x)
    return np.array(words, np.uint64)


# (seed, draws after the 10 warm-up draws, expected draw) from prandom_state_selftest:
# test1 (one draw) and the first, a middle and the last cases of test2 (taus113 of GSL)
SELFTEST = [
    (1, 1, 3484351685),
    (2, 1, 2623130059),
    (3, 1, 3125133893),
    (4, 1, 984847254),
    (931557656, 959, 2975593782),
    (1339693295, 876, 3887776532),
    (1967883163, 508, 10734624),
    (1516232129, 557, 3173877),
    (407983964, 921, 728767059),
]


@pytest.mark.parametrize("seed, nth, expected", SELFTEST)
def test_lfsr113_matches_kernel_selftest(seed, nth, expected):
    st_ = seed_early(seed)
    for _ in range(10):  # prandom_warmup
        lfsr113_next(st_)
    for _ in range(nth - 1):
        lfsr113_next(st_)
    assert int(lfsr113_next(st_)) == expected


@pytest.mark.parametrize("seed", [0, 1, 3, 2**32 - 1, 2**32, 2**63 + 12345, 2**64 - 1])
def test_lfsr113_seeding_and_stream_equal_the_reference(seed):
    """prandom_seed_state(seed) then prandom_u32_state, engine vs the reference's own."""
    st_ = lfsr113_new(seed)
    ref = lfsr113(seed)
    assert [int(lfsr113_next(st_)) for _ in range(200)] == [next(ref) for _ in range(200)]


def test_lfsr113_seeding_words():
    # prandom_seed_state: i = (seed >> 32) ^ (seed << 10) ^ seed, truncated to 32 bits;
    # a word below its minimum m becomes word + m.  seed 0 -> i = 0 -> (2, 8, 16, 128)
    assert lfsr113_new(0).tolist() == [2, 8, 16, 128]
    # seed 1 -> i = 1 ^ 1024 = 1025: above 2, 8, 16 and 128
    assert lfsr113_new(1).tolist() == [1025] * 4
    # seed 2**32 -> i = 1 ^ 0 ^ 0 = 1 (the low word and << 10 vanish mod 2**32)
    assert lfsr113_new(2**32).tolist() == [3, 9, 17, 129]


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**64 - 1), st.one_of(st.integers(1, U32), st.integers(U32 + 1, 2**63 - 1)))
def test_lfsr113_below_is_one_multiplication(seed, span):
    """(u64)rnd * span >> 32, no rejection; two words (first the high one) and the top 64
    bits of the 128-bit product for spans of 2**32 and more."""
    st_ = lfsr113_new(seed)
    words = lfsr113(seed)
    got = [int(lfsr113_below(st_, span)) for _ in range(5)]
    want = MultiplyDraws(words, __import__("collections").deque()).below
    assert got == [want(span) for _ in range(5)]
    assert all(0 <= g < span for g in got)


def test_lfsr113_below_has_no_32bit_truncation():
    # released kernels' u32 argument cuts a span of 3 * 2**32 to 0 (a raw u32: below
    # 2**32); mainline maps the whole span: about 2/3 of the draws lie above 2**32
    st_ = lfsr113_new(7)
    vals = [int(lfsr113_below(st_, 3 << 32)) for _ in range(300)]
    assert 150 < sum(v >= 1 << 32 for v in vals) < 250 and max(vals) < 3 << 32


# -- profiles and the configuration ---------------------------------------------------------
def test_profile_names_are_damos_profile_names():
    from tracedamon.engine.damos.scheme import PROFILES as DAMOS_PROFILES

    assert set(PROFILES) == set(DAMOS_PROFILES)


def test_mainline_config_brings_its_bundle():
    c = MonitorConfig(kernel="mainline-2026")
    assert (c.min_nr_regions_mode, c.fix_age_once, c.fix_rand32) == ("apply", True, True)
    assert c.to_dict()["kernel"] == "mainline-2026"
    assert MonitorConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ConfigError, match="mainline-2026 handles min_nr_regions as 'apply'"):
        MonitorConfig(kernel="mainline-2026", min_nr_regions_mode="legacy")
    with pytest.raises(ConfigError, match="unknown kernel profile 'v7'"):
        MonitorConfig(kernel="v7")


def test_released_config_is_unchanged():
    c = MonitorConfig()
    assert c.min_nr_regions_mode == "legacy" and not c.fix_age_once and not c.fix_rand32
    # the default profile leaves no trace in the metadata (histories stay byte-identical)
    assert "kernel" not in c.to_dict()
    assert MonitorConfig(min_nr_regions_mode="apply").min_nr_regions_mode == "apply"


# -- split: kdamond_split_regions / damon_split_some_regions ------------------------------
def monitor_with(rows_per_target, inject=None, **cfg):
    cfg.setdefault("kernel", "mainline-2026")
    mon = Monitor(
        MonitorConfig(**cfg), [Target(lambda t: None) for _ in rows_per_target], rand_inject=inject
    )
    mon.set_target_rows([[core.new_region(s, e) for s, e in rows] for rows in rows_per_target])
    return mon


def spans(mon):
    return [(int(s), int(e)) for s, e in zip(mon.arr["start"], mon.arr["end"])]


def some_split(rows, step, offset, minsz, inject=(), seed=0):
    a = {
        k: np.array([r[i] if i < 2 else 0 for r in rows], np.int64)
        for i, k in enumerate(core.FIELDS)
    }
    toff = np.array([0, len(rows)], np.int64)
    out = {k: np.empty(2 * len(rows), np.int64) for k in core.FIELDS}
    ooff = np.empty_like(toff)
    w = core.split_some_regions(
        a["start"],
        a["end"],
        a["nr"],
        a["bp"],
        a["last"],
        a["age"],
        toff,
        step,
        offset,
        minsz,
        0,
        lfsr113_new(seed),
        True,
        np.array(inject, np.int64),
        np.zeros(1, np.int64),
        out["start"],
        out["end"],
        out["nr"],
        out["bp"],
        out["last"],
        out["age"],
        ooff,
    )
    return list(zip(out["start"][:w].tolist(), out["end"][:w].tolist()))


@pytest.mark.parametrize("seed", range(5))
def test_kunit_split_above_half_progresses(seed):
    """core-kunit.h damon_test_split_above_half_progresses: min_region_sz 1, max 1500,
    760 regions of 100 -> more regions, at most 1500.  By the code: step = 1500 // 740 =
    2, offset 0, so regions 0, 2, ..., 758 are cut once (100 >= 2 and every k*100/10 lies
    in (0, 100)): exactly 760 + 380."""
    rows = [(i * 100, (i + 1) * 100) for i in range(760)]
    out = some_split(rows, 1500 // (1500 - 760), 0, 1, seed=seed)
    assert 760 < len(out) <= 1500
    assert len(out) == 1140
    assert out[0][0] == 0 and out[-1][1] == 76000
    assert all(e1 == s2 for (_, e1), (s2, _) in zip(out, out[1:]))


def test_split_above_half_worked_example():
    """mainline-2026, max_nr_regions 10, six regions of 16 pages, min 4 KiB.

    Aggregation 1: n = 6 > 10 // 2 -> split_some(step = 10 // (10 - 6) = 2), offset
    rotation 0 % 2 = 0: regions 0, 2, 4 are cut; injected draws 4, 0, 8 -> k = 5, 1, 9 ->
    left pieces 8, 1 (6553 aligned down: 1 page) and 14 pages (58982 -> 57344).
    Aggregation 2: n = 9 -> step = 10 // 1 = 10, offset 1 % 10 = 1: region 1 only (the
    right piece of region 0, 8 pages); draw 1 -> k = 2 -> 2 * 32768 // 10 = 6553 -> 4096.
    Aggregation 3: n = 10 >= max: nothing, last_nr_regions = 10.  Released kernels split
    nothing at all above max / 2."""
    P = PAGE
    rows = [(i * 16 * P, (i + 1) * 16 * P) for i in range(6)]
    mon = monitor_with([rows], max_nr_regions=10, min_nr_regions=3, inject=[4, 0, 8, 1])
    mon._split()
    assert spans(mon) == [
        (0, 8 * P),
        (8 * P, 16 * P),
        (16 * P, 32 * P),
        (32 * P, 33 * P),
        (33 * P, 48 * P),
        (48 * P, 64 * P),
        (64 * P, 78 * P),
        (78 * P, 80 * P),
        (80 * P, 96 * P),
    ]
    assert (mon.last_nr_regions, mon.split_rotation) == (6, 1)
    mon._split()
    assert spans(mon)[:3] == [(0, 8 * P), (8 * P, 9 * P), (9 * P, 16 * P)]
    assert (mon.n, mon.last_nr_regions, mon.split_rotation) == (10, 9, 2)
    mon._split()
    assert (mon.n, mon.last_nr_regions, mon.split_rotation) == (10, 10, 2)
    rel = monitor_with([rows], max_nr_regions=10, min_nr_regions=3, kernel="released")
    rel._split()
    assert spans(rel) == rows and rel.last_nr_regions == 0  # quirk Q11


def test_split_some_cuts_two_page_regions():
    # damon_split_some_regions skips only regions below 2 * min (released's split needs
    # more than 2 * min): a 2-page region is cut at one page (k = 5: 4096 * 2 // 2)
    assert some_split([(0, 2 * PAGE)], 1, 0, PAGE, inject=[4]) == [(0, PAGE), (PAGE, 2 * PAGE)]
    assert some_split([(0, PAGE)], 1, 0, PAGE, inject=[4]) == [(0, PAGE)]


def test_split_some_counts_regions_over_all_targets():
    # the index runs on across targets: step 2, offset 1 picks target 0's second region
    # and target 1's second (overall index 3)
    P = PAGE
    mon = monitor_with(
        [[(0, 10 * P), (10 * P, 20 * P)], [(100 * P, 110 * P), (110 * P, 120 * P)]],
        max_nr_regions=6,
        min_nr_regions=3,
        inject=[4, 4],
    )
    mon.split_rotation = 1
    mon._split()  # n = 4 > 3: step = 6 // 2 = 3, offset 1 % 3 = 1: overall index 1 only
    assert spans(mon) == [
        (0, 10 * P),
        (10 * P, 15 * P),
        (15 * P, 20 * P),
        (100 * P, 110 * P),
        (110 * P, 120 * P),
    ]
    assert mon.toff.tolist() == [0, 3, 5]


# -- merge: count_age and the threshold ----------------------------------------------------
def run_merge(rows, threshold, max_nr_regions, max_thres, mainline, sz_limit=1 << 40):
    m = np.array(rows, np.int64).reshape(-1, 5)
    a = {
        "start": m[:, 0].copy(),
        "end": m[:, 1].copy(),
        "nr": m[:, 2].copy(),
        "last": m[:, 3].copy(),
        "age": m[:, 4].copy(),
    }
    a["bp"] = a["nr"] * 10000
    toff = np.array([0, len(rows)], np.int64)
    n = merge_regions(
        a["start"],
        a["end"],
        a["nr"],
        a["bp"],
        a["last"],
        a["age"],
        toff,
        threshold,
        np.array([sz_limit], np.int64),
        max_nr_regions,
        max_thres,
        mainline,
        True,
        True,
        mainline,
    )
    return [tuple(int(a[k][i]) for k in ("start", "end", "nr", "age")) for i in range(n)]


def test_kunit_merge_regions_of_mainline():
    # core-kunit.h damon_test_merge_regions_of (damon_merge_regions_of(t, 9, 9999, ctx,
    # true)): 9 regions -> 0-112, 114-130, 130-156, 156-170, 170-230, 230-10170
    sa = [0, 100, 114, 122, 130, 156, 170, 184, 230]
    ea = [100, 112, 122, 130, 156, 170, 184, 230, 10170]
    nrs = [0, 0, 10, 10, 20, 30, 1, 2, 5]
    out = run_merge(
        [(s, e, n, 0, 0) for s, e, n in zip(sa, ea, nrs)], 9, 1000, 20, True, sz_limit=9999
    )
    assert [(r[0], r[1]) for r in out] == [
        (0, 112),
        (114, 130),
        (130, 156),
        (156, 170),
        (170, 230),
        (230, 10170),
    ]


def test_kunit_merge_two_mainline():
    # damon_test_merge_two: [0,100) nr 10 age 9 + [100,300) nr 20 age 21 -> nr 16, age 17
    # (the first pass counts ages first: feed them one lower, |nr - last| = 0)
    out = run_merge([(0, 100, 10, 10, 8), (100, 300, 20, 20, 20)], 100, 10, 20, True, sz_limit=1000)
    assert out == [(0, 300, 16, 17)]


def test_merge_ages_once_and_threshold_capped_worked_example():
    """Three separated regions (gaps: nothing merges) and max_nr_regions 1, so the loop
    escalates; aggr/sample = 10 (max_thres).  nr 5, last 5 (age += 1 per counting pass).

    released: thresholds 0, 1, 2, 4, 8, 16 (stops after the first pass at >= 10): six
    passes, age 3 -> 9.  mainline-2026: 0, 1, 2, 4, 8 (8 >= 10 // 2 -> next 10), 10, and
    ends after the pass at max_thres: six passes, but the age is counted on the first
    only: 3 -> 4."""
    rows = [(0, 4096, 5, 5, 3), (8192, 12288, 5, 5, 3), (16384, 20480, 5, 5, 3)]
    assert [r[3] for r in run_merge(rows, 0, 1, 10, False)] == [9, 9, 9]
    assert [r[3] for r in run_merge(rows, 0, 1, 10, True)] == [4, 4, 4]


def test_merge_threshold_cap_changes_the_last_pass():
    """Touching regions whose nr differ by 15 (possible after intervals tuning rescales
    counts), max_thres 10, max_nr_regions 1: released's passes go 8 -> 16 and the last
    one merges them; mainline-2026's last pass is at 10 and does not."""
    rows = [(0, 4096, 0, 0, 0), (4096, 8192, 15, 15, 0)]
    assert len(run_merge(rows, 8, 1, 10, False)) == 1
    assert len(run_merge(rows, 8, 1, 10, True)) == 2


# -- nr_accesses_bp: the moving sum -------------------------------------------------------
@pytest.mark.parametrize("kernel, bp_after_quiet", [("released", 2), ("mainline-2026", 0)])
def test_snapshot_bp_residue_only_in_released(kernel, bp_after_quiet):
    """aggr/sample = 3, one page: accessed in 2 of the first 3 intervals, never after.
    Released: bp after the quiet aggregation = 20000 - 3 * (20000 // 3) = 2 (quirk Q4);
    mainline-2026's on-demand moving sum at the boundary is nr_accesses: 0."""
    cfg = MonitorConfig(
        sample_us=1000,
        aggr_us=3000,
        min_nr_regions=3,
        max_nr_regions=3,
        min_region=PAGE,
        max_region=PAGE,
        kernel=kernel,
    )
    tg = [Target(lambda t: np.array([(0x10000, 0x11000)], np.int64))]
    times = np.array([100_000, 1_100_000, 5_900_000], np.int64)
    acc = AccessSamples(times, np.zeros(3, np.int64), np.array([0x10000, 0x10000, 0x20000]))
    h = Monitor(cfg, tg).run(acc, 0, int(times[-1]))
    assert h.nr_accesses.tolist() == [2, 0]
    assert h.nr_accesses_bp.tolist() == [20000, bp_after_quiet]
    from tracedamon.engine.fixed import FixedMonitor

    hf = FixedMonitor(cfg, tg).run(
        AccessSamples(times, np.zeros(3, np.int64), np.array([0x10000, 0x10000, 0x20000])),
        0,
        int(times[-1]),
    )
    assert hf.nr_accesses_bp.tolist() == [20000, bp_after_quiet]


# -- paddr default range --------------------------------------------------------------------
def test_released_paddr_default_keeps_the_last_of_equal_system_rams():
    """gregkh/linux walk_system_ram(): ``a->end - a->start < resource_size(res)`` with the
    kept end inclusive, so an equally big later resource replaces the kept one."""
    ram = [
        [0x100000, 0x40100000],
        [0x100000000, 0x140000000 - 0x100000],
        [0x200000000, 0x240000000],
    ]  # 1 GiB, 1 GiB - 1 MiB, 1 GiB
    rg, src = default_range({"system_ram": ram}, np.zeros(0, np.int64))
    assert rg.tolist() == [[0x200000000, 0x240000000]] and "biggest" in src
    # ... whatever order the metadata lists them in (the kernel walks by address)
    rg, _ = default_range({"system_ram": ram[::-1]}, np.zeros(0, np.int64))
    assert rg.tolist() == [[0x200000000, 0x240000000]]
    # a strictly bigger earlier range still wins
    rg, _ = default_range({"system_ram": [[0, 2 * GIB], [4 * GIB, 5 * GIB]]}, np.zeros(0, np.int64))
    assert rg.tolist() == [[0, 2 * GIB]]


def test_released_paddr_default_tie_in_mem_topology():
    topo = {"block_size": 128 << 20, "nodes": [{"node": 0, "blocks": [0, 1, 3, 4]}]}
    rg, src = default_range({"mem_topology": topo}, np.zeros(0, np.int64))
    assert rg.tolist() == [[3 * (128 << 20), 5 * (128 << 20)]] and "MEM_TOPOLOGY" in src


def test_mainline_paddr_default_is_all_system_ram():
    ram = [[0x200000000, 0x240000000], [0x100000, 0x40100000], [4 * GIB, 5 * GIB]]
    rg, src = default_range({"system_ram": ram}, np.zeros(0, np.int64), "all")
    assert rg.tolist() == [[0x100000, 0x240000000]] and "all System RAM" in src
    topo = {
        "block_size": 128 << 20,
        "nodes": [{"node": 0, "blocks": [1, 2]}, {"node": 1, "blocks": [9]}],
    }
    rg, _ = default_range({"mem_topology": topo}, np.zeros(0, np.int64), "all")
    assert rg.tolist() == [[128 << 20, 10 * (128 << 20)]]
    assert kernel_profile("mainline-2026").paddr_default == "all"


# -- end to end: the CLI ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def hot_td(tmp_path_factory):
    from pathlib import Path

    from tracedamon.ingest import ingest

    src = Path(__file__).resolve().parents[1] / "sample_traces" / "hotcold.perf.data"
    out = tmp_path_factory.mktemp("k") / "h.td"
    ingest([src], out)
    return out


def cli(*args):
    """(exit code, stdout, stderr) of the command line run in this process."""
    import contextlib
    import io

    from tracedamon.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def test_cli_replay_kernel_recorded_and_shown(hot_td, tmp_path):
    from tracedamon.ingest.writer import read_parquet_metadata

    code, out, err = cli(
        "replay",
        hot_td,
        "--start",
        "auto",
        "--kernel",
        "mainline-2026",
        "--access",
        "abit",
        "-o",
        tmp_path / "m.parquet",
    )
    assert code == 0, err
    assert "kernel=mainline-2026" in out
    rp = read_parquet_metadata(tmp_path / "m.parquet")["replay"]
    assert rp["kernel"] == "mainline-2026" and rp["generator"] == "lfsr113"
    assert rp["config"]["kernel"] == "mainline-2026"
    assert rp["config"]["min_nr_regions_mode"] == "apply"
    code, out, err = cli("info", tmp_path / "m.parquet")
    assert code == 0 and "kernel mainline-2026" in out
    code, out, err = cli("replay", hot_td, "--start", "auto", "-o", tmp_path / "r.parquet")
    assert code == 0 and "kernel=" not in out
    rp = read_parquet_metadata(tmp_path / "r.parquet")["replay"]
    assert "kernel" not in rp and "kernel" not in rp["config"]
    assert rp["generator"] == "pcg32-xsh-rr"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--kernel", "v6.20"], "unknown kernel profile 'v6.20'"),
        (
            ["--kernel", "mainline-2026", "--min-nr-regions-mode", "legacy"],
            "mainline-2026 handles min_nr_regions as 'apply'",
        ),
    ],
)
def test_cli_replay_kernel_refusals(hot_td, tmp_path, args, message):
    code, out, err = cli("replay", hot_td, "-o", tmp_path / "x.parquet", *args)
    lines = err.strip().splitlines()
    assert code != 0 and len(lines) == 1 and lines[0].startswith("tracedamon: error: ")
    assert message in lines[0]
    assert not (tmp_path / "x.parquet").exists()


def test_sweep_configuration_ids_unchanged_by_profiles():
    """A sweep replays the default profile; its configuration ids hash the replay
    arguments, which must stay what they were before profiles existed (``kernel`` absent,
    the mode the default resolves to), or resumed sweeps would not find their runs."""
    from tracedamon.pipeline.sweep.grid import defaults

    d = defaults()
    assert "kernel" not in d and d["min_nr_regions_mode"] == "legacy"
