"""`report truth` and `report attribute` on the shared paddr run: the CLI path from raw
pagemap snapshots to a truth file that `compare --truth` scores a real DAMON trace with."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd

from tracedamon.ingest import ingest
from tracedamon.store.trace import open_trace

from conftest import need_corpus

RUN1 = ("damon-paddr-run1", "paddr_run1")


def _td(*args):
    r = subprocess.run(
        [sys.executable, "-m", "tracedamon", *map(str, args)], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


def _tsv_pages(path):
    """Physical pages per area, straight from the truth file written at recording time."""
    pages: dict[str, set] = {}
    for line in path.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        area, _v, pfn, n = line.split("\t")
        pages.setdefault(area, set()).update(range(int(pfn, 16), int(pfn, 16) + int(n)))
    return pages


def test_truth_csv_equals_recorded_frames_and_scores_run1(tmp_path):
    d = need_corpus(*RUN1)
    pm = ingest(d, tmp_path / "pm.td", format="pagemap")
    truth = tmp_path / "truth.csv"
    _td("report", "truth", pm, "--areas", d / "workload.log", "-o", truth)
    got = pd.read_csv(
        truth, converters={"start": lambda x: int(x, 16), "end": lambda x: int(x, 16)}
    )
    mine: dict[str, set] = {}
    for r in got.itertuples():
        mine.setdefault(r.label, set()).update(range(r.start // 4096, r.end // 4096))
    assert mine == _tsv_pages(d / "ground_truth_pfn_runs.tsv")

    damon = ingest(d / "perf_script.txt.gz", tmp_path / "damon.td")
    out = tmp_path / "m.json"
    _td("compare", damon, "--truth", truth, "-q", "-o", out)
    labels = json.loads(out.read_text())["truth"]["a"]["labels"]
    assert labels["hot"]["mean_nr_accesses"] > 5 * labels["warm"]["mean_nr_accesses"] / 2
    assert labels["warm"]["mean_nr_accesses"] > 5 * labels["cold"]["mean_nr_accesses"]
    assert labels["cold"]["mean_nr_accesses"] < 0.5


def test_attribute_cli_counts_the_workload_frames(tmp_path):
    d = need_corpus(*RUN1)
    pm = ingest(d, tmp_path / "pm.td", format="pagemap")
    damon = ingest(d / "perf_script.txt.gz", tmp_path / "damon.td")
    out = tmp_path / "att.parquet"
    text = _td("report", "attribute", damon, "--pagemap", pm, "-o", out)
    att = pd.read_parquet(out)
    pids = open_trace(pm).df("pagemap")["pid"].unique().tolist()
    assert sorted(att["pid"].unique().tolist()) == sorted(pids)
    assert str(pids[0]) in text
    # never more bytes attributed to a pid than the region holds
    assert (att["bytes"] <= att["end"] - att["start"]).all()
    # per snapshot, a pid's attributed bytes cannot exceed its present pages in the
    # pagemap snapshot used (frames are counted once per process)
    pmdf = open_trace(pm).df("pagemap")
    present = pmdf[pmdf["pfn_start"].notna()]
    cap = (present["vaddr_end"] - present["vaddr_start"]).groupby(present["snapshot"]).sum()
    per = att.groupby(["snapshot", "pagemap_snapshot"])["bytes"].sum().reset_index()
    assert (per["bytes"].to_numpy() <= cap.loc[per["pagemap_snapshot"]].to_numpy()).all()
    assert np.isfinite(per["bytes"]).all() and per["bytes"].sum() > 0


def test_truth_warns_about_an_area_without_present_pages(tmp_path):
    """An area none of whose pages is present is named on stderr, not silently dropped."""
    d = need_corpus(*RUN1)
    pm = ingest(d, tmp_path / "pm.td", format="pagemap")
    log = (d / "workload.log").read_text()
    gone = "1970-01-01 layout area=unmapped start=0x1000 end=0x3000\n"
    (tmp_path / "w.log").write_text(log + gone)
    truth = tmp_path / "truth.csv"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "tracedamon",
            "report",
            "truth",
            str(pm),
            "--areas",
            str(tmp_path / "w.log"),
            "-o",
            str(truth),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert "warning: area unmapped: no page present" in r.stderr
    assert "unmapped" in r.stdout and "(left out)" in r.stdout
    assert "unmapped" not in truth.read_text()
    # every other area is in the file, as before
    labels = set(pd.read_csv(truth)["label"])
    assert {"hot", "warm"} <= labels and "Traceback" not in r.stderr
