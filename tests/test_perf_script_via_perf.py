"""`tracedamon ingest --via-perf`: perf.data decoded by the installed `perf script`.

Oracles: the written truth of synthetic files (tests/perfdata_writer.py) and the
native reader (tracedamon.ingest.perf_data), on synthetic files and on the real
corpus files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import need_corpus, requires_perf  # noqa: E402
from perfdata_writer import S, Event, Sample, write_perf_data  # noqa: E402
from helpers.native_truth import expected_native_rows, expected_sideband  # noqa: E402
from helpers.perf_cases import scenario, write_case  # noqa: E402

from tracedamon.errors import TraceFormatError  # noqa: E402
from tracedamon.ingest import ingest  # noqa: E402
from tracedamon.store.trace import open_trace  # noqa: E402

pytestmark = [requires_perf, pytest.mark.perf]

# what a perf script line can carry (the rest is null from text)
TEXT_COLS = (
    "time_ns",
    "pid",
    "tid",
    "cpu",
    "event_id",
    "event",
    "ip",
    "addr",
    "phys_addr",
    "period",
    "weight",
    "weight2",
    "data_src",
    "mem_op",
    "mem_level",
    "mem_snoop",
    "mem_tlb",
    "mem_lock",
    "mem_blk",
    "mem_remote",
    "mem_hops",
    "mem_lvl_num",
    "data_page_size",
    "code_page_size",
    "cpumode",
)
NEVER_FROM_TEXT = (
    "weight3",
    "transaction",
    "cgroup",
    "stream_id",
    "sample_id",
    "callchain",
    "raw",
    "file_offset",
)


def via_perf(path, tmp: Path) -> tuple[list[dict], list[dict], dict]:
    out = ingest(path, tmp / "vp.td", format="perf-data", via_perf=True, force=True)
    tr = open_trace(out)
    meta = json.loads((out / "meta.json").read_text())
    return tr.table("samples").to_pylist(), tr.table("events").to_pylist(), meta


def check_sideband_vs_native(tmp: Path) -> None:
    """mmaps and tasks from perf's PERF_RECORD_* lines equal the native reader's
    wherever the text shows the value (flags: only shared/private)."""
    a, b = open_trace(tmp / "vp.td"), open_trace(tmp / "nat.td")
    for name in ("mmaps", "tasks"):
        x = a.table(name).to_pylist() if a.has(name) else []
        y = b.table(name).to_pylist() if b.has(name) else []
        assert len(x) == len(y), name
        for i, (xr, yr) in enumerate(zip(x, y)):
            for k, v in xr.items():
                if k == "flags" and v is not None:
                    assert v == (1 if yr[k] & 1 else 2), f"{name} row {i}: flags"
                elif v is not None:
                    assert v == yr[k], f"{name} row {i}: {k}: via perf {v!r}, native {yr[k]!r}"


def native(path, tmp: Path) -> tuple[list[dict], list[dict]]:
    out = ingest(path, tmp / "nat.td", format="perf-data", force=True)
    tr = open_trace(out)
    return tr.table("samples").to_pylist(), tr.table("events").to_pylist()


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(case=scenario())
def test_via_perf_equals_written_truth_and_native(tmp_path_factory, case):
    tmp = tmp_path_factory.mktemp("vp")
    path = write_case(tmp, case)
    rows, events, meta = via_perf(path, tmp)
    want = expected_native_rows(case)
    assert len(rows) == len(want)
    assert [e["name"] for e in events] == [e.name for e in case["events"]]
    # each event has its own perf type in these cases: perf printed every field
    assert all(v == [] for v in meta["perf_script_unprinted_fields"].values())
    for i, (r, w) in enumerate(zip(rows, want)):
        for col in TEXT_COLS:
            if col in w:
                assert r[col] == w[col], f"sample {i}: {col}: via perf {r[col]!r}, wrote {w[col]!r}"
        assert r["cpumode"] == w["cpumode"]
        for col in NEVER_FROM_TEXT:
            assert r[col] is None
    nat, _ = native(path, tmp)
    assert len(nat) == len(rows)
    for i, (r, n) in enumerate(zip(rows, nat)):
        for col in TEXT_COLS:
            assert r[col] == n[col], f"sample {i}: {col}: via perf {r[col]!r}, native {n[col]!r}"
    check_sideband_vs_native(tmp)
    # and against the written side-band records
    side = expected_sideband(case)
    tr = open_trace(tmp / "vp.td")
    for name in ("mmaps", "tasks"):
        got = tr.table(name).to_pylist() if tr.has(name) else []
        assert len(got) == len(side[name])
        for g, w in zip(got, side[name]):
            for k, v in w.items():
                if g.get(k) is not None and k != "flags":
                    assert g[k] == v, f"{name}: {k}: via perf {g[k]!r}, wrote {v!r}"


PERF_FILES = [
    "perf/01_pf_c1_addr.data",
    "perf/02_minflt_phys_pgsz.data",
    "perf/04_thp_minflt_pgsz.data",
    "perf/05_two_events_id.data",
    "perf/08_callchain_fp.data",
    "perf/11_zstd.data",
    "perf/12_pipe.data",
    "perf/16_threads.data",
    "perf/18_tracepoint_mmap.data",
    "perf/24_damon_tracepoint.data",
    "ubench-perf-mem/perf-mem-4986.data",
    "ubench-perf-mem/perf-mem-39891.data",
]


@pytest.mark.parametrize("rel", PERF_FILES)
def test_via_perf_equals_native_on_real_files(rel, tmp_path):
    src = need_corpus(*rel.split("/"))
    rows, events, meta = via_perf(src, tmp_path)
    nat, nat_events = native(src, tmp_path)
    check_sideband_vs_native(tmp_path)
    assert [e["name"] for e in events] == [e["name"] for e in nat_events]
    assert len(rows) == len(nat) > 0
    key = lambda r: (r["time_ns"], r["event_id"], r["tid"])  # noqa: E731
    rows, nat = sorted(rows, key=key), sorted(nat, key=key)
    printed = {name: set(f) for name, f in meta["perf_script_fields"].items()}
    col_field = {
        "cpu": "cpu",
        "ip": "ip",
        "addr": "addr",
        "phys_addr": "phys_addr",
        "weight": "weight",
        "weight2": "ins_lat",
        "data_src": "data_src",
        "data_page_size": "data_page_size",
        "code_page_size": "code_page_size",
        "period": "period",
        "cpumode": "misc",
    }
    for i, (r, n) in enumerate(zip(rows, nat)):
        f = printed[r["event"]]
        for col in TEXT_COLS:
            if col in col_field and col_field[col] not in f:
                assert r[col] is None or col == "cpumode", f"row {i}: {col} without its field"
                continue
            assert r[col] == n[col], f"{rel} row {i}: {col}: via perf {r[col]!r}, native {n[col]!r}"


def test_two_events_of_one_kind_with_different_fields(tmp_path):
    """perf prints one field set per event kind: the fields common to its events are
    read, the others are reported as unprinted (never invented values)."""
    a = Event(
        "evA",
        type=1,
        config=1,
        sample_type=S.IP
        | S.TID
        | S.TIME
        | S.IDENTIFIER
        | S.CPU
        | S.ADDR
        | S.PHYS_ADDR
        | S.DATA_SRC
        | S.WEIGHT,
    )
    b = Event("evB", type=1, config=2, sample_type=S.IP | S.TID | S.TIME | S.IDENTIFIER | S.ADDR)
    recs = [
        Sample(
            a,
            ip=0x400000,
            pid=5,
            tid=5,
            time=10**9,
            cpu=1,
            addr=0x1234,
            phys_addr=0x999000,
            data_src=0x68100142,
            weight=7,
        ),
        Sample(b, ip=0x400001, pid=5, tid=5, time=10**9 + 1, addr=0x1235),
    ]
    path = write_perf_data(tmp_path / "mix.data", [b, a], recs)
    rows, events, meta = via_perf(path, tmp_path)
    assert [(r["event"], r["ip"], r["addr"]) for r in rows] == [
        ("evA", 0x400000, 0x1234),
        ("evB", 0x400001, 0x1235),
    ]
    assert all(r[c] is None for r in rows for c in ("cpu", "phys_addr", "data_src", "weight"))
    assert meta["perf_script_unprinted_fields"] == {
        "evB": [],
        "evA": ["cpu", "data_src", "phys_addr", "weight"],
    }
    assert [(e["name"], e["nr_samples"]) for e in events] == [("evB", 1), ("evA", 1)]


def test_via_perf_from_the_command_line(tmp_path):
    from typer.testing import CliRunner

    from tracedamon.cli import app

    src = need_corpus("ubench-perf-mem", "perf-mem-39891.data")
    res = CliRunner().invoke(app, ["ingest", str(src), "--via-perf", "-o", str(tmp_path / "c.td")])
    assert res.exit_code == 0, res.output
    rows = open_trace(tmp_path / "c.td").table("samples").to_pylist()
    assert len(rows) == 31 and rows[0]["event"] == "cpu/mem-loads/pp"
    assert {r["mem_op"] for r in rows} == {"LOAD"}


def _ibs_like(tmp_path, with_phys=True):
    """An AMD IBS-like dynamic PMU event (type 11: no perf -F kind) plus a software
    event: perf script then takes one field list for all events."""
    st = (
        S.IP
        | S.TID
        | S.TIME
        | S.ADDR
        | S.CPU
        | S.PERIOD
        | S.DATA_SRC
        | S.WEIGHT_STRUCT
        | S.IDENTIFIER
    )
    ibs = Event("ibs_op//", type=11, sample_type=st | (S.PHYS_ADDR if with_phys else 0))
    sw = Event(
        "page-faults",
        type=1,
        config=2,
        sample_type=S.IP | S.TID | S.TIME | S.ADDR | S.CPU | S.IDENTIFIER,
    )
    from perfdata_writer import weight_struct

    recs = []
    for i in range(6):
        if i % 3:
            f = dict(phys_addr=0x5000 * i) if with_phys else {}
            recs.append(
                Sample(
                    ibs,
                    ip=0x400000 + i,
                    pid=5,
                    tid=5,
                    time=10**9 + i,
                    addr=0x1000 * i,
                    cpu=i % 2,
                    period=100,
                    data_src=0x68100142 if i % 2 else 0x1E05080021,
                    weight=weight_struct(30 + i, 5 + i),
                    **f,
                )
            )
        else:
            recs.append(
                Sample(sw, ip=0x400100 + i, pid=5, tid=5, time=10**9 + i, addr=0x2000 * i, cpu=1)
            )
    path = write_perf_data(tmp_path / "ibs.data", [ibs, sw], recs)
    return path, recs


def test_dynamic_pmu_type_uses_one_field_list(tmp_path):
    path, recs = _ibs_like(tmp_path)
    rows, events, meta = via_perf(path, tmp_path)
    assert "-F comm,pid,tid,cpu,misc,time,period,event,addr,ip" in meta["perf_script_command"]
    assert meta["perf_script_unprinted_fields"]["ibs_op//"] == [
        "data_src",
        "ins_lat",
        "phys_addr",
        "weight",
    ]
    assert [(r["event"], r["ip"], r["addr"], r["cpu"]) for r in rows] == [
        (s.event.name, s["ip"], s["addr"], s["cpu"]) for s in recs
    ]
    assert all(r["data_src"] is None and r["weight"] is None for r in rows)
    nat, _ = native(path, tmp_path)
    for r, n in zip(rows, nat):
        assert (r["event_id"], r["period"], r["time_ns"]) == (
            n["event_id"],
            n["period"],
            n["time_ns"],
        )


def test_refused_field_is_dropped_and_perf_rerun(tmp_path, monkeypatch):
    """Should perf refuse a field ("Cannot print 'X' field"), it is dropped and perf
    is run again; the other fields are still read."""
    from tracedamon.ingest import perf_run as ps

    path, recs = _ibs_like(tmp_path, with_phys=False)
    real = ps.fields_for_event

    def claims_phys(ev):  # as if perf evlist had promised PHYS_ADDR
        f = real(ev)
        return f if "phys_addr" in f else f + ["phys_addr"]

    monkeypatch.setattr(ps, "fields_for_event", claims_phys)
    rows, events, meta = via_perf(path, tmp_path)
    assert meta["perf_script_refused_fields"] == ["phys_addr"]
    assert [(r["ip"], r["addr"]) for r in rows] == [(s["ip"], s["addr"]) for s in recs]
    assert all(r["phys_addr"] is None for r in rows)


def test_aux_pmu_file_asks_memory_fields_for_synthesized_samples(tmp_path):
    """A file whose event is an AUX-area PMU (here only named like Arm SPE: this machine
    has no SPE, so no AUX data and no synthesized samples): perf accepts the extra
    hw field list meant for the samples it would synthesize, and the recorded event's
    own samples still read right."""
    st = S.IP | S.TID | S.TIME | S.ADDR | S.CPU | S.PERIOD | S.DATA_SRC | S.WEIGHT | S.PHYS_ADDR
    spe = Event("arm_spe_0/ts_enable=1,pa_enable=1/", type=11, sample_type=st)
    recs = [
        Sample(
            spe,
            ip=0x400000 + i,
            pid=5,
            tid=5,
            time=10**9 + i,
            addr=0x1000 * i,
            cpu=0,
            period=1,
            data_src=0x68100142,
            weight=40 + i,
            phys_addr=0x9000 * i,
        )
        for i in range(3)
    ]
    path = write_perf_data(tmp_path / "spe.data", [spe], recs)
    rows, _, meta = via_perf(path, tmp_path)
    assert (
        "-F hw:comm,pid,tid,cpu,time,period,event,addr,data_src,weight,ip,phys_addr"
        in meta["perf_script_command"]
    )
    assert "(synthesized)" in meta["perf_script_fields"]
    assert [(r["addr"], r["phys_addr"], r["weight"], r["data_src"]) for r in rows] == [
        (0x1000 * i, 0x9000 * i, 40 + i, 0x68100142) for i in range(3)
    ]


@pytest.mark.parametrize("keep", [200, 3000])
def test_truncated_perf_data_fails_cleanly(keep, tmp_path):
    """perf refuses a cut file (header cut: perf evlist; records cut: perf script):
    one error naming the file, no output directory left behind."""
    from tracedamon.errors import TracedamonError

    src = need_corpus("perf", "01_pf_c1_addr.data")
    cut = tmp_path / "cut.data"
    cut.write_bytes(src.read_bytes()[:keep])
    with pytest.raises(TracedamonError) as ei:
        ingest(cut, tmp_path / "o.td", format="perf-data", via_perf=True)
    assert "cut.data" in str(ei.value)
    assert not (tmp_path / "o.td").exists()


def test_fields_after_a_printed_callchain(tmp_path):
    """Without -G perf prints the callchain in place of the ip, then the remaining
    fields on a line of their own; those are read, the callchain is not."""
    import subprocess

    ev = Event(
        "cycles",
        type=0,
        sample_type=S.IP | S.TID | S.TIME | S.ADDR | S.CALLCHAIN | S.PHYS_ADDR | S.DATA_PAGE_SIZE,
    )
    recs = [
        Sample(
            ev,
            ip=0x400000 + i,
            pid=5,
            tid=5,
            time=10**9 + i,
            addr=0x1000 * i,
            callchain=[0xFFFFFFFFFFFFFE00, 0x400000 + i, 0x400100],
            phys_addr=0x9000 * (i + 1),
            data_page_size=[4096, 2 << 20][i % 2],
        )
        for i in range(4)
    ]
    path = write_perf_data(tmp_path / "cc.data", [ev], recs)
    fields = "comm,pid,tid,time,event,addr,ip,phys_addr,data_page_size"
    p = subprocess.run(
        ["perf", "script", "-i", path, "--ns", "-F", fields], capture_output=True, text=True
    )
    assert p.returncode == 0, p.stderr
    assert "\t" in p.stdout  # the callchain is there
    txt = tmp_path / "cc.txt"
    txt.write_text(p.stdout)
    for f in (fields, None):
        out = ingest(txt, tmp_path / "cc.td", format="perf-script", fields=f, force=True)
        rows = open_trace(out).table("samples").to_pylist()
        assert [(r["addr"], r["ip"], r["phys_addr"], r["data_page_size"]) for r in rows] == [
            (s["addr"], None, s["phys_addr"], s["data_page_size"]) for s in recs
        ]


# ----------------------------------------------------------------------------------------
# the text reader on perf script texts made with drawn -F field sets

from hypothesis import strategies as st  # noqa: E402

from helpers.perf_cases import TYPE_KIND  # noqa: E402
from helpers.perf_oracle import expected_periods, script_fields  # noqa: E402


@st.composite
def text_case(draw):
    case = draw(scenario())
    choice = {}
    for ev in case["events"]:
        avail = [f for f in script_fields(ev) if f not in ("comm", "pid", "tid", "time", "event")]
        keep = [f for f in avail if draw(st.booleans())]
        extra = [f for f in ("sym", "dso", "misc") if draw(st.booleans())]
        if not {"ip", "addr"} & set(keep):
            extra = [f for f in extra if f == "misc"]  # perf: nothing to resolve
        if "sym" in extra and draw(st.booleans()):
            extra.append("symoff")  # perf: only with sym
        choice[ev.name] = ["comm", "pid", "tid", "time", "event"] + keep + extra
    case["fields"] = choice
    case["hide_callchain"] = draw(st.booleans())
    return case


def _expected_text_rows(case: dict) -> list[dict]:
    samples = [r for r in case["records"] if isinstance(r, Sample)]
    out = []
    for s, per in zip(samples, expected_periods(samples)):
        ev = s.event
        f = set(case["fields"][ev.name])
        cc = ev.sample_type & S.CALLCHAIN and not case["hide_callchain"]
        w = s.get("weight")
        row = dict(
            time_ns=s["time"],
            pid=s["pid"],
            tid=s["tid"],
            event=ev.name,
            cpu=s.get("cpu") if "cpu" in f else None,
            period=per if "period" in f else None,
            addr=s.get("addr") if "addr" in f else None,
            data_src=s.get("data_src") if "data_src" in f else None,
            weight=(w & 0xFFFFFFFF if ev.sample_type & S.WEIGHT_STRUCT else w)
            if "weight" in f
            else None,
            weight2=(w >> 32 & 0xFFFF) if "ins_lat" in f else None,
            ip=None if cc or "ip" not in f else s["ip"],
            phys_addr=s.get("phys_addr") if "phys_addr" in f else None,
            data_page_size=s.get("data_page_size") if "data_page_size" in f else None,
            code_page_size=s.get("code_page_size") if "code_page_size" in f else None,
            cpumode=s.misc & 7 if "misc" in f else 0,
        )
        out.append(row)
    return out


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(case=text_case())
def test_text_reader_on_drawn_field_sets(tmp_path_factory, case):
    import subprocess

    tmp = tmp_path_factory.mktemp("tx")
    path = write_case(tmp, case)
    args = ["perf", "script", "-i", path, "--ns"] + (["-G"] if case["hide_callchain"] else [])
    for ev in case["events"]:
        args += ["-F", f"{TYPE_KIND[ev.type]}:{','.join(case['fields'][ev.name])}"]
    p = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    txt = tmp / "s.txt"
    txt.write_text(p.stdout)
    want = _expected_text_rows(case)
    ctx = (
        f"\nfields {case['fields']}\nsample_types "
        f"{[hex(e.sample_type) for e in case['events']]}\nperf printed:\n{p.stdout}"
    )
    try:
        out = ingest(txt, tmp / "given.td", format="perf-script", fields=case["fields"])
    except TraceFormatError as e:
        raise AssertionError(f"{e}{ctx}") from None
    rows = open_trace(out).table("samples").to_pylist()
    assert len(rows) == len(want), p.stdout
    for i, (r, w) in enumerate(zip(rows, want)):
        for k, v in w.items():
            if k == "ip" and v is None and r[k] is not None:
                # perf 6.1 prints the ip and symbol unasked in some cases (branch-stack
                # samples; samples unwound with DWARF when an event has REGS_USER and
                # STACK_USER): read by the line's shape, it must be the right value
                s_ip = [x for x in case["records"] if isinstance(x, Sample)][i]["ip"]
                assert r[k] == s_ip, f"sample {i}: unasked ip {r[k]:#x}, wrote {s_ip:#x}{ctx}"
                continue
            assert r[k] == v, f"sample {i}: {k}: read {r[k]!r}, wrote {v!r}{ctx}"
    # without the field list: the reader refuses, or counts the lines it had to guess,
    # or else reads every value right
    try:
        out = ingest(txt, tmp / "auto.td", format="perf-script")
    except TraceFormatError as e:
        assert e.line is not None and "s.txt at line" in str(e)  # a clean refusal
        return
    meta = json.loads((out / "meta.json").read_text())
    rows = open_trace(out).table("samples").to_pylist()
    assert len(rows) == len(want)
    if meta["perf_script_guessed_lines"]:
        return
    for i, (r, w) in enumerate(zip(rows, want)):
        for k in (
            "addr",
            "data_src",
            "weight",
            "weight2",
            "ip",
            "phys_addr",
            "data_page_size",
            "code_page_size",
            "cpu",
            "period",
            "cpumode",
        ):
            if k == "ip" and w[k] is None:
                continue  # perf prints some ips unasked (above)
            assert r[k] == w[k], f"inferred, sample {i}: {k}: read {r[k]!r}, wrote {w[k]!r}{ctx}"
