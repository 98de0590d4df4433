"""Sweeps of sources named by fsspec URL, the kernel profile as a grid key, the DAMOS
figures in the summary's "best" table, the Pareto PNG drawn by the API, and the API
wording of the sweep's errors.

Oracles: the same sweep of the same trace directory by its local path (URL sources),
`tracedamon replay --kernel` run alone (its history file, byte for byte), the
per-configuration means computed here with pandas (best table)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

import tracedamon
from conftest import SAMPLES
from tracedamon.cli import main
from tracedamon.errors import ConfigError, InputError
from tracedamon.pipeline.sweep.grid import configurations, parse_grid
from tracedamon.pipeline.sweep.summary import best, per_configuration
from tracedamon.pipeline.sweep.task import RUN_COLUMNS

fsspec = pytest.importorskip("fsspec")

GRID = ["sample-us=5000,20000", "access=perf,abit"]
RANGE = ["0x200000000000-0x200000120000"]  # hotcold's buffer


@pytest.fixture(scope="module")
def hotcold(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep-src") / "hotcold.td"
    tracedamon.ingest(SAMPLES / "hotcold.perf.data", out)
    return out


@pytest.fixture(scope="module")
def by_path(hotcold):
    return tracedamon.sweep([hotcold], GRID, fixed={"start": "auto"}, workers=1)


def _result(df):
    """The columns that say what a run found (not where its source was, nor how it ran)."""
    drop = set(RUN_COLUMNS) | {"source", "run_key"}
    return df[[c for c in df.columns if c not in drop]].reset_index(drop=True)


def _to_memory(td: Path, url: str) -> None:
    fs = fsspec.filesystem("memory")
    for f in td.iterdir():
        fs.pipe(url + "/" + f.name, f.read_bytes())


def test_file_url_source_gives_the_rows_of_its_path(hotcold, by_path):
    url = "file://" + str(hotcold.resolve())
    df = tracedamon.sweep([url], GRID, fixed={"start": "auto"}, workers=1)
    assert (df.source == url).all() and (df.source_name == "hotcold.td").all()
    # the provenance: the same samples file's sha256, read through fsspec
    assert (df.source_sha256 == by_path.source_sha256).all()
    assert _result(df).equals(_result(by_path))


def test_memory_url_source_and_its_glob(hotcold, by_path, tmp_path):
    _to_memory(hotcold, "memory://sweep-src/a/one.td")
    _to_memory(hotcold, "memory://sweep-src/b/two.td")
    keep = tmp_path / "kept"
    df = tracedamon.sweep(
        ["memory://sweep-src/*/*.td"],
        GRID,
        fixed={"start": "auto"},
        workers=1,
        keep_histories=keep,
    )
    # both directories, in sorted order (as fsspec spells their URLs), each giving the
    # rows of the local path
    assert list(dict.fromkeys(df.source)) == [
        "memory:///sweep-src/a/one.td",
        "memory:///sweep-src/b/two.td",
    ]
    for _, g in df.groupby("source", sort=False):
        got = _result(g.drop(columns=["history", "source_name"]))
        assert got.equals(_result(by_path.drop(columns=["source_name"])))
    # a kept history names the trace by its URL
    meta = pq.read_schema(df.history.iloc[0]).metadata
    assert b'"trace": "memory:///sweep-src/a/one.td"' in meta[b"tracedamon"]


def test_unreadable_url_is_refused_before_any_work(hotcold, tmp_path):
    fs = fsspec.filesystem("memory")
    fs.pipe("memory://sweep-src/broken.td/meta.json", b"{}")
    fs.pipe("memory://sweep-src/broken.td/samples.parquet", b"PAR1 this is not parquet")
    out = tmp_path / "s.parquet"
    calls = []
    for src, msg in (
        (
            "memory://sweep-src/broken.td",
            r"^memory://sweep-src/broken.td/samples.parquet: not a readable Parquet file",
        ),
        ("memory://sweep-src/missing.td", r"^memory://sweep-src/missing.td: no such trace"),
        ("memory://sweep-src/nothing*.td", r"matches no trace directory"),
        ("nosuchprotocol://x/run.td", r"^nosuchprotocol://x/run.td: fsspec cannot open"),
    ):
        with pytest.raises(InputError, match=msg):
            tracedamon.sweep(
                [hotcold, src],
                ["sample-us=5000"],
                workers=1,
                output=out,
                progress=lambda *a: calls.append(a),
            )
    assert calls == [] and not out.exists()


def test_local_cluster_workers_read_a_file_url(hotcold, by_path):
    pytest.importorskip("distributed")
    url = "file://" + str(hotcold.resolve())
    df = tracedamon.sweep([url], GRID, fixed={"start": "auto"}, workers=2, in_process=False)
    assert df.attrs["tracedamon_sweep"]["ran"] == "local cluster of 2 workers"
    assert _result(df).equals(_result(by_path))


def test_kernel_grid_rows_equal_replay_kernel_alone(hotcold, tmp_path):
    keep = tmp_path / "kept"
    df = tracedamon.sweep(
        [hotcold],
        ["kernel=released,released-nofix,mainline-2026", "min-nr-regions=10"],
        fixed={"start": "auto"},
        workers=1,
        keep_histories=keep,
    )
    assert df.error.isna().all() and list(df.kernel) == [
        "released",
        "released-nofix",
        "mainline-2026",
    ]
    for r in df.itertuples():
        alone = tmp_path / f"alone-{r.kernel}.parquet"
        argv = ["replay", hotcold, "--start", "auto", "--kernel", r.kernel, "-o", alone, "-q"]
        assert main([str(a) for a in argv]) == 0
        assert Path(r.history).read_bytes() == alone.read_bytes(), r.kernel
    # the default profile named in the grid is the configuration of a sweep naming none
    plain = configurations(parse_grid(["min-nr-regions=10"]), {"start": "auto"})[0]
    assert df.config_id[0] == plain.config_id != df.config_id[2]
    with pytest.raises(ConfigError, match=r"grid kernel: 'v5': choose from released"):
        parse_grid(["kernel=v5"])


def test_best_table_lists_the_damos_figures(hotcold, tmp_path, capsys):
    out = tmp_path / "s.parquet"
    argv = ["sweep", hotcold, "--ops", "fvaddr", "--range", RANGE[0]]
    argv += ["--grid", "sample-us=5000,10000", "--grid", "min-region=4096"]
    argv += ["--grid", "max-region=4096,none", "--scheme", "reclaim:wmarks=none,min_age=300ms"]
    argv += ["--workers", 1, "-o", out]
    assert main([str(a) for a in argv]) == 0
    text = capsys.readouterr().out
    df = pq.read_table(out).to_pandas()
    per = per_configuration(df, ["sample_us", "min_region", "max_region"])
    b = best(per, ["sample_us", "min_region", "max_region"]).set_index("metric")
    # the best saving is the highest mean, the best re-accesses the lowest
    assert b.loc["damos_pageout_saving_gib_s", "value"] == per.damos_pageout_saving_gib_s.max()
    assert b.loc["damos_pageout_reaccesses", "value"] == per.damos_pageout_reaccesses.min()
    assert b.loc["damos_pageout_reaccesses", "better"] == "lower"
    table = text[text.index("best configuration per metric") :]
    assert "damos_pageout_saving_gib_s" in table and "damos_pageout_reaccesses" in table


def test_api_draws_the_pareto_png(hotcold, tmp_path):
    ref = tmp_path / "ref.parquet"
    argv = ["replay", hotcold, "--start", "auto", "--sample-us", 1000, "-o", ref, "-q"]
    assert main([str(a) for a in argv]) == 0
    png = tmp_path / "front.png"
    tracedamon.sweep([hotcold], GRID, fixed={"start": "auto"}, reference=ref, workers=1, png=png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # nothing to draw: refused before any work, naming the API's arguments
    out, png2 = tmp_path / "s.parquet", tmp_path / "none.png"
    with pytest.raises(ConfigError) as e:
        tracedamon.sweep([hotcold], GRID, workers=1, output=out, png=png2)
    assert str(e.value).startswith("png: no accuracy column to draw (give reference or truth")
    assert e.value.cli_message.startswith("--png: no accuracy column")
    assert not out.exists() and not png2.exists()


def test_errors_name_the_api_arguments_and_the_cli_flags(hotcold):
    for call, api, cli in (
        (lambda: parse_grid(["sample-us=1,x"]), "grid sample-us: 'x' is not", "--grid sample-us:"),
        (lambda: configurations({"seed": [1]}, seeds=2), "give either seeds=N", "--seeds N"),
        (
            lambda: tracedamon.sweep([hotcold], GRID, workers=0),
            "workers must be a positive integer",
            "--workers must",
        ),
        (
            lambda: tracedamon.sweep([hotcold], GRID, reference="r", truth="t"),
            "give reference or truth, not both",
            "--reference or --truth",
        ),
    ):
        with pytest.raises(ConfigError) as e:
            call()
        assert str(e.value).startswith(api) and "--" not in str(e.value), str(e.value)
        assert cli in e.value.cli_message


def test_no_worker_count_runs_a_cluster_of_the_cpus_and_one_cpu_in_process(
    hotcold, by_path, monkeypatch
):
    from tracedamon.pipeline.sweep import runner

    monkeypatch.setattr(runner, "default_workers", lambda: 1)
    df = tracedamon.sweep([hotcold], GRID, fixed={"start": "auto"})
    assert df.attrs["tracedamon_sweep"]["ran"] == "in-process"
    assert _result(df).equals(_result(by_path))
    monkeypatch.setattr(runner, "default_workers", lambda: 2)
    df = tracedamon.sweep([hotcold], GRID, fixed={"start": "auto"})
    assert df.attrs["tracedamon_sweep"]["ran"] == "local cluster of 2 workers"
    assert _result(df).equals(_result(by_path))
