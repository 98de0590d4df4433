"""The kernel modules' presets (reclaim.c, lru_sort.c, modules-common;
``damos-spec.md`` §8): ``reclaim`` and ``lru_sort`` with their defaults, overridable with
the modules' parameter names."""

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
from ...units import PAGE_SIZE
from .file import SchemeFile
from .units import as_bool, number, size_bytes, time_ns, to_unit

PRESETS = ("reclaim", "lru_sort")

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
            p[k] = to_unit(time_ns(v, unit, what), unit)
        elif kind == "size":
            p[k] = size_bytes(v, what)
        elif kind == "bool":
            p[k] = as_bool(v, what)
        elif kind == "word":
            if v not in ("free_mem_rate", "none"):
                raise ConfigError(f"{what}: free_mem_rate or none, not {v!r}")
            p[k] = v
        else:
            n = number(v, what)
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
