"""The fixed-size sample layout (sample_types without a variable-size field, decoded at
constant offsets) with every fixed field at once, each with its own value: a field read
from another field's slot shows as a wrong column, whichever two fields are swapped.

The files are written by tests/perfdata_writer.py, which lays fields out in the
kernel's order (perf_output_sample; docs/perf-data-format.md); the random subsets of
test_perf_data_synth rarely draw a layout holding all of them."""

from __future__ import annotations

import pytest

import perfdata_writer as W
from perfdata_writer import S
from helpers.perf_synth import _check_row, _ingest

FIXED = (
    S.IP
    | S.TID
    | S.TIME
    | S.ADDR
    | S.ID
    | S.STREAM_ID
    | S.CPU
    | S.PERIOD
    | S.DATA_SRC
    | S.TRANSACTION
    | S.PHYS_ADDR
    | S.CGROUP
    | S.DATA_PAGE_SIZE
    | S.CODE_PAGE_SIZE
)


def _fields(i: int) -> dict:
    """Sample ``i``'s values: no two fields share a value (nor two samples)."""
    return {
        "ip": 0xFFFFFFFF81000000 + i,
        "pid": 4100 + i,
        "tid": 4200 + i,
        "time": 1_000_000 + 1000 * i,
        "addr": 0x7F1200000000 + 0x1000 * i,
        "stream_id": 0x5100 + i,
        "cpu": 7 + i,
        "period": 30_011 + i,
        "data_src": 0x68100142 + (i << 26),
        "transaction": 0x61 + i,
        "phys_addr": 0x2_3400_0000 + 0x1000 * i,
        "cgroup": 0x7701 + i,
        "data_page_size": 4096 << i,
        "code_page_size": 8192 << i,
        "weight": 0x0003_0002_0000_0000 + 0x1D + i,
    }


@pytest.mark.parametrize("weight", [S.WEIGHT, S.WEIGHT_STRUCT], ids=["weight", "weight_struct"])
@pytest.mark.parametrize("ident", [0, S.IDENTIFIER], ids=["", "identifier"])
def test_every_fixed_field_at_once(tmp_path, weight, ident):
    ev = W.Event(
        "ev0", type=4, config=0x1CD, sample_type=FIXED | weight | ident, sample_period=4000
    )
    W.assign_ids([ev])
    truth = [_fields(i) for i in range(6)]
    W.write_perf_data(
        tmp_path / "f.data", [ev], [W.Sample(ev, misc=W.MISC_USER, **f) for f in truth]
    )
    rows = _ingest(tmp_path / "f.data", tmp_path).table("samples").to_pylist()
    assert len(rows) == len(truth)
    for o, f in zip(rows, truth):
        _check_row(o, ev, f, "ev0")
