"""Checks at the API boundary, with one error template, and the parameter constraint type.

Every message names the parameter and the function, says what was expected and what was given,
and for names offers the closest valid choice:

    The 'mode' parameter of fastinit.sample must be one of {'fan_in', 'fan_out', 'fan_avg',
    'fan_geo_avg'}. Got 'fan_inn' instead. Did you mean 'fan_in'?
"""
from __future__ import annotations

import difflib
import os
import math
import numbers
import re
import zipfile
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from . import kernels

MAX_SEED = 2**64 - 1


# other libraries' names for fastinit's choices, which spelling alone would not find ("ce"
# is closer to "bce" than to "cross_entropy"; "binary_cross_entropy" to "cross_entropy")
SYNONYMS = {"ce": "cross_entropy", "nll": "cross_entropy", "categorical_crossentropy":
            "cross_entropy", "binary_cross_entropy": "bce", "binary_crossentropy": "bce",
            "bce_with_logits": "bce", "bcewithlogits": "bce", "l2": "mse",
            "mean_squared_error": "mse", "nag": "nesterov", "sgd_momentum": "momentum"}


def closest(name: str, choices: Iterable[str]) -> str | None:
    """The valid choice closest to ``name`` (difflib), or None when nothing is close."""
    if not isinstance(name, str):
        return None
    choices = list(choices)
    if SYNONYMS.get(name.lower()) in choices:
        return SYNONYMS[name.lower()]
    if name != name.lower():   # "Relu", "AdamW", "HeNormal": by their letters, not their case
        squash = {re.sub(r"[\s_-]", "", c.lower()): c for c in reversed(choices)}
        lower = {c.lower(): c for c in reversed(choices)}
        key = re.sub(r"[\s_-]", "", name.lower())
        if key in squash:
            return squash[key]
        found = difflib.get_close_matches(name.lower(), list(lower), n=1, cutoff=0.6)
        if found:
            return lower[found[0]]
    found = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    if not found:  # fall back to case-insensitive prefix matches ("He_Normal", "kaiming")
        low = name.lower()
        found = [c for c in choices if c.lower() == low or c.lower().startswith(low)][:1]
    return found[0] if found else None


def did_you_mean(name, choices: Iterable[str]) -> str:
    """The hint every fastinit error about a name ends with: " Did you mean 'x'?" for the
    closest valid choice, or "" when nothing is close."""
    c = closest(name, choices)
    return f" Did you mean {c!r}?" if c else ""


def _where(param: str, func: str) -> str:
    return f"The {param!r} parameter of {func}"


def choice_error(param: str, func: str, choices: Iterable[str], got: Any) -> ValueError:
    choices = list(choices)
    shown = "{" + ", ".join(repr(c) for c in choices) + "}"
    return ValueError(f"{_where(param, func)} must be one of {shown}. Got {got!r} instead."
                      + did_you_mean(got, choices))


def check_choice(value: Any, param: str, func: str, choices: Iterable[str]) -> str:
    choices = list(choices)
    if not isinstance(value, str) or value not in choices:
        raise choice_error(param, func, choices, value)
    return str(value)                   # np.str_('fan_out') is shown as such in labels


def check_int(value: Any, param: str, func: str, *, minimum: int | None = None,
              maximum: int | None = None) -> int:
    """An integer (Python or NumPy, not bool) within [minimum, maximum]."""
    if type(value) is not int and (isinstance(value, (bool, np.bool_))   # int: no ABC check
                                   or not isinstance(value, numbers.Integral)):
        raise TypeError(f"{_where(param, func)} must be an integer. "
                        f"Got {value!r} of type {type(value).__name__} instead.")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{_where(param, func)} must be an integer >= {minimum}. "
                         f"Got {value} instead.")
    if maximum is not None and value > maximum:
        raise ValueError(f"{_where(param, func)} must be an integer <= {maximum}. "
                         f"Got {value} instead.")
    return value


def check_seed(value: Any, param: str, func: str) -> int:
    """A seed: an integer in [0, 2**64 - 1]."""
    if type(value) is not int and (isinstance(value, (bool, np.bool_))
                                   or not isinstance(value, numbers.Integral)):
        raise TypeError(f"{_where(param, func)} must be a non-negative integer in "
                        f"[0, 2**64 - 1]. Got {value!r} of type {type(value).__name__} instead.")
    value = int(value)
    if not 0 <= value <= MAX_SEED:
        raise ValueError(f"{_where(param, func)} must be a non-negative integer in "
                         f"[0, 2**64 - 1]. Got {value} instead.")
    return value


def check_real(value: Any, param: str, func: str, *, low: float | None = None,
               high: float | None = None, low_open: bool = False, high_open: bool = False,
               finite: bool = True) -> float:
    """A real number (not bool) in the interval given by low/high and their openness."""
    if type(value) is not float and type(value) is not int and (
            isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real)):
        raise TypeError(f"{_where(param, func)} must be a real number. "
                        f"Got {value!r} of type {type(value).__name__} instead.")
    value = float(value)
    if finite and not math.isfinite(value):
        raise ValueError(f"{_where(param, func)} must be a finite real number. "
                         f"Got {value!r} instead.")
    bad = ((low is not None and (value < low or (low_open and value == low)))
           or (high is not None and (value > high or (high_open and value == high))))
    if bad:
        lo = "-inf" if low is None else repr(low)
        hi = "inf" if high is None else repr(high)
        interval = ("(" if low_open or low is None else "[") + f"{lo}, {hi}" + \
                   (")" if high_open or high is None else "]")
        raise ValueError(f"{_where(param, func)} must be in the interval {interval}. "
                         f"Got {value!r} instead.")
    return value


def check_bool(value: Any, param: str, func: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{_where(param, func)} must be True or False. "
                        f"Got {value!r} of type {type(value).__name__} instead.")
    return bool(value)


def check_callable(value: Any, param: str, func: str, how: str):
    """``value`` if it is callable (as ``how`` says, e.g. "log(message)") or None."""
    if value is not None and not callable(value):
        raise TypeError(f"{_where(param, func)} must be callable as {how} or None. "
                        f"Got {value!r} of type {type(value).__name__} instead.")
    return value


FLOAT_DTYPES = {"float32": np.float32, "float64": np.float64}


def check_dtype(value: Any, param: str, func: str) -> np.dtype:
    """float32 or float64, given as a NumPy dtype, a type or a name; None is the default,
    float32 (as PyTorch's dtype=None is its default; NumPy would read it as float64)."""
    if value is None:
        return np.dtype(np.float32)
    try:
        dt = np.dtype(value)
    except TypeError:
        dt = None
    if dt is None or dt.name not in FLOAT_DTYPES:
        raise ValueError(f"{_where(param, func)} must be one of {{'float32', 'float64'}} "
                         f"(np.float32 or np.float64). Got {value!r} instead.")
    if not dt.isnative:                 # '>f4' is named float32 too; the kernels take native
        raise ValueError(f"{_where(param, func)} must be float32 or float64 in this machine's "
                         f"byte order (np.float32 or np.float64). Got {value!r}, "
                         f"{'big' if dt.byteorder == '>' else 'little'}-endian, instead.")
    return dt


def check_shape(value: Any, param: str, func: str) -> tuple[int, ...]:
    """A weight shape: an int or a sequence (or 1-D integer array) of positive ints."""
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        value = (value,)
    if isinstance(value, np.ndarray) and value.ndim == 1 and value.dtype.kind in "iu":
        value = tuple(value.tolist())
    if not isinstance(value, (tuple, list)):
        raise TypeError(f"{_where(param, func)} must be a tuple of positive integers, "
                        f"e.g. (out, in). Got {value!r} of type {type(value).__name__} "
                        f"instead.")
    dims = []
    for d in value:
        if isinstance(d, (bool, np.bool_)) or not isinstance(d, numbers.Integral):
            raise TypeError(f"{_where(param, func)} must be a tuple of positive integers. "
                            f"Got {tuple(value)!r}: {d!r} is not an integer.")
        if d <= 0:
            raise ValueError(f"{_where(param, func)} must have positive dimensions. "
                             f"Got {tuple(value)!r}: dimension {int(d)} is not positive.")
        dims.append(int(d))
    if not dims:
        raise ValueError(f"{_where(param, func)} must have at least one dimension. "
                         f"Got () instead.")
    return tuple(dims)


def check_path(value: Any, param: str, func: str) -> str:
    """A file path: a non-empty str, bytes or os.PathLike, as a str."""
    if not isinstance(value, (str, bytes, os.PathLike)):
        raise TypeError(f"{_where(param, func)} must be a path (str or os.PathLike). Got "
                        f"{value!r} of type {type(value).__name__} instead.")
    path = os.fsdecode(value)
    if not path:                        # sqlite3 would open a temporary database, then lose it
        raise ValueError(f"{_where(param, func)} must be a path. Got an empty one.")
    return path


def check_npz(value: Any, param: str, func: str,
              what: str = "an .npz archive (a zip of .npy arrays, as numpy.savez writes)") -> str:
    """A path to an .npz archive, refusing a missing file and another file before NumPy reads
    it as a pickle ("contains pickled data", even with allow_pickle=False). An open file
    (anything with read and seek, as np.load takes) is passed on as it is."""
    if hasattr(value, "read") and hasattr(value, "seek"):
        return value
    path = check_path(value, param, func)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{func}: {path} does not exist.")
    if os.path.isfile(path) and not zipfile.is_zipfile(path):
        raise ValueError(f"{func}: {path} is not {what}.")
    return path


# -- data and resources ---------------------------------------------------------------------

def as_array(value, param: str, func: str) -> np.ndarray:
    """np.asarray(value) for what users hand in: a torch tensor that requires grad or is not on
    the CPU is detached and copied (np.asarray raised torch's own RuntimeError), bfloat16
    (torch's, or ml_dtypes' as JAX gives it) widened to float32, exactly (torch raised, and
    ml_dtypes' was "not numbers"); what is not array-like is a TypeError naming ``param``."""
    try:
        if hasattr(value, "detach") and hasattr(value, "cpu"):        # a torch tensor
            value = value.detach().cpu()
            if str(value.dtype) == "torch.bfloat16":
                value = value.float()
        arr = np.asarray(value)
    except Exception as e:  # noqa: BLE001 - anything that is not array-like
        raise TypeError(f"{_where(param, func)} must be an array. Got "
                        f"{type(value).__name__}: {e}") from None
    return arr.astype(np.float32) if arr.dtype.name == "bfloat16" else arr


def check_x(x, width: int, dtype, func: str, param: str = "X") -> np.ndarray:
    """Inputs as a C-contiguous (n, width) array of ``dtype``, finite, at least one sample."""
    arr = as_array(x, param, func)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{_where(param, func)} must hold numbers. Got dtype {arr.dtype}.")
    if arr.ndim == 1 and width != 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"{_where(param, func)} must be 2-D (samples, features). Got shape "
                         f"{arr.shape}.")
    if arr.shape[1] != width:
        raise ValueError(f"{_where(param, func)} has {arr.shape[1]} features but the "
                         f"network's input width is {width}.")
    if arr.shape[0] == 0:
        raise ValueError(f"{_where(param, func)} has no samples.")
    return _cast_finite(arr, dtype, param, func)


def _cast_finite(given: np.ndarray, dtype, param: str, func: str) -> np.ndarray:
    """``given`` as a C-contiguous array of ``dtype``, refused when a value is not finite: NaN
    or infinite as given, or finite but beyond the dtype's range (1e300 in float32)."""
    if given.dtype == dtype:
        arr = np.ascontiguousarray(given)
    else:
        with np.errstate(over="ignore"):        # no "overflow encountered in cast" warning
            arr = np.ascontiguousarray(given, dtype=dtype)
    if kernels.optim.finite(arr.reshape(-1)):   # the only pass over ordinary input
        return arr
    bad = int(np.count_nonzero(~np.isfinite(given)))
    if bad:
        raise ValueError(f"{_where(param, func)} contains {bad} NaN or infinite value(s).")
    big, top = float(np.max(np.abs(given))), float(np.finfo(dtype).max)
    raise ValueError(f"{_where(param, func)} holds values up to {big:.4g} in magnitude, beyond "
                     f"{np.dtype(dtype).name}'s range (largest finite {top:.4g}). Scale them "
                     f"down, or use a float64 network.")


def check_targets(y, n: int, outputs: int, loss: str, dtype, func: str, param: str = "y",
                  why: str = ""):
    """(labels int64 (n,), targets (n, outputs)) for a loss; the one the loss does not use is
    a stub. cross_entropy takes integer class labels in [0, outputs); mse and bce take one
    target per output (bce: in [0, 1]). ``why``: how the loss was chosen, for the shape error."""
    arr = as_array(y, param, func)
    if arr.shape[:1] != (n,):
        raise ValueError(f"{_where(param, func)} must have one entry per sample of X ({n}). "
                         f"Got shape {arr.shape}.")
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{_where(param, func)} must hold numbers: integer class labels 0, 1, "
                        f"2, ... or float targets. Got dtype {arr.dtype}."
                        + " Did you mean np.unique(y, return_inverse=True)[1], each label's "
                          "index?" * (arr.dtype.kind in "USO"))
    if loss == "cross_entropy":
        if arr.ndim != 1:
            hint = (" Did you mean y.ravel()?" if arr.shape[1:] == (1,) else
                    " One-hot labels? Did you mean y.argmax(axis=1)?"
                    if arr.shape[1:] == (outputs,) else "")
            raise ValueError(f"{_where(param, func)} must be a 1-D array of integer class "
                             f"labels for cross_entropy. Got shape {arr.shape}, dtype "
                             f"{arr.dtype}.{hint}")
        if arr.dtype.kind == "f":
            if not np.isfinite(arr).all() or (arr != np.round(arr)).any():
                raise ValueError(f"{_where(param, func)} must hold integer class labels. Got "
                                 f"non-integer values.")
        lo, hi = int(arr.min()), int(arr.max())   # before int64, where 2**63 or 1e30 wraps
        if lo < 0 or hi >= outputs:
            raise ValueError(f"{_where(param, func)} holds labels in [{lo}, {hi}] but the "
                             f"network has {outputs} output{'s' * (outputs != 1)}: labels "
                             f"must be in [0, {outputs - 1}]." + " Did you mean loss='bce' "
                             "(one output, binary targets)?" * (outputs == 1 and 0 <= lo
                                                                 and hi <= 1))
        labels = arr.astype(np.int64, copy=False)
        return np.ascontiguousarray(labels), np.zeros((1, 1), dtype=dtype)   # targets' stub
    given = arr.shape
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] != outputs:
        raise ValueError(f"{_where(param, func)} must have shape ({n}, {outputs}) for {loss} "
                         f"(one target per output). Got shape {given}.{why}")
    targets = _cast_finite(arr, dtype, param, func)
    if loss == "bce" and (targets.min() < 0 or targets.max() > 1):
        raise ValueError(f"{_where(param, func)} must hold targets in [0, 1] for bce. Got "
                         f"values in [{targets.min()}, {targets.max()}].")
    return np.zeros(1, dtype=np.int64), targets                          # labels' stub


# -- parameter constraints, as data -----------------------------------------------------------

class _Required:
    def __repr__(self):
        return "<required>"


REQUIRED = _Required()
KINDS = ("real", "positive", "nonnegative", "fraction", "bound", "choice", "bool",
         "positive_int", "callable", "optional_real")
IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Param:
    """A scheme or family parameter: name, default (or REQUIRED), constraint, description.

    ``kind`` is one of KINDS: real, positive (> 0), nonnegative, fraction ([0, 1)), bound
    (real or +-inf), choice (one of ``choices``), bool, positive_int, callable, optional_real
    (a finite real or None, None meaning "not set": the scheme decides, as edge_of_chaos's
    activation_param takes the network's).
    """
    name: str
    default: Any = REQUIRED
    kind: str = "real"
    choices: tuple = ()
    doc: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not IDENTIFIER.match(self.name):
            raise ValueError(f"Param name must be an identifier. Got {self.name!r}.")
        check_choice(self.kind, "kind", f"fastinit.Param({self.name!r})", KINDS)
        if self.kind == "choice" and (isinstance(self.choices, str) or not self.choices or not
                                      all(isinstance(c, str) for c in self.choices)):
            raise ValueError(f"Param {self.name!r} of kind 'choice' needs its choices, a tuple "
                             f"of names (str). Got {self.choices!r}.")
        if self.kind != "choice" and self.choices:
            raise ValueError(f"Param {self.name!r}: choices are for kind 'choice'; its kind is "
                             f"{self.kind!r}. Got choices {self.choices!r}.")
        object.__setattr__(self, "choices", tuple(self.choices))
        if self.default is not REQUIRED:
            self.check(self.default, f"fastinit.Param({self.name!r})")

    def check(self, value, func: str):
        """The value, validated (and normalised) against this parameter's constraint."""
        k, name = self.kind, self.name
        if k == "real":
            return check_real(value, name, func)
        if k == "positive":
            return check_real(value, name, func, low=0.0, low_open=True)
        if k == "nonnegative":
            return check_real(value, name, func, low=0.0)
        if k == "fraction":
            return check_real(value, name, func, low=0.0, high=1.0, high_open=True)
        if k == "bound":
            v = check_real(value, name, func, finite=False)
            if math.isnan(v):
                raise ValueError(f"The {name!r} parameter of {func} must be a real number or "
                                 f"+-inf. Got nan instead.")
            return v
        if k == "choice":
            return check_choice(value, name, func, self.choices)
        if k == "bool":
            return check_bool(value, name, func)
        if k == "positive_int":
            return check_int(value, name, func, minimum=1)
        if k == "optional_real":
            if value is None:
                return None
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
                raise TypeError(f"{_where(name, func)} must be a real number or None. "
                                f"Got {value!r} of type {type(value).__name__} instead.")
            return check_real(value, name, func)
        if not callable(value):
            raise TypeError(f"The {name!r} parameter of {func} must be callable. "
                            f"Got {value!r} instead.")
        return value
