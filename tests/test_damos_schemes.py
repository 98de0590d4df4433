"""Scheme files: damo JSON (kdamonds layout, one scheme, a list), sysfs dumps, presets."""

from __future__ import annotations

import json

import pytest

from tracedamon.engine.damos.scheme import UINT_MAX, ULONG_MAX
from tracedamon.errors import ConfigError, InputError, TraceFormatError
from tracedamon.pipeline.schemes import load_schemes, size_bytes, time_ns

DUMP_HEAD = "/sys/kernel/mm/damon/admin/kdamonds/"


def test_units():
    assert size_bytes("128.000 MiB") == 128 << 20
    assert size_bytes("4K") == 4096 and size_bytes("4,096") == 4096
    assert size_bytes("max") == ULONG_MAX and size_bytes(7) == 7
    assert time_ns("1 m 30 s", "us") == 90 * 10**9
    assert time_ns("500 ms", "us") == 500 * 10**6
    assert time_ns(5, "ms") == 5 * 10**6
    with pytest.raises(ConfigError, match="not a size"):
        size_bytes("12 parsecs")
    with pytest.raises(ConfigError, match="unknown time unit"):
        time_ns("3 fortnights", "us")


def test_damo_single_scheme_percent_and_time_units(tmp_path):
    # damo's defaults units: nr_accesses in percent of aggr/sample, age in microseconds
    p = tmp_path / "s.json"
    p.write_text(
        json.dumps(
            {
                "action": "pageout",
                "access_pattern": {
                    "sz_bytes": {"min": "4 KiB", "max": "max"},
                    "nr_accesses": {"min": "0 %", "max": "25 %"},
                    "age": {"min": "2 m", "max": "max"},
                },
                "quotas": {
                    "time_ms": "10 ms",
                    "sz_bytes": "256 MiB",
                    "reset_interval_ms": "1 s",
                    "weights": {
                        "sz_permil": "0 %",
                        "nr_accesses_permil": "50 %",
                        "age_permil": "100 %",
                    },
                },
                "watermarks": {
                    "metric": "free_mem_rate",
                    "interval_us": "5 s",
                    "high_permil": "50 %",
                    "mid_permil": "40 %",
                    "low_permil": "20 %",
                },
                "filters": [
                    {
                        "filter_type": "addr",
                        "matching": True,
                        "filter_pass": True,
                        "address_range": {"start": "4,096", "end": "1 MiB"},
                    }
                ],
            }
        )
    )
    f = load_schemes(p, sample_us=5000, aggr_us=100_000)  # max_nr_accesses 20
    s = f.schemes[0]
    assert (s.pattern.min_nr_accesses, s.pattern.max_nr_accesses) == (0, 5)
    assert s.pattern.min_age_region == 1200 and s.pattern.max_age_region == UINT_MAX
    assert (s.quota.ms, s.quota.sz, s.quota.reset_interval_ms) == (10, 256 << 20, 1000)
    assert (s.quota.weight_sz, s.quota.weight_nr_accesses, s.quota.weight_age) == (0, 500, 1000)
    assert (s.wmarks.high, s.wmarks.mid, s.wmarks.low, s.wmarks.interval_us) == (
        500,
        400,
        200,
        5_000_000,
    )
    f0 = s.filters[0]
    assert (f0.type, f0.allow, f0.addr_start, f0.addr_end) == ("addr", True, 4096, 1 << 20)
    assert f.monitoring is None and any("25 %" in n for n in f.notes)
    with pytest.raises(ConfigError, match="intervals"):
        load_schemes(p)  # percent needs intervals


def test_damo_list_and_defaults(tmp_path):
    p = tmp_path / "l.json"
    p.write_text(json.dumps([{"action": "stat"}, {"action": "cold"}]))
    f = load_schemes(p)
    assert [s.action for s in f.schemes] == ["stat", "cold"]
    # damo's defaults: every region, no quota, reset interval "max"
    assert f.schemes[0].pattern.max_sz_region == ULONG_MAX
    assert f.schemes[0].quota.reset_interval_ms == ULONG_MAX


def test_damo_kdamonds_choose_context(tmp_path):
    ctx = {
        "ops": "vaddr",
        "targets": [{"pid": 42, "regions": []}],
        "intervals": {"sample_us": "10 ms", "aggr_us": "200 ms", "ops_update_us": "1 s"},
        "nr_regions": {"min": "10", "max": "1,000"},
        "schemes": [{"action": "pageout"}],
    }
    p = tmp_path / "k.json"
    p.write_text(json.dumps({"kdamonds": [{"contexts": [ctx, dict(ctx, ops="paddr")]}]}))
    with pytest.raises(ConfigError, match="2 contexts have schemes.*#K/C"):
        load_schemes(p)
    f = load_schemes(f"{p}#0/1")
    assert f.monitoring["ops"] == "paddr" and f.monitoring["aggr_us"] == 200_000
    assert load_schemes(f"{p}#0/0").monitoring["targets"] == [{"pid": 42, "regions": []}]
    with pytest.raises(ConfigError, match="no kdamond 3"):
        load_schemes(f"{p}#3/0")


def test_damo_unknown_key_is_refused(tmp_path):
    p = tmp_path / "u.json"
    p.write_text(json.dumps({"action": "pageout", "quota": {}}))
    with pytest.raises(ConfigError, match="unknown key.*quota"):
        load_schemes(p)


def _dump(lines):
    return "\n".join(DUMP_HEAD + x for x in lines) + "\n"


MINI = [
    "0/contexts/nr_contexts:1",
    "0/contexts/0/operations:vaddr",
    "0/contexts/0/monitoring_attrs/intervals/sample_us:5000",
    "0/contexts/0/monitoring_attrs/intervals/aggr_us:100000",
    "0/contexts/0/monitoring_attrs/intervals/update_us:1000000",
    "0/contexts/0/monitoring_attrs/nr_regions/min:10",
    "0/contexts/0/monitoring_attrs/nr_regions/max:1000",
    "0/contexts/0/schemes/nr_schemes:1",
    "0/contexts/0/schemes/0/action:migrate_hot",
    "0/contexts/0/schemes/0/target_nid:1",
    "0/contexts/0/schemes/0/apply_interval_us:0",
    "0/contexts/0/schemes/0/access_pattern/sz/min:4096",
    "0/contexts/0/schemes/0/access_pattern/sz/max:18446744073709551615",
    "0/contexts/0/schemes/0/access_pattern/nr_accesses/min:10",
    "0/contexts/0/schemes/0/access_pattern/nr_accesses/max:20",
    "0/contexts/0/schemes/0/access_pattern/age/min:0",
    "0/contexts/0/schemes/0/access_pattern/age/max:4294967295",
    "0/contexts/0/schemes/0/quotas/ms:5",
    "0/contexts/0/schemes/0/quotas/bytes:0",
    "0/contexts/0/schemes/0/quotas/reset_interval_ms:1000",
    "0/contexts/0/schemes/0/quotas/weights/sz_permil:0",
    "0/contexts/0/schemes/0/quotas/weights/nr_accesses_permil:1",
    "0/contexts/0/schemes/0/quotas/weights/age_permil:1",
    "0/contexts/0/schemes/0/quotas/goals/nr_goals:1",
    "0/contexts/0/schemes/0/quotas/goals/0/target_metric:user_input",
    "0/contexts/0/schemes/0/quotas/goals/0/target_value:10000",
    "0/contexts/0/schemes/0/quotas/goals/0/current_value:5000",
    "0/contexts/0/schemes/0/watermarks/metric:none",
    "0/contexts/0/schemes/0/watermarks/interval_us:0",
    "0/contexts/0/schemes/0/watermarks/high:0",
    "0/contexts/0/schemes/0/watermarks/mid:0",
    "0/contexts/0/schemes/0/watermarks/low:0",
    "0/contexts/0/schemes/0/core_filters/nr_filters:1",
    "0/contexts/0/schemes/0/core_filters/0/type:target",
    "0/contexts/0/schemes/0/core_filters/0/matching:N",
    "0/contexts/0/schemes/0/core_filters/0/allow:N",
    "0/contexts/0/schemes/0/core_filters/0/damon_target_idx:1",
    "0/contexts/0/schemes/0/ops_filters/nr_filters:0",
]


def test_sysfs_dump(tmp_path):
    p = tmp_path / "d.txt"
    p.write_text(_dump(MINI))
    f = load_schemes(p)
    s = f.schemes[0]
    assert s.action == "migrate_hot" and s.target_nid == 1
    assert (s.pattern.min_nr_accesses, s.pattern.max_nr_accesses) == (10, 20)
    assert s.quota.goals[0].current_value == 5000
    flt = s.filters[0]
    assert (flt.type, flt.matching, flt.allow, flt.target_idx) == ("target", False, False, 1)
    assert f.monitoring["ops"] == "vaddr" and f.monitoring["sample_us"] == 5000


@pytest.mark.parametrize(
    "edit,exc,match",
    [
        (lambda L: L[:8] + L[9:], TraceFormatError, "missing .*action"),
        (
            lambda L: L + ["0/contexts/0/schemes/0/quotas/ms:fast"],
            TraceFormatError,
            "not an integer",
        ),
        (
            lambda L: [x.replace("matching:N", "matching:maybe") for x in L],
            TraceFormatError,
            "not Y or N",
        ),
        (lambda L: L + ["garbage"], TraceFormatError, "not a DAMON sysfs line"),
    ],
)
def test_sysfs_dump_errors(tmp_path, edit, exc, match):
    p = tmp_path / "d.txt"
    lines = MINI[:]
    p.write_text(_dump(edit(lines)).replace(DUMP_HEAD + "garbage", "garbage"))
    with pytest.raises(exc, match=match) as ei:
        load_schemes(p)
    assert str(p) in str(ei.value)


def test_presets():
    r = load_schemes("reclaim")
    s = r.schemes[0]
    # DAMON_RECLAIM defaults: sample 5 ms, aggr 100 ms, min_age 120 s = 1200 aggregations
    assert s.action == "pageout" and s.pattern.min_age_region == 1200
    assert (s.pattern.min_nr_accesses, s.pattern.max_nr_accesses) == (0, 0)
    assert (s.quota.ms, s.quota.sz, s.quota.reset_interval_ms) == (10, 128 << 20, 1000)
    assert (s.quota.weight_nr_accesses, s.quota.weight_age) == (0, 1)
    assert (s.wmarks.metric, s.wmarks.high, s.wmarks.mid, s.wmarks.low) == (
        "free_mem_rate",
        500,
        400,
        200,
    )
    o = load_schemes("reclaim:min_age=30s,quota_sz=256M,skip_anon=Y", aggr_us=5_000_000)
    s = o.schemes[0]
    assert s.pattern.min_age_region == 6 and s.quota.sz == 256 << 20
    assert s.filters[0].type == "anon" and not s.filters[0].allow
    lru = load_schemes("lru_sort")
    hot, cold = lru.schemes
    # hot_thres = max_nr_accesses (20) * 500 / 1000; quota_ms halved per scheme
    assert (hot.action, hot.pattern.min_nr_accesses, hot.quota.ms) == ("lru_prio", 10, 5)
    assert (cold.action, cold.pattern.min_age_region, cold.quota.ms) == ("lru_deprio", 1200, 5)
    assert (hot.quota.weight_nr_accesses, hot.quota.weight_age) == (1, 1)
    with pytest.raises(ConfigError, match="unknown parameter 'quota'"):
        load_schemes("reclaim:quota=1")
    with pytest.raises(ConfigError, match="not KEY=VALUE"):
        load_schemes("reclaim:fast")


def test_missing_file():
    with pytest.raises(InputError, match="no such file, and not a preset"):
        load_schemes("/nonexistent/scheme.json")
