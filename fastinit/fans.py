"""Fans and matrix views of a weight shape, in the PyTorch or the Keras/JAX layout.

PyTorch layout (out, in, *kernel): receptive field rf = prod(kernel); fan_in = in * rf,
fan_out = out * rf; fewer than 2 dimensions has no fans (PyTorch raises).
Keras/JAX layout (*kernel, in, out): fan_in = shape[-2] * rf, fan_out = shape[-1] * rf; a 1-D
shape has fan_in = fan_out = shape[0] and a 0-D one 1 (Keras).

Known conventions this reproduces, traps included: a depthwise conv's fan_out (PyTorch) or
fan_in (Keras) is overstated, a transposed conv's fans come from its swapped axes, and stride is
ignored. Pass ``fan_in=`` / ``fan_out=`` to any fastinit function to override.
"""
from __future__ import annotations

import math

from ._validate import check_choice, check_real, check_shape

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
