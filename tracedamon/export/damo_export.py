"""Export a region history as a damo record (``json_compressed``) that damo reads.

The file is ``zlib.compress`` of UTF-8 JSON: a list with one DamonRecord object
per monitoring target, the layout damo 3.4.3 writes and reads
(``_damo_records.parse_json``; docs/damon-traces.md §2.4)::

    [{"kdamond_idx": 0, "context_idx": 0,
      "intervals": {"sample_us": "5000", "aggr_us": "100000", "ops_update_us": "60000000",
                    "intervals_goal": {...}},
      "scheme_idx": null, "target_id": 0, "scheme_filters": [],
      "snapshots": [{"start_time": "<ns>", "end_time": "<ns>",
                     "regions": [{"start": "<bytes>", "end": "<bytes>",
                                  "nr_accesses": {"samples": n, "percent": null},
                                  "age": {"usec": null, "aggr_intervals": a},
                                  "probe_hits": [], "sz_filter_passed": "0"}],
                     "total_bytes": "<bytes>", "damos_stats": null,
                     "sample_interval_us": null}],
      "data_source": "unknown"}]

Numbers are written raw (damo accepts raw integers where its own writer puts
thousands separators). A snapshot spans ``[start_time, end_time)`` as computed by
``grid.load_history`` (the previous snapshot's end; one aggregation interval for
the first). The target id is the pid for vaddr histories, else the DAMON target
index. Ages unknown to the source (old traces) are written as 0, since damo needs
a value. The intervals come from the source's metadata; when it has none they
must be given (``sample_us``/``aggr_us``) or are estimated (aggregation = median
snapshot spacing, sampling = aggregation / largest nr_accesses) and the estimate
is reported in the returned summary.
"""

from __future__ import annotations

import json
import os
import zlib


import numpy as np

from ..atomic import DAMO_RECORD, check_output, marked, write_bytes_atomic
from ..errors import ConfigError
from .grid import _find_key, load_history


def damo_records(
    src,
    *,
    sample_us: float | None = None,
    aggr_us: float | None = None,
    ops_update_us: float | None = None,
) -> tuple[list[dict], dict]:
    """The damo record list (JSON-ready) of a region history and a summary
    ``{"intervals": ..., "estimated": bool, "records": n, "snapshots": n, "regions": n}``."""
    for name, v in (
        ("sample_us", sample_us),
        ("aggr_us", aggr_us),
        ("ops_update_us", ops_update_us),
    ):
        if v is not None and v <= 0:
            raise ConfigError(f"{name} must be positive")
    h = load_history(src, sample_us=sample_us, aggr_us=aggr_us)
    estimated = False
    if h.sample_us and h.aggr_us:
        s_us, a_us = h.sample_us, h.aggr_us
    else:
        estimated = True
        a_us = aggr_us or max(1.0, round(h.aggr_ns_est / 1000.0))
        mx = float(h.df["nr_accesses"].max())
        if sample_us:
            s_us = sample_us
        else:
            s_us = max(1.0, round(a_us / mx)) if mx > 0 else a_us
    u_us = ops_update_us or _find_key(h.meta, ("ops_update_us", "update_us")) or 60_000_000
    intervals = {
        "sample_us": str(int(round(s_us))),
        "aggr_us": str(int(round(a_us))),
        "ops_update_us": str(int(round(u_us))),
        "intervals_goal": {
            "access_bp": "0",
            "aggrs": "0",
            "min_sample_us": "0",
            "max_sample_us": "0",
        },
    }
    df = h.df
    st = df["start"].to_numpy(np.uint64)
    en = df["end"].to_numpy(np.uint64)
    nr = df["nr_accesses"].to_numpy()
    age = df["age"].to_numpy()
    age = np.where(np.isfinite(age), age, 0).astype(np.int64)
    snap = df["snap"].to_numpy()
    bounds = np.flatnonzero(np.diff(snap)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(df)]])
    snaps = h.snaps
    per_key: dict = {}
    for i0, i1 in zip(starts, ends):
        s = int(snap[i0])
        key = snaps["key"].iat[s]
        regions = [
            {
                "start": str(int(st[i])),
                "end": str(int(en[i])),
                "nr_accesses": {"samples": int(nr[i]), "percent": None},
                "age": {"usec": None, "aggr_intervals": int(age[i])},
                "probe_hits": [],
                "sz_filter_passed": "0",
            }
            for i in range(i0, i1)
        ]
        total = int((en[i0:i1] - st[i0:i1]).sum())
        per_key.setdefault(key, []).append(
            (
                int(snaps["t1"].iat[s]),
                {
                    "start_time": str(int(snaps["t0"].iat[s])),
                    "end_time": str(int(snaps["t1"].iat[s])),
                    "regions": regions,
                    "total_bytes": str(total),
                    "damos_stats": None,
                    "sample_interval_us": None,
                },
            )
        )
    records = []
    for key in sorted(per_key):
        shots = [s for _, s in sorted(per_key[key], key=lambda x: x[0])]
        records.append(
            {
                "kdamond_idx": 0,
                "context_idx": 0,
                "intervals": intervals,
                "scheme_idx": None,
                "target_id": int(key),
                "scheme_filters": [],
                "snapshots": shots,
                "data_source": "unknown",
            }
        )
    summary = {
        "intervals": {
            "sample_us": int(intervals["sample_us"]),
            "aggr_us": int(intervals["aggr_us"]),
            "ops_update_us": int(intervals["ops_update_us"]),
        },
        "estimated": estimated,
        "records": len(records),
        "snapshots": int(len(snaps)),
        "regions": int(len(df)),
    }
    return records, summary


def export_damo(
    src,
    dest: str | os.PathLike,
    *,
    fmt: str = "json_compressed",
    sample_us: float | None = None,
    aggr_us: float | None = None,
    ops_update_us: float | None = None,
    force: bool = False,
) -> dict:
    """Write ``src`` (a region history) to ``dest`` as a damo record, atomically.
    ``fmt``: ``json_compressed`` (damo's default) or ``json``. Returns the summary of
    :func:`damo_records` plus the output path.

    Each record starts with a ``"tracedamon"`` member (damo ignores it): an existing
    ``dest`` is replaced only with ``force=True`` and only if it has one, so a record
    written by damo itself is never replaced."""
    if fmt not in ("json_compressed", "json"):
        raise ConfigError(f"damo record format must be json_compressed or json, not {fmt!r}")
    inputs = [src] if isinstance(src, (str, os.PathLike)) else []
    check_output(dest, DAMO_RECORD, force=force, inputs=inputs)
    records, summary = damo_records(
        src, sample_us=sample_us, aggr_us=aggr_us, ops_update_us=ops_update_us
    )
    text = json.dumps([marked(DAMO_RECORD, r) for r in records], indent=4)
    data = zlib.compress(text.encode()) if fmt == "json_compressed" else text.encode()
    dest = write_bytes_atomic(dest, data, kind=DAMO_RECORD, force=force, inputs=inputs)
    summary["path"] = str(dest)
    summary["format"] = fmt
    return summary
