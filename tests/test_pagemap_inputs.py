"""Pagemap snapshots as inputs, alone and beside a perf.data: every way README gives.

* ``ingest pagemap_snap*.index.json`` (and the shell glob ``pagemap_snap*`` that also
  names the ``.maps`` and ``.pagemap.bin`` companions), ``--format pagemap`` with
  several files, a directory of raw snapshots, ``tracedamon snapshot``'s own output
  directory: all give the tables ingesting the raw snapshot directory gives;
* ``ingest perf.data SNAPSHOTS -o run.td``: the samples of the perf.data alone and the
  snapshots of the snapshots alone, in one directory;
* the detector names the right reader for every file of the corpus and a sample of
  every format, and refuses the rest (oracle: the corpus MANIFESTs, which say what
  each file is).
"""

from __future__ import annotations

import fnmatch
import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CORPUS, ROOT, SAMPLES, missing, need_corpus
from tracedamon.errors import InputError
from tracedamon.ingest import ingest
from tracedamon.ingest.detect import detect_format
from tracedamon.store.trace import open_trace

RUN1 = ("damon-paddr-run1", "paddr_run1")


@pytest.fixture(scope="module")
def run1():
    return need_corpus(*RUN1)


@pytest.fixture(scope="module")
def ref(run1, tmp_path_factory):
    """The raw snapshot directory ingested on its own: the reference tables."""
    out = tmp_path_factory.mktemp("ref") / "snaps.td"
    ingest(run1, out, format="pagemap")
    tr = open_trace(out)
    return {n: tr.table(n) for n in ("maps", "pagemap")} | {"meta": tr.meta}


def _tables(td: Path) -> dict:
    tr = open_trace(td)
    return {n: tr.table(n) for n in tr.tables()}


def _same_snapshots(td: Path, ref: dict, numbers=None) -> None:
    """``td``'s maps and pagemap tables are the reference's (its snapshots
    ``numbers`` only, when given), row for row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = _tables(td)
    for n in ("maps", "pagemap"):
        want = ref[n]
        if numbers is not None:
            want = want.filter(pc.is_in(want["snapshot"], pa.array(numbers, pa.int32())))
        assert t[n].equals(want), n


# ---------------------------------------------------------------------------- raw files
def test_index_files_given_one_by_one(run1, ref, tmp_path):
    files = sorted(run1.glob("pagemap_snap*.index.json"))
    assert len(files) == 6
    out = ingest(files, tmp_path / "a.td")
    _same_snapshots(out, ref)
    assert [s["snapshot"] for s in open_trace(out).meta["pagemap"]["snapshots"]] == list(range(6))


def test_format_pagemap_with_several_files(run1, ref, tmp_path):
    files = [run1 / "pagemap_snap3.index.json", run1 / "pagemap_snap1.index.json"]
    out = ingest(files, tmp_path / "b.td", format="pagemap")
    _same_snapshots(out, ref, numbers=[1, 3])  # numbers from the names, any order


def test_shell_glob_with_the_companion_files(run1, ref, tmp_path):
    """`ingest pagemap_snap*` names .index.json, .maps and .pagemap.bin of each."""
    files = sorted(run1.glob("pagemap_snap*"))
    assert len(files) == 18
    assert {detect_format(f) for f in files} == {"pagemap"}
    _same_snapshots(ingest(files, tmp_path / "c.td"), ref)


def test_cli_ingest_index_files(run1, ref, tmp_path):
    files = sorted(run1.glob("pagemap_snap*.index.json"))
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "tracedamon",
            "ingest",
            *map(str, files),
            "-o",
            str(tmp_path / "cli.td"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "pagemap: 6 snapshots, pids [7727]" in r.stdout
    _same_snapshots(tmp_path / "cli.td", ref)


# ---------------------------------------------------------------------------- with perf.data
def test_perf_data_and_raw_snapshots_in_one_directory(run1, ref, tmp_path):
    perf = run1 / "perf_pagefaults.data"
    alone = _tables(ingest(perf, tmp_path / "perf.td"))
    both = ingest([perf, run1], tmp_path / "run.td")
    t = _tables(both)
    for n in ("samples", "events", "mmaps", "tasks"):
        assert t[n].equals(alone[n]), n
    _same_snapshots(both, ref)
    meta = open_trace(both).meta
    assert meta["layout"] == "file" and meta["pagemap"]["clock"] == "CLOCK_MONOTONIC"
    assert [i["format"] for i in meta["inputs"]] == ["perf-data", "pagemap"]


def _capture(out: Path, pid: int, count: int = 2) -> Path:
    from tracedamon.ingest.pagemap_capture import capture

    capture(out, pid=pid, count=count, interval="10ms", kpageflags=False)
    return out


@pytest.fixture
def sleeper():
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield p
    p.kill()
    p.wait()


def test_snapshot_command_output_beside_a_perf_data(run1, sleeper, tmp_path):
    """What `tracedamon snapshot` writes is an input too: its tables and their
    metadata are kept as they are."""
    cap = _capture(tmp_path / "cap.td", sleeper.pid)
    assert detect_format(cap) == "pagemap"
    perf = run1 / "perf_pagefaults.data"
    out = ingest([perf, cap], tmp_path / "run.td")
    t, c = _tables(out), _tables(cap)
    for n in ("maps", "pagemap"):
        assert t[n].equals(c[n]), n
    assert t["samples"].equals(_tables(ingest(perf, tmp_path / "p.td"))["samples"])
    pm, cm = open_trace(out).meta["pagemap"], open_trace(cap).meta["pagemap"]
    assert pm["source"] == "live" and pm["pid"] == sleeper.pid
    assert [s["t_begin_ns"] for s in pm["snapshots"]] == [s["t_begin_ns"] for s in cm["snapshots"]]
    # two captures of two processes, and raw snapshots of a third, together
    second = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        other = _capture(tmp_path / "other.td", second.pid)
    finally:
        second.kill()
        second.wait()
    out2 = ingest([cap, other, run1 / "pagemap_snap2.index.json"], tmp_path / "all.td")
    pids = sorted(set(open_trace(out2).table("pagemap")["pid"].to_pylist()))
    assert pids == sorted({second.pid, sleeper.pid, 7727})
    assert open_trace(out2).meta["pagemap"]["source"] == "mixed"


def test_the_same_snapshot_twice_is_refused(sleeper, tmp_path):
    a = _capture(tmp_path / "a.td", sleeper.pid)
    b = _capture(tmp_path / "b.td", sleeper.pid)
    with pytest.raises(InputError, match=f"snapshot 0 of pid {sleeper.pid} is also in"):
        ingest([a, b], tmp_path / "ab.td")
    assert not (tmp_path / "ab.td").exists()
    out = ingest([a, a], tmp_path / "aa.td")  # one directory named twice: once
    assert open_trace(out).num_rows("pagemap") == open_trace(a).num_rows("pagemap")


def test_a_trace_directory_with_samples_is_not_taken_for_snapshots(run1, tmp_path):
    td = ingest(run1 / "perf_pagefaults.data", tmp_path / "perf.td")
    with pytest.raises(InputError, match="samples"):
        detect_format(td)
    with pytest.raises(InputError, match="pagemap snapshots only"):
        ingest(td, tmp_path / "x.td", format="pagemap")


# ---------------------------------------------------------------------------- detector
# What each corpus file is, from the MANIFESTs: the reader that takes it, or None for
# the oracles, notes, sources and sidecars that are no input at all.
EXPECTED = [
    ("perf/*.data", "perf-data"),
    ("perf/24_damon_tracepoint.script.txt", "damon"),
    ("perf/*.script.txt", "perf-script"),
    ("ubench-perf-mem/*.data", "perf-data"),
    ("ubench-perf-mem/*.script.txt", "perf-script"),
    ("damo-tests/perf.data", "perf-data"),
    ("damo-tests/perf.data.script", "damon"),
    ("damo-tests/damon.data", "damo"),
    ("damo-tests/damon.data.json_compressed", "damo"),
    ("damon-paddr-run1/paddr_run1", "pagemap"),
    ("damon-paddr-run1/paddr_run1/pagemap_snap*", "pagemap"),
    ("damon-paddr-run1/paddr_run1/damo_record.data", "damo"),
    ("damon-paddr-run1/paddr_run1/damo_from_perf_data.json_compressed", "damo"),
    ("damon-paddr-run1/paddr_run1/damo_record_perf_data.data", "perf-data"),
    ("damon-paddr-run1/paddr_run1/perf_pagefaults.data", "perf-data"),
    ("damon-paddr-run1/paddr_run1/perf_pagefaults_script.txt.gz", "perf-script"),
    ("damon-paddr-run1/paddr_run1/perf_script.txt.gz", "damon"),
    ("damon-paddr-run1/paddr_run1/damo_perf_script.txt.gz", "damon"),
    ("damon-paddr-run1/paddr_run1/ftrace_trace_pipe.txt.gz", "damon"),
    ("*", None),
]


def _expected(rel: str):
    for pat, fmt in EXPECTED:
        if fnmatch.fnmatchcase(rel, pat):
            return fmt
    raise AssertionError(rel)


def test_detector_on_every_corpus_file():
    if not CORPUS.exists():
        missing("reference corpus not found")
    paths = sorted(p for p in CORPUS.rglob("*") if "reports" not in p.parts[:-1] or p.is_file())
    assert len(paths) > 150
    wrong = []
    for p in paths:
        want = _expected(str(p.relative_to(CORPUS)))
        try:
            got = detect_format(p)
        except InputError as e:
            got = None
            assert str(p) in str(e) and "\n" not in str(e)
        if got != want:
            wrong.append((str(p.relative_to(CORPUS)), got, want))
    assert not wrong


def test_detector_on_every_recorded_perf_corpus_file(perf_dir):
    """The same table for the perf corpus the suite records (its files are named as
    those of ../shared/corpus/perf)."""
    paths = sorted(perf_dir.iterdir())
    assert len(paths) > 50
    wrong = []
    for p in paths:
        want = _expected(f"perf/{p.name}")
        try:
            got = detect_format(p)
        except InputError as e:
            got = None
            assert str(p) in str(e) and "\n" not in str(e)
        if got != want:
            wrong.append((p.name, got, want))
    assert not wrong


def test_detector_on_a_sample_of_every_format(run1, sleeper, tmp_path):
    from tracedamon.ingest.pagemap_capture import capture

    samples = {
        SAMPLES / "hotcold.perf.data": "perf-data",
        SAMPLES / "damon" / "live_paddr.perf.data": "perf-data",
        SAMPLES / "damon" / "live_paddr_pipe.perf.data": "perf-data",
        SAMPLES / "damon" / "live_paddr.script.txt.gz": "damon",
        need_corpus("perf", "12_pipe.data"): "perf-data",
        need_corpus("perf", "16_threads.data"): "perf-data",
        need_corpus("perf", "01_pf_c1_addr.script.txt"): "perf-script",
    }
    # made here: gzip of each binary kind, plain-JSON damo records (damo's own and
    # tracedamon's export), a capture, raw snapshots renamed, unrelated JSON and text
    gz = tmp_path / "hotcold.perf.data.gz"
    gz.write_bytes(gzip.compress((SAMPLES / "hotcold.perf.data").read_bytes()))
    samples[gz] = "perf-data"
    import zlib

    js = tmp_path / "record.json"  # damo's json_compressed, decompressed
    js.write_bytes(zlib.decompress(need_corpus("damo-tests", "damon.data").read_bytes()))
    samples[js] = "damo"
    samples[tmp_path / "record.json.gz"] = "damo"
    (tmp_path / "record.json.gz").write_bytes(gzip.compress(js.read_bytes()))
    from tracedamon.export.damo_export import export_damo

    regions = ingest(need_corpus("damo-tests", "damon.data"), tmp_path / "r.td")
    export_damo(regions, tmp_path / "export.json", fmt="json")
    samples[tmp_path / "export.json"] = "damo"
    cap = tmp_path / "cap.td"
    capture(cap, pid=sleeper.pid, count=1, kpageflags=False)
    samples[cap] = "pagemap"
    d = tmp_path / "snaps"
    d.mkdir()
    for suffix in (".index.json", ".pagemap.bin", ".maps"):
        shutil.copy(run1 / f"pagemap_snap2{suffix}", d / f"s{suffix}")
        samples[d / f"s{suffix}"] = "pagemap"
    samples[d] = "pagemap"
    lone = tmp_path / "lone.json"
    shutil.copy(run1 / "pagemap_snap2.index.json", lone)  # an index without companions
    samples[lone] = None
    other = tmp_path / "summary.json"
    other.write_text(json.dumps([{"time": 1, "footprints": []}]))
    samples[other] = None
    notes = tmp_path / "notes.txt"
    notes.write_text("we recorded damon:damon_aggregated and damos_before_apply events\n")
    samples[notes] = None
    for p, want in samples.items():
        if not p.exists():
            continue
        try:
            got = detect_format(p)
        except InputError:
            got = None
        assert got == want, p
