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

import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import ConfigError, InputError
from ..units import PAGE_SIZE
from .align import LagTotals, estimate_lag
from .compare_cells import CellsGrid
from .compare_metrics import metrics_from
from .compare_result import CompareResult
from .compare_sweep import SideProfile, sweep_overlay
from .damos_compare import compare_damos, is_damos_source
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
from .overlay import DEFAULT_THRESHOLDS, hot_set, prf, wpearson, wrank, wspearman
from .truth_score import TRUTH_LEVEL, load_truth, score_truth, truth_timeline

__all__ = [
    "compare",
    "CompareResult",
    "score_truth",
    "truth_timeline",
    "load_truth",
    "estimate_lag",
    "match_keys",
    "metrics_json",
    "wpearson",
    "wspearman",
    "wrank",
    "prf",
    "hot_mask",
    "CompareWarning",
    "TRUTH_LEVEL",
    "DEFAULT_THRESHOLDS",
]


class CompareWarning(HistoryWarning):
    """Something about a comparison a user should know (e.g. different targets)."""


def hot_mask(heat: np.ndarray, theta: float) -> np.ndarray:
    """Values that are > 0 and at least ``theta`` × the largest (boundary included)."""
    return hot_set(heat, theta)


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
        return compare_damos(
            a, b, offset_ns=offset_ns, window_ns=window_ns, name_a=name_a, name_b=name_b
        )
    _check_options(align, lag_series, hot_thresholds, addr_bin, time_bin_ns, focus)
    ha = as_source(a, name_a)
    hb = as_source(b, name_b)
    pairs = match_keys(ha, hb)
    notes = _source_notes(ha, hb, pairs)
    for n in notes:  # now: they matter most when the comparison then fails
        warnings.warn(n, CompareWarning, stacklevel=2)
    sp = _space(ha, hb, pairs, focus)

    applied, lag, lag_totals = _alignment(
        ha, hb, pairs, sp.granges, int(offset_ns), align, max_lag_ns, lag_series, acc_thres
    )
    t0 = max(ha.t_start, hb.t_start + applied)
    t1 = min(ha.t_end, hb.t_end + applied)
    if t1 <= t0:
        raise _no_common_time(ha, hb, applied, align, lag)
    if align == "auto" and applied != int(offset_ns) and any(ka != kb for ka, kb in pairs):
        notes.append(
            f"--align auto shifted {hb.name} by {(applied - int(offset_ns)) / 1e9:.3f}"
            f" s (r = {lag['correlation']:.3f}) to line up different targets: check "
            "that they record the same run"
        )
        warnings.warn(notes[-1], CompareWarning, stacklevel=2)

    tb, edges = _time_bins(ha, hb, t0, t1, time_bin_ns, max_time_bins)
    unit = PAGE_SIZE if (sp.prof_a.aligned and sp.prof_b.aligned) else 1
    total = int(sum(int((r[:, 1] - r[:, 0]).sum()) for r in sp.granges))
    bin_bytes = int(addr_bin) if addr_bin else auto_bin_bytes(total, max_addr_bins, unit)

    def new_cells():
        return CellsGrid(ha, hb, pairs, sp.granges, bin_bytes, edges, applied, acc_thres)

    grid_acc = new_cells() if cells else None
    acc = _sweep(
        ha, hb, pairs, sp.active, applied, (t0, t1), edges, acc_thres, lag_totals, grid_acc
    )
    if lag_totals is not None:
        lag = lag_totals.estimate(max_lag_ns=max_lag_ns, offset_b=applied)
    metrics = metrics_from(acc, ha, hb, hot_thresholds, edges)
    metrics["regions"] = _regions(ha, hb, pairs, t0, t1, applied)
    out = _result_dict(
        ha,
        hb,
        pairs,
        sp.common,
        sp.granges,
        (t0, t1),
        (bin_bytes, unit, tb, edges),
        metrics,
        notes,
        alignment={
            "offset_ns": int(offset_ns),
            "align": align,
            "applied_offset_ns": applied,
            "estimate": lag,
        },
        focus=focus,
        acc_thres=acc_thres,
        hot_thresholds=hot_thresholds,
    )
    if truth is not None:
        out["truth"] = _truth_scores(ha, hb, truth, (t0, t1), applied, hot_thresholds, acc_thres)
    res = CompareResult(
        out, None, acc["wss"], acc["per_time_df"], cells_fn=lambda: new_cells().fill().frame()
    )
    if grid_acc is not None:
        res.set_cells(grid_acc.frame())
    return res


@dataclass
class _Space:
    """Where two histories are compared, per pair of address spaces: the ranges both
    cover (``common``), the accessed space inside them (``active``, where the heat is
    compared) and the ranges of the cells grid and the lag series (``granges``)."""

    prof_a: SideProfile
    prof_b: SideProfile
    common: list
    active: list
    granges: list


def _space(ha: HistorySource, hb: HistorySource, pairs, focus: str) -> _Space:
    prof_a = SideProfile(ha, [p[0] for p in pairs])
    prof_b = SideProfile(hb, [p[1] for p in pairs])
    common = [intersect_intervals(prof_a.covered[ka], prof_b.covered[kb]) for ka, kb in pairs]
    if sum(len(r) for r in common) == 0:
        raise InputError(f"{ha.name} and {hb.name} cover no common address range")
    # the accessed space, where the heat is compared: the bytes either side saw
    # accessed, leaving out those whose accesses summed over time are negligible
    active = [_accessed(prof_a, prof_b, ka, kb, r) for (ka, kb), r in zip(pairs, common)]
    # the cells grid (and the lag series): over the ranges where the accesses are
    granges = [
        guide_ranges(r, act) if focus == "active" and len(act) else r
        for r, act in zip(common, active)
    ]
    return _Space(prof_a, prof_b, common, active, granges)


def _sweep(ha, hb, pairs, active, applied: int, t_range, edges, acc_thres, *feeds) -> dict:
    """One pass over both histories (:func:`sweep_overlay`), handing each batch to the
    ``feeds`` that are not None (the lag series, the cells grid) as it goes."""
    feeds = [f for f in feeds if f is not None]

    def on_batch(i, tag, bt):
        for f in feeds:
            f.add(i, tag, bt)

    t0, t1 = t_range
    return sweep_overlay(
        ha, hb, pairs, active, applied, t0, t1, edges, acc_thres, on_batch if feeds else None
    )


def _truth_scores(ha, hb, truth, t_range, applied: int, hot_thresholds, acc_thres) -> dict:
    """Each side scored against the ground truth over the compared time."""
    tr = load_truth(truth)
    opts = dict(t_range=t_range, hot_thresholds=hot_thresholds, acc_thres=acc_thres)
    return {
        "a": score_truth(ha, tr, **opts),
        "b": score_truth(hb, tr, offset_ns=applied, **opts),
    }


def _check_options(align, lag_series, hot_thresholds, addr_bin, time_bin_ns, focus) -> None:
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


def _source_notes(ha: HistorySource, hb: HistorySource, pairs) -> list[str]:
    """What a user should know about the two sources before they are compared."""
    notes: list[str] = []
    if any(ka != kb for ka, kb in pairs):
        notes.append(
            f"{ha.name} and {hb.name} monitor different targets ({ha.key_column} "
            f"{pairs[0][0]} vs {hb.key_column} {pairs[0][1]}): compared as one address "
            "space each; make sure they record the same workload"
        )
    for h, ks in ((ha, {p[0] for p in pairs}), (hb, {p[1] for p in pairs})):
        for k in sorted(ks):
            if _overlapping_windows(h, k):
                notes.append(
                    f"{h.name}: snapshots of {h.key_column} {k} overlap in time "
                    "(two monitoring runs at once?): both are compared"
                )
    return notes


def _accessed(prof_a: SideProfile, prof_b: SideProfile, ka, kb, common: np.ndarray):
    """The ranges of ``common`` where either side's accesses summed over time are not
    negligible (:meth:`SideProfile.heat_ranges`)."""
    both = np.concatenate([prof_a.heat_ranges(ka), prof_b.heat_ranges(kb)])
    act = merge_intervals(both[:, 0], both[:, 1]) if len(both) else both
    return intersect_intervals(act, common) if len(act) else act


def _alignment(
    ha, hb, pairs, granges, offset_ns: int, align: str, max_lag_ns, lag_series, acc_thres
):
    """The offset applied to ``b``, the lag estimate (``align="auto"``: estimated now
    and added), and the lag series' accumulator (else: the series are summed up as the
    sweep reads the batches, and the estimate is made afterwards)."""
    if align == "auto":
        lag = estimate_lag(
            ha,
            hb,
            pairs,
            granges,
            max_lag_ns=max_lag_ns,
            kind=lag_series,
            acc_thres=acc_thres,
            offset_b=offset_ns,
        )
        applied = offset_ns + (int(lag["lag_ns"]) if lag.get("lag_ns") is not None else 0)
        return applied, lag, None
    return offset_ns, {}, LagTotals(ha, hb, granges, lag_series, acc_thres)


def _time_bins(ha, hb, t0: int, t1: int, time_bin_ns, max_time_bins: int):
    """The time bin (ns) of the cells grid and of ``per_time``, and the bins' edges."""
    tb = float(time_bin_ns) if time_bin_ns else max(ha.aggr_ns_est, hb.aggr_ns_est, 1.0)
    tb = max(tb, (t1 - t0) / max_time_bins)
    edges = time_edges(t0, t1, tb)
    edges[-1] = t1  # the last bin stops where the common time does
    return tb, edges


def _no_common_time(ha, hb, applied: int, align: str, lag: dict) -> InputError:
    def msg(offset, auto):
        hint = (
            f"give {offset} or {auto}"
            if align != "auto"
            else f"{auto} found no lag that lines them up (their heat series do not "
            f"correlate); give {offset}"
            if lag.get("lag_ns") is None
            else f"even with the lag {auto} estimated; give {offset}"
        )
        return (
            f"{ha.name} [{ha.t_start}, {ha.t_end}) and {hb.name} "
            f"[{hb.t_start + applied}, {hb.t_end + applied}) (offset {applied} ns) "
            f"share no time; {hint}"
        )

    return InputError(msg("offset_ns", "align='auto'"), cli_message=msg("--offset", "--align auto"))


def _regions(ha, hb, pairs, t0: int, t1: int, applied: int) -> dict:
    counts_a = {str(ka): _region_counts(ha, ka, t0, t1, 0) for ka, _ in pairs}
    counts_b = {str(kb): _region_counts(hb, kb, t0, t1, applied) for _, kb in pairs}
    return {
        "a": next(iter(counts_a.values())) if len(pairs) == 1 else counts_a,
        "b": next(iter(counts_b.values())) if len(pairs) == 1 else counts_b,
    }


def _result_dict(
    ha,
    hb,
    pairs,
    common,
    granges,
    t_range,
    cells_bins,
    metrics: dict,
    notes: list,
    *,
    alignment: dict,
    focus: str,
    acc_thres,
    hot_thresholds,
) -> dict:
    """The metrics dict of :class:`CompareResult`, its members in their documented order;
    ``cells_bins``: the cells grid's address bin, address unit, time bin and edges."""
    t0, t1 = t_range
    bin_bytes, unit, tb, edges = cells_bins
    grid = {
        "what": "cells only (pictures, --cells); the metrics are exact",
        "address_bin_bytes": bin_bytes,
        "address_unit": unit,
        "time_bin_ns": int(round(tb)),
        "time_bins": int(len(edges) - 1),
        "address_bins": int(sum(len(uniform_bins(g, bin_bytes)[0]) for g in granges)),
    }
    common_bytes = int(sum(int((r[:, 1] - r[:, 0]).sum()) for r in common))
    grid_bytes = int(sum(int((r[:, 1] - r[:, 0]).sum()) for r in granges))
    return {
        "a": _side_info(ha),
        "b": _side_info(hb),
        "compared": {
            "time_ns": [int(t0), int(t1)],
            "pairs": [[int(ka), int(kb)] for ka, kb in pairs],
            "common_bytes": common_bytes,
            **metrics.pop("compared"),
        },
        "grid": {
            **grid,
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
            "grid_bytes": grid_bytes,
            "idle_bytes_left_out": common_bytes - grid_bytes,
            "focus": focus,
            "acc_thres": acc_thres,
            "hot_thresholds": list(hot_thresholds),
        },
        "alignment": alignment,
        **metrics,
        "warnings": notes,
    }


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
        f"{a.name} and {b.name} share no monitoring target (targets {ka[:5]} vs {kb[:5]})"
    )


def _region_counts(hs: HistorySource, key, t0: int, t1: int, offset: int) -> dict:
    sn = hs.snaps[hs.snaps["key"] == key]
    inside = (sn["t1"].to_numpy() + offset > t0) & (sn["t0"].to_numpy() + offset < t1)
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
    return is_damos_source(a) or is_damos_source(b)
