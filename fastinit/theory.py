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
from ._validate import check_choice, check_int, check_shape, check_x
from .diagnose import layer_statistics
from .families import FAMILIES
from .fans import LAYOUTS, resolve_fans
from .meanfield import Phase, chi_1, critical_sigma_w2, length_map, phase, q_star
from .network import check_net

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

    Layer l takes inputs of mean square m_l (m_0 that of x) to
    q_l = fan_in E[w_l^2] m_l + E[b_l^2], with E[w_l^2] and E[b_l^2] the mean squares of the
    member's weights and biases as they are. Then m_{l+1} = E[phi(sqrt(q_l) z)^2], z ~ N(0, 1);
    a residual layer adds its branch to the activation it skips from,
    m_{l+1} = m_skip + alpha^2 q_l; a normalized layer (norm="layer" or "batch") feeds phi
    gamma_i zhat + beta_i per unit, so q_l = mean(gamma^2 + beta^2) (to eps / Var z, 1e-5 at
    unit scale) and m_{l+1} = mean_i E[phi(beta_i + gamma_i z)^2]. Measured pre-activations
    of normalized layers are the normalized ones (fastinit.forward_layers).

    E[w^2] is the weights', not the scheme formula's (theory.second_moment): a ResMLP's
    fixup and zero variants scale or zero layers after the draw, and lsuv, kraehenbuehl or a
    user rescale them afterwards; the formula predicted those layers as drawn.
    """
    func = f"{_F}.predicted_q"
    check_net(net, func)
    x = check_x(x, net.layer_sizes[0], net.dtype, func)
    member = check_int(member, "member", func, minimum=0, maximum=net.n - 1)
    param = float(net.activation_param[member]) if net.activation in activations.PARAMETERS \
        else None
    phi = activations.resolve(net.activation, param, func=func, argname="activation")
    arch, normed = net.arch, [l for l in range(net.depth) if net.arch.goff[l] >= 0]
    ms = [float(np.mean(np.asarray(x, dtype=float) ** 2))]    # inputs' mean squares
    qs = []
    for l in range(net.depth):
        w = np.asarray(net.weights[l][member], dtype=float)
        b2 = float(np.mean(np.asarray(net.biases[l][member], dtype=float) ** 2)) if net.bias \
            else 0.0
        q = w.shape[1] * float(np.mean(w ** 2)) * ms[l] + b2
        if l in normed:
            i = normed.index(l)
            gamma, beta = (np.asarray(v[i][member], dtype=float) for v in (net.gammas, net.betas))
            q = float(np.mean(gamma ** 2 + beta ** 2))
            ms.append(_normalized_mean_square(phi, gamma, beta))
        elif l == net.depth - 1:
            pass                                        # the output layer: no phi after it
        elif arch.skip[l] >= 0:
            alpha = float(net.params[member, arch.alpha_idx[l]])
            ms.append(ms[arch.skip[l]] + alpha * alpha * q)
        else:
            ms.append(activations.gaussian_expectation(lambda z: phi(z) ** 2, math.sqrt(q)))
        qs.append(q)
    return np.array(qs)


def _normalized_mean_square(phi, gamma, beta) -> float:
    """mean_i E[phi(beta_i + gamma_i z)^2], z ~ N(0, 1): one quadrature per distinct pair."""
    pairs, counts = np.unique(np.stack([gamma, beta], axis=1), axis=0, return_counts=True)
    e = [activations.gaussian_expectation(lambda z, g=g, c=c: phi(g * z + c) ** 2)
         for g, c in pairs]
    return float(np.dot(counts, e) / counts.sum())


def compare(net, x) -> dict:
    """Predicted and measured second moments of every layer's pre-activations, per member.

    Returns {"predicted": (K, L), "measured": (K, L), "ratio": measured / predicted}; a layer
    predicted and measured zero (fixup's zeroed layers) has ratio 1, the prediction exact.
    """
    func = f"{_F}.compare"
    check_net(net, func)
    xs = check_x(x, net.layer_sizes[0], net.dtype, func)
    pred = np.stack([predicted_q(net, xs, k) for k in range(net.n)])
    meas = layer_statistics(net, xs)["pre_sq"]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where((pred == 0) & (meas == 0), 1.0, meas / pred)
    return {"predicted": pred, "measured": meas, "ratio": ratio}
