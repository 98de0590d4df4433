"""One sweep task: replay one configuration of one source, score it, return its row.

This is what runs on a Dask worker (or in-process for a serial sweep): the same
function either way, so serial and distributed sweeps give the same rows.

Each worker process keeps the sources it has read in :data:`CACHE` (at most
``CACHE_SOURCES`` of them, least recently used dropped first): the columns
``tracedamon.replay`` reads from the samples (``SAMPLE_COLUMNS``), the mmaps,
maps and pagemap tables, and the loaded reference history and ground truth.  The
first task of a source on a worker reads them; every later configuration of that
source on that worker replays from memory, from one replay source
(:func:`tracedamon.pipeline.samples.table_source`) that keeps what the replays
derive from the samples alone -- their scan, the addresses the targets see, the
``--start auto`` choice -- so that each configuration runs the monitor and little
else.  A worker's memory is therefore bounded by ``CACHE_SOURCES`` sources' tables
and what their sources keep (at most ``MEMO_ARRAYS`` selections of 24 bytes per
sample) plus one replay, however many configurations it runs.

A row holds provenance (source, its samples file's sha256, configuration id,
seed, worker), the cost of the monitoring itself, and the scores: every numeric
metric of :func:`tracedamon.compare` against the reference (``ref_*`` columns)
or of the ground-truth scoring (``truth_*``), nested keys flattened with ``_``.
A configuration the replay refuses (what the kernel would reject, e.g.
min_nr_regions > max_nr_regions) gives a row with the message in ``error``.
"""

from __future__ import annotations

import math
import os
import re
import socket
import threading
import time
from collections import OrderedDict
from pathlib import Path, PurePosixPath

import numpy as np

from ... import __version__
from ...engine.config import MonitorConfig
from ...errors import TracedamonError
from ...export.compare import compare, load_truth, score_truth
from ...export.grid import load_history
from ...store.trace import open_trace
from ...store.url import file_size, open_source, source_name
from ..damos import damos
from ..replay import SAMPLE_COLUMNS, replay
from ..samples import table_source

try:
    import resource
except ImportError:  # not on every platform: VmHWM (Linux) is read first anyway
    resource = None

CACHE_SOURCES = 2
#: the samples columns the DAMOS outcome models read
DAMOS_SAMPLE_COLUMNS = ("time_ns", "pid", "addr", "phys_addr", "period", "weight")
CACHE: "OrderedDict[tuple, Loaded]" = OrderedDict()
_CACHE_LOCK = threading.Lock()

# columns that measure a run rather than describe its result: they differ between
# two runs of the same sweep (serial, local cluster, external cluster)
RUN_COLUMNS = ("replay_s", "replay_cpu_s", "score_s", "damos_s", "worker", "worker_peak_rss_mb")


class Loaded:
    """What a worker keeps of one source (see the module docstring)."""

    def __init__(self, spec: dict):
        path = spec["source"]
        tr = open_source(path)
        self.path = path
        # with schemes, the outcome models also weigh the samples (period, weight)
        extra = (
            [c for c in DAMOS_SAMPLE_COLUMNS if c not in SAMPLE_COLUMNS]
            if spec.get("scheme")
            else []
        )
        self.samples = tr.table("samples", columns=list(SAMPLE_COLUMNS) + extra)
        # the replays' source: one for all configurations, so that they share what they
        # derive from the samples alone (their scan, the addresses the targets see)
        self.source = table_source(self.samples)
        self.meta = tr.meta  # paddr's default range (System RAM) comes from it
        self.mmaps = tr.table("mmaps")
        self.maps = tr.table("maps") if tr.has("maps") else None
        self.tasks = tr.table("tasks") if tr.has("tasks") else None  # processes' exits
        pm = spec.get("pagemap")
        if pm is not None:
            ptr = open_trace(pm)
            self.pagemap = ptr.table("pagemap") if ptr.has("pagemap") else None
        else:
            self.pagemap = tr.table("pagemap") if tr.has("pagemap") else None
        self.reference = None
        if spec.get("reference"):
            self.reference = load_history(spec["reference"])
        self.truth = None
        if spec.get("truth"):
            self.truth = load_truth(spec["truth"])
        # what a replay of the trace directory records as its input: the kept histories
        # name the trace they came from (the in-memory replay knows only a table)
        self.provenance = {
            "trace": str(tr.path),
            "inputs": tr.meta.get("inputs"),
            "samples": {
                "name": PurePosixPath(tr.file("samples")).name,
                "size": file_size(tr, "samples"),
                "sha256": spec["source_sha256"],
            },
        }
        self.nbytes = sum(
            t.nbytes for t in (self.samples, self.mmaps, self.maps, self.pagemap) if t is not None
        )


def _key(spec: dict) -> tuple:
    """What a worker's cached source depends on: the files by path and content."""
    return (
        spec["source"],
        spec["source_sha256"],
        spec.get("pagemap"),
        spec.get("reference"),
        spec.get("reference_sha256"),
        spec.get("truth"),
        spec.get("truth_sha256"),
        bool(spec.get("scheme")),
    )


def load(spec: dict) -> Loaded:
    """The source of ``spec`` from this process's cache, read on a miss."""
    k = _key(spec)
    with _CACHE_LOCK:  # the threads of one Dask worker read a source once between them
        got = CACHE.get(k)
        if got is not None:
            CACHE.move_to_end(k)
            return got
        while len(CACHE) >= CACHE_SOURCES:
            CACHE.popitem(last=False)
        got = Loaded(spec)
        CACHE[k] = got
        return got


def clear_cache() -> None:
    """Drop the sources this process keeps (at the end of a sweep on a shared cluster)."""
    CACHE.clear()


def clean(v):
    """A JSON- and Parquet-friendly scalar: NaN/inf → None, numpy → Python."""
    if v is None or isinstance(v, (bool, str)):
        return v
    kind = getattr(getattr(v, "dtype", None), "kind", None)
    if kind == "b":
        return bool(v)
    if isinstance(v, int) or kind in ("i", "u"):
        return int(v)
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    return f if math.isfinite(f) else None


def _name(k) -> str:
    return re.sub(r"[^0-9A-Za-z]+", "_", str(k)).strip("_")


def flatten(d: dict, prefix: str) -> dict:
    """Every numeric leaf of a nested metrics dict, as ``prefix_key_subkey`` → value.
    Strings and lists (names, series, per-time values) are left out: one column per
    scalar metric."""
    out: dict = {}
    for k, v in d.items():
        name = f"{prefix}_{_name(k)}"
        if isinstance(v, dict):
            out.update(flatten(v, name))
        elif v is None or isinstance(v, bool):
            out[name] = v
        elif isinstance(v, (int, float)) or (hasattr(v, "dtype") and v.shape == ()):
            out[name] = clean(v)
    return out


def peak_rss_mb() -> float | None:
    """The peak resident memory of this process so far (MiB): what a worker needed.

    Linux's VmHWM, the high-water mark of this program's own memory: ``ru_maxrss``
    would not do, a process started by fork + exec (Dask's spawned workers) keeps its
    parent's peak there."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    if resource is None:
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cost_figures(hist, sample_us: int) -> dict:
    """What the monitoring itself costs: regions per snapshot (mean, max) and access
    checks per second (regions / sampling interval: the kernel checks each region once
    per sample interval), from the history's rows.  A history that keeps only regions
    with accesses does not know its region counts: those are null then."""
    m = hist.metadata
    out = {
        "snapshots": int(m.get("snapshots", 0)),
        "samples_used": int(m.get("samples_used", 0)),
        "history_rows": int(hist.table.num_rows),
        "accessed_only": bool(m.get("accessed_only")),
        "regions_mean": None,
        "regions_max": None,
        "checks_per_s": None,
    }
    if hist.table.num_rows and not out["accessed_only"]:
        snap = hist.table.column("snapshot").to_numpy()
        counts = np.bincount(snap - snap.min())
        counts = counts[counts > 0]
        out["regions_mean"] = float(counts.mean())
        out["regions_max"] = int(counts.max())
        out["checks_per_s"] = float(counts.mean()) * 1e6 / sample_us
    return out


def scheme_figures(hist, schemes, got: "Loaded") -> dict:
    """DAMOS figures of one replayed history (``damos_*`` columns): the schemes run over
    the history in memory (:func:`tracedamon.damos`, no files), with the source's
    samples and pagemap snapshots for the outcome models.

    Per run: ``damos_applications`` (walks that handed regions to an action),
    ``damos_regions``, ``damos_bytes_tried`` (exact), ``damos_bytes_applied``
    (modelled), ``damos_qt_exceeds`` (summed over the schemes), then every number of
    the outcome models (``damos_pageout_*``: bytes paged out, still out at the end,
    re-accesses, their bytes, the saving in GiB*s; ``damos_tier_*``: fast-tier hit
    ratio with the schemes and with first-touch placement alone, bytes promoted and
    demoted)."""
    res = damos(hist, list(schemes), samples=got.samples, pagemap=got.pagemap)
    a = res.applications
    st = res.stats.to_pandas()
    last = st.groupby(["run", "scheme"]).tail(1) if len(st) else st
    t = a.column("time_ns").to_numpy() if a.num_rows else np.zeros(0, np.int64)
    sch = a.column("scheme").to_numpy() if a.num_rows else np.zeros(0, np.int64)
    walks = len({(int(x), int(y)) for x, y in zip(sch, t)})
    size = (
        (
            a.column("end").to_numpy().astype(np.int64)
            - a.column("start").to_numpy().astype(np.int64)
        )
        if a.num_rows
        else np.zeros(0)
    )
    out = {
        "damos_applications": walks,
        "damos_regions": int(a.num_rows),
        "damos_bytes_tried": int(size.sum()),
        "damos_bytes_applied": int(last["sz_applied"].sum()) if len(last) else 0,
        "damos_qt_exceeds": int(last["qt_exceeds"].sum()) if len(last) else 0,
    }
    o = {k: v for k, v in (res.metadata.get("outcome") or {}).items() if k in ("pageout", "tier")}
    out.update(flatten(o, "damos"))
    return out


def _replay_source(spec: dict, got: Loaded, kw: dict):
    """Replay from the worker's in-memory tables, with the trace's metadata (paddr
    without ``--range`` takes the trace's System RAM / MEM_TOPOLOGY from it)."""
    return got.source, {
        "mmaps": got.mmaps,
        "maps": got.maps,
        "tasks": got.tasks,
        "pagemap": got.pagemap,
        "trace_meta": got.meta,
    }


def run_task(spec: dict) -> dict:
    """Run one (source, configuration) task; return its row (a dict of scalars)."""
    row = {
        "source": spec["source"],
        "source_name": source_name(spec["source"]),
        "source_sha256": spec["source_sha256"],
        "config_id": spec["config_id"],
        "seed": spec["seed"],
        "seed_dependent": spec["seed_dependent"],
        "run_key": spec["run_key"],
        "tracedamon_version": __version__,
        "worker": f"{socket.gethostname()}:{os.getpid()}",
        "error": None,
        "replay_s": None,
        "replay_cpu_s": None,
        "score_s": None,
        "worker_peak_rss_mb": None,
    }
    got = load(spec)
    kw = dict(spec["replay"])
    fields = {f for f in MonitorConfig.__dataclass_fields__}
    cfg = {k: kw.pop(k) for k in list(kw) if k in fields}
    try:
        config = MonitorConfig(**cfg)
        source, extra = _replay_source(spec, got, kw)
        t, c = time.perf_counter(), time.thread_time()
        hist = replay(source, config=config, **extra, **kw)
        row["replay_s"] = time.perf_counter() - t
        row["replay_cpu_s"] = time.thread_time() - c
    except TracedamonError as e:
        row["error"] = str(e)
        row["worker_peak_rss_mb"] = peak_rss_mb()
        return {k: clean(v) for k, v in row.items()}
    row.update(cost_figures(hist, config.sample_us))
    t = time.perf_counter()
    if spec.get("scheme") is not None:
        try:
            row.update(scheme_figures(hist, spec["scheme"], got))
        except TracedamonError as e:
            row["error"] = f"damos: {e}"
        row["damos_s"] = time.perf_counter() - t
    t = time.perf_counter()
    try:
        if got.reference is not None:
            row.update(flatten(compare(got.reference, hist).metrics, "ref"))
        if got.truth is not None:
            row.update(flatten(score_truth(hist, got.truth), "truth"))
    except TracedamonError as e:
        row["error"] = f"scoring: {e}"
    row["score_s"] = time.perf_counter() - t
    row["worker_peak_rss_mb"] = peak_rss_mb()
    if spec.get("keep"):
        name = f"{spec['config_id']}-s{spec['seed']}.parquet"
        keep = Path(spec["keep"]) / spec.get("keep_folder", row["source_name"]) / name
        if source is got.source:
            hist.metadata["input"] = got.provenance
        hist.to_parquet(keep, force=True)  # the sweep's own file (a resumed run rewrites it)
        row["history"] = str(keep)
    return {k: clean(v) for k, v in row.items()}
