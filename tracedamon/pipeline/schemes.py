"""Scheme files: damo JSON, DAMON sysfs dumps and the kernel modules' presets.

:func:`load_schemes` reads one ``--scheme`` argument and returns the schemes it
describes (:class:`tracedamon.engine.damos.Scheme`) plus the monitoring attributes
that came with them, if any:

* **a preset**: ``reclaim`` (DAMON_RECLAIM) or ``lru_sort`` (DAMON_LRU_SORT) with the
  kernel modules' defaults (``damos-spec.md`` §8), overridable with their module
  parameter names: ``reclaim:min_age=30s,quota_sz=256M``.  Time thresholds become
  aggregation intervals of the history the schemes run on (the module divides by its
  ``aggr_interval``); ``wmarks=none`` replaces the free-memory watermarks (which need a
  free-memory series offline).
* **damo JSON**: the kdamonds/contexts/schemes layout damo writes and reads (a list of
  kdamonds, ``{"kdamonds": [...]}``, one context, or the ``.kdamonds`` sidecar of a
  damo record) and damo's scheme JSON (one scheme object or a list of them), in damo's
  human units ("128.000 MiB", "5 s", "50 %", "12 aggr_intervals") or plain numbers in
  each field's own unit.  ``nr_accesses`` in percent and ages in time units need the
  sampling and aggregation intervals: the file's context gives them, else the caller.
* **a sysfs dump**: the ``path:value`` lines of ``grep -r .
  /sys/kernel/mm/damon/admin/kdamonds/N`` (values exactly as the kernel holds them).

Several contexts with schemes in one file: choose one with ``FILE#K/C`` (kdamond K,
context C).  Anything else -- an unknown format, a malformed value, a missing entry --
is a :class:`~tracedamon.errors.ConfigError` or
:class:`~tracedamon.errors.TraceFormatError` naming the file and the line or key.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..engine.damos.scheme import (
    UINT_MAX,
    ULONG_MAX,
    AccessPattern,
    Filter,
    Quota,
    QuotaGoal,
    Scheme,
    Watermarks,
)
from ..errors import ConfigError, InputError, TraceFormatError
from ..units import DURATION_NS, PAGE_SIZE, parse_bytes, parse_duration_ns, parse_number

PRESETS = ("reclaim", "lru_sort")
SYSFS_PREFIX = "/sys/kernel/mm/damon/admin/kdamonds/"


@dataclass
class SchemeFile:
    """What one ``--scheme`` argument gave.

    ``monitoring``: the DAMON context the schemes came with (``ops``, ``sample_us``,
    ``aggr_us``, ``update_us``, ``min_nr_regions``, ``max_nr_regions``,
    ``addr_unit``, ``targets``: list of {"pid", "regions": [[start, end], ...]}), or
    None.  ``source``: what was read.  ``notes``: unit conversions and choices made.
    """

    schemes: list[Scheme]
    monitoring: dict | None
    source: str
    notes: list[str] = field(default_factory=list)
    path: Path | None = None

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "monitoring": self.monitoring,
            "notes": self.notes,
            "schemes": [s.to_dict() for s in self.schemes],
        }


# ---------------------------------------------------------------------------------------
# units (damo's human formats)
# ---------------------------------------------------------------------------------------
_LIMITS = {"max": ULONG_MAX, "min": 0}


def _number(text: str, what: str):
    try:
        return parse_number(text, what)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def size_bytes(value, what: str = "size") -> int:
    """``"128.000 MiB"``, ``"4K"``, ``"max"``, ``4096`` → bytes."""
    try:
        return parse_bytes(value, what, words=_LIMITS, limit=ULONG_MAX)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def time_ns(value, default_unit: str, what: str = "time") -> int:
    """``"5 s"``, ``"1 m 30 s"``, ``"500ms"``, ``"max"``, a bare number in
    ``default_unit`` → nanoseconds (``ULONG_MAX`` for "max")."""
    try:
        return parse_duration_ns(value, default_unit, what, words=_LIMITS)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def _to_unit(ns: int, unit: str) -> int:
    return ULONG_MAX if ns >= ULONG_MAX else int(ns // DURATION_NS[unit])


def ratio_in(value, scale: int, what: str) -> int:
    """``"50 %"`` → 50 % of ``scale`` (permil: 500); a bare number is already in the
    field's unit."""
    if isinstance(value, bool):
        raise ConfigError(f"{what}: {value!r} is not a number")
    if isinstance(value, (int, float)):
        return int(value)
    t = str(value).strip()
    if t == "max":
        return ULONG_MAX
    if t == "min":
        return 0
    if t.endswith("%"):
        return int(_number(t[:-1], what) * scale / 100)
    return int(_number(t, what))


def _bool(value, what: str) -> bool:
    if isinstance(value, bool):
        return value
    t = str(value).strip().lower()
    if t in ("y", "yes", "true", "1"):
        return True
    if t in ("n", "no", "false", "0"):
        return False
    raise ConfigError(f"{what}: {value!r} is not a boolean (Y/N, true/false)")


def _uint(value: int, what: str) -> int:
    """An ``unsigned int`` field written through sysfs: ULONG_MAX ("max") truncates to
    UINT_MAX as the kernel stores it; anything else above UINT_MAX is refused by the
    scheme's validation."""
    return UINT_MAX if value >= ULONG_MAX else value


# ---------------------------------------------------------------------------------------
# presets (reclaim.c, lru_sort.c, modules-common; damos-spec §8)
# ---------------------------------------------------------------------------------------
RECLAIM_DEFAULTS = {
    "min_age": 120_000_000,
    "quota_ms": 10,
    "quota_sz": 128 << 20,
    "quota_reset_interval_ms": 1000,
    "quota_mem_pressure_us": 0,
    "quota_autotune_feedback": 0,
    "wmarks_interval": 5_000_000,
    "wmarks_high": 500,
    "wmarks_mid": 400,
    "wmarks_low": 200,
    "sample_interval": 5000,
    "aggr_interval": 100_000,
    "min_nr_regions": 10,
    "max_nr_regions": 1000,
    "skip_anon": False,
    "wmarks": "free_mem_rate",
}
LRU_SORT_DEFAULTS = {
    "hot_thres_access_freq": 500,
    "cold_min_age": 120_000_000,
    "quota_ms": 10,
    "quota_reset_interval_ms": 1000,
    "wmarks_interval": 5_000_000,
    "wmarks_high": 200,
    "wmarks_mid": 150,
    "wmarks_low": 50,
    "sample_interval": 5000,
    "aggr_interval": 100_000,
    "min_nr_regions": 10,
    "max_nr_regions": 1000,
    "filter_young_pages": False,
    "wmarks": "free_mem_rate",
}
_PRESET_UNITS = {  # module parameter -> (kind, unit of a bare number)
    "min_age": ("time", "us"),
    "cold_min_age": ("time", "us"),
    "quota_ms": ("time", "ms"),
    "quota_reset_interval_ms": ("time", "ms"),
    "quota_mem_pressure_us": ("time", "us"),
    "wmarks_interval": ("time", "us"),
    "sample_interval": ("time", "us"),
    "aggr_interval": ("time", "us"),
    "quota_sz": ("size", None),
    "skip_anon": ("bool", None),
    "filter_young_pages": ("bool", None),
    "wmarks": ("word", None),
}


def _preset_params(name: str, overrides: str, defaults: dict) -> dict:
    p = dict(defaults)
    if not overrides:
        return p
    for item in overrides.split(","):
        if not item.strip():
            continue
        if "=" not in item:
            raise ConfigError(f"scheme {name}: {item!r} is not KEY=VALUE")
        k, v = (x.strip() for x in item.split("=", 1))
        if k not in defaults:
            raise ConfigError(
                f"scheme {name}: unknown parameter {k!r} (one of {', '.join(sorted(defaults))})"
            )
        kind, unit = _PRESET_UNITS.get(k, ("int", None))
        what = f"scheme {name}: {k}"
        if kind == "time":
            p[k] = _to_unit(time_ns(v, unit, what), unit)
        elif kind == "size":
            p[k] = size_bytes(v, what)
        elif kind == "bool":
            p[k] = _bool(v, what)
        elif kind == "word":
            if v not in ("free_mem_rate", "none"):
                raise ConfigError(f"{what}: free_mem_rate or none, not {v!r}")
            p[k] = v
        else:
            n = _number(v, what)
            if not isinstance(n, int) or n < 0:
                raise ConfigError(f"{what}: {v!r} is not a non-negative integer")
            p[k] = n
    return p


def preset(text: str, *, sample_us: int | None = None, aggr_us: int | None = None) -> SchemeFile:
    """``reclaim`` / ``lru_sort`` (optionally ``:KEY=VALUE,...``) as schemes.

    ``sample_us``/``aggr_us``: the intervals of the history the schemes will run on;
    they replace the module's ``sample_interval``/``aggr_interval`` (unless those are
    overridden explicitly) in the thresholds the module derives from them."""
    name, _, overrides = text.partition(":")
    defaults = RECLAIM_DEFAULTS if name == "reclaim" else LRU_SORT_DEFAULTS
    p = _preset_params(name, overrides, defaults)
    notes = []
    given = {k.split("=", 1)[0].strip() for k in overrides.split(",") if "=" in k}
    if aggr_us and "aggr_interval" not in given:
        p["aggr_interval"] = aggr_us
        notes.append(f"aggr_interval = {aggr_us} us (the history's, not the module's 100 ms)")
    if sample_us and "sample_interval" not in given:
        p["sample_interval"] = sample_us
    aggr = max(p["aggr_interval"], 1)
    max_nr = max(p["aggr_interval"] // max(p["sample_interval"], 1), 1)

    def wm(high, mid, low):
        if p["wmarks"] == "none":
            return Watermarks("none")
        return Watermarks("free_mem_rate", p["wmarks_interval"], high, mid, low)

    if name == "reclaim":
        goals = []
        if p["quota_mem_pressure_us"]:
            goals.append(QuotaGoal("some_mem_psi_us", p["quota_mem_pressure_us"]))
        if p["quota_autotune_feedback"]:
            goals.append(QuotaGoal("user_input", 10000, p["quota_autotune_feedback"]))
        min_age = min(p["min_age"] // aggr, UINT_MAX)
        notes.append(f"min_age {p['min_age']} us = {min_age} aggregations")
        s = Scheme(
            "pageout",
            AccessPattern(PAGE_SIZE, ULONG_MAX, 0, 0, min_age, UINT_MAX),
            Quota(
                p["quota_ms"], p["quota_sz"], p["quota_reset_interval_ms"], 0, 0, 1, tuple(goals)
            ),
            wm(p["wmarks_high"], p["wmarks_mid"], p["wmarks_low"]),
            (Filter("anon", True, False),) if p["skip_anon"] else (),
            name="reclaim",
        )
        schemes = [s]
    else:
        hot_thres = max_nr * p["hot_thres_access_freq"] // 1000
        cold_thres = min(p["cold_min_age"] // aggr, UINT_MAX)
        notes.append(
            f"hot: nr_accesses >= {hot_thres} of {max_nr}; cold: age >= {cold_thres} aggregations"
        )
        q = Quota(p["quota_ms"] // 2, 0, p["quota_reset_interval_ms"], 0, 1, 1)
        w = wm(p["wmarks_high"], p["wmarks_mid"], p["wmarks_low"])
        young = p["filter_young_pages"]
        hot = Scheme(
            "lru_prio",
            AccessPattern(PAGE_SIZE, ULONG_MAX, hot_thres, UINT_MAX, 0, UINT_MAX),
            q,
            w,
            (Filter("young", False, False),) if young else (),
            name="lru_sort hot",
        )
        cold = Scheme(
            "lru_deprio",
            AccessPattern(PAGE_SIZE, ULONG_MAX, 0, 0, cold_thres, UINT_MAX),
            q,
            w,
            (Filter("young", True, False),) if young else (),
            name="lru_sort cold",
        )
        schemes = [hot, cold]
    mon = {
        "ops": "paddr",
        "sample_us": p["sample_interval"],
        "aggr_us": p["aggr_interval"],
        "update_us": 0,
        "min_nr_regions": p["min_nr_regions"],
        "max_nr_regions": p["max_nr_regions"],
        "addr_unit": 1,
        "targets": None,
    }
    return SchemeFile(schemes, mon, f"preset {text}", notes)


# ---------------------------------------------------------------------------------------
# damo JSON
# ---------------------------------------------------------------------------------------
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
        return _uint(int(_number(v.strip()[: -len("samples")], where)), where)
    if isinstance(v, str) and v.strip() in ("min", "max"):
        return 0 if v.strip() == "min" else UINT_MAX
    pct = ratio_in(v if isinstance(v, str) else f"{v}%", 100, where)
    units.need(f"{where} is in percent")
    max_nr = units.aggr_us / units.sample_us
    n = int(pct * max_nr / 100) if pct < ULONG_MAX else ULONG_MAX
    units.notes.append(f"{where}: {v} of {max_nr:g} samples = {n}")
    return _uint(n, where)


def _age(v, units: _Units, where: str) -> int:
    if isinstance(v, str) and v.strip().endswith("aggr_intervals"):
        return _uint(int(_number(v.strip()[: -len("aggr_intervals")], where)), where)
    if isinstance(v, str) and v.strip() in ("min", "max"):
        return 0 if v.strip() == "min" else UINT_MAX
    ns = time_ns(v, "us", where)
    if ns >= ULONG_MAX:
        return UINT_MAX
    units.need(f"{where} is a time")
    n = int(ns / 1000 / units.aggr_us)
    units.notes.append(f"{where}: {v} = {n} aggregations of {units.aggr_us} us")
    return _uint(n, where)


def _scheme_from_damo(d: dict, units: _Units, where: str) -> Scheme:
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: a scheme must be an object")
    known = {
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
    unknown = sorted(set(d) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
    ap = _get(d, "access_pattern", where, {})
    sz = _get(ap, "sz_bytes", f"{where}.access_pattern", {})
    nr = _get(ap, "nr_accesses", f"{where}.access_pattern", {})
    ag = _get(ap, "age", f"{where}.access_pattern", {})
    w = f"{where}.access_pattern"
    pattern = AccessPattern(
        size_bytes(_get(sz, "min", w, 0), f"{w}.sz_bytes.min"),
        size_bytes(_get(sz, "max", w, "max"), f"{w}.sz_bytes.max"),
        _nr_accesses(_get(nr, "min", w, "min"), units, f"{w}.nr_accesses.min"),
        _nr_accesses(_get(nr, "max", w, "max"), units, f"{w}.nr_accesses.max"),
        _age(_get(ag, "min", w, "min"), units, f"{w}.age.min"),
        _age(_get(ag, "max", w, "max"), units, f"{w}.age.max"),
    )
    q = _get(d, "quotas", where, {})
    wq = f"{where}.quotas"
    weights = _get(q, "weights", wq, {})
    goals = []
    for i, g in enumerate(_get(q, "goals", wq, [])):
        wg = f"{wq}.goals[{i}]"
        metric = _get(g, "metric", wg, "user_input")
        tv = _get(g, "target_value", wg, required=True)
        if metric == "some_mem_psi_us":
            tvv = _to_unit(time_ns(tv, "us", f"{wg}.target_value"), "us")
        elif metric.endswith("_bp"):
            tvv = ratio_in(tv, 10000, f"{wg}.target_value")
        else:
            tvv = int(_number(str(tv), f"{wg}.target_value"))
        goals.append(
            QuotaGoal(
                metric,
                tvv,
                int(_number(str(_get(g, "current_value", wg, 0)), f"{wg}.current_value")),
                _get(g, "nid", wg),
                _get(g, "memcg_path", wg),
            )
        )
    quota = Quota(
        _to_unit(time_ns(_get(q, "time_ms", wq, 0), "ms", f"{wq}.time_ms"), "ms"),
        size_bytes(_get(q, "sz_bytes", wq, 0), f"{wq}.sz_bytes"),
        _to_unit(
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
    wm = _get(d, "watermarks", where, {})
    ww = f"{where}.watermarks"
    wmarks = Watermarks(
        _get(wm, "metric", ww, "none"),
        _to_unit(time_ns(_get(wm, "interval_us", ww, 0), "us", f"{ww}.interval_us"), "us"),
        ratio_in(_get(wm, "high_permil", ww, 0), 1000, f"{ww}.high_permil"),
        ratio_in(_get(wm, "mid_permil", ww, 0), 1000, f"{ww}.mid_permil"),
        ratio_in(_get(wm, "low_permil", ww, 0), 1000, f"{ww}.low_permil"),
    )
    filters = []
    flist = (
        list(_get(d, "filters", where, []))
        + list(_get(d, "core_filters", where, []))
        + list(_get(d, "ops_filters", where, []))
    )
    for i, f in enumerate(flist):
        wf = f"{where}.filters[{i}]"
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
            kw = {"target_idx": int(_number(str(_get(f, "damon_target_idx", wf, 0)), wf))}
        elif ftype == "memcg":
            kw = {"memcg_path": str(_get(f, "memcg_path", wf, ""))}
        elif ftype == "hugepage_size":
            hs = _get(f, "hugepage_size", wf, required=True)
            if not isinstance(hs, list) or len(hs) != 2:
                raise ConfigError(f"{wf}.hugepage_size: expected [min, max]")
            kw = {"sz_min": size_bytes(hs[0], wf), "sz_max": size_bytes(hs[1], wf)}
        filters.append(
            Filter(
                ftype,
                _bool(_get(f, "matching", wf, True), f"{wf}.matching"),
                _bool(allow, f"{wf}.allow"),
                **kw,
            )
        )
    filters = [f for f in filters if f.core] + [f for f in filters if not f.core]
    action = _get(d, "action", where, "stat")
    tnid = _get(d, "target_nid", where, -1)
    return Scheme(
        action,
        pattern,
        quota,
        wmarks,
        tuple(filters),
        _to_unit(
            time_ns(_get(d, "apply_interval_us", where, 0), "us", f"{where}.apply_interval_us"),
            "us",
        ),
        int(tnid) if tnid is not None else -1,
        name=str(d.get("name", "")),
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
        "sample_us": _to_unit(time_ns(_get(iv, "sample_us", where, "5 ms"), "us", where), "us"),
        "aggr_us": _to_unit(time_ns(_get(iv, "aggr_us", where, "100 ms"), "us", where), "us"),
        "update_us": _to_unit(time_ns(_get(iv, "ops_update_us", where, "1 s"), "us", where), "us"),
        "min_nr_regions": int(_number(str(_get(nrr, "min", where, 10)), where)),
        "max_nr_regions": int(_number(str(_get(nrr, "max", where, 1000)), where)),
        "addr_unit": size_bytes(au, f"{where}.addr_unit"),
        "targets": targets,
    }


def _damo_json(doc, path: str, select: tuple[int, int] | None, sample_us, aggr_us) -> SchemeFile:
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


# ---------------------------------------------------------------------------------------
# sysfs dump
# ---------------------------------------------------------------------------------------
def _sysfs_tree(text: str, path: str) -> dict:
    tree: dict = {}
    for ln, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if not line.startswith(SYSFS_PREFIX) or ":" not in line:
            raise TraceFormatError(
                path,
                f"not a DAMON sysfs line ({line[:60]!r}); expected "
                f"'{SYSFS_PREFIX}...:value' as `grep -r .` prints",
                line=ln,
            )
        key, value = line[len(SYSFS_PREFIX) :].split(":", 1)
        node = tree
        parts = key.split("/")
        for p in parts[:-1]:
            nxt = node.setdefault(p, {})
            if not isinstance(nxt, dict):
                raise TraceFormatError(path, f"{key}: both a file and a directory", line=ln)
            node = nxt
        node[parts[-1]] = (value, ln)
    return tree


class _Sysfs:
    def __init__(self, tree: dict, path: str):
        self.tree, self.path = tree, path

    def node(self, *keys):
        n = self.tree
        for k in keys:
            if not isinstance(n, dict) or k not in n:
                raise TraceFormatError(self.path, f"missing {'/'.join(keys)} in the dump")
            n = n[k]
        return n

    def has(self, *keys) -> bool:
        try:
            self.node(*keys)
            return True
        except TraceFormatError:
            return False

    def str(self, *keys) -> str:
        v = self.node(*keys)
        if isinstance(v, dict):
            raise TraceFormatError(self.path, f"{'/'.join(keys)} is a directory, not a file")
        return v[0]

    def int(self, *keys) -> int:
        v = self.node(*keys)
        try:
            return int(v[0].strip())
        except (ValueError, TypeError, IndexError):
            raise TraceFormatError(
                self.path,
                f"{'/'.join(keys)}: {v[0]!r} is not an integer",
                line=v[1] if isinstance(v, tuple) else None,
            ) from None

    def bool(self, *keys) -> bool:
        v = self.str(*keys).strip()
        if v not in ("Y", "N"):
            raise TraceFormatError(
                self.path, f"{'/'.join(keys)}: {v!r} is not Y or N", line=self.node(*keys)[1]
            )
        return v == "Y"

    def entries(self, *keys, count: str) -> list[str]:
        n = self.int(*keys, count)
        d = self.node(*keys)
        missing = [str(i) for i in range(n) if str(i) not in d]
        if missing:
            raise TraceFormatError(
                self.path,
                f"{'/'.join(keys)}/{count} says {n}, but entry {missing[0]} is not in the dump",
            )
        return [str(i) for i in range(n)]


def _sysfs(text: str, path: str, select: tuple[int, int] | None) -> SchemeFile:
    f = _Sysfs(_sysfs_tree(text, path), path)
    found = []
    for k in sorted((x for x in f.tree if x.isdigit()), key=int):
        if not f.has(k, "contexts"):
            continue
        for c in f.entries(k, "contexts", count="nr_contexts"):
            found.append((int(k), int(c)))
    if select is not None:
        found = [x for x in found if x == select]
        if not found:
            raise ConfigError(f"{path}: no kdamond {select[0]} context {select[1]}")
    with_schemes = [
        x
        for x in found
        if f.has(str(x[0]), "contexts", str(x[1]), "schemes", "nr_schemes")
        and f.int(str(x[0]), "contexts", str(x[1]), "schemes", "nr_schemes")
    ]
    if not with_schemes:
        raise ConfigError(f"{path}: no context with schemes in the dump")
    if len(with_schemes) > 1:
        raise ConfigError(
            f"{path}: {len(with_schemes)} contexts have schemes; choose one with {path}#K/C"
        )
    k, c = (str(x) for x in with_schemes[0])
    cx = (k, "contexts", c)
    ma = cx + ("monitoring_attrs",)
    au = f.int(*cx, "addr_unit") if f.has(*cx, "addr_unit") else 1
    targets = []
    if f.has(*cx, "targets"):
        for t in f.entries(*cx, "targets", count="nr_targets"):
            tx = cx + ("targets", t)
            regs = []
            if f.has(*tx, "regions"):
                for r in f.entries(*tx, "regions", count="nr_regions"):
                    regs.append(
                        [f.int(*tx, "regions", r, "start"), f.int(*tx, "regions", r, "end")]
                    )
            pid = f.int(*tx, "pid_target") if f.has(*tx, "pid_target") else None
            targets.append({"pid": pid, "regions": regs})
    mon = {
        "ops": f.str(*cx, "operations").strip(),
        "sample_us": f.int(*ma, "intervals", "sample_us"),
        "aggr_us": f.int(*ma, "intervals", "aggr_us"),
        "update_us": f.int(*ma, "intervals", "update_us"),
        "min_nr_regions": f.int(*ma, "nr_regions", "min"),
        "max_nr_regions": f.int(*ma, "nr_regions", "max"),
        "addr_unit": au,
        "targets": targets,
    }
    schemes = []
    for s in f.entries(*cx, "schemes", count="nr_schemes"):
        sx = cx + ("schemes", s)
        ap = sx + ("access_pattern",)
        pattern = AccessPattern(
            f.int(*ap, "sz", "min"),
            f.int(*ap, "sz", "max"),
            f.int(*ap, "nr_accesses", "min"),
            f.int(*ap, "nr_accesses", "max"),
            f.int(*ap, "age", "min"),
            f.int(*ap, "age", "max"),
        )
        qx = sx + ("quotas",)
        goals = []
        if f.has(*qx, "goals"):
            for g in f.entries(*qx, "goals", count="nr_goals"):
                gx = qx + ("goals", g)
                goals.append(
                    QuotaGoal(
                        f.str(*gx, "target_metric").strip(),
                        f.int(*gx, "target_value"),
                        f.int(*gx, "current_value"),
                        f.int(*gx, "nid") if f.has(*gx, "nid") else None,
                        f.str(*gx, "path").strip() if f.has(*gx, "path") else None,
                    )
                )
        quota = Quota(
            f.int(*qx, "ms"),
            f.int(*qx, "bytes"),
            f.int(*qx, "reset_interval_ms"),
            f.int(*qx, "weights", "sz_permil"),
            f.int(*qx, "weights", "nr_accesses_permil"),
            f.int(*qx, "weights", "age_permil"),
            tuple(goals),
        )
        wx = sx + ("watermarks",)
        wmarks = Watermarks(
            f.str(*wx, "metric").strip(),
            f.int(*wx, "interval_us"),
            f.int(*wx, "high"),
            f.int(*wx, "mid"),
            f.int(*wx, "low"),
        )
        filters = []
        for d in ("filters", "core_filters", "ops_filters"):
            if not f.has(*sx, d):
                continue
            for i in f.entries(*sx, d, count="nr_filters"):
                fx = sx + (d, i)
                ftype = f.str(*fx, "type").strip()
                kw = {}
                if ftype == "addr":
                    kw = {
                        "addr_start": f.int(*fx, "addr_start"),
                        "addr_end": f.int(*fx, "addr_end"),
                    }
                elif ftype == "target":
                    key = "damon_target_idx" if f.has(*fx, "damon_target_idx") else "target_idx"
                    kw = {"target_idx": f.int(*fx, key)}
                elif ftype == "memcg":
                    kw = {"memcg_path": f.str(*fx, "memcg_path").strip()}
                elif ftype == "hugepage_size":
                    kw = {"sz_min": f.int(*fx, "min"), "sz_max": f.int(*fx, "max")}
                allow = f.bool(*fx, "allow") if f.has(*fx, "allow") else False
                filters.append(Filter(ftype, f.bool(*fx, "matching"), allow, **kw))
        filters = [x for x in filters if x.core] + [x for x in filters if not x.core]
        tnid = f.int(*sx, "target_nid") if f.has(*sx, "target_nid") else -1
        schemes.append(
            Scheme(
                f.str(*sx, "action").strip(),
                pattern,
                quota,
                wmarks,
                tuple(filters),
                f.int(*sx, "apply_interval_us"),
                tnid,
                name=f"kdamond {k} context {c} scheme {s}",
            )
        )
    return SchemeFile(schemes, mon, f"sysfs dump {path} (kdamond {k}, context {c})", [])


# ---------------------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------------------
def load_schemes(
    arg: str | os.PathLike, *, sample_us: int | None = None, aggr_us: int | None = None
) -> SchemeFile:
    """Read one ``--scheme`` argument: a preset (``reclaim``, ``lru_sort``, with
    ``:KEY=VALUE,...`` overrides), or a file (``FILE`` or ``FILE#K/C``) in damo JSON or
    sysfs-dump form.  ``sample_us``/``aggr_us``: the intervals of the history the
    schemes will run on (for presets' thresholds and for damo values in percent or
    time units when the file gives no intervals)."""
    text_arg = os.fspath(arg)
    name = text_arg.partition(":")[0]
    if name in PRESETS and not Path(text_arg).exists():
        return preset(text_arg, sample_us=sample_us, aggr_us=aggr_us)
    select = None
    path_s = text_arg
    m = re.fullmatch(r"(.*)#(\d+)/(\d+)", text_arg)
    if m and not Path(text_arg).exists():
        path_s, select = m[1], (int(m[2]), int(m[3]))
    p = Path(path_s)
    if not p.exists():
        raise InputError(
            f"scheme {text_arg}: no such file, and not a preset ({', '.join(PRESETS)})"
        )
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise InputError(f"{p}: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TraceFormatError(
            p, "not a text file (neither damo JSON nor a sysfs dump)", offset=e.start
        ) from None
    head = text.lstrip()[:1]
    if head in ("{", "["):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise TraceFormatError(p, f"invalid JSON: {e.msg}", line=e.lineno) from None
        f = _damo_json(doc, str(p), select, sample_us, aggr_us)
        f.path = p
        return f
    if text.lstrip().startswith(SYSFS_PREFIX):
        f = _sysfs(text, str(p), select)
        f.path = p
        return f
    first = text.lstrip().splitlines()[0][:60] if text.strip() else "(empty)"
    raise TraceFormatError(
        p,
        "unknown scheme file format: neither damo JSON nor a DAMON "
        f"sysfs dump (`grep -r . {SYSFS_PREFIX}N`); it starts with "
        f"{first!r}",
        line=1,
    )


def schemes_of(files: list[SchemeFile], free_mem) -> list[Scheme]:
    """Every scheme of the scheme files, for a run with the free-memory series
    ``free_mem`` (or None); refuses no scheme at all, and watermarks without a series."""
    all_schemes = [s for f in files for s in f.schemes]
    if not all_schemes:
        raise ConfigError("no schemes")
    for j, s in enumerate(all_schemes):
        if s.wmarks.metric != "none" and free_mem is None:

            def msg(series):
                return (
                    f"scheme {j}{f' ({s.name})' if s.name else ''} has "
                    f"{s.wmarks.metric} watermarks, which read the machine's free "
                    f"memory: give its series ({series}), or drop them (a preset: "
                    "PRESET:wmarks=none)"
                )

            raise ConfigError(
                msg("free_mem: a CSV file of time_ns,permil lines"),
                cli_message=msg("--free-mem FILE of time_ns,permil lines"),
            )
    return all_schemes
