"""compare's metrics are exact: against a brute force that looks at every byte and every
ns of small histories (drawn with hypothesis), and on hand-computed cases (hot-set
boundary exactly at θ × max, ties, all-equal heat, empty sides, snapshots that do not
line up in time)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tracedamon.errors import InputError
from tracedamon.export.compare import CompareWarning, compare
from tracedamon.export.history import open_history

THETAS = (0.25, 0.5, 0.75, 0.3)


def _frame(rows):
    df = pd.DataFrame(
        rows,
        columns=[
            "run",
            "snapshot",
            "time_ns",
            "target",
            "pid",
            "start",
            "end",
            "nr_accesses",
            "age",
        ],
    )
    return df


def _paint(hs, df, key, t_lo, t_hi, x_lo, x_hi, off):
    """Matrices [t, x] of nr_accesses and age (NaN: nothing said) over [t_lo, t_hi) ×
    [x_lo, x_hi): each region painted over its snapshot window."""
    nr = np.full((t_hi - t_lo, x_hi - x_lo), np.nan)
    age = np.full_like(nr, np.nan)
    kcol = hs.key_column
    for s in hs.snaps[hs.snaps["key"] == key].itertuples():
        a, b = max(s.t0 + off, t_lo) - t_lo, min(s.t1 + off, t_hi) - t_lo
        if b <= a:
            continue
        rows = df[(df[kcol] == key) & (df["run"] == s.run) & (df["snapshot"] == s.snapshot)]
        for r in rows.itertuples():
            nr[a:b, int(r.start) - x_lo : int(r.end) - x_lo] = r.nr_accesses
            age[a:b, int(r.start) - x_lo : int(r.end) - x_lo] = r.age if pd.notna(r.age) else np.nan
    return nr, age


def _rank(v):
    return pd.Series(v).rank(method="average").to_numpy()


def _corr(x, y):
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def _prf(pred, ref):
    tp, pp, rp = int((pred & ref).sum()), int(pred.sum()), int(ref.sum())
    p = tp / pp if pp else None
    r = tp / rp if rp else None
    f = (2 * p * r / (p + r) if p + r else 0.0) if pp and rp else None
    return p, r, f


def _hot(v, th):
    m = v.max() if len(v) else 0
    return (v > 0) & (v >= th * m - 1e-9 * m) if m > 0 else np.zeros(len(v), bool)


def brute(dfa, dfb, offset, acc_thres=1):
    """Every metric from per-byte, per-ns points."""
    ha, hb = open_history(dfa), open_history(dfb)
    pairs = [(k, k) for k in ha.keys if k in hb.keys] or [(ha.keys[0], hb.keys[0])]
    t0 = max(ha.t_start, hb.t_start + offset)
    t1 = min(ha.t_end, hb.t_end + offset)
    lo = int(min(dfa["start"].min(), dfb["start"].min()))
    hi = int(max(dfa["end"].max(), dfb["end"].max()))
    pts = []  # (t, nr_a, nr_b, age_a ns, age_b ns, inside the accessed space)
    wss = {}  # t -> [wss_a, wss_b]
    for ka, kb in pairs:
        if t1 <= t0:
            break
        # the accessed space: bytes whose nr_accesses summed over the snapshots of a
        # side's history reach 2 % of that side's hottest byte's
        act_x = np.zeros(hi - lo, bool)
        for df, h, k in ((dfa, ha, ka), (dfb, hb, kb)):
            heat = np.zeros(hi - lo)
            for r in df[df[h.key_column] == k].itertuples():
                heat[int(r.start) - lo : int(r.end) - lo] += r.nr_accesses
            if heat.max() > 0:
                act_x |= heat >= 0.02 * heat.max()
        na, ga = _paint(ha, dfa, ka, t0, t1, lo, hi, 0)
        nb, gb = _paint(hb, dfb, kb, t0, t1, lo, hi, offset)
        win_a = np.zeros(t1 - t0, bool)
        win_b = np.zeros(t1 - t0, bool)
        for h, w, off, k in ((ha, win_a, 0, ka), (hb, win_b, offset, kb)):
            for s in h.snaps[h.snaps["key"] == k].itertuples():
                w[max(s.t0 + off, t0) - t0 : max(min(s.t1 + off, t1) - t0, 0)] = True
        both = ~np.isnan(na) & ~np.isnan(nb)
        for i in range(t1 - t0):
            if win_a[i] and win_b[i]:
                cur = wss.setdefault(t0 + i, [0, 0])
                cur[0] += int((both[i] & (na[i] >= acc_thres)).sum())
                cur[1] += int((both[i] & (nb[i] >= acc_thres)).sum())
            for j in np.flatnonzero(both[i]):
                pts.append(
                    (
                        t0 + i,
                        na[i, j],
                        nb[i, j],
                        ga[i, j] * ha.aggr_ns_measured,
                        gb[i, j] * hb.aggr_ns_measured,
                        act_x[j],
                    )
                )
    P = np.array(pts, float).reshape(-1, 6)
    x, y = P[:, 1], P[:, 2]
    out = {"n": len(P)}
    act = P[:, 5] > 0
    ra, rb = x / ha.max_nr_accesses, y / hb.max_nr_accesses
    if act.any():
        d = (rb - ra)[act]
        out["heat"] = {
            "pearson": _corr(x[act], y[act]),
            "spearman": _corr(_rank(x[act]), _rank(y[act])),
            "mean_abs_rate_diff": float(np.abs(d).mean()),
            "rms_rate_diff": float(np.sqrt((d * d).mean())),
            "mean_rate_a": float(ra[act].mean()),
            "mean_rate_b": float(rb[act].mean()),
            "active_fraction": float(act.mean()),
        }
    out["hot"] = {str(th): _prf(_hot(y, th), _hot(x, th)) for th in THETAS} if len(P) else {}
    ts = np.array(sorted(wss))
    if len(ts):
        wa = np.array([wss[t][0] for t in ts], float)
        wb = np.array([wss[t][1] for t in ts], float)
        err = wb - wa
        out["wss"] = {
            "mean_a": wa.mean(),
            "mean_b": wb.mean(),
            "mae_bytes": np.abs(err).mean(),
            "rmse_bytes": math.sqrt((err * err).mean()),
            "max_abs_error_bytes": np.abs(err).max(),
            "pearson": _corr(wa, wb),
            "seconds": len(ts) / 1e9,
        }
    known = np.isfinite(P[:, 3]) & np.isfinite(P[:, 4])
    if known.any():
        ga, gb = P[known, 3], P[known, 4]
        dd = np.sort(np.abs(ga - gb) / 1e9)
        out["age"] = {
            "known_fraction": known.mean(),
            "spearman": _corr(_rank(ga), _rank(gb)),
            "mean_abs_diff_s": dd.mean(),
            "median_abs_diff_s": dd[math.ceil(len(dd) / 2) - 1],
        }
    return out, P


def _approx(got, want, what):
    if want is None:
        assert got is None, what
    else:
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12), what


def _check(m, want):
    if "heat" in want:
        for k, v in want["heat"].items():
            _approx(m["heat"][k], v, f"heat {k}")
    else:
        assert m["heat"]["pearson"] is None and m["heat"]["mean_abs_rate_diff"] is None
    for th, (p, r, f) in want["hot"].items():
        _approx(m["hot"][th]["precision"], p, f"hot {th} precision")
        _approx(m["hot"][th]["recall"], r, f"hot {th} recall")
        _approx(m["hot"][th]["f1"], f, f"hot {th} f1")
    if "wss" in want:
        for k, v in want["wss"].items():
            _approx(m["wss"][k], v, f"wss {k}")
    if "age" in want:
        for k, v in want["age"].items():
            _approx(m["age"][k], v, f"age {k}")
    else:
        assert m["age"]["spearman"] is None


def _side(data, key_pid, t_start, addr_hi=24, whole=True):
    rows = []
    t = t_start
    aggr = data.draw(st.integers(4, 30))
    nr = st.integers(0, 4) if whole else st.sampled_from([0, 0.5, 1, 2.25, 4])
    ages = st.integers(0, 6) if whole else st.sampled_from([0, 1.5, 3])
    for s in range(data.draw(st.integers(1, 4))):
        t += aggr if data.draw(st.integers(0, 4)) else data.draw(st.integers(1, 60))
        cuts = sorted(set(data.draw(st.lists(st.integers(1, addr_hi - 1), max_size=5))))
        b = [0] + cuts + [addr_hi]
        for lo, hi in zip(b[:-1], b[1:]):
            if data.draw(st.integers(0, 5)) == 0:
                continue  # a hole in this snapshot's coverage
            age = data.draw(st.one_of(st.none(), ages))
            rows.append((0, s, t, 0, key_pid, lo, hi, data.draw(nr), age))
    return rows


@pytest.mark.parametrize("path", ["counts", "fractional", "sparse-joint"])
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_metrics_equal_a_per_byte_per_ns_brute_force(path, data, monkeypatch):
    """Whole nr_accesses (dense accumulation), fractional ones (a DataFrame of merged
    values), and whole ones through the general accumulation (too many distinct
    values for dense arrays)."""
    from tracedamon.export import compare_sweep

    # the same value for every example (the fixture is not reset between them)
    monkeypatch.setattr(compare_sweep.DenseJoint, "LIMIT", 4 if path == "sparse-joint" else 1 << 22)
    whole = path != "fractional"
    ta = data.draw(st.integers(0, 40))
    rows_a = _side(data, 7, ta, whole=whole)
    rows_b = _side(
        data,
        7 if data.draw(st.booleans()) else 8,
        ta + data.draw(st.integers(-30, 30)),
        whole=whole,
    )
    if not rows_a or not rows_b:
        return
    dfa, dfb = _frame(rows_a), _frame(rows_b)
    offset = data.draw(st.sampled_from([0, 0, 3, -5]))
    want, P = brute(dfa, dfb, offset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CompareWarning)
        try:
            r = compare(dfa, dfb, offset_ns=offset, hot_thresholds=THETAS, max_time_bins=4)
        except InputError:
            assert len(P) == 0
            return
    m = r.metrics
    assert m["compared"]["byte_seconds"] == pytest.approx(len(P) / 1e9)
    _check(m, want)
    # per time bin: the same statistics over each bin's points
    pt = r.per_time
    for row in pt.itertuples():
        sel = (P[:, 0] >= row.t0_ns) & (P[:, 0] < row.t1_ns)
        x, y = P[sel, 1], P[sel, 2]
        act = P[sel, 5] > 0
        _approx(
            row.pearson if row.pearson == row.pearson else None,
            _corr(x[act], y[act]) if act.any() else None,
            "per-time pearson",
        )
        xa, ya = P[:, 1], P[:, 2]
        hot_a = (x > 0) & (x >= 0.5 * xa.max() * (1 - 1e-9)) if xa.max() > 0 else x < 0
        hot_b = (y > 0) & (y >= 0.5 * ya.max() * (1 - 1e-9)) if ya.max() > 0 else y < 0
        p, rc, f = _prf(hot_b, hot_a)
        _approx(row.hot_recall if row.hot_recall == row.hot_recall else None, rc, "per-time recall")


# ------------------------------------------------------------------ hand-computed cases
def _hist(regions_per_snapshot, *, times, pid=1, ages=None):
    rows = []
    for s, (regs, t) in enumerate(zip(regions_per_snapshot, times)):
        for i, (lo, hi, nr) in enumerate(regs):
            age = None if ages is None else ages[s][i]
            rows.append((0, s, t, 0, pid, lo * 4096, hi * 4096, nr, age))
    df = _frame(rows)
    df.attrs["tracedamon"] = {"config": {"sample_us": 10_000, "aggr_us": 100_000}}
    return df


def test_hot_boundary_exactly_at_theta_max():
    """nr 5 of max 10 is hot at θ = 0.5 (the boundary belongs to the hot set); at 0.3,
    3 of 10 is hot although 0.3 × 10 is 3.0000000000000004 in binary."""
    a = _hist([[(0, 1, 10), (1, 2, 5), (2, 3, 3), (3, 4, 2)]], times=[100])
    b = _hist([[(0, 1, 10), (1, 2, 0), (2, 3, 3), (3, 4, 0)]], times=[100])
    m = compare(a, b, hot_thresholds=(0.5, 0.3)).metrics
    # hot_a(0.5) = {10, 5}, hot_b(0.5) = {10}: precision 1, recall 1/2
    assert m["hot"]["0.5"]["precision"] == 1.0 and m["hot"]["0.5"]["recall"] == 0.5
    # hot_a(0.3) = {10, 5, 3}, hot_b(0.3) = {10, 3}: precision 1, recall 2/3
    assert m["hot"]["0.3"]["precision"] == 1.0
    assert m["hot"]["0.3"]["recall"] == pytest.approx(2 / 3)


def test_ties_and_all_equal_heat():
    # every accessed byte equally hot on both sides: correlations undefined, hot sets equal
    a = _hist([[(0, 2, 4), (2, 4, 0)]], times=[100])
    m = compare(a, a.copy()).metrics
    assert m["heat"]["pearson"] is None and m["heat"]["spearman"] is None
    assert m["hot"]["0.5"]["f1"] == 1.0 and m["heat"]["mean_abs_rate_diff"] == 0
    # ties: b ranks {1, 1, 2} where a ranks {1, 2, 3} (bytes equal): Spearman of the
    # mid-ranks (1.5, 1.5, 3) and (1, 2, 3)
    a = _hist([[(0, 1, 1), (1, 2, 2), (2, 3, 3)]], times=[100])
    b = _hist([[(0, 1, 1), (1, 2, 1), (2, 3, 2)]], times=[100])
    m = compare(a, b).metrics
    assert m["heat"]["spearman"] == pytest.approx(np.corrcoef([1, 2, 3], [1.5, 1.5, 3])[0, 1])


def test_empty_sides():
    """A side that never saw an access: no correlation, no hot set, WSS 0 on that side."""
    a = _hist([[(0, 4, 0)], [(0, 4, 0)]], times=[100, 200])
    b = _hist([[(0, 2, 3), (2, 4, 0)], [(0, 4, 0)]], times=[100, 200])
    m = compare(a, b).metrics
    assert m["heat"]["pearson"] is None
    h = m["hot"]["0.5"]
    assert h["recall"] is None and h["precision"] == 0.0 and h["f1"] is None
    assert m["wss"]["mean_a"] == 0 and m["wss"]["mean_b"] == pytest.approx(2 * 4096 / 2)
    assert m["wss"]["relative_error"] is None
    both_idle = compare(a, a.copy()).metrics
    assert both_idle["hot"]["0.5"]["f1"] is None and both_idle["heat"]["active_fraction"] == 0


def test_snapshots_that_do_not_line_up():
    """a: aggregations of 100 ns; b: of 150 ns, starting 50 ns later. Each ns is paired
    with the snapshot of each side whose window holds it."""
    a = _hist([[(0, 2, 10)], [(0, 2, 0)], [(0, 2, 10)]], times=[100, 200, 300])
    b = _hist([[(0, 2, 10)], [(0, 2, 0)]], times=[150, 300])
    ha, hb = open_history(a), open_history(b)
    assert ha.snaps[["t0", "t1"]].values.tolist() == [[0, 100], [100, 200], [200, 300]]
    assert hb.snaps[["t0", "t1"]].values.tolist() == [[0, 150], [150, 300]]
    m = compare(a, b).metrics
    # common time [0, 300): a hot on [0,100) and [200,300); b hot on [0,150)
    # hot_a ∩ hot_b = [0,100): 100 ns; hot_b: 150 ns; hot_a: 200 ns (× 2 pages each)
    assert m["hot"]["0.5"]["precision"] == pytest.approx(100 / 150)
    assert m["hot"]["0.5"]["recall"] == pytest.approx(100 / 200)
    # WSS series on the intervals where both are constant
    assert m["wss_series"]["t0_ns"] == [0, 100, 150, 200]
    assert m["wss_series"]["a_bytes"] == [8192, 0, 0, 8192]
    assert m["wss_series"]["b_bytes"] == [8192, 8192, 0, 0]
    assert m["wss"]["mae_bytes"] == pytest.approx(8192 * (50 + 100) / 300)


def test_regions_count_only_the_compared_window():
    """A second run of the same target far outside the compared time does not count."""
    a1 = _hist([[(0, 2, 1), (2, 4, 0)]] * 5, times=[100, 200, 300, 400, 500])
    a2 = _hist([[(i, i + 1, 1) for i in range(40)]] * 3, times=[10_000, 10_100, 10_200])
    a2["run"] = 1
    a = pd.concat([a1, a2], ignore_index=True)
    a.attrs = a1.attrs
    b = _hist([[(0, 4, 1)]] * 5, times=[100, 200, 300, 400, 500])
    m = compare(a, b).metrics
    assert m["regions"]["a"]["snapshots"] == 5 and m["regions"]["a"]["mean"] == 2.0
    assert m["regions"]["b"]["mean"] == 1.0


def test_different_targets_warn():
    a = _hist([[(0, 2, 5)]] * 4, times=[100, 200, 300, 400], pid=100)
    b = _hist([[(0, 2, 5)]] * 4, times=[100, 200, 300, 400], pid=200)
    with pytest.warns(CompareWarning, match="different targets .*100 vs pid 200"):
        r = compare(a, b)
    assert "different targets" in r.metrics["warnings"][0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert compare(a, a.copy()).metrics["warnings"] == []


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 200), max_size=16, unique=True),
    st.lists(st.tuples(st.integers(0, 210), st.integers(1, 60)), min_size=1, max_size=20),
)
def test_bytes_within_ranges_against_a_count(bounds, spans):
    from tracedamon.export.align import _Within

    b = sorted(bounds)[: len(bounds) // 2 * 2]
    r = np.array(b, np.uint64).reshape(-1, 2)
    r = r[r[:, 1] > r[:, 0]]
    a = np.array([s for s, _ in spans], np.uint64)
    e = a + np.array([n for _, n in spans], np.uint64)
    got = _Within(r).within(a, e)
    want = [
        sum(max(0, min(int(y), int(hi)) - max(int(x), int(lo))) for lo, hi in r.tolist())
        for x, y in zip(a, e)
    ]
    assert got.tolist() == want


def test_align_auto_on_different_targets_says_what_it_did():
    """Two recordings of different targets, one 10 s later: --align auto lines them up,
    and says so, instead of doing it without a word."""
    rng = np.random.default_rng(4)
    wave = rng.integers(0, 2, size=40)
    regs = [[(0, 4, 10 * int(w)), (4, 8, 1)] for w in wave]
    times = [100_000_000 * (i + 1) for i in range(40)]  # the 100 ms of the metadata
    a = _hist(regs, times=times, pid=100)
    b = _hist(regs, times=[t + 10_000_000_000 for t in times], pid=200)
    with pytest.warns(CompareWarning) as rec:
        r = compare(a, b, align="auto")
    assert r.metrics["alignment"]["applied_offset_ns"] == -10_000_000_000
    msgs = [str(w.message) for w in rec]
    assert any("different targets" in m for m in msgs)
    assert any("--align auto shifted" in m and "-10.000 s" in m for m in msgs)
    assert len(r.metrics["warnings"]) == 2
