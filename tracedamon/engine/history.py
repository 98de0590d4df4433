"""What a monitor produced: the snapshots' column arrays (:class:`HistoryArrays`) and
what the monitor covered, per target, from which snapshot on (:class:`Coverage`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def merged_ranges(start: np.ndarray, end: np.ndarray) -> list[tuple[int, int]]:
    """The union of one target's regions (sorted, non-overlapping), adjacent ones merged."""
    if start.size == 0:
        return []
    brk = np.flatnonzero(start[1:] != end[:-1]) + 1
    lo = np.concatenate([[0], brk])
    hi = np.concatenate([brk, [start.size]]) - 1
    return [(int(start[a]), int(end[b])) for a, b in zip(lo, hi)]


class Coverage:
    """What the monitor covers, per target, and from which snapshot on.

    ``entries`` are ``(snapshot_from, target, start, end)``: target ``target``'s
    regions cover exactly the union of its ranges of the latest ``snapshot_from`` at or
    before a snapshot.  A target without regions has one ``(snapshot_from, target, 0,
    0)``.  :meth:`note` records a target's ranges and adds entries only when they changed
    (merge and split never change them; ops init and updates may)."""

    def __init__(self, n_targets: int):
        # per target: [(snapshot_from, ranges), ...] in increasing snapshot_from
        self.groups: list[list[tuple[int, list[tuple[int, int]]]]] = [[] for _ in range(n_targets)]

    def note(self, snapshot_from: int, target: int, ranges: list[tuple[int, int]]) -> None:
        g = self.groups[target]
        if g and g[-1][0] == snapshot_from:
            g.pop()  # changed again before any snapshot saw the previous change
        if g and g[-1][1] == ranges:
            return
        g.append((snapshot_from, list(ranges)))

    @property
    def entries(self) -> list[tuple[int, int, int, int]]:
        return [
            (frm, t, s, e)
            for t, g in enumerate(self.groups)
            for frm, rg in g
            for s, e in (rg or [(0, 0)])
        ]

    def sorted(self, n_snapshots: int) -> list[list[int]]:
        """Entries of the snapshots that exist, sorted by (snapshot_from, target, start)."""
        return [list(e) for e in sorted(self.entries) if e[0] < max(n_snapshots, 1)]


@dataclass
class HistoryArrays:
    """The snapshots a monitor produced, as column arrays (REGIONS order); the pipeline
    turns them into a :class:`tracedamon.pipeline.region_history.RegionHistory`."""

    snapshot: np.ndarray
    time_ns: np.ndarray
    target: np.ndarray
    start: np.ndarray
    end: np.ndarray
    nr_accesses: np.ndarray
    age: np.ndarray
    nr_accesses_bp: np.ndarray
    n_snapshots: int = 0
    tune_events: list = field(default_factory=list)
    coverage: list = field(default_factory=list)

    @classmethod
    def from_chunks(
        cls, chunks: list[tuple], n_snapshots: int, tune_events, coverage=()
    ) -> "HistoryArrays":
        """From per-snapshot column tuples (none when a sink took them)."""
        if chunks:
            cols = [np.concatenate([c[k] for c in chunks]) for k in range(8)]
        else:
            cols = [np.zeros(0, np.int64) for _ in range(8)]
        return cls(*cols, n_snapshots=n_snapshots, tune_events=tune_events, coverage=list(coverage))
