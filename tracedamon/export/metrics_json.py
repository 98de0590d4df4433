"""Strict JSON text of a metrics dict: what ``compare`` and the other metric outputs
write (NaN and infinities become null; numpy scalars and frames plain JSON)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..store.atomic import COMPARE_METRICS, marked, write_text_atomic
from .overlay import clean as _clean


def _sanitize(o):
    """JSON-safe copy: NaN and infinities become null, numpy scalars Python numbers."""
    if isinstance(o, dict):
        return {str(k): _sanitize(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_sanitize(v) for v in o]
    if isinstance(o, (float, np.floating)):
        return _clean(float(o))
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, pd.DataFrame):
        return _sanitize(o.to_dict("records"))
    return o


def metrics_json(metrics: dict) -> str:
    """Strict JSON text of a metrics dict (no NaN: unknown values are null)."""
    return json.dumps(_sanitize(metrics), indent=2, allow_nan=False, default=_json_default)


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return _clean(float(o))
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, pd.DataFrame):
        return o.to_dict("records")
    return str(o)


def metrics_text(
    metrics: dict, path: str | os.PathLike | None = None, *, force: bool = False
) -> str:
    """A compare result's metrics as strict JSON text; with ``path``, also written there
    (with tracedamon's marker; ``force=True`` replaces only metrics tracedamon wrote)."""
    if path is None:
        return metrics_json(metrics)
    text = metrics_json(marked(COMPARE_METRICS, metrics))
    write_text_atomic(Path(path), text + "\n", kind=COMPARE_METRICS, force=force)
    return text
