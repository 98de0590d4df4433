"""`tracedamon snapshot -- CMD`: the first snapshot is taken as soon as the command
starts, not seconds later.

Building the first snapshot's tables used to import pandas (pyarrow loads it
lazily on its first array): on a busy machine that took seconds, during which
a short command ran unobserved, or ended (one snapshot, or none). The check is
that no module is imported between the command's start and its first snapshot,
in a fresh interpreter.
"""
from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT

PROBE = r"""
import json, subprocess, sys
import tracedamon.ingest.pagemap as pm
seen = {}
real = subprocess.Popen

class Popen(real):
    def __init__(self, *a, **k):
        seen["at_start"] = set(sys.modules)
        super().__init__(*a, **k)

pm.subprocess.Popen = Popen

def first(k, snap):
    seen.setdefault("at_first", set(sys.modules))

pm.capture(sys.argv[1], cmd=[sys.executable, "-c", "import time; time.sleep(2)"],
           count=1, kpageflags=False, on_snapshot=first)
print(json.dumps(sorted(seen["at_first"] - seen["at_start"])))
"""


def test_no_import_between_the_command_start_and_its_first_snapshot(tmp_path):
    r = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "s.td")], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    imported = json.loads(r.stdout.strip().splitlines()[-1])
    assert imported == [], imported
