"""damo record files (json_compressed / json) → ``regions``.

Oracles: damo's expected ``report-raw`` output for its own test records (every
region of every snapshot), damo's report of run 1's clean record, and the
perf.data of the same run read by the DAMON trace reader.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import zlib

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tracedamon.errors import TraceFormatError
from tracedamon.ingest import ingest
from tracedamon.ingest.detect import detect_format
from tracedamon.store.trace import open_trace

from conftest import ROOT, need_corpus
from helpers.damon_trace import KEY, parse_damo_raw_report, snapshots_of

RUN1 = ("damon-paddr-run1", "paddr_run1")


def _ingest(path, tmp_path, name="t.td", **opts):
    out = ingest([path], tmp_path / name, **opts)
    return open_trace(out).df("regions"), json.loads((out / "meta.json").read_text())


@pytest.mark.parametrize("name", ["damon.data", "damon.data.json_compressed"])
def test_damo_test_records_match_damos_report_raw(name, tmp_path):
    src = need_corpus("damo-tests", name)
    assert detect_format(src) == "damo"
    expect = parse_damo_raw_report(need_corpus("damo-tests", "report-raw"))
    df, meta = _ingest(src, tmp_path)
    assert len(expect) == 543
    assert snapshots_of(df) == expect
    assert df["age"].isna().all()  # this old record has no age
    assert meta["intervals"]["source"] == "inferred"
    # the JSON stored the pointer target id as a float; the original text is kept
    assert meta["damon_runs"][0]["targets"] == {"0": "18446623438842320000"}
    # snapshot time = damo's end_time
    raw = json.loads(zlib.decompress(src.read_bytes()))
    ends = [int(s["end_time"]) for s in raw[0]["snapshots"]]
    assert df.groupby("snapshot")["time_ns"].first().tolist() == ends


def test_run1_clean_record_equals_the_perf_data(tmp_path):
    a, ma = _ingest(need_corpus(*RUN1, "damo_from_perf_data.json_compressed"), tmp_path, "a.td")
    b, _ = _ingest(need_corpus(*RUN1, "damo_record_perf_data.data"), tmp_path, "b.td")
    pd.testing.assert_frame_equal(a[KEY], b[KEY], check_dtype=False)
    assert ((a["time_ns"] - b["time_ns"]).abs() < 1000).all()
    iv = ma["intervals"]
    assert (iv["source"], iv["sample_us"], iv["aggr_us"]) == ("record", 500_000, 5_000_000)


def test_plain_json_with_thousands_separators(tmp_path):
    src = need_corpus(*RUN1, "damo_from_perf_data.json_compressed")
    text = zlib.decompress(src.read_bytes()).decode()
    assert '"start": "4,294,967,296"' in text
    p = tmp_path / "rec.json"
    p.write_text(text)
    assert detect_format(p) == "damo"
    a, _ = _ingest(src, tmp_path, "a.td")
    b, _ = _ingest(p, tmp_path, "b.td")
    pd.testing.assert_frame_equal(a, b)


def test_run1_corrupted_record_is_reported_not_shifted(tmp_path):
    src = need_corpus(*RUN1, "damo_record.data")
    with pytest.raises(TraceFormatError) as ei:
        _ingest(src, tmp_path, "c.td")
    msg = str(ei.value)
    assert "snapshot 13 at 472.537564 s" in msg and "out of address order" in msg
    assert str(src) in msg
    assert not (tmp_path / "c.td").exists()
    # --skip-bad keeps the 13 snapshots before the duplicate, identical to the clean ones
    df, meta = _ingest(src, tmp_path, "c2.td", skip_bad=True)
    assert meta["skipped"] == {"snapshots": 5}  # 13..16 and the 1-region tail
    clean, _ = _ingest(need_corpus(*RUN1, "damo_record_perf_data.data"), tmp_path, "p.td")
    clean = clean[clean["snapshot"] < 13]
    pd.testing.assert_frame_equal(
        df[KEY].reset_index(drop=True), clean[KEY].reset_index(drop=True), check_dtype=False
    )


def _record(snaps, intervals=None, **extra):
    rec = {
        "kdamond_idx": 0,
        "context_idx": 0,
        "intervals": intervals,
        "scheme_idx": None,
        "target_id": 0,
        "snapshots": snaps,
    }
    rec.update(extra)
    return [rec]


def _c(v):
    return f"{v:,}" if isinstance(v, int) else v


def _snap(t, regions):
    return {
        "start_time": str(t - 100),
        "end_time": str(t),
        "regions": [
            {
                "start": _c(a),
                "end": _c(b),
                "nr_accesses": {"samples": n, "percent": None} if not isinstance(n, dict) else n,
                "age": {"usec": None, "aggr_intervals": f"{g:,}" if g is not None else None},
            }
            for a, b, n, g in regions
        ],
    }


def test_units_percent_and_human_intervals(tmp_path):
    iv = {"sample_us": "5 ms", "aggr_us": "100 ms", "ops_update_us": "1 s"}
    snaps = [
        _snap(1000, [(4096, 8192, {"samples": None, "percent": 50}, 1234), (8192, 12288, 3, 0)]),
        _snap(2000, [(4096, 12288, 20, 1)]),
        # damo's placeholder closing snapshot
        {
            "start_time": "2000",
            "end_time": "3000",
            "regions": [
                {
                    "start": "0",
                    "end": "0",
                    "nr_accesses": {"samples": -1},
                    "age": {"aggr_intervals": -1},
                }
            ],
        },
    ]
    p = tmp_path / "r.json"
    p.write_text(json.dumps(_record(snaps, iv)))
    df, meta = _ingest(p, tmp_path)
    assert df[["snapshot", "start", "end", "nr_accesses", "age"]].values.tolist() == [
        [0, 4096, 8192, 10, 1234],
        [0, 8192, 12288, 3, 0],
        [1, 4096, 12288, 20, 1],
    ]
    assert meta["intervals"]["sample_us"] == 5000 and meta["intervals"]["aggr_us"] == 100_000
    assert meta["damo_placeholder_snapshots_dropped"] == 1


@pytest.mark.parametrize(
    "content,match",
    [
        (b'[{"snapshots": [', "invalid JSON"),
        (zlib.compress(b'[{"snapshots": []}]')[:-6], "truncated"),
        (b'{"a": 1}', "no snapshots"),
        (json.dumps(_record([_snap(1, [(10, 5, 0, 0)])])).encode(), "empty or reversed"),
        (json.dumps(_record([_snap(1, [("x", 5, 0, 0)])])).encode(), "cannot read"),
        (json.dumps(_record([_snap(1, [(0, 4096, -3, 0)])])).encode(), "out-of-range"),
    ],
)
def test_bad_records_are_format_errors(tmp_path, content, match):
    p = tmp_path / "bad.json"
    p.write_bytes(content)
    with pytest.raises(TraceFormatError, match=match):
        _ingest(p, tmp_path, "b.td", format="damo")


def test_cli_reports_the_corrupted_record_in_one_line(tmp_path):
    src = need_corpus(*RUN1, "damo_record.data")
    r = subprocess.run(
        [sys.executable, "-m", "tracedamon", "ingest", str(src), "-o", str(tmp_path / "x.td")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert r.returncode == 3
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "snapshot 13" in r.stderr


@st.composite
def damo_records(draw):
    recs, expect = [], []
    iv_s = draw(st.sampled_from([5000, 100_000]))
    ratio = draw(st.sampled_from([4, 20]))
    iv = {"sample_us": str(iv_s), "aggr_us": f"{iv_s * ratio:,}"}
    for tg in range(draw(st.integers(1, 2))):
        t = 10**9
        snaps = []
        for s in range(draw(st.integers(1, 5))):
            n = draw(st.integers(1, 6))
            cuts = sorted(draw(st.sets(st.integers(1, 10**9), min_size=n + 1, max_size=n + 1)))
            regs = []
            for i in range(n):
                a, b = cuts[i] * 4096, cuts[i + 1] * 4096
                nr = draw(st.integers(0, ratio))
                age = draw(st.integers(0, 5000))
                # damo writes either unit; the reader converts with the record intervals
                na = (
                    {"samples": nr, "percent": None}
                    if draw(st.booleans())
                    else {"samples": None, "percent": nr * 100 / ratio}
                )
                ag = (
                    {"usec": None, "aggr_intervals": f"{age:,}"}
                    if draw(st.booleans())
                    else {"usec": f"{age * iv_s * ratio:,}", "aggr_intervals": None}
                )
                regs.append({"start": f"{a:,}", "end": f"{b:,}", "nr_accesses": na, "age": ag})
                expect.append((tg, s, a, b, nr, age, t))
            snaps.append(
                {
                    "start_time": str(t - iv_s * ratio * 1000),
                    "end_time": str(t),
                    "regions": regs,
                    "total_bytes": "0",
                }
            )
            t += iv_s * ratio * 1000 + draw(st.integers(0, 1000))
        recs.append(
            {
                "kdamond_idx": 0,
                "context_idx": 0,
                "intervals": iv,
                "scheme_idx": None,
                "target_id": tg,
                "snapshots": snaps,
                "data_source": "unknown",
            }
        )
    return recs, expect, iv_s, iv_s * ratio


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(damo_records(), st.sampled_from(["json", "zlib", "gzip"]))
def test_generated_damo_records_round_trip(tmp_path, rec, wrap):
    recs, expect, sample_us, aggr_us = rec
    text = json.dumps(recs, indent=4).encode()
    blob = {"json": text, "zlib": zlib.compress(text), "gzip": gzip.compress(text)}[wrap]
    p = tmp_path / f"gen.{wrap}"
    p.write_bytes(blob)
    out = ingest([p], tmp_path / "gen.td", force=True)
    df = open_trace(out).df("regions")
    got = [
        tuple(int(x) for x in r)
        for r in df[
            ["target", "snapshot", "start", "end", "nr_accesses", "age", "time_ns"]
        ].itertuples(index=False)
    ]
    assert sorted(got, key=lambda r: (r[1], r[0], r[2])) == sorted(
        expect, key=lambda r: (r[1], r[0], r[2])
    )
    meta = json.loads((out / "meta.json").read_text())
    assert (meta["intervals"]["sample_us"], meta["intervals"]["aggr_us"]) == (sample_us, aggr_us)


def test_damos_perf_script_and_perf_data_record_types(tmp_path):
    """`damo record --output_type perf_script|perf_data` files are DAMON traces; read
    with --format damo they give what the trace reader gives."""
    a, _ = _ingest(need_corpus(*RUN1, "damo_perf_script.txt.gz"), tmp_path, "a.td", format="damo")
    b, _ = _ingest(need_corpus(*RUN1, "damo_perf_script.txt.gz"), tmp_path, "b.td", format="damon")
    pd.testing.assert_frame_equal(a, b)
    c, _ = _ingest(
        need_corpus(*RUN1, "damo_record_perf_data.data"), tmp_path, "c.td", format="damo"
    )
    pd.testing.assert_frame_equal(a[KEY], c[KEY], check_dtype=False)
