"""Data-dependent initialisation: LSUV and Kraehenbuehl et al.'s within/between-layer scaling.

Both start from a network already drawn (any scheme; LSUV re-draws orthonormal weights by
default), look at one batch of data, and rescale each member's layers in place, one layer after
another, in float64 (written back in the network's dtype). Members are independent: member k
gets the same result alone or in a population.

    fastinit.lsuv(net, X)                      # Mishkin & Matas, ICLR 2016
    fastinit.kraehenbuehl(net, X)              # Kraehenbuehl, Doersch, Donahue & Darrell 2016
"""
from __future__ import annotations

import warnings

import numpy as np

from . import registry, streams
from ._validate import check_bool, check_choice, check_int, check_real, check_seed, \
    check_x
from .layerwise import run_backward, run_forward
from .network import MLP, check_net
from .sample import draw


def _batch(net, X, func) -> np.ndarray:
    """X as the network sees it (rounded to its dtype), in float64."""
    x = check_x(X, net.layer_sizes[0], net.dtype, func).astype(np.float64)
    if len(x) < 2:
        raise ValueError(f"The 'X' parameter of {func} needs at least 2 samples to measure a "
                         f"variance. Got {len(x)}.")
    if (x == x[0]).all():       # a unit's spread would be the matmul's rounding: weights 1e16
        raise ValueError(f"The 'X' parameter of {func} needs at least 2 distinct samples to "
                         f"measure a variance. Got {len(x)} identical ones.")
    return x


def _layer_input(net, x, l):
    """Layer l's input for every member, float64 (K, n, d_l), through the real forward pass
    (residual skips included) with the weights as they are now."""
    return run_forward(net, x, l + 1).inputs[l]


def lsuv(net: MLP, X, *, tol: float = 0.1, max_iter: int = 10, min_iter: int = 0,
         center_bias: bool = False, orthonormal: bool = True, layers: str = "all") -> dict:
    """Layer-sequential unit-variance init (Mishkin & Matas, "All you need is a good init").

    Start from orthonormal weights (``orthonormal=True``: each member's weights re-drawn with
    the ``orthogonal`` scheme from its own streams, biases zero), then, layer by layer on the
    batch X: while |Var(Z_l) - 1| >= tol and fewer than max_iter tries, W_l /= sqrt(Var(Z_l)),
    Z_l the layer's pre-activations; ``min_iter=1`` rescales at least once (the paper's
    do-while reading), whatever the first variance. ``center_bias`` also sets each unit's bias so its
    pre-activation has mean 0 on the batch. ``layers="hidden"`` leaves the output layer alone.
    Returns {"variance": (K, L) final variances, "iterations": (K, L)}.
    """
    func = "fastinit.lsuv"
    check_net(net, func)
    tol = check_real(tol, "tol", func, low=0.0, low_open=True)
    max_iter = check_int(max_iter, "max_iter", func, minimum=1)
    min_iter = check_int(min_iter, "min_iter", func, minimum=0, maximum=max_iter)
    center_bias = check_bool(center_bias, "center_bias", func)
    orthonormal = check_bool(orthonormal, "orthonormal", func)
    check_choice(layers, "layers", func, ("all", "hidden"))
    if center_bias and not net.bias:
        raise ValueError(f"The 'center_bias' parameter of {func} needs a network with biases; "
                         f"this one was built with bias=False.")
    x = _batch(net, X, func)
    if orthonormal:
        scheme, unit = registry.resolve("orthogonal", {}, func)
        for l in range(net.depth):
            shape = (net.layer_sizes[l + 1], net.layer_sizes[l])
            net.weights[l][...] = draw(scheme, unit, shape, dtype=net.dtype, layout="torch",
                                       key=net.keys, members=net.members,
                                       tag=streams.layer_tag(l, streams.WEIGHT), func=func)
            if net.bias:
                net.biases[l][...] = 0
    L = net.depth if layers == "all" else net.depth - 1
    variance = np.full((net.n, net.depth), np.nan)
    iterations = np.zeros((net.n, net.depth), dtype=np.int64)
    for l in range(L):
        a = _layer_input(net, x, l)
        w = np.asarray(net.weights[l], dtype=float).copy()
        b = np.asarray(net.biases[l], dtype=float).copy() if net.bias else \
            np.zeros((net.n, net.layer_sizes[l + 1]))
        if center_bias:
            z = np.matmul(a, w.transpose(0, 2, 1))
            b = -z.mean(axis=1)
        for k in range(net.n):
            for it in range(max_iter + 1):
                z = a[k] @ w[k].T + b[k]
                var = float(z.var())
                if (abs(var - 1.0) < tol and it >= min_iter) or it == max_iter or var == 0 \
                        or not np.isfinite(var):
                    break
                scale = 1.0 / np.sqrt(var)
                w[k] *= scale
                if center_bias:
                    b[k] *= scale
                iterations[k, l] += 1
            variance[k, l] = var
        net.weights[l][...] = w
        if net.bias:
            net.biases[l][...] = b
    return {"variance": variance, "iterations": iterations}


def _listed(given: dict) -> tuple[str, bool]:
    """("'alpha' (got 0.5) and 'seed' (got 3)", True): the settings a user gave, and whether
    they are several."""
    named = [f"'{p}' (got {v!r})" for p, v in given.items()]
    return (named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1],
            len(named) > 1)


def _refuse_unused(given: dict, skips: str, remedy: str, func: str) -> None:
    """ValueError if the between-layer settings ``given`` ({name: value}) are moot: the call
    itself skips that step (``skips``, e.g. 'between_layers=False skips')."""
    if given:
        names, several = _listed(given)
        raise ValueError(f"The {names} parameter{'s' * several} of {func} "
                         f"steer{'s' * (not several)} only the between-layer step, which "
                         f"{skips}; drop {'them' if several else 'it'} or {remedy}.")


def kraehenbuehl(net: MLP, X, *, beta: float = 0.0, between_layers: bool = True,
                 iterations: int | None = None, alpha: float | None = None,
                 seed: int | None = None) -> dict:
    """Data-dependent init of Kraehenbuehl et al. (ICLR 2016), for dense and residual networks.

    Within each layer, on the batch X: every unit's pre-activation gets mean ``beta`` and unit
    variance (W_i /= sigma_i, b_i = beta - mu_i / sigma_i; without biases only the scale),
    layer after layer. Then, with
    ``between_layers``, the layers' rates of change are equalised: with random top gradients
    (standard normal, from Philox streams of ``seed``, the same for every member)
    back-propagated through the network (residual skips included), r_l =
    E||dL/dW_l||^2 / ||W_l||^2; every layer is scaled by (r_l / geometric mean of r)^(alpha / 2),
    ``iterations`` times. A layer without gradient (behind a zero residual branch) or without
    weight (all zero) keeps its scale; the others are equalised among themselves. Returns
    {"pre_mean", "pre_std" (K, L) after the within-layer step, "ratios" (K, L) of the last
    between-layer iteration}. ``iterations`` (default 10), ``alpha`` (default 0.25) and
    ``seed`` (default 0) steer only the between-layer step: given with
    ``between_layers=False`` they are refused (ValueError), not silently ignored, and so are
    ``alpha`` and ``seed`` given with ``iterations=0``. A one-layer network has no pair of
    layers to equalise: the between-layer step does nothing there, and a warning says so when
    any of the three is given (the call suits deeper networks, so it is not refused).
    """
    func = "fastinit.kraehenbuehl"
    check_net(net, func)
    beta = check_real(beta, "beta", func)
    if beta != 0 and not net.bias:              # the mean is set through the biases
        raise ValueError(f"The 'beta' parameter of {func} needs a network with biases; this "
                         f"one was built with bias=False. Got beta={beta!r}.")
    between_layers = check_bool(between_layers, "between_layers", func)
    stated = {p: v for p, v in {"iterations": iterations, "alpha": alpha, "seed": seed}.items()
              if v is not None}                 # None: not given
    iterations = 10 if iterations is None else check_int(iterations, "iterations", func,
                                                         minimum=0)
    alpha = 0.25 if alpha is None else check_real(alpha, "alpha", func, low=0.0, low_open=True)
    seed = 0 if seed is None else check_seed(seed, "seed", func)
    if not between_layers:
        _refuse_unused(stated, "between_layers=False skips", "set between_layers=True", func)
    elif iterations == 0:
        _refuse_unused({p: v for p, v in stated.items() if p != "iterations"},
                       "iterations=0 skips", "set iterations to 1 or more", func)
    elif net.depth == 1 and stated:
        names, several = _listed(stated)
        warnings.warn(f"{func}: the network has one layer, so the between-layer step has no "
                      f"pair of layers to equalise and {names} {'were' if several else 'was'} "
                      f"not used; drop {'them' if several else 'it'} for a one-layer network.",
                      stacklevel=2)
    x = _batch(net, X, func)
    K, L = net.n, net.depth
    pre_mean = np.zeros((K, L))
    pre_std = np.zeros((K, L))
    for l in range(L):
        a = _layer_input(net, x, l)
        w = np.asarray(net.weights[l], dtype=float)
        z = np.matmul(a, w.transpose(0, 2, 1))
        mu, sd = z.mean(axis=1), z.std(axis=1)
        sd = np.where(sd > 0, sd, 1.0)            # a dead unit (all equal) keeps its scale
        net.weights[l][...] = w / sd[:, :, None]
        z = np.matmul(a, np.asarray(net.weights[l], dtype=float).transpose(0, 2, 1))
        if net.bias:
            net.biases[l][...] = beta - mu / sd
            z = z + np.asarray(net.biases[l], dtype=float)[:, None, :]
        pre_mean[:, l] = z.mean(axis=(1, 2))
        pre_std[:, l] = z.std(axis=(1, 2))
    ratios = np.full((K, L), np.nan)
    if between_layers and L > 1:
        normal, standard = registry.resolve("normal", {}, func)
        for i in range(iterations):
            top = draw(normal, standard, (len(x), net.layer_sizes[-1]),
                       dtype=np.float64, layout="torch", key=np.array([seed], np.uint64),
                       members=np.zeros(1, np.int64), tag=streams.KRAEHENBUEHL + i,
                       func=func)     # the same top gradients for every member
            dw, _, _ = run_backward(net, run_forward(net, x), top / len(x))
            norms = np.stack([np.sum(np.asarray(w, dtype=float) ** 2, axis=(1, 2))
                              for w in net.weights], axis=1)                  # (K, L)
            r = np.stack([np.sum(g * g, axis=(1, 2)) for g in dw], axis=1) / np.maximum(
                norms, 1e-300)
            ratios[...] = r
            live = (r > 0) & np.isfinite(r) & (norms > 0)      # a gradient and a weight
            for k in np.flatnonzero(live.sum(axis=1) > 1):
                mean = np.exp(np.mean(np.log(r[k, live[k]])))
                for l in np.flatnonzero(live[k]):
                    s = (r[k, l] / mean) ** (alpha / 2)
                    net.weights[l][k] *= s
                    if net.bias:
                        net.biases[l][k] *= s
    return {"pre_mean": pre_mean, "pre_std": pre_std, "ratios": ratios}
