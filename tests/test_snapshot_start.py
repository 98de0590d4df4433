"""`tracedamon snapshot`: the first snapshot is taken at once and imports nothing.

Building the first snapshot's tables used to import pandas (pyarrow loads it
lazily on its first array): on a busy machine that took seconds, during which a
command (``snapshot -- CMD``) ran unobserved or ended (one snapshot, or none), and
after which the interval grid had slipped (the second snapshot of
``--interval 30ms --duration 100ms`` came 3 s after the first). The check is that no
module is imported between a command's start, or the first snapshot's start, and
the end of that snapshot, in a fresh interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT

PROBE = r"""
import json, subprocess, sys, time
from tracedamon.ingest import pagemap_capture as pm
mode, out = sys.argv[1], sys.argv[2]
seen = {}
real_popen, real_snapshot = subprocess.Popen, pm.PagemapCapture.snapshot

class Popen(real_popen):
    def __init__(self, *a, **k):
        seen.setdefault("start", set(sys.modules))
        super().__init__(*a, **k)

def snapshot(self, *a, **k):
    seen.setdefault("start", set(sys.modules))
    return real_snapshot(self, *a, **k)

def first(k, snap):
    seen.setdefault("first", set(sys.modules))

pm.subprocess.Popen = Popen
pm.PagemapCapture.snapshot = snapshot
if mode == "cmd":
    pm.capture(out, cmd=[sys.executable, "-c", "import time; time.sleep(2)"], count=1,
               kpageflags=False, on_snapshot=first)
else:
    p = real_popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        pm.capture(out, pid=p.pid, count=1, kpageflags=False, on_snapshot=first)
    finally:
        p.kill()
print(json.dumps(sorted(seen["first"] - seen["start"])))
"""


@pytest.mark.parametrize("mode", ["cmd", "pid"])
def test_nothing_is_imported_while_the_first_snapshot_is_due(tmp_path, mode):
    r = subprocess.run(
        [sys.executable, "-c", PROBE, mode, str(tmp_path / "s.td")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    imported = json.loads(r.stdout.strip().splitlines()[-1])
    assert imported == [], imported


def test_no_snapshot_starts_after_the_duration(tmp_path):
    """A snapshot that overruns is followed at once by the next, unless the duration
    is over by then: here the first takes 150 ms, the duration is 100 ms."""
    import time

    from tracedamon.ingest.pagemap_capture import capture

    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        res = capture(
            tmp_path / "d.td",
            pid=p.pid,
            interval="30ms",
            duration="100ms",
            kpageflags=False,
            on_snapshot=lambda k, s: time.sleep(0.15),
        )
    finally:
        p.kill()
        p.wait()
    assert res.stopped_by == "duration" and res.snapshots == 1


def test_a_snapshot_that_begins_after_the_duration_is_not_kept(tmp_path, monkeypatch):
    """The machine may delay a snapshot past the duration after the last check that
    it is still due (here: the wait before the second one lasts 1.2 s too long)."""
    import time

    from tracedamon.ingest import pagemap_capture as pm
    from tracedamon.store.trace import open_trace

    real_wait = pm._Interrupts.wait

    def slow_wait(self, deadline_ns, proc, pidfds):
        out = real_wait(self, deadline_ns, proc, pidfds)
        time.sleep(1.2)
        return out

    monkeypatch.setattr(pm._Interrupts, "wait", slow_wait)
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        res = pm.capture(
            tmp_path / "d.td", pid=p.pid, interval="30ms", duration="1s", kpageflags=False
        )
    finally:
        p.kill()
        p.wait()
    assert res.stopped_by == "duration" and res.snapshots == 1
    t = open_trace(tmp_path / "d.td")
    assert t.df("maps").snapshot.nunique() == 1 == len(t.meta["pagemap"]["snapshots"])
