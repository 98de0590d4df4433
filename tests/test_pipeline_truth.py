"""tracedamon.pipeline.truth: ground truth and attribution as library calls (what
`report truth` and `report attribute` run), on the shared paddr run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tracedamon.errors import InputError, OutputError
from tracedamon.ingest import ingest
from tracedamon.pipeline.truth import load_areas, write_attribution, write_ground_truth

from conftest import need_corpus

RUN1 = ("damon-paddr-run1", "paddr_run1")


@pytest.fixture(scope="module")
def run1(tmp_path_factory):
    d = need_corpus(*RUN1)
    tmp = tmp_path_factory.mktemp("run1")
    pm = ingest(d, tmp / "pm.td", format="pagemap")
    damon = ingest(d / "perf_script.txt.gz", tmp / "damon.td")
    return d, pm, damon


def _recorded_pages(path) -> dict[str, int]:
    """Physical pages per area, from the truth file written at recording time."""
    pages: dict[str, set] = {}
    for line in path.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        area, _v, pfn, n = line.split("\t")
        pages.setdefault(area, set()).update(range(int(pfn, 16), int(pfn, 16) + int(n)))
    return {k: len(v) for k, v in pages.items()}


def test_ground_truth_counts_the_recorded_frames_per_label(run1, tmp_path):
    d, pm, _ = run1
    log = (d / "workload.log").read_text()
    (tmp_path / "w.log").write_text(log + "x layout area=unmapped start=0x1000 end=0x3000\n")
    out = tmp_path / "truth.csv"
    res = write_ground_truth(pm, tmp_path / "w.log", out)
    assert res.path == str(out) and out.exists()
    counts = {c.label: c.pages for c in res.labels if not c.left_out}
    assert counts == _recorded_pages(d / "ground_truth_pfn_runs.tsv")
    assert res.left_out == ["unmapped"]
    # the ranges counted are the file's ranges
    got = pd.read_csv(out, converters={"start": lambda x: int(x, 16), "end": lambda x: int(x, 16)})
    for c in res.labels:
        assert c.ranges == int((got["label"] == c.label).sum())
    # the labels come in the areas' order
    areas = load_areas(tmp_path / "w.log")
    assert [c.label for c in res.labels] == list(pd.unique(areas["label"]))


def test_ground_truth_refuses_an_output_it_did_not_write_before_any_work(run1, tmp_path):
    _, pm, _ = run1
    out = tmp_path / "truth.csv"
    out.write_text("mine\n")
    with pytest.raises(OutputError):
        write_ground_truth(pm, tmp_path / "no-such-areas.csv", out)
    assert out.read_text() == "mine\n"


def test_ground_truth_needs_a_pagemap_table(run1, tmp_path):
    d, _, damon = run1
    with pytest.raises(InputError, match="holds no pagemap table"):
        write_ground_truth(damon, d / "workload.log", tmp_path / "t.csv")
    assert not (tmp_path / "t.csv").exists()


def test_attribution_sums_equal_its_table(run1, tmp_path):
    _, pm, damon = run1
    out = tmp_path / "att.parquet"
    res = write_attribution(damon, pm, out)
    att = pd.read_parquet(out)
    assert res["per_pid"], "the workload's frames are attributed"
    for pid, (tot, acc) in res["per_pid"].items():
        rows = att[att["pid"] == pid]
        assert tot == pytest.approx(float(rows["bytes"].sum()))
        assert acc == pytest.approx(float(rows.loc[rows["nr_accesses"] > 0, "bytes"].sum()))
    # without an output nothing is written and the sums are the same
    again = write_attribution(damon, pm)
    assert again["per_pid"].keys() == res["per_pid"].keys()
    for pid in res["per_pid"]:
        assert np.allclose(again["per_pid"][pid], res["per_pid"][pid])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["att.parquet"]
