"""sweep prints compare's warnings about its reference the way compare does: one line,
``tracedamon: warning: ...``, once, not Python's warning with a source line per run."""

from __future__ import annotations

import subprocess
import sys

import tracedamon
from tracedamon.ingest import ingest

from conftest import SAMPLES


def test_sweep_reference_warning_is_one_line(tmp_path):
    td = ingest(SAMPLES / "hotcold.perf.data", tmp_path / "h.td")
    ref = tmp_path / "ref.parquet"
    # fvaddr (targets by number) against the sweep's vaddr runs (targets by pid): compare
    # warns that the two monitor different targets
    tracedamon.replay(td, ops="fvaddr", ranges=["0x200000000000-0x200000120000"], output=ref)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "tracedamon",
            "sweep",
            str(td),
            "--grid",
            "sample-us=5000,10000",
            "--reference",
            str(ref),
            "--workers",
            "1",
            "-o",
            str(tmp_path / "s.parquet"),
            "-q",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    warned = [ln for ln in lines if "monitor different targets" in ln]
    assert len(warned) == 1, r.stderr
    assert warned[0].startswith("tracedamon: warning: "), r.stderr
    assert not [ln for ln in lines if ".py:" in ln or "row.update" in ln], r.stderr
