"""paddr replay without --range: the biggest run of memory blocks perf recorded."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tracedamon.engine.ops.paddr import default_range, mem_topology_ranges
from tracedamon.pipeline.replay import replay
from tracedamon.ingest import ingest
from tracedamon.store.trace import open_trace

from conftest import need_corpus


def _perf_memory_runs(header: str):
    """perf's own decoding of MEM_TOPOLOGY in `perf report --header-only`:
    '# memory nodes (nr 1, block size 0x8000000):' then '#    0 [24G]: 0-23,32-199'."""
    m = re.search(r"block size (0x[0-9a-f]+)", header)
    if not m:
        return None
    bs = int(m.group(1), 16)
    runs = []
    for spans in re.findall(r"^#\s+\d+ \[\w+\]: ([0-9,-]+)$", header, re.M):
        for s in spans.split(","):
            a, _, b = s.partition("-")
            runs.append((int(a) * bs, (int(b or a) + 1) * bs))
    return sorted(runs)


def test_mem_topology_runs():
    topo = {
        "block_size": 0x1000,
        "nodes": [{"node": 0, "blocks": [3, 1, 2, 7]}, {"node": 1, "blocks": [8, 9]}],
    }
    assert mem_topology_ranges(topo) == [(0x1000, 0x4000), (0x7000, 0xA000)]
    rg, src = default_range({"mem_topology": topo}, np.array([], np.int64))
    # two runs of the same size: released kernels keep the last (see engine/profiles.py)
    assert rg.tolist() == [[0x7000, 0xA000]] and "MEM_TOPOLOGY" in src


@pytest.mark.parametrize("name", ["01_pf_c1_addr", "02_minflt_phys_pgsz", "05_two_events_id"])
def test_mem_topology_equals_perf_header(name, tmp_path):
    data = need_corpus("perf", f"{name}.data")
    want = _perf_memory_runs(need_corpus("perf", f"{name}.header.txt").read_text())
    assert want, "the oracle lists memory nodes"
    td = ingest(data, tmp_path / "t.td")
    assert mem_topology_ranges(open_trace(td).meta["mem_topology"]) == want


def test_paddr_replay_takes_ram_from_perf_header(tmp_path):
    data = need_corpus("perf", "02_minflt_phys_pgsz.data")
    want = max(
        _perf_memory_runs(need_corpus("perf", "02_minflt_phys_pgsz.header.txt").read_text()),
        key=lambda r: r[1] - r[0],
    )
    td = ingest(data, tmp_path / "t.td")
    h = replay(td, ops="paddr", access="perf-phys", sample_us=10, aggr_us=100)
    assert "MEM_TOPOLOGY" in h.metadata["targets"][0]["ranges_source"]
    assert h.metadata["targets"][0]["ranges"] == [list(want)]
    df = h.df
    assert int(df["start"].min()) == want[0] and int(df["end"].max()) == want[1]
