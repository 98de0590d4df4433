"""The outputs of ``tracedamon damos``: :class:`DamosResult` and its tables
(``damos_apply`` in the schema of ingested ``damos_before_apply`` events, ``damos_stats``
per scheme per step, ``damos_outcome`` per time bin), written as a trace directory."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..schema import DAMOS_APPLY, DAMOS_OUTCOME, DAMOS_STATS, empty
from ..store.writer import TraceDirWriter
from .damos_summary import summary


@dataclass
class DamosResult:
    """The predicted applications, stats, outcome and how they were made."""

    applications: pa.Table
    stats: pa.Table
    outcome: pa.Table
    metadata: dict
    check: dict | None = None

    def to_dir(self, dest: str | os.PathLike, *, force: bool = False) -> Path:
        with TraceDirWriter(
            dest,
            provenance={"inputs": self.metadata.get("inputs", [])},
            force=force,
            tables=("damos_apply", "damos_stats", "damos_outcome"),
        ) as w:
            w.write("damos_apply", self.applications)
            w.write("damos_stats", self.stats)
            w.write("damos_outcome", self.outcome)
            w.meta["damos"] = self.metadata
        return Path(dest)

    def summary(self) -> str:
        """What ``tracedamon damos`` prints (:func:`.damos_summary.summary`)."""
        return summary(self)


def apps_table(c: dict) -> pa.Table:
    n = len(c["start"])
    pid = np.array([-1 if p is None else p for p in c["kdamond_pid"]], np.int64)
    age = np.array(c["age"], np.int64)
    return pa.table(
        {
            "time_ns": pa.array(np.array(c["time_ns"], np.int64), pa.int64()),
            "kdamond_pid": pa.array(pid.astype(np.int32), pa.int32(), mask=pid < 0),
            "cpu": pa.nulls(n, pa.int32()),
            "context": pa.array(np.zeros(n, np.int32), pa.int32()),
            "scheme": pa.array(np.array(c["scheme"], np.int32), pa.int32()),
            "target": pa.array(np.array(c["target"], np.int64), pa.int64()),
            "nr_regions": pa.array(np.array(c["nr_regions"], np.uint32), pa.uint32()),
            "start": pa.array(np.array(c["start"], np.uint64), pa.uint64()),
            "end": pa.array(np.array(c["end"], np.uint64), pa.uint64()),
            "nr_accesses": pa.array(np.array(c["nr_accesses"], np.uint32), pa.uint32()),
            "age": pa.array(age.astype(np.uint32), pa.uint32()),
        },
        schema=DAMOS_APPLY,
    )


def stats_table(rows: list[tuple]) -> pa.Table:
    names = [
        "run",
        "snapshot",
        "time_ns",
        "scheme",
        "applied",
        "nr_tried",
        "sz_tried",
        "nr_applied",
        "sz_applied",
        "sz_ops_filter_passed",
        "qt_exceeds",
        "min_score",
        "esz",
        "charged_sz",
    ]
    cols = list(zip(*rows)) if rows else [[] for _ in names]
    d = dict(zip(names, cols))
    n = len(rows)
    esz = np.array([min(int(x), 2**64 - 1) for x in d["esz"]], np.uint64)
    return pa.table(
        {
            "run": pa.array(np.array(d["run"], np.int32), pa.int32()),
            "snapshot": pa.array(np.array(d["snapshot"], np.int64), pa.int64()),
            "time_ns": pa.array(np.array(d["time_ns"], np.int64), pa.int64()),
            "context": pa.array(np.zeros(n, np.int32), pa.int32()),
            "scheme": pa.array(np.array(d["scheme"], np.int32), pa.int32()),
            "applied": pa.array(np.array(d["applied"], bool), pa.bool_()),
            **{
                k: pa.array(np.array(d[k], np.uint64), pa.uint64())
                for k in (
                    "nr_tried",
                    "sz_tried",
                    "nr_applied",
                    "sz_applied",
                    "sz_ops_filter_passed",
                    "qt_exceeds",
                )
            },
            "min_score": pa.array(np.array(d["min_score"], np.uint32), pa.uint32()),
            "esz": pa.array(esz, pa.uint64()),
            "charged_sz": pa.array(np.array(d["charged_sz"], np.uint64), pa.uint64()),
        },
        schema=DAMOS_STATS,
    )


def outcome_table(rows: list[dict]) -> pa.Table:
    if not rows:
        return empty(DAMOS_OUTCOME)
    names = DAMOS_OUTCOME.names
    data = {n: [r.get(n) for r in rows] for n in names}
    return pa.table(
        {
            n: pa.array(data[n], type=DAMOS_OUTCOME.field(n).type if n != "model" else pa.string())
            for n in names
        }
    ).cast(DAMOS_OUTCOME)
