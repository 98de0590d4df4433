"""Compare sources given by path, and write what the comparison found.

The analysis is :func:`tracedamon.export.compare.compare` (region histories) and
:func:`tracedamon.export.damos_compare.compare_damos` (``damos_apply`` tables); this
module is their I/O side, what ``tracedamon compare`` and the public API call:

* the outputs are checked before anything is read (an existing file is replaced only
  with ``force`` and only when tracedamon wrote it; an output may not be an input), so
  a refused run costs nothing;
* the sources are opened by path (:func:`tracedamon.export.history.as_source`, the one
  way every analysis reads a region history) and the ground truth is read
  (:func:`tracedamon.export.truth_score.load_truth`);
* the metrics (strict JSON) and the cells grid (Parquet) are written through the
  store's output rule, atomically.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError
from ..store.atomic import COMPARE_CELLS, COMPARE_METRICS, check_output
from ..export.compare import compare as compare_histories
from ..export.compare_result import CompareResult
from ..export.damos_compare import DamosCompareResult, compare_damos, is_damos_source
from ..export.history import as_source
from ..export.truth_score import load_truth, score_truth

__all__ = ["compare", "compare_damos_sources", "cells_path_for", "is_damos_pair"]

PathLike = str | os.PathLike


def cells_path_for(out: PathLike) -> Path:
    """Where the cells grid goes beside the metrics ``out``: ``m.json`` ->
    ``m.cells.parquet``."""
    stem = Path(out).with_suffix("")
    return stem.with_name(stem.name + ".cells.parquet")


def is_damos_pair(a, b) -> bool:
    """Whether ``a`` or ``b`` holds scheme applications (``damos_apply``) and no
    region history, so that comparing them means comparing their applications."""
    return is_damos_source(a) or is_damos_source(b)


def compare(
    a,
    b=None,
    *,
    out: PathLike | None = None,
    cells: PathLike | bool | None = None,
    truth=None,
    force: bool = False,
    damos: bool | None = None,
    **options,
) -> CompareResult | DamosCompareResult:
    """Compare region history ``b`` (candidate) with ``a`` (reference) and write the
    metrics to ``out`` and the cells grid to ``cells`` (each when given; ``cells=True``:
    beside ``out``, see :func:`cells_path_for`).

    ``a``/``b``: paths (a trace directory, a region ``.parquet`` file, a ``tracedamon
    damos`` output) or anything :func:`tracedamon.export.compare.compare` takes;
    ``options`` are its options (``offset_ns``, ``align``, ``acc_thres``, ...).
    ``truth``: ground-truth ranges (a CSV or JSON file, or a DataFrame) each side is
    scored against; with ``b=None`` only ``a`` is scored (the result's metrics are
    ``{"truth": {"a": ...}}``). ``damos``: as for the analysis (``None``: compare the
    ``damos_apply`` tables when either source holds applications and no history).
    """
    if b is not None and (damos or damos is None and is_damos_pair(a, b)):
        return compare_damos_sources(
            a,
            b,
            out=out,
            force=force,
            offset_ns=options.get("offset_ns", 0),
            window_ns=options.get("window_ns"),
        )
    inputs = [a, b, truth]
    if out is not None:
        check_output(out, COMPARE_METRICS, force=force, inputs=_paths(inputs))
    if b is None:
        if truth is None:
            raise ConfigError(
                "give two sources, or one source and truth",
                cli_message="give two sources, or one source and --truth",
            )
        res = CompareResult(
            {"truth": {"a": score_truth(_open(a, options.get("name_a")), load_truth(truth))}}
        )
    else:
        if cells is True:
            cells = None if out is None else cells_path_for(out)
        elif cells is False:
            cells = None
        if cells is not None:
            check_output(cells, COMPARE_CELLS, force=force, inputs=_paths(inputs + [out]))
        res = compare_histories(
            _open(a, options.pop("name_a", None)),
            _open(b, options.pop("name_b", None)),
            truth=None if truth is None else load_truth(truth),
            cells=cells is not None,
            damos=False,
            **options,
        )
        if cells is not None:
            res.write_cells(cells, force=force)
    if out is not None:
        res.to_json(out, force=force)
    return res


def compare_damos_sources(
    a,
    b,
    *,
    out: PathLike | None = None,
    force: bool = False,
    offset_ns: int = 0,
    window_ns: int | None = None,
) -> DamosCompareResult:
    """Compare the ``damos_apply`` tables of ``a`` and ``b`` (see
    :mod:`tracedamon.export.damos_compare`) and write the metrics to ``out``."""
    if out is not None:
        check_output(out, COMPARE_METRICS, force=force, inputs=_paths([a, b]))
    res = compare_damos(a, b, offset_ns=offset_ns, window_ns=window_ns)
    if out is not None:
        res.to_json(out, force=force)
    return res


def _open(src, name):
    return as_source(src, name)


def _paths(items) -> list:
    """The inputs that are paths (an output may not be one of them)."""
    return [p for p in items if isinstance(p, (str, os.PathLike))]
