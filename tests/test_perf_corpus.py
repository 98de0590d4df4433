"""The perf corpus the suite records (tests/perf_corpus.py): what its recordings hold,
that its oracle tables are perf's output re-formatted without loss, and that parallel
test processes record it once.

Oracles: what the workload does (tests/helpers/pagetouch.c writes each page of a region
at 0x100000000000 once, in a known order), perf's own scripting output of the same files,
and ../shared/corpus/perf, whose records.csv / samples.csv were made by another program
from the same perf output (where present).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import perf_corpus as PC
from conftest import CORPUS, need_corpus, requires

BASE = 0x100000000000
PAGE = 4096
REFERENCE = CORPUS / "perf"


def _text(p: Path) -> str:
    return gzip.decompress(p.read_bytes()).decode() if p.suffix == ".gz" else p.read_text()


def _oracle(d: Path, stem: str, suffix: str) -> Path:
    for p in (d / f"{stem}.{suffix}", d / f"{stem}.{suffix}.gz"):
        if p.exists():
            return p
    raise AssertionError(f"{stem}.{suffix} missing in {d}")


def _region_faults(name: str, event: str) -> list[dict]:
    """perf's delivered samples of ``event`` inside the workload's region, in order."""
    data = need_corpus("perf", f"{name}.data")
    rows = list(csv.DictReader(io.StringIO(_text(_oracle(data.parent, name, "samples.csv")))))
    pages = int(next(a for a in PC.CASES[name][1].split()[2:] if a.isdigit()))
    out = [
        r
        for r in rows
        if r["event"] == event and r["addr"] and BASE <= int(r["addr"], 16) < BASE + pages * PAGE
    ]
    for r in out:
        r["page"] = (int(r["addr"], 16) - BASE) // PAGE
    return out


# ------------------------------------------------------------------ what was recorded
def test_each_page_is_one_fault_in_the_workload_order():
    faults = _region_faults("01_pf_c1_addr", "page-faults")
    assert [r["page"] for r in faults] == list(range(64))
    faults = _region_faults("05_two_events_id", "page-faults")
    assert [r["page"] for r in faults] == [i * 7 % 64 for i in range(64)]
    # the second event saw the same faults
    assert [r["page"] for r in _region_faults("05_two_events_id", "minor-faults")] == [
        i * 7 % 64 for i in range(64)
    ]


def test_minor_faults_carry_physical_addresses_and_page_sizes():
    faults = _region_faults("02_minflt_phys_pgsz", "minor-faults")
    assert [r["page"] for r in faults] == list(range(64))
    assert all(
        int(r["phys_addr"], 16) % PAGE == int(r["addr"], 16) % PAGE and int(r["phys_addr"], 16) > 0
        for r in faults
    )


def test_threads_write_their_own_share():
    faults = _region_faults("16_threads", "page-faults")
    assert [r["page"] for r in faults] == list(range(64))
    tids = [int(r["tid"]) for r in faults]
    assert len(set(tids)) == 4
    assert all(tids[i * 16 : (i + 1) * 16] == [tids[i * 16]] * 16 for i in range(4))
    assert {int(r["pid"]) for r in faults} == {int(faults[0]["pid"])} != {tids[0]}


def test_huge_pages_fault_once_per_2mib_where_the_kernel_gives_them():
    """MADV_HUGEPAGE: a fault that maps a 2 MiB page (perf's data page size 2M) is at a
    2 MiB boundary and is the only fault of that 2 MiB (the kernel may fall back to 4 KiB
    pages for some, and does not always count the later THP faults as minor faults)."""
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    if not thp.exists() or "[never]" in thp.read_text():
        pytest.skip("transparent huge pages are off on this machine")
    data = need_corpus("perf", "04_thp_minflt_pgsz.data")
    recs = [
        r
        for r in csv.DictReader(
            io.StringIO(_text(_oracle(data.parent, "04_thp_minflt_pgsz", "records.csv")))
        )
        if r["type"] == "9"
    ]
    region = [
        (int(r["addr"], 16) - BASE, r["data_page_size"])
        for r in recs
        if BASE <= int(r["addr"], 16) < BASE + 1024 * PAGE
    ]
    huge = [off for off, size in region if size == "2M"]
    assert huge and all(off % (2 << 20) == 0 for off in huge)
    for off, size in region:
        assert size in ("2M", "4K") and (
            size == "2M" or off // (2 << 20) not in {h // (2 << 20) for h in huge}
        )


def test_the_pipe_case_is_a_pipe_and_the_zstd_case_is_compressed():
    pipe = need_corpus("perf", "12_pipe.data").read_bytes()
    assert pipe[:8] == b"PERFILE2" and int.from_bytes(pipe[8:16], "little") == 16
    header = need_corpus("perf", "11_zstd.header.txt").read_text()
    assert "# compressed :" in header and "Zstd" in header


# ------------------------------------------------------- the oracle tables are perf's
@requires(REFERENCE.is_dir(), f"reference corpus not found at {REFERENCE}")
@pytest.mark.parametrize(
    "data", sorted(REFERENCE.glob("*.data")) or [REFERENCE], ids=lambda p: p.stem
)
def test_records_csv_equals_the_reference_corpus_from_the_same_dump(data):
    """records.csv re-formats `perf report -D`: from the reference corpus's dumps it gives
    the reference corpus's records.csv (made by another program) byte for byte."""
    stem = data.stem
    events = PC.evlist_events(_text(_oracle(REFERENCE, stem, "evlist.txt")))
    samples = list(csv.DictReader(io.StringIO(_text(_oracle(REFERENCE, stem, "samples.csv")))))
    pipe = data.read_bytes()[8:16] == (16).to_bytes(8, "little")
    recs = PC.dump_records(
        _text(_oracle(REFERENCE, stem, "dump.txt")),
        has_cpu=any("CPU" in e["bits"] for e in events),
        has_time=any("TIME" in e["bits"] for e in events),
        bias=16 if pipe else 0,
    )
    want = _text(_oracle(REFERENCE, stem, "records.csv")).replace("\r\n", "\n")
    assert PC.records_csv(recs, samples).replace("\r\n", "\n") == want


# symbols depend on the kernel and binaries of the machine perf runs on, not on the file
_MACHINE_COLUMNS = ("symbol",)
_MACHINE_KEYS = ("symbol", "symoff", "dso", "dso_bid", "dso_map_start", "dso_map_end")


@pytest.mark.perf
@requires(PC.shutil.which("perf"), "the perf binary is not installed")
@requires(REFERENCE.is_dir(), f"reference corpus not found at {REFERENCE}")
@pytest.mark.parametrize(
    "stem", ["05_two_events_id", "08_callchain_fp", "12_pipe", "18_tracepoint_mmap"]
)
def test_sample_rows_equal_the_reference_corpus_for_the_same_file(stem, tmp_path):
    """The perf-side script gives, for a reference file, the reference corpus's samples.csv
    (made by another script): every column, but symbols perf resolves on this machine."""
    out = tmp_path / "s.csv"
    r = subprocess.run(
        ["perf", "script", "-s", str(PC.ROWS_SCRIPT), "-i", str(REFERENCE / f"{stem}.data")],
        capture_output=True,
        text=True,
        env=dict(os.environ, SAMPLE_ROWS_OUT=str(out)),
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    got = list(csv.DictReader(out.open(newline="")))
    want = list(csv.DictReader(io.StringIO(_text(_oracle(REFERENCE, stem, "samples.csv")))))
    assert len(got) == len(want) > 0
    for i, (g, w) in enumerate(zip(got, want)):
        for col in w:
            if col in _MACHINE_COLUMNS:
                continue
            if col == "tp_fields" and w[col]:
                a, b = json.loads(g[col]), json.loads(w[col])
                for k in _MACHINE_KEYS:
                    a.pop(k, None), b.pop(k, None)
                assert a == b, (i, col)
            else:
                assert g[col] == w[col], (i, col)


def test_script_fields_are_those_every_event_of_a_kind_recorded():
    evs = PC.evlist_events(
        "syscalls:sys_enter_mmap: type: 2, size: 128, config: 0xae, sample_type: "
        "IP|TID|TIME|ADDR|CPU|PERIOD|RAW|IDENTIFIER|DATA_SRC, read_format: ID\n"
        "page-faults: type: 1, size: 128, config: 0x2, sample_type: "
        "IP|TID|TIME|ADDR|IDENTIFIER|DATA_SRC, disabled: 1\n"
    )
    assert PC.script_field_args(evs) == [
        "-F",
        "trace:comm,pid,tid,event,addr,data_src,cpu,time,period,trace",
        "-F",
        "sw:comm,pid,tid,event,ip,sym,symoff,dso,addr,data_src,time",
    ]


# ------------------------------------------------------------------------ the cache
_CHILD = """
import os, sys, time
sys.path.insert(0, {tests!r})
import perf_corpus as PC
def generate(out, names=None):
    with open({log!r}, "a") as f:
        f.write(f"{{os.getpid()}}\\n")
    time.sleep(1.0)
    return {{"reason": None, "failed": {{}}, "seconds": {{}}}}
PC.generate = generate
PC.shutil.which = lambda name: "/usr/bin/" + name     # as if perf and gcc were installed
PC.cache_key = lambda: "k"                            # (it asks perf its version)
print(PC.ensure().dir)
"""


def test_parallel_processes_record_the_corpus_once(tmp_path):
    """Two test processes starting at once on a machine without the cache: one records,
    the other waits for it and uses the same directory; a third finds it made."""
    log = tmp_path / "recorded-by"
    code = _CHILD.format(tests=str(Path(__file__).parent), log=str(log))
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    env.pop("TRACEDAMON_PERF_CORPUS", None)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
    dirs = {o.strip() for o, _ in outs}
    assert len(dirs) == 1 and len(log.read_text().split()) == 1
    third = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert third.stdout.strip() in dirs and len(log.read_text().split()) == 1
    made = Path(dirs.pop())
    assert made.parent == tmp_path / "cache" / "tracedamon" / "perf-corpus"
    assert json.loads((made / "status.json").read_text())["reason"] is None
    # nothing half-made is left beside it
    assert sorted(p.name for p in made.parent.iterdir()) == [made.name, made.name + ".lock"]


def test_a_given_directory_is_used_as_it_is(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACEDAMON_PERF_CORPUS", str(tmp_path))
    pc = PC.ensure()
    assert pc.dir == tmp_path and pc.reason is None
    assert "01_pf_c1_addr" in pc.why_missing("01_pf_c1_addr")
    (tmp_path / "01_pf_c1_addr.data").write_bytes(b"")
    assert pc.why_missing("01_pf_c1_addr") is None
    monkeypatch.setenv("TRACEDAMON_PERF_CORPUS", str(tmp_path / "nowhere"))
    assert "not a directory" in PC.ensure().why_missing("01_pf_c1_addr")
