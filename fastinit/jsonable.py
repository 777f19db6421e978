"""Results as JSON: NaN and infinities become null (JSON has neither), arrays become lists.

One cleaner for everything fastinit writes as JSON: a History, Diagnostics, the store's curves
and diagnostics.
"""
from __future__ import annotations

import json
import math

import numpy as np


def clean(obj):
    """obj with every non-finite float as None, NumPy arrays and scalars as Python lists and
    numbers, tuples as lists; dicts and lists recursively."""
    if isinstance(obj, np.ndarray):
        return clean(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, dict):
        return {k: clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    return obj


def dumps(obj, **kwargs) -> str:
    """json.dumps of clean(obj): never a NaN or Infinity token."""
    return json.dumps(clean(obj), allow_nan=False, **kwargs)
