"""A region history held whole in memory (:class:`HistoryFrame`), as the reports and compare
read it: a DataFrame of the rows and one of the snapshots.

Not to be confused with the engine's column arrays of a replay's output, nor with
the public :class:`tracedamon.RegionHistory` (a replay's result); every analysis
reads histories through :mod:`tracedamon.export.history` (``open_history``,
``as_source``), whose ``HistorySource.load()`` gives a :class:`HistoryFrame`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["HistoryFrame", "History"]


@dataclass
class HistoryFrame:
    """A region history, sorted by (run, target, snapshot, start).

    ``df`` columns: run, target, pid, snapshot, time_ns, start, end, nr_accesses,
    age (float, NaN when unknown), plus ``snap`` (dense snapshot index 0..S-1) and
    ``key`` (the address-space key: pid when every row has one, else target).
    ``snaps`` has one row per snapshot: run, target, key, snapshot, t0, t1.
    """

    df: pd.DataFrame
    snaps: pd.DataFrame
    name: str
    meta: dict = field(default_factory=dict)
    sample_us: float | None = None
    aggr_us: float | None = None
    aggr_ns_est: float = 0.0  # the aggregation interval used for windows (ns)
    aggr_ns_measured: float = 0.0  # median spacing of consecutive snapshots (ns), else aggr_ns_est
    source: Any = None  # the HistorySource it was read from (None when built by hand)

    @property
    def max_nr_accesses(self) -> float:
        """aggr/sample when the intervals are known, else the largest nr_accesses seen."""
        if self.sample_us and self.aggr_us:
            return float(self.aggr_us) / float(self.sample_us)
        m = float(self.df["nr_accesses"].max()) if len(self.df) else 0.0
        return m if m > 0 else 1.0

    @property
    def max_source(self) -> str:
        return "intervals" if (self.sample_us and self.aggr_us) else "observed"

    @property
    def keys(self) -> list:
        return sorted(self.df["key"].unique().tolist())

    def for_key(self, key) -> "HistoryFrame":
        """The part of this history that belongs to one address space."""
        m = self.df["key"].to_numpy() == key
        df = self.df[m]
        snaps = self.snaps[self.snaps["key"].to_numpy() == key].reset_index(drop=True)
        remap = np.full(len(self.snaps), -1, dtype=np.int64)
        remap[np.flatnonzero(self.snaps["key"].to_numpy() == key)] = np.arange(len(snaps))
        df = df.assign(snap=remap[df["snap"].to_numpy()]).reset_index(drop=True)
        return dataclasses.replace(self, df=df, snaps=snaps)

    def shifted(self, offset_ns: int) -> "HistoryFrame":
        """The same history with every time moved by ``offset_ns``."""
        if not offset_ns:
            return self
        off = int(offset_ns)
        df = self.df.assign(time_ns=self.df["time_ns"].to_numpy() + off)
        snaps = self.snaps.assign(
            t0=self.snaps["t0"].to_numpy() + off, t1=self.snaps["t1"].to_numpy() + off
        )
        return dataclasses.replace(self, df=df, snaps=snaps)

    @property
    def t_start(self) -> int:
        return int(self.snaps["t0"].min())

    @property
    def t_end(self) -> int:
        return int(self.snaps["t1"].max())


#: deprecated name of :class:`HistoryFrame` (kept for one release)
History = HistoryFrame
