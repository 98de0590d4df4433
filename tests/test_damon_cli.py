"""`tracedamon ingest` / `info` on DAMON inputs, end to end through the command line."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT, SAMPLES, need_corpus


def _td(*args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-m", "tracedamon", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def test_ingest_live_sample_and_info(tmp_path):
    out = tmp_path / "live.td"
    r = _td("ingest", SAMPLES / "damon" / "live_paddr.perf.data", "-o", out)
    assert r.returncode == 0, r.stderr
    assert "run 0: 2 snapshots over 5.116 s, aggregation 5115.7 ms, targets [0]" in r.stdout
    assert "regions per snapshot 2418-2589" in r.stdout
    assert "damos_apply (96 rows)" in r.stdout and "regions (5007 rows)" in r.stdout
    meta = json.loads((out / "meta.json").read_text())
    assert meta["intervals"]["source"] == "inferred"
    r2 = _td("info", out)
    assert r2.returncode == 0 and "run 0: 2 snapshots" in r2.stdout


def test_skip_bad_on_damos_corrupted_record(tmp_path):
    src = need_corpus("damon-paddr-run1", "paddr_run1", "damo_record.data")
    r = _td("ingest", src, "-o", tmp_path / "a.td")
    assert r.returncode == 3 and "snapshot 13" in r.stderr and "Traceback" not in r.stderr
    r = _td("ingest", "--skip-bad", src, "-o", tmp_path / "b.td")
    assert r.returncode == 0, r.stderr
    assert "run 0: 13 snapshots" in r.stdout and "skipped: {'snapshots': 5}" in r.stdout
