"""`tracedamon sweep --scheme`: every replay of the sweep also runs the DAMOS schemes
over its history (in memory) and the row gets their figures as damos_* columns, equal
to what `tracedamon damos` says of the same history written to a file."""

from __future__ import annotations

import json

import pytest

import tracedamon
from conftest import SAMPLES
from tracedamon.cli import main
from tracedamon.pipeline.damos import damos
from tracedamon.errors import ConfigError, InputError
from tracedamon.pipeline.sweep.task import flatten

RANGE = ["0x200000000000-0x200000120000"]  # the workload's buffer
FIXED = {"ops": "fvaddr", "range": RANGE}
RECLAIM = "reclaim:wmarks=none,min_age=300ms"
PAGE = 4096


@pytest.fixture(scope="module")
def hotcold(tmp_path_factory):
    td = tmp_path_factory.mktemp("sweep-damos") / "hotcold.td"
    tracedamon.ingest(SAMPLES / "hotcold.perf.data", td)
    return td


@pytest.fixture(scope="module")
def swept(hotcold, tmp_path_factory):
    keep = tmp_path_factory.mktemp("kept")
    df = tracedamon.sweep(
        [hotcold],
        ["min-region=4096", "max-region=4096,none", "sample-us=5000,10000"],
        fixed=FIXED,
        scheme=RECLAIM,
        workers=1,
        keep_histories=keep,
    )
    return df


def test_damos_columns_equal_tracedamon_damos_on_the_kept_history(swept, hotcold):
    assert len(swept) == 4 and swept.error.isna().all()
    for r in swept.itertuples():
        res = damos(r.history, [RECLAIM], samples=hotcold)
        a = res.applications.to_pandas()
        st = res.stats.to_pandas()
        want = {
            "damos_applications": a.groupby(["scheme", "time_ns"]).ngroups,
            "damos_regions": len(a),
            "damos_bytes_tried": int((a.end - a.start).sum()),
            "damos_bytes_applied": int(st.sz_applied.iloc[-1]),
            "damos_qt_exceeds": int(st.qt_exceeds.iloc[-1]),
            **flatten({"pageout": res.metadata["outcome"]["pageout"]}, "damos"),
        }
        got = {k: getattr(r, k) for k in want}
        assert got == want


def test_fixed_granularity_pages_out_the_cold_pages(swept):
    # the workload touches 256 cold pages once at the start and 32 hot pages all along:
    # at 4 KiB the reclaim scheme pages out exactly the cold ones, none touched again
    fixed = swept[swept.max_region == 4096]
    assert (fixed.damos_pageout_bytes_paged_out == 256 * PAGE).all()
    assert (fixed.damos_pageout_reaccesses == 0).all()
    assert (fixed.damos_pageout_samples).all()


def test_the_scheme_is_part_of_the_run_key(hotcold, tmp_path):
    out = tmp_path / "s.parquet"
    a = tracedamon.sweep(
        [hotcold], ["sample-us=5000"], fixed=FIXED, scheme=RECLAIM, workers=1, output=out
    )
    b = tracedamon.sweep(
        [hotcold],
        ["sample-us=5000"],
        fixed=FIXED,
        scheme="reclaim:wmarks=none,min_age=1s",
        workers=1,
        output=out,
        resume=True,
    )
    assert a.run_key[0] != b.run_key[0]
    assert b.attrs["tracedamon_sweep"]["reused_rows"] == 0
    assert b.damos_applications[0] < a.damos_applications[0]  # older pages only
    c = tracedamon.sweep([hotcold], ["sample-us=5000"], fixed=FIXED, workers=1)
    assert not any(k.startswith("damos_") for k in c.columns)


def test_bad_schemes_are_refused_before_any_work(hotcold, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"action": "teleport"}')
    out = tmp_path / "o.parquet"
    assert (
        main(
            [
                "sweep",
                str(hotcold),
                "--grid",
                "sample-us=5000",
                "--ops",
                "fvaddr",
                "--range",
                RANGE[0],
                "--scheme",
                str(bad),
                "--workers",
                "1",
                "-o",
                str(out),
            ]
        )
        == 4
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown action 'teleport'" in err[0]
    assert not out.exists() and not (tmp_path / "o.parquet.partial.jsonl").exists()
    with pytest.raises(ConfigError, match="watermarks"):
        tracedamon.sweep([hotcold], ["sample-us=5000"], fixed=FIXED, scheme="reclaim", workers=1)
    with pytest.raises(InputError, match="no such file, and not a preset"):
        tracedamon.sweep([hotcold], ["sample-us=5000"], fixed=FIXED, scheme="s.yaml", workers=1)


def test_cli_scheme_columns(hotcold, tmp_path, capsys):
    out = tmp_path / "c.parquet"
    assert (
        main(
            [
                "sweep",
                str(hotcold),
                "--grid",
                "min-region=4096",
                "--grid",
                "max-region=4096",
                "--ops",
                "fvaddr",
                "--range",
                RANGE[0],
                "--scheme",
                RECLAIM,
                "--workers",
                "1",
                "-o",
                str(out),
                "-q",
            ]
        )
        == 0
    )
    import pyarrow.parquet as pq

    t = pq.read_table(out)
    assert t.column("damos_pageout_bytes_paged_out").to_pylist() == [256 * PAGE]
    meta = json.loads(t.schema.metadata[b"tracedamon"])
    assert meta["scheme"] == [RECLAIM]
