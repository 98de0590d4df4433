"""Compare two region histories (and score them against a ground truth).

``compare(a, b)`` measures how far apart two region histories are -- a replay and a
real DAMON trace, two replays with other parameters, two DAMON traces. ``a`` is the
*reference*, ``b`` the *candidate*. Both are streamed (:mod:`.history`), a
bounded number of rows at a time; a sparse history reads as its dense original.

Exact metrics. Every metric is computed on the exact overlay of the two histories
(:mod:`.overlay`): for every pair of snapshots whose windows overlap in time, the
union of both sides' region boundaries cuts the address space into pieces, each
weighted by its bytes × the ns of overlap, where both sides have a region. No grid
is involved, so no metric depends on a resolution:

``heat``
    Spearman and Pearson correlation of the two sides' nr_accesses, weighted by
    bytes × ns over the *accessed space*, for the whole compared time: the bytes
    where either side's nr_accesses summed over its snapshots reaches 2 % of its
    hottest byte's (per byte, exactly: ``grid.heat_ranges``). The idle rest of a large
    address space -- and a huge region counted accessed once, as the perf check does
    while regions are coarse -- would only dilute them; idle times of accessed bytes
    stay in, so two sides that agree on when a byte is idle score for it. Over the
    same space: the mean absolute and RMS difference and the means of the normalised
    heat (*rate* = nr_accesses / (aggr/sample), or / the largest nr_accesses seen when
    the intervals are unknown); ``active_fraction`` is that space's share of
    everything compared.
``hot``
    for each threshold θ in ``hot_thresholds`` (default 0.25, 0.5, 0.75): a piece is
    hot on a side when its nr_accesses is > 0 and at least θ × that side's largest
    nr_accesses in the comparison (boundary included); precision = |hot_a ∩ hot_b|
    / |hot_b|, recall = |hot_a ∩ hot_b| / |hot_a|, F1, weighted by bytes × ns.
``wss``
    the working set (bytes with nr_accesses ≥ acc_thres, among the bytes both sides
    cover) of each side as a function of time, summed over the compared address
    spaces, on the intervals where it is constant: time-weighted means, mean absolute
    error, RMSE, relative error (MAE / mean of a), largest error, Pearson
    correlation. ``wss_series`` lists the intervals.
``age``
    over the pieces where both sides record an age (a trace without ages, or the
    idle bytes of a sparse history, have none; ``known_fraction`` says how much that
    is): Spearman correlation, mean and median absolute difference (s), age in
    aggregations × the side's median snapshot spacing.
``regions``
    regions per snapshot (mean/min/max) of each side over the snapshots inside the
    compared time; for a sparse history these are the regions with accesses.
``per_time``
    heat correlations, mean rate difference and hot precision/recall/F1 (θ = 0.5,
    hot relative to each side's maximum over the whole comparison) per time bin (the
    longer aggregation interval, at most ``max_time_bins`` bins).
``alignment``
    the offset applied to ``b`` and the best lag found by cross-correlating the two
    total-heat (or WSS) series over candidate lags, with its correlation.

The pairing of time: a snapshot of ``a`` and one of ``b`` are compared over the
intersection of their windows (``b``'s shifted by the applied offset), within the
common time ``[max(starts), min(ends))``; time where either side has no window is
not compared. The pairing of address spaces: equal keys (pid, else target); two
histories with one address space each and different keys are compared as one
another's, with a warning.

Cells (``CompareResult.cells``, ``--cells``) are the one place with a grid: a
time × address grid for pictures and for the per-cell Parquet, laid over the
address ranges where the accesses are (ranges whose heat summed over time is at
least 2 % of the hottest, with idle context; ``focus="all"``: every common byte).

With a ground truth (ranges labelled hot/warm/cold, see :func:`load_truth`) each
side is also scored against it (:func:`score_truth`), per byte, exactly.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from ..store.atomic import COMPARE_CELLS, COMPARE_METRICS, marked, write_text_atomic
from ..errors import ConfigError, InputError
from ..units import PAGE_SIZE
from .align import LagTotals, estimate_lag
from .grid import (
    auto_bin_bytes,
    guide_ranges,
    intersect_intervals,
    merge_intervals,
    time_edges,
    uniform_bins,
)
from .history import HistorySource, HistoryWarning, as_source
from .metrics_json import _sanitize, metrics_json  # noqa: F401  (compare.metrics_json stays)
from .overlay import (
    DEFAULT_THRESHOLDS,
    Joint,
    clean as _clean,
    group_sum,
    hot_set,
    overlay_regions,
    prf,
    snapshot_pairs,
    step_sum,
    wmedian,
    wpearson,
    wrank,
    wspearman,
)
from .truth_score import TRUTH_LEVEL, load_truth, score_truth, truth_timeline

__all__ = ["compare", "CompareResult", "score_truth", "truth_timeline", "load_truth",
           "estimate_lag", "match_keys", "metrics_json", "wpearson", "wspearman", "wrank",
           "prf", "hot_mask", "CompareWarning", "TRUTH_LEVEL", "DEFAULT_THRESHOLDS"]


class CompareWarning(HistoryWarning):
    """Something about a comparison a user should know (e.g. different targets)."""


def hot_mask(heat: np.ndarray, theta: float) -> np.ndarray:
    """Values that are > 0 and at least ``theta`` × the largest (boundary included)."""
    return hot_set(heat, theta)


# ----------------------------------------------------------------------------------
# one pass per side: what each address space covers and where its accesses are
# ----------------------------------------------------------------------------------
class _Profile:
    """Per address space: the union of its regions (``covered``) and the step function
    of nr_accesses summed over its snapshots (for :meth:`heat_ranges`); ``aligned``:
    every region boundary is page aligned."""

    CAP = 1 << 22  # breakpoints kept per address space before coarsening

    def __init__(self, hs: HistorySource, keys):
        self.covered = {k: np.zeros((0, 2), np.uint64) for k in keys}
        self._heat: dict[Any, list] = {k: [] for k in keys}
        self._n = {k: 0 for k in keys}
        self._gran = {k: 1 for k in keys}
        self.aligned = True
        page = np.uint64(PAGE_SIZE)
        for b in hs.iter_batches(age=False, time_ns=False):
            if self.aligned and ((b.start % page).any() or (b.end % page).any()):
                self.aligned = False
            rkey = b.key[b.row_local]
            for k in pd.unique(b.key).tolist():
                if k not in self.covered:
                    continue
                m = rkey == k
                st, en, nr = b.start[m], b.end[m], b.nr_accesses[m]
                # each snapshot's regions are sorted and disjoint: join touching ones
                # in one pass, then the few runs with what is covered so far
                lid = b.row_local[m]
                new = np.ones(len(st), bool)
                new[1:] = (lid[1:] != lid[:-1]) | (st[1:] != en[:-1])
                idx = np.flatnonzero(new)
                last = np.concatenate([idx[1:], [len(st)]]) - 1
                c = self.covered[k]
                self.covered[k] = merge_intervals(np.concatenate([c[:, 0], st[idx]]),
                                                  np.concatenate([c[:, 1], en[last]]))
                a = nr > 0
                if a.any():
                    # this batch's step function, reduced to its distinct breakpoints
                    (u,), (d,) = group_sum([np.concatenate([st[a], en[a]])],
                                           [np.concatenate([nr[a], -nr[a]])])
                    g = self._gran[k]
                    if g > 1:
                        (u,), (d,) = group_sum([u // np.uint64(g) * np.uint64(g)], [d])
                    self._heat[k].append((u, d))
                    self._n[k] += len(u)
                    if self._n[k] > self.CAP:
                        self._compact(k)

    def _compact(self, k) -> None:
        parts = self._heat[k]
        pts = np.concatenate([p[0] for p in parts])
        d = np.concatenate([p[1] for p in parts])
        (u,), (s,) = group_sum([pts], [d])
        # too many distinct boundaries: round them down to coarser granules (the
        # ranges only choose where the cells grid looks)
        while len(u) > self.CAP // 2:
            self._gran[k] *= 2
            g = np.uint64(self._gran[k])
            (u,), (s,) = group_sum([u // g * g], [s])
        self._heat[k] = [(u, s)]
        self._n[k] = len(u)

    def heat_ranges(self, k, min_fraction: float = 0.02) -> np.ndarray:
        """Address ranges whose nr_accesses summed over all snapshots is at least
        ``min_fraction`` of the hottest byte's (see ``grid.heat_ranges``)."""
        parts = self._heat[k]
        if not parts:
            return np.zeros((0, 2), np.uint64)
        self._compact(k)
        u, s = self._heat[k][0]
        level = np.cumsum(s)[:-1]
        if len(level) == 0 or level.max() <= 0:
            return np.zeros((0, 2), np.uint64)
        keep = level >= min_fraction * level.max()
        return merge_intervals(u[:-1][keep], u[1:][keep])


# ----------------------------------------------------------------------------------
# compare
# ----------------------------------------------------------------------------------
class CompareResult:
    """What :func:`compare` found: ``metrics`` (a JSON-ready dict), ``wss`` (the
    working-set series), ``per_time`` (agreement per time bin) and ``cells`` (one row
    per cell of the picture grid: time and address bounds, both sides' heat, rate,
    accessed fraction, age and coverage, and the rate difference b - a), computed
    from the sources on first use."""

    def __init__(self, metrics: dict, cells: pd.DataFrame | None = None,
                 wss: pd.DataFrame | None = None, per_time: pd.DataFrame | None = None,
                 cells_fn=None):
        self.metrics = metrics
        self._cells = cells
        self._cells_fn = cells_fn
        self.wss = wss if wss is not None else pd.DataFrame()
        self.per_time = per_time if per_time is not None else pd.DataFrame()

    @property
    def cells(self) -> pd.DataFrame:
        if self._cells is None:
            self.set_cells(self._cells_fn() if self._cells_fn else pd.DataFrame())
        return self._cells

    def set_cells(self, cells: pd.DataFrame) -> None:
        self._cells = cells
        if "grid" in self.metrics:
            self.metrics["grid"]["cells"] = int(len(cells))
            self.metrics["grid"]["valid_cells"] = int(cells["valid"].sum()) if len(cells) else 0

    def to_json(self, path: str | os.PathLike | None = None, *, force: bool = False) -> str:
        """The metrics as strict JSON text; with ``path``, also written there (with
        tracedamon's marker; ``force=True`` replaces only metrics tracedamon wrote)."""
        if path is None:
            return metrics_json(self.metrics)
        text = metrics_json(marked(COMPARE_METRICS, self.metrics))
        write_text_atomic(Path(path), text + "\n", kind=COMPARE_METRICS, force=force)
        return text

    def write_cells(self, path: str | os.PathLike, *, force: bool = False) -> Path:
        from ..store.writer import write_table_atomic

        t = pa.Table.from_pandas(self.cells, preserve_index=False)
        return write_table_atomic(
            t,
            path,
            metadata={
                "table": "compare_cells",
                "metrics": {k: self.metrics.get(k) for k in ("a", "b", "grid", "alignment")},
            },
            kind=COMPARE_CELLS,
            force=force,
        )




def match_keys(a, b) -> list[tuple]:
    """Pairs of address spaces to compare: equal keys (pid, else target index); when
    none are equal and each side has a single address space, those two."""
    ka, kb = a.keys, b.keys
    common = [k for k in ka if k in set(kb)]
    if common:
        return [(k, k) for k in common]
    if len(ka) == 1 and len(kb) == 1:
        return [(ka[0], kb[0])]
    raise InputError(
        f"{a.name} and {b.name} share no monitoring target " f"(targets {ka[:5]} vs {kb[:5]})"
    )


def _region_counts(hs: HistorySource, key, t0: int, t1: int, offset: int) -> dict:
    sn = hs.snaps[hs.snaps["key"] == key]
    inside = ((sn["t1"].to_numpy() + offset > t0) & (sn["t0"].to_numpy() + offset < t1))
    n = sn["rows"].to_numpy()[inside]
    return {
        "snapshots": int(inside.sum()),
        "mean": float(n.mean()) if len(n) else None,
        "min": int(n.min()) if len(n) else None,
        "max": int(n.max()) if len(n) else None,
        "counted": "regions with accesses (sparse history)" if hs.sparse else "regions",
    }


def _side_info(h: HistorySource) -> dict:
    return {
        "source": h.name,
        "snapshots": int(h.n_snapshots),
        "rows": int(h.rows),
        "time_ns": [h.t_start, h.t_end],
        "aggr_ns": h.aggr_ns_est,
        "snapshot_spacing_ns": h.aggr_ns_measured,
        "sample_us": h.sample_us,
        "aggr_us": h.aggr_us,
        "max_nr_accesses": h.max_nr_accesses,
        "max_nr_accesses_from": h.max_source,
        "targets": [int(k) for k in h.keys],
        "key": h.key_column,
        "sparse": bool(h.sparse),
    }


def _overlapping_windows(hs: HistorySource, key) -> bool:
    sn = hs.snaps[hs.snaps["key"] == key].sort_values("t0")
    t0, t1 = sn["t0"].to_numpy(), sn["t1"].to_numpy()
    return bool((t0[1:] < np.maximum.accumulate(t1)[:-1]).any())


def _damos_sources(a, b) -> bool:
    from .damos_compare import is_damos_source

    return is_damos_source(a) or is_damos_source(b)


def compare(
    a,
    b,
    *,
    offset_ns: int = 0,
    align: str = "none",
    max_lag_ns: float | None = None,
    lag_series: str = "heat",
    addr_bin: int | None = None,
    time_bin_ns: int | None = None,
    max_addr_bins: int = 2048,
    max_time_bins: int = 512,
    hot_thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    acc_thres: float = 1,
    truth=None,
    focus: str = "active",
    name_a: str | None = None,
    name_b: str | None = None,
    cells: bool = False,
    damos: bool | None = None,
    window_ns: int | None = None,
) -> CompareResult:
    """Compare region history ``b`` (candidate) with ``a`` (reference).

    ``a``/``b``: a trace directory holding ``regions.parquet``, a region ``.parquet``
    file, a replay result, an Arrow table, a DataFrame with the REGIONS columns, or a
    :class:`tracedamon.export.history.HistorySource`. ``offset_ns`` is added to every
    time of ``b``; ``align="auto"`` then adds the best lag found by
    :func:`estimate_lag` (which is always computed and reported). ``truth``:
    ground-truth ranges (see :func:`load_truth`) to score each side against.
    ``addr_bin``, ``time_bin_ns``, ``max_addr_bins``, ``max_time_bins`` and ``focus``
    shape only the cells grid (``focus="active"``: where the accesses are;
    ``"all"``: every common byte) and the time bins of ``per_time``; the metrics are
    exact (see the module docstring). ``cells``: build the cells grid during the
    comparison's own pass over the data (else ``CompareResult.cells`` reads the
    sources again on first use).

    ``damos=True`` compares the two sources' ``damos_apply`` tables (scheme
    applications) instead, and returns a
    :class:`~tracedamon.export.damos_compare.DamosCompareResult`; ``None`` does so when
    either source holds applications and no region history (a ``tracedamon damos``
    output, a ``damos_apply`` table). ``window_ns``: the apply interval when no
    metadata gives it (see :mod:`tracedamon.export.damos_compare`).
    """
    if damos or damos is None and _damos_sources(a, b):
        from .damos_compare import compare_damos

        return compare_damos(a, b, offset_ns=offset_ns, window_ns=window_ns,
                             name_a=name_a, name_b=name_b)
    if align not in ("none", "auto"):
        raise ConfigError(f"align must be 'none' or 'auto', not {align!r}")
    if lag_series not in ("heat", "wss"):
        raise ConfigError(f"lag series must be 'heat' or 'wss', not {lag_series!r}")
    for th in hot_thresholds:
        if not 0 < th <= 1:
            raise ConfigError(f"hot threshold {th} is not in (0, 1]")
    if addr_bin is not None and addr_bin <= 0:
        raise ConfigError("the address bin must be positive")
    if time_bin_ns is not None and time_bin_ns <= 0:
        raise ConfigError("the time bin must be positive")
    if focus not in ("active", "all"):
        raise ConfigError(f"focus must be 'active' or 'all', not {focus!r}")
    ha = as_source(a, name_a)
    hb = as_source(b, name_b)
    pairs = match_keys(ha, hb)
    notes: list[str] = []
    if any(ka != kb for ka, kb in pairs):
        notes.append(
            f"{ha.name} and {hb.name} monitor different targets ({ha.key_column} "
            f"{pairs[0][0]} vs {hb.key_column} {pairs[0][1]}): compared as one address "
            "space each; make sure they record the same workload")
    for h, ks in ((ha, {p[0] for p in pairs}), (hb, {p[1] for p in pairs})):
        for k in sorted(ks):
            if _overlapping_windows(h, k):
                notes.append(f"{h.name}: snapshots of {h.key_column} {k} overlap in time "
                             "(two monitoring runs at once?): both are compared")
    for n in notes:  # now: they matter most when the comparison then fails
        warnings.warn(n, CompareWarning, stacklevel=2)

    prof_a = _Profile(ha, [p[0] for p in pairs])
    prof_b = _Profile(hb, [p[1] for p in pairs])
    common = [intersect_intervals(prof_a.covered[ka], prof_b.covered[kb]) for ka, kb in pairs]
    if sum(len(r) for r in common) == 0:
        raise InputError(f"{ha.name} and {hb.name} cover no common address range")
    common_bytes = int(sum(int((r[:, 1] - r[:, 0]).sum()) for r in common))

    # the cells grid (and the lag series): over the ranges where the accesses are
    granges = []
    idle_excluded = 0
    for (ka, kb), r in zip(pairs, common):
        if focus == "active":
            both = np.concatenate([prof_a.heat_ranges(ka), prof_b.heat_ranges(kb)])
            act = merge_intervals(both[:, 0], both[:, 1]) if len(both) else both
            act = intersect_intervals(act, r) if len(act) else act
            g = guide_ranges(r, act) if len(act) else r
        else:
            g = r
        idle_excluded += int((r[:, 1] - r[:, 0]).sum()) - int((g[:, 1] - g[:, 0]).sum())
        granges.append(g)

    applied = int(offset_ns)
    lag_totals = None
    if align == "auto":
        lag = estimate_lag(ha, hb, pairs, granges, max_lag_ns=max_lag_ns, kind=lag_series,
                           acc_thres=acc_thres, offset_b=int(offset_ns))
        if lag.get("lag_ns") is not None:
            applied += int(lag["lag_ns"])
    else:
        # the series for the estimate are summed up as the sweep reads the batches
        lag_totals = LagTotals(ha, hb, granges, lag_series, acc_thres)
    t0 = max(ha.t_start, hb.t_start + applied)
    t1 = min(ha.t_end, hb.t_end + applied)
    if t1 <= t0:
        def msg(offset, auto):
            hint = (f"give {offset} or {auto}" if align != "auto" else
                    f"{auto} found no lag that lines them up (their heat series do not "
                    f"correlate); give {offset}" if lag.get("lag_ns") is None else
                    f"even with the lag {auto} estimated; give {offset}")
            return (f"{ha.name} [{ha.t_start}, {ha.t_end}) and {hb.name} "
                    f"[{hb.t_start + applied}, {hb.t_end + applied}) (offset {applied} ns) "
                    f"share no time; {hint}")
        raise InputError(msg("offset_ns", "align='auto'"),
                         cli_message=msg("--offset", "--align auto"))
    if align == "auto" and applied != int(offset_ns) and any(ka != kb for ka, kb in pairs):
        notes.append(f"--align auto shifted {hb.name} by {(applied - int(offset_ns)) / 1e9:.3f}"
                     f" s (r = {lag['correlation']:.3f}) to line up different targets: check "
                     "that they record the same run")
        warnings.warn(notes[-1], CompareWarning, stacklevel=2)

    tb = float(time_bin_ns) if time_bin_ns else max(ha.aggr_ns_est, hb.aggr_ns_est, 1.0)
    tb = max(tb, (t1 - t0) / max_time_bins)
    edges = time_edges(t0, t1, tb)
    edges[-1] = t1  # the last bin stops where the common time does

    # the accessed space, where the heat is compared: the bytes either side saw
    # accessed, leaving out those whose accesses summed over time are negligible
    active = []
    for (ka, kb), r in zip(pairs, common):
        both = np.concatenate([prof_a.heat_ranges(ka), prof_b.heat_ranges(kb)])
        act = merge_intervals(both[:, 0], both[:, 1]) if len(both) else both
        active.append(intersect_intervals(act, r) if len(act) else act)
    unit = PAGE_SIZE if (prof_a.aligned and prof_b.aligned) else 1
    total = int(sum(int((r[:, 1] - r[:, 0]).sum()) for r in granges))
    bin_bytes = int(addr_bin) if addr_bin else auto_bin_bytes(total, max_addr_bins, unit)

    def new_cells():
        return _Cells(ha, hb, pairs, granges, bin_bytes, edges, applied, acc_thres)

    grid_acc = new_cells() if cells else None
    feeds = [f for f in (lag_totals, grid_acc) if f is not None]

    def on_batch(i, tag, bt):
        for f in feeds:
            f.add(i, tag, bt)

    acc = _sweep(ha, hb, pairs, active, applied, t0, t1, edges, acc_thres,
                 on_batch if feeds else None)
    if lag_totals is not None:
        lag = lag_totals.estimate(max_lag_ns=max_lag_ns, offset_b=applied)
    metrics = _metrics(acc, ha, hb, hot_thresholds, edges)

    n_addr_bins = int(sum(len(uniform_bins(g, bin_bytes)[0]) for g in granges))
    counts_a = {str(ka): _region_counts(ha, ka, t0, t1, 0) for ka, _ in pairs}
    counts_b = {str(kb): _region_counts(hb, kb, t0, t1, applied) for _, kb in pairs}
    metrics["regions"] = {
        "a": next(iter(counts_a.values())) if len(pairs) == 1 else counts_a,
        "b": next(iter(counts_b.values())) if len(pairs) == 1 else counts_b,
    }
    out = {
        "a": _side_info(ha),
        "b": _side_info(hb),
        "compared": {
            "time_ns": [int(t0), int(t1)],
            "pairs": [[int(ka), int(kb)] for ka, kb in pairs],
            "common_bytes": common_bytes,
            **metrics.pop("compared"),
        },
        "grid": {
            "what": "cells only (pictures, --cells); the metrics are exact",
            "address_bin_bytes": bin_bytes,
            "address_unit": unit,
            "time_bin_ns": int(round(tb)),
            "time_bins": int(len(edges) - 1),
            "address_bins": n_addr_bins,
            "time_ns": [int(t0), int(t1)],
            "ranges": [
                {
                    "target_a": int(ka),
                    "target_b": int(kb),
                    "ranges": [[int(x), int(y)] for x, y in r],
                }
                for (ka, kb), r in zip(pairs, granges)
            ],
            "common_bytes": common_bytes,
            "grid_bytes": total,
            "idle_bytes_left_out": idle_excluded,
            "focus": focus,
            "acc_thres": acc_thres,
            "hot_thresholds": list(hot_thresholds),
        },
        "alignment": {
            "offset_ns": int(offset_ns),
            "align": align,
            "applied_offset_ns": applied,
            "estimate": lag,
        },
        **metrics,
        "warnings": notes,
    }
    if truth is not None:
        tr = load_truth(truth)
        opts = dict(t_range=(t0, t1), hot_thresholds=hot_thresholds, acc_thres=acc_thres)
        out["truth"] = {"a": score_truth(ha, tr, **opts),
                        "b": score_truth(hb, tr, offset_ns=applied, **opts)}
    res = CompareResult(out, None, acc["wss"], acc["per_time_df"],
                        cells_fn=lambda: new_cells().fill().frame())
    if grid_acc is not None:
        res.set_cells(grid_acc.frame())
    return res


class _Dense:
    """(time bin, inside, nr_a, nr_b) -> bytes·ns in dense arrays, for integer
    nr_accesses up to known maxima (the usual case: nr_accesses are counts)."""

    LIMIT = 1 << 22

    def __init__(self, mxa: float, mxb: float, nt: int):
        self.A, self.B = int(mxa) + 1, int(mxb) + 1
        self.K = 2 * self.A * self.B
        self.nt = nt
        self.ok = self.K <= self.LIMIT and self.K * max(nt, 1) <= self.LIMIT
        if self.ok:
            self.J = np.zeros(self.K)
            self.PT = np.zeros(self.K * max(nt, 1))

    def add(self, inside, x, y, nbytes, dt, bins) -> bool:
        """Add one pair's pieces; False (nothing added) when they do not fit."""
        if not self.ok:
            return False
        xi = x.astype(np.int64)
        yi = y.astype(np.int64)
        if ((xi != x).any() or (yi != y).any() or (xi < 0).any() or (yi < 0).any()
                or (xi >= self.A).any() or (yi >= self.B).any()):
            return False
        code = (inside.astype(np.int64) * self.A + xi) * self.B + yi
        c0 = int(code.min())
        v = np.bincount(code - c0, weights=nbytes)
        c1 = c0 + len(v)
        self.J[c0:c1] += v * dt
        for i, ov in bins:
            self.PT[i * self.K + c0:i * self.K + c1] += v * ov
        return True

    def decode(self, arr, with_bin: bool):
        idx = np.flatnonzero(arr > 0)
        w = arr[idx]
        b, rest = np.divmod(idx, self.K)
        ins, rest = np.divmod(rest, self.A * self.B)
        x, y = np.divmod(rest, self.B)
        keys = [ins.astype(float), x.astype(float), y.astype(float)]
        return ([b.astype(float)] + keys if with_bin else keys), w


def _sweep(ha, hb, pairs, active, applied, t0, t1, edges, acc_thres, on_batch=None) -> dict:
    """Accumulate the overlay of every key pair within [t0, t1) (see :mod:`.overlay`);
    pieces are cut at the bounds of the pair's ``active`` ranges and flagged inside
    or outside them. ``on_batch(pair index, "a"|"b", batch)`` sees every batch of
    both sides (all of them are then read)."""
    nt = len(edges) - 1
    dense = _Dense(ha.nr_accesses_max, hb.nr_accesses_max, nt)
    J = Joint(3)        # (inside active, nr_a, nr_b) -> bytes·ns, when not dense
    PT = Joint(4)       # (time bin, inside active, nr_a, nr_b) -> bytes·ns, when not dense
    AG = Joint(1)       # age pair code -> bytes·ns, both known and whole
    AGf = Joint(2)      # (age_a, age_b) -> bytes·ns, both known, not whole
    age_unknown = 0.0
    pieces = []         # (lo, hi, wss_a, wss_b, common bytes)
    for pi, ((ka, kb), act) in enumerate(zip(pairs, active)):
        feed = None if on_batch is None else (lambda tag, bt, pi=pi: on_batch(pi, tag, bt))
        for lo, hi, sa, sb in snapshot_pairs(ha, ka, hb, kb, offset_b=applied,
                                             t_range=(t0, t1), on_batch=feed,
                                             drain=feed is not None):
            left, right, ia, ib, inside = overlay_regions(sa.start, sa.end, sb.start, sb.end,
                                                          act)
            nbytes = (right - left).astype(np.float64)
            x = sa.nr_accesses[ia]
            y = sb.nr_accesses[ib]
            dt = float(hi - lo)
            pieces.append((lo, hi, float(nbytes[x >= acc_thres].sum()),
                           float(nbytes[y >= acc_thres].sum()), float(nbytes.sum())))
            if not len(nbytes):
                continue
            i0 = max(int(np.searchsorted(edges, lo, side="right")) - 1, 0)
            i1 = min(int(np.searchsorted(edges, hi, side="left")), nt)
            bins = [(i, float(min(hi, int(edges[i + 1])) - max(lo, int(edges[i]))))
                    for i in range(i0, i1)]
            bins = [(i, ov) for i, ov in bins if ov > 0]
            if not dense.add(inside, x, y, nbytes, dt, bins):
                insf = inside.astype(np.float64)
                (ui, ux, uy), (ub,) = group_sum([insf, x, y], [nbytes])
                J.add([ui, ux, uy], ub * dt)
                for i, ov in bins:
                    PT.add([np.full(len(ux), i), ui, ux, uy], ub * ov)
            ga, gb = sa.age[ia], sb.age[ib]
            known = np.isfinite(ga) & np.isfinite(gb)
            if known.any():
                ka_, kb_, nk = ga[known], gb[known], nbytes[known]
                if (ka_ == np.floor(ka_)).all() and (kb_ == np.floor(kb_)).all() and \
                        (ka_ >= 0).all() and (kb_ >= 0).all() and max(ka_.max(), kb_.max()) < 2**31:
                    code = (ka_.astype(np.int64) << 32) | kb_.astype(np.int64)
                    (uc,), (w,) = group_sum([code], [nk])
                    AG.add([uc], w * dt)
                else:
                    (ua, ubb), (w,) = group_sum([ka_, kb_], [nk])
                    AGf.add([ua, ubb], w * dt)
            age_unknown += float(nbytes[~known].sum()) * dt
    joint = _concat_joint(J.result(), dense.decode(dense.J, False) if dense.ok else None)
    per_time = _concat_joint(PT.result(), dense.decode(dense.PT, True) if dense.ok else None)
    (uc,), aw = AG.result()
    uc = uc.astype(np.int64)
    ages = _concat_joint(AGf.result(), ([(uc >> 32).astype(float),
                                         (uc & 0xFFFFFFFF).astype(float)], aw))
    return {"joint": joint, "per_time": per_time, "age": ages,
            "age_unknown": age_unknown, "pieces": pieces}


def _concat_joint(a, b):
    """Two joint distributions (keys, weights) as one (their tuples may repeat)."""
    if b is None:
        return a
    ka, wa = a
    kb, wb = b
    keys = [np.concatenate([np.asarray(x, float), np.asarray(y, float)]) for x, y in zip(ka, kb)]
    w = np.concatenate([wa, wb])
    if len(wa) and len(wb):
        keys, (w,) = group_sum(keys, [w])
    return keys, w


def _heat(x, y, w, act, mxa: float, mxb: float) -> dict:
    """Heat agreement over the pieces ``act`` (inside the space where either side saw
    an access)."""
    xa, ya, wa = x[act], y[act], w[act]
    if wa.sum() <= 0:
        return {"spearman": None, "pearson": None, "mean_abs_rate_diff": None,
                "rms_rate_diff": None, "mean_rate_a": None, "mean_rate_b": None}
    ra, rb = xa / mxa, ya / mxb
    d = rb - ra
    return {
        "spearman": _clean(wspearman(xa, ya, wa)),
        "pearson": _clean(wpearson(xa, ya, wa)),
        "mean_abs_rate_diff": _clean(np.average(np.abs(d), weights=wa)),
        "rms_rate_diff": _clean(math.sqrt(np.average(d * d, weights=wa))),
        "mean_rate_a": _clean(np.average(ra, weights=wa)),
        "mean_rate_b": _clean(np.average(rb, weights=wa)),
    }


def _metrics(acc: dict, ha, hb, thresholds, edges) -> dict:
    (ins, x, y), w = acc["joint"]
    mxa_rate, mxb_rate = ha.max_nr_accesses, hb.max_nr_accesses
    tot = float(w.sum())
    act = ins > 0.5
    act_w = float(w[act].sum())
    out: dict[str, Any] = {
        "compared": {
            "byte_seconds": tot / 1e9,
            "active_byte_seconds": act_w / 1e9,
        }
    }
    heat = _heat(x, y, w, act, mxa_rate, mxb_rate)
    heat["active_fraction"] = _clean(act_w / tot) if tot > 0 else None
    out["heat"] = heat
    mxa = float(x.max()) if len(x) else 0.0
    mxb = float(y.max()) if len(y) else 0.0
    out["hot"] = {str(th): prf(hot_set(y, th, mxb), hot_set(x, th, mxa), w)
                  for th in thresholds} if tot > 0 else {}
    out["hot_max_nr_accesses"] = {"a": mxa, "b": mxb}

    # working set as a function of time
    pc = acc["pieces"]
    if pc:
        lo, hi, wa, wb, cb = (np.array(v) for v in zip(*pc))
        u, (sa, sb, sc), active = step_sum(lo, hi, [wa, wb, cb])
        seg_t0, seg_t1 = u[:-1][active], u[1:][active]
        sa, sb, sc = sa[active], sb[active], sc[active]
    else:
        seg_t0 = seg_t1 = np.zeros(0, np.int64)
        sa = sb = sc = np.zeros(0)
    wss = pd.DataFrame({"t0_ns": seg_t0, "t1_ns": seg_t1, "wss_a": sa, "wss_b": sb,
                        "bytes": sc})
    dtw = (seg_t1 - seg_t0).astype(np.float64)
    if len(dtw) and dtw.sum() > 0:
        err = sb - sa
        mean_a = float(np.average(sa, weights=dtw))
        mae = float(np.average(np.abs(err), weights=dtw))
        out["wss"] = {
            "segments": int(len(dtw)),
            "seconds": float(dtw.sum() / 1e9),
            "mean_a": mean_a,
            "mean_b": float(np.average(sb, weights=dtw)),
            "mae_bytes": mae,
            "rmse_bytes": float(math.sqrt(np.average(err * err, weights=dtw))),
            "max_abs_error_bytes": float(np.abs(err).max()),
            "relative_error": _clean(mae / mean_a) if mean_a > 0 else None,
            "pearson": _clean(wpearson(sa, sb, dtw)),
        }
    else:
        out["wss"] = {}
    out["wss_series"] = {
        "t0_ns": [int(v) for v in seg_t0],
        "t1_ns": [int(v) for v in seg_t1],
        "a_bytes": sa.tolist(),
        "b_bytes": sb.tolist(),
    }

    # age
    (ga, gb), aw = acc["age"]
    known = float(aw.sum())
    if len(aw) and known > 0:
        da = ga * ha.aggr_ns_measured
        db = gb * hb.aggr_ns_measured
        diff = np.abs(da - db) / 1e9
        out["age"] = {
            "known_fraction": _clean(known / (known + acc["age_unknown"])),
            "spearman": _clean(wspearman(da, db, aw)),
            "mean_abs_diff_s": _clean(np.average(diff, weights=aw)),
            "median_abs_diff_s": _clean(wmedian(diff, aw)),
        }
    else:
        out["age"] = {"known_fraction": 0.0 if acc["age_unknown"] > 0 else None,
                      "spearman": None, "mean_abs_diff_s": None, "median_abs_diff_s": None}

    # per time bin
    (bi, pin, px, py), pw = acc["per_time"]
    rows = []
    if len(pw):
        bi = bi.astype(np.int64)
        for i in np.unique(bi).tolist():
            m = bi == i
            xi, yi, wi = px[m], py[m], pw[m]
            h = _heat(xi, yi, wi, pin[m] > 0.5, mxa_rate, mxb_rate)
            hp = prf(hot_set(yi, 0.5, mxb), hot_set(xi, 0.5, mxa), wi)
            rows.append((int(edges[i]), int(edges[i + 1]), h["spearman"], h["pearson"],
                         h["mean_abs_rate_diff"], hp["precision"], hp["recall"], hp["f1"]))
    per_time = pd.DataFrame(rows, columns=["t0_ns", "t1_ns", "spearman", "pearson",
                                           "mean_abs_rate_diff", "hot_precision",
                                           "hot_recall", "hot_f1"])
    out["per_time"] = {c: [_clean(v) if isinstance(v, float) else v for v in per_time[c].tolist()]
                       for c in per_time.columns}
    acc["wss"] = wss
    acc["per_time_df"] = per_time
    return out


class _Cells:
    """The cells grid: per (time bin, address bin) and side, area-weighted means,
    accumulated from batches (:meth:`add`) as the sweep reads them, or by a pass of
    its own (:meth:`fill`)."""

    def __init__(self, ha, hb, pairs, granges, bin_bytes, edges, applied, acc_thres):
        from .grid import _Raster

        self.h = {"a": ha, "b": hb}
        self.pairs, self.edges, self.acc_thres = pairs, edges, acc_thres
        self.off = {"a": 0, "b": int(applied)}
        self.bins = []
        self.acc = []
        for segs in granges:
            bs, be = uniform_bins(segs, bin_bytes) if len(segs) else (
                np.zeros(0, np.uint64), np.zeros(0, np.uint64))
            self.bins.append((bs, be))
            self.acc.append({
                tag: _Raster(edges, bs, be, h.snaps["t0"].to_numpy(np.int64) + self.off[tag],
                             h.snaps["t1"].to_numpy(np.int64) + self.off[tag], 4)
                for tag, h in self.h.items()})

    def add(self, i: int, tag: str, bt) -> None:
        if not len(self.bins[i][0]):
            return
        nr = bt.nr_accesses
        known = np.isfinite(bt.age)
        meas = self.h[tag].aggr_ns_measured
        vals = [nr, (nr >= self.acc_thres).astype(float),
                np.where(known, bt.age, 0.0) * meas, known.astype(float)]
        snap = bt.row_snap
        step = 400_000
        for c0 in range(0, len(snap), step):
            c1 = c0 + step
            self.acc[i][tag].add(snap[c0:c1], bt.start[c0:c1], bt.end[c0:c1],
                                 [v[c0:c1] for v in vals])

    def fill(self) -> "_Cells":
        for i, (ka, kb) in enumerate(self.pairs):
            for tag, key in (("a", ka), ("b", kb)):
                for bt in self.h[tag].iter_batches(key=key, time_ns=False):
                    self.add(i, tag, bt)
        return self

    def frame(self) -> pd.DataFrame:
        from .grid import cell_area

        frames = []
        edges = self.edges
        for (ka, kb), (bs, be), acc in zip(self.pairs, self.bins, self.acc):
            if len(bs) == 0:
                continue
            area = cell_area(edges, bs, be)
            nt, nb = len(edges) - 1, len(bs)
            ti = np.repeat(np.arange(nt), nb)
            bj = np.tile(np.arange(nb), nt)
            d = {
                "target_a": np.full(nt * nb, ka),
                "target_b": np.full(nt * nb, kb),
                "t0_ns": edges[:-1][ti],
                "t1_ns": edges[1:][ti],
                "start": bs[bj],
                "end": be[bj],
            }
            for tag in ("a", "b"):
                (heat, accd, agesum, ageknown), cover = acc[tag].result()
                with np.errstate(invalid="ignore", divide="ignore"):
                    heat = np.where(cover > 0, heat / cover, np.nan)
                    accd = np.where(cover > 0, accd / cover, np.nan)
                    # the mean age over the covered part whose age is known (at least half)
                    age_mean = np.where(ageknown > 0.5 * cover, agesum / np.where(
                        ageknown > 0, ageknown, 1), np.nan)
                    frac = np.where(area > 0, cover / area, 0.0)
                d[f"heat_{tag}"] = heat.ravel()
                d[f"rate_{tag}"] = heat.ravel() / self.h[tag].max_nr_accesses
                d[f"accessed_{tag}"] = accd.ravel()
                d[f"age_{tag}_ns"] = age_mean.ravel()
                d[f"cover_{tag}"] = frac.ravel()
            frames.append(pd.DataFrame(d))
        if not frames:
            return pd.DataFrame()
        cells = pd.concat(frames, ignore_index=True)
        cells["valid"] = (cells["cover_a"] >= 0.5) & (cells["cover_b"] >= 0.5)
        cells["diff_rate"] = cells["rate_b"] - cells["rate_a"]
        cells["area"] = (cells["t1_ns"] - cells["t0_ns"]).to_numpy(float) * (
            cells["end"].to_numpy() - cells["start"].to_numpy()
        ).astype(float)
        return cells
