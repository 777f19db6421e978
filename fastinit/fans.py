"""Fans and matrix views of a weight shape, in the PyTorch or the Keras/JAX layout.

PyTorch layout (out, in, *kernel): receptive field rf = prod(kernel); fan_in = in * rf,
fan_out = out * rf; fewer than 2 dimensions has no fans (PyTorch raises).
Keras/JAX layout (*kernel, in, out): fan_in = shape[-2] * rf, fan_out = shape[-1] * rf; a 1-D
shape has fan_in = fan_out = shape[0] and a 0-D one 1 (Keras).

JAX's variance_scaling names the axes instead (``axis_fans``): in_axis (default -2), out_axis
(-1) and batch_axis (none), each one axis or a sequence of them; rf = size / (in * out * batch),
fan_in = in * rf, fan_out = out * rf, as jax._src.nn.initializers._compute_fans.

Known conventions this reproduces, traps included: a depthwise conv's fan_out (PyTorch) or
fan_in (Keras) is overstated, a transposed conv's fans come from its swapped axes, and stride is
ignored. Pass ``fan_in=`` / ``fan_out=`` to any fastinit function to override.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ._validate import _where, check_choice, check_real, check_shape

LAYOUTS = ("torch", "keras")
MODES = ("fan_in", "fan_out", "fan_avg", "fan_geo_avg")


def compute_fans(shape, layout: str = "torch", *, func: str = "fastinit.compute_fans"
                 ) -> tuple[int, int] | None:
    """(fan_in, fan_out) of a weight of this shape, or None when the layout defines none.

    >>> compute_fans((64, 32, 3, 3))
    (288, 576)
    >>> compute_fans((3, 3, 32, 64), layout="keras")
    (288, 576)
    """
    shape = check_shape(shape, "shape", func)
    check_choice(layout, "layout", func, LAYOUTS)
    if layout == "torch":
        if len(shape) < 2:
            return None
        rf = math.prod(shape[2:])
        return shape[1] * rf, shape[0] * rf
    if len(shape) == 1:
        return shape[0], shape[0]
    rf = math.prod(shape[:-2])
    return shape[-2] * rf, shape[-1] * rf


def check_axes(value, param: str, func: str) -> int | tuple[int, ...]:
    """An axis argument as JAX takes it: an int, or a sequence (tuple) of ints."""
    is_int = lambda a: isinstance(a, numbers.Integral) and not isinstance(a, (bool, np.bool_))
    if is_int(value):
        return int(value)
    if isinstance(value, (tuple, list)) and all(is_int(a) for a in value):
        return tuple(int(a) for a in value)
    raise TypeError(f"{_where(param, func)} must be an integer or a sequence of integers (axes "
                    f"of the weight). Got {value!r} of type {type(value).__name__} instead.")


def axis_fans(shape: tuple[int, ...], in_axis, out_axis, batch_axis, *, func: str
              ) -> tuple[float, float]:
    """(fan_in, fan_out) from named axes, as JAX's variance_scaling computes them: the in
    (out, batch) size is the product of its axes; every other axis is receptive field, rf =
    size / in / out / batch; fan_in = in * rf, fan_out = out * rf. Axes (checked by
    ``check_axes``) may be negative; one naming no axis of the shape, or an axis named twice
    (JAX counts it twice, and its rf is then no product of axes), is a ValueError.

    >>> axis_fans((32, 16, 3, 3), 1, 0, (), func="f")        # OIHW
    (144.0, 288.0)
    """
    sizes, owner = {}, {}
    for param, axes in (("in_axis", in_axis), ("out_axis", out_axis),
                        ("batch_axis", batch_axis)):
        for a in (axes,) if isinstance(axes, int) else axes:
            if not -len(shape) <= a < len(shape):
                raise ValueError(f"{_where(param, func)} must name axes of the {len(shape)}-D "
                                 f"shape {shape!r}, {-len(shape)} to {len(shape) - 1}. Got "
                                 f"{axes!r} instead.")
            if a % len(shape) in owner:
                raise ValueError(f"{_where(param, func)} names axis {a % len(shape)} of the "
                                 f"shape {shape!r}, which {owner[a % len(shape)]!r} already "
                                 f"names: an axis counts once. Got {axes!r}.")
            owner[a % len(shape)] = param
        sizes[param] = shape[axes] if isinstance(axes, int) else math.prod(
            shape[a] for a in axes)
    rf = math.prod(shape) / sizes["in_axis"] / sizes["out_axis"] / sizes["batch_axis"]
    return sizes["in_axis"] * rf, sizes["out_axis"] * rf


def resolve_fans(shape, layout, fan_in, fan_out, *, func: str, scheme: str,
                 required: bool = True) -> tuple[float | None, float | None]:
    """Fans from the shape, each replaced by its explicit override when one is given.

    When the shape has no fans (PyTorch layout, 1-D) and no override fills the gap, raise if
    the scheme needs them (``required``), else return None for the missing ones.
    """
    if fan_in is not None:
        fan_in = check_real(fan_in, "fan_in", func, low=0.0, low_open=True)
    if fan_out is not None:
        fan_out = check_real(fan_out, "fan_out", func, low=0.0, low_open=True)
    if fan_in is not None and fan_out is not None:
        return fan_in, fan_out
    fans = compute_fans(shape, layout, func=func)
    if fans is None:
        if not required or fan_in is not None or fan_out is not None:
            return fan_in, fan_out
        raise ValueError(
            f"The 'shape' parameter of {func} must have at least 2 dimensions for the "
            f"fan-based scheme {scheme!r} in the {layout!r} layout (PyTorch layout: (out, in, "
            f"*kernel)). Got {tuple(shape)!r} instead. Pass fan_in= and fan_out= explicitly "
            f"(for a bias: fan_in= of its layer's weight), or layout='keras' for a 1-D weight "
            f"(fan_in = fan_out = shape[0]).")
    return (fans[0] if fan_in is None else fan_in, fans[1] if fan_out is None else fan_out)


def fan_of(mode: str, fan_in: float | None, fan_out: float | None) -> float:
    """The fan a variance-scaling mode divides by."""
    needed = {"fan_in": (fan_in,), "fan_out": (fan_out,)}.get(mode, (fan_in, fan_out))
    if any(f is None for f in needed):
        raise ValueError(f"mode {mode!r} needs " + ("fan_in and fan_out" if len(needed) == 2
                         else mode) + "; this shape has no fans, so pass them explicitly.")
    if mode == "fan_in":
        return fan_in
    if mode == "fan_out":
        return fan_out
    if mode == "fan_avg":
        return 0.5 * (fan_in + fan_out)
    return math.sqrt(fan_in * fan_out)


def matrix_dims(shape: tuple[int, ...], layout: str) -> tuple[int, int]:
    """(rows, cols) of the 2-D view: PyTorch (shape[0], rest); Keras (all but last, last)."""
    size = math.prod(shape)
    if layout == "torch":
        return shape[0], size // shape[0]
    return size // shape[-1], shape[-1]


def dense_dims(shape: tuple[int, ...], layout: str) -> tuple[int, int]:
    """(out, in) of a 2-D dense weight in either layout."""
    return shape if layout == "torch" else shape[::-1]


def conv_dims(shape: tuple[int, ...], layout: str):
    """(out, in, kernel) of a 3- to 5-D conv weight in either layout; None for other shapes."""
    if not 3 <= len(shape) <= 5:
        return None
    if layout == "torch":
        return shape[0], shape[1], shape[2:]
    return shape[-1], shape[-2], shape[:-2]
