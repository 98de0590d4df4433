"""Folios in the accessed-bit check: THP and hugetlb from pagemap snapshots.

The kernel's accessed-bit check (spec §10.5, §11) works on the folio that maps a
region's sampling address, not on a 4 KiB page:

* vaddr (``damon_young_pmd_entry``, ``damon_young_hugetlb_entry``): a PMD-mapped THP
  is young iff its PMD's young bit is set (or the folio is not idle), so an access
  anywhere in its 2 MiB counts, and the check reports ``folio_sz`` = 2 MiB; a hugetlb
  page likewise, with its huge page size; a PTE-mapped page of a large folio (an mTHP,
  a large page-cache folio, a THP mapped in part) is young by its own PTE, but the
  check still reports the whole folio's size;
* paddr (``damon_pa_young``, ``damon_folio_young``): the folio of the frame is young
  iff any of its mappings is, so an access to any page of the folio counts, and
  ``folio_sz`` is its size.

The last-verdict cache then reuses a verdict for a later region whose sampling address
lies in the same ``folio_sz``-aligned block as the last checked one (vaddr: of the same
target; paddr: any region, across intervals, quirk Q5): the block is keyed by virtual
address for vaddr and by physical address for paddr.

What a snapshot says about folios
---------------------------------
A ``pagemap`` row is a run of virtual pages with equal flags and contiguous frames.
Pages with ``PAGEMAP_FLAG_THP`` (kpageflags ``KPF_THP``: any large anonymous or
page-cache folio) or ``PAGEMAP_FLAG_HUGE`` (``KPF_HUGE``: hugetlb) belong to large
folios.  Where a folio begins and how big it is:

* captures that record ``PAGEMAP_FLAG_COMPOUND_HEAD`` (``KPF_COMPOUND_HEAD``): a folio
  starts at its head page; its tails follow at the next frames.  Its size is the
  smallest naturally aligned power-of-two block of frames holding its head and every
  tail the snapshot shows (folios are naturally aligned in physical memory), so a
  folio mapped whole gets its exact size and one mapped in part a lower bound (tails
  whose head is not mapped get the smallest aligned block holding them and the frame
  before them, where the head must be);
* older captures (no head page in any large folio of the snapshot): THP pages are
  taken as parts of PMD-size folios -- the 2 MiB-aligned block of 512 frames -- the
  kernel's THP size when mTHP and large page-cache folios are not in use; hugetlb
  pages as parts of 1 GiB folios when the snapshot maps a whole aligned 1 GiB of them
  contiguously, else 2 MiB ones.

A THP folio of 512 pages mapped whole at a 2 MiB-aligned virtual address, frame by
frame in order, is taken as PMD-mapped (it is what a PMD maps; a PTE-mapped one looks
the same in pagemap, which cannot tell).  Pages of no large folio, and pages the
snapshot shows absent, are 4 KiB pages as without snapshots (the present-page model is
not applied: a sample proves its page was mapped then).

Which snapshot answers: for each sample interval, the snapshot nearest in time to the
interval's middle (ties: the earlier), among those holding rows of the target's pid
(paddr: among all, every captured process's frames together) -- the rule of
:mod:`tracedamon.engine.translate`.

Without snapshots, or when they hold no large folio, the check keeps 4 KiB pages
(``folio_model`` "4 KiB pages" in the replay's metadata).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..schema import (
    PAGEMAP_FLAG_COMPOUND_HEAD,
    PAGEMAP_FLAG_HUGE,
    PAGEMAP_FLAG_PRESENT,
    PAGEMAP_FLAG_THP,
)
from ..units import format_bytes
from .config import PAGE_SIZE
from .checks import find_region, has_key
from .draw import draw
from .translate import nearest_index, pagemap_columns

PMD_PAGES = 512  # 2 MiB / 4 KiB (x86-64 HPAGE_PMD_ORDER 9)
PMD_SIZE = PMD_PAGES * PAGE_SIZE
PUD_PAGES = 1 << 18  # 1 GiB hugetlb page
MODEL_4K = "4 KiB pages"
MODEL_FOLIOS = "folios from pagemap snapshots"

KIND_THP = 1
KIND_HUGE = 2


def _aligned_block(first: np.ndarray, last: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start, pages) of the smallest naturally aligned power-of-two block of frames
    holding frames ``first`` .. ``last`` (inclusive), vectorised."""
    first = np.asarray(first, np.int64)
    last = np.asarray(last, np.int64)
    k = np.array([int(v).bit_length() for v in (first ^ last).tolist()], np.int64)
    pages = np.left_shift(np.int64(1), k)
    return first & ~(pages - 1), pages


def folio_pieces(vs, ve, pfn, flags, heads: bool):
    """The large-folio pieces of one process's pagemap rows in one snapshot.

    A piece is a stretch of virtual pages that map consecutive frames of one large
    folio.  Returns a dict of int64 arrays: ``v_lo``, ``v_hi`` (virtual extent),
    ``p_lo`` (frame of ``v_lo``), ``f_pfn``, ``f_pages`` (the folio's first frame and
    size in pages) and ``kind`` (KIND_THP or KIND_HUGE).  ``heads``: the snapshot
    records compound heads (else the PMD-size / hugetlb-size assumption of the module
    doc)."""
    vs = np.asarray(vs, np.int64)
    ve = np.asarray(ve, np.int64)
    pfn = np.asarray(pfn, np.int64)
    flags = np.asarray(flags, np.int64)
    large = (
        ((flags & (PAGEMAP_FLAG_THP | PAGEMAP_FLAG_HUGE)) != 0)
        & ((flags & PAGEMAP_FLAG_PRESENT) != 0)
        & (pfn > 0)
        & (ve > vs)
    )
    keys = ("v_lo", "v_hi", "p_lo", "f_pfn", "f_pages", "kind")
    if not large.any():
        return {k: np.zeros(0, np.int64) for k in keys}
    o = np.flatnonzero(large)
    o = o[np.argsort(vs[o], kind="stable")]
    vs, ve, pfn, flags = vs[o], ve[o], pfn[o], flags[o]
    kind = np.where((flags & PAGEMAP_FLAG_HUGE) != 0, KIND_HUGE, KIND_THP)
    npg = (ve - vs) // PAGE_SIZE
    # expand the runs into pieces: cut at every head page (a head row may hold several
    # heads only if it is several pages of order-0 "folios", which do not exist; cut
    # at each page of it anyway) or, without heads, at every folio-size frame boundary
    parts_v, parts_p, parts_n, parts_k, parts_h, parts_f = [], [], [], [], [], []
    cover = None
    if not heads and (kind == KIND_HUGE).any():
        h = kind == KIND_HUGE
        cover = _contiguous_cover(vs[h], ve[h], pfn[h])
    for i in range(vs.size):
        v, p, n, kd = int(vs[i]), int(pfn[i]), int(npg[i]), int(kind[i])
        if heads:
            if flags[i] & PAGEMAP_FLAG_COMPOUND_HEAD:
                for j in range(n):
                    parts_v.append(v + j * PAGE_SIZE)
                    parts_p.append(p + j)
                    parts_n.append(1)
                    parts_k.append(kd)
                    parts_h.append(True)
            else:
                parts_v.append(v)
                parts_p.append(p)
                parts_n.append(n)
                parts_k.append(kd)
                parts_h.append(False)
        else:
            a = p
            while a < p + n:
                step = PMD_PAGES
                if kd == KIND_HUGE:
                    g = a & ~(PUD_PAGES - 1)
                    if cover(g, g + PUD_PAGES, v + (g - p) * PAGE_SIZE):
                        step = PUD_PAGES
                b = min((a // step + 1) * step, p + n)
                parts_v.append(v + (a - p) * PAGE_SIZE)
                parts_p.append(a)
                parts_n.append(b - a)
                parts_k.append(kd)
                parts_h.append(a % step == 0)
                parts_f.append(step)
                a = b
    pv = np.array(parts_v, np.int64)
    pp = np.array(parts_p, np.int64)
    pn = np.array(parts_n, np.int64)
    pk = np.array(parts_k, np.int64)
    ph = np.array(parts_h, bool)
    # join a part to the one before it when it continues it (virtually and in frames,
    # same kind, no head): the tails of the head just before (without heads: of the same
    # assumed folio)
    cont = np.zeros(pv.size, bool)
    if pv.size > 1:
        cont[1:] = (
            (pv[1:] == pv[:-1] + pn[:-1] * PAGE_SIZE)
            & (pp[1:] == pp[:-1] + pn[:-1])
            & (pk[1:] == pk[:-1])
            & ~ph[1:]
        )
    start = np.flatnonzero(~cont)
    grp_end = np.append(start[1:], pv.size)
    v_lo = pv[start]
    p_lo = pp[start]
    last = pp[grp_end - 1] + pn[grp_end - 1] - 1
    v_hi = v_lo + (last - p_lo + 1) * PAGE_SIZE
    k = pk[start]
    headed = ph[start]
    if heads:
        first = np.where(headed, p_lo, p_lo - 1)
        f_pfn, f_pages = _aligned_block(first, last)
    else:
        f_pages = np.array(parts_f, np.int64)[start]
        f_pfn = p_lo & ~(f_pages - 1)
    # pieces of one folio seen apart (a folio mapped in part, or in pieces) get the
    # largest block found for it: aligned blocks either nest or are disjoint
    f_pfn, f_pages = _outermost(f_pfn, f_pages)
    return {"v_lo": v_lo, "v_hi": v_hi, "p_lo": p_lo, "f_pfn": f_pfn, "f_pages": f_pages, "kind": k}


def _contiguous_cover(vs, ve, pfn):
    """A test: do the rows map frames [a, b) in order from virtual address ``va``?"""
    n = (ve - vs) // PAGE_SIZE
    delta = vs - pfn * PAGE_SIZE  # constant along an in-order mapping

    def cover(a: int, b: int, va: int) -> bool:
        if va % (PUD_PAGES * PAGE_SIZE):
            return False
        d = va - a * PAGE_SIZE
        sel = (delta == d) & (pfn < b) & (pfn + n > a)
        if not sel.any():
            return False
        s, e = pfn[sel], pfn[sel] + n[sel]
        o = np.argsort(s)
        s, e = s[o], e[o]
        reach = a
        for x, y in zip(s.tolist(), e.tolist()):
            if x > reach:
                return False
            reach = max(reach, y)
        return reach >= b

    return cover


def _outermost(f_pfn: np.ndarray, f_pages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each aligned block replaced by the largest block of the set that holds it."""
    if f_pfn.size < 2:
        return f_pfn, f_pages
    o = np.lexsort((-f_pages, f_pfn))
    out_p = f_pfn.copy()
    out_n = f_pages.copy()
    cur_p, cur_n = -1, 0
    for i in o.tolist():
        p, n = int(f_pfn[i]), int(f_pages[i])
        if cur_n and cur_p <= p and p + n <= cur_p + cur_n:
            out_p[i], out_n[i] = cur_p, cur_n
        else:
            cur_p, cur_n = p, n
    return out_p, out_n


def vaddr_map(pieces: dict) -> tuple[np.ndarray, ...]:
    """(lo, hi, folio_sz, whole) of a process's large-folio pieces, sorted by address.

    ``whole``: an access anywhere in [lo, hi) makes the check young (PMD-mapped THP,
    hugetlb); else only an access to the sampled 4 KiB page does (a PTE-mapped page of a
    large folio).  ``folio_sz`` is what the kernel's check reports."""
    v_lo, v_hi = pieces["v_lo"], pieces["v_hi"]
    fsz = pieces["f_pages"] * PAGE_SIZE
    pmd = (
        (pieces["kind"] == KIND_THP)
        & (pieces["f_pages"] == PMD_PAGES)
        & (pieces["p_lo"] == pieces["f_pfn"])
        & (v_hi - v_lo == PMD_SIZE)
        & (v_lo % PMD_SIZE == 0)
    )
    whole = pmd | (pieces["kind"] == KIND_HUGE)
    o = np.argsort(v_lo, kind="stable")
    return v_lo[o], v_hi[o], fsz[o], whole[o].astype(np.int64)


def paddr_map(pieces_list: list[dict]) -> tuple[np.ndarray, ...]:
    """(lo, hi, folio_sz, whole) of the physical folios of several processes' pieces:
    every folio whole (the kernel's rmap walk asks every mapping)."""
    if not pieces_list:
        z = np.zeros(0, np.int64)
        return z, z, z, z
    fp = np.concatenate([p["f_pfn"] for p in pieces_list])
    fn = np.concatenate([p["f_pages"] for p in pieces_list])
    fp, fn = _outermost(fp, fn)
    key = np.unique(np.stack([fp, fn], axis=1), axis=0) if fp.size else np.zeros((0, 2), np.int64)
    lo = key[:, 0] * PAGE_SIZE
    sz = key[:, 1] * PAGE_SIZE
    return lo, lo + sz, sz, np.ones(lo.size, np.int64)


class FolioModel:
    """Per target, the large folios of every pagemap snapshot, and which snapshot
    answers each sample interval (see the module doc).

    ``maps`` are flattened: map ``m`` is rows ``moff[m]:moff[m+1]`` of ``lo``, ``hi``,
    ``fsz``, ``whole``; ``times[t]`` / ``ids[t]`` are target t's snapshot times (sorted)
    and map ids."""

    def __init__(self, pagemap, pids: list[int | None], physical: bool):
        c = pagemap_columns(pagemap)
        snap = c["snapshot"].astype(np.int64)
        t = c["time_ns"].astype(np.int64)
        pid = c["pid"].astype(np.int64)
        vs = c["vaddr_start"].astype(np.int64)
        ve = c["vaddr_end"].astype(np.int64)
        pfn = c["pfn_start"].astype(np.int64)
        flags = c["flags"].astype(np.int64)
        snaps = np.unique(snap)
        stime = {int(s): int(t[snap == s].min()) for s in snaps}
        large = (flags & (PAGEMAP_FLAG_THP | PAGEMAP_FLAG_HUGE)) != 0
        self.stats = {
            "snapshots": int(snaps.size),
            "heads_recorded": True,
            "folios": {},
            "checked_whole": 0,
        }
        maps: list[tuple[np.ndarray, ...]] = []
        self.times: list[np.ndarray] = []
        self.ids: list[np.ndarray] = []
        per_snap: dict[int, dict[int, dict]] = {}
        for s in snaps.tolist():
            m = snap == s
            heads = bool(((flags[m] & PAGEMAP_FLAG_COMPOUND_HEAD) != 0).any()) or not large[m].any()
            if not heads:
                self.stats["heads_recorded"] = False
            per_snap[s] = {}
            for p in np.unique(pid[m]).tolist():
                mm = m & (pid == p)
                if not (large[mm]).any():
                    per_snap[s][p] = None
                    continue
                per_snap[s][p] = folio_pieces(vs[mm], ve[mm], pfn[mm], flags[mm], heads)
        self.large = any(v is not None for d in per_snap.values() for v in d.values())
        order = sorted(per_snap, key=lambda s: (stime[s], s))
        for i, p in enumerate(pids):
            ts, ms = [], []
            for s in order:
                if physical:
                    pieces = [v for v in per_snap[s].values() if v is not None]
                    mp = paddr_map(pieces)
                elif p is None or p not in per_snap[s]:
                    continue
                else:
                    pieces = per_snap[s][p]
                    mp = (
                        vaddr_map(pieces)
                        if pieces is not None
                        else tuple(np.zeros(0, np.int64) for _ in range(4))
                    )
                self._count(mp)
                ts.append(stime[s])
                ms.append(len(maps))
                maps.append(mp)
            self.times.append(np.array(ts, np.int64))
            self.ids.append(np.array(ms, np.int64))
        lens = [m[0].size for m in maps]
        self.moff = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        cat = [
            np.concatenate([m[k] for m in maps]).astype(np.int64) if maps else np.zeros(0, np.int64)
            for k in range(4)
        ]
        self.lo, self.hi, self.fsz, self.whole = (np.ascontiguousarray(x) for x in cat)

    def _count(self, mp) -> None:
        """Folios by size, and how many are checked whole (PMD-mapped THP, hugetlb, any
        folio in paddr), over the maps the targets use."""
        _, _, fsz, whole = mp
        for z, n in zip(*np.unique(fsz, return_counts=True)):
            key = format_bytes(int(z), exact=True)
            self.stats["folios"][key] = self.stats["folios"].get(key, 0) + int(n)
        self.stats["checked_whole"] += int(whole.sum())

    @property
    def description(self) -> str:
        return MODEL_FOLIOS if self.large else MODEL_4K

    def check(
        self,
        mon,
        k: int,
        w_off,
        k_tgt,
        k_page,
        t_from: int,
        S: int,
        draw_n,
        count_n,
        *,
        one_space: bool,
        cache_across_targets: bool,
    ) -> None:
        """The accessed-bit check of ``k`` sample intervals from ``t_from`` (called by the
        operations set's check_accesses, :mod:`tracedamon.engine.ops.base`, with its
        rules)."""
        a = mon.arr
        abit_check_folios(
            a["start"],
            a["end"],
            mon.toff,
            a["nr"],
            k,
            w_off,
            k_tgt,
            k_page,
            one_space,
            cache_across_targets,
            mon.cache,
            mon.rng,
            mon.cfg.fix_rand32,
            mon.inj,
            mon.injpos,
            self.select(t_from, S, k),
            self.moff,
            self.lo,
            self.hi,
            self.fsz,
            self.whole,
            draw_n,
            count_n,
        )

    def metadata(self) -> dict:
        return dict(self.stats, folios=dict(sorted(self.stats["folios"].items())))

    def select(self, t_from: int, S: int, k: int) -> np.ndarray:
        """(k, n_targets) map ids answering sample intervals ``t_from + j*S`` (-1: none)."""
        mid = t_from + np.arange(k, dtype=np.int64) * S + S // 2
        out = np.full((k, len(self.times)), -1, np.int64)
        for i, (ts, ids) in enumerate(zip(self.times, self.ids)):
            if ts.size:
                out[:, i] = ids[nearest_index(ts, mid)]
        return out


@njit(cache=True)
def _has_range(k_tgt, k_page, lo, hi, t, a, b):
    """Is there a key (t, page) with a <= page < b among the sorted keys [lo, hi)?"""
    x = lo
    h = hi
    while x < h:
        m = (x + h) >> 1
        if k_tgt[m] < t or (k_tgt[m] == t and k_page[m] < a):
            x = m + 1
        else:
            h = m
    return x < hi and k_tgt[x] == t and k_page[x] < b


@njit(cache=True)
def abit_check_folios(
    start,
    end,
    toff,
    nr,
    n_intervals,
    w_off,
    k_tgt,
    k_page,
    one_space,
    cache_across_targets,
    cache,
    st,
    fix_rand32,
    inj,
    injpos,
    sel,
    moff,
    mlo,
    mhi,
    mfsz,
    mwhole,
    draw_n,
    count_n,
):
    """:func:`tracedamon.engine.checks.abit_check` with folios: the sampling address's
    folio (map row of the interval's snapshot) decides what access counts and the
    ``folio_sz`` the cache aligns by.  ``cache`` is ``[last_addr, last_accessed,
    last_folio_sz]``; ``sel[j, t]`` is the map of target t in interval j (-1: none);
    ``draw_n`` / ``count_n`` as there."""
    ntgt = toff.shape[0] - 1
    for j in range(n_intervals):
        lo = w_off[j]
        hi = w_off[j + 1]
        for t in range(ntgt):
            if j >= draw_n[t]:
                continue
            same = False
            kt = 0 if one_space else t
            m = sel[j, t]
            for r in range(toff[t], toff[t + 1]):
                sa = start[r] + draw(st, end[r] - start[r], fix_rand32, inj, injpos)
                if j >= count_n[t]:
                    continue
                lsz = cache[2]
                if (cache_across_targets or same) and (cache[0] & -lsz) == (sa & -lsz):
                    acc = cache[1] != 0
                else:
                    f = -1 if m < 0 else find_region(mlo, mhi, moff[m], moff[m + 1], sa)
                    if f < 0:
                        acc = has_key(k_tgt, k_page, lo, hi, kt, sa & -PAGE_SIZE)
                        cache[2] = PAGE_SIZE
                    else:
                        if mwhole[f]:
                            acc = _has_range(k_tgt, k_page, lo, hi, kt, mlo[f], mhi[f])
                        else:
                            acc = has_key(k_tgt, k_page, lo, hi, kt, sa & -PAGE_SIZE)
                        cache[2] = mfsz[f]
                    cache[0] = sa
                    cache[1] = 1 if acc else 0
                same = True
                if acc:
                    nr[r] += 1
