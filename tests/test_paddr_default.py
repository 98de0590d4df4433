"""paddr replay without --range: the biggest run of memory blocks perf recorded."""
from __future__ import annotations

import re

import numpy as np

from tracedamon.engine.ops.paddr import default_range, mem_topology_ranges
from tracedamon.ingest import ingest
from tracedamon.engine.replay import replay

from conftest import need_corpus


def test_mem_topology_runs():
    topo = {"block_size": 0x1000, "nodes": [{"node": 0, "blocks": [3, 1, 2, 7]},
                                            {"node": 1, "blocks": [8, 9]}]}
    assert mem_topology_ranges(topo) == [(0x1000, 0x4000), (0x7000, 0xa000)]
    rg, src = default_range({"mem_topology": topo}, np.array([], np.int64))
    assert rg.tolist() == [[0x1000, 0x4000]] and "MEM_TOPOLOGY" in src


def test_paddr_replay_takes_ram_from_perf_header(tmp_path):
    data = need_corpus("perf", "02_minflt_phys_pgsz.data")
    header = need_corpus("perf", "02_minflt_phys_pgsz.header.txt").read_text()
    # perf's own decoding of the feature: "# memory nodes (nr 1, block size 0x8000000):"
    # followed by "#    0 [24G]: 0-23,32-199" (block index ranges)
    bs = int(re.search(r"block size (0x[0-9a-f]+)", header).group(1), 16)
    spans = re.search(r"#\s+0 \[\w+\]: ([0-9,-]+)", header).group(1).split(",")
    runs = [(int(a) * bs, (int(b) + 1) * bs) for a, b in (s.split("-") for s in spans)]
    want = max(runs, key=lambda r: r[1] - r[0])
    td = ingest(data, tmp_path / "t.td")
    h = replay(td, ops="paddr", access="perf-phys")
    assert "MEM_TOPOLOGY" in h.metadata["targets"][0]["ranges_source"]
    assert h.metadata["targets"][0]["ranges"] == [list(want)]
    df = h.df
    assert int(df["start"].min()) == want[0] and int(df["end"].max()) == want[1]
