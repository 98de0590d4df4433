"""The inputs of ``tracedamon damos`` (:func:`tracedamon.pipeline.damos.damos`), read
and checked: the scheme files and the DAMON context they run in, the resume point, the
time series of watermark and quota-goal metrics, the page data the ops filters read, and
the provenance of what the run read."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..engine.damos import Context, Scheme
from ..engine.damos.ops_model import PageModel, action_kind
from ..errors import ConfigError, InputError, TraceFormatError
from ..store.writer import file_provenance
from ..units import PAGE_SIZE
from .damos_history import PagemapOracle, Source, pagemap_table
from .damos_history import target_pids as history_target_pids
from .schemes import SchemeFile, load_schemes


def series(spec) -> tuple[np.ndarray, np.ndarray] | None:
    """A (times, values) series from a CSV path (time_ns,value lines) or a pair of arrays."""
    if spec is None:
        return None
    if isinstance(spec, (str, os.PathLike)):
        p = Path(spec)
        if not p.exists():
            raise InputError(f"{p}: no such file")
        times, vals = [], []
        for ln, line in enumerate(p.read_text().splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#") or line.lower().startswith("time"):
                continue
            parts = line.replace(",", " ").split()
            if len(parts) != 2:
                raise TraceFormatError(p, "expected 'time_ns,value'", line=ln)
            try:
                times.append(int(parts[0]))
                vals.append(int(float(parts[1])))
            except ValueError:
                raise TraceFormatError(p, f"not numbers: {line!r}", line=ln) from None
        if not times:
            raise InputError(f"{p}: the series is empty")
        t, v = np.array(times, np.int64), np.array(vals, np.int64)
    else:
        t, v = (np.asarray(x, np.int64) for x in spec)
    o = np.argsort(t, kind="stable")
    return t[o], v[o]


def value_at(series, t: int):
    if series is None:
        return None
    ts, vs = series
    i = int(np.searchsorted(ts, t, side="right")) - 1
    return int(vs[i]) if i >= 0 else None


def scheme_files(schemes, sample_us, aggr_us) -> list[SchemeFile]:
    if isinstance(schemes, (str, os.PathLike, Scheme, SchemeFile)):
        schemes = [schemes]
    files = []
    for s in schemes:
        if isinstance(s, SchemeFile):
            files.append(s)
        elif isinstance(s, Scheme):
            files.append(SchemeFile([s], None, "Scheme object"))
        else:
            files.append(load_schemes(s, sample_us=sample_us, aggr_us=aggr_us))
    return files


def context_of(
    source: Source,
    schemes,
    ops,
    sample_us,
    aggr_us,
    min_region,
    hz,
    ns_per_region_call,
    ns_per_byte,
    say,
) -> tuple[list[SchemeFile], Context]:
    """The scheme files and the DAMON context they run in.

    The history's intervals (options, else a replay's configuration, else the trace's
    recorded or inferred ones) convert presets and damo units; the context's (options,
    else a sysfs dump's or damo kdamonds JSON's -- the kdamond's configured values --
    else the history's) go into the scores."""
    for name, v in (("sample_us", sample_us), ("aggr_us", aggr_us)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v <= 0):
            why = f" must be a positive number of microseconds, not {v!r}"
            raise ConfigError(name + why, cli_message="--" + name.replace("_", "-") + why)
    rc = source.replay_config or {}
    iv = source.meta.get("intervals") or {}
    h_sample = sample_us or rc.get("sample_us") or iv.get("sample_us")
    h_aggr = aggr_us or rc.get("aggr_us") or iv.get("aggr_us")
    files = scheme_files(schemes, h_sample, h_aggr)
    mon = next(
        (
            f.monitoring
            for f in files
            if f.monitoring is not None and not f.source.startswith("preset")
        ),
        None,
    )
    src_ops = (source.meta.get("replay") or {}).get("ops")
    if ops is None:
        if src_ops and mon and mon.get("ops") and mon["ops"] != src_ops:
            msg = (
                f"{source.path} is a {src_ops} history but the scheme file's context is "
                f"{mon['ops']}: pass "
            )
            raise ConfigError(msg + "ops= to choose", cli_message=msg + "--ops to choose")
        ops = (
            src_ops
            or (mon or {}).get("ops")
            or next((f.monitoring["ops"] for f in files if f.monitoring), None)
        )
        if ops is None:
            msg = (
                f"{source.path}: the operations set is unknown (no replay metadata, no "
                "scheme file context): pass "
            )
            raise ConfigError(msg + "ops='paddr' or 'vaddr'", cli_message=msg + "--ops paddr|vaddr")
    c_sample = sample_us or (mon or {}).get("sample_us") or h_sample
    c_aggr = aggr_us or (mon or {}).get("aggr_us") or h_aggr
    if not c_sample or not c_aggr:
        msg = f"{source.path}: the sampling and aggregation intervals are unknown: pass "
        raise ConfigError(
            msg + "sample_us and aggr_us", cli_message=msg + "--sample-us and --aggr-us"
        )
    if not (sample_us or aggr_us or mon or rc) and iv.get("source") == "inferred":
        say(
            f"intervals inferred from the trace's snapshot spacing (sample {c_sample} us, "
            f"aggr {c_aggr} us); scores turn ages into seconds with the configured "
            "aggregation interval: give --sample-us/--aggr-us (or a sysfs dump) for exact "
            "scores"
        )
    if min_region is None:
        au = (mon or {}).get("addr_unit") or 1
        min_region = max(PAGE_SIZE // au, 1) if mon else (rc.get("min_region") or PAGE_SIZE)
    return files, Context(
        ops,
        int(c_sample),
        int(c_aggr),
        int(min_region),
        hz,
        int(ns_per_region_call),
        float(ns_per_byte),
    )


def parse_resume(resume) -> tuple[int, int]:
    if isinstance(resume, int):
        return 0, resume
    text = str(resume)
    t, _, a = text.rpartition(":")
    try:
        return (int(t, 0) if t else 0), int(a.replace("_", ""), 0)
    except ValueError:
        raise ConfigError(
            f"resume={text!r}: 'auto', ADDR or 'TARGET:ADDR'",
            cli_message=f"--quota-resume {text!r}: auto, ADDR or TARGET:ADDR",
        ) from None


@dataclass
class Pages:
    """The page data of a damos run: the pagemap oracle (or None), the ops model, the
    outcome models' address spaces and the history's target pids."""

    target_pids: object
    oracle: object
    model: PageModel
    spaces: dict


def page_data(all_schemes, ops, source, pagemap, unknown_pages, success, say) -> Pages:
    """The page data the ops filters and the outcome models read, with what it lacks."""
    needs_pages = any(
        s.ops_filters and action_kind(ops, s.action) in ("filtered", "stat") for s in all_schemes
    )
    for s in all_schemes:
        if s.ops_filters and action_kind(ops, s.action) in ("madvise", "none"):
            say(
                f"{ops} {s.action} evaluates no ops filters: the scheme's "
                f"{', '.join(f.type for f in s.ops_filters)} filter(s) have no effect "
                "(as in the kernel)"
            )
    target_pids = history_target_pids(source)
    oracle = None
    pm_table = pagemap_table(pagemap, source)
    if pm_table is not None and pm_table.num_rows:
        oracle = PagemapOracle(pm_table, ops, target_pids)
    if needs_pages and oracle is None:
        names = sorted({f.type for s in all_schemes for f in s.ops_filters})
        say(
            f"ops filters ({', '.join(names)}) but {source.path} has no page data "
            "(pagemap snapshots): every page's verdict is the default "
            f"--unknown-pages {unknown_pages}; sz_ops_filter_passed and sz_applied are "
            "modelled from it"
        )
    if ops == "paddr" and any(
        s.action == "pageout" and not any(f.type == "young" for f in s.ops_filters)
        for s in all_schemes
    ):
        say(
            "paddr pageout checks each page's accessed bit again (an implicit 'reject "
            "young' filter after the scheme's own): no page data says whether a page is "
            f"young, so the pages it decides get --unknown-pages {unknown_pages}"
        )
    if needs_pages and oracle is not None:
        unknown = sorted(
            {
                f.type
                for s in all_schemes
                for f in s.ops_filters
                if f.type in ("young", "active", "memcg")
            }
        )
        if unknown:
            say(
                f"ops filter(s) {', '.join(unknown)} read live page state no snapshot has: "
                f"pages they decide get --unknown-pages {unknown_pages}"
            )
    model = PageModel(oracle, unknown_pages, success)
    # address spaces of the outcome models: paddr frames are keyed by physical address
    # (space 0) or, where a pagemap snapshot names their owner, by the owner's virtual
    # page (a refaulted page comes back in another frame); vaddr: by target
    spaces = (
        {
            int(p): i + 1
            for i, p in enumerate(np.unique(pm_table.column("pid").to_numpy(zero_copy_only=False)))
        }
        if ops == "paddr" and oracle is not None
        else {}
    )
    return Pages(target_pids, oracle, model, spaces)


def provenance(source: Source, files: list[SchemeFile]) -> list[dict]:
    """Name, size and sha256 of what the run read: the history's tables, scheme files."""
    paths = (
        [source.path]
        if source.path.is_file()
        else [
            source.path / f"{n}.parquet"
            for n in ("regions", "damos_apply")
            if (source.path / f"{n}.parquet").exists()
        ]
    )
    out = [dict(file_provenance(p), role="history") for p in paths]
    for f in files:
        if f.path is not None:
            out.append(dict(file_provenance(f.path), role="scheme"))
        else:
            out.append({"name": f.source, "role": "scheme"})
    return out
