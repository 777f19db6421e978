"""The layer-by-layer view of a network in float64: its forward pass and its backward pass.

One float64 pass that follows residual skips, shared by everything that looks inside a network
layer by layer: diagnostics (activation ranks, the input-output Jacobian), LSUV and
Kraehenbuehl's data-dependent init, and users:

    zs, acts = fastinit.forward_layers(net, X)    # lists over layers of (K, n, d_{l+1})
    fastinit.layerwise.layer_jacobians(net, x)     # d A_{l+1} / d A_l at one input
    fastinit.layerwise.per_sample_gradients(net, X, y, member=0)   # dW_i, db_i per sample

Layer l maps A_l (its input; A_0 = X) to Z_l = A_l W_l^T + b_l, then A_{l+1} = phi(Z_l) with
member k's activation parameter, or for a residual layer A_{l+1} = A_skip + alpha Z_l; the
output layer keeps A_L = Z_{L-1}. The compiled kernels compute the same in the network's
dtype; the tests hold each against the other.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import activations, kernels
from ._validate import as_array, check_choice, check_int, check_targets, check_x
from .network import check_net


@dataclass
class Pass:
    """A forward pass: per layer l, its input A_l, pre-activation Z_l (normalized when the
    layer has a norm: what phi sees) and output A_{l+1}, each (K, n, width), float64; for a
    normalized layer, (Zhat, 1 / sqrt(var + eps)) in ``hats``."""
    inputs: list
    pre: list
    post: list
    hats: dict


def _phi(net):
    """phi and phi' of net's activation with each member's parameter (broadcast over K)."""
    act = activations.TABLE[net.activation]
    p = None if act.default is None else net.activation_param[:, None, None]
    return (lambda z: act.fn(z, p)), (lambda z: act.derivative(z, p))


def _axis(net, l):
    """The axis a layer's norm averages over: samples (batch norm) or units (layer norm)."""
    return 1 if net.arch.norm[l] == kernels.norm.BATCH else -1


def _normalize(net, l, z, hats):
    """Layer l's Z normalized with the batch's statistics (as gradients and diagnostics see
    it; training also uses them, evaluation the running ones), gamma and beta applied."""
    axis = _axis(net, l)
    mean = z.mean(axis=axis, keepdims=True)
    inv = 1.0 / np.sqrt(z.var(axis=axis, keepdims=True) + net.arch.eps)
    hat = (z - mean) * inv
    hats[l] = (hat, inv)
    gamma, beta = (np.asarray(p, dtype=float)[:, None, :] for p in _norm_params(net, l))
    return gamma * hat + beta


def _norm_params(net, l):
    i = int(np.count_nonzero(net.arch.goff[:l] >= 0))
    return net.gammas[i], net.betas[i]


def _normalize_backward(net, l, g, hats):
    """dL/dN of a normalized layer into dL/dZ."""
    hat, inv = hats[l]
    axis = _axis(net, l)
    dh = g * np.asarray(_norm_params(net, l)[0], dtype=float)[:, None, :]
    return inv * (dh - dh.mean(axis=axis, keepdims=True)
                  - hat * (dh * hat).mean(axis=axis, keepdims=True))


def _alpha(net, l):
    return np.asarray(net.params[:, net.arch.alpha_idx[l]], dtype=float)[:, None, None]


def run_forward(net, x, layers: int | None = None) -> Pass:
    """The forward pass of every member on checked inputs x (n, d0), through the first
    ``layers`` layers (default: all)."""
    phi, _ = _phi(net)
    skip = net.arch.skip
    upto = net.depth if layers is None else layers
    a = np.broadcast_to(np.asarray(x, dtype=float), (net.n,) + np.shape(x))
    ps = Pass([], [], [], {})
    for l in range(upto):
        ps.inputs.append(a)
        z = np.matmul(a, np.asarray(net.weights[l], dtype=float).transpose(0, 2, 1))
        if net.bias:
            z = z + np.asarray(net.biases[l], dtype=float)[:, None, :]
        if net.arch.norm[l] != kernels.norm.NONE:
            z = _normalize(net, l, z, ps.hats)
        if l == net.depth - 1:
            a = z
        elif skip[l] >= 0:
            a = ps.inputs[skip[l]] + _alpha(net, l) * z
        else:
            a = phi(z)
        ps.pre.append(z)
        ps.post.append(a)
    return ps


def run_backward(net, ps: Pass, dz, per_sample: bool = False) -> tuple[list, list, np.ndarray]:
    """Back-propagate dL/dZ_{L-1} = dz (K, n, d_L) through a full pass: (dW per layer
    (K, out, in), db per layer (K, out), dL/dX (K, n, d_0)); with ``per_sample`` each sample's
    own dW (K, n, out, in) and db (K, n, out) instead of their sums. A residual layer passes its
    output gradient to the activation it adds back, and alpha times it to its own Z."""
    _, dphi = _phi(net)
    skip = net.arch.skip
    L = net.depth
    dw, db = [None] * L, [None] * L
    held: dict[int, np.ndarray] = {}        # gradients waiting at a skip path's source
    g = np.asarray(dz, dtype=float)
    for l in range(L - 1, -1, -1):
        if skip[l] >= 0:                    # g is dL/dH for H = A_skip + alpha Z
            held[skip[l]] = held.get(skip[l], 0.0) + g
            g = _alpha(net, l) * g
        if net.arch.norm[l] != kernels.norm.NONE:
            g = _normalize_backward(net, l, g, ps.hats)
        if per_sample:
            dw[l] = g[..., :, None] * ps.inputs[l][..., None, :]
            db[l] = g
        else:
            dw[l] = np.matmul(g.transpose(0, 2, 1), ps.inputs[l])
            db[l] = g.sum(axis=1)
        da = np.matmul(g, np.asarray(net.weights[l], dtype=float)) + held.pop(l, 0.0)
        if l == 0:
            return dw, db, da
        g = da if skip[l - 1] >= 0 else da * dphi(ps.pre[l - 1])
    raise AssertionError("unreachable")


def forward_layers(net, X):
    """Pre-activations and activations of every layer of every member, float64: (zs, acts),
    lists over layers of (K, n, d_{l+1}); the last activation is the output (logits). X is
    taken as the network sees it: rounded to its dtype."""
    check_net(net, "fastinit.forward_layers")
    x = check_x(X, net.layer_sizes[0], net.dtype, "fastinit.forward_layers")
    ps = run_forward(net, x)
    return ps.pre, ps.post


def _per_sample(net, func):
    if np.any(net.arch.norm == kernels.norm.BATCH):
        raise ValueError(f"{func} needs samples that do not depend on each other; batch norm "
                         f"mixes the batch into every output (use layer norm, or none).")


def _one_input(net, x, func) -> np.ndarray:
    """One input x (d0,) or (1, d0), checked, as a float64 row (1, d0)."""
    check_net(net, func)
    _per_sample(net, func)
    x = as_array(x, "x", func)
    if x.ndim != 1 and x.shape[:1] != (1,) or x.ndim > 2:
        raise ValueError(f"The 'x' parameter of {func} must be one input of shape "
                         f"({net.layer_sizes[0]},). Got shape {x.shape}.")
    return check_x(x.reshape(1, -1), net.layer_sizes[0], np.float64, func, "x")


def jacobian(net, x, func: str = "fastinit.layerwise.jacobian") -> np.ndarray:
    """d(output)/d(input) of every member at one input x (d0,): (K, d_L, d_0), by one
    backward pass of the identity through x repeated once per output."""
    x = _one_input(net, x, func)
    out = net.layer_sizes[-1]
    ps = run_forward(net, np.repeat(x, out, axis=0))
    return run_backward(net, ps, np.broadcast_to(np.eye(out), (net.n, out, out)))[2]


def layer_jacobians(net, x) -> list:
    """d A_{l+1} / d A_l of every layer of every member at one input x (d0,): a list over
    layers of (K, d_{l+1}, d_l). A hidden layer gives phi'(Z_l) W_l; the output layer W; a
    residual layer alpha W, its branch alone (the identity of its skip path joins at the
    block: ``jacobian`` gives the whole input-output map)."""
    x = _one_input(net, x, "fastinit.layerwise.layer_jacobians")
    ps = run_forward(net, x)
    _, dphi = _phi(net)
    out = []
    for l in range(net.depth):
        w = np.broadcast_to(np.asarray(net.weights[l], dtype=float),
                            (net.n,) + net.weights[l].shape[1:])
        if l == net.depth - 1:
            out.append(w.copy())
        elif net.arch.skip[l] >= 0:
            out.append(_alpha(net, l) * w)
        else:
            if l in ps.hats:            # layer norm: dN/dZ = gamma inv (I - 1/d - hat hat^T / d)
                hat, inv = (v[:, 0, :] for v in ps.hats[l])
                d = hat.shape[-1]
                gamma = np.asarray(_norm_params(net, l)[0], dtype=float)
                dn = (gamma * inv)[:, :, None] * (np.eye(d) - 1.0 / d
                                                  - hat[:, :, None] * hat[:, None, :] / d)
                w = np.matmul(dn, w)
            out.append(dphi(ps.pre[l])[:, 0, :, None] * w)
    return out


def loss_gradient(z, labels, targets, loss: str) -> np.ndarray:
    """d(loss of each sample)/dz for logits z (..., n, out), float64: cross_entropy
    softmax - onehot(labels); mse 2 (z - t) / out; mse_sum z - t; bce (sigmoid(z) - t) / out."""
    z = np.asarray(z, dtype=float)
    if loss == "cross_entropy":
        p = np.exp(z - z.max(axis=-1, keepdims=True))
        return p / p.sum(axis=-1, keepdims=True) - np.eye(z.shape[-1])[labels]
    t = np.asarray(targets, dtype=float)
    if loss == "mse":
        return 2.0 * (z - t) / z.shape[-1]
    if loss == "mse_sum":
        return z - t
    return (0.5 * (1.0 + np.tanh(0.5 * z)) - t) / z.shape[-1]


def per_sample_gradients(net, X, y, loss: str = "cross_entropy", member: int = 0):
    """Each sample's own gradient for one member, float64: (dW, db), lists over layers of
    (n, out, in) and (n, out) (db empty without bias). Their mean over the samples is
    ``net.gradients(X, y)``."""
    func = "fastinit.layerwise.per_sample_gradients"
    _per_sample(net, func)
    check_choice(loss, "loss", func, ("cross_entropy", "mse", "bce", "mse_sum"))
    k = check_int(member, "member", func, minimum=0, maximum=net.n - 1)
    one = net.member(k)
    x = check_x(X, net.layer_sizes[0], net.dtype, func).astype(np.float64)
    labels, targets = check_targets(y, len(x), net.layer_sizes[-1], loss, np.float64, func)
    ps = run_forward(one, x)
    dz = loss_gradient(ps.post[-1], labels, targets[None], loss)
    dw, db, _ = run_backward(one, ps, dz, per_sample=True)
    return [w[0] for w in dw], [b[0] for b in db] if net.bias else []
