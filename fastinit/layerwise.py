"""The layer-by-layer view of a network in float64: its forward pass and its backward pass.

One float64 pass that follows residual skips, shared by everything that looks inside a network
layer by layer: diagnostics (activation ranks, the input-output Jacobian), LSUV and
Kraehenbuehl's data-dependent init, and users:

    zs, acts = fastinit.forward_layers(net, X)    # lists over layers of (K, n, d_{l+1})

Layer l maps A_l (its input; A_0 = X) to Z_l = A_l W_l^T + b_l, then A_{l+1} = phi(Z_l) with
member k's activation parameter, or for a residual layer A_{l+1} = A_skip + alpha Z_l; the
output layer keeps A_L = Z_{L-1}. The compiled kernels compute the same in the network's
dtype; the tests hold each against the other.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import activations
from ._validate import check_x


@dataclass
class Pass:
    """A forward pass: per layer l, its input A_l, pre-activation Z_l and output A_{l+1},
    each (K, n, width), float64."""
    inputs: list
    pre: list
    post: list


def _phi(net):
    """phi and phi' of net's activation with each member's parameter (broadcast over K)."""
    act = activations.TABLE[net.activation]
    p = None if act.default is None else net.activation_param[:, None, None]
    return (lambda z: act.fn(z, p)), (lambda z: act.derivative(z, p))


def _alpha(net, l):
    return np.asarray(net.params[:, net.arch.alpha_idx[l]], dtype=float)[:, None, None]


def run_forward(net, x, layers: int | None = None) -> Pass:
    """The forward pass of every member on checked inputs x (n, d0), through the first
    ``layers`` layers (default: all)."""
    phi, _ = _phi(net)
    skip = net.arch.skip
    upto = net.depth if layers is None else layers
    a = np.broadcast_to(np.asarray(x, dtype=float), (net.n,) + np.shape(x))
    ps = Pass([], [], [])
    for l in range(upto):
        ps.inputs.append(a)
        z = np.matmul(a, np.asarray(net.weights[l], dtype=float).transpose(0, 2, 1)) \
            + np.asarray(net.biases[l], dtype=float)[:, None, :]
        if l == net.depth - 1:
            a = z
        elif skip[l] >= 0:
            a = ps.inputs[skip[l]] + _alpha(net, l) * z
        else:
            a = phi(z)
        ps.pre.append(z)
        ps.post.append(a)
    return ps


def run_backward(net, ps: Pass, dz) -> tuple[list, list, np.ndarray]:
    """Back-propagate dL/dZ_{L-1} = dz (K, n, d_L) through a full pass: (dW per layer
    (K, out, in), db per layer (K, out), dL/dX (K, n, d_0)). A residual layer passes its output
    gradient to the activation it adds back, and alpha times it to its own Z."""
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
    x = check_x(X, net.layer_sizes[0], net.dtype, "fastinit.forward_layers")
    ps = run_forward(net, x)
    return ps.pre, ps.post


def jacobian(net, x) -> np.ndarray:
    """d(output)/d(input) of every member at one input x (d0,): (K, d_L, d_0), by one
    backward pass of the identity through x repeated once per output."""
    x = check_x(np.asarray(x, dtype=float).reshape(1, -1), net.layer_sizes[0], np.float64,
                "fastinit.jacobian")
    out = net.layer_sizes[-1]
    ps = run_forward(net, np.repeat(x, out, axis=0))
    return run_backward(net, ps, np.broadcast_to(np.eye(out), (net.n, out, out)))[2]
