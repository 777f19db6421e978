"""Mean-field predictions for networks at initialisation: E[w^2] of a scheme, the second moment
of every layer's pre-activations, and how a network's measured moments compare.

The maps themselves (length map, q*, chi_1, the edge of chaos, phases and depth scales) live in
meanfield.py and are re-exported here, so ``fastinit.theory.q_star`` etc. are the public names.
A layer with fan_in inputs, weights of second moment E[w^2] and biases of E[b^2] maps the second
moment of its input activations m to q = fan_in E[w^2] m + E[b^2] (Poole et al. 2016).
"""
from __future__ import annotations

import math

import numpy as np

from . import activations, registry
from ._validate import check_choice, check_shape, check_x
from .diagnose import layer_statistics
from .families import FAMILIES
from .fans import LAYOUTS, resolve_fans
from .meanfield import Phase, chi_1, critical_sigma_w2, length_map, phase, q_star

__all__ = ["Phase", "chi_1", "compare", "critical_sigma_w2", "length_map", "phase",
           "predicted_q", "q_star", "second_moment"]

_F = "fastinit.theory"


def second_moment(scheme, shape, layout: str = "torch", *, fan_in=None, fan_out=None,
                  **params) -> float | None:
    """E[w^2] of a weight of ``shape`` drawn with ``scheme``, from its family's closed form
    (families.py); None when the family has none for this shape. ``fan_in`` / ``fan_out``
    override the shape's fans as in fastinit.sample (a bias: its weight's fan_in).

    >>> second_moment("he_normal", (64, 100))
    0.02
    """
    func = f"{_F}.second_moment"
    s, p = registry.resolve(scheme, params, func)
    shape = check_shape(shape, "shape", func)
    check_choice(layout, "layout", func, LAYOUTS)
    fi, fo = resolve_fans(shape, layout, fan_in, fan_out, func=func, scheme=s.name,
                          required=s.needs_fans)
    args = s.family_args(p, fi, fo, func)
    return FAMILIES[s.family].moment(args, fi, fo, tuple(shape), layout)


def predicted_q(net, x, member: int = 0) -> np.ndarray:
    """Mean-field second moment of each layer's pre-activations for one member, (L,).

    q_1 = fan_in E[w^2] m_x + E[b^2] with m_x the inputs' mean square; then
    q_{l+1} = fan_in E[w_l^2] E[phi(sqrt(q_l) z)^2] + E[b_l^2]. E[w^2] comes from the member's
    scheme formula (its measured value when the scheme has none), E[b^2] from the biases drawn.
    """
    func = f"{_F}.predicted_q"
    x = check_x(x, net.layer_sizes[0], net.dtype, func)
    param = float(net.activation_param[member]) if net.activation in activations.PARAMETERS \
        else None
    phi = activations.resolve(net.activation, param, func=func, argname="activation")
    spec = net.init[member]
    qs = []
    q = float(np.mean(np.asarray(x, dtype=float) ** 2))
    for l in range(net.depth):
        shape = (net.layer_sizes[l + 1], net.layer_sizes[l])
        w2 = second_moment(spec, shape)
        if w2 is None:
            w2 = float(np.mean(np.asarray(net.weights[l][member], dtype=float) ** 2))
        b2 = float(np.mean(np.asarray(net.biases[l][member], dtype=float) ** 2)) if net.bias \
            else 0.0
        inp = q if l == 0 else activations.gaussian_expectation(lambda z: phi(z) ** 2,
                                                                math.sqrt(q))
        q = shape[1] * w2 * inp + b2
        qs.append(q)
    return np.array(qs)


def compare(net, x) -> dict:
    """Predicted and measured second moments of every layer's pre-activations, per member.

    Returns {"predicted": (K, L), "measured": (K, L), "ratio": measured / predicted}.
    """
    func = f"{_F}.compare"
    xs = check_x(x, net.layer_sizes[0], net.dtype, func)
    pred = np.stack([predicted_q(net, xs, k) for k in range(net.n)])
    meas = layer_statistics(net, xs)["pre_sq"]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = meas / pred
    return {"predicted": pred, "measured": meas, "ratio": ratio}
