"""Fused optimizer updates over one member's flat parameter vector, PyTorch's formulas.

    p, g (P,)     parameters and gradient of one member
    s1, s2 (P,)   optimizer state (momentum buffer; Adam's first and second moments)

    sgd        p -= lr * (g + wd p)
    momentum   buf = mu buf + (g + wd p);                    p -= lr * buf
    nesterov   buf = mu buf + (g + wd p);                    p -= lr * ((g + wd p) + mu buf)
    adam       g' = g + wd p; m += (1 - b1)(g' - m); v = b2 v + (1 - b2) g'^2;
               p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
    adamw      p *= 1 - lr wd, then adam with wd = 0

Arithmetic is in the parameters' dtype, hyper-parameters rounded to it first, as in torch.optim.
The record ``Optim`` carries the optimizer code and its hyper-parameters into the training
drivers; lr, momentum and weight_decay are per member (K,), the rest shared.
"""
import math
from collections import namedtuple

import numpy as np

from ._config import jit, kernel, single

SGD, MOMENTUM, NESTEROV, ADAM, ADAMW = range(5)
Optim = namedtuple("Optim", ("code", "lr", "momentum", "beta1", "beta2", "eps",
                             "weight_decay"))


@jit
def all_finite(x):
    """Whether every value of the contiguous float array x is finite. A value's exponent bits
    are all ones (inf or NaN) exactly when adding one exponent step to them carries into the
    sign bit: an OR of those sums over x, in the words' own width (a comparison per value,
    widened to 64 bits, made the float32 check 2.7x slower), is an integer reduction that
    vectorises."""
    if single(x):
        u = x.view(np.uint32)
        acc = np.uint32(0)
        for i in range(u.shape[0]):
            acc = np.uint32(acc | np.uint32(np.uint32(u[i] & np.uint32(0x7F800000))
                                            + np.uint32(0x00800000)))
        return (acc & np.uint32(0x80000000)) == np.uint32(0)
    v = x.view(np.uint64)
    acc64 = np.uint64(0)
    for i in range(v.shape[0]):
        acc64 = np.uint64(acc64 | np.uint64(np.uint64(v[i] & np.uint64(0x7FF0000000000000))
                                            + np.uint64(0x0010000000000000)))
    return (acc64 & np.uint64(0x8000000000000000)) == np.uint64(0)


@kernel
def finite(x):
    """all_finite for Python callers (fastinit's input checks): one pass over the values, no
    temporary array of flags as np.isfinite(x).all() makes (8 MB for a million float64)."""
    return all_finite(x)


@jit
def update(code, p, g, s1, s2, lr, mu, beta1, beta2, eps, wd, step):
    """One update of p from gradient g; ``step`` counts from 1 (Adam's bias correction)."""
    n = p.shape[0]
    t = p.dtype.type
    lr_t, mu_t, wd_t = t(lr), t(mu), t(wd)
    if code == SGD:
        if wd != 0.0:
            for i in range(n):
                p[i] -= lr_t * (g[i] + wd_t * p[i])
        else:
            for i in range(n):
                p[i] -= lr_t * g[i]
    elif code == MOMENTUM or code == NESTEROV:
        nesterov = code == NESTEROV
        for i in range(n):
            gi = g[i] + wd_t * p[i] if wd != 0.0 else g[i]
            b = mu_t * s1[i] + gi
            s1[i] = b
            p[i] -= lr_t * (gi + mu_t * b if nesterov else b)
    else:
        decoupled = code == ADAMW
        if decoupled and wd != 0.0:
            keep = t(1.0 - lr * wd)
            for i in range(n):
                p[i] *= keep
        b2 = t(beta2)
        one_b1, one_b2 = t(1.0 - beta1), t(1.0 - beta2)
        step_size = t(lr / (1.0 - beta1 ** step))
        sqrt_bc2 = t(math.sqrt(1.0 - beta2 ** step))
        eps_t = t(eps)
        l2 = wd != 0.0 and not decoupled
        for i in range(n):
            gi = g[i] + wd_t * p[i] if l2 else g[i]
            m = s1[i] + one_b1 * (gi - s1[i])
            v = b2 * s2[i] + one_b2 * gi * gi
            s1[i] = m
            s2[i] = v
            p[i] -= step_size * m / (math.sqrt(v) / sqrt_bc2 + eps_t)
