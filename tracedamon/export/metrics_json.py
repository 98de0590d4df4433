"""Strict JSON text of a metrics dict: what ``compare`` and the other metric outputs
write (NaN and infinities become null; numpy scalars and frames plain JSON)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

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
