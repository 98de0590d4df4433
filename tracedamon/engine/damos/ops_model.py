"""The ops' side of a DAMOS application, modelled: ops filters and what the action does.

The core walk (:mod:`.core`) decides exactly which regions the ops get.  What the ops
then do depends on page state the kernel reads live (``damos-spec.md`` §4, §6, §10):
whether a folio is anonymous, mapped, young, active, in a memcg, how big it is, whether
reclaim or migration succeeds.  This module turns an application into

* ``sz_ops_filter_passed``: bytes of pages the ops filters let through (the paddr
  ``pageout`` call appends its implicit "reject young" filter last, spec §4.2);
* ``sz_applied``: bytes the action acted on, modelled as every passed byte succeeding
  (``success`` scales it), per the action's kernel semantics (§6): paddr ``pageout``,
  ``lru_prio``, ``lru_deprio``, ``migrate_*`` act on the passed pages; vaddr's madvise
  actions act on the whole page-aligned region and evaluate no ops filters; ``stat``
  acts on nothing and counts passed bytes only when it has ops filters; the actions an
  ops set does not support act on nothing;
* the passed runs themselves (``seg_app``/``seg_start``/``seg_end``), for the outcome
  models.

A vaddr/fvaddr target whose process has exited has no mm from its leader's exit on:
the core still walks, charges and ages its regions, the ops apply nothing to them
(:func:`without_mm`).

Page attributes come from a :class:`PageOracle` (pagemap snapshots: anonymous or file,
mapped, huge page) when there is one.  A filter that needs an attribute nobody knows
(``young``, ``active``, ``memcg`` always; every attribute of a page no snapshot covers)
leaves the page's verdict open, and ``unknown_pages`` decides it: ``"pass"`` (the
default, spec §10: all bytes pass) or ``"reject"``.  The bytes so decided are counted
(``unknown_bytes``) so that outputs can say how much of the result is a default.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...errors import ConfigError
from ...units import PAGE_SIZE
from .scheme import Filter

MADVISE_ACTIONS = ("willneed", "cold", "pageout", "hugepage", "nohugepage")
PADDR_ACTS = ("pageout", "lru_prio", "lru_deprio", "migrate_hot", "migrate_cold")
VADDR_WALK_ACTS = ("migrate_hot", "migrate_cold")
UNKNOWN_PAGES = ("pass", "reject")


def action_kind(ops: str, action: str) -> str:
    """How ``ops`` handles ``action``: ``"filtered"`` (ops filters per folio, acts on
    what passes), ``"madvise"`` (whole region, no ops filters), ``"stat"`` (filters
    counted when present, nothing acted on) or ``"none"`` (unsupported: nothing)."""
    if action == "stat":
        return "stat"
    if ops == "paddr":
        return "filtered" if action in PADDR_ACTS else "none"
    if action in VADDR_WALK_ACTS:
        return "filtered"
    if action in MADVISE_ACTIONS:
        return "madvise"
    return "none"


def has_mm_rows(ops: str, target: np.ndarray, mm_exit_ns, now_ns: int) -> np.ndarray:
    """Per application (``target`` its target's index): 1 when the ops find the target's
    mm at ``now_ns``, else 0.  The virtual-address sets look the mm up through the
    target's pid on every call (``damon_get_mm()``); it is gone from its leader's exit
    on (``mm_exit_ns[target]``, None: never).  paddr has no mm to look up."""
    out = np.ones(target.size, np.int64)
    if ops == "paddr" or not mm_exit_ns or target.size == 0:
        return out
    gone = np.array([g is not None and int(now_ns) >= int(g) for g in mm_exit_ns] + [False], bool)
    t = np.where((target >= 0) & (target < len(mm_exit_ns)), target, len(mm_exit_ns))
    out[gone[t]] = 0
    return out


def without_mm(apps: dict, passed, applied) -> tuple[np.ndarray, np.ndarray]:
    """``sz_ops_filter_passed`` and ``sz_applied`` with the applications to a target
    without an mm at 0: vaddr's ``damos_madvise()``, ``damos_va_migrate()`` and
    ``damos_va_stat()`` return 0 bytes when ``damon_get_mm()`` finds no mm, before
    any page is looked at (the core has walked, charged and aged the region all the
    same)."""
    passed = np.asarray(passed, np.int64)
    applied = np.asarray(applied, np.int64)
    has_mm = apps.get("has_mm")
    if has_mm is None or has_mm.all():
        return passed, applied
    keep = has_mm != 0
    return np.where(keep, passed, 0), np.where(keep, applied, 0)


@dataclass
class Segments:
    """Page runs of one address range with what is known about them (-1 = unknown)."""

    start: np.ndarray
    end: np.ndarray
    anon: np.ndarray  # int8: 1, 0, -1
    mapped: np.ndarray  # int8
    folio_size: np.ndarray  # int64, 0 = unknown


class PageOracle:
    """Interface: ``segments(target, start, end, time_ns) -> Segments`` covering
    ``[start, end)`` exactly, in address order."""

    def segments(self, target: int, start: int, end: int, time_ns: int) -> Segments:
        raise NotImplementedError


def unknown_segments(start: int, end: int) -> Segments:
    return Segments(
        np.array([start], np.int64),
        np.array([end], np.int64),
        np.array([-1], np.int8),
        np.array([-1], np.int8),
        np.zeros(1, np.int64),
    )


def _match(f: Filter, seg: Segments) -> np.ndarray:
    """Per segment: 1 the filter's property holds, 0 it does not, -1 unknown."""
    n = seg.start.size
    if f.type == "anon":
        return seg.anon.astype(np.int8)
    if f.type == "unmapped":
        m = seg.mapped.astype(np.int8)
        return np.where(m < 0, -1, 1 - m).astype(np.int8)
    if f.type == "hugepage_size":
        fs = seg.folio_size
        return np.where(fs == 0, -1, ((f.sz_min <= fs) & (fs <= f.sz_max))).astype(np.int8)
    return np.full(n, -1, np.int8)  # young, active, memcg: live page state


def filter_verdicts(filters: tuple[Filter, ...], default_reject: bool, seg: Segments) -> np.ndarray:
    """``damos_pa_filter_out`` per segment: 1 passes, 0 rejected, -1 undecidable (the
    first filter whose property is unknown comes before any filter that matched)."""
    n = seg.start.size
    out = np.full(n, -2, np.int8)
    for f in filters:
        undecided = out == -2
        if not undecided.any():
            break
        m = _match(f, seg)
        unknown = undecided & (m < 0)
        out[unknown] = -1
        hit = undecided & (m >= 0) & ((m == 1) == f.matching)
        out[hit] = 1 if f.allow else 0
    out[out == -2] = 0 if default_reject else 1
    return out


@dataclass
class PageModel:
    """An ops model for :func:`.core.apply_schemes`: ``model(state, apps, now_ns)``.

    ``oracle`` gives page attributes (None: nothing known); ``unknown_pages`` decides
    pages whose verdict needs an unknown attribute; ``success`` is the fraction of the
    passed bytes the action achieves.  After each call ``seg_app``, ``seg_start`` and
    ``seg_end`` hold the runs each application's action was applied to (flat arrays,
    ``seg_app`` the application's row), and ``unknown_bytes`` / ``passed_bytes``
    accumulate.  Applications whose ``has_mm`` column is 0 (a target without an mm)
    pass and achieve nothing (:func:`without_mm`).
    """

    oracle: PageOracle | None = None
    unknown_pages: str = "pass"
    success: float = 1.0
    unknown_bytes: int = 0
    passed_bytes: int = 0
    seg_app: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    seg_start: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    seg_end: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __post_init__(self):
        if self.unknown_pages not in UNKNOWN_PAGES:
            raise ConfigError(
                f"unknown_pages must be one of {', '.join(UNKNOWN_PAGES)}, "
                f"not {self.unknown_pages!r}"
            )
        if not 0.0 <= self.success <= 1.0:
            raise ConfigError(f"success must lie in [0, 1] (got {self.success})")
        self._plans: dict = {}

    def _plan(self, state, j: int):
        """Per scheme: its action kind, the ops filters the call evaluates (paddr
        pageout appends "reject young"), their default, whether they apply."""
        key = (id(state.schemes), j)
        plan = self._plans.get(key)
        if plan is None:
            s = state.schemes[j]
            kind = action_kind(state.ctx.ops, s.action)
            filters = s.ops_filters
            if (
                state.ctx.ops == "paddr"
                and s.action == "pageout"
                and not any(f.type == "young" for f in filters)
            ):
                filters = filters + (Filter("young", matching=True, allow=False),)
            evaluates = kind == "filtered" or (kind == "stat" and bool(s.ops_filters))
            v_unknown = (
                int(
                    filter_verdicts(
                        filters, s.ops_filters_default_reject, unknown_segments(0, PAGE_SIZE)
                    )[0]
                )
                if filters
                else 1
            )
            plan = (kind, filters, s.ops_filters_default_reject, evaluates, v_unknown)
            self._plans[key] = plan
        return plan

    def __call__(self, state, apps: dict, now_ns: int = 0):
        n = apps["start"].size
        a_all = apps["start"].astype(np.int64)
        b_all = apps["end"].astype(np.int64)
        size = b_all - a_all
        passed = np.zeros(n, np.int64)
        applied = np.zeros(n, np.int64)
        seg_app, seg_s, seg_e = [], [], []
        sch = apps["scheme"]
        has_mm = apps.get("has_mm")
        live = np.ones(n, bool) if has_mm is None else has_mm != 0  # see without_mm
        for j in np.unique(sch[live]):
            rows = np.flatnonzero((sch == j) & live)
            kind, filters, defrej, evaluates, v_unknown = self._plan(state, int(j))
            if kind == "madvise":
                applied[rows] = (
                    ((size[rows] + PAGE_SIZE - 1) // PAGE_SIZE) * PAGE_SIZE * self.success
                ).astype(np.int64)
                seg_app.append(rows), seg_s.append(a_all[rows]), seg_e.append(b_all[rows])
                continue
            if not evaluates:
                continue
            whole = apps["core_allowed"][rows] != 0
            if not filters:
                whole[:] = True
            if self.oracle is None and not whole.all():
                # nothing is known of any page: one verdict for every byte of the scheme
                unk = ~whole
                if v_unknown < 0:
                    self.unknown_bytes += int(size[rows][unk].sum())
                    ok = self.unknown_pages == "pass"
                else:
                    ok = v_unknown == 1
                whole = whole | (unk & ok)
            sel = rows[whole]
            passed[sel] = size[sel]
            if kind != "stat":
                seg_app.append(sel), seg_s.append(a_all[sel]), seg_e.append(b_all[sel])
            if self.oracle is not None:
                for i in rows[~whole]:
                    seg = self.oracle.segments(
                        int(apps["target"][i]), int(a_all[i]), int(b_all[i]), now_ns
                    )
                    v = filter_verdicts(filters, defrej, seg)
                    unk = v < 0
                    if unk.any():
                        self.unknown_bytes += int((seg.end[unk] - seg.start[unk]).sum())
                    ok = (v == 1) | (unk & (self.unknown_pages == "pass"))
                    passed[i] = int((seg.end[ok] - seg.start[ok]).sum())
                    if kind != "stat" and ok.any():
                        seg_app.append(np.full(int(ok.sum()), i))
                        seg_s.append(seg.start[ok]), seg_e.append(seg.end[ok])
            if kind != "stat":
                applied[rows] = (passed[rows] * self.success).astype(np.int64)
        self.passed_bytes += int(passed.sum())
        if seg_app:
            app = np.concatenate(seg_app).astype(np.int64)
            o = np.argsort(app, kind="stable")
            self.seg_app = app[o]
            self.seg_start = np.concatenate(seg_s).astype(np.int64)[o]
            self.seg_end = np.concatenate(seg_e).astype(np.int64)[o]
        else:
            self.seg_app = self.seg_start = self.seg_end = np.zeros(0, np.int64)
        return passed, applied


def default_ops_model(state, apps: dict, now_ns: int = 0):
    """No page data: every page passes the ops filters; the action succeeds."""
    return PageModel()(state, apps, now_ns)
