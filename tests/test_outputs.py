"""Outputs: every command that writes replaces only tracedamon's own outputs, only with
--force, atomically; everything else is a one-line refusal that changes nothing.

The class is tested whole: every writing command × {nonexistent, its own output, a
foreign file, a foreign directory, `.`, the command's input} × {without, with --force}.
Refusals are checked by hashing the whole tree before and after (every byte, every
name, every mode): nothing may be created, changed or deleted, and no temporary file
or directory may be left behind.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tracedamon.store import atomic
from tracedamon.cli import main
from tracedamon.errors import OutputError, TracedamonError
from tracedamon.ingest import ingest
from tracedamon.store.writer import TraceDirWriter, write_table_atomic
from tracedamon.schema import PAGEMAP, REGIONS, TABLES

from conftest import SAMPLES, need_corpus

FOREIGN_C = b"int main(void) { return 0; }\n"


# ----------------------------------------------------------------------------- helpers
def tree(*roots: Path) -> dict:
    """Every entry under ``roots``: relative path -> (kind, mode, size, sha256)."""
    out = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                p = Path(dirpath) / name
                st = p.lstat()
                key = (str(root), str(p.relative_to(root)))
                if stat.S_ISREG(st.st_mode):
                    out[key] = (
                        "f",
                        st.st_mode,
                        st.st_size,
                        hashlib.sha256(p.read_bytes()).hexdigest(),
                    )
                else:
                    out[key] = ("d" if stat.S_ISDIR(st.st_mode) else "l", st.st_mode)
    return out


def history_df(pattern, *, base=0x10000000, unit=64 * 1024, aggr=100_000_000):
    pattern = np.asarray(pattern)
    S, R = pattern.shape
    s = np.repeat(np.arange(S), R)
    i = np.tile(np.arange(R), S)
    return pd.DataFrame(
        {
            "run": 0,
            "snapshot": s,
            "time_ns": 1_000_000_000 + (s + 1) * aggr,
            "target": 0,
            "pid": None,
            "start": (base + i * unit).astype(np.uint64),
            "end": (base + (i + 1) * unit).astype(np.uint64),
            "nr_accesses": pattern.ravel().astype(np.uint32),
            "age": (s % 5).astype(np.uint32),
            "nr_accesses_bp": None,
        }
    )


def write_history(df, path):
    return write_table_atomic(
        pa.Table.from_pandas(df, schema=REGIONS, preserve_index=False),
        path,
        metadata={"config": {"sample_us": 5000, "aggr_us": 100000}},
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The inputs every command reads, built once: a trace directory of the sample
    recording, two region histories, a pagemap trace directory with labelled areas and
    a physical region history over its frames."""
    w = tmp_path_factory.mktemp("world")
    perf = w / "hotcold.perf.data"
    shutil.copy(SAMPLES / "hotcold.perf.data", perf)
    td = ingest(perf, w / "hotcold.td")
    rng = np.random.default_rng(0)
    p = rng.integers(0, 20, size=(12, 16))
    h1 = write_history(history_df(p), w / "a.parquet")
    h2 = write_history(history_df(np.where(p > 10, p, 0)), w / "b.parquet")
    # pagemap: pid 100 maps 16 pages at 0x10000000 to frames 0x500.. (one snapshot)
    pm = w / "pm.td"
    with TraceDirWriter(pm) as tw:
        tw.write(
            "pagemap",
            pa.table(
                {
                    "snapshot": pa.array([0], pa.int32()),
                    "time_ns": pa.array([2_000_000_000]),
                    "pid": pa.array([100], pa.int32()),
                    "vaddr_start": pa.array([0x10000000], pa.uint64()),
                    "vaddr_end": pa.array([0x10010000], pa.uint64()),
                    "pfn_start": pa.array([0x500], pa.uint64()),
                    "flags": pa.array([1], pa.uint32()),
                },
                schema=PAGEMAP,
            ),
        )
    areas = w / "areas.csv"
    areas.write_text("label,start,end\nhot,0x10000000,0x10008000\ncold,0x10008000,0x10010000\n")
    ph = write_history(
        history_df(rng.integers(0, 5, size=(4, 4)), base=0x500000, unit=0x4000), w / "phys.parquet"
    )
    return {
        "dir": w,
        "perf": perf,
        "td": td,
        "h1": h1,
        "h2": h2,
        "pm": pm,
        "areas": areas,
        "phys": ph,
    }


_seq = itertools.count()

# name -> (kind, args(world, out), the inputs a refusal must protect)
COMMANDS = {
    "ingest": (atomic.TRACE_DIR, lambda w, o: ["ingest", w["perf"], "-o", o], ["perf"]),
    "snapshot": (
        atomic.TRACE_DIR,
        lambda w, o: [
            "snapshot",
            "--interval",
            "20ms",
            "--count",
            "1",
            "-o",
            o,
            "--",
            "sleep",
            "0.2",
        ],
        [],
    ),
    "replay": (
        atomic.REGION_HISTORY,
        lambda w, o: ["replay", w["td"], "--start", "auto", "--sample-us", "10000", "-q", "-o", o],
        ["td"],
    ),
    "replay --damon-trace": (
        atomic.DAMON_TRACE_TEXT,
        lambda w, o: [
            "replay",
            w["td"],
            "--start",
            "auto",
            "--sample-us",
            "10000",
            "-q",
            "-o",
            w["dir"] / f"side{next(_seq)}.parquet",
            "--damon-trace",
            o,
        ],
        ["td"],
    ),
    "compare -o": (
        atomic.COMPARE_METRICS,
        lambda w, o: ["compare", w["h1"], w["h2"], "-q", "-o", o],
        ["h1"],
    ),
    "compare --cells": (
        atomic.COMPARE_CELLS,
        lambda w, o: ["compare", w["h1"], w["h2"], "-q", "--cells", o],
        ["h2"],
    ),
    "report heatmap --png": (
        atomic.PNG_PLOT,
        lambda w, o: [
            "report",
            "heatmap",
            w["h1"],
            "--png",
            o,
            "--width",
            "200",
            "--height",
            "150",
        ],
        ["h1"],
    ),
    "report heatmap --cells": (
        atomic.HEATMAP_CELLS,
        lambda w, o: ["report", "heatmap", w["h1"], "--cells", o],
        ["h1"],
    ),
    "report wss --png": (
        atomic.PNG_PLOT,
        lambda w, o: ["report", "wss", w["h1"], "--png", o],
        ["h1"],
    ),
    "report access --png": (
        atomic.PNG_PLOT,
        lambda w, o: ["report", "access", w["h1"], "--png", o],
        ["h1"],
    ),
    "report truth": (
        atomic.TRUTH_CSV,
        lambda w, o: ["report", "truth", w["pm"], "--areas", w["areas"], "-o", o],
        ["areas"],
    ),
    "report attribute": (
        atomic.ATTRIBUTION,
        lambda w, o: ["report", "attribute", w["phys"], "--pagemap", w["pm"], "-o", o],
        ["phys"],
    ),
    "export damo": (atomic.DAMO_RECORD, lambda w, o: ["export", "damo", w["h1"], "-o", o], ["h1"]),
    "report html": (atomic.HTML_REPORT, lambda w, o: ["report", "html", w["h1"], "-o", o], ["h1"]),
    "sweep": (
        atomic.SWEEP_TABLE,
        lambda w, o: [
            "sweep",
            w["td"],
            "--grid",
            "sample-us=10000",
            "--start",
            "auto",
            "--workers",
            "1",
            "-q",
            "-o",
            o,
        ],
        ["td"],
    ),
    "damos": (
        atomic.TRACE_DIR,
        lambda w, o: [
            "damos",
            w["h1"],
            "--scheme",
            "reclaim:wmarks=none",
            "-q",
            "--sample-us",
            "5000",
            "--aggr-us",
            "100000",
            "-o",
            o,
        ],
        ["h1"],
    ),
}

CASES = ["nonexistent", "own", "foreign file", "foreign directory", ".", "input"]


def run(args, capsys) -> tuple[int, str]:
    capsys.readouterr()
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def with_flags(args, flags):
    at = args.index("--") if "--" in args else len(args)  # options go before a command
    return args[:at] + flags + args[at:]


def refused(args, out, capsys, roots) -> str:
    """Run a command that must refuse: one line naming ``out``, a non-zero exit, and
    not one byte, name or mode changed under ``roots``."""
    before = tree(*roots)
    code, err = run(args, capsys)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tracedamon: error: "), err
    assert str(out) in lines[0], err
    assert "Traceback" not in err and "force=True" not in err
    assert tree(*roots) == before
    return lines[0]


def written(args, out, kind, capsys) -> None:
    code, err = run(args, capsys)
    assert code == 0, err
    assert kind.recognise(Path(os.path.abspath(out))) is None  # tracedamon's own kind
    hidden = [p.name for p in Path(os.path.abspath(out)).parent.iterdir() if p.name.startswith(".")]
    assert hidden == []  # no temporary left


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_replaces_only_its_own_outputs(
    world, tmp_path, monkeypatch, capsys, command, case
):
    """Each case is run without and with --force."""
    kind, make_args, inputs = COMMANDS[command]
    if case == "input" and not inputs:
        pytest.skip("the command reads no input file")
    here = tmp_path / "here"
    here.mkdir()
    roots = (tmp_path, world["dir"])
    out = here / ("out.td" if kind.directory else "out.x")
    if case == "nonexistent":
        written(make_args(world, out), out, kind, capsys)
        out2 = here / ("out2.td" if kind.directory else "out2.x")
        written(with_flags(make_args(world, out2), ["--force"]), out2, kind, capsys)
        return
    if case == "own":
        written(make_args(world, out), out, kind, capsys)
        msg = refused(make_args(world, out), out, capsys, roots)
        assert "exists" in msg and "--force" in msg
        inode = out.stat().st_ino
        written(with_flags(make_args(world, out), ["--force"]), out, kind, capsys)
        assert out.stat().st_ino != inode  # replaced, not kept
        return
    if case == "foreign file":
        out.write_bytes(FOREIGN_C)
    elif case == "foreign directory":
        out.mkdir()
        (out / "notes.txt").write_text("mine\n")
        (out / "sub").mkdir()
        (out / "sub" / "data.bin").write_bytes(os.urandom(100))
    elif case == ".":
        monkeypatch.chdir(here)
        out = Path(".")
    elif case == "input":
        out = world[inputs[0]]
    for flags in ([], ["--force"]):
        msg = refused(with_flags(make_args(world, out), flags), out, capsys, roots)
        assert "use --force" not in msg  # --force would not help: not said


def test_the_kinds_table_names_every_trace_table():
    assert set(atomic.TRACE_TABLES) == set(TABLES)
    from tracedamon.schema import METADATA_KEY

    assert atomic.MARK.encode() == METADATA_KEY


# ------------------------------------------------------------------- places and names
def test_home_root_and_ancestors_of_the_cwd_are_never_outputs(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("x")
    work = home / "work" / "deep"
    work.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    before = tree(tmp_path)
    for place in (home, Path("/"), Path(".."), Path("../.."), Path(""), Path(".")):
        with pytest.raises(OutputError):
            atomic.check_output(place, atomic.TRACE_DIR, force=True)
    assert tree(tmp_path) == before


def test_a_table_name_inside_a_trace_directory_is_refused(world, tmp_path, capsys):
    td = tmp_path / "t.td"
    shutil.copytree(world["td"], td)
    before = tree(tmp_path)
    for name in ("samples.parquet", "regions.parquet", "meta.json"):
        code, err = run(
            [
                "replay",
                td,
                "--start",
                "auto",
                "--sample-us",
                "10000",
                "-q",
                "-o",
                td / name,
                "--force",
            ],
            capsys,
        )
        assert code == 2 and "table of the trace directory" in err, err
    assert tree(tmp_path) == before
    # the default output beside them is fine, and --force replaces it
    for flags in ([], ["--force"]):
        code, err = run(
            ["replay", td, "--start", "auto", "--sample-us", "10000", "-q", *flags], capsys
        )
        assert code == 0, err
    assert atomic.REGION_HISTORY.recognise(td / "replay.parquet") is None
    # a trace directory holding a replay is still tracedamon's own
    assert atomic.TRACE_DIR.recognise(td) is None


def test_ingest_writes_no_output_inside_an_input_directory(world, tmp_path):
    """A directory input (perf record --threads, pagemap snapshots) is read whole, its
    files hashed for the provenance: an output inside it would be read while written."""
    d = tmp_path / "run"
    d.mkdir()
    shutil.copy(world["perf"], d / "data")
    before = tree(tmp_path)
    with pytest.raises(OutputError, match="inside .*an input directory"):
        ingest(d, d / "x.td")
    assert tree(tmp_path) == before


def test_a_symbolic_link_is_not_replaced(world, tmp_path):
    real = ingest(world["perf"], tmp_path / "real.td")
    link = tmp_path / "link.td"
    link.symlink_to(real)
    before = tree(tmp_path)
    with pytest.raises(OutputError, match="symbolic link"):
        ingest(world["perf"], link, force=True)
    assert tree(tmp_path) == before


def test_a_trace_directory_holding_a_foreign_file_is_not_replaced(world, tmp_path, capsys):
    td = ingest(world["perf"], tmp_path / "x.td")
    # outputs of tracedamon's written into it keep it tracedamon's own
    for args in (
        [
            "replay",
            td,
            "--start",
            "auto",
            "--sample-us",
            "10000",
            "-q",
            "--damon-trace",
            td / "replay.txt",
        ],
        [
            "report",
            "heatmap",
            td / "replay.parquet",
            "--png",
            td / "heat.png",
            "--width",
            "200",
            "--height",
            "150",
        ],
        ["compare", td / "replay.parquet", td / "replay.parquet", "-q", "-o", td / "m.json"],
    ):
        code, err = run(args, capsys)
        assert code == 0, err
    assert atomic.TRACE_DIR.recognise(td) is None
    (td / "analysis.ipynb").write_text("{}")
    before = tree(tmp_path)
    with pytest.raises(OutputError, match="analysis.ipynb"):
        ingest(world["perf"], td, force=True)
    assert tree(tmp_path) == before


def test_a_damo_record_written_by_damo_is_not_replaced(world, tmp_path):
    rec = tmp_path / "damon.data"
    shutil.copy(need_corpus("damo-tests", "damon.data.json_compressed"), rec)
    before = tree(tmp_path)
    from tracedamon.export.damo_export import export_damo

    with pytest.raises(OutputError, match="not a damo record exported by tracedamon"):
        export_damo(world["h1"], rec, force=True)
    assert tree(tmp_path) == before


def test_a_recorded_damon_trace_text_is_not_replaced(world, tmp_path):
    txt = tmp_path / "damon.txt"
    shutil.copy(need_corpus("damo-tests", "perf.data.script"), txt)
    before = tree(tmp_path)
    import tracedamon

    h = tracedamon.replay(world["td"], start_ns="auto", sample_us=10000)
    with pytest.raises(OutputError, match="not replaced"):
        h.to_damon_trace(txt, force=True)
    assert tree(tmp_path) == before
    # tracedamon's own is replaced, and reads back as a DAMON trace
    mine = h.to_damon_trace(tmp_path / "mine.txt")
    h.to_damon_trace(mine, force=True)
    back = tracedamon.open_trace(ingest(mine, tmp_path / "back.td", format="damon"))
    assert back.num_rows("regions") == len(h)


def test_a_truth_csv_is_recognised_only_when_it_is_exactly_tracedamons(tmp_path):
    ok = tmp_path / "t.csv"
    ok.write_text("start,end,label\n0x1000,0x2000,hot\n0x2000,0x3000,cold0\n")
    assert atomic.TRUTH_CSV.recognise(ok) is None
    for text in (
        "start,end,label\n0x1000,0x2000,hot\n# my notes\n",
        "label,start,end\nhot,0x1000,0x2000\n",
        "start,end,label\n4096,8192,hot\n",
        "start,end,label,comment\n0x1000,0x2000,hot,x\n",
    ):
        ok.write_text(text)
        assert atomic.TRUTH_CSV.recognise(ok) is not None, text


# ------------------------------------------------------------ atomic replacement
def test_a_failed_replacement_leaves_the_old_trace_directory_whole(world, tmp_path):
    td = ingest(world["perf"], tmp_path / "x.td")
    bad = tmp_path / "bad.perf.data"
    bad.write_bytes(world["perf"].read_bytes()[:3000])
    before = tree(tmp_path)
    with pytest.raises(TracedamonError):
        ingest(bad, td, force=True)
    after = tree(tmp_path)
    assert after == before  # old output whole, nothing left


def test_a_failed_replacement_leaves_the_old_file_whole(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text("start,end,label\n0x1000,0x2000,hot\n")
    before = tree(tmp_path)
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(f, kind=atomic.TRUTH_CSV, force=True) as tmp:
            tmp.write_text("start,end,label\n")
            raise RuntimeError("disk on fire")
    assert tree(tmp_path) == before


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two renames"])
def test_a_trace_directory_is_swapped_whole(world, tmp_path, monkeypatch, exchange):
    swaps = []
    real = atomic._exchange
    monkeypatch.setattr(
        atomic, "_exchange", lambda a, b: swaps.append(exchange and real(a, b)) or swaps[-1]
    )
    td = ingest(world["perf"], tmp_path / "x.td")
    (td / "replay.parquet").write_bytes((world["h1"]).read_bytes())  # a table of its own
    inode = td.stat().st_ino
    again = ingest(world["perf"], td, force=True)
    assert again == td and td.stat().st_ino != inode
    assert not (td / "replay.parquet").exists()  # the old directory went whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.td"]
    if exchange and swaps != [True]:
        pytest.skip("this file system cannot exchange two directories (renameat2)")
    assert swaps == [exchange]  # the way asked for was taken


def test_the_two_renames_put_the_old_directory_back_when_the_second_fails(
    world, tmp_path, monkeypatch
):
    monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    td = ingest(world["perf"], tmp_path / "x.td")
    before = tree(tmp_path)
    real_replace = os.replace
    calls = []

    def failing_replace(a, b):
        calls.append((a, b))
        if len(calls) == 2:  # the new directory into place
            raise OSError(28, "No space left on device", os.fspath(b))
        return real_replace(a, b)

    monkeypatch.setattr(atomic.os, "replace", failing_replace)
    with pytest.raises(OSError):
        ingest(world["perf"], td, force=True)
    monkeypatch.setattr(atomic.os, "replace", real_replace)
    assert tree(tmp_path) == before


def test_parent_directories_made_for_a_failed_output_are_removed(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(
            tmp_path / "a" / "b" / "c.json", kind=atomic.COMPARE_METRICS
        ) as tmp:
            tmp.write_text("{}")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- the Python API
def test_api_refusals_name_the_argument_and_the_cli_names_the_flag(world, tmp_path, capsys):
    out = ingest(world["perf"], tmp_path / "x.td")
    with pytest.raises(OutputError) as e:
        ingest(world["perf"], out)
    assert "force=True" in str(e.value) and "--force" not in str(e.value)
    code, err = run(["ingest", world["perf"], "-o", out], capsys)
    assert code == 2 and "--force" in err and "force=True" not in err


def test_every_api_writer_takes_force(world, tmp_path):
    """Each library function that writes refuses an existing output without force=True
    and replaces its own with it."""
    import tracedamon
    from tracedamon.export.compare import compare
    from tracedamon.export.damo_export import export_damo
    from tracedamon.export.heatmap import region_heatmap
    from tracedamon.export.truth import write_truth_csv
    from tracedamon.export.wss import wss_png, wss_report
    from tracedamon.export.access_report import access_png

    h = tracedamon.replay(world["td"], start_ns="auto", sample_us=10000)
    res = compare(world["h1"], world["h2"])
    hm = region_heatmap(world["h1"], time_bins=8, addr_bins=8)
    truth = pd.DataFrame({"start": [0x1000], "end": [0x2000], "label": ["hot"]})
    writers = {
        "to_parquet": lambda p, **kw: h.to_parquet(p, **kw),
        "to_damon_trace": lambda p, **kw: h.to_damon_trace(p, **kw),
        "to_json": lambda p, **kw: res.to_json(p, **kw),
        "write_cells": lambda p, **kw: res.write_cells(p, **kw),
        "heatmap cells": lambda p, **kw: hm.write_cells(p, **kw),
        "heatmap png": lambda p, **kw: hm.to_png(p, width=200, height=150, **kw),
        "wss_png": lambda p, **kw: wss_png(wss_report(world["h1"]), p, **kw),
        "access_png": lambda p, **kw: access_png(world["h1"], p, **kw),
        "export_damo": lambda p, **kw: export_damo(world["h1"], p, **kw),
        "write_truth_csv": lambda p, **kw: write_truth_csv(truth, p, **kw),
        "ingest": lambda p, **kw: ingest(world["perf"], p, **kw),
    }
    for name, write in writers.items():
        p = tmp_path / name.replace(" ", "_")
        write(p)
        with pytest.raises(OutputError, match="force=True") as e:
            write(p)
        assert "--force" not in str(e.value), name
        write(p, force=True)


# ------------------------------------------------------------------------ modes
@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_outputs_get_the_modes_the_umask_gives(world, tmp_path, capsys, mask):
    """Files 0666 & ~umask, directories 0777 & ~umask, as any tool makes them (a
    temporary file or directory starts 0600/0700 whatever the umask)."""
    outs = {
        "td": (["ingest", world["perf"], "-o", tmp_path / "x.td"], tmp_path / "x.td"),
        "replay": (
            [
                "replay",
                world["td"],
                "--start",
                "auto",
                "--sample-us",
                "10000",
                "-q",
                "-o",
                tmp_path / "r.parquet",
                "--damon-trace",
                tmp_path / "r.txt",
            ],
            tmp_path / "r.parquet",
        ),
        "compare": (
            ["compare", world["h1"], world["h2"], "-q", "-o", tmp_path / "m.json"],
            tmp_path / "m.json",
        ),
        "png": (
            [
                "report",
                "heatmap",
                world["h1"],
                "--png",
                tmp_path / "h.png",
                "--width",
                "200",
                "--height",
                "150",
            ],
            tmp_path / "h.png",
        ),
        "damo": (["export", "damo", world["h1"], "-o", tmp_path / "d.data"], tmp_path / "d.data"),
        "truth": (
            ["report", "truth", world["pm"], "--areas", world["areas"], "-o", tmp_path / "t.csv"],
            tmp_path / "t.csv",
        ),
        "nested": (
            ["export", "damo", world["h1"], "-o", tmp_path / "new" / "dir" / "d.data"],
            tmp_path / "new" / "dir" / "d.data",
        ),
    }
    old = os.umask(mask)
    try:
        for name, (args, _) in outs.items():
            code, err = run(args, capsys)
            assert code == 0, (name, err)
    finally:
        os.umask(old)
    checked = 0
    for p in [
        tmp_path / "x.td",
        *(tmp_path / "x.td").iterdir(),
        tmp_path / "r.parquet",
        tmp_path / "r.txt",
        tmp_path / "m.json",
        tmp_path / "m.cells.parquet",
        tmp_path / "h.png",
        tmp_path / "d.data",
        tmp_path / "t.csv",
        tmp_path / "new",
        tmp_path / "new" / "dir",
        tmp_path / "new" / "dir" / "d.data",
    ]:
        want = (0o777 if p.is_dir() else 0o666) & ~mask
        assert stat.S_IMODE(p.stat().st_mode) == want, (p, oct(p.stat().st_mode))
        checked += 1
    assert checked >= 15
