"""Folios in the accessed-bit check (tracedamon.engine.folio).

Oracles: the kernel's check as mm/damon/vaddr.c (``__damon_va_check_access``,
``damon_young_pmd_entry``, ``damon_young_hugetlb_entry``) and paddr.c
(``__damon_pa_check_access``, ``damon_pa_young``) write it, worked through by hand for
constructed cases; a slow, obvious re-statement of those functions for random ones;
and the 4 KiB engine where no large folio exists.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from tracedamon.engine.config import MonitorConfig
from tracedamon.engine.checks import abit_check
from tracedamon.engine.core import AccessSamples, Monitor, Target
from tracedamon.engine.folio import (
    MODEL_4K,
    MODEL_FOLIOS,
    FolioModel,
    abit_check_folios,
    folio_pieces,
    paddr_map,
    vaddr_map,
)
from tracedamon.pipeline.replay import replay
from tracedamon.schema import (
    PAGEMAP_FLAG_COMPOUND_HEAD,
    PAGEMAP_FLAG_HUGE,
    PAGEMAP_FLAG_PRESENT,
    PAGEMAP_FLAG_THP,
)

P = PAGEMAP_FLAG_PRESENT
THP = PAGEMAP_FLAG_THP | P
HEAD = PAGEMAP_FLAG_COMPOUND_HEAD
HUGE = PAGEMAP_FLAG_HUGE | P
K = 4096
MB2 = 2 << 20
PID = 7


def pagemap(rows):
    """rows: (snapshot, time_ns, pid, vaddr_start, vaddr_end, pfn_start, flags)."""
    return pd.DataFrame(
        rows,
        columns=["snapshot", "time_ns", "pid", "vaddr_start", "vaddr_end", "pfn_start", "flags"],
    )


def thp_rows(va, pfn, snap=0, t=0, pid=PID, heads=True, flags=THP, pages=512):
    """A large folio mapped in order at ``va``: head row + tails row (as a capture
    writes it), or one row without heads."""
    if not heads:
        return [(snap, t, pid, va, va + pages * K, pfn, flags)]
    return [
        (snap, t, pid, va, va + K, pfn, flags | HEAD),
        (snap, t, pid, va + K, va + pages * K, pfn + 1, flags),
    ]


def fixed_cfg(region, **kw):
    return MonitorConfig(sample_us=5000, aggr_us=5000, min_region=region, max_region=region, **kw)


def run_monitor(cfg, ranges, samples, draws, pm=None, physical=False, t_last=None):
    """(nr_accesses per snapshot) of a Monitor with injected draws, with the folio model
    of ``pm`` (None: 4 KiB pages)."""
    pid = None if physical else PID
    folios = FolioModel(pm, [pid], physical) if pm is not None else None
    mon = Monitor(
        cfg,
        [Target(lambda t: np.array(ranges), pid=pid)],
        access="abit",
        ops="paddr" if physical else "fvaddr",
        rand_inject=draws,
        folios=folios,
    )
    t, a = samples
    h = mon.run(AccessSamples(t, [0] * len(t), a), 0, t_last if t_last is not None else max(t))
    out = {}
    for s, nr in zip(h.snapshot.tolist(), h.nr_accesses.tolist()):
        out.setdefault(s, []).append(nr)
    assert mon.injpos[0] == len(draws)
    return [out[s] for s in sorted(out)]


# -- folio extents from a snapshot ---------------------------------------------------------
def test_pieces_of_a_pmd_thp_and_its_map():
    rows = pagemap(thp_rows(0x200000, 0x40000))
    p = folio_pieces(rows.vaddr_start, rows.vaddr_end, rows.pfn_start, rows["flags"], True)
    assert p["v_lo"].tolist() == [0x200000] and p["v_hi"].tolist() == [0x400000]
    assert p["f_pfn"].tolist() == [0x40000] and p["f_pages"].tolist() == [512]
    lo, hi, fsz, whole = vaddr_map(p)
    assert (lo.tolist(), hi.tolist(), fsz.tolist(), whole.tolist()) == (
        [0x200000],
        [0x400000],
        [MB2],
        [1],
    )


def test_pieces_split_at_heads_and_partial_folios_get_their_whole_block():
    # two adjacent 64 KiB folios in one contiguous frame run, then a THP mapped in two
    # pieces (head + 99 tails, a hole, the last 312 tails)
    rows = pagemap(
        thp_rows(0x100000, 0x1000, pages=16)
        + thp_rows(0x110000, 0x1010, pages=16)
        + [
            (0, 0, PID, 0x200000, 0x200000 + K, 0x40000, THP | HEAD),
            (0, 0, PID, 0x200000 + K, 0x200000 + 100 * K, 0x40001, THP),
            (0, 0, PID, 0x200000 + 200 * K, 0x400000, 0x40000 + 200, THP),
        ]
    )
    p = folio_pieces(rows.vaddr_start, rows.vaddr_end, rows.pfn_start, rows["flags"], True)
    assert p["v_lo"].tolist() == [0x100000, 0x110000, 0x200000, 0x200000 + 200 * K]
    assert p["f_pfn"].tolist() == [0x1000, 0x1010, 0x40000, 0x40000]
    assert p["f_pages"].tolist() == [16, 16, 512, 512]
    lo, hi, fsz, whole = vaddr_map(p)
    # none is a whole PMD mapping: each is checked by its own PTE, cached by folio size
    assert whole.tolist() == [0, 0, 0, 0]
    assert fsz.tolist() == [64 << 10, 64 << 10, MB2, MB2]
    # physical: one folio per head, whole
    lo, hi, fsz, whole = paddr_map([p])
    assert list(zip(lo.tolist(), hi.tolist())) == [
        (0x1000 * K, 0x1010 * K),
        (0x1010 * K, 0x1020 * K),
        (0x40000 * K, 0x40200 * K),
    ]
    assert whole.tolist() == [1, 1, 1]


def test_pieces_without_heads_are_pmd_size_folios():
    # an older capture: THP pages with no head flag; 1024 pages in order = two 2 MiB THPs
    rows = pagemap([(0, 0, PID, 0x200000, 0x600000, 0x40000, THP)])
    p = folio_pieces(rows.vaddr_start, rows.vaddr_end, rows.pfn_start, rows["flags"], False)
    assert p["v_lo"].tolist() == [0x200000, 0x400000]
    assert p["f_pfn"].tolist() == [0x40000, 0x40200] and p["f_pages"].tolist() == [512, 512]
    assert vaddr_map(p)[3].tolist() == [1, 1]


def test_hugetlb_without_heads_one_gib_when_mapped_whole():
    gib = 1 << 30
    rows = pagemap(
        [
            (0, 0, PID, 4 * gib, 5 * gib, 0x100000, HUGE),
            (0, 0, PID, 6 * gib, 6 * gib + MB2, 0x300000, HUGE),
        ]
    )
    p = folio_pieces(rows.vaddr_start, rows.vaddr_end, rows.pfn_start, rows["flags"], False)
    assert p["f_pages"].tolist() == [1 << 18, 512]
    lo, hi, fsz, whole = vaddr_map(p)
    assert fsz.tolist() == [gib, MB2] and whole.tolist() == [1, 1]


def test_model_uses_heads_when_the_snapshot_has_them():
    m = FolioModel(pagemap(thp_rows(0x200000, 0x40000)), [PID], False)
    assert m.large and m.description == MODEL_FOLIOS
    assert m.metadata() == {
        "snapshots": 1,
        "heads_recorded": True,
        "folios": {"2 MiB": 1},
        "checked_whole": 1,
    }
    m = FolioModel(pagemap([(0, 0, PID, 0x200000, 0x400000, 0x40000, THP)]), [PID], False)
    assert m.metadata()["heads_recorded"] is False and m.metadata()["checked_whole"] == 1
    m = FolioModel(pagemap([(0, 0, PID, 0x200000, 0x400000, 0x40000, P)]), [PID], False)
    assert not m.large and m.description == MODEL_4K


# -- the check, constructed cases worked through the kernel's code -------------------------
def test_vaddr_pmd_thp_any_page_of_the_folio_counts():
    """damon_young_pmd_entry: the PMD's young bit covers the 2 MiB; folio_sz = 2 MiB, so
    the next region in the same 2 MiB reuses the verdict."""
    cfg = fixed_cfg(1 << 20)
    ranges = [(0x200000, 0x400000)]
    samples = ([1_000_000], [0x3FF000])  # interval 1: the folio's last page
    draws = [0x1000, 0x0]  # R0 at 0x201000, R1 at 0x300000
    pm = pagemap(thp_rows(0x200000, 0x40000))
    assert run_monitor(cfg, ranges, samples, draws) == [[0, 0]]
    assert run_monitor(cfg, ranges, samples, draws, pm) == [[1, 1]]
    # hugetlb: damon_young_hugetlb_entry, the same with the huge page size
    pm = pagemap(thp_rows(0x200000, 0x40000, flags=HUGE))
    assert run_monitor(cfg, ranges, samples, draws, pm) == [[1, 1]]
    # an older capture without head flags: PMD-size folios by alignment, the same
    pm = pagemap(thp_rows(0x200000, 0x40000, heads=False))
    assert run_monitor(cfg, ranges, samples, draws, pm) == [[1, 1]]


def test_vaddr_pte_mapped_large_folio_own_pte_and_cache_by_folio_size():
    """A 64 KiB folio (frames 0x1000-0x100f) PTE-mapped at 0x608000, not 64 KiB-aligned.
    Regions of 32 KiB over [0x600000, 0x620000); interval 1 touches page 0x612000.

    R0 0x602000: not in the folio, page untouched -> no; folio_sz 4 KiB.
    R1 0x60C000: in the folio; its PTE untouched -> no (pte_young is per page);
                 folio_sz 64 KiB, last_addr 0x60C000.
    R2 0x612000: ALIGN_DOWN(0x60C000, 64K) = 0x600000 != 0x610000 -> walk: touched -> yes.
    R3 0x61A000: outside the folio, but ALIGN_DOWN(0x612000, 64K) = 0x610000 =
                 ALIGN_DOWN(0x61A000, 64K) -> the kernel reuses R2's verdict: yes."""
    cfg = fixed_cfg(0x8000)
    ranges = [(0x600000, 0x620000)]
    samples = ([1_000_000], [0x612000])
    draws = [0x2000, 0x4000, 0x2000, 0x2000]
    pm = pagemap(thp_rows(0x608000, 0x1000, pages=16))
    assert run_monitor(cfg, ranges, samples, draws) == [[0, 0, 1, 0]]
    assert run_monitor(cfg, ranges, samples, draws, pm) == [[0, 0, 1, 1]]


def test_paddr_folio_and_cache_across_intervals():
    """damon_pa_young: any mapping of the folio counts; the cache has no same-target guard
    and outlives the interval (Q5): interval 2 sees no sample, yet both regions reuse
    interval 1's verdict for the same 2 MiB folio; fix_pa_cache walks again."""
    base = 0x40000 * K
    ranges = [(base, base + MB2)]
    samples = ([1_000_000], [base + MB2 - K])
    draws = [0x1000, 0x0, 0x5000, 0x3000]  # 2 intervals x 2 regions
    pm = pagemap(thp_rows(0x200000, 0x40000))  # pid 7 maps the THP
    kw = dict(pm=pm, physical=True, t_last=5_000_000)
    assert run_monitor(
        fixed_cfg(1 << 20), ranges, samples, draws, physical=True, t_last=5_000_000
    ) == [[0, 0], [0, 0]]
    assert run_monitor(fixed_cfg(1 << 20), ranges, samples, draws, **kw) == [[1, 1], [1, 1]]
    assert run_monitor(fixed_cfg(1 << 20, fix_pa_cache=True), ranges, samples, draws, **kw) == [
        [1, 1],
        [0, 0],
    ]


def test_the_snapshot_nearest_the_interval_answers():
    """Snapshot 0 (t=0) has no THP, snapshot 1 (t=100 ms) has it: intervals before 50 ms
    see 4 KiB pages, later ones the folio."""
    cfg = fixed_cfg(1 << 20)
    ranges = [(0x200000, 0x400000)]
    t = [0, 5_000_000, 95_000_000]
    samples = (t, [0x3FF000] * 3)
    pm = pagemap(
        [(0, 0, PID, 0x200000, 0x400000, 0x40000, P)]
        + thp_rows(0x200000, 0x40000, snap=1, t=100_000_000)
    )
    # the model: map of snapshot 0 for interval 0, snapshot 1 for interval 19
    m = FolioModel(pm, [PID], False)
    sel = m.select(0, 5_000_000, 20)[:, 0]
    assert (m.moff[sel + 1] - m.moff[sel]).tolist() == [0] * 10 + [1] * 10
    draws = [0x1000, 0x0] * 20
    nr = run_monitor(cfg, ranges, samples, draws, pm, t_last=95_000_000)
    assert nr[0] == [0, 0] and nr[1] == [0, 0] and nr[19] == [1, 1]


# -- random cases against a slow re-statement of the kernel's functions -----------------------
def reference(regions_per_t, draws, iv_pages, folio_of, physical, fix_pa_cache, cache):
    """__damon_va_check_access / __damon_pa_check_access over one interval, slowly.

    folio_of(t, addr) -> None (4 KiB page) or (lo, hi, folio_sz, whole)."""
    nr = []
    d = iter(draws)
    for t, regs in enumerate(regions_per_t):
        same = False
        for s, e in regs:
            sa = s + next(d)
            lsz = cache["sz"]
            if ((physical and not fix_pa_cache) or same) and cache[
                "addr"
            ] // lsz * lsz == sa // lsz * lsz:
                acc = cache["acc"]
            else:
                key = 0 if physical else t
                f = folio_of(t, sa)
                if f is None:
                    acc = (key, sa // K * K) in iv_pages
                    cache["sz"] = K
                else:
                    lo, hi, fsz, whole = f
                    if whole:
                        acc = any(k == key and lo <= pg < hi for k, pg in iv_pages)
                    else:
                        acc = (key, sa // K * K) in iv_pages
                    cache["sz"] = fsz
                cache["addr"], cache["acc"] = sa, acc
            same = True
            nr.append(int(acc))
    return nr


@pytest.mark.parametrize("physical,fix", [(False, False), (True, False), (True, True)])
def test_folio_check_equals_the_reference_on_random_cases(physical, fix):
    rng = np.random.default_rng(5 + physical + 2 * fix)
    for case in range(40):
        c = _random_folio_case(rng, physical)
        nr, cache = _folio_check(c, physical, fix, c.folio_args())
        want = np.zeros(c.nreg, np.int64)
        rc = {"addr": 0, "acc": False, "sz": K}
        per = len(c.draws) // c.n_iv
        for j in range(c.n_iv):
            want += reference(
                c.regs,
                c.draws[j * per : (j + 1) * per],
                set(c.ivs[j]),
                c.folio_of,
                physical,
                fix,
                rc,
            )
        assert nr.tolist() == want.tolist(), case
        assert cache.tolist() == [rc["addr"], int(rc["acc"]), rc["sz"]], case
        # with no folio the check is the 4 KiB one, verdict for verdict
        nr4 = _abit_check_4k(c, physical, fix)
        nr0, _ = _folio_check(c, physical, fix, c.no_folio_args())
        assert nr0.tolist() == nr4.tolist(), case


@dataclass
class _FolioCase:
    """A random folio-check case: per target, its folios ``maps`` [(lo, hi, size,
    whole)] and regions ``regs`` [(start, end)]; the sampling ``draws`` (one per region
    and interval) and each interval's sampled pages ``ivs`` [(target key, page)]."""

    ntgt: int
    n_iv: int
    maps: list
    regs: list
    draws: list
    ivs: list

    @property
    def nreg(self) -> int:
        return sum(len(r) for r in self.regs)

    def folio_of(self, t, a):
        for f in self.maps[t]:
            if f[0] <= a < f[1]:
                return f
        return None

    def check_args(self) -> tuple:
        """The regions and samples in the kernels' layout (start, end, target offsets,
        interval offsets, sample keys, sample pages)."""
        regs, ivs = self.regs, self.ivs
        return (
            np.array([s for r in regs for s, _ in r], np.int64),
            np.array([e for r in regs for _, e in r], np.int64),
            np.cumsum([0] + [len(r) for r in regs]).astype(np.int64),
            np.cumsum([0] + [len(p) for p in ivs]).astype(np.int64),
            np.array([k for p in ivs for k, _ in p], np.int64),
            np.array([g for p in ivs for _, g in p], np.int64),
        )

    def folio_args(self) -> tuple:
        """The folio map arguments (target selection, map offsets, lo, hi, size, whole)."""
        moff = np.cumsum([0] + [len(m) for m in self.maps]).astype(np.int64)
        flat = [x for m in self.maps for x in m]
        mlo, mhi, mfsz, mwh = (
            np.array([x[i] for x in flat], np.int64).reshape(-1) for i in range(4)
        )
        sel = np.tile(np.arange(self.ntgt, dtype=np.int64), (self.n_iv, 1))
        return sel, moff, mlo, mhi, mfsz, mwh

    def every(self) -> np.ndarray:
        """Per target, the intervals it draws and counts in: every target throughout."""
        return np.full(self.ntgt, self.n_iv, np.int64)

    def no_folio_args(self) -> tuple:
        """The folio map arguments of a trace without folios."""
        z = np.zeros(0, np.int64)
        return np.full((self.n_iv, self.ntgt), -1, np.int64), np.zeros(1, np.int64), z, z, z, z


def _random_folio_case(rng, physical: bool) -> _FolioCase:
    ntgt = 1 if physical else int(rng.integers(1, 3))
    # folios: a few per target over [0, 8 MiB), random sizes, some whole
    maps = []
    for t in range(ntgt):
        rows, at = [], 0
        for _ in range(int(rng.integers(0, 6))):
            fsz = int(rng.choice([16 * K, 64 * K, MB2]))
            at = (-(-at // fsz) + int(rng.integers(0, 2))) * fsz  # no overlap
            rows.append((at, at + fsz, fsz, int(rng.integers(0, 2))))
            at += fsz
        maps.append(rows)
    regs = []
    for t in range(ntgt):
        cuts = np.unique(rng.integers(0, 8 << 20, 40) // K * K)
        regs.append(list(zip(cuts[:-1].tolist(), cuts[1:].tolist())))
    n_iv = 3
    draws = [int(rng.integers(0, e - s)) for _ in range(n_iv) for r in regs for s, e in r]
    # samples: pages near the draws and in the folios, per interval
    ivs = []
    for j in range(n_iv):
        pages = set()
        for t in range(ntgt):
            for lo, hi, _, _ in maps[t]:
                if rng.random() < 0.5:
                    pages.add((0 if physical else t, int(rng.integers(lo, hi)) // K * K))
            for s, e in regs[t]:
                if rng.random() < 0.3:
                    pages.add((0 if physical else t, int(rng.integers(s, e)) // K * K))
        ivs.append(sorted(pages))
    return _FolioCase(ntgt, n_iv, maps, regs, draws, ivs)


def _folio_check(c: _FolioCase, physical, fix, folio_args) -> tuple[np.ndarray, np.ndarray]:
    """abit_check_folios over the case with the given folio map: (nr_accesses, cache)."""
    start, end, toff, w_off, k_tgt, k_page = c.check_args()
    nr = np.zeros(c.nreg, np.int64)
    cache = np.array([0, 0, K], np.int64)
    abit_check_folios(
        start,
        end,
        toff,
        nr,
        c.n_iv,
        w_off,
        k_tgt,
        k_page,
        physical,
        physical and not fix,
        cache,
        np.zeros(2, np.uint64),
        False,
        np.array(c.draws, np.int64),
        np.zeros(1, np.int64),
        *folio_args,
        c.every(),
        c.every(),
    )
    return nr, cache


def _abit_check_4k(c: _FolioCase, physical, fix) -> np.ndarray:
    """The 4 KiB check (abit_check) over the case: nr_accesses per region."""
    start, end, toff, w_off, k_tgt, k_page = c.check_args()
    nr4 = np.zeros(c.nreg, np.int64)
    abit_check(
        start,
        end,
        toff,
        nr4,
        c.n_iv,
        w_off,
        k_tgt,
        k_page,
        physical,
        physical and not fix,
        np.array([0, 0], np.int64),
        np.zeros(2, np.uint64),
        False,
        np.array(c.draws, np.int64),
        np.zeros(1, np.int64),
        c.every(),
        c.every(),
    )
    return nr4


# -- replay: plumbing and metadata -----------------------------------------------------------
def samples_table(times, addrs, phys=None):
    n = len(times)
    return {
        "time_ns": np.array(times, np.int64),
        "pid": np.full(n, PID, np.int32),
        "event": ["page-faults"] * n,
        "addr": np.array(addrs, np.uint64),
        "phys_addr": (np.array(phys, np.uint64) if phys is not None else np.zeros(n, np.uint64)),
    }


def test_replay_with_a_thp_snapshot_counts_the_folio():
    # a sample in the THP in every interval: every region sampled inside it is accessed
    # in every interval with folios, whatever the draws
    t = np.arange(0, 100_000_000, 1_000_000)
    s = samples_table(t, [0x3FF000] * t.size)
    kw = dict(
        ops="fvaddr",
        pids=[PID],
        ranges=["0x200000-0x400000"],
        access="abit",
        sample_us=5000,
        aggr_us=50000,
        min_region=0x10000,
        max_region=0x10000,
    )
    pm = pagemap(thp_rows(0x200000, 0x40000))
    h = replay(s, pagemap=pm, **kw)
    assert h.metadata["folio_model"] == MODEL_FOLIOS
    assert h.metadata["folios"] == {
        "snapshots": 1,
        "heads_recorded": True,
        "folios": {"2 MiB": 1},
        "checked_whole": 1,
    }
    assert set(h.df.nr_accesses) == {10}
    h4 = replay(s, pagemap=pm, folios="4k", **kw)
    assert h4.metadata["folio_model"] == MODEL_4K and "folios" not in h4.metadata
    assert h4.df.nr_accesses.max() < 10


def test_replay_without_large_folios_is_the_4k_replay():
    rng = np.random.default_rng(1)
    t = np.sort(rng.integers(0, 200_000_000, 400))
    a = 0x200000 + rng.integers(0, 512, 400) * K
    s = samples_table(t, a)
    kw = dict(ops="fvaddr", pids=[PID], ranges=["0x200000-0x400000"], access="abit")
    plain = pagemap([(0, 0, PID, 0x200000, 0x400000, 0x40000, P)])
    h = replay(s, pagemap=plain, **kw)
    h0 = replay(s, **kw)
    assert h.metadata["folio_model"] == MODEL_4K and "folios" not in h.metadata
    assert h.table.equals(h0.table)
    with pytest.raises(Exception, match="folios must be one of"):
        replay(s, folios="2m", **kw)


def test_info_names_the_folio_model(tmp_path):
    from tracedamon.cli.info import describe_history

    t = np.arange(0, 100_000_000, 1_000_000)
    s = samples_table(t, [0x3FF000] * t.size)
    kw = dict(ops="fvaddr", pids=[PID], ranges=["0x200000-0x400000"], access="abit")
    h = replay(s, pagemap=pagemap(thp_rows(0x200000, 0x40000)), **kw)
    h.to_parquet(tmp_path / "f.parquet")
    text = describe_history(tmp_path / "f.parquet")
    assert "folio model: folios from pagemap snapshots (1 x 2 MiB; 1 checked whole)" in text
    replay(s, **kw).to_parquet(tmp_path / "p.parquet")
    assert "folio model" not in describe_history(tmp_path / "p.parquet")
