"""Region limits in damon_set_regions, worked out by hand from the kernel's code."""
from __future__ import annotations

import pytest

from tracedamon.engine.core import set_regions

K = 1024


# ---------------------------------------------------------------------------------------
# max_region (the perf-access RFC's region_sz/max) in damon_set_regions
# ---------------------------------------------------------------------------------------
def _set(regs, ranges, maxsz):
    return [tuple(r) for r in set_regions([list(r) for r in regs], ranges, 4096, maxsz)]


def test_set_regions_cuts_a_grown_region_in_max_size_pieces():
    """The RFC's damon_set_regions(split=true): a first region that grew downwards (or a
    last one that grew upwards) is cut by damon_evenly_split_region into max-size pieces;
    the region keeps the first piece and its counters, the other pieces are new (zero).
    One region [64K, 80K) fitted to [32K, 128K) with max 8K: grown both ways, cut whole
    into 12 pieces."""
    got = _set([(0x10000, 0x14000, 3, 30000, 2, 7)], [(0x8000, 0x20000)], 8 * K)
    assert got == [(0x8000, 0xA000, 3, 30000, 2, 7)] + [
        (a, a + 0x2000, 0, 0, 0, 0) for a in range(0xA000, 0x20000, 0x2000)]


def test_set_regions_cuts_grown_first_and_last_and_fills_the_hole():
    """Regions [64K, 80K) and [96K, 112K) fitted to [32K, 144K), max 8K: the first grows
    down to [32K, 80K) (6 pieces), the last up to [96K, 144K) (6 pieces), the hole
    [80K, 96K) becomes a new region cut in 2 pieces."""
    got = _set([(0x10000, 0x14000, 1, 10000, 1, 5), (0x18000, 0x1C000, 2, 20000, 2, 6)],
               [(0x8000, 0x24000)], 8 * K)
    zero = (0, 0, 0, 0)
    assert got == ([(0x8000, 0xA000, 1, 10000, 1, 5)]
                   + [(a, a + 0x2000) + zero for a in range(0xA000, 0x14000, 0x2000)]
                   + [(0x14000, 0x16000) + zero, (0x16000, 0x18000) + zero]
                   + [(0x18000, 0x1A000, 2, 20000, 2, 6)]
                   + [(a, a + 0x2000) + zero for a in range(0x1A000, 0x24000, 0x2000)])


@pytest.mark.parametrize("maxsz", [0, 8 * K])
def test_set_regions_keeps_a_trimmed_region_whole(maxsz):
    """Only growth cuts: a region trimmed on both sides keeps its size and counters (with
    or without max_region); without max_region a grown region stays whole too."""
    assert _set([(0x10000, 0x30000, 4, 40000, 4, 9)], [(0x12000, 0x2E000)], maxsz) == [
        (0x12000, 0x2E000, 4, 40000, 4, 9)]
    if not maxsz:
        assert _set([(0x10000, 0x14000, 3, 30000, 2, 7)], [(0x8000, 0x20000)], 0) == [
            (0x8000, 0x20000, 3, 30000, 2, 7)]
