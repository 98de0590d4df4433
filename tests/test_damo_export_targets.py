"""damo export of a vaddr history with several processes: one damo record per address
space, whose target id is that space's pid (tracedamon.export.damo_export's contract,
docs/damon-traces.md §2.4), as the record says and as damo itself reads it."""

from __future__ import annotations

import json
import re
import zlib

import pandas as pd

from tracedamon.export.damo_export import export_damo
from test_damo_export import damo, requires_damo

PIDS = (4242, 917)  # not 0, 1: a record index is not a pid
AGGR_US, SAMPLE_US = 100_000, 5_000


def two_process_history() -> pd.DataFrame:
    """Three snapshots of two processes (targets 0 and 1), each with its own regions."""
    rows = []
    for s in range(3):
        t = (s + 1) * AGGR_US * 1000
        for target, pid in enumerate(PIDS):
            base = 0x7F0000000000 if target == 0 else 0x550000000000
            for i in range(2 + target):
                lo = base + i * 0x10000
                rows.append((0, s, t, target, pid, lo, lo + 0x10000, (i + s + target) % 5, s))
    df = pd.DataFrame(
        rows,
        columns=[
            "run",
            "snapshot",
            "time_ns",
            "target",
            "pid",
            "start",
            "end",
            "nr_accesses",
            "age",
        ],
    )
    df.attrs["tracedamon"] = {"intervals": {"sample_us": SAMPLE_US, "aggr_us": AGGR_US}}
    return df


def test_each_record_is_one_process_and_carries_its_pid(tmp_path):
    df = two_process_history()
    export_damo(df, tmp_path / "r.data")
    recs = json.loads(zlib.decompress((tmp_path / "r.data").read_bytes()))
    assert len(recs) == 2
    got = {}
    for r in recs:
        got[r["target_id"]] = sorted(
            {int(g["start"]) for sn in r["snapshots"] for g in sn["regions"]}
        )
    want = {pid: sorted(set(df.loc[df.pid == pid, "start"].astype(int))) for pid in PIDS}
    assert got == want


@requires_damo
def test_damo_reads_the_pids_as_target_ids(tmp_path):
    export_damo(two_process_history(), tmp_path / "r.data")
    out = damo("report", "record_info", "--input", str(tmp_path / "r.data"))
    assert sorted(int(x) for x in re.findall(r"target_id: (\d+)", out)) == sorted(PIDS)
