"""Ground truth and attribution from pagemap snapshots, for physical (paddr) results.

* :func:`ground_truth` -- the physical frames of a workload's known virtual areas
  (e.g. hot / warm / cold buffers), as merged physical address ranges per label.
* :func:`score_areas` -- how a paddr region history (``regions`` table: a real
  DAMON trace or a replay) rated each labelled area: mean ``nr_accesses`` per
  byte and the fraction of bytes inside accessed regions, per snapshot.
* :func:`attribute_regions` (:func:`iter_attribution` in batches) -- how many bytes
  of each paddr region belong to which process, according to the pagemap snapshot
  nearest the region's time.

Region histories are streamed (:mod:`tracedamon.export.history`); a sparse one
(written with ``--accessed-only``) is read with its idle bytes put back as regions
with nr_accesses 0, so every figure equals the dense history's.
* :func:`areas_from_workload_log` -- areas from ``layout area=NAME start=0x.. end=0x..``
  lines (the format of the damon-paddr-run1 workload's log).

Pagemap snapshots and DAMON traces may use different clocks: pagemap times are
CLOCK_MONOTONIC; a DAMON trace recorded by perf without ``-k CLOCK_MONOTONIC``
uses perf's clock (run 1 of the corpus: perf = monotonic - 1.19 ms).
``time_offset_ns`` is added to region times before choosing a snapshot.
"""

from __future__ import annotations

import os
import re

import numpy as np
import pandas as pd
import pyarrow as pa

from ..engine.translate import PAGE_SIZE, Translator, merge_intervals
from ..errors import InputError, TraceFormatError
from ..store.atomic import ATTRIBUTION, TRUTH_CSV, write_text_atomic
from ..store.writer import TableWriter
from .history import HistorySource, open_history

# ---------------------------------------------------------------------------------
# interval coverage helper


class _Coverage:
    """Bytes of a set of sorted, disjoint intervals below any point (vectorised)."""

    def __init__(self, starts: np.ndarray, ends: np.ndarray):
        self.s = np.asarray(starts, dtype=np.uint64)
        self.e = np.asarray(ends, dtype=np.uint64)
        self.len = (self.e - self.s).astype(np.uint64)
        self.cum = np.concatenate([[0], np.cumsum(self.len, dtype=np.uint64)]).astype(np.uint64)

    def below(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.uint64)
        if not self.s.size:
            return np.zeros(x.shape, np.uint64)
        i = np.searchsorted(self.s, x, side="right")
        ic = np.maximum(i - 1, 0)
        part = np.minimum(np.where(x > self.s[ic], x - self.s[ic], 0), self.len[ic])
        return np.where(i > 0, self.cum[ic] + part, np.uint64(0)).astype(np.uint64)

    def within(self, a, b) -> np.ndarray:
        """Bytes of the intervals inside each [a, b)."""
        return self.below(b) - self.below(a)


def _areas_frame(areas) -> pd.DataFrame:
    if isinstance(areas, pd.DataFrame):
        df = areas.copy()
    elif isinstance(areas, dict):
        df = pd.DataFrame([(k, *v) for k, v in areas.items()], columns=["label", "start", "end"])
    else:
        rows = list(areas)
        if rows and isinstance(rows[0], dict):
            df = pd.DataFrame(rows)
        else:
            df = pd.DataFrame(
                rows,
                columns=["label", "start", "end", "pid"][: len(rows[0])]
                if rows
                else ["label", "start", "end"],
            )
    for c in ("label", "start", "end"):
        if c not in df.columns:
            raise InputError(f"areas need a {c!r} column (label, start, end[, pid])")
    df["start"] = df["start"].astype("uint64")
    df["end"] = df["end"].astype("uint64")
    if (df["end"] <= df["start"]).any():
        raise InputError("an area has end <= start")
    return df


def areas_from_workload_log(path: str | os.PathLike) -> pd.DataFrame:
    """``label, start, end`` of every ``layout area=NAME start=0x.. end=0x..`` line of a log."""
    rows = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for no, line in enumerate(f, 1):
            if " layout " not in f" {line}" or "area=" not in line:
                continue
            kv = dict(m.groups() for m in re.finditer(r"(\w+)=(\S+)", line))
            try:
                rows.append((kv["area"], int(kv["start"], 16), int(kv["end"], 16)))
            except (KeyError, ValueError):
                raise TraceFormatError(
                    path, "layout line without area=, start=0x.., end=0x..", line=no
                ) from None
    if not rows:
        raise InputError(f"{path}: no 'layout area=...' lines")
    return _areas_frame(rows)


# ---------------------------------------------------------------------------------
# ground truth


def ground_truth(
    pagemap,
    areas,
    *,
    snapshot: int | None = None,
    pid: int | None = None,
    page_size: int = PAGE_SIZE,
) -> pd.DataFrame:
    """Physical address ranges of each labelled virtual area.

    Parameters
    ----------
    pagemap
        The ``pagemap`` table (DataFrame / Arrow table) or a :class:`Translator`.
    areas
        ``label, start, end`` virtual ranges (DataFrame, list of tuples or dicts, or a
        ``{label: (start, end)}`` dict), optionally with a ``pid`` column.
    snapshot
        Which pagemap snapshot; default: the last one.
    pid
        The process of the areas when neither ``areas`` has a pid column nor the
        snapshot holds a single process.

    Returns
    -------
    DataFrame ``label, start, end``: physical byte ranges, sorted by label then
    start, merged (adjacent frames of one label form one range). Pages that are
    not present (or whose frame is unknown) are absent.
    """
    tr = (
        pagemap
        if isinstance(pagemap, Translator)
        else Translator.from_tables(pagemap, page_size=page_size)
    )
    ps = np.uint64(tr.page_size)
    a = _areas_frame(areas)
    if not tr.snapshots.size:
        raise InputError("the pagemap table is empty")
    if snapshot is None:
        snapshot = int(tr.snapshots[np.argmax(tr.snapshot_times)])
    elif snapshot not in set(tr.snapshots.tolist()):
        raise InputError(f"no pagemap snapshot {snapshot} (have {tr.snapshots.tolist()})")
    in_snap = tr._snap == snapshot
    pids_here = np.unique(tr._pid[in_snap])
    labels, ps_out, pe_out = [], [], []
    for _, row in a.iterrows():
        p = row["pid"] if "pid" in a.columns and pd.notna(row.get("pid")) else pid
        if p is None:
            if pids_here.size != 1:
                raise InputError(
                    f"snapshot {snapshot} holds {pids_here.size} processes: give the areas' pid"
                )
            p = int(pids_here[0])
        rows = np.flatnonzero(in_snap & (tr._pid == p))
        vs, ve, pfn = tr._vs[rows], tr._ve[rows], tr._pfn[rows]
        s, e = np.uint64(row["start"]), np.uint64(row["end"])
        lo = np.searchsorted(ve, s, side="right")
        hi = np.searchsorted(vs, e, side="left")
        if hi <= lo:
            continue
        cs = np.maximum(vs[lo:hi], s)
        ce = np.minimum(ve[lo:hi], e)
        phys_s = pfn[lo:hi] * ps + (cs - vs[lo:hi])
        labels.append(np.full(hi - lo, row["label"], dtype=object))
        ps_out.append(phys_s)
        pe_out.append(phys_s + (ce - cs))
    if not labels:
        return pd.DataFrame(
            {
                "label": pd.Series([], dtype=object),
                "start": pd.Series([], dtype="uint64"),
                "end": pd.Series([], dtype="uint64"),
            }
        )
    lab = np.concatenate(labels)
    codes, uniq = pd.factorize(lab, sort=True)
    k, s, e = merge_intervals(codes, np.concatenate(ps_out), np.concatenate(pe_out))
    return pd.DataFrame(
        {
            "label": np.asarray(uniq, dtype=object)[k],
            "start": s.astype(np.uint64),
            "end": e.astype(np.uint64),
        }
    )


# ---------------------------------------------------------------------------------
# scoring a paddr region history against ground truth


def _history(regions):
    """A region history opened for streaming (a DataFrame or table is checked first for
    the columns this module needs, with its old message)."""
    if isinstance(regions, HistorySource):
        return regions
    _check_columns(regions)
    return open_history(regions)


def _check_columns(regions) -> None:
    cols = (
        regions.columns
        if isinstance(regions, pd.DataFrame)
        else regions.column_names
        if hasattr(regions, "column_names")
        else None
    )
    if cols is not None:
        for c in ("snapshot", "time_ns", "start", "end", "nr_accesses"):
            if c not in cols:
                raise InputError(f"regions table has no {c!r} column")


def _empty_regions(regions) -> bool:
    return (isinstance(regions, pd.DataFrame) or hasattr(regions, "num_rows")) and len(regions) == 0


SCORE_COLUMNS = [
    "run",
    "snapshot",
    "time_ns",
    "label",
    "bytes",
    "mean_nr_accesses",
    "accessed_fraction",
    "covered_fraction",
]


def score_areas(regions, truth: pd.DataFrame) -> pd.DataFrame:
    """Per region snapshot and truth label: how DAMON rated the label's frames.

    ``regions``: any region history (a ``regions`` DataFrame or table, a trace
    directory, a ``.parquet`` file), read a batch of snapshots at a time; a sparse one
    is read with its idle bytes (nr_accesses 0) put back.

    Returns a DataFrame ``run, snapshot, time_ns, label, bytes, mean_nr_accesses,
    accessed_fraction, covered_fraction``: ``mean_nr_accesses`` is the byte-weighted
    mean of ``nr_accesses`` over all of the label's bytes (bytes outside every
    region count as 0), ``accessed_fraction`` the share of the label's bytes inside
    regions with ``nr_accesses > 0``, ``covered_fraction`` the share inside any region.
    The regions of every target of a snapshot count together.
    """
    truth = _areas_frame(truth)
    if _empty_regions(regions):
        _check_columns(regions)
        return pd.DataFrame(columns=SCORE_COLUMNS)
    hs = _history(regions)
    cover = {}
    for label, g in truth.groupby("label", sort=True):
        _, s, e = merge_intervals(
            np.zeros(len(g), np.int64), g["start"].to_numpy(np.uint64), g["end"].to_numpy(np.uint64)
        )
        cover[label] = _Coverage(s, e)
    N = hs.n_snapshots
    sums = {lab: np.zeros((3, N)) for lab in cover}
    tmax = np.full(N, np.iinfo(np.int64).min, np.int64)
    for b in hs.iter_batches():
        snap = b.row_snap
        np.maximum.at(tmax, snap, b.time_ns)
        acc = b.nr_accesses
        for label, cov in cover.items():
            w = cov.within(b.start, b.end).astype(np.float64)
            sums[label][0] += np.bincount(snap, weights=w * acc, minlength=N)
            sums[label][1] += np.bincount(snap, weights=np.where(acc > 0, w, 0.0), minlength=N)
            sums[label][2] += np.bincount(snap, weights=w, minlength=N)
    sn = hs.snaps
    out = []
    for label, cov in cover.items():
        total = float(cov.cum[-1])
        f = pd.DataFrame(
            {
                "run": sn["run"].to_numpy(),
                "snapshot": sn["snapshot"].to_numpy(),
                "time_ns": tmax,
                "w": sums[label][0],
                "a": sums[label][1],
                "c": sums[label][2],
            }
        )
        f = (
            f.groupby(["run", "snapshot"], sort=True)
            .agg(time_ns=("time_ns", "max"), w=("w", "sum"), a=("a", "sum"), c=("c", "sum"))
            .reset_index()
        )
        out.append(
            pd.DataFrame(
                {
                    "run": f["run"].to_numpy(),
                    "snapshot": f["snapshot"].to_numpy(),
                    "time_ns": f["time_ns"].to_numpy(),
                    "label": label,
                    "bytes": int(total),
                    "mean_nr_accesses": f["w"] / total if total else np.nan,
                    "accessed_fraction": f["a"] / total if total else np.nan,
                    "covered_fraction": f["c"] / total if total else np.nan,
                }
            )
        )
    return (
        pd.concat(out, ignore_index=True)
        .sort_values(["run", "snapshot", "label"], kind="stable")
        .reset_index(drop=True)
    )


# ---------------------------------------------------------------------------------
# attribution of paddr regions to processes

ATTRIBUTION_COLUMNS = [
    "run",
    "snapshot",
    "time_ns",
    "start",
    "end",
    "nr_accesses",
    "pid",
    "bytes",
    "pagemap_snapshot",
]


def _attribute_frame(
    df: pd.DataFrame, tr, time_offset_ns: int, include_unattributed: bool, ps: np.uint64
) -> pd.DataFrame:
    """:func:`attribute_regions` of one frame of regions."""
    rs = df["start"].to_numpy(np.uint64)
    re_ = df["end"].to_numpy(np.uint64)
    psnap = tr.snapshot_at(df["time_ns"].to_numpy(np.int64) + np.int64(time_offset_ns))
    parts = []
    for s in np.unique(psnap):
        sel = np.flatnonzero(psnap == s)
        owned = tr.owned_frames(int(s))
        for p in np.unique(owned["pid"]):
            m = owned["pid"] == p
            cov = _Coverage(owned["pfn_start"][m] * ps, owned["pfn_end"][m] * ps)
            b = cov.within(rs[sel], re_[sel])
            nz = b > 0
            parts.append((sel[nz], np.full(nz.sum(), p, np.int32), b[nz], int(s)))
        if include_unattributed:
            _, us, ue = merge_intervals(
                np.zeros(owned["pid"].size, np.int64),
                owned["pfn_start"] * ps,
                owned["pfn_end"] * ps,
            )
            b = (re_[sel] - rs[sel]) - _Coverage(us, ue).within(rs[sel], re_[sel])
            nz = b > 0
            parts.append((sel[nz], np.full(nz.sum(), -1, np.int32), b[nz], int(s)))
    if not parts:
        return pd.DataFrame({c: pd.Series([], dtype="int64") for c in ATTRIBUTION_COLUMNS})
    idx = np.concatenate([p[0] for p in parts])
    out = pd.DataFrame(
        {
            "run": df["run"].to_numpy()[idx],
            "snapshot": df["snapshot"].to_numpy()[idx],
            "time_ns": df["time_ns"].to_numpy()[idx],
            "start": rs[idx],
            "end": re_[idx],
            "nr_accesses": df["nr_accesses"].to_numpy()[idx],
            "pid": np.concatenate([p[1] for p in parts]),
            "bytes": np.concatenate([p[2] for p in parts]).astype(np.uint64),
            "pagemap_snapshot": np.concatenate([np.full(p[0].size, p[3], np.int64) for p in parts]),
        }
    )
    return out.sort_values(["run", "snapshot", "start", "pid"], kind="stable").reset_index(
        drop=True
    )


def iter_attribution(
    regions,
    pagemap,
    *,
    time_offset_ns: int = 0,
    include_unattributed: bool = False,
    page_size: int = PAGE_SIZE,
):
    """:func:`attribute_regions` a batch of snapshots at a time (bounded memory): yields
    DataFrames of the same columns."""
    tr = (
        pagemap
        if isinstance(pagemap, Translator)
        else Translator.from_tables(pagemap, page_size=page_size)
    )
    if not tr.snapshots.size:
        return
    hs = _history(regions)
    ps = np.uint64(tr.page_size)
    for b in hs.iter_batches():
        snap = b.row_snap
        df = pd.DataFrame(
            {
                "run": hs.snaps["run"].to_numpy()[snap],
                "snapshot": hs.snaps["snapshot"].to_numpy()[snap],
                "time_ns": b.time_ns,
                "start": b.start,
                "end": b.end,
                "nr_accesses": b.nr_accesses.astype(np.int64),
            }
        )
        yield _attribute_frame(df, tr, time_offset_ns, include_unattributed, ps)


def attribute_regions(
    regions,
    pagemap,
    *,
    time_offset_ns: int = 0,
    include_unattributed: bool = False,
    page_size: int = PAGE_SIZE,
) -> pd.DataFrame:
    """Bytes of each paddr region that belong to each process.

    For every region (row of a ``regions`` table, or of any region history; a sparse
    one read with its idle bytes as nr_accesses 0 regions), the pagemap snapshot
    nearest ``time_ns + time_offset_ns`` (ties to the earlier, as :class:`Translator`)
    says which frames each captured process maps; the region's bytes in those frames
    are counted per pid. A frame mapped by several processes counts for each of them
    (and once per process, however many times it maps it), so the pids' bytes of a
    region may add up to more than the region's size when memory is shared. With
    ``include_unattributed``, a ``pid = -1`` row gives the bytes no captured process
    maps.

    Returns a DataFrame ``run, snapshot, time_ns, start, end, nr_accesses, pid, bytes,
    pagemap_snapshot`` with one row per (region, pid) with ``bytes > 0``.
    """
    empty = pd.DataFrame({c: pd.Series([], dtype="int64") for c in ATTRIBUTION_COLUMNS})
    if _empty_regions(regions):
        _check_columns(regions)
        return empty
    parts = list(
        iter_attribution(
            regions,
            pagemap,
            time_offset_ns=time_offset_ns,
            include_unattributed=include_unattributed,
            page_size=page_size,
        )
    )
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty
    return (
        pd.concat(parts, ignore_index=True)
        .sort_values(["run", "snapshot", "start", "pid"], kind="stable")
        .reset_index(drop=True)
    )


def write_attribution(
    regions,
    pagemap,
    dest: str | os.PathLike | None,
    *,
    time_offset_ns: int = 0,
    metadata: dict | None = None,
    force: bool = False,
) -> dict:
    """Attribute a region history's bytes to processes (:func:`iter_attribution`), a
    batch of snapshots at a time, writing the rows to the Parquet file ``dest``
    (atomically; None: nothing written) and summing per pid. Returns ``{"snapshots":
    n, "rows": n, "per_pid": {pid: (bytes, bytes in regions with accesses)}}`` (sums
    over all snapshots)."""
    hs = _history(regions)
    per: dict[int, list] = {}
    rows = 0

    def consume(writer):
        nonlocal rows
        for f in iter_attribution(hs, pagemap, time_offset_ns=time_offset_ns):
            if not len(f):
                continue
            rows += len(f)
            b = f["bytes"].to_numpy(np.float64)
            acc = f["nr_accesses"].to_numpy() > 0
            for pid, tot, a in zip(*_per_pid(f["pid"].to_numpy(), b, acc)):
                cur = per.setdefault(int(pid), [0.0, 0.0])
                cur[0] += tot
                cur[1] += a
            if writer is not None:
                writer.write(pa.Table.from_pandas(f, preserve_index=False))

    if dest is None:
        consume(None)
    else:
        empty = pd.DataFrame({c: pd.Series([], dtype="int64") for c in ATTRIBUTION_COLUMNS})
        with TableWriter(
            dest,
            kind=ATTRIBUTION,
            metadata=metadata,
            force=force,
            empty_schema=pa.Table.from_pandas(empty, preserve_index=False).schema,
        ) as w:
            consume(w)
    return {
        "snapshots": hs.n_snapshots,
        "rows": rows,
        "per_pid": {k: tuple(v) for k, v in sorted(per.items())},
    }


def _per_pid(pid: np.ndarray, b: np.ndarray, acc: np.ndarray):
    u, inv = np.unique(pid, return_inverse=True)
    return (
        u,
        np.bincount(inv, weights=b, minlength=len(u)),
        np.bincount(inv, weights=np.where(acc, b, 0.0), minlength=len(u)),
    )


def write_truth_csv(truth: pd.DataFrame, path: str | os.PathLike, *, force: bool = False) -> str:
    """Write ground-truth ranges as CSV (``start,end,label``, hex addresses), atomically.

    This is the file ``tracedamon compare --truth`` reads.
    """
    t = _areas_frame(truth)
    dest = os.fspath(path)
    lines = [
        f"{s:#x},{e:#x},{lab}\n"
        for s, e, lab in zip(t["start"].tolist(), t["end"].tolist(), t["label"].tolist())
    ]
    write_text_atomic(dest, "start,end,label\n" + "".join(lines), kind=TRUTH_CSV, force=force)
    return dest


__all__ = [
    "ground_truth",
    "score_areas",
    "attribute_regions",
    "iter_attribution",
    "write_attribution",
    "areas_from_workload_log",
    "write_truth_csv",
]
