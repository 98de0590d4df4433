"""What :func:`tracedamon.export.compare.compare` returns, and its outputs: the
metrics as strict JSON and the cells grid as Parquet, written through the store's
output rule."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pyarrow as pa

from ..store.atomic import COMPARE_CELLS
from ..store.writer import write_table_atomic
from .metrics_json import metrics_text

__all__ = ["CompareResult"]


class CompareResult:
    """What :func:`compare` found: ``metrics`` (a JSON-ready dict), ``wss`` (the
    working-set series), ``per_time`` (agreement per time bin) and ``cells`` (one row
    per cell of the picture grid: time and address bounds, both sides' heat, rate,
    accessed fraction, age and coverage, and the rate difference b - a), computed
    from the sources on first use."""

    def __init__(
        self,
        metrics: dict,
        cells: pd.DataFrame | None = None,
        wss: pd.DataFrame | None = None,
        per_time: pd.DataFrame | None = None,
        cells_fn=None,
    ):
        self.metrics = metrics
        self._cells = cells
        self._cells_fn = cells_fn
        self.wss = wss if wss is not None else pd.DataFrame()
        self.per_time = per_time if per_time is not None else pd.DataFrame()

    @property
    def cells(self) -> pd.DataFrame:
        if self._cells is None:
            self.set_cells(self._cells_fn() if self._cells_fn else pd.DataFrame())
        return self._cells

    def set_cells(self, cells: pd.DataFrame) -> None:
        self._cells = cells
        if "grid" in self.metrics:
            self.metrics["grid"]["cells"] = int(len(cells))
            self.metrics["grid"]["valid_cells"] = int(cells["valid"].sum()) if len(cells) else 0

    def to_json(self, path: str | os.PathLike | None = None, *, force: bool = False) -> str:
        """The metrics as strict JSON text; with ``path``, also written there (with
        tracedamon's marker; ``force=True`` replaces only metrics tracedamon wrote)."""
        return metrics_text(self.metrics, path, force=force)

    def write_cells(self, path: str | os.PathLike, *, force: bool = False) -> Path:
        t = pa.Table.from_pandas(self.cells, preserve_index=False)
        return write_table_atomic(
            t,
            path,
            metadata={
                "table": "compare_cells",
                "metrics": {k: self.metrics.get(k) for k in ("a", "b", "grid", "alignment")},
            },
            kind=COMPARE_CELLS,
            force=force,
        )
