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
the history reader (the previous snapshot's end; the run's mean spacing for the
first). The target id is the pid for vaddr histories, else the DAMON target
index. Ages unknown to the source (old traces) are written as 0, since damo needs
a value. The intervals come from the source's metadata; when it has none they
must be given (``sample_us``/``aggr_us``) or are estimated (aggregation = median
snapshot spacing, sampling = aggregation / largest nr_accesses) and the estimate
is reported in the returned summary.

A sparse history (accessed regions only, see :mod:`tracedamon.export.history`)
is exported with every monitored byte, as damo expects: the idle bytes between
the recorded regions become regions with nr_accesses 0 whose age is derived with
DAMON's own age rule (:mod:`tracedamon.export.idle`: exact at fixed granularity),
one region per run of idle bytes of the same age. damo's byte figures (access
percentiles, WSS, heatmaps) then equal those of the dense replay; its region
counts are lower, since idle runs are not cut into the replay's regions.

The record is written as it is read, one snapshot at a time, through a zlib
stream into a temporary file renamed into place at the end: memory stays bounded
however long the history.
"""

from __future__ import annotations

import json
import os
import zlib
from typing import Iterator

import numpy as np

from ..errors import ConfigError
from ..store.atomic import DAMO_RECORD, MARK, atomic_path, check_output, marker
from .history import find_key
from .idle import iter_rows, open_source

_REGION = (
    '{"start":"%d","end":"%d","nr_accesses":{"samples":%d,"percent":null},'
    '"age":{"usec":null,"aggr_intervals":%d},"probe_hits":[],"sz_filter_passed":"0"}'
)


_CHUNK = 1 << 15
_TEMPLATE = ",".join([_REGION] * _CHUNK)


def _regions_json(st, en, nr, age) -> str:
    """The regions of a snapshot as JSON objects joined by commas: one %-format call
    per 32 k regions (a prefix of a cached template), about twice as fast as a call
    per region."""
    out = []
    n = len(st)
    for i in range(0, n, _CHUNK):
        k = min(n, i + _CHUNK) - i
        flat = [0] * (4 * k)
        flat[0::4] = st[i : i + k].tolist()
        flat[1::4] = en[i : i + k].tolist()
        flat[2::4] = nr[i : i + k].tolist()
        flat[3::4] = age[i : i + k].tolist()
        out.append(_TEMPLATE[: len(_REGION) * k + k - 1] % tuple(flat))
    return ",".join(out)


def _intervals(hs, sample_us, aggr_us, ops_update_us) -> tuple[dict, bool]:
    for name, flag, v in (
        ("sample_us", "--sample-us", sample_us),
        ("aggr_us", "--aggr-us", aggr_us),
        ("ops_update_us", "--update-us", ops_update_us),
    ):
        if v is not None and v <= 0:
            why = f" must be positive, not {v!r}"
            raise ConfigError(name + why, cli_message=flag + why)
    estimated = False
    if hs.sample_us and hs.aggr_us:
        s_us, a_us = hs.sample_us, hs.aggr_us
    else:
        estimated = True
        a_us = aggr_us or max(1.0, round(hs.aggr_ns_est / 1000.0))
        mx = hs.nr_accesses_max
        if sample_us:
            s_us = sample_us
        else:
            s_us = max(1.0, round(a_us / mx)) if mx > 0 else a_us
    u_us = ops_update_us or find_key(hs.meta, ("ops_update_us", "update_us")) or 60_000_000
    return {
        "sample_us": str(int(round(s_us))),
        "aggr_us": str(int(round(a_us))),
        "ops_update_us": str(int(round(u_us))),
        "intervals_goal": {
            "access_bp": "0",
            "aggrs": "0",
            "min_sample_us": "0",
            "max_sample_us": "0",
        },
    }, estimated


def _record_text(hs, intervals: dict, counts: dict, *, mark: bool = False) -> Iterator[str]:
    """The JSON text of the record list, piece by piece (one snapshot at a time); with
    ``mark``, each record starts with tracedamon's marker (a file tracedamon wrote)."""
    sa = hs.snaps
    t0s, t1s = sa["t0"].to_numpy(), sa["t1"].to_numpy()
    yield "["
    for ki, key in enumerate(hs.keys):
        head = json.dumps(
            {
                **({MARK: marker(DAMO_RECORD)} if mark else {}),
                "kdamond_idx": 0,
                "context_idx": 0,
                "intervals": intervals,
                "scheme_idx": None,
                "target_id": int(key),
                "scheme_filters": [],
            }
        )
        yield ("," if ki else "") + head[:-1] + ', "snapshots": ['
        first = True
        for r in iter_rows(hs, key=key):
            if len(r) == 0:
                continue
            cut = np.flatnonzero(np.diff(r.snap)) + 1
            bounds = np.concatenate([[0], cut, [len(r)]])
            age = np.nan_to_num(r.age, nan=0.0).astype(np.int64)
            nr = r.nr_accesses.astype(np.int64)
            for i0, i1 in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
                s = int(r.snap[i0])
                st, en = r.start[i0:i1], r.end[i0:i1]
                regions = _regions_json(st, en, nr[i0:i1], age[i0:i1])
                total = int((en - st).sum())
                yield ("" if first else ",") + (
                    f'{{"start_time":"{int(t0s[s])}","end_time":"{int(t1s[s])}",'
                    f'"regions":[{regions}],"total_bytes":"{total}",'
                    '"damos_stats":null,"sample_interval_us":null}'
                )
                first = False
                counts["snapshots"] += 1
                counts["regions"] += i1 - i0
        yield '], "data_source": "unknown"}'
        counts["records"] += 1
    yield "]"


def _summary(intervals: dict, estimated: bool, counts: dict) -> dict:
    return {
        "intervals": {
            "sample_us": int(intervals["sample_us"]),
            "aggr_us": int(intervals["aggr_us"]),
            "ops_update_us": int(intervals["ops_update_us"]),
        },
        "estimated": estimated,
        "records": counts["records"],
        "snapshots": counts["snapshots"],
        "regions": counts["regions"],
    }


class _Writer:
    """Compresses and writes blocks on a second thread (zlib and file writes release the
    GIL) while the caller formats the next one; at most two blocks wait."""

    def __init__(self, f, z):
        import queue
        import threading

        self.f, self.z = f, z
        self.q: queue.Queue = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            while True:
                data = self.q.get()
                if data is None:
                    if self.z is not None:
                        self.f.write(self.z.flush())
                    return
                self.f.write(self.z.compress(data) if self.z is not None else data)
        except BaseException as e:  # reported by put() / __exit__
            self.error = e
            while self.q.get() is not None:
                pass

    def put(self, data: bytes) -> None:
        if self.error is not None:
            raise self.error
        self.q.put(data)

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *exc):
        self.q.put(None)
        self.t.join()
        if self.error is not None and exc[0] is None:
            raise self.error
        return False


def damo_records(
    src,
    *,
    sample_us: float | None = None,
    aggr_us: float | None = None,
    ops_update_us: float | None = None,
) -> tuple[list[dict], dict]:
    """The damo record list (JSON-ready, in memory: for small histories) of a region
    history and a summary ``{"intervals": ..., "estimated": bool, "records": n,
    "snapshots": n, "regions": n}``."""
    hs = open_source(src, sample_us=sample_us, aggr_us=aggr_us)
    intervals, estimated = _intervals(hs, sample_us, aggr_us, ops_update_us)
    counts = {"records": 0, "snapshots": 0, "regions": 0}
    records = json.loads("".join(_record_text(hs, intervals, counts)))
    return records, _summary(intervals, estimated, counts)


def export_damo(
    src,
    dest: str | os.PathLike,
    *,
    fmt: str = "json_compressed",
    sample_us: float | None = None,
    aggr_us: float | None = None,
    ops_update_us: float | None = None,
    level: int = 1,
    force: bool = False,
) -> dict:
    """Write ``src`` (a region history) to ``dest`` as a damo record, streaming and
    atomically. ``fmt``: ``json_compressed`` (damo's default; zlib ``level``, 1 =
    fastest) or ``json``. Returns the summary of :func:`damo_records` plus the
    output path and a note on the ages of idle bytes of a sparse source.

    Each record starts with a ``"tracedamon"`` member (damo ignores it): an existing
    ``dest`` is replaced only with ``force=True`` and only if it has one, so a record
    written by damo itself is never replaced."""
    if fmt not in ("json_compressed", "json"):
        raise ConfigError(f"damo record format must be json_compressed or json, not {fmt!r}")
    inputs = [src] if isinstance(src, (str, os.PathLike)) else []
    check_output(dest, DAMO_RECORD, force=force, inputs=inputs)
    hs = open_source(src, sample_us=sample_us, aggr_us=aggr_us)
    intervals, estimated = _intervals(hs, sample_us, aggr_us, ops_update_us)
    counts = {"records": 0, "snapshots": 0, "regions": 0}
    with (
        atomic_path(dest, kind=DAMO_RECORD, force=force, inputs=inputs) as tmp,
        open(tmp, "wb") as f,
    ):
        with _Writer(f, zlib.compressobj(level) if fmt == "json_compressed" else None) as w:
            buf: list = []
            size = 0
            for piece in _record_text(hs, intervals, counts, mark=True):
                buf.append(piece)
                size += len(piece)
                if size >= 1 << 22:
                    w.put("".join(buf).encode())
                    buf, size = [], 0
            w.put("".join(buf).encode())
    summary = _summary(intervals, estimated, counts)
    summary["path"] = str(dest)
    summary["format"] = fmt
    if hs.sparse:
        summary["idle_ages"] = (
            "idle bytes (not recorded: sparse history) written as regions "
            "with nr_accesses 0 and ages derived with DAMON's age rule "
            "(exact at fixed granularity)"
        )
    return summary
