"""Raw pagemap snapshots of damon-paddr-run1: ingest, ground truth, scoring, attribution.

Oracles (all from the corpus, none computed by tracedamon):
* the raw ``.pagemap.bin`` entries, decoded here bit by bit in plain Python;
* ``pagemap_snapN.maps`` (verbatim /proc/PID/maps);
* ``ground_truth_pfn_runs.tsv`` (area → frame runs, written at recording time);
* ``sanity_check.txt`` (per DAMON snapshot, each area's mean nr_accesses and
  accessed fraction, computed at recording time from damo's clean JSON).
"""

from __future__ import annotations

import bisect
import gzip
import json
import shutil
import struct
import zlib

import numpy as np
import pandas as pd
import pytest

from conftest import need_corpus
from tracedamon.engine.translate import Translator, merge_intervals
from tracedamon.errors import TraceFormatError
from tracedamon.export.truth import (
    areas_from_workload_log,
    attribute_regions,
    ground_truth,
    score_areas,
)
from tracedamon.ingest import ingest
from tracedamon.ingest.detect import detect_format
from tracedamon.schema import PAGEMAP_FLAG_PRESENT
from tracedamon.store.trace import open_trace

PS = 4096
PID = 7727
# the MANIFEST's "Ground-truth virtual layout" table, run 1
MANIFEST_AREAS = [
    ("cold0", 0x7F89FA000000, 0x7F89FE000000),
    ("hot", 0x7F89FE000000, 0x7F8A00000000),
    ("cold1", 0x7F8A00000000, 0x7F8A0A000000),
    ("warm", 0x7F8A0A000000, 0x7F8A12000000),
    ("cold2", 0x7F8A12000000, 0x7F8A1A000000),
]


@pytest.fixture(scope="module")
def run1():
    return need_corpus("damon-paddr-run1", "paddr_run1")


@pytest.fixture(scope="module")
def td(run1, tmp_path_factory):
    assert detect_format(run1) == "pagemap"
    out = tmp_path_factory.mktemp("pm") / "run1.td"
    ingest(run1, out, format="auto")
    return open_trace(out)


@pytest.fixture(scope="module")
def truth_tsv(run1):
    """The TSV ground truth as merged physical ranges per label."""
    rows = []
    for line in (run1 / "ground_truth_pfn_runs.tsv").read_text().splitlines():
        if line.startswith("#"):
            continue
        area, _va, pfn, n = line.split("\t")
        rows.append((area, int(pfn, 16) * PS, (int(pfn, 16) + int(n)) * PS))
    df = pd.DataFrame(rows, columns=["label", "start", "end"])
    codes, uniq = pd.factorize(df.label, sort=True)
    k, s, e = merge_intervals(codes, df.start.to_numpy(np.uint64), df.end.to_numpy(np.uint64))
    return pd.DataFrame({"label": np.asarray(uniq, dtype=object)[k], "start": s, "end": e})


def _ref_pages(run1, n):
    """Per-page (vaddr → (present, swapped, file, exclusive, soft_dirty, pfn)) of snapshot n."""
    idx = json.loads((run1 / f"pagemap_snap{n}.index.json").read_text())
    raw = (run1 / idx["bin_file"]).read_bytes()
    pages = {}
    for v in idx["vmas"]:
        for i in range(v["nr_entries"]):
            (e,) = struct.unpack_from("<Q", raw, v["bin_offset"] + 8 * i)
            present = e >> 63 & 1
            pages[v["start"] + i * PS] = (
                present,
                e >> 62 & 1,
                e >> 61 & 1,
                e >> 56 & 1,
                e >> 55 & 1,
                e & ((1 << 55) - 1) if present else 0,
            )
    return idx, pages


@pytest.mark.parametrize("n", [0, 1, 5])
def test_runs_decode_every_page(td, run1, n):
    idx, ref = _ref_pages(run1, n)
    pm = td.df("pagemap")
    pm = pm[pm.snapshot == n]
    assert (pm.pid == PID).all() and (pm.time_ns == idx["t_begin_ns"]).all()
    got = {}
    for r in pm.itertuples():
        f = r.flags
        for i, va in enumerate(range(r.vaddr_start, r.vaddr_end, PS)):
            pfn = 0 if pd.isna(r.pfn_start) else int(r.pfn_start) + i
            got[va] = (f & 1, f >> 1 & 1, f >> 2 & 1, f >> 3 & 1, f >> 4 & 1, pfn)
    assert got == ref
    # runs are maximal: neighbours in one VMA never continue each other
    vma_of = {v["start"]: v for v in idx["vmas"]}
    pm = pm.sort_values("vaddr_start")
    a, b = pm.iloc[:-1], pm.iloc[1:]
    touching = a.vaddr_end.to_numpy() == b.vaddr_start.to_numpy()
    same = touching & (a["flags"].to_numpy() == b["flags"].to_numpy())
    n_a = (a.vaddr_end - a.vaddr_start).to_numpy() // PS
    cont = same & (
        (a.pfn_start.isna().to_numpy() & b.pfn_start.isna().to_numpy())
        | (a.pfn_start.to_numpy() + n_a == b.pfn_start.to_numpy())
    )
    crosses_vma = np.isin(b.vaddr_start.to_numpy(), list(vma_of))
    assert not (cont & ~crosses_vma).any()


def test_maps_table_matches_maps_text(td, run1):
    maps = td.df("maps")
    for n in range(6):
        lines = (run1 / f"pagemap_snap{n}.maps").read_text().splitlines()
        m = maps[maps.snapshot == n].reset_index(drop=True)
        assert len(m) == len(lines)
        for row, line in zip(m.itertuples(), lines):
            f = line.split(None, 5)
            s, e = (int(x, 16) for x in f[0].split("-"))
            assert (row.start, row.end, row.perms, row.offset, row.dev, row.inode) == (
                s,
                e,
                f[1],
                int(f[2], 16),
                f[3],
                int(f[4]),
            )
            assert row.path == (f[5].strip() if len(f) > 5 else "")
    meta = td.meta["pagemap"]
    assert [s["snapshot"] for s in meta["snapshots"]] == list(range(6))
    assert meta["pfns_known"] is True


def test_population_counts(td):
    pm = td.df("pagemap")
    buf_lo, buf_hi = MANIFEST_AREAS[0][1], MANIFEST_AREAS[-1][2]
    inbuf = (pm.vaddr_start >= buf_lo) & (pm.vaddr_end <= buf_hi)
    pages = (pm.vaddr_end - pm.vaddr_start) // PS
    present = (pm["flags"] & PAGEMAP_FLAG_PRESENT) != 0
    per = pages[inbuf & present].groupby(pm.snapshot[inbuf & present]).sum()
    assert 0 not in per.index  # snap0: before population, nothing present
    assert per.to_dict() == {n: 131072 for n in range(1, 6)}


def test_ground_truth_matches_recorded_tsv(td, run1, truth_tsv):
    pm = td.table("pagemap")
    for areas in (MANIFEST_AREAS, areas_from_workload_log(run1 / "workload.log")):
        for snap in (1, 3, 5):  # the MANIFEST: frames identical in every snapshot
            gt = ground_truth(pm, areas, snapshot=snap)
            pd.testing.assert_frame_equal(gt.reset_index(drop=True), truth_tsv, check_dtype=False)
    # the default snapshot is the last; snapshot 0 has nothing present
    assert ground_truth(pm, MANIFEST_AREAS).equals(ground_truth(pm, MANIFEST_AREAS, snapshot=5))
    assert ground_truth(pm, MANIFEST_AREAS, snapshot=0).empty
    # every frame is inside the then-monitored range [4 GiB, 5.125 GiB)
    gt = ground_truth(pm, MANIFEST_AREAS)
    assert gt.start.min() >= 4294967296 and gt.end.max() <= 5502926848
    assert ((gt.end - gt.start).groupby(gt.label).sum() // PS).to_dict() == {
        "cold0": 16384,
        "hot": 8192,
        "cold1": 40960,
        "warm": 32768,
        "cold2": 32768,
    }


def _sanity(run1):
    lines = [
        ln
        for ln in (run1 / "sanity_check.txt").read_text().splitlines()
        if ln and not ln.startswith("#")
    ]
    head = lines[0].split()
    return pd.DataFrame([[float(x) for x in ln.split()] for ln in lines[1:]], columns=head)


def _damo_json_regions(path):
    recs = json.loads(zlib.decompress(path.read_bytes()))

    def num(x):
        return int(str(x).replace(",", ""))

    rows = []
    for i, s in enumerate(recs[0]["snapshots"]):
        for r in s["regions"]:
            rows.append(
                (
                    0,
                    i,
                    num(s["end_time"]),
                    num(r["start"]),
                    num(r["end"]),
                    num(r["nr_accesses"]["samples"]),
                )
            )
    return pd.DataFrame(rows, columns=["run", "snapshot", "time_ns", "start", "end", "nr_accesses"])


def _check_against_sanity(scores, sanity):
    labels = ["cold0", "cold1", "cold2", "hot", "warm"]
    mean = scores.pivot(index="snapshot", columns="label", values="mean_nr_accesses")
    frac = scores.pivot(index="snapshot", columns="label", values="accessed_fraction")
    assert len(mean) == len(sanity)
    for a in labels:
        np.testing.assert_allclose(mean[a].to_numpy(), sanity[f"{a}_mean_nr_acc"], atol=0.0051)
        np.testing.assert_allclose(frac[a].to_numpy(), sanity[f"{a}_frac_acc"], atol=0.0051)


def test_score_damo_json_equals_recorded_sanity_check(td, run1, truth_tsv):
    regions = _damo_json_regions(run1 / "damo_from_perf_data.json_compressed")
    scores = score_areas(regions, ground_truth(td.table("pagemap"), MANIFEST_AREAS))
    _check_against_sanity(scores, _sanity(run1))


def test_score_ingested_damon_trace(td, run1, tmp_path):
    """The real DAMON trace (perf script text, ingested by tracedamon) scored on the truth:
    hot frames hot, cold frames cold -- and the same numbers as the recorded sanity check."""
    out = ingest(run1 / "perf_script.txt.gz", tmp_path / "damon.td", format="damon")
    regions = open_trace(out).df("regions")
    truth = ground_truth(td.table("pagemap"), MANIFEST_AREAS)
    scores = score_areas(regions, truth)
    _check_against_sanity(scores, _sanity(run1))
    # after population (monotonic 415.94 s; perf clock is 1.19 ms behind) and two
    # aggregations for DAMON to adapt: hot is hot, cold is cold, warm in between
    late = scores[scores.time_ns > 426_000_000_000]
    m = late.pivot(index="snapshot", columns="label", values="mean_nr_accesses")
    assert len(m) >= 12
    assert (m.hot > 7).all() and (m.hot.iloc[-5:] > 9).all()
    assert (m.cold1 < 0.1).all() and (m.cold2 < 0.1).all()
    assert ((m.warm > 1.5) & (m.warm < 3.0)).all()
    assert (m.hot > 2.5 * m.warm).all() and (m.warm > 10 * m.cold1.clip(lower=0.01)).all()


def test_attribution_against_frame_counts(td, run1):
    """Bytes of each region in the workload's frames, against a plain count of its frames."""
    regions = _damo_json_regions(run1 / "damo_from_perf_data.json_compressed")
    regions = regions[regions.snapshot.isin([0, 5, 16])]
    pm = td.table("pagemap")
    att = attribute_regions(regions, pm, time_offset_ns=1_190_000, include_unattributed=True)
    tr = Translator.from_tables(pm)
    for snap, g in regions.groupby("snapshot"):
        t = int(g.time_ns.iloc[0]) + 1_190_000
        ps = int(tr.snapshot_at([t])[0])
        # nearest pagemap snapshot by hand: index t_begin_ns of each snapshot file
        begins = {
            n: json.loads((run1 / f"pagemap_snap{n}.index.json").read_text())["t_begin_ns"]
            for n in range(6)
        }
        assert ps == min(begins, key=lambda n: (abs(begins[n] - t), begins[n]))
        _, ref = _ref_pages(run1, ps)
        frames = sorted({p[5] for p in ref.values() if p[0] and p[5]})
        a = att[att.snapshot == snap]
        mine = a[a.pid == PID].set_index("start").bytes
        other = a[a.pid == -1].set_index("start").bytes
        for r in g.itertuples():
            n = bisect.bisect_left(frames, r.end // PS) - bisect.bisect_left(frames, r.start // PS)
            assert int(mine.get(r.start, 0)) == n * PS
            assert int(other.get(r.start, 0)) == r.end - r.start - n * PS
        assert (a.pagemap_snapshot == ps).all()


# ---- bad input ---------------------------------------------------------------------------


@pytest.fixture
def copy1(run1, tmp_path):
    d = tmp_path / "snaps"
    d.mkdir()
    for suffix in (".index.json", ".pagemap.bin", ".maps"):
        shutil.copy(run1 / f"pagemap_snap1{suffix}", d / f"pagemap_snap1{suffix}")
    return d


def test_truncated_bin_names_file_and_offset(copy1, tmp_path):
    b = copy1 / "pagemap_snap1.pagemap.bin"
    b.write_bytes(b.read_bytes()[:500_000])
    with pytest.raises(TraceFormatError) as ei:
        ingest(copy1, tmp_path / "o.td", format="pagemap")
    assert "pagemap_snap1.pagemap.bin" in str(ei.value) and "truncated" in str(ei.value)
    assert ei.value.offset == 304  # the 512 MiB buffer's entries start there
    assert not (tmp_path / "o.td").exists()


def test_bad_json_and_missing_parts(copy1, tmp_path):
    ip = copy1 / "pagemap_snap1.index.json"
    good = ip.read_text()
    ip.write_text(good.replace('"vmas": [', '"vmas": [,', 1))
    with pytest.raises(TraceFormatError) as ei:
        ingest(copy1, tmp_path / "o.td", format="pagemap")
    assert ei.value.line == 10 and "invalid JSON" in str(ei.value)
    ip.write_text(good.replace('"entry_bytes": 8', '"entry_bytes": 4'))
    with pytest.raises(TraceFormatError, match="entry_bytes 4"):
        ingest(copy1, tmp_path / "o.td", format="pagemap")
    # a bad value inside a VMA names that VMA's line (the index is pretty-printed)
    bad = json.loads(good)
    bad["vmas"][6]["nr_entries"] = 10**9
    ip.write_text(json.dumps(bad, indent=1))
    with pytest.raises(TraceFormatError, match=r"vmas\[6\]: nr_entries") as ei:
        ingest(copy1, tmp_path / "o.td", format="pagemap")
    lines = ip.read_text().splitlines()
    assert '"start": %d' % bad["vmas"][6]["start"] in lines[ei.value.line - 1]
    ip.write_text(good)
    mp = copy1 / "pagemap_snap1.maps"
    lines = mp.read_text().splitlines(keepends=True)
    lines[3] = "garbage line\n"
    mp.write_text("".join(lines))
    with pytest.raises(TraceFormatError) as ei:
        ingest(copy1, tmp_path / "o.td", format="pagemap")
    assert ei.value.line == 4 and "pagemap_snap1.maps" in str(ei.value)
    (copy1 / "pagemap_snap1.pagemap.bin").unlink()
    with pytest.raises(TraceFormatError, match="missing"):
        ingest(copy1, tmp_path / "o.td", format="pagemap")
    assert not (tmp_path / "o.td").exists()


def test_cli_ingest_error_is_one_line(copy1, tmp_path, capsys):
    from tracedamon.cli import main

    b = copy1 / "pagemap_snap1.pagemap.bin"
    b.write_bytes(b.read_bytes()[:1000])
    rc = main(["ingest", str(copy1), "--format", "pagemap", "-o", str(tmp_path / "o.td")])
    err = capsys.readouterr().err
    assert rc == TraceFormatError.exit_code and err.count("\n") == 1 and "byte offset" in err


def test_truth_csv_is_what_compare_reads(td, tmp_path, truth_tsv):
    from tracedamon.export.truth import write_truth_csv
    from tracedamon.export import compare

    gt = ground_truth(td.table("pagemap"), MANIFEST_AREAS)
    path = write_truth_csv(gt, tmp_path / "truth.csv")
    back = compare.load_truth(path)
    assert len(back) == len(truth_tsv)
    got = back.sort_values(["area", "start"]).reset_index(drop=True)
    exp = truth_tsv.sort_values(["label", "start"]).reset_index(drop=True)
    assert got["area"].tolist() == exp["label"].tolist()
    assert (
        got["start"].tolist() == exp["start"].tolist()
        and got["end"].tolist() == exp["end"].tolist()
    )


@pytest.mark.parametrize("seed", range(40))
def test_corrupted_index_never_crashes(copy1, tmp_path, seed):
    """Random byte damage to the index: a clean result or a tracedamon error, never a traceback."""
    from tracedamon.errors import TracedamonError

    ip = copy1 / "pagemap_snap1.index.json"
    data = bytearray(ip.read_bytes())
    rng = np.random.default_rng(seed)
    for pos in rng.integers(0, len(data), 1 + seed % 4):
        data[pos] = int(rng.choice(list(b'0123456789-,:{}[]"xa\x00\xff ')))
    ip.write_bytes(bytes(data))
    try:
        ingest(copy1, tmp_path / "o.td", format="pagemap")
    except TracedamonError:
        assert not (tmp_path / "o.td").exists()


def test_page_fault_samples_translate_to_recorded_frames(td, run1):
    """perf's page-fault samples of the population phase (virtual addresses, perf's own
    text output, CLOCK_MONOTONIC) → frames, checked against the recorded TSV."""
    vpage_pfn = {}
    for line in (run1 / "ground_truth_pfn_runs.tsv").read_text().splitlines():
        if line.startswith("#"):
            continue
        _a, va, pfn, n = line.split("\t")
        for i in range(int(n)):
            vpage_pfn[int(va, 16) // PS + i] = int(pfn, 16) + i
    times, addrs = [], []
    with gzip.open(run1 / "perf_pagefaults_script.txt.gz", "rt") as f:
        for line in f:
            fld = line.split()
            a = int(fld[4], 16)
            if fld[1] == str(PID) and MANIFEST_AREAS[0][1] <= a < MANIFEST_AREAS[-1][2]:
                times.append(int(round(float(fld[2].rstrip(":")) * 1e9)))
                addrs.append(a)
    assert len(addrs) > 10000
    times, addrs = np.array(times), np.array(addrs, np.uint64)
    pm = td.table("pagemap")
    # a fault's page is mapped only after it: the next snapshot knows the frame
    after = Translator.from_tables(pm, policy="after")
    paddr = after.virt_to_phys(PID, addrs, times)
    exp = np.array([vpage_pfn[a // PS] * PS + a % PS for a in addrs.tolist()], np.uint64)
    assert (paddr == exp).all()
    pids, back = after.phys_to_virt(paddr, times)
    assert (pids == PID).all() and (back == addrs).all()
    # "nearest" sends the faults closer to snapshot 0 (taken before population) there
    near = Translator.from_tables(pm).virt_to_phys(PID, addrs, times)
    mid = (412_559_399_729 + 417_107_170_981) // 2  # snap0 and snap1 t_begin_ns
    assert (times <= mid).any() and (times > mid).any()
    assert ((near == 0) == (times <= mid)).all() and (near[times > mid] == exp[times > mid]).all()
