"""Sparse region histories made from dense ones, as `tracedamon replay --accessed-only`
writes them (the contract of tracedamon.export.history): the rows whose nr_accesses is 0
left out, ``sparse`` and ``coverage`` in the metadata's ``replay`` object."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tracedamon.schema import METADATA_KEY, REGIONS


def _union(rows: pd.DataFrame) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for s, e in sorted(zip(rows["start"].astype(int), rows["end"].astype(int))):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def coverage_of(dense: pd.DataFrame) -> list[list[int]]:
    """The contract's coverage list of a dense history: per target, the union of its
    rows, listed from each snapshot where it changes (``[k, target, 0, 0]`` when the
    target has no region from snapshot k on)."""
    entries = []
    snaps = sorted(dense["snapshot"].unique().tolist())
    last: dict[int, list] = {}
    for k in snaps:
        at = dense[dense["snapshot"] == k]
        for t in sorted(set(dense["target"].unique().tolist())):
            u = _union(at[at["target"] == t])
            if t not in last and not u:
                continue
            if last.get(t) == u:
                continue
            last[t] = u
            entries += [[int(k), int(t), s, e] for s, e in u] or [[int(k), int(t), 0, 0]]
    return sorted(entries)


def sparse_of(dense: pd.DataFrame, meta: dict | None = None, *, coverage=True) -> pd.DataFrame:
    """The sparse form of a dense history (DataFrame with ``attrs['tracedamon']``)."""
    rmeta = dict(meta or {})
    rmeta.update({"accessed_only": True, "sparse": True})
    if coverage:
        rmeta["coverage"] = coverage_of(dense)
    rmeta.setdefault("snapshots", int(dense["snapshot"].max()) + 1)
    sp = dense[dense["nr_accesses"] > 0].reset_index(drop=True)
    sp.attrs["tracedamon"] = {"replay": rmeta}
    return sp


def write_regions(df: pd.DataFrame, path, *, row_group_size: int | None = None) -> None:
    """``df`` as a REGIONS Parquet file with its ``attrs['tracedamon']`` metadata."""
    cols = {}
    for f in REGIONS:
        if f.name in df.columns:
            cols[f.name] = pa.array(df[f.name], type=f.type, from_pandas=True)
        else:
            cols[f.name] = pa.nulls(len(df), f.type)
    t = pa.table(cols, schema=REGIONS)
    meta = dict(df.attrs.get("tracedamon", {}))
    t = t.replace_schema_metadata({METADATA_KEY: json.dumps(meta).encode()})
    pq.write_table(t, path, row_group_size=row_group_size)


def canonical(df: pd.DataFrame) -> pd.DataFrame:
    """key, snapshot, start, end, nr_accesses with adjacent idle rows of a snapshot
    joined: two histories that say the same of every byte have equal canonical forms."""
    rows = []
    for (k, s), g in df.sort_values(["key", "snapshot", "start"]).groupby(
        ["key", "snapshot"], sort=True
    ):
        cur = None
        for st, en, nr in zip(
            g["start"].astype(int), g["end"].astype(int), g["nr_accesses"].astype(float)
        ):
            if cur and nr == 0 and cur[4] == 0 and cur[3] == st:
                cur[3] = en
                continue
            if cur:
                rows.append(tuple(cur))
            cur = [k, s, st, st, nr]
            cur[3] = en
        rows.append(tuple(cur))
    return pd.DataFrame(rows, columns=["key", "snapshot", "start", "end", "nr_accesses"])


def dense_history(
    rng: np.random.Generator,
    *,
    n_snap=8,
    targets=(0,),
    pids=None,
    t0=1_000_000_000,
    aggr=100_000_000,
    idle_snapshots=(),
    change_at=None,
):
    """A dense history: each target covers a few ranges (cut into regions), some
    accessed; the snapshots in ``idle_snapshots`` have no access at all; at snapshot
    ``change_at`` the coverage of every target changes (as a vaddr ops update)."""
    rows = []

    def layout(seed_off):
        r = np.random.default_rng(int(rng.integers(0, 2**32)) + seed_off)
        ranges, base = [], 0x100000
        for _ in range(int(r.integers(1, 4))):
            base += int(r.integers(0, 3)) * 0x10000
            n = int(r.integers(1, 6))
            ranges.append((base, base + n * 0x1000))
            base += n * 0x1000
        return ranges

    for t in targets:
        lay = [layout(t), layout(t + 100)]
        for s in range(n_snap):
            ranges = lay[1] if change_at is not None and s >= change_at else lay[0]
            for lo, hi in ranges:
                npg = (hi - lo) // 0x1000
                cuts = sorted(set(rng.integers(1, npg, size=2).tolist())) if npg > 1 else []
                b = [lo] + [lo + c * 0x1000 for c in cuts] + [hi]
                for a, e in zip(b[:-1], b[1:]):
                    nr = (
                        0 if s in idle_snapshots or rng.random() < 0.5 else int(rng.integers(1, 11))
                    )
                    rows.append(
                        dict(
                            run=0,
                            snapshot=s,
                            time_ns=t0 + (s + 1) * aggr,
                            target=t,
                            pid=None if pids is None else pids[t],
                            start=a,
                            end=e,
                            nr_accesses=nr,
                            age=int(rng.integers(0, 20)),
                        )
                    )
    df = pd.DataFrame(rows)
    meta = {
        "t0_ns": t0,
        "config": {"sample_us": aggr // 10_000, "aggr_us": aggr // 1000},
        "tune_events": [],
        "snapshots": n_snap,
    }
    df.attrs["tracedamon"] = {
        "replay": dict(meta, sparse=False, accessed_only=False, coverage=coverage_of(df))
    }
    return df, meta
