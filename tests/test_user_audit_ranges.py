"""A fixed range (fvaddr or paddr ``--range``) that no sample falls in gives a history
in which every region stays idle: the replay says so instead of reporting it as a
monitored, merely idle range."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import tracedamon


def _samples(addrs, pid=7):
    n = len(addrs)
    return pd.DataFrame(
        {
            "time_ns": np.arange(n, dtype=np.int64) * 1_000_000,
            "pid": np.full(n, pid, np.int32),
            "event": ["page-faults"] * n,
            "addr": np.array(addrs, np.uint64),
            "phys_addr": np.array(addrs, np.uint64),
        }
    )


# 400 samples over 400 ms, all in [0x10000, 0x20000)
ADDRS = [0x10000 + (i % 16) * 4096 for i in range(400)]


ACCESS = {"fvaddr": "perf", "paddr": "perf-phys"}  # paddr: the recorded physical addresses


def _idle_warnings(hist):
    return [w for w in hist.metadata["warnings"] if "no sample" in w and "range" in w]


@pytest.mark.parametrize("ops", ["fvaddr", "paddr"])
def test_range_without_samples_is_named(ops):
    hist = tracedamon.replay(
        _samples(ADDRS), ops=ops, access=ACCESS[ops], ranges=["0x100000-0x200000"]
    )
    # the independent count: no sample lies in the range, so no region was accessed
    assert int(hist.df.nr_accesses.max()) == 0
    w = _idle_warnings(hist)
    assert len(w) == 1, hist.metadata["warnings"]
    assert "0x100000-0x200000" in w[0]
    assert "0x10000" in w[0] and "0x20000" in w[0]  # where the samples are


@pytest.mark.parametrize("ops", ["fvaddr", "paddr"])
def test_range_with_samples_gives_no_warning(ops):
    hist = tracedamon.replay(_samples(ADDRS), ops=ops, access=ACCESS[ops], ranges=["0x0-0x100000"])
    assert int(hist.df.nr_accesses.max()) > 0
    assert _idle_warnings(hist) == []


def test_range_with_samples_of_another_pid_only():
    """fvaddr with --pid counts only that process's samples."""
    s = pd.concat([_samples(ADDRS, pid=7), _samples([0x300000] * 400, pid=8)])
    s = s.sort_values("time_ns", kind="stable").reset_index(drop=True)
    hist = tracedamon.replay(s, ops="fvaddr", pids=[7], ranges=["0x300000-0x400000"])
    assert int(hist.df.nr_accesses.max()) == 0
    assert len(_idle_warnings(hist)) == 1
