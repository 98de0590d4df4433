"""The mutants of tools/mutants.py: each one small, plausible bug in tracedamon's code, with
the test files that should catch it when run alone. Each mutant names its file and the exact
text it replaces (``old``, found once in that file) and the bug text (``new``); whoever moves
or reformats that code updates the snippet here (`python tools/mutants.py check` says which
are no longer found).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# the test files a mutant of each area is run against alone
CORE_TESTS = (
    "tests/test_engine.py",
    "tests/test_engine_reference.py",
    "tests/test_reference_kernel_cases.py",
    "tests/test_engine_limits.py",
    "tests/test_engine_stream.py",
)
FIXED_TESTS = (
    "tests/test_engine_fixed.py",
    "tests/test_engine_reference.py",
    "tests/test_engine_limits.py",
)
PERF_TESTS = (
    "tests/test_perf_data_synth.py",
    "tests/test_perf_data_synth_records.py",
    "tests/test_perf_data_live.py",
    "tests/test_sideband_bulk.py",
    "tests/test_writer_vs_perf.py",
    "tests/test_writer_vs_perf_native.py",
    "tests/test_perf_data.py",
    "tests/test_perf_fixed_layout.py",
    "tests/test_perf_read_layout.py",
    "tests/test_perf_script_via_perf.py",
)
DATA_SRC_TESTS = (
    "tests/test_data_src_bits.py",
    "tests/test_data_src.py",
    "tests/test_perf_script.py",
)
COMPARE_TESTS = (
    "tests/test_compare_exact.py",
    "tests/test_compare.py",
    "tests/test_compare_sparse.py",
)
DAMO_TESTS = (
    "tests/test_damo_export.py",
    "tests/test_damo_record.py",
    "tests/test_damo_export_targets.py",
)


@dataclass(frozen=True)
class Mutant:
    id: str
    file: str
    old: str
    new: str
    why: str
    tests: tuple[str, ...]

    def line(self, root: Path = ROOT) -> int:
        """The line of the first character the edit changes (-1: snippet not found)."""
        text = (root / self.file).read_text()
        if self.old not in text:
            return -1
        k = 0
        while k < min(len(self.old), len(self.new)) and self.old[k] == self.new[k]:
            k += 1
        return text[: text.index(self.old) + k].count("\n") + 1


CORE = "tracedamon/engine/core.py"
PADDR = "tracedamon/engine/ops/paddr.py"
FIXED = "tracedamon/engine/fixed.py"
SKERNELS = "tracedamon/ingest/perf/sample_kernels.py"
READVALS = "tracedamon/ingest/perf/read_values.py"
SBKERNELS = "tracedamon/ingest/perf/sideband_kernels.py"
MERGE = "tracedamon/engine/merge.py"
SPLIT = "tracedamon/engine/split.py"
ORDERING = "tracedamon/ingest/perf/ordering.py"
SIDEBAND = "tracedamon/ingest/perf/sideband.py"
DSRC = "tracedamon/ingest/data_src.py"
SWEEP = "tracedamon/export/compare_sweep.py"
CMETRICS = "tracedamon/export/compare_metrics.py"
OVL = "tracedamon/export/overlay.py"
DAMO = "tracedamon/export/damo_export.py"

MUTANTS: tuple[Mutant, ...] = (
    # ---- engine core (spec §6-§9, §13) ------------------------------------------------
    Mutant(
        "core-merge-thres",
        MERGE,
        "if d2 <= thres and sl + sr <= lim[t]:",
        "if d2 < thres and sl + sr <= lim[t]:",
        "merge when |nr_l - nr_r| < thres instead of <= (kernel: <=)",
        CORE_TESTS,
    ),
    Mutant(
        "core-merge-size",
        MERGE,
        "if d2 <= thres and sl + sr <= lim[t]:",
        "if d2 <= thres and sl + sr < lim[t]:",
        "merged size must stay below the limit instead of at most it",
        CORE_TESTS,
    ),
    Mutant(
        "core-escalate",
        MERGE,
        "thres // 2 < max_thres",
        "thres < max_thres",
        "escalation test on the doubled threshold instead of the pass's own",
        CORE_TESTS,
    ),
    Mutant(
        "core-age-reset",
        MERGE,
        "                if d > thres:\n                    age[i] = 0",
        "                if d >= thres:\n                    age[i] = 0",
        "age reset when the change equals the threshold (kernel: strictly greater)",
        CORE_TESTS,
    ),
    Mutant(
        "core-age-weight",
        MERGE,
        "age[prev] = (age[prev] * sl + age[i] * sr) // (sl + sr)",
        "age[prev] = (age[prev] * sr + age[i] * sl) // (sl + sr)",
        "merged age weighted by the other region's size",
        CORE_TESTS,
    ),
    Mutant(
        "core-split-guard",
        SPLIT,
        "while j < nr_subs - 1 and sz > 2 * minsz:",
        "while j < nr_subs - 1 and sz >= 2 * minsz:",
        "split regions of exactly two minimum sizes (kernel: strictly greater)",
        CORE_TESTS,
    ),
    # _split_regions' draw (split_some_regions, mainline-2026, has its own)
    Mutant(
        "core-split-draw",
        SPLIT,
        "k = 1 + draw(st, 9, fix_rand32, inj, injpos)\n"
        "                sub = (k * sz // 10) // minsz * minsz\n"
        "                if maxsz > 0 and sub > maxsz:\n"
        "                    sub = maxsz\n"
        "                j += 1",
        "k = 1 + draw(st, 10, fix_rand32, inj, injpos)\n"
        "                sub = (k * sz // 10) // minsz * minsz\n"
        "                if maxsz > 0 and sub > maxsz:\n"
        "                    sub = maxsz\n"
        "                j += 1",
        "split ratio drawn from 1..10 instead of damon_rand(1, 10) = 1..9",
        CORE_TESTS,
    ),
    Mutant(
        "core-bp-last",
        CORE,
        'a["bp"] += -k * (a["last"] * 10000 // ln) + 10000 * (a["nr"] - nr0)',
        'a["bp"] += -k * (a["nr"] * 10000 // ln) + 10000 * (a["nr"] - nr0)',
        "moving sum decays by the current count instead of the last aggregation's",
        CORE_TESTS,
    ),
    Mutant(
        "core-apply-min-ceil",
        CORE,
        "cnt = np.maximum(1, (size + lim - 1) // lim)",
        "cnt = np.maximum(1, size // lim)",
        "apply_min_nr_regions: floor instead of ceiling of size / limit",
        CORE_TESTS,
    ),
    Mutant(
        "core-tune-interval",
        CORE,
        "                ck.s = max(self.sample_us, 1)\n"
        "                ck.next_ops = ck.psi + cfg.update_us // ck.s",
        "                ck.next_ops = ck.psi + cfg.update_us // ck.s",
        "after intervals tuning, next_aggr/next_ops computed with the old sample "
        "interval (the refresh of s forgotten)",
        CORE_TESTS,
    ),
    Mutant(
        "core-last-interval",
        CORE,
        "last_iv_start = ck.tbase + (local_aggr - ck.psibase - 1) * ck.S",
        "last_iv_start = ck.tbase + (local_aggr - ck.psibase) * ck.S",
        "an aggregation counted complete only when a sample lies past its end "
        "(off by one interval)",
        CORE_TESTS,
    ),
    Mutant(
        "core-pa-cache",
        PADDR,
        "cache_across_targets=not mon.cfg.fix_pa_cache,",
        "cache_across_targets=True,",
        "paddr's global last-verdict cache kept even with fix_pa_cache",
        CORE_TESTS,
    ),
    Mutant(
        "core-nr-rescale",
        CORE,
        "nr2 = (nr * 10000 // old_max) * new_max // 10000",
        "nr2 = nr * new_max // old_max",
        "nr_accesses rescaled without the kernel's rounding through bp",
        CORE_TESTS,
    ),
    # ---- fixed-granularity engine -----------------------------------------------------
    Mutant(
        "fixed-age-reset",
        FIXED,
        "reset = np.abs(nr_a - last_a) > thres",
        "reset = np.abs(nr_a - last_a) >= thres",
        "age reset when the change equals the threshold",
        FIXED_TESTS,
    ),
    Mutant(
        "fixed-age-carry",
        FIXED,
        'age_a = sl["age_val"][act] + (snap - 1 - sl["age_at"][act])',
        'age_a = sl["age_val"][act] + (snap - sl["age_at"][act])',
        "closed-form age of an explicit slot off by one aggregation",
        FIXED_TESTS,
    ),
    Mutant(
        "fixed-birth",
        FIXED,
        "new = _overlay(old, sp, snap - 1)",
        "new = _overlay(old, sp, snap)",
        "regions added by an ops update born one aggregation late",
        FIXED_TESTS,
    ),
    Mutant(
        "fixed-run-end",
        FIXED,
        "        if k >= run_len[base]:\n            continue",
        "        if k > run_len[base]:\n            continue",
        "a sample just past a run's end is counted to the next run's first region",
        FIXED_TESTS,
    ),
    Mutant(
        "fixed-last-clear",
        FIXED,
        '        sl["last"][P] = 0\n',
        "",
        "last_nr_accesses of regions idle this aggregation not cleared",
        FIXED_TESTS,
    ),
    # ---- perf.data decoder --------------------------------------------------------------
    Mutant(
        "perf-fixed-order",
        SKERNELS,
        "(S_PERIOD, C_PERIOD),\n    (S_WEIGHT | S_WEIGHT_STRUCT, C_WEIGHT),\n"
        "    (S_DATA_SRC, C_DATA_SRC),",
        "(S_PERIOD, C_PERIOD),\n    (S_DATA_SRC, C_DATA_SRC),\n"
        "    (S_WEIGHT | S_WEIGHT_STRUCT, C_WEIGHT),",
        "fixed-size sample layout: DATA_SRC read before WEIGHT (kernel: WEIGHT first)",
        PERF_TESTS,
    ),
    Mutant(
        "perf-order-cpu",
        SKERNELS,
        "(S_STREAM_ID, C_STREAM_ID),\n    (S_CPU, C_CPU),\n    (S_PERIOD, C_PERIOD),",
        "(S_STREAM_ID, C_STREAM_ID),\n    (S_PERIOD, C_PERIOD),\n    (S_CPU, C_CPU),",
        "fixed-size sample layout: PERIOD read before CPU",
        PERF_TESTS,
    ),
    Mutant(
        "perf-stack-dyn",
        SKERNELS,
        "p += np.int64(sz) + 8",
        "p += np.int64(sz)",
        "STACK_USER: the dyn_size word after the stack bytes not skipped",
        PERF_TESTS,
    ),
    Mutant(
        "perf-read-lost",
        READVALS,
        "per = 1 + ((rf & F_ID) != 0) + ((rf & F_LOST) != 0)",
        "per = 1 + ((rf & F_ID) != 0)",
        "READ: the PERF_FORMAT_LOST word of each value not counted",
        PERF_TESTS,
    ),
    Mutant(
        "perf-raw-size",
        SKERNELS,
        "out[i, C_RAW_LEN] = sz\n            p += 4 + sz",
        "out[i, C_RAW_LEN] = sz\n            p += sz",
        "RAW: the u32 size word itself not skipped",
        PERF_TESTS,
    ),
    Mutant(
        "perf-rounds",
        ORDERING,
        "closed = b.rounds <= nrounds - 2",
        "closed = b.rounds <= nrounds - 1",
        "FINISHED_ROUND: samples held back for one round instead of two",
        PERF_TESTS,
    ),
    Mutant(
        "perf-stable-sort",
        ORDERING,
        'self.parts = [m.take(np.argsort(m.times, kind="stable"))]',
        "self.parts = [m.take(np.argsort(m.times))]",
        "re-ordering with an unstable sort: equal times lose file order",
        PERF_TESTS,
    ),
    Mutant(
        "perf-mmap2-prot",
        SBKERNELS,
        "f32[i, 4] = u32_at(buf, body + 56)",
        "f32[i, 4] = u32_at(buf, body + 60)",
        "MMAP2 (bulk decoder): prot read from the flags word",
        PERF_TESTS,
    ),
    Mutant(
        "perf-mmap2-buildid",
        SIDEBAND,
        "build_id = body[36 : 36 + min(bsz, 20)].hex()",
        "build_id = body[33 : 33 + min(bsz, 20)].hex()",
        "MMAP2 (per-record decoder): build id read right after its size byte, over "
        "the reserved bytes",
        PERF_TESTS,
    ),
    # ---- data_src ---------------------------------------------------------------------
    Mutant(
        "dsrc-snoop-width",
        DSRC,
        "_SNOOP = (19, 5)",
        "_SNOOP = (19, 4)",
        "mem_snoop 4 bits wide (loses HitM)",
        DATA_SRC_TESTS,
    ),
    Mutant(
        "dsrc-tlb-shift",
        DSRC,
        "_DTLB = (26, 7)",
        "_DTLB = (27, 7)",
        "mem_dtlb shifted by one bit",
        DATA_SRC_TESTS,
    ),
    Mutant(
        "dsrc-lvlnum-width",
        DSRC,
        "_LVLNUM = (33, 4)",
        "_LVLNUM = (33, 3)",
        "mem_lvl_num 3 bits wide",
        DATA_SRC_TESTS,
    ),
    # ---- compare ----------------------------------------------------------------------
    Mutant(
        "cmp-hot-boundary",
        OVL,
        "return (v > 0) & (v >= theta * vmax * (1 - HOT_RTOL))",
        "return (v > 0) & (v > theta * vmax)",
        "hot set excludes its boundary (>= became >, the tolerance dropped)",
        COMPARE_TESTS,
    ),
    Mutant(
        "cmp-hot-rtol",
        OVL,
        "(v >= theta * vmax * (1 - HOT_RTOL))",
        "(v >= theta * vmax * (1 + HOT_RTOL))",
        "hot-set tolerance applied the wrong way (0.3 x 10 no longer admits 3)",
        COMPARE_TESTS,
    ),
    Mutant(
        "cmp-time-weight",
        SWEEP,
        "self.J[c0:c1] += v * dt",
        "self.J[c0:c1] += v",
        "joint distribution weighted by bytes only, not bytes x ns",
        COMPARE_TESTS,
    ),
    Mutant(
        "cmp-age-weight",
        SWEEP,
        "AG.add([uc], w * dt)",
        "AG.add([uc], w)",
        "age agreement weighted by bytes only, not bytes x ns",
        COMPARE_TESTS,
    ),
    Mutant(
        "cmp-prf-sides",
        CMETRICS,
        "prf(hot_set(y, th, mxb), hot_set(x, th, mxa), w)",
        "prf(hot_set(x, th, mxa), hot_set(y, th, mxb), w)",
        "hot-set precision and recall taken against the wrong side",
        COMPARE_TESTS,
    ),
    Mutant(
        "cmp-midrank",
        OVL,
        "r[o] = (below + gw / 2.0)[gid]",
        "r[o] = (below + gw)[gid]",
        "weighted ranks: upper rank of a tie group instead of its mid-rank",
        COMPARE_TESTS,
    ),
    # ---- damo export ------------------------------------------------------------------
    Mutant(
        "damo-field-order",
        DAMO,
        "flat[2::4] = nr[i : i + k].tolist()\n        flat[3::4] = age[i : i + k].tolist()",
        "flat[2::4] = age[i : i + k].tolist()\n        flat[3::4] = nr[i : i + k].tolist()",
        "region fields in the wrong order: nr_accesses and age swapped",
        DAMO_TESTS,
    ),
    Mutant(
        "damo-time-unit",
        DAMO,
        'f\'{{"start_time":"{int(t0s[s])}","end_time":"{int(t1s[s])}",\'',
        'f\'{{"start_time":"{int(t0s[s]) // 1000}","end_time":"{int(t1s[s]) // 1000}",\'',
        "snapshot times written in us instead of ns",
        DAMO_TESTS,
    ),
    Mutant(
        "damo-target-id",
        DAMO,
        '"target_id": int(key)',
        '"target_id": ki',
        "target id is the record's index instead of the pid / target",
        DAMO_TESTS,
    ),
)

BY_ID = {m.id: m for m in MUTANTS}
