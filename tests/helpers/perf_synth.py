"""Shared by the native perf.data reader's tests on synthetic and live files: a file
ingested into a fresh trace directory (replacing an older one of the same name)."""

from __future__ import annotations

import shutil

from tracedamon.ingest.perf_data import ingest_into
from tracedamon.store.trace import open_trace
from tracedamon.store.writer import TraceDirWriter


def _ingest(path, tmp_path, name="t.td"):
    out = tmp_path / name
    if out.exists():
        shutil.rmtree(out)
    with TraceDirWriter(out) as w:
        ingest_into(path, w)
    return open_trace(out)
