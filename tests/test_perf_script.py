"""The `perf script` text reader (tracedamon/ingest/perf_script.py).

Oracles: perf's own outputs in the corpus (samples.csv from perf's python scripting,
records.csv from `perf report -D`) for the corpus's *.script.txt files; the written
truth of synthetic perf.data files (tests/perfdata_writer.py) and the native reader
for `--via-perf`.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import CORPUS, need_corpus, perf_corpus, requires_perf  # noqa: E402

from tracedamon.errors import TraceFormatError  # noqa: E402
from tracedamon.ingest import ingest  # noqa: E402
from tracedamon.ingest.perf_script import page_size_bytes, parse_lines  # noqa: E402
from tracedamon.store.trace import open_trace  # noqa: E402

PERF_DIR = perf_corpus().dir
UBENCH_DIR = CORPUS / "ubench-perf-mem"
CASES = [
    "01_pf_c1_addr",
    "02_minflt_phys_pgsz",
    "04_thp_minflt_pgsz",
    "05_two_events_id",
    "08_callchain_fp",
    "11_zstd",
    "12_pipe",
    "16_threads",
    "18_tracepoint_mmap",
    "24_damon_tracepoint",
]
UBENCH = ["perf-mem-4986", "perf-mem-9973", "perf-mem-19946", "perf-mem-39891"]


# ----------------------------------------------------------------------------------------
# the -F lists the corpus generator used (MANIFEST: fields valid for the file's
# sample_type, per perf event kind; tools/gen_corpus.py script_fields)

_GEN_FIELD_BITS = [
    ("ADDR", "addr"),
    ("PHYS_ADDR", "phys_addr"),
    ("DATA_SRC", "data_src"),
    ("WEIGHT", "weight"),
    ("WEIGHT_STRUCT", "weight"),
    ("DATA_PAGE_SIZE", "data_page_size"),
    ("CODE_PAGE_SIZE", "code_page_size"),
    ("REGS_INTR", "iregs"),
    ("REGS_USER", "uregs"),
    ("CPU", "cpu"),
    ("TIME", "time"),
    ("PERIOD", "period"),
]


def corpus_evlist(path: Path) -> list[dict]:
    out = []
    for line in path.read_text().splitlines():
        m = re.match(r"^(.+?): (?:type: (\d+), )?size: ", line)
        if not m:
            continue
        st = re.search(r"sample_type: ([A-Z_|]+)", line)
        out.append(
            dict(name=m[1], type=int(m[2] or 0), bits=set(st[1].split("|")) if st else set())
        )
    return out


def corpus_fields(evs: list[dict]) -> dict[str, list[str]]:
    kinds = {0: "hw", 1: "sw", 2: "trace", 3: "hw", 4: "raw", 5: "hw"}
    by: dict[str, list[dict]] = {}
    for e in evs:
        by.setdefault(kinds.get(e["type"], "raw"), []).append(e)
    out = {}
    for k, group in by.items():
        common = set.intersection(*[e["bits"] for e in group])
        f = ["comm", "pid", "tid", "event", "ip", "sym", "symoff", "dso"]
        for bit, fld in _GEN_FIELD_BITS:
            if bit in common and fld not in f:
                f.append(fld)
        if k == "trace":
            f = [x for x in f if x not in ("sym", "symoff", "dso", "ip")] + ["trace"]
        for e in group:
            out[e["name"]] = f
    return out


def read_csv(path: Path) -> list[dict]:
    if not path.exists():
        path = path.with_name(path.name + ".gz")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as f:
        return list(csv.DictReader(f))


def _int(s: str):
    return None if s in ("", None) else int(s, 0)


def ingest_text(src: Path, tmp: Path, **opts) -> list[dict]:
    out = ingest(src, tmp / (src.name + ".td"), format="perf-script", force=True, **opts)
    return open_trace(out).table("samples").to_pylist()


def compare_with_samples_csv(
    rows: list[dict], oracle: list[dict], *, full: bool, need_cols: tuple = ()
) -> None:
    """Our rows vs perf's samples.csv, both in time order (stable; perf script's text
    and perf's python delivery order differ where rounds overlap). ``full``: every
    column the -F list printed must be there."""
    assert len(rows) == len(oracle)
    rows = sorted(rows, key=lambda r: (r["time_ns"], r["event"].replace(":", "__")))
    oracle = sorted(oracle, key=lambda o: (int(o["time"]), o["event"]))
    for i, (r, o) in enumerate(zip(rows, oracle)):
        where = f"row {i} ({o['event']} t={o['time']})"
        assert r["time_ns"] == int(o["time"]), where
        assert r["event"].replace(":", "__") == o["event"], where
        assert r["pid"] == int(o["pid"]), where
        if o["tid"]:
            assert r["tid"] == int(o["tid"]), where
        assert r["cpu"] == _int(o["cpu"]), where  # null when not recorded
        if o["tp_fields"]:
            # tracepoint rows: perf's python handler gave the sample fields as JSON
            smp = json.loads(o["tp_fields"])["sample"]
            for col, key in (
                ("ip", "ip"),
                ("addr", "addr"),
                ("data_src", "datasrc"),
                ("period", "period"),
                ("tid", "tid"),
            ):
                if r[col] is not None:
                    assert r[col] == smp[key], f"{where}: {col}"
            assert r["addr"] is not None or "addr" not in need_cols, where
            continue
        for col in ("ip", "addr", "phys_addr", "data_src", "weight"):
            want = _int(o[col])
            if r[col] is None and not full:
                continue
            if col == "ip" and r["ip"] is None and (r["event"].count(":") or o["callchain"]):
                continue  # tracepoints: no ip asked; callchains: perf prints no ip

            assert r[col] == want, f"{where}: {col}: text {r[col]!r}, perf {want!r}"
        if o["callchain"]:
            # perf printed the callchain (user entries relative to their dso) instead
            # of the ip: neither is kept
            assert r["ip"] is None and r["callchain"] is None, where
        if r["data_src"] is not None:
            parts = {
                k: v.strip()
                for k, _, v in (p.partition(" ") for p in o["data_src_decode"].split("|")[1:])
            }
            assert (
                r["mem_op"],
                r["mem_level"],
                r["mem_snoop"],
                r["mem_tlb"],
                r["mem_lock"],
                r["mem_blk"],
            ) == (
                parts["OP"],
                parts["LVL"],
                parts["SNP"],
                parts["TLB"],
                parts["LCK"],
                parts["BLK"],
            ), where


@pytest.mark.parametrize("name", CASES)
def test_corpus_script_text_equals_samples_csv(name, tmp_path):
    src = need_corpus("perf", f"{name}.script.txt")
    fields = corpus_fields(corpus_evlist(PERF_DIR / f"{name}.evlist.txt"))
    rows = ingest_text(src, tmp_path, fields=fields)
    compare_with_samples_csv(
        rows,
        read_csv(PERF_DIR / f"{name}.samples.csv"),
        full=True,
        need_cols=("addr",) if name.startswith("18") else (),
    )
    # page sizes: records.csv (perf report -D, file order) in time order
    recs = [r for r in read_csv(PERF_DIR / f"{name}.records.csv") if r["type"] == "9"]
    if recs and recs[0]["data_page_size"]:
        recs.sort(key=lambda r: int(r["time"]))
        want = sorted((int(r["time"]), page_size_bytes(r["data_page_size"])) for r in recs)
        got = sorted((r["time_ns"], r["data_page_size"]) for r in rows)
        assert got == want


@pytest.mark.parametrize("name", CASES)
def test_corpus_script_text_inferred_fields(name, tmp_path):
    """Without the -F list the reader infers the fields from each line's shape."""
    src = need_corpus("perf", f"{name}.script.txt")
    rows = ingest_text(src, tmp_path)
    oracle = read_csv(PERF_DIR / f"{name}.samples.csv")
    compare_with_samples_csv(rows, oracle, full=False)
    evs = corpus_evlist(PERF_DIR / f"{name}.evlist.txt")
    if all(e["type"] != 2 for e in evs):
        # away from tracepoint text every printed number is recovered
        rows = sorted(rows, key=lambda r: (r["time_ns"], r["event"]))
        oracle = sorted(oracle, key=lambda o: (int(o["time"]), o["event"]))
        for r, o in zip(rows, oracle):
            assert r["addr"] == _int(o["addr"])
            assert r["ip"] == (None if o["callchain"] else _int(o["ip"]))
            assert r["data_src"] == _int(o["data_src"])
            assert r["phys_addr"] == _int(o["phys_addr"])


@pytest.mark.parametrize("name", UBENCH)
def test_ubench_perf_mem_script_equals_records(name, tmp_path):
    """Real Intel PEBS mem-loads (load latency in WEIGHT, real data_src) printed by perf
    6.1; oracle: perf report -D's records (records.csv), in time order."""
    src = need_corpus("ubench-perf-mem", f"ubench_{name}.script.txt")
    for fields in (None, "comm,pid,tid,time,event,addr,data_src,weight,ip,sym,dso"):
        rows = ingest_text(src, tmp_path, fields=fields)
        recs = [
            r
            for r in read_csv(UBENCH_DIR / f"ubench_{name}.records.csv")
            if r["type_name"] == "SAMPLE"
        ]
        recs.sort(key=lambda r: int(r["time"]))
        assert len(rows) == len(recs) > 0
        for r, o in zip(rows, recs):
            assert (r["time_ns"], r["pid"], r["tid"]) == (
                int(o["time"]),
                int(o["pid"]),
                int(o["tid"]),
            )
            assert (r["ip"], r["addr"], r["data_src"], r["weight"]) == (
                int(o["ip"], 16),
                int(o["addr"], 16),
                int(o["data_src"], 16),
                int(o["weight"]),
            )
            assert r["event"] == "cpu/mem-loads/pp"
        # the decoded text of a real PEBS value, as perf printed it in this file
        text = src.read_text()
        for r in rows:
            if r["data_src"] == 0x68100142:
                assert (
                    r["mem_op"],
                    r["mem_level"],
                    r["mem_snoop"],
                    r["mem_tlb"],
                    r["mem_lock"],
                ) == ("LOAD", "L1 hit", "None", "L1 or L2 hit", "No")
        assert "68100142 |OP LOAD|LVL L1 hit|SNP None|TLB L1 or L2 hit|LCK No|BLK  N/A" in text


# ----------------------------------------------------------------------------------------
# malformed input, skip-bad, gzip, batches

GOOD = (
    "            work     7/8     [001]     2.000000001:          5 ev:         7fff0000"
    "        68100142 |OP LOAD|LVL L1 hit|SNP None|TLB L1 or L2 hit|LCK No|BLK  N/A"
    "              29           400123        12345000 4K\n"
)
FIELDS = "comm,pid,tid,cpu,time,period,event,addr,data_src,weight,ip,phys_addr,data_page_size"


def test_one_line_all_fields():
    rows = [r for b in parse_lines([GOOD], source="x", fields=FIELDS) for r in b]
    assert rows == [
        dict(
            pid=7,
            tid=8,
            cpu=1,
            time_ns=2_000_000_001,
            period=5,
            event="ev",
            comm="work",
            addr=0x7FFF0000,
            data_src=0x68100142,
            weight=29,
            ip=0x400123,
            phys_addr=0x12345000,
            data_page_size=4096,
        )
    ]
    auto = [r for b in parse_lines([GOOD], source="x") for r in b]
    assert auto == rows


def test_decode_text_cut_by_perf():
    """perf 6.1 cuts the data_src text at 82 characters, even inside the BLK value."""
    line = (
        "  w 5/5 1.000000000: ev:   5062 |OP LOAD|LVL N/A or Local RAM or Remote RAM (2 hops)"
        " hit|SNP N/A|TLB N/A|LCK No|BL           400000\n"
    )
    rows = [
        r
        for b in parse_lines([line], source="x", fields="comm,pid,tid,time,event,data_src,ip")
        for r in b
    ]
    assert (rows[0]["data_src"], rows[0]["ip"]) == (0x5062, 0x400000)
    rows = [r for b in parse_lines([line], source="x") for r in b]
    assert (rows[0]["data_src"], rows[0]["ip"]) == (0x5062, 0x400000)


def test_malformed_line_names_file_and_line(tmp_path):
    p = tmp_path / "bad.script.txt"
    p.write_text(GOOD + GOOD + "this is not perf output\n" + GOOD)
    with pytest.raises(TraceFormatError) as ei:
        ingest(p, tmp_path / "o.td", format="perf-script", fields=FIELDS)
    assert "bad.script.txt at line 3" in str(ei.value)
    assert not (tmp_path / "o.td").exists()
    p.write_text(GOOD + GOOD.replace("68100142 |OP", "68100142 OP") + GOOD)
    with pytest.raises(TraceFormatError) as ei:
        ingest(p, tmp_path / "o.td", format="perf-script", fields=FIELDS)
    assert ei.value.line == 2


def test_skip_bad_counts_skipped_lines(tmp_path):
    p = tmp_path / "bad.script.txt"
    p.write_text(GOOD + "garbage\n" + GOOD + "   ev: no header 1.5\n" + GOOD)
    out = ingest(p, tmp_path / "o.td", format="perf-script", fields=FIELDS, skip_bad=True)
    assert open_trace(out).num_rows("samples") == 3
    assert json.loads((out / "meta.json").read_text())["skipped"] == 2


def test_gzip_input_and_batches(tmp_path, monkeypatch):
    from tracedamon.ingest import perf_script as ps

    monkeypatch.setattr(ps, "BATCH_ROWS", 7)
    lines = []
    for i in range(50):
        t = 2_000_000_000 + i
        lines.append(
            GOOD.replace("2.000000001", f"{t // 10**9}.{t % 10**9:09d}").replace(
                "7fff0000", f"{0x7FFF0000 + i:x}"
            )
        )
    p = tmp_path / "s.script.txt.gz"
    with gzip.open(p, "wt") as f:
        f.writelines(lines)
    out = ingest(p, tmp_path / "o.td", format="perf-script")
    tr = open_trace(out)
    rows = tr.table("samples").to_pylist()
    assert [r["addr"] for r in rows] == [0x7FFF0000 + i for i in range(50)]
    import pyarrow.parquet as pq

    assert pq.ParquetFile(out / "samples.parquet").num_row_groups == 8  # 7 rows each
    ev = tr.table("events").to_pylist()
    assert [(e["name"], e["nr_samples"]) for e in ev] == [("ev", 50)]


def test_empty_text_gives_empty_tables(tmp_path):
    p = tmp_path / "e.script.txt"
    p.write_text("# nothing\n")
    out = ingest(p, tmp_path / "o.td", format="perf-script")
    assert open_trace(out).num_rows("samples") == 0


def test_microsecond_times_are_scaled():
    line = "  w 5/5 12.345678: ev:  400000\n"
    rows = [r for b in parse_lines([line], source="x") for r in b]
    assert rows[0]["time_ns"] == 12_345_678_000


def test_callchain_lines_are_skipped():
    lines = [
        "  w 5/5 1.000000000: ev:     1000 |OP N/A|LVL N/A|SNP N/A|TLB N/A|LCK N/A|BLK  N/A\n",
        "\tffffffff81752b6a elf_load+0x28a ([kernel.kallsyms])\n",
        "\t    7f4a9eaf2ad7 [unknown] (/lib/x.so)\n",
        "\n",
        "  w 5/5 1.000000001: ev:     2000 |OP N/A|LVL N/A|SNP N/A|TLB N/A|LCK N/A|BLK  N/A\n",
    ]
    rows = [
        r
        for b in parse_lines(
            lines, source="x", fields="comm,pid,tid,time,event,data_src,ip,sym,dso"
        )
        for r in b
    ]
    assert [(r["data_src"], r.get("ip"), r.get("callchain")) for r in rows] == [
        (0x1000, None, None),
        (0x2000, None, None),
    ]
    stats = {}
    list(parse_lines(lines, source="x", stats=stats))
    assert stats["callchain_lines"] == 2


def test_symbols_with_blanks_and_missing_symbols():
    """perf prints sym/dso after an address only where it resolved one; demangled
    symbols may hold blanks."""
    line = (
        "  w 5/5 1.000000000: ev:  7fff0000 operator new(unsigned long)+0x10 (/lib/libstdc++.so)"
        "        68100142 |OP LOAD|LVL L1 hit|SNP None|TLB L1 or L2 hit|LCK No|BLK  N/A"
        "   29   400123 std::vector<int, std::allocator<int> >::push_back+0x5 (/bin/x)\n"
    )
    want = dict(addr=0x7FFF0000, data_src=0x68100142, weight=29, ip=0x400123)
    for f in (None, "comm,pid,tid,time,event,addr,data_src,weight,ip,sym,symoff,dso"):
        r = [r for b in parse_lines([line], source="x", fields=f) for r in b][0]
        assert {k: r[k] for k in want} == want, f
    bare = (
        "  w 5/5 1.000000000: ev:  7fff0000        68100142 |OP LOAD|LVL L1 hit|SNP None"
        "|TLB L1 or L2 hit|LCK No|BLK  N/A   29   400123 [unknown] (/bin/x)\n"
    )
    for f in (None, "comm,pid,tid,time,event,addr,data_src,weight,ip,sym,dso"):
        r = [r for b in parse_lines([bare], source="x", fields=f) for r in b][0]
        assert {k: r[k] for k in want} == want, f


@requires_perf
@pytest.mark.parametrize(
    "rel",
    [
        "perf/01_pf_c1_addr",
        "perf/05_two_events_id",
        "perf/16_threads",
        "perf/18_tracepoint_mmap",
        "ubench-perf-mem/perf-mem-4986",
    ],
)
def test_default_perf_script_output(rel, tmp_path):
    """Plain `perf script` (default fields, microsecond times, tid only) is read too."""
    import subprocess

    src = need_corpus(*(rel + ".data").split("/"))
    p = subprocess.run(
        ["perf", "script", "-i", str(src)], capture_output=True, text=True, timeout=120
    )
    assert p.returncode == 0, p.stderr
    txt = tmp_path / "default.txt"
    txt.write_text(p.stdout)
    rows = ingest_text(txt, tmp_path)
    d, name = rel.split("/")
    if d == "perf":
        oracle = [
            dict(
                time=int(o["time"]),
                tid=int(o["tid"] or o["pid"]),
                cpu=_int(o["cpu"]),
                period=int(o["period"] or 1),
                event=o["event"],
                ip=_int(o["ip"]),
                addr=None,
            )
            for o in read_csv(PERF_DIR / f"{name}.samples.csv")
        ]
    else:
        oracle = [
            dict(
                time=int(o["time"]),
                tid=int(o["tid"]),
                cpu=None,
                period=4986,
                event="cpu/mem-loads/pp",
                ip=int(o["ip"], 16),
                addr=int(o["addr"], 16),
                data_src=int(o["data_src"], 16),
                weight=int(o["weight"]),
            )
            for o in read_csv(UBENCH_DIR / f"ubench_{name}.records.csv")
            if o["type_name"] == "SAMPLE"
        ]
    assert len(rows) == len(oracle) > 0
    rows = sorted(rows, key=lambda r: (r["time_ns"], r["event"].replace(":", "__")))
    oracle = sorted(oracle, key=lambda o: (o["time"], o["event"]))
    for r, o in zip(rows, oracle):
        assert r["time_ns"] == o["time"] // 1000 * 1000  # perf printed µs
        assert (r["tid"], r["pid"], r["cpu"]) == (o["tid"], None, o["cpu"])
        assert r["event"].replace(":", "__") == o["event"]
        # perf's default fields hold no period for tracepoints
        assert r["period"] == (None if r["event"].count(":") else o["period"])
        if r["event"].count(":") == 0:
            assert r["ip"] == o["ip"]
            assert r["addr"] == o["addr"]
        if "data_src" in o:
            assert (r["data_src"], r["weight"]) == (o["data_src"], o["weight"])


def test_truncated_gzip_is_a_format_error(tmp_path):
    p = tmp_path / "cut.script.txt.gz"
    p.write_bytes(gzip.compress((GOOD * 20000).encode())[:5000])
    with pytest.raises(TraceFormatError) as ei:
        ingest(p, tmp_path / "o.td", format="perf-script")
    assert "cut.script.txt.gz" in str(ei.value)
    assert not (tmp_path / "o.td").exists()


def test_progress_bar_reads_the_same_rows(tmp_path):
    src = need_corpus("perf", "02_minflt_phys_pgsz.script.txt")
    a = ingest(src, tmp_path / "a.td", format="perf-script")
    b = ingest(src, tmp_path / "b.td", format="perf-script", progress=True)
    assert open_trace(a).table("samples").equals(open_trace(b).table("samples"))


def test_cli_script_fields_option(tmp_path):
    """`tracedamon ingest --script-fields` gives the -F list of an ambiguous text: here
    "29 7 400123" could be weight/ins_lat/ip or weight/ip/phys_addr."""
    from typer.testing import CliRunner

    from tracedamon.cli import app

    line = (
        "  w 5/5 1.000000000: ev:  7fff0000        68100142 |OP LOAD|LVL L1 hit|SNP None"
        "|TLB L1 or L2 hit|LCK No|BLK  N/A   29   7   400123\n"
    )
    p = tmp_path / "amb.script.txt"
    p.write_text(line)
    res = CliRunner().invoke(app, ["ingest", str(p), "-o", str(tmp_path / "a.td")])
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "a.td" / "meta.json").read_text())
    assert meta["perf_script_guessed_lines"] == 1
    assert open_trace(tmp_path / "a.td").table("samples").to_pylist()[0]["phys_addr"] == 0x400123
    res = CliRunner().invoke(
        app,
        [
            "ingest",
            str(p),
            "-o",
            str(tmp_path / "b.td"),
            "--script-fields",
            "comm,pid,tid,time,event,addr,data_src,weight,ins_lat,ip",
        ],
    )
    assert res.exit_code == 0, res.output
    r = open_trace(tmp_path / "b.td").table("samples").to_pylist()[0]
    assert (r["weight"], r["weight2"], r["ip"], r["phys_addr"]) == (29, 7, 0x400123, None)


@pytest.mark.parametrize("name", ["01_pf_c1_addr", "12_pipe", "16_threads", "24_damon_tracepoint"])
def test_corpus_script_sideband_equals_native(name, tmp_path):
    """mmaps and tasks from the PERF_RECORD_* lines of the corpus text (perf script
    --show-mmap-events --show-task-events) equal the native reader's on the same
    recording, wherever the text shows the value."""
    src = need_corpus("perf", f"{name}.script.txt")
    a = open_trace(ingest(src, tmp_path / "t.td", format="perf-script"))
    b = open_trace(ingest(PERF_DIR / f"{name}.data", tmp_path / "n.td", format="perf-data"))
    for table in ("mmaps", "tasks"):
        x, y = a.table(table).to_pylist(), b.table(table).to_pylist()
        assert len(x) == len(y) > 0
        for i, (xr, yr) in enumerate(zip(x, y)):
            for k, v in xr.items():
                if k == "flags" and v is not None:
                    assert v == (1 if yr[k] & 1 else 2)
                elif v is not None:
                    assert v == yr[k], f"{table} row {i}: {k}: text {v!r}, native {yr[k]!r}"


def test_unknown_cpu_is_null():
    """perf prints [-01] for a sample without a cpu (an event of a kind whose first
    event recorded one): null, not -1."""
    line = "  w 5/5 [-01] 1.000000000: ev:  400000\n"
    for f in (None, "comm,pid,tid,cpu,time,event,ip"):
        r = [r for b in parse_lines([line], source="x", fields=f) for r in b][0]
        assert "cpu" not in r and r["ip"] == 0x400000
