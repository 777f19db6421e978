"""fastinit.sample: draw the weights of one network or a population of them, reproducibly."""
from __future__ import annotations

import math

import numpy as np

from . import registry
from . import streams
from ._validate import check_choice, check_dtype, check_int, check_seed, check_shape
from .families import FAMILIES, Draw
from .fans import LAYOUTS, conv_dims, matrix_dims, resolve_fans
from .memory import check_memory
from .spread import orthonormal_scratch

_FUNC = "fastinit.sample"
MAX_MEMBERS = 2**32   # member k draws from stream (k << 32) | tag (streams.stream_ids)
CHECKED_FROM = 1 << 28   # bytes: smaller draws skip the memory check (10 us, a third of 8 x 8)
# family arguments the weights hold as they are (a constant, the identity's diagonal, the ends
# of the uniform range): beyond the dtype's finite range they would be inf
AS_VALUES = {"constant": ("value",), "identity": ("gain",), "uniform": ("low", "high")}
_TOP = {4: float(np.finfo(np.float32).max), 8: float(np.finfo(np.float64).max)}  # by itemsize
TAILED = ("variance_scaling", "sparse")   # mean-0 families with Gaussian tails (and normal's)


def sample(scheme, shape, *, seed, n=None, start=0, dtype=np.float32, layout="torch",
           fan_in=None, fan_out=None, out=None, **params) -> np.ndarray:
    """Draw a weight of ``shape`` under ``scheme``; with ``n``, n independent members at once.

    Parameters
    ----------
    scheme : str or InitSpec
        A registered scheme name (``fastinit.schemes()``) or ``fastinit.spec(name, **params)``.
    shape : tuple of int
        One weight's shape, PyTorch layout by default: (out, in) dense, (out, in/groups, *k)
        conv. With ``layout="keras"``: (in, out) dense, (*k, in, out) conv.
    seed : int in [0, 2**64)
        The Philox key. Every value is a pure function of (seed, member, position).
    n : int, optional
        Population size: adds a leading axis of n independent members. Member k of
        ``sample(..., n=N)`` equals ``sample(..., n=1, start=k)[0]`` bitwise, on any number of
        threads.
    start : int
        Index of the first member (its stream).
    dtype : np.float32 (default; None means it) or np.float64
    fan_in, fan_out : float, optional
        Override the fans computed from the shape (any framework's convention).
    out : ndarray, optional
        Write the result here (C-contiguous, the result's shape and dtype) instead of a new
        array; returned.
    **params
        The scheme's parameters (e.g. ``a=0.1, mode="fan_out"`` for kaiming_normal).

    Returns
    -------
    ndarray of shape ``(n, *shape)`` or ``shape`` when n is None.

    >>> import fastinit
    >>> w = fastinit.sample("he_normal", (256, 784), seed=0, n=8)
    >>> w.shape, w.dtype
    ((8, 256, 784), dtype('float32'))
    """
    scheme_obj, resolved = registry.resolve(scheme, params, _FUNC)
    shape = check_shape(shape, "shape", _FUNC)
    seed = check_seed(seed, "seed", _FUNC)
    count = 1 if n is None else check_int(n, "n", _FUNC, minimum=1, maximum=MAX_MEMBERS)
    start = check_int(start, "start", _FUNC, minimum=0, maximum=MAX_MEMBERS - 1)
    if start + count > MAX_MEMBERS:
        raise ValueError(f"The 'n' and 'start' parameters of {_FUNC} must satisfy n + start "
                         f"<= 2**32 (members are streams 0 .. 2**32 - 1). Got n={count}, "
                         f"start={start} instead.")
    dt = check_dtype(dtype, "dtype", _FUNC)
    check_choice(layout, "layout", _FUNC, LAYOUTS)
    if math.prod(shape) >= 2**32:
        raise ValueError(f"The 'shape' parameter of {_FUNC} must have fewer than 2**32 values "
                         f"per member. Got {shape!r} ({math.prod(shape)} values).")
    target = None
    if out is not None:
        want = shape if n is None else (count,) + shape
        if not isinstance(out, np.ndarray) or out.shape != want or out.dtype != dt \
                or not out.flags.c_contiguous or not out.flags.writeable:
            got = (f"shape {out.shape}, dtype {out.dtype}, C-contiguous "
                   f"{out.flags.c_contiguous}" if isinstance(out, np.ndarray)
                   else type(out).__name__)
            raise ValueError(f"The 'out' parameter of {_FUNC} must be a writeable C-contiguous "
                             f"array of shape {want} and dtype {dt.name}. Got {got} instead.")
        target = out.reshape((count,) + shape)
    members = np.arange(start, start + count, dtype=np.int64)
    result = draw(scheme_obj, resolved, shape, dtype=dt, layout=layout,
                  key=np.full(count, seed, dtype=np.uint64), members=members,
                  tag=streams.SAMPLE_VALUES, fan_in=fan_in, fan_out=fan_out, func=_FUNC,
                  out=target)
    if out is not None:
        return out
    return result if n is not None else result[0]


def draw(scheme: registry.Scheme, params: dict, shape: tuple[int, ...], *, dtype, layout, key,
         members, tag, fan_in=None, fan_out=None, func=_FUNC, out=None) -> np.ndarray:
    """Draw validated members (keys and member indices given) of one scheme; (n, *shape).

    With ``out`` (n, *shape), C-contiguous, of ``dtype``: the result is written there.
    """
    fi, fo = resolve_fans(shape, layout, fan_in, fan_out, func=func, scheme=scheme.name,
                          required=scheme.needs_fans)
    args = scheme.family_args(params, fi, fo, func)
    _check_in_range(scheme, args, fi, fo, shape, layout, np.dtype(dtype), func)
    _check_orthonormal_memory(scheme, shape, layout, len(members), np.dtype(dtype), func)
    d = Draw(func=func, scheme=scheme.name, shape=shape, dtype=np.dtype(dtype), layout=layout,
             key=np.ascontiguousarray(key, dtype=np.uint64),
             members=np.ascontiguousarray(members, dtype=np.int64), tag=tag,
             fan_in=fi, fan_out=fo, out=out)
    result = FAMILIES[scheme.family].draw(d, **args)
    if out is not None and result is not out:
        out[...] = result
        return out
    return result


def _check_in_range(scheme, args, fan_in, fan_out, shape, layout, dtype, func: str) -> None:
    """ValueError unless the weights fit ``dtype``, in O(1), no pass over the drawn weights:
    the values the family writes as they are (a constant, the identity's gain, the uniform's
    ends and their difference) within its range, and a family with Gaussian tails within it
    to 8 standard deviations of its mean (normal(std=1e300) in float32 gave inf weights,
    variance_scaling(scale=1e300) NaN ones). Bounded families (truncated, orthogonal, ...)
    hold their entries within their bounds, checked as values or by their own family."""
    top = _TOP[dtype.itemsize]
    for arg in AS_VALUES.get(scheme.family, ()):
        if abs(args[arg]) > top:
            raise ValueError(f"Scheme {scheme.name!r} in {func}: {arg}={args[arg]!r} is beyond "
                             f"{dtype.name}'s range (largest finite {top:.4g}): the weights "
                             f"would be inf. Use float64.")
    if scheme.family == "uniform" and not abs(args["high"] - args["low"]) <= top:
        raise ValueError(f"Scheme {scheme.name!r} in {func}: high - low = "
                         f"{args['high'] - args['low']:.4g} is beyond {dtype.name}'s range "
                         f"(largest finite {top:.4g}): the weights would be inf.")
    if scheme.family == "normal":
        reach = abs(args["mean"]) + 8.0 * args["std"]
    elif scheme.family in TAILED:               # mean 0: the root of the second moment
        try:
            reach = 8.0 * math.sqrt(FAMILIES[scheme.family].moment(args, fan_in, fan_out,
                                                                  tuple(shape), layout))
        except OverflowError:                   # std ** 2 of a std above float64's root
            reach = math.inf if dtype.itemsize == 4 else 0.0
        except (TypeError, ValueError):         # no moment, or no fans: the draw says why
            return
    else:
        return
    if not reach <= top:
        shown = f"{reach:.4g}" if math.isfinite(reach) else "1e154 or more"
        raise ValueError(f"Scheme {scheme.name!r} in {func}: its weights would reach about "
                         f"{shown} (8 standard deviations), beyond {dtype.name}'s largest "
                         f"finite value {top:.4g}: they would overflow to inf. Use a smaller "
                         f"scale, or float64.")


def _check_orthonormal_memory(scheme, shape, layout, count: int, dtype, func: str) -> None:
    """MemoryError before an orthogonal draw that the memory cannot hold, its weights (and a
    copy: transposed, or placed in a kernel) and kernels.orthogonal's float64 scratch counted
    (spread.orthonormal_scratch), instead of Numba's "Allocation failed (probably too large)"
    from inside the kernel. Shapes the family refuses are left to its error."""
    dims = None
    if scheme.family == "orthogonal" and len(shape) >= 2:
        dims = matrix_dims(shape, layout)
    elif scheme.family == "delta_orthogonal" and conv_dims(shape, layout) is not None:
        dims = conv_dims(shape, layout)[1::-1]                        # (in, out)
    if dims is None:
        return
    p, q = min(dims), max(dims)
    weights = 2 * count * math.prod(shape) * dtype.itemsize
    if 64 * count * (p + 16) * (q + 16) + weights < CHECKED_FROM:   # above any scratch: small
        return                            # draws skip the thread count and the runs (~4 us)
    need = orthonormal_scratch(count, p, q) + weights
    if need >= CHECKED_FROM:
        check_memory(need, f"Scheme {scheme.name!r} in {func}: {count} orthogonal {p} x {q} "
                           f"matrices and their float64 scratch")
