"""`tracedamon sweep`, in-process: every row against `tracedamon replay` + `tracedamon
compare` run alone, refused configurations, bad sources, resume, seeds, grid parsing.

The oracle of a row is the command line itself (``tracedamon.cli.main``: the same code
as the installed command, without a process start-up per run): its region history
file and its metrics JSON.  Dask-distributed runs are in test_sweep_dask.py.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import tracedamon
from tracedamon.cli import main
from tracedamon.errors import ConfigError, InputError
from tracedamon.pipeline.sweep import build_table
from tracedamon.pipeline.sweep.grid import configurations, parse_grid
from tracedamon.pipeline.sweep.task import RUN_COLUMNS

from conftest import SAMPLES, need_corpus

RUN1_AREAS = [
    ("cold", 0x7F89FA000000, 0x7F89FE000000),
    ("hot", 0x7F89FE000000, 0x7F8A00000000),
    ("cold", 0x7F8A00000000, 0x7F8A0A000000),
    ("warm", 0x7F8A0A000000, 0x7F8A12000000),
    ("cold", 0x7F8A12000000, 0x7F8A1A000000),
]


@pytest.fixture(scope="module")
def run1(tmp_path_factory):
    """damon-paddr-run1's page-fault recording (16,383 real samples of pid 7727) with its
    pagemap snapshots, in one trace directory."""
    d = need_corpus("damon-paddr-run1", "paddr_run1")
    out = tmp_path_factory.mktemp("sweep") / "run1.td"
    tracedamon.ingest([d / "perf_pagefaults.data", d], out)
    return out


@pytest.fixture(scope="module")
def hotcold(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "hotcold.td"
    tracedamon.ingest(SAMPLES / "hotcold.perf.data", out)
    return out


def _cli(*argv):
    code = main([str(a) for a in argv])
    assert code == 0, argv


def _flat(d, prefix):
    """The metrics JSON's numeric leaves, flattened as the sweep names them."""
    import re

    out = {}
    for k, v in d.items():
        name = f"{prefix}_{re.sub(r'[^0-9A-Za-z]+', '_', str(k)).strip('_')}"
        if isinstance(v, dict):
            out.update(_flat(v, name))
        elif v is None or isinstance(v, (bool, int, float)):
            out[name] = v
    return out


def _same(a, b):
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or (isinstance(b, float) and math.isnan(b))
    return a == b


def test_every_row_equals_replay_and_compare_run_alone(run1, tmp_path):
    """16 configurations on a real corpus trace (12 valid, 4 that the kernel would reject):
    every valid row's kept history is the file `tracedamon replay` writes for that
    configuration, table and replay metadata alike, and every ref_* metric equals what
    `tracedamon compare` writes; refused rows carry the kernel's rule."""
    ref = tmp_path / "ref.parquet"
    # the reference: a replay at a five times finer sampling interval
    _cli("replay", run1, "--start", "auto", "--sample-us", 1000, "-o", ref, "-q")
    keep = tmp_path / "hist"
    out = tmp_path / "sweep.parquet"
    _cli(
        "sweep",
        run1,
        "--start",
        "auto",
        "--grid",
        "sample-us=5000,20000",
        "--grid",
        "min-nr-regions=10,30",
        "--grid",
        "max-nr-regions=20,1000",
        "--grid",
        "access=perf,abit",
        "--reference",
        ref,
        "--keep-histories",
        keep,
        "--workers",
        1,
        "-o",
        out,
        "-q",
    )
    df = pq.read_table(out).to_pandas()
    assert len(df) == 16
    bad = df[(df.min_nr_regions == 30) & (df.max_nr_regions == 20)]
    assert len(bad) == 4
    assert bad.error.str.contains(
        r"min_nr_regions \(30\) must not exceed max_nr_regions "
        r"\(20\)"
    ).all()
    assert bad.checks_per_s.isna().all() and bad.ref_heat_spearman.isna().all()
    good = df[df.error.isna()]
    assert len(good) == 12
    for r in good.to_dict("records"):
        alone = tmp_path / f"alone-{r['config_id']}.parquet"
        _cli(
            "replay",
            run1,
            "--start",
            "auto",
            "--sample-us",
            r["sample_us"],
            "--min-nr-regions",
            r["min_nr_regions"],
            "--max-nr-regions",
            r["max_nr_regions"],
            "--access",
            r["access"],
            "-o",
            alone,
            "-q",
        )
        # the same file, byte for byte: table, configuration, provenance
        assert Path(r["history"]).read_bytes() == alone.read_bytes(), r["config_id"]
        single = pq.read_table(alone)
        ms = json.loads(single.schema.metadata[b"tracedamon"])["replay"]
        m = tmp_path / f"alone-{r['config_id']}.json"
        _cli("compare", ref, alone, "-o", m, "-q")
        # compare -o also describes its cells grid (not a metric; a sweep draws none) and
        # the file's marker
        want = {
            k: v
            for k, v in _flat(json.loads(m.read_text()), "ref").items()
            if not k.startswith(("ref_grid_", "ref_tracedamon_"))
        }
        assert want, "compare gave no metrics"
        for k, v in want.items():
            assert _same(r[k], v), (r["config_id"], k, r[k], v)
        got = {c for c in df.columns if c.startswith("ref_") and not c.startswith("ref_grid_")}
        assert got == set(want)
        # cost figures from the history itself
        per = single.column("snapshot").to_numpy()
        counts = np.bincount(per)[np.unique(per)]
        assert r["regions_mean"] == pytest.approx(counts.mean())
        assert r["regions_max"] == counts.max()
        assert r["checks_per_s"] == pytest.approx(counts.mean() * 1e6 / r["sample_us"])
        assert r["samples_used"] == ms["samples_used"]


def test_truth_columns_equal_compare_truth(run1, tmp_path):
    truth = tmp_path / "truth.csv"
    truth.write_text(
        "start,end,label\n" + "".join(f"{s:#x},{e:#x},{lab}\n" for lab, s, e in RUN1_AREAS)
    )
    keep = tmp_path / "hist"
    df = tracedamon.sweep(
        [run1],
        ["sample-us=5000,10000"],
        fixed={"start": "auto"},
        truth=truth,
        keep_histories=keep,
        workers=1,
    )
    assert len(df) == 2 and df.error.isna().all()
    for r in df.to_dict("records"):
        m = tmp_path / "m.json"
        _cli("compare", r["history"], "--truth", truth, "-o", m, "-q", "--force")
        want = _flat(json.loads(m.read_text())["truth"]["a"], "truth")
        assert want and all(_same(r[k], v) for k, v in want.items())


def test_in_memory_replay_equals_trace_directory_for_every_ops(run1, hotcold):
    """What each worker does (replay from the samples columns held in memory) gives the
    history the trace-directory path gives, for the configurations a sweep varies."""
    from tracedamon.pipeline.replay import SAMPLE_COLUMNS

    for td, kws in (
        (
            hotcold,
            [
                dict(ops="vaddr", start_ns="auto", access="abit"),
                dict(ops="fvaddr", ranges=["0x200000000000-0x200000120000"]),
                dict(ops="vaddr", start_ns="auto", min_region=4096, max_region=4096),
            ],
        ),
        (run1, [dict(ops="vaddr", start_ns="auto", sample_us=20000, min_nr_regions_mode="apply")]),
    ):
        tr = tracedamon.open_trace(td)
        s = tr.table("samples", columns=SAMPLE_COLUMNS)
        for kw in kws:
            a = tracedamon.replay(td, **kw)
            b = tracedamon.replay(
                s,
                mmaps=tr.table("mmaps"),
                maps=tr.table("maps") if tr.has("maps") else None,
                pagemap=tr.table("pagemap") if tr.has("pagemap") else None,
                **kw,
            )
            assert a.table.num_rows > 0
            assert a.table.equals(b.table), kw


@pytest.fixture(scope="module")
def phys(tmp_path_factory):
    """A real recording with physical addresses (perf -d --phys-data, minor faults)."""
    out = tmp_path_factory.mktemp("sweep") / "phys.td"
    tracedamon.ingest(need_corpus("perf", "02_minflt_phys_pgsz.data"), out)
    return out


PADDR = dict(ops="paddr", access="perf-phys", sample_us=10, aggr_us=100)


def test_in_memory_replay_paddr_default_range_matches_trace_directory(phys):
    """A samples table replayed with its trace's metadata (trace_meta) monitors the
    trace's System RAM / MEM_TOPOLOGY range, as the trace directory's replay does; without
    it, the span of the sampled addresses."""
    from tracedamon.pipeline.replay import SAMPLE_COLUMNS

    tr = tracedamon.open_trace(phys)
    a = tracedamon.replay(phys, **PADDR)
    samples = tr.table("samples", columns=SAMPLE_COLUMNS)
    b = tracedamon.replay(samples, trace_meta=tr.meta, **PADDR)
    assert a.metadata["targets"][0]["ranges"] == b.metadata["targets"][0]["ranges"]
    assert (
        a.metadata["targets"][0]["ranges_source"]
        == b.metadata["targets"][0]["ranges_source"]
        != "span of the sampled physical addresses"
    )
    assert a.table.equals(b.table)
    c = tracedamon.replay(samples, **PADDR)
    assert c.metadata["targets"][0]["ranges_source"] == "span of the sampled physical addresses"


def test_paddr_rows_equal_replay_alone(phys, tmp_path):
    """paddr without --range: the sweep's rows (replayed from its in-memory tables with
    the trace's metadata) equal the trace-directory replay."""
    keep = tmp_path / "hist"
    df = tracedamon.sweep(
        [phys],
        ["aggr-us=100,200"],
        fixed={"ops": "paddr", "access": "perf-phys", "sample-us": 10},
        keep_histories=keep,
        workers=1,
    )
    assert df.error.isna().all()
    for r in df.to_dict("records"):
        alone = tmp_path / "alone.parquet"
        _cli(
            "replay",
            phys,
            "--ops",
            "paddr",
            "--access",
            "perf-phys",
            "--sample-us",
            10,
            "--aggr-us",
            r["aggr_us"],
            "-o",
            alone,
            "-q",
            "--force",
        )
        a, k = pq.read_table(alone), pq.read_table(r["history"])
        assert a.num_rows > 0 and k.equals(a)


def test_unreadable_source_is_refused_before_any_work(hotcold, tmp_path, capsys):
    broken = tmp_path / "broken.td"
    broken.mkdir()
    (broken / "meta.json").write_text("{}")
    (broken / "samples.parquet").write_bytes(b"PAR1 this is not parquet")
    out = tmp_path / "s.parquet"
    calls = []
    with pytest.raises(InputError, match=r"broken.td/samples.parquet: not a readable Parquet"):
        tracedamon.sweep(
            [hotcold, broken],
            ["sample-us=5000,10000"],
            workers=1,
            output=out,
            progress=lambda *a: calls.append(a),
        )
    assert calls == [] and not out.exists() and not (tmp_path / "s.parquet.partial.jsonl").exists()
    code = main(
        [
            "sweep",
            str(hotcold),
            str(tmp_path / "missing.td"),
            "--grid",
            "sample-us=5000",
            "--workers",
            "1",
            "-o",
            str(out),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "missing.td: no such trace directory" in err[0]
    assert not out.exists()


def test_interrupted_sweep_resumes_where_it_stopped(hotcold, tmp_path):
    grid = ["sample-us=5000,10000,20000", "min-nr-regions=10,20"]
    fixed = {"start": "auto"}
    full = tracedamon.sweep([hotcold], grid, fixed=fixed, workers=1)
    out = tmp_path / "s.parquet"
    side = tmp_path / "s.parquet.partial.jsonl"

    def stop_after_3(done, total, row):
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tracedamon.sweep([hotcold], grid, fixed=fixed, workers=1, output=out, progress=stop_after_3)
    assert not out.exists()
    assert len(side.read_text().splitlines()) == 3
    with open(side, "a") as f:  # a line cut short by the interruption
        f.write('{"run_key": "abc", "sour')
    with pytest.raises(InputError, match="partial results"):
        tracedamon.sweep([hotcold], grid, fixed=fixed, workers=1, output=out)
    ran = []
    res = tracedamon.sweep(
        [hotcold],
        grid,
        fixed=fixed,
        workers=1,
        output=out,
        resume=True,
        progress=lambda d, t, r: ran.append(r),
    )
    assert ran[0] is None and len([r for r in ran if r is not None]) == 3
    assert not side.exists() and out.exists()
    cols = [c for c in full.columns if c not in RUN_COLUMNS]
    assert res[cols].equals(full[cols])
    assert pq.read_table(out).to_pandas()[cols].equals(full[cols])
    # a grown grid reuses the finished rows of the output
    ran.clear()
    more = tracedamon.sweep(
        [hotcold],
        grid + ["aggr-us=100000,200000"],
        fixed=fixed,
        workers=1,
        output=out,
        resume=True,
        progress=lambda d, t, r: ran.append(r),
    )
    assert len(more) == 12 and len([r for r in ran if r is not None]) == 6


def test_seeds_only_where_the_result_depends_on_them(hotcold):
    df = tracedamon.sweep(
        [hotcold],
        {"min-region": [4096], "max-region": ["none", 4096], "access": ["perf", "abit"]},
        fixed={"ops": "fvaddr", "range": "0x200000000000-0x200000120000"},
        seeds=3,
        workers=1,
    )
    fixed = df.max_region == 4096

    def n(mask, access):
        return int((mask & (df.access == access)).sum())

    # fixed granularity with the perf check draws nothing at random: one run
    assert n(fixed, "perf") == 1 and not df[fixed & (df.access == "perf")].seed_dependent.any()
    assert n(fixed, "abit") == 3 and n(~fixed, "perf") == 3 and n(~fixed, "abit") == 3
    adaptive = df[~fixed & (df.access == "perf")]
    assert sorted(adaptive.seed) == [0, 1, 2]
    assert df.error.isna().all()
    # and the seed does change an adaptive replay here (else this would test nothing)
    assert adaptive.regions_mean.nunique() > 1


def test_grid_parsing():
    g = parse_grid(
        [
            "sample-us=5_000,0x2710",
            "event=page-faults,page-faults+minor-faults",
            "fix=none,age-once+rand32",
            "max_region=none,4096",
            "start=auto,12",
        ]
    )
    assert g == {
        "sample-us": [5000, 10000],
        "event": ["page-faults", "page-faults+minor-faults"],
        "fix": ["none", "age-once+rand32"],
        "max-region": [None, 4096],
        "start": ["auto", 12],
    }
    cfgs = configurations(g)
    assert len(cfgs) == 32
    assert cfgs[0].replay["fix_age_once"] is False and cfgs[0].replay["start_ns"] == "auto"
    assert cfgs[4].replay["fix_age_once"] is True and cfgs[4].replay["fix_rand32"] is True
    assert cfgs[4].replay["fix_pa_cache"] is False and cfgs[1].replay["start_ns"] == 12
    assert cfgs[0].replay["events"] == ["page-faults"]
    for spec, msg in (
        (["nope=1"], "unknown option"),
        (["sample-us"], "KEY=V1"),
        (["sample-us=1,x"], "not an integer"),
        (["fix=bad"], "choose from"),
        (["access=perf,perf"], "repeated"),
        (["aggr-us=1", "aggr_us=2"], "given twice"),
    ):
        with pytest.raises(ConfigError, match=msg):
            parse_grid(spec)
    with pytest.raises(ConfigError, match="both a grid key and a fixed option"):
        configurations(parse_grid(["ops=vaddr"]), {"ops": "fvaddr"})
    with pytest.raises(ConfigError, match="not both"):
        configurations(parse_grid(["seed=1,2"]), seeds=2)


def test_unknown_scheme_is_refused_before_any_work(hotcold):
    # (tests/test_sweep_damos.py: sweeps with schemes)
    with pytest.raises(InputError, match="scheme s.yaml: no such file"):
        tracedamon.sweep([hotcold], ["sample-us=5000"], scheme="s.yaml", workers=1)


def test_table_columns_and_types():
    rows = [
        {"source": "a", "config_id": "x", "error": None, "m": 1, "n": None},
        {"source": "a", "config_id": "y", "error": "refused", "m": 0.5, "n": None},
    ]
    t = build_table(rows, ["sample_us"])
    assert t.column_names[:2] == ["source", "source_name"]
    assert str(t.schema.field("m").type) == "double"
    assert str(t.schema.field("n").type) == "double"
    assert str(t.schema.field("error").type) == "string"
    assert str(t.schema.field("sample_us").type) == "string"


def test_ingest_parallel_one_directory_per_input(tmp_path, capsys):
    """`ingest --parallel`: every input into its own directory, each equal to a plain
    `tracedamon ingest` of it; a bad input is named and the others are still written."""
    a = tmp_path / "in" / "hotcold.data"
    b = tmp_path / "in" / "pf.data"
    bad = tmp_path / "in" / "zz-bad.data"
    a.parent.mkdir()
    a.write_bytes((SAMPLES / "hotcold.perf.data").read_bytes())
    b.write_bytes(need_corpus("perf", "01_pf_c1_addr.data").read_bytes())
    bad.write_bytes(b"PERFILE2" + b"\0" * 40)
    out = tmp_path / "runs"
    code = main(
        ["ingest", str(tmp_path / "in" / "*.data"), "-o", str(out), "--parallel", "--workers", "1"]
    )
    cap = capsys.readouterr()
    assert code == 2
    assert "1 of 3 inputs failed" in cap.err and "zz-bad.data" in cap.err
    assert sorted(p.name for p in out.iterdir()) == ["hotcold.data.td", "pf.data.td"]
    for src in (a, b):
        alone = tracedamon.ingest(src, tmp_path / f"alone-{src.name}.td")
        got = tracedamon.open_trace(out / f"{src.name}.td")
        for name in ("samples", "mmaps"):
            assert got.table(name).equals(tracedamon.open_trace(alone).table(name))
    # the same outputs again are refused before any work
    code = main(["ingest", str(a), str(b), "-o", str(out), "--parallel", "--workers", "1"])
    assert code == 2 and "output exists" in capsys.readouterr().err


def test_pareto_front_is_the_undominated_configurations():
    """The front against a brute-force check: a configuration is on it iff no other one
    has fewer checks per second and at least its accuracy, or the same checks and more."""
    import pandas as pd
    from tracedamon.pipeline.sweep.summary import pareto

    rng = np.random.default_rng(7)
    for _ in range(30):
        n = int(rng.integers(1, 25))
        d = pd.DataFrame(
            {
                "config_id": [f"c{i}" for i in range(n)],
                "checks_per_s": rng.integers(1, 8, n).astype(float),
                "acc": rng.integers(0, 6, n) / 5,
            }
        )
        front = set(pareto(d, "acc")["config_id"])
        want = set()
        for i in range(n):
            ci, ai = d.checks_per_s[i], d.acc[i]
            dominated = any(
                (d.checks_per_s[j] <= ci and d.acc[j] >= ai)
                and (d.checks_per_s[j] < ci or d.acc[j] > ai)
                for j in range(n)
            )
            # of equal points, one stands for all
            if not dominated and not any(
                d.checks_per_s[j] == ci and d.acc[j] == ai for j in range(i)
            ):
                want.add(d.config_id[i])
        assert front == want


def test_cli_summary_and_png(hotcold, tmp_path, capsys):
    ref = tmp_path / "ref.parquet"
    _cli("replay", hotcold, "--start", "auto", "--sample-us", 1000, "-o", ref, "-q")
    out, png = tmp_path / "s.parquet", tmp_path / "front.png"
    _cli(
        "sweep",
        hotcold,
        "--start",
        "auto",
        "--grid",
        "sample-us=5000,20000",
        "--grid",
        "min-nr-regions=10,200",
        "--grid",
        "max-nr-regions=100",
        "--reference",
        ref,
        "--workers",
        1,
        "-o",
        out,
        "--png",
        png,
    )
    text = capsys.readouterr().out
    assert "2 refused" in text and "min_nr_regions (200) must not exceed" in text
    assert "Pareto front: ref_hot_0_5_f1" in text and f"wrote {png}" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # an existing output is not replaced without --force (or --resume)
    code = main(
        ["sweep", str(hotcold), "--grid", "sample-us=5000", "--workers", "1", "-o", str(out)]
    )
    assert code == 2 and "output exists" in capsys.readouterr().err


def test_fleet_of_sources_with_their_own_references(hotcold, run1, tmp_path):
    """A glob of trace directories, each scored against its own reference ({src})."""
    import shutil

    fleet = tmp_path / "fleet"
    for name, td in (("a", hotcold), ("b", run1)):
        shutil.copytree(td, fleet / f"{name}.td")
        _cli(
            "replay", fleet / f"{name}.td", "--start", "auto", "--sample-us", 1000, "-q"
        )  # -> NAME.td/replay.parquet
    df = tracedamon.sweep(
        [fleet / "*.td"],
        ["sample-us=5000,10000"],
        fixed={"start": "auto"},
        reference="{src}/replay.parquet",
        workers=1,
    )
    assert list(df.source_name) == ["a.td", "a.td", "b.td", "b.td"]
    assert df.error.isna().all()
    for r in df.to_dict("records"):
        ref = pq.read_table(fleet / r["source_name"] / "replay.parquet")
        assert r["ref_a_rows"] == ref.num_rows
    assert df.groupby("source_name").source_sha256.nunique().eq(1).all()
    assert df.source_sha256.nunique() == 2


def test_unreadable_reference_is_refused_before_any_work(hotcold, tmp_path):
    empty = tmp_path / "empty.parquet"
    h = tracedamon.replay(hotcold, start_ns="auto")
    h.table.slice(0, 0).to_pandas().to_parquet(empty)
    calls = []
    with pytest.raises(InputError, match="empty.parquet: the region history is empty"):
        tracedamon.sweep(
            [hotcold],
            ["sample-us=5000,10000"],
            fixed={"start": "auto"},
            reference=empty,
            workers=1,
            progress=lambda *a: calls.append(a),
        )
    assert calls == []


def test_resume_reruns_rows_whose_reference_changed(hotcold, tmp_path):
    ref = tmp_path / "ref.parquet"
    _cli("replay", hotcold, "--start", "auto", "--sample-us", 1000, "-o", ref, "-q")
    out = tmp_path / "s.parquet"
    kw = dict(fixed={"start": "auto"}, reference=ref, workers=1, output=out)
    tracedamon.sweep([hotcold], ["sample-us=5000,10000"], **kw)
    ran = []
    tracedamon.sweep(
        [hotcold],
        ["sample-us=5000,10000"],
        resume=True,
        progress=lambda d, t, r: ran.append(r),
        **kw,
    )
    assert [r for r in ran if r is not None] == []  # nothing to redo
    ref.unlink()
    _cli("replay", hotcold, "--start", "auto", "--sample-us", 2000, "-o", ref, "-q")
    ran.clear()
    df = tracedamon.sweep(
        [hotcold],
        ["sample-us=5000,10000"],
        resume=True,
        progress=lambda d, t, r: ran.append(r),
        **kw,
    )
    assert len([r for r in ran if r is not None]) == 2  # the reference changed
    assert (df.ref_a_sample_us == 2000).all()


def test_kept_histories_of_two_sources_with_one_name_stay_apart(hotcold, tmp_path):
    """Two recordings named alike in different folders (a/run.td, b/run.td): each keeps its
    own histories (the second used to overwrite the first's in DIR/run.td/)."""
    import shutil

    a, b = tmp_path / "a" / "run.td", tmp_path / "b" / "run.td"
    shutil.copytree(hotcold, a)
    shutil.copytree(hotcold, b)
    keep = tmp_path / "hist"
    df = tracedamon.sweep(
        [a, b], ["sample-us=5000,10000"], fixed={"ops": "vaddr"}, keep_histories=keep, workers=1
    )
    assert len(df) == 4 and df.error.isna().all()
    kept = df.history.tolist()
    assert len(set(kept)) == 4 and all(Path(h).is_file() for h in kept)
    for r in df.to_dict("records"):
        meta = pq.read_schema(r["history"]).metadata
        assert str(Path(r["source"]).resolve()).encode() in b"".join(meta.values())


def test_a_sweep_in_this_process_keeps_no_samples_afterwards(hotcold, tmp_path):
    """The tasks run here (in-process, or the first one before the workers fork) read the
    source into this process's cache: it goes with the sweep, also when a task fails."""
    from tracedamon.pipeline.sweep import task

    task.clear_cache()
    seen = []
    df = tracedamon.sweep(
        [hotcold],
        ["sample-us=5000,10000"],
        fixed={"start": "auto"},
        workers=1,
        progress=lambda done, total, row: seen.append(len(task.CACHE)),
    )
    assert len(df) == 2 and df.error.isna().all()
    assert seen == [1, 1]  # held while the sweep ran (each configuration shares it)
    assert len(task.CACHE) == 0
    # a sweep stopped by a failing task (here: the progress callback) lets go too
    with pytest.raises(KeyboardInterrupt):
        tracedamon.sweep(
            [hotcold],
            ["sample-us=5000,10000"],
            fixed={"start": "auto"},
            workers=1,
            output=tmp_path / "s.parquet",
            progress=lambda done, total, row: (_ for _ in ()).throw(KeyboardInterrupt()),
        )
    assert len(task.CACHE) == 0
