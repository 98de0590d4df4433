"""damo JSON: the kdamonds/contexts/schemes layout damo writes and reads, and damo's
scheme JSON (one scheme or a list), in damo's human units or plain numbers."""

from __future__ import annotations

from ...engine.damos.scheme import (
    UINT_MAX,
    ULONG_MAX,
    AccessPattern,
    Filter,
    Quota,
    QuotaGoal,
    Scheme,
    Watermarks,
)
from ...errors import ConfigError
from .file import SchemeFile
from .units import as_bool, as_uint, number, ratio_in, size_bytes, time_ns, to_unit


class _Units:
    def __init__(self, path, sample_us, aggr_us, notes):
        self.path, self.sample_us, self.aggr_us, self.notes = path, sample_us, aggr_us, notes

    def need(self, what: str):
        if not self.aggr_us or not self.sample_us:

            def msg(give):
                return (
                    f"{self.path}: {what}: converting it needs the sampling and "
                    "aggregation intervals, which the file does not give (give "
                    f"{give}, or use a source whose intervals are known)"
                )

            raise ConfigError(
                msg("sample_us and aggr_us"), cli_message=msg("--sample-us and --aggr-us")
            )


def _get(d: dict, key: str, where: str, default=None, required=False):
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected an object, got {type(d).__name__}")
    if key in d and d[key] is not None:
        return d[key]
    if required:
        raise ConfigError(f"{where}: missing {key!r}")
    return default


def _nr_accesses(v, units: _Units, where: str) -> int:
    if isinstance(v, str) and v.strip().endswith("samples"):
        return as_uint(int(number(v.strip()[: -len("samples")], where)), where)
    if isinstance(v, str) and v.strip() in ("min", "max"):
        return 0 if v.strip() == "min" else UINT_MAX
    pct = ratio_in(v if isinstance(v, str) else f"{v}%", 100, where)
    units.need(f"{where} is in percent")
    max_nr = units.aggr_us / units.sample_us
    n = int(pct * max_nr / 100) if pct < ULONG_MAX else ULONG_MAX
    units.notes.append(f"{where}: {v} of {max_nr:g} samples = {n}")
    return as_uint(n, where)


def _age(v, units: _Units, where: str) -> int:
    if isinstance(v, str) and v.strip().endswith("aggr_intervals"):
        return as_uint(int(number(v.strip()[: -len("aggr_intervals")], where)), where)
    if isinstance(v, str) and v.strip() in ("min", "max"):
        return 0 if v.strip() == "min" else UINT_MAX
    ns = time_ns(v, "us", where)
    if ns >= ULONG_MAX:
        return UINT_MAX
    units.need(f"{where} is a time")
    n = int(ns / 1000 / units.aggr_us)
    units.notes.append(f"{where}: {v} = {n} aggregations of {units.aggr_us} us")
    return as_uint(n, where)


_SCHEME_KEYS = {
    "action",
    "dests",
    "target_nid",
    "access_pattern",
    "apply_interval_us",
    "quotas",
    "watermarks",
    "filters",
    "core_filters",
    "ops_filters",
    "stats",
    "tried_regions",
    "tried_bytes",
    "name",
}


def _scheme_from_damo(d: dict, units: _Units, where: str) -> Scheme:
    """One damo scheme object; ``where`` names it in error messages."""
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: a scheme must be an object")
    unknown = sorted(set(d) - _SCHEME_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
    pattern = _access_pattern(
        _get(d, "access_pattern", where, {}), units, f"{where}.access_pattern"
    )
    quota = _quota(_get(d, "quotas", where, {}), f"{where}.quotas")
    wmarks = _watermarks(_get(d, "watermarks", where, {}), f"{where}.watermarks")
    flist = (
        list(_get(d, "filters", where, []))
        + list(_get(d, "core_filters", where, []))
        + list(_get(d, "ops_filters", where, []))
    )
    filters = [_filter(f, f"{where}.filters[{i}]") for i, f in enumerate(flist)]
    filters = [f for f in filters if f.core] + [f for f in filters if not f.core]
    action = _get(d, "action", where, "stat")
    tnid = _get(d, "target_nid", where, -1)
    return Scheme(
        action,
        pattern,
        quota,
        wmarks,
        tuple(filters),
        to_unit(
            time_ns(_get(d, "apply_interval_us", where, 0), "us", f"{where}.apply_interval_us"),
            "us",
        ),
        int(tnid) if tnid is not None else -1,
        name=str(d.get("name", "")),
    )


def _access_pattern(ap: dict, units: _Units, w: str) -> AccessPattern:
    """A scheme's ``access_pattern`` (sizes; nr_accesses in samples or percent; ages in
    aggregation intervals or time units)."""
    sz = _get(ap, "sz_bytes", w, {})
    nr = _get(ap, "nr_accesses", w, {})
    ag = _get(ap, "age", w, {})
    return AccessPattern(
        size_bytes(_get(sz, "min", w, 0), f"{w}.sz_bytes.min"),
        size_bytes(_get(sz, "max", w, "max"), f"{w}.sz_bytes.max"),
        _nr_accesses(_get(nr, "min", w, "min"), units, f"{w}.nr_accesses.min"),
        _nr_accesses(_get(nr, "max", w, "max"), units, f"{w}.nr_accesses.max"),
        _age(_get(ag, "min", w, "min"), units, f"{w}.age.min"),
        _age(_get(ag, "max", w, "max"), units, f"{w}.age.max"),
    )


def _quota_goal(g: dict, wg: str) -> QuotaGoal:
    """One of a quota's ``goals`` (the target value in its metric's unit)."""
    metric = _get(g, "metric", wg, "user_input")
    tv = _get(g, "target_value", wg, required=True)
    if metric == "some_mem_psi_us":
        tvv = to_unit(time_ns(tv, "us", f"{wg}.target_value"), "us")
    elif metric.endswith("_bp"):
        tvv = ratio_in(tv, 10000, f"{wg}.target_value")
    else:
        tvv = int(number(str(tv), f"{wg}.target_value"))
    return QuotaGoal(
        metric,
        tvv,
        int(number(str(_get(g, "current_value", wg, 0)), f"{wg}.current_value")),
        _get(g, "nid", wg),
        _get(g, "memcg_path", wg),
    )


def _quota(q: dict, wq: str) -> Quota:
    """A scheme's ``quotas``: time, size, reset interval, score weights and goals."""
    weights = _get(q, "weights", wq, {})
    goals = [_quota_goal(g, f"{wq}.goals[{i}]") for i, g in enumerate(_get(q, "goals", wq, []))]
    quota = Quota(
        to_unit(time_ns(_get(q, "time_ms", wq, 0), "ms", f"{wq}.time_ms"), "ms"),
        size_bytes(_get(q, "sz_bytes", wq, 0), f"{wq}.sz_bytes"),
        to_unit(
            time_ns(_get(q, "reset_interval_ms", wq, "max"), "ms", f"{wq}.reset_interval_ms"), "ms"
        ),
        ratio_in(_get(weights, "sz_permil", wq, 0), 1000, f"{wq}.weights.sz_permil"),
        ratio_in(
            _get(weights, "nr_accesses_permil", wq, 0), 1000, f"{wq}.weights.nr_accesses_permil"
        ),
        ratio_in(_get(weights, "age_permil", wq, 0), 1000, f"{wq}.weights.age_permil"),
        tuple(goals),
    )
    if q.get("fail_charge_num") not in (None, 0, "0"):
        raise ConfigError(
            f"{wq}: fail_charge_num is a 2026 mm-tree feature this replay does not model"
        )
    return quota


def _watermarks(wm: dict, ww: str) -> Watermarks:
    """A scheme's ``watermarks`` (metric, check interval, permil thresholds)."""
    return Watermarks(
        _get(wm, "metric", ww, "none"),
        to_unit(time_ns(_get(wm, "interval_us", ww, 0), "us", f"{ww}.interval_us"), "us"),
        ratio_in(_get(wm, "high_permil", ww, 0), 1000, f"{ww}.high_permil"),
        ratio_in(_get(wm, "mid_permil", ww, 0), 1000, f"{ww}.mid_permil"),
        ratio_in(_get(wm, "low_permil", ww, 0), 1000, f"{ww}.low_permil"),
    )


def _filter(f: dict, wf: str) -> Filter:
    """One filter of ``filters``, ``core_filters`` or ``ops_filters`` (its type's own
    fields: address range, target index, memcg path, huge page sizes)."""
    ftype = _get(f, "filter_type", wf, required=True)
    allow = _get(f, "allow", wf, _get(f, "filter_pass", wf, False))
    kw = {}
    if ftype == "addr":
        ar = _get(f, "address_range", wf, required=True)
        kw = {
            "addr_start": size_bytes(_get(ar, "start", wf, required=True), f"{wf}.start"),
            "addr_end": size_bytes(_get(ar, "end", wf, required=True), f"{wf}.end"),
        }
    elif ftype == "target":
        kw = {"target_idx": int(number(str(_get(f, "damon_target_idx", wf, 0)), wf))}
    elif ftype == "memcg":
        kw = {"memcg_path": str(_get(f, "memcg_path", wf, ""))}
    elif ftype == "hugepage_size":
        hs = _get(f, "hugepage_size", wf, required=True)
        if not isinstance(hs, list) or len(hs) != 2:
            raise ConfigError(f"{wf}.hugepage_size: expected [min, max]")
        kw = {"sz_min": size_bytes(hs[0], wf), "sz_max": size_bytes(hs[1], wf)}
    return Filter(
        ftype,
        as_bool(_get(f, "matching", wf, True), f"{wf}.matching"),
        as_bool(allow, f"{wf}.allow"),
        **kw,
    )


def _context_monitoring(ctx: dict, where: str) -> dict:
    iv = _get(ctx, "intervals", where, {})
    nrr = _get(ctx, "nr_regions", where, {})
    au = _get(ctx, "addr_unit", where, 1)
    targets = []
    for t in _get(ctx, "targets", where, []):
        regs = [
            [size_bytes(r["start"], f"{where}.targets"), size_bytes(r["end"], f"{where}.targets")]
            for r in _get(t, "regions", where, [])
        ]
        pid = t.get("pid")
        targets.append({"pid": int(pid) if pid not in (None, "") else None, "regions": regs})
    return {
        "ops": _get(ctx, "ops", where, "paddr"),
        "sample_us": to_unit(time_ns(_get(iv, "sample_us", where, "5 ms"), "us", where), "us"),
        "aggr_us": to_unit(time_ns(_get(iv, "aggr_us", where, "100 ms"), "us", where), "us"),
        "update_us": to_unit(time_ns(_get(iv, "ops_update_us", where, "1 s"), "us", where), "us"),
        "min_nr_regions": int(number(str(_get(nrr, "min", where, 10)), where)),
        "max_nr_regions": int(number(str(_get(nrr, "max", where, 1000)), where)),
        "addr_unit": size_bytes(au, f"{where}.addr_unit"),
        "targets": targets,
    }


def damo_json(doc, path: str, select: tuple[int, int] | None, sample_us, aggr_us) -> SchemeFile:
    notes: list[str] = []
    kdamonds = None
    if isinstance(doc, dict) and "kdamonds" in doc:
        kdamonds = doc["kdamonds"]
    elif isinstance(doc, list) and doc and isinstance(doc[0], dict) and "contexts" in doc[0]:
        kdamonds = doc
    elif isinstance(doc, dict) and "contexts" in doc:
        kdamonds = [doc]
    elif (
        isinstance(doc, dict)
        and "schemes" in doc
        and ("ops" in doc or "targets" in doc or "intervals" in doc)
    ):
        kdamonds = [{"contexts": [doc]}]
    if kdamonds is not None:
        found = []
        for k, kd in enumerate(kdamonds):
            for c, ctx in enumerate(_get(kd, "contexts", f"{path}: kdamonds[{k}]", [])):
                found.append((k, c, ctx))
        if select is not None:
            found = [f for f in found if (f[0], f[1]) == select]
            if not found:
                raise ConfigError(f"{path}: no kdamond {select[0]} context {select[1]}")
        with_schemes = [f for f in found if f[2].get("schemes")]
        if not with_schemes:
            raise ConfigError(f"{path}: no context with schemes")
        if len(with_schemes) > 1:
            raise ConfigError(
                f"{path}: {len(with_schemes)} contexts have schemes ("
                + ", ".join(f"{k}/{c}" for k, c, _ in with_schemes)
                + f"); choose one with {path}#K/C"
            )
        k, c, ctx = with_schemes[0]
        where = f"{path}: kdamonds[{k}].contexts[{c}]"
        mon = _context_monitoring(ctx, where)
        units = _Units(path, mon["sample_us"], mon["aggr_us"], notes)
        schemes = [
            _scheme_from_damo(s, units, f"{where}.schemes[{i}]")
            for i, s in enumerate(ctx["schemes"])
        ]
        return SchemeFile(schemes, mon, f"damo JSON {path} (kdamond {k}, context {c})", notes)
    units = _Units(path, sample_us, aggr_us, notes)
    if isinstance(doc, dict) and "schemes" in doc:
        doc = doc["schemes"]
    if isinstance(doc, dict):
        return SchemeFile(
            [_scheme_from_damo(doc, units, f"{path}: scheme")],
            None,
            f"damo scheme JSON {path}",
            notes,
        )
    if isinstance(doc, list) and doc:
        return SchemeFile(
            [_scheme_from_damo(s, units, f"{path}: schemes[{i}]") for i, s in enumerate(doc)],
            None,
            f"damo scheme JSON {path}",
            notes,
        )
    raise ConfigError(f"{path}: JSON that is neither damo's kdamonds layout nor damo schemes")
