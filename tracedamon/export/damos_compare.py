"""Compare two ``damos_apply`` tables: which bytes two sets of DAMOS applications share.

``compare_damos(a, b)`` (and ``tracedamon.compare(a, b, damos=True)``, which calls it)
measures how far apart two sets of scheme applications are: the applications a kernel
recorded (``damos_before_apply`` events of an ingested DAMON trace) and the ones
``tracedamon damos`` predicted for the same run, or two predictions (a perf-based
replay against the real trace, two configurations, two kernel profiles).  ``a`` is the
reference, ``b`` the candidate, as in :func:`tracedamon.compare`.

Sources: a directory written by ``tracedamon damos``, a trace directory holding a
``damos_apply`` table, a ``damos_apply`` ``.parquet`` file, a
:class:`~tracedamon.damos_run.DamosResult`, or an Arrow table / DataFrame with the
``damos_apply`` columns (``time_ns``, ``scheme``, ``target``, ``start``, ``end``;
``context`` and ``nr_accesses`` / ``age`` where present).

Applications.  One application is one walk of one scheme over the regions: the rows of
one (context, scheme) whose times follow one another by less than half the *window*.
The window is the interval at which the scheme is applied: its ``apply_interval_us``
when a ``tracedamon damos`` run's metadata gives it, else the aggregation interval of
the source's metadata (a trace directory's ``intervals``, a damos run's context), else
``window_ns``.  The kernel emits a walk's events within milliseconds (run 1 of the
corpus: at most 3.7 ms) and walks are an interval apart (there: 5.12 s), so the rule
cuts between walks.  An application's time is its last row's: the kernel's events come
right before the snapshot it emits next, a prediction carries that snapshot's time.

Pairing.  Within each (context, scheme), an application of ``a`` and one of ``b``
(``b``'s times shifted by ``offset_ns``) are paired when their times differ by at most
half the window: nearest first (candidate pairs by increasing time difference, each
application used once), so two sides whose clocks or snapshot times differ by
milliseconds pair walk for walk, and a walk one side made and the other did not stays
unpaired rather than stealing its neighbour's partner.

Figures (all exact, in bytes; ranges of different targets never overlap):

``per_application``
    one entry per application of either side: scheme, the paired times and their
    difference, bytes applied by ``a``, by ``b``, by both (the intersection of the two
    walks' address ranges, per target) and by either (their union), Jaccard
    (both / either), and whether the two walks hand the same regions to the action,
    row for row (start, end, nr_accesses, age where both sides record them).
``bytes``
    over the run: the per-application figures summed (bytes applied by both, by
    either, by ``a`` only, by ``b`` only, Jaccard = both / either).  A byte applied
    at two different times counts twice; a byte both sides apply but in walks that
    are not paired counts as ``a`` only and ``b`` only.
``addresses``
    the same figures on the set of addresses each side ever applied, time left out.
``applications``
    counts: per side, paired, only in ``a``, only in ``b``, identical (row for row),
    fully overlapping (Jaccard 1).
``per_scheme``
    ``bytes`` and ``applications`` per (context, scheme).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from ..errors import ConfigError, InputError
from ..store.parquet import read_schema, read_table
from ..store.trace import open_trace
from .grid import merge_intervals
from .metrics_json import metrics_text

__all__ = [
    "compare_damos",
    "DamosCompareResult",
    "read_applications",
    "is_damos_source",
    "applications_of",
    "pair_applications",
]

_NEED = ("time_ns", "scheme", "target", "start", "end")


# ----------------------------------------------------------------------------------
# reading a side
# ----------------------------------------------------------------------------------
@dataclass
class Side:
    """One side's rows (sorted into applications) and what its metadata says."""

    name: str
    rows: pd.DataFrame
    window_ns: dict  # (context, scheme) -> window in ns (None: unknown)
    default_window_ns: int | None


def _is_damos_table_file(p: Path) -> bool:
    if p.suffix != ".parquet" or not p.is_file():
        return False
    try:
        names = read_schema(p).names
    except (OSError, pa.ArrowInvalid):
        return False
    return all(c in names for c in _NEED) and "snapshot" not in names


def is_damos_source(src) -> bool:
    """True when ``src`` holds scheme applications and no region history: a directory
    with a ``damos_apply`` table and no ``regions`` table (what ``tracedamon damos``
    writes), a ``damos_apply`` Parquet file, a DamosResult, or a table with the
    ``damos_apply`` columns and no ``snapshot`` column."""
    if hasattr(src, "applications") and hasattr(src, "metadata"):
        return True
    if isinstance(src, (pa.Table, pd.DataFrame)):
        names = list(src.column_names if isinstance(src, pa.Table) else src.columns)
        return all(c in names for c in _NEED) and "snapshot" not in names
    if isinstance(src, (str, os.PathLike)):
        p = Path(src)
        if p.is_dir():
            return (p / "damos_apply.parquet").exists() and not (p / "regions.parquet").exists()
        return _is_damos_table_file(p)
    return False


def _meta_windows(meta: dict) -> tuple[dict, int | None]:
    """(context, scheme) -> apply window (ns), and the aggregation interval (ns), from a
    trace directory's or a damos run's metadata."""
    d = meta.get("damos") if isinstance(meta.get("damos"), dict) else None
    aggr_us = None
    per: dict = {}
    if d is not None:
        aggr_us = (d.get("context") or {}).get("aggr_us")
        for j, s in enumerate(d.get("schemes") or []):
            ai = s.get("apply_interval_us") if isinstance(s, dict) else None
            if ai:
                per[(0, j)] = int(ai) * 1000
    if aggr_us is None:
        aggr_us = (meta.get("intervals") or {}).get("aggr_us")
    if aggr_us is None:
        aggr_us = ((meta.get("replay") or {}).get("config") or {}).get("aggr_us")
    return per, (int(aggr_us) * 1000 if aggr_us else None)


def read_applications(src, name: str | None = None) -> Side:
    """The rows of a ``damos_apply`` table and the windows its metadata gives."""
    meta: dict = {}
    if hasattr(src, "applications") and hasattr(src, "metadata"):  # DamosResult
        t = src.applications
        meta = {"damos": src.metadata}
        label = name or "damos result"
    elif isinstance(src, pa.Table):
        t, label = src, name or "table"
    elif isinstance(src, pd.DataFrame):
        t, label = pa.Table.from_pandas(src, preserve_index=False), name or "DataFrame"
    elif isinstance(src, (str, os.PathLike)):
        p = Path(src)
        if not p.exists():
            raise InputError(f"{p}: no such file or directory")
        label = name or str(p)
        if p.is_dir():
            tr = open_trace(p)
            if not tr.has("damos_apply"):
                raise InputError(
                    f"{p}: holds no damos_apply table (ingest a DAMON trace "
                    "with damos_before_apply events, or run tracedamon damos)"
                )
            t = tr.table("damos_apply")
            meta = tr.meta
        else:
            if p.suffix != ".parquet":
                raise InputError(f"{p}: not a trace directory or a damos_apply .parquet")
            try:
                t = read_table(p)
            except (OSError, pa.ArrowInvalid) as e:
                raise InputError(f"{p}: not a readable Parquet file ({e})") from None
            mp = p.parent / "meta.json"
            if mp.exists():
                try:
                    meta = json.loads(mp.read_text())
                except ValueError:
                    meta = {}
    else:
        raise InputError(f"not a damos_apply table: {type(src).__name__}")
    missing = [c for c in _NEED if c not in t.column_names]
    if missing:
        raise InputError(
            f"{label}: not a damos_apply table: missing column(s) {', '.join(missing)}"
        )
    n = t.num_rows

    def col(c, fill=None):
        if c not in t.column_names:
            return np.full(n, fill if fill is not None else -1, np.int64)
        x = t.column(c).cast(pa.int64())
        return x.fill_null(-1 if fill is None else fill).to_numpy(zero_copy_only=False)

    df = pd.DataFrame(
        {
            "time_ns": col("time_ns"),
            "context": col("context", 0),
            "scheme": col("scheme"),
            "target": col("target"),
            "start": t.column("start").to_numpy(zero_copy_only=False).astype(np.uint64),
            "end": t.column("end").to_numpy(zero_copy_only=False).astype(np.uint64),
            "nr_accesses": col("nr_accesses"),
            "age": col("age"),
        }
    )
    if n and bool((df["end"] <= df["start"]).any()):
        i = int(np.flatnonzero((df["end"] <= df["start"]).to_numpy())[0])
        raise InputError(
            f"{label}: row {i}: end {int(df['end'][i]):#x} is not above start "
            f"{int(df['start'][i]):#x}"
        )
    df["order"] = np.arange(n)
    per, aggr = _meta_windows(meta)
    return Side(label, df, per, aggr)


# ----------------------------------------------------------------------------------
# applications and pairing
# ----------------------------------------------------------------------------------
def applications_of(rows: pd.DataFrame, window_of) -> pd.DataFrame:
    """Number every row with its application (column ``app``) and return one row per
    application: context, scheme, time_ns (its last row's), first and last row.
    ``window_of(context, scheme)`` gives the scheme's window in ns."""
    rows = rows.sort_values(["context", "scheme", "time_ns", "order"], kind="stable")
    app = np.zeros(len(rows), np.int64)
    out = []
    k = 0
    for (ctx, sch), g in rows.groupby(["context", "scheme"], sort=True):
        w = window_of(int(ctx), int(sch))
        t = g["time_ns"].to_numpy()
        new = np.ones(len(t), bool)
        new[1:] = np.diff(t) > w // 2
        ids = np.cumsum(new) - 1 + k
        app[rows.index.get_indexer(g.index)] = ids
        starts = np.flatnonzero(new)
        ends = np.append(starts[1:], len(t)) - 1
        for s, e in zip(starts, ends):
            out.append((k, int(ctx), int(sch), int(t[e]), int(t[s]), int(e - s + 1)))
            k += 1
    rows = rows.assign(app=app)
    apps = pd.DataFrame(out, columns=["app", "context", "scheme", "time_ns", "first_ns", "rows"])
    return rows, apps


def pair_applications(ta: np.ndarray, tb: np.ndarray, tolerance: int) -> list[tuple]:
    """Pairs (i, j) of applications at times ``ta[i]``, ``tb[j]`` (both sorted) whose
    difference is at most ``tolerance``: nearest first, each used once."""
    cand = []
    lo = 0
    for i, t in enumerate(ta):
        while lo < len(tb) and tb[lo] < t - tolerance:
            lo += 1
        j = lo
        while j < len(tb) and tb[j] <= t + tolerance:
            cand.append((abs(int(tb[j]) - int(t)), i, j))
            j += 1
    cand.sort()
    used_a, used_b, pairs = set(), set(), []
    for _, i, j in cand:
        if i in used_a or j in used_b:
            continue
        used_a.add(i)
        used_b.add(j)
        pairs.append((i, j))
    return sorted(pairs)


def _union_len(starts: np.ndarray, ends: np.ndarray) -> int:
    if len(starts) == 0:
        return 0
    m = merge_intervals(starts, ends)
    return int((m[:, 1] - m[:, 0]).sum())


def _keyed(g: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Address ranges of several targets on one line: target t's addresses lifted by
    t × 2^64 (as Python ints: no overflow), so that targets never overlap."""
    tg = g["target"].to_numpy().astype(object)
    s = g["start"].to_numpy().astype(object)
    e = g["end"].to_numpy().astype(object)
    base = tg * (1 << 64)
    return base + s, base + e


def _overlap(ga: pd.DataFrame, gb: pd.DataFrame) -> tuple[int, int, int]:
    """(bytes of a, bytes of b, bytes in both): each side's union, per target."""
    several = len(set(ga["target"].unique()) | set(gb["target"].unique())) > 1
    sa, ea = _iv(ga, several)
    sb, eb = _iv(gb, several)
    la, lb = _len(sa, ea), _len(sb, eb)
    lu = _len(np.concatenate([sa, sb]), np.concatenate([ea, eb]))
    return la, lb, la + lb - lu


def _iv(g: pd.DataFrame, several: bool):
    if not several:
        return g["start"].to_numpy(np.uint64), g["end"].to_numpy(np.uint64)
    return _keyed(g)


def _len(s, e) -> int:
    if len(s) == 0:
        return 0
    if s.dtype == object:  # several targets: exact Python-int union
        o = sorted(zip(s, e))
        total, cur_s, cur_e = 0, None, None
        for x, y in o:
            if cur_e is None or x > cur_e:
                if cur_e is not None:
                    total += cur_e - cur_s
                cur_s, cur_e = x, y
            else:
                cur_e = max(cur_e, y)
        return int(total + cur_e - cur_s)
    return _union_len(s, e)


def _identical(ga: pd.DataFrame, gb: pd.DataFrame) -> bool:
    cols = ["target", "start", "end", "nr_accesses"]
    if (ga["age"] >= 0).all() and (gb["age"] >= 0).all():
        cols.append("age")
    if len(ga) != len(gb):
        return False
    return bool((ga[cols].to_numpy() == gb[cols].to_numpy()).all())


def _ratio(x: int, y: int):
    return x / y if y else None


def _bytes_figures(a: int, b: int, both: int) -> dict:
    either = a + b - both
    return {
        "a": a,
        "b": b,
        "both": both,
        "either": either,
        "only_a": a - both,
        "only_b": b - both,
        "jaccard": _ratio(both, either),
        "b_in_a": _ratio(both, b),
        "a_in_b": _ratio(both, a),
    }


# ----------------------------------------------------------------------------------
# the comparison
# ----------------------------------------------------------------------------------
class DamosCompareResult:
    """What :func:`compare_damos` found: ``metrics`` (a JSON-ready dict, the one
    ``tracedamon compare -o`` writes) and ``per_application`` (one row per application
    of either side)."""

    def __init__(self, metrics: dict, per_application: pd.DataFrame):
        self.metrics = metrics
        self.per_application = per_application

    def to_json(self, path: str | os.PathLike | None = None, *, force: bool = False) -> str:
        """The metrics as strict JSON text; with ``path``, also written there (with
        tracedamon's marker; ``force=True`` replaces only metrics tracedamon wrote)."""
        return metrics_text(self.metrics, path, force=force)


def compare_damos(
    a,
    b,
    *,
    offset_ns: int = 0,
    window_ns: int | None = None,
    name_a: str | None = None,
    name_b: str | None = None,
) -> DamosCompareResult:
    """Compare the scheme applications of ``b`` (candidate) with those of ``a``
    (reference); see the module docstring.  ``offset_ns`` is added to every time of
    ``b``; ``window_ns`` is the apply interval when neither side's metadata gives one
    (it overrides the aggregation interval of the metadata, not a scheme's own
    ``apply_interval_us``)."""
    if window_ns is not None and window_ns <= 0:
        raise ConfigError("the window must be positive")
    sa, sb = read_applications(a, name_a), read_applications(b, name_b)
    window_of = _Windows(sa, sb, window_ns)
    rb = sb.rows.copy()
    rb["time_ns"] = rb["time_ns"] + int(offset_ns)
    ra, apps_a = applications_of(sa.rows, window_of)
    rb, apps_b = applications_of(rb, window_of)
    keys = sorted(
        set(map(tuple, apps_a[["context", "scheme"]].to_numpy().tolist()))
        | set(map(tuple, apps_b[["context", "scheme"]].to_numpy().tolist()))
    )
    pdf = _per_application(ra, rb, apps_a, apps_b, keys, window_of)
    per_scheme = {
        f"{ctx}/{sch}": _scheme_figures(pdf, apps_a, apps_b, ctx, sch, window_of(ctx, sch))
        for ctx, sch in keys
    }
    la, lb, both = _overlap(sa.rows, sb.rows)
    metrics = {
        "kind": "damos_apply",
        "a": {"source": sa.name, "rows": int(len(sa.rows)), "applications": int(len(apps_a))},
        "b": {"source": sb.name, "rows": int(len(sb.rows)), "applications": int(len(apps_b))},
        "pairing": {
            "offset_ns": int(offset_ns),
            "rule": "per (context, scheme): nearest in time, at most half the "
            "window apart, each application used once",
            "windows_ns": {k: v["window_ns"] for k, v in per_scheme.items()},
        },
        "applications": _counts(pdf, int(len(apps_a)), int(len(apps_b))),
        "bytes": _sums(pdf),
        "addresses": _bytes_figures(la, lb, both),
        "per_scheme": per_scheme,
        "per_application": pdf.to_dict("records"),
    }
    return DamosCompareResult(metrics, pdf)


class _Windows:
    """The apply interval of each (context, scheme): the shorter of the two sides'
    metadata, else ``window_ns``, else the shorter default (aggregation) interval."""

    def __init__(self, sa: Side, sb: Side, window_ns: int | None):
        self.sides = (sa, sb)
        default = window_ns or sa.default_window_ns or sb.default_window_ns
        if sa.default_window_ns and sb.default_window_ns and window_ns is None:
            default = min(sa.default_window_ns, sb.default_window_ns)
        self.default = default

    def __call__(self, ctx: int, sch: int) -> int:
        sa, sb = self.sides
        w = [s.window_ns.get((ctx, sch)) for s in (sa, sb)]
        w = [x for x in w if x]
        if w:
            return min(w)
        if self.default is None:
            why = (
                f"{sa.name} and {sb.name}: the interval the schemes are applied at is "
                "unknown (no metadata gives it): give the window"
            )
            raise ConfigError(
                f"{why} (window_ns=, the aggregation or apply interval)",
                cli_message=f"{why} (--window NS, the aggregation or apply interval)",
            )
        return int(self.default)


_PER_APPLICATION_COLUMNS = [
    "context",
    "scheme",
    "time_a_ns",
    "time_b_ns",
    "dt_ns",
    "paired",
    "rows_a",
    "rows_b",
    "bytes_a",
    "bytes_b",
    "bytes_both",
    "bytes_either",
    "jaccard",
    "identical",
]


def _per_application(ra, rb, apps_a, apps_b, keys, window_of) -> pd.DataFrame:
    """One row per application of either side: paired per (context, scheme) by
    :func:`pair_applications`, with the bytes each covers and both cover; sorted by
    context, scheme and time."""
    ga = dict(tuple(ra.groupby("app"))) if len(ra) else {}
    gb = dict(tuple(rb.groupby("app"))) if len(rb) else {}
    empty = ra.iloc[:0]
    per = []
    for ctx, sch in keys:
        xa = apps_a[(apps_a.context == ctx) & (apps_a.scheme == sch)].reset_index(drop=True)
        xb = apps_b[(apps_b.context == ctx) & (apps_b.scheme == sch)].reset_index(drop=True)
        w = window_of(ctx, sch)
        pairs = pair_applications(xa.time_ns.to_numpy(), xb.time_ns.to_numpy(), w // 2)
        pa_, pb_ = {i for i, _ in pairs}, {j for _, j in pairs}
        entries = (
            [(i, j) for i, j in pairs]
            + [(i, None) for i in range(len(xa)) if i not in pa_]
            + [(None, j) for j in range(len(xb)) if j not in pb_]
        )
        for i, j in entries:
            g1 = ga[int(xa.app[i])] if i is not None else empty
            g2 = gb[int(xb.app[j])] if j is not None else empty
            t1 = int(xa.time_ns[i]) if i is not None else None
            t2 = int(xb.time_ns[j]) if j is not None else None
            per.append(_application_row(ctx, sch, g1, g2, t1, t2))
    pdf = pd.DataFrame(per, columns=_PER_APPLICATION_COLUMNS)
    if len(pdf):
        sort_t = pdf["time_a_ns"].fillna(pdf["time_b_ns"])
        pdf = (
            pdf.assign(_t=sort_t)
            .sort_values(["context", "scheme", "_t"], kind="stable")
            .drop(columns="_t")
        )
        pdf = pdf.reset_index(drop=True)
    return pdf


def _application_row(ctx, sch, g1: pd.DataFrame, g2: pd.DataFrame, t1, t2) -> dict:
    """One application of a side (``t1`` or ``t2`` None: the other side has none
    paired with it) and its overlap with its partner."""
    la, lb, both = _overlap(g1, g2)
    paired = t1 is not None and t2 is not None
    return {
        "context": ctx,
        "scheme": sch,
        "time_a_ns": t1,
        "time_b_ns": t2,
        "dt_ns": (t2 - t1) if paired else None,
        "paired": paired,
        "rows_a": len(g1),
        "rows_b": len(g2),
        "bytes_a": la,
        "bytes_b": lb,
        "bytes_both": both,
        "bytes_either": la + lb - both,
        "jaccard": _ratio(both, la + lb - both),
        "identical": bool(paired and _identical(g1, g2)),
    }


def _counts(d: pd.DataFrame, na: int, nb: int) -> dict:
    """Application counts of per-application rows ``d`` (of ``na`` and ``nb``)."""
    paired = d[d.paired]
    return {
        "a": na,
        "b": nb,
        "paired": int(len(paired)),
        "only_a": int(na - len(paired)),
        "only_b": int(nb - len(paired)),
        "identical": int(paired.identical.sum()),
        "full_overlap": int((paired.bytes_both == paired.bytes_either).sum()),
        "mean_abs_dt_ns": float(paired.dt_ns.abs().mean()) if len(paired) else None,
    }


def _sums(d: pd.DataFrame) -> dict:
    return _bytes_figures(int(d.bytes_a.sum()), int(d.bytes_b.sum()), int(d.bytes_both.sum()))


def _scheme_figures(pdf, apps_a, apps_b, ctx: int, sch: int, window_ns: int) -> dict:
    """The figures of one (context, scheme)."""
    d = pdf[(pdf.context == ctx) & (pdf.scheme == sch)]
    return {
        "context": ctx,
        "scheme": sch,
        "window_ns": window_ns,
        "applications": _counts(
            d,
            int(((apps_a.context == ctx) & (apps_a.scheme == sch)).sum()),
            int(((apps_b.context == ctx) & (apps_b.scheme == sch)).sum()),
        ),
        "bytes": _sums(d),
    }
