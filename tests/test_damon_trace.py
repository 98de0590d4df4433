"""DAMON trace ingest of text: perf script, damo's writer, ftrace and trace-cmd → ``regions``.

Oracles: damo's own expected output for its test data (``report-raw_perf_script``
lists every region of every snapshot), the same run recorded by independent
tracers (perf.data, perf script, damo's perf_script writer, a tracefs
instance), and a slow line-by-line reference parser. perf.data inputs are in
test_damon_trace_perf_data.py, generated traces in test_damon_trace_generated.py.
"""

from __future__ import annotations

import gzip
import json
import re

import numpy as np
import pandas as pd
import pytest

from tracedamon.cli.info import describe
from tracedamon.errors import TraceFormatError
from tracedamon.ingest import ingest
from tracedamon.ingest.damon_trace import TextTrace
from tracedamon.ingest.detect import detect_format
from tracedamon.store.trace import open_trace

from conftest import need_corpus
from helpers.arrays import assert_rows_equal
from helpers.damon_trace import (
    KEY,
    LIVE,
    RUN1,
    _ingest,
    _lines,
    parse_damo_raw_report,
    snapshots_of,
)

# --- damo's test data: every region of every snapshot ---------------------------------


def test_old_five_field_perf_script_matches_damo_report_region_by_region(tmp_path):
    script = need_corpus("damo-tests", "perf.data.script")
    expect = parse_damo_raw_report(need_corpus("damo-tests", "report-raw_perf_script"))
    df, meta = _ingest(script, tmp_path)
    assert len(expect) == 562
    assert snapshots_of(df) == expect  # age: damo prints -1, we store null
    assert df["age"].isna().all() and meta["age_field"] is False
    # pointer-valued target_id becomes target 0; the original is kept
    assert set(df["target"]) == {0}
    assert meta["damon_runs"][0]["targets"] == {"0": "18446623435582458880"}
    assert meta["damon_runs"][0]["kdamond_pid"] == 4452
    assert meta["intervals"]["source"] == "inferred"
    assert 95_000 < meta["intervals"]["aggr_us"] < 110_000  # the old default 100 ms


def test_old_five_field_perf_data_equals_its_perf_script(tmp_path):
    a, _ = _ingest(need_corpus("damo-tests", "perf.data"), tmp_path, "a.td")
    b, _ = _ingest(need_corpus("damo-tests", "perf.data.script"), tmp_path, "b.td")
    assert len(a) == len(b) == 10260
    pd.testing.assert_frame_equal(a[KEY], b[KEY], check_dtype=False)
    # perf.data keeps nanoseconds, the text microseconds
    assert (a["time_ns"] // 1000 == b["time_ns"] // 1000).all()


# --- run 1: the same run through independent tracers --------------------------------


@pytest.fixture(scope="module")
def run1(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run1")
    files = {
        "perf_data": "damo_record_perf_data.data",
        "perf_script": "perf_script.txt.gz",
        "damo_writer": "damo_perf_script.txt.gz",
        "ftrace": "ftrace_trace_pipe.txt.gz",
    }
    return {k: _ingest(need_corpus(*RUN1, f), tmp, k + ".td") for k, f in files.items()}


def test_run1_all_tracers_give_the_same_regions(run1):
    ref, _ = run1["perf_data"]
    assert ref["run"].unique().tolist() == [0]
    assert ref["snapshot"].nunique() == 17 and len(ref) == 26954
    for name in ("perf_script", "damo_writer", "ftrace"):
        df, _ = run1[name]
        d = df[df["run"] == 0].reset_index(drop=True)
        pd.testing.assert_frame_equal(
            ref[KEY].reset_index(drop=True), d[KEY], check_dtype=False, obj=name
        )
    # the snapshot times agree up to the tracers' clocks: perf's clock and the tracefs
    # instance's CLOCK_MONOTONIC differ by ~1.19 ms (MANIFEST), damo stamps a snapshot
    # with its first line, as we do
    t_ref = ref.groupby("snapshot")["time_ns"].first()
    # (perf.data has nanoseconds, the texts microseconds)
    for name, lo, hi in (
        ("perf_script", -999, 0),
        ("damo_writer", -999, 0),
        ("ftrace", 1.0e6, 1.4e6),
    ):
        df, _ = run1[name]
        t = df[df["run"] == 0].groupby("snapshot")["time_ns"].first()
        diff = (t - t_ref).to_numpy()
        assert ((diff >= lo) & (diff <= hi)).all(), name


def test_run1_matches_damos_report_of_snapshot_10(run1):
    ref, _ = run1["perf_data"]
    expect = parse_damo_raw_report(
        need_corpus(*RUN1, "reports", "report_access_snapshot10_raw_form.txt")
    )
    assert len(expect) == 1 and len(expect[0]) == 1654
    assert snapshots_of(ref)[10] == expect[0]


def test_run1_ftrace_has_the_restarted_kdamond_as_a_second_run(run1):
    df, meta = run1["ftrace"]
    runs = meta["damon_runs"]
    assert [r["kdamond_pid"] for r in runs] == [77, 11769]
    r1 = df[df["run"] == 1]
    counts = r1.groupby("snapshot").size().tolist()
    assert counts[:7] == [1, 2, 4, 8, 16, 32, 64]  # a fresh paddr kdamond doubles
    assert r1.groupby("snapshot")["age"].max().iloc[0] <= 1
    # ftrace carries the scheme events too
    tr_rows = meta["tables"]["damos_apply"]
    assert tr_rows == 792


def test_run1_intervals_come_from_the_record_sidecar_or_are_inferred(run1):
    _, m = run1["perf_data"]
    assert m["intervals"]["source"] == "record"
    assert (m["intervals"]["sample_us"], m["intervals"]["aggr_us"]) == (500_000, 5_000_000)
    _, m = run1["perf_script"]
    iv = m["intervals"]
    assert iv["source"] == "inferred"
    assert 5_100_000 < iv["aggr_us"] < 5_160_000  # measured 5.12 s between snapshots
    assert iv["max_nr_accesses"] == 10


def test_duplicate_events_are_dropped_and_counted(tmp_path):
    lines = _lines(need_corpus(*RUN1, "perf_script.txt.gz"))
    clean, _ = _ingest(need_corpus(*RUN1, "perf_script.txt.gz"), tmp_path, "c.td")
    # duplicate one line in snapshot 13 (as perf did in damo's session) and one at a
    # snapshot's first line
    i = next(k for k, ln in enumerate(lines) if "4741914624-4743061504" in ln and "472.5" in ln)
    first_of_5 = int(np.flatnonzero(np.array(["nr_regions=1604" in ln for ln in lines]))[0])
    dup = (
        lines[: first_of_5 + 1]
        + [lines[first_of_5]]
        + lines[first_of_5 + 1 : i + 1]
        + [lines[i]]
        + lines[i + 1 :]
    )
    p = tmp_path / "dup.txt"
    p.write_text("".join(dup))
    df, meta = _ingest(p, tmp_path, "d.td")
    assert meta["duplicates_dropped"] == 2
    pd.testing.assert_frame_equal(clean, df)


def test_a_lost_event_is_an_error_naming_the_line_and_skip_bad_drops_that_snapshot(tmp_path):
    lines = _lines(need_corpus(*RUN1, "perf_script.txt.gz"))
    i = next(k for k, ln in enumerate(lines) if "4741914624-4743061504" in ln and "472.5" in ln)
    p = tmp_path / "lost.txt"
    p.write_text("".join(lines[:i] + lines[i + 1 :]))
    with pytest.raises(TraceFormatError) as ei:
        _ingest(p, tmp_path, "l.td")
    first13 = next(k for k, ln in enumerate(lines) if "nr_regions=1610" in ln)
    assert ei.value.line == first13 + 1
    assert "1609 regions, fewer than its nr_regions=1610" in str(ei.value)
    assert not (tmp_path / "l.td").exists()
    df, meta = _ingest(p, tmp_path, "l2.td", skip_bad=True)
    assert meta["skipped"] == {"snapshots": 1}
    assert df["snapshot"].nunique() == 16
    assert 1610 not in df.groupby("snapshot").size().tolist()


def test_malformed_line_is_an_error_and_skip_bad_counts_it(tmp_path):
    lines = _lines(need_corpus(*RUN1, "perf_script.txt.gz"))
    bad = lines[:100] + [re.sub(r": (\d+) (\d+)$", r": zero \2", lines[100])] + lines[101:]
    assert "zero" in bad[100]
    p = tmp_path / "bad.txt"
    p.write_text("".join(bad))
    with pytest.raises(TraceFormatError, match="malformed damon_aggregated") as ei:
        _ingest(p, tmp_path, "b.td", fmt="damon")
    assert ei.value.line == 101 and str(p) in str(ei.value)
    # --skip-bad: the line goes, and so does the snapshot it left incomplete
    df, meta = _ingest(p, tmp_path, "b2.td", fmt="damon", skip_bad=True)
    assert meta["skipped"] == {"lines": 1, "snapshots": 1}
    assert df["snapshot"].nunique() == 16


def test_partial_snapshots_at_the_recording_edges_are_dropped_and_counted(tmp_path):
    lines = _lines(need_corpus(*RUN1, "perf_script.txt.gz"))
    p = tmp_path / "cut.txt"
    p.write_text("".join(lines[700:-300]))  # starts and ends mid-snapshot
    df, meta = _ingest(p, tmp_path, "p.td")
    assert meta["partial_snapshots_dropped"] == 2
    assert df["snapshot"].nunique() == 15


def _to_tracecmd(line: str, flags: bool) -> str:
    # "       kdamond.0-77      [001] .....   405.947329: damon_aggregated: ..."
    m = re.match(r"^\s*(\S+)-(\d+)\s+\[(\d+)\]\s+(\S+)\s+([\d.]+): (.*)$", line)
    comm, pid, cpu, fl, ts, rest = m.groups()
    return f"{comm}-{pid:<6} [{cpu}] {fl + ' ' if flags else ''}{ts}: {rest}\n"


def test_trace_cmd_report_with_and_without_flags_column_and_trace_file_header(run1, tmp_path):
    lines = _lines(need_corpus(*RUN1, "ftrace_trace_pipe.txt.gz"))
    ref, _ = run1["ftrace"]
    variants = {
        "tcmd_noflags.txt": ["version = 6\n", "CPU 0 is empty\n"]
        + [_to_tracecmd(ln, False) for ln in lines],
        "tcmd_flags.txt": [_to_tracecmd(ln, True) for ln in lines],
        # `cat trace`: a commented header, and the optional "(tgid)" column
        "trace.txt": [
            "# tracer: nop\n",
            "#\n",
            "# entries-in-buffer/entries-written: 1/1\n",
            "#           TASK-PID     TGID     CPU#  |||||  TIMESTAMP  FUNCTION\n",
        ]
        + [re.sub(r"^(\s*\S+-\d+)(\s+)", r"\1 (    77)\2", ln, count=1) for ln in lines],
    }
    for name, content in variants.items():
        p = tmp_path / name
        p.write_text("".join(content))
        assert detect_format(p) == "damon"
        df, meta = _ingest(p, tmp_path, name + ".td")
        pd.testing.assert_frame_equal(ref, df, obj=name)
        assert meta["damon_source"] == "ftrace"


def test_without_pids_a_long_pause_still_starts_a_new_run(run1, tmp_path):
    # the ftrace file (two kdamonds) rewritten in damo's writer layout, which has no pid
    lines = _lines(need_corpus(*RUN1, "ftrace_trace_pipe.txt.gz"))
    out = []
    for ln in lines:
        m = re.match(r"^\s*\S+-\d+\s+\[\d+\]\s+\S+\s+([\d.]+): (damon_aggregated: .*)$", ln)
        if m:
            out.append(f"kdamond.x xxxx xxxx {m[1]}: damon:{m[2]}\n")
    p = tmp_path / "w.txt"
    p.write_text("".join(out))
    df, meta = _ingest(p, tmp_path, "w.td")
    ref, _ = run1["ftrace"]
    pd.testing.assert_frame_equal(ref[KEY], df[KEY], check_dtype=False)
    assert [r["kdamond_pid"] for r in meta["damon_runs"]] == [None, None]
    # a quick restart (1.5 aggregations of pause): still seen, by the region count
    # starting over on a changed range with fresh ages
    t1 = next(float(ln.split()[3][:-1]) for ln in out if "nr_regions=1 " in ln)
    shift = t1 - (487.487067 + 1.5 * 5.12)
    quick = [
        ln
        if float(ln.split()[3][:-1]) < t1
        else ln.replace(ln.split()[3], f"{float(ln.split()[3][:-1]) - shift:.6f}:")
        for ln in out
    ]
    p.write_text("".join(quick))
    df, meta = _ingest(p, tmp_path, "q.td")
    pd.testing.assert_frame_equal(ref[KEY], df[KEY], check_dtype=False)


def test_info_summarises_an_ingested_trace(run1, tmp_path):
    out = ingest([need_corpus(*RUN1, "perf_script.txt.gz")], tmp_path / "i.td")
    text = describe(out)
    assert re.search(
        r"run 0: 17 snapshots over 81\.5\d\d s, aggregation 5119\.9 ms, "
        r"targets \[0\], addresses 0x100000000-0x148000000 \(1\.1 GiB\), "
        r"regions per snapshot 1395-1656",
        text,
    ), text
    assert "duplicates_dropped: 0" in text and "'source': 'inferred'" in text


def test_not_a_damon_trace(tmp_path):
    p = tmp_path / "x.txt"
    p.write_text("hello damon_aggregated: world\n")
    with pytest.raises(TraceFormatError, match="unrecognised trace line layout"):
        _ingest(p, tmp_path, "x.td", fmt="damon")
    p.write_text("nothing here\n")
    with pytest.raises(TraceFormatError, match="no damon_aggregated events"):
        _ingest(p, tmp_path, "y.td", fmt="damon")


def test_gzipped_perf_data(tmp_path):
    src = need_corpus("damo-tests", "perf.data")
    gz = tmp_path / "perf.data.gz"
    gz.write_bytes(gzip.compress(src.read_bytes(), 1))
    a, _ = _ingest(gz, tmp_path, "g.td", fmt="damon")
    b, _ = _ingest(need_corpus("damo-tests", "perf.data.script"), tmp_path, "s.td")
    pd.testing.assert_frame_equal(a[KEY], b[KEY], check_dtype=False)


# --- the vectorised text parser against a slow line-by-line reference ------------------

_REF_LINE = re.compile(
    r"^\s*(?:(?P<pcomm>\S.*?)\s+(?P<ppid>\d+|x+)(?:/\d+)?\s+(?:(?:\[(?P<pcpu>\d+)\]|x+)\s+)?"
    r"(?P<psec>\d+)\.(?P<pfrac>\d+):\s+(?:\d+\s+)?damon:"
    r"|(?P<fcomm>.*?)-(?P<fpid>\d+)\s+(?:\(\s*\d+\)\s+)?\[(?P<fcpu>\d+)\]\s+(?:\S{4,6}\s+)?"
    r"(?P<fsec>\d+)\.(?P<ffrac>\d+):\s+)"
    r"(?P<ev>damon_aggregated|damos_before_apply|damon_monitor_intervals_tune): (?P<rest>.*?)\s*$"
)


def _reference_events(path):
    agg, before = [], []
    op = gzip.open if str(path).endswith(".gz") else open
    with op(path, "rt") as f:
        for ln in f:
            m = _REF_LINE.match(ln)
            if not m:
                continue
            g = m.groupdict()
            p = "p" if g["psec"] is not None else "f"
            t = int(g[p + "sec"]) * 10**9 + int(g[p + "frac"].ljust(9, "0"))
            pid = -1 if g[p + "pid"].startswith("x") else int(g[p + "pid"])
            cpu = int(g[p + "cpu"]) if g[p + "cpu"] else -1
            nums = [int(x) for x in re.findall(r"\d+", g["rest"])]
            if g["ev"] == "damon_aggregated":
                agg.append((t, pid, cpu, *nums, *([-1] if len(nums) == 5 else [])))
            elif g["ev"] == "damos_before_apply":
                before.append((t, pid, cpu, *nums))
    return agg, before


@pytest.mark.parametrize(
    "parts",
    [
        ("damo-tests", "perf.data.script"),
        RUN1 + ("perf_script.txt.gz",),
        RUN1 + ("damo_perf_script.txt.gz",),
        RUN1 + ("ftrace_trace_pipe.txt.gz",),
        ("perf", "24_damon_tracepoint.script.txt"),
        ("live", "live_paddr.script.txt.gz"),
    ],
)
def test_text_parser_equals_a_line_by_line_reference(parts):
    path = LIVE / parts[1] if parts[0] == "live" else need_corpus(*parts)
    tt = TextTrace(path).parse()
    ref_agg, ref_before = _reference_events(path)
    a = tt.agg.get()
    got = list(
        zip(
            *(
                a[k].tolist()
                for k in (
                    "time_ns",
                    "pid",
                    "cpu",
                    "target_id",
                    "nr_regions",
                    "start",
                    "end",
                    "nr_accesses",
                    "age",
                )
            )
        )
    )
    assert_rows_equal(got, ref_agg)
    assert len(got) > 1000
    if ref_before:
        b = tt.before.get()
        got_b = list(
            zip(
                *(
                    b[k].tolist()
                    for k in (
                        "time_ns",
                        "pid",
                        "cpu",
                        "ctx",
                        "scheme",
                        "target_id",
                        "nr_regions",
                        "start",
                        "end",
                        "nr_accesses",
                        "age",
                    )
                )
            )
        )
        assert_rows_equal(got_b, ref_before)
    assert tt.skipped_lines == 0


def test_out_of_range_number_is_an_error_naming_its_line(tmp_path):
    lines = _lines(need_corpus(*RUN1, "perf_script.txt.gz"))[:60]
    lines[19] = lines[19].replace("nr_regions=1471", "nr_regions=99999999999")
    p = tmp_path / "ov.txt"
    p.write_text("".join(lines))
    with pytest.raises(TraceFormatError, match="nr_regions out of range") as ei:
        _ingest(p, tmp_path, "o.td")
    assert ei.value.line == 20
    # the old five-field form, a target id beyond 64 bits; --skip-bad drops the line
    old = _lines(need_corpus("damo-tests", "perf.data.script"))[:40]
    old[9] = old[9].replace("target_id=18446623435582458880", "target_id=98446623435582458880")
    p.write_text("".join(old))
    with pytest.raises(TraceFormatError, match="target_id out of range") as ei:
        _ingest(p, tmp_path, "o2.td")
    assert ei.value.line == 10
    df, meta = _ingest(p, tmp_path, "o3.td", skip_bad=True)
    assert meta["skipped"]["lines"] == 1 and df["age"].isna().all()


def test_truncated_gzip_text_is_reported_and_skip_bad_keeps_the_complete_snapshots(tmp_path):
    src = need_corpus(*RUN1, "perf_script.txt.gz")
    p = tmp_path / "cut.txt.gz"
    p.write_bytes(src.read_bytes()[:200_000])  # of 335,269 bytes
    with pytest.raises(TraceFormatError, match="ends early") as ei:
        _ingest(p, tmp_path, "t.td")
    assert ei.value.line is not None and ei.value.line > 1000
    df, meta = _ingest(p, tmp_path, "t2.td", skip_bad=True)
    full, _ = _ingest(src, tmp_path, "f.td")
    n = df["snapshot"].nunique()
    assert 5 <= n < 17 and meta["partial_snapshots_dropped"] == 1
    assert meta["input_truncated"] is True
    pd.testing.assert_frame_equal(df[KEY], full[full["snapshot"] < n][KEY])
    # several gzip members (e.g. appended recordings) read as one text
    two = tmp_path / "two.txt.gz"
    lines = _lines(src)
    two.write_bytes(
        gzip.compress("".join(lines[:5000]).encode())
        + gzip.compress("".join(lines[5000:]).encode())
    )
    df2, _ = _ingest(two, tmp_path, "two.td")
    pd.testing.assert_frame_equal(df2, full)


def test_nr_regions_zero_is_an_error_not_a_hang(tmp_path):
    lines = _lines(need_corpus(*RUN1, "perf_script.txt.gz"))[:3000]
    lines[1500] = re.sub(r"nr_regions=\d+", "nr_regions=0", lines[1500])
    p = tmp_path / "z.txt"
    p.write_text("".join(lines))
    with pytest.raises(TraceFormatError, match="nr_regions=0") as ei:
        _ingest(p, tmp_path, "z.td")
    assert ei.value.line == 1501


def test_a_schemes_only_trace_fills_damos_apply_and_no_regions(tmp_path):
    lines = _lines(need_corpus(*RUN1, "ftrace_trace_pipe.txt.gz"))
    p = tmp_path / "schemes.txt"
    p.write_text("".join(ln for ln in lines if "damos_before_apply" in ln))
    out = ingest([p], tmp_path / "s.td")
    tr = open_trace(out)
    meta = json.loads((out / "meta.json").read_text())
    assert tr.num_rows("damos_apply") == 792 and tr.num_rows("regions") == 0
    assert meta["damon_regions"].startswith("none")
    d = tr.df("damos_apply")
    assert (d["start"] < d["end"]).all() and set(d["kdamond_pid"]) == {77}
