"""A sweep's rows: the side file of finished rows (JSON lines, appended as they
arrive), the rows a resumed sweep reuses, and the table they make.

Columns, in order: provenance (:data:`PROVENANCE`), one column per grid key, ``error``,
the cost figures (:data:`COST`), then the scores in their first appearance.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from ...store.parquet import read_table

PROVENANCE = [
    "source",
    "source_name",
    "source_sha256",
    "config_id",
    "seed",
    "seed_dependent",
    "run_key",
    "tracedamon_version",
    "worker",
    "worker_peak_rss_mb",
]
COST = [
    "replay_s",
    "replay_cpu_s",
    "score_s",
    "snapshots",
    "samples_used",
    "history_rows",
    "accessed_only",
    "regions_mean",
    "regions_max",
    "checks_per_s",
]
TEXT_COLUMNS = ("error", "history")


def read_rows(path: Path) -> list[dict]:
    """Rows of a side file (JSON lines); a line cut short by an interruption is
    ignored."""
    rows = []
    try:
        with open(path) as f:
            for line in f:
                try:
                    r = json.loads(line)
                except ValueError:
                    continue
                if isinstance(r, dict) and "run_key" in r:
                    rows.append(r)
    except FileNotFoundError:
        pass
    return rows


def output_rows(path: Path) -> list[dict]:
    """Rows of an earlier sweep table (none when it is not one)."""
    try:
        t = read_table(path)
    except Exception:  # not a Parquet file, or unreadable: nothing to reuse
        return []
    if "run_key" not in t.column_names:
        return []
    return t.to_pylist()


def reused_rows(resume: bool, tasks: list[dict], out, side) -> dict[str, dict]:
    """The finished rows a resumed sweep reuses (by run_key); without resume, the side
    file of an earlier run is removed."""
    done: dict[str, dict] = {}
    if resume:
        wanted = {t["run_key"] for t in tasks}
        for r in (output_rows(out) if out is not None and out.exists() else []) + (
            read_rows(side) if side is not None else []
        ):
            if r["run_key"] in wanted:
                done[r["run_key"]] = r
    elif side is not None and side.exists():
        side.unlink()
    return done


def build_table(rows: list[dict], grid_columns: list[str]) -> pa.Table:
    """The sweep's Arrow table: fixed column order (provenance, grid keys, error, cost,
    then the scores in their first appearance), types inferred per column."""
    cols = [c for c in PROVENANCE] + list(grid_columns) + ["error"] + COST
    seen = set(cols)
    for r in rows:
        for k in r:
            if k not in seen:
                seen.add(k)
                cols.append(k)
    arrays = {}
    for c in cols:
        vals = [r.get(c) for r in rows]
        a = pa.array(vals)
        if pa.types.is_null(a.type):
            a = pa.array(
                vals, pa.string() if c in TEXT_COLUMNS or c in grid_columns else pa.float64()
            )
        arrays[c] = a
    return pa.table(arrays)
