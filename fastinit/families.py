"""The families every scheme specialises: how each draws a population of weights; its E[w^2].

A family is a distribution or construction with named arguments (variance scaling: scale, mode,
distribution); a scheme (registry.py, builtin_schemes.py) fixes some and exposes the rest.
``FAMILIES`` lists them. Side by side, each family has ``draw_<family>(d, **args)``, which gets
a validated ``Draw`` (each member's key and stream) and returns (n, *shape) in its dtype, and
``moment_<family>(args, fan_in, fan_out, shape, layout)``: E[w^2] over the entries of one weight
in closed form (exact for deterministic families), or None when the family cannot draw that
shape or has no closed form.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from . import kernels, streams
from ._validate import Param
from .fans import MODES, conv_dims, dense_dims, fan_of, matrix_dims
from .spread import fill, orthonormal_rows, over_members

TRUNC_STD_2 = 0.87962566103423978  # std of N(0, 1) truncated to (-2, 2): Keras / JAX constant
DISTRIBUTIONS = ("truncated_normal", "normal", "untruncated_normal", "uniform")


@dataclass(frozen=True)
class Draw:
    """One validated request: ``n`` members of one weight shape, with their keys and streams."""
    func: str                  # public function, for error messages
    scheme: str                # scheme name, for error messages
    shape: tuple[int, ...]     # one weight's shape, in ``layout``
    dtype: np.dtype
    layout: str                # "torch" (out, in, *k) or "keras" (*k, in, out)
    key: np.ndarray            # (n,) uint64 seed of each member
    members: np.ndarray        # (n,) int64 member index of each member (its stream)
    tag: int = streams.SAMPLE_VALUES
    fan_in: float | None = None
    fan_out: float | None = None
    out: np.ndarray | None = None  # (n, *shape) destination, when the caller gives one

    @property
    def n(self) -> int:
        return len(self.members)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def stream(self, offset: int = 0) -> np.ndarray:
        return streams.stream_ids(self.members, self.tag + offset)

    def flat(self) -> np.ndarray:
        """(n, size) array to fill: a view of ``out`` when given, else new."""
        if self.out is not None:
            return self.out.reshape(self.n, self.size)
        return np.empty((self.n, self.size), dtype=self.dtype)

    def full(self, value: float) -> np.ndarray:
        return np.full(self.n, value, dtype=np.float64)

    def finish(self, flat: np.ndarray) -> np.ndarray:
        return flat.reshape((self.n,) + self.shape)


def _error(d: Draw, msg: str) -> ValueError:
    return ValueError(f"Scheme {d.scheme!r} in {d.func}: {msg}")


# -- random families -------------------------------------------------------------------------

def draw_uniform(d: Draw, low: float, high: float) -> np.ndarray:
    out = d.flat()
    fill(kernels.sampling.uniform_fill, out, d.key, d.stream(), d.full(low), d.full(high))
    return d.finish(out)


def moment_uniform(args, fan_in, fan_out, shape, layout) -> float:
    lo, hi = args["low"], args["high"]
    return (lo * lo + lo * hi + hi * hi) / 3.0


def draw_normal(d: Draw, mean: float, std: float) -> np.ndarray:
    out = d.flat()
    fill(kernels.sampling.normal_fill, out, d.key, d.stream(), d.full(mean), d.full(std))
    return d.finish(out)


def moment_normal(args, fan_in, fan_out, shape, layout) -> float:
    return args["std"] ** 2 + args["mean"] ** 2


def truncnorm_moments(alpha: float, beta: float) -> tuple[float, float]:
    """(mean, standard deviation) of N(0, 1) truncated to [alpha, beta]."""
    pdf = lambda x: 0.0 if math.isinf(x) else math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    cdf = lambda x: 0.5 * math.erfc(-x / math.sqrt(2))
    z = cdf(beta) - cdf(alpha)
    ta = 0.0 if math.isinf(alpha) else alpha * pdf(alpha)
    tb = 0.0 if math.isinf(beta) else beta * pdf(beta)
    mean = (pdf(alpha) - pdf(beta)) / z
    return mean, math.sqrt(1.0 + (ta - tb) / z - mean * mean)


def _truncation(mean, std, a, b, bounds) -> tuple[float, float, bool]:
    """(alpha, beta, has_mass): the interval in standard units, and whether a float64 sees
    probability in it (measured on the side of the mean where erfc keeps its precision)."""
    alpha, beta = ((a - mean) / std, (b - mean) / std) if bounds == "absolute" else (a, b)
    lo, hi = (alpha, beta) if alpha <= 0 else (-beta, -alpha)
    return alpha, beta, 0.5 * math.erfc(-hi / math.sqrt(2)) - \
        0.5 * math.erfc(-lo / math.sqrt(2)) > 1e-300


def draw_truncated_normal(d: Draw, mean: float, std: float, a: float, b: float, bounds: str,
                          correct: bool) -> np.ndarray:
    alpha, beta, has_mass = _truncation(mean, std, a, b, bounds)
    if not has_mass:
        raise _error(d, f"the truncation interval [{alpha:g}, {beta:g}] (in standard "
                        "deviations from the mean) has no probability mass a float64 can "
                        "represent. Move the bounds closer to the mean.")
    scale = std / truncnorm_moments(alpha, beta)[1] if correct else std
    out = d.flat()
    fill(kernels.sampling.truncnorm_fill, out, d.key, d.stream(), d.full(mean), d.full(scale),
         d.full(alpha), d.full(beta))
    return d.finish(out)


def moment_truncated_normal(args, fan_in, fan_out, shape, layout) -> float | None:
    """w = mean + scale z, z truncated: (mean + scale E[z])^2 + scale^2 Var[z]."""
    alpha, beta, has_mass = _truncation(args["mean"], args["std"], args["a"], args["b"],
                                        args["bounds"])
    if not has_mass:
        return None
    mean, sd = truncnorm_moments(alpha, beta)
    scale = args["std"] / sd if args["correct"] else args["std"]
    return (args["mean"] + scale * mean) ** 2 + (scale * sd) ** 2


def draw_variance_scaling(d: Draw, scale: float, mode: str, distribution: str) -> np.ndarray:
    try:
        var = scale / fan_of(mode, d.fan_in, d.fan_out)
    except ValueError as e:
        raise _error(d, str(e)) from None
    if distribution == "uniform":
        bound = math.sqrt(3.0 * var)
        return draw_uniform(d, -bound, bound)
    if distribution in ("normal", "untruncated_normal"):
        return draw_normal(d, 0.0, math.sqrt(var))
    out = d.flat()
    fill(kernels.sampling.truncnorm_fill, out, d.key, d.stream(), d.full(0.0),
         d.full(math.sqrt(var) / TRUNC_STD_2), d.full(-2.0), d.full(2.0))
    return d.finish(out)


def moment_variance_scaling(args, fan_in, fan_out, shape, layout) -> float:
    """scale / fan: every distribution has exactly this variance (truncated_normal corrected)."""
    return args["scale"] / fan_of(args["mode"], fan_in, fan_out)


def _orthonormal_rows(d: Draw, p: int, q: int, gain: float, out=None) -> np.ndarray:
    out = np.empty((d.n, p, q), dtype=d.dtype) if out is None else out
    orthonormal_rows(out, d.key, d.stream(), d.full(gain))
    return out


def draw_orthogonal(d: Draw, gain: float) -> np.ndarray:
    if len(d.shape) < 2:
        raise _error(d, f"orthogonal weights need at least 2 dimensions. Got shape {d.shape}.")
    rows, cols = matrix_dims(d.shape, d.layout)   # rows <= cols: straight into ``out``
    into = d.out.reshape(d.n, rows, cols) if d.out is not None and rows <= cols else None
    q = _orthonormal_rows(d, min(rows, cols), max(rows, cols), gain, into)
    if rows > cols:
        q = np.ascontiguousarray(q.transpose(0, 2, 1))
    return q.reshape((d.n,) + d.shape)


def moment_orthogonal(args, fan_in, fan_out, shape, layout) -> float | None:
    """min(rows, cols) orthonormal vectors scaled by gain: gain^2 min / (rows cols)."""
    if len(shape) < 2:
        return None
    return args["gain"] ** 2 / max(matrix_dims(shape, layout))


def draw_sparse(d: Draw, sparsity: float, std: float) -> np.ndarray:
    if len(d.shape) != 2:
        raise _error(d, f"sparse weights must be 2-D. Got shape {d.shape}.")
    rows, cols = dense_dims(d.shape, d.layout)
    out = np.empty((d.n, rows, cols), dtype=d.dtype)
    fill(kernels.sampling.normal_fill, out.reshape(d.n, -1), d.key, d.stream(), d.full(0.0),
         d.full(std))
    n_zero = int(math.ceil(sparsity * rows))
    over_members(kernels.sampling.sparse_zero, out.shape[0] * out.shape[2], out, d.key,
                 d.stream(streams.MASK_OFFSET), n_zero)
    return out if d.layout == "torch" else np.ascontiguousarray(out.transpose(0, 2, 1))


def moment_sparse(args, fan_in, fan_out, shape, layout) -> float | None:
    """std^2 times the fraction of each column (of ``rows`` = out entries) left non-zero."""
    if len(shape) != 2:
        return None
    rows = dense_dims(shape, layout)[0]
    return args["std"] ** 2 * (1 - math.ceil(args["sparsity"] * rows) / rows)


# -- deterministic families ------------------------------------------------------------------

def draw_constant(d: Draw, value: float) -> np.ndarray:
    return np.full((d.n,) + d.shape, value, dtype=d.dtype)


def moment_constant(args, fan_in, fan_out, shape, layout) -> float:
    return args["value"] ** 2


def _broadcast(d: Draw, w: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.broadcast_to(w.astype(d.dtype), (d.n,) + w.shape))


def draw_identity(d: Draw, gain: float) -> np.ndarray:
    if len(d.shape) != 2:
        raise _error(d, f"identity weights must be 2-D. Got shape {d.shape}.")
    return _broadcast(d, gain * np.eye(*d.shape))


def moment_identity(args, fan_in, fan_out, shape, layout) -> float | None:
    if len(shape) != 2:
        return None
    return args["gain"] ** 2 * min(shape) / math.prod(shape)


def _conv_dims(d: Draw):
    dims = conv_dims(d.shape, d.layout)
    if dims is None:
        raise _error(d, f"needs a 3-, 4- or 5-D convolution weight. Got shape {d.shape}.")
    return dims


def _place_at_centre(d: Draw, mats: np.ndarray, centre: tuple[int, ...]) -> np.ndarray:
    """Zero weights with mats (n, out, in) at one kernel position."""
    w = np.zeros((d.n,) + d.shape, dtype=d.dtype)
    if d.layout == "torch":
        w[(slice(None), slice(None), slice(None)) + centre] = mats
    else:
        w[(slice(None),) + centre] = mats.transpose(0, 2, 1)
    return w


def draw_dirac(d: Draw, groups: int) -> np.ndarray:
    out_ch, in_ch, kernel = _conv_dims(d)
    if out_ch % groups:
        raise _error(d, f"the output channels ({out_ch}) must be divisible by groups "
                        f"({groups}).")
    per_group = out_ch // groups
    mat = np.zeros((out_ch, in_ch))
    for g in range(groups):
        for i in range(min(per_group, in_ch)):
            mat[g * per_group + i, i] = 1.0
    return _place_at_centre(d, _broadcast(d, mat), tuple(k // 2 for k in kernel))


def moment_dirac(args, fan_in, fan_out, shape, layout) -> float | None:
    """One 1 per (group, passed-through channel): groups * min(out / groups, in) ones."""
    dims, groups = conv_dims(shape, layout), args["groups"]
    if dims is None or dims[0] % groups:
        return None
    return groups * min(dims[0] // groups, dims[1]) / math.prod(shape)


def draw_delta_orthogonal(d: Draw, gain: float) -> np.ndarray:
    out_ch, in_ch, kernel = _conv_dims(d)
    if in_ch > out_ch:
        raise _error(d, f"needs at least as many output channels as input channels. Got "
                        f"in={in_ch}, out={out_ch}.")
    q = _orthonormal_rows(d, in_ch, out_ch, gain)  # (n, in, out)
    return _place_at_centre(d, q.transpose(0, 2, 1), tuple((k - 1) // 2 for k in kernel))


def moment_delta_orthogonal(args, fan_in, fan_out, shape, layout) -> float | None:
    """``in`` orthonormal rows of length ``out``, scaled by gain, at one kernel position."""
    dims = conv_dims(shape, layout)
    if dims is None or dims[1] > dims[0]:
        return None
    return args["gain"] ** 2 * dims[1] / math.prod(shape)


def zero_matrix(rows: int, cols: int) -> np.ndarray:
    """The ZerO matrix (rows = out, cols = in), float64.

    rows <= cols: the partial identity I (rows x cols). rows > cols: the first ``cols`` columns
    of the first ``rows`` rows of H_p / sqrt(p), H_p the Sylvester-Hadamard matrix of order
    p = 2^ceil(log2 rows), entries H[i, j] = (-1)^popcount(i & j).
    """
    if rows <= cols:
        return np.eye(rows, cols)
    p = 1 << (rows - 1).bit_length()
    i = np.arange(rows)[:, None]
    j = np.arange(cols)[None, :]
    bits = np.vectorize(lambda v: bin(v).count("1") & 1)(i & j)
    return (1.0 - 2.0 * bits) / math.sqrt(p)


def _zero_moment(rows: int, cols: int) -> float:
    """Mean square of zero_matrix(rows, cols): rows ones (1 / cols), or +-1/sqrt(p) entries."""
    return 1.0 / cols if rows <= cols else 1.0 / (1 << (rows - 1).bit_length())


def draw_zero(d: Draw) -> np.ndarray:
    if len(d.shape) == 2:
        rows, cols = dense_dims(d.shape, d.layout)
        z = zero_matrix(rows, cols)
        return _broadcast(d, z if d.layout == "torch" else z.T)
    out_ch, in_ch, kernel = _conv_dims(d)
    return _place_at_centre(d, _broadcast(d, zero_matrix(out_ch, in_ch)),
                            tuple(k // 2 for k in kernel))


def moment_zero(args, fan_in, fan_out, shape, layout) -> float | None:
    if len(shape) == 2:
        return _zero_moment(*dense_dims(shape, layout))
    dims = conv_dims(shape, layout)
    if dims is None:
        return None
    return _zero_moment(dims[0], dims[1]) / math.prod(dims[2])   # one kernel tap of rf


def draw_custom(d: Draw, transform: Callable, **params) -> np.ndarray:
    """A user's inverse-CDF family: transform(u, fan_in, fan_out, **params), u ~ U[0, 1)."""
    u = draw_uniform(replace(d, dtype=np.dtype(np.float64), out=None), 0.0, 1.0)
    w = np.asarray(transform(u, d.fan_in, d.fan_out, **params))
    if w.shape != u.shape or w.dtype.kind not in "biuf":   # complex: its imaginary part lost
        raise _error(d, f"the custom transform returned shape {w.shape}, dtype {w.dtype}; it "
                        f"must return real numbers in the shape of its input u, {u.shape}.")
    if not np.all(np.abs(w) <= np.finfo(d.dtype).max):     # NaN, inf, or inf once cast
        raise _error(d, f"the custom transform returned NaN or infinite values, or values "
                        f"beyond {d.dtype.name}'s range (use float64).")
    return w.astype(d.dtype)


def moment_none(args, fan_in, fan_out, shape, layout) -> None:
    return None   # no closed form (a user's transform)


# -- the table -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Family:
    """A family: its arguments (as ``Param`` constraints), its draw and moment functions."""
    name: str
    args: tuple[Param, ...]
    draw: Callable[..., np.ndarray]
    moment: Callable[..., float | None] = moment_none
    uses_fans: bool = False
    random: bool = True
    extra_args: bool = False   # accepts arguments beyond ``args`` (custom families)
    description: str = ""
    check: Callable[[dict], str | None] | None = field(default=None)


def _range_check(low: str, high: str):
    def check(args):
        if not args[low] < args[high]:
            return f"{low!r} must be less than {high!r}; got {low}={args[low]!r}, " \
                   f"{high}={args[high]!r}."
        return None
    return check


def _check_truncation(args) -> str | None:
    if not args["a"] < args["b"]:
        return _range_check("a", "b")(args)
    if args["correct"] and args["bounds"] == "absolute":
        return "a variance correction needs bounds in std units (bounds='std')."
    return None


P = Param
FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("constant", (P("value"),), draw_constant, moment_constant, random=False,
           description="every entry equal to value"),
    Family("uniform", (P("low"), P("high")), draw_uniform, moment_uniform,
           check=_range_check("low", "high"), description="U[low, high]"),
    Family("normal", (P("mean"), P("std", kind="nonnegative")), draw_normal, moment_normal,
           description="N(mean, std^2), untruncated"),
    Family("truncated_normal",
           (P("mean"), P("std", kind="positive"), P("a", kind="bound"), P("b", kind="bound"),
            P("bounds", kind="choice", choices=("absolute", "std")), P("correct", kind="bool")),
           draw_truncated_normal, moment_truncated_normal, check=_check_truncation,
           description="N(mean, std^2) truncated to [a, b]"),
    Family("variance_scaling",
           (P("scale", kind="nonnegative"), P("mode", kind="choice", choices=MODES),
            P("distribution", kind="choice", choices=DISTRIBUTIONS)),
           draw_variance_scaling, moment_variance_scaling, uses_fans=True,
           description="Var[w] = scale / fan(mode)"),
    Family("orthogonal", (P("gain"),), draw_orthogonal, moment_orthogonal,
           description="gain * Haar-random orthogonal (rows or columns orthonormal)"),
    Family("identity", (P("gain"),), draw_identity, moment_identity, random=False,
           description="gain * I (rectangular: ones on the main diagonal)"),
    Family("dirac", (P("groups", kind="positive_int"),), draw_dirac, moment_dirac, random=False,
           description="conv weight that passes its input through (per group)"),
    Family("delta_orthogonal", (P("gain"),), draw_delta_orthogonal, moment_delta_orthogonal,
           description="orthogonal (in x out) at the kernel centre, zero elsewhere"),
    Family("sparse", (P("sparsity", kind="fraction"), P("std", kind="nonnegative")),
           draw_sparse, moment_sparse,
           description="N(0, std^2) with ceil(sparsity * rows) zeros per column"),
    Family("zero", (), draw_zero, moment_zero, random=False,
           description="ZerO: partial identity or Hadamard, no randomness"),
    Family("custom", (P("transform", kind="callable"),), draw_custom, moment_none,
           extra_args=True, description="transform(u, fan_in, fan_out, **params)"),
)}
