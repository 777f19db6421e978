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


def saved(obj, func: str) -> str:
    """json.dumps of a config a file keeps (MLP.save): NumPy numbers as Python's, anything else
    JSON cannot hold (a custom scheme's parameter given as a function) a TypeError from
    ``func`` naming it, before the file is written."""
    def plain(value):
        if isinstance(value, (np.integer, np.floating, np.bool_)):
            return value.item()
        raise TypeError(f"{func}: the network's schemes hold {value!r} (a "
                        f"{type(value).__name__}), which a saved file (JSON) cannot keep: a "
                        f"scheme parameter that is a function or an object cannot be saved. "
                        f"Save the weights (net.params) with NumPy instead.")
    return json.dumps(obj, default=plain)
