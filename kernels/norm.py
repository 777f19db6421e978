"""Batch and layer normalization of one member's pre-activations, forward and backward.

Layout as in dense.py: a layer's Z is a (d, bp) block at scratch[z:], units in rows, samples in
columns, nb of them real. A normalized layer computes N = gamma * Zhat + beta with
Zhat = (Z - mu) / sqrt(var + eps), and phi(N) follows. N overwrites Z; Zhat is kept at
scratch[zh:] (d, bp), and 1 / sqrt(var + eps) after it at scratch[zh + d bp:] (d values for
batch norm, bp for layer norm). gamma and beta are parameters at p[g0:] and p[g0 + d:].

    batch   per unit, over the nb real samples (PyTorch BatchNorm1d): TRAIN uses the batch's
            statistics and updates the running ones in state (r <- (1 - momentum) r +
            momentum x, the variance unbiased, as PyTorch does); PROBE uses the batch's without
            updating (gradients and diagnostics); EVAL uses the running mean and variance
    layer   per sample, over the d units (PyTorch LayerNorm(d)), in every mode

Backward, with dN = dL/dN: dbeta = sum dN, dgamma = sum dN Zhat, dZhat = gamma dN and
dZ = inv_std / n (n dZhat - sum dZhat - Zhat sum dZhat Zhat), the sums over the samples (batch)
or the units (layer), n their count; at EVAL batch norm is affine: dZ = gamma inv_std dN.
Sums are float64 in a fixed order; padding columns get dZ = 0.
"""
import math

import numpy as np

from ._config import jit

NONE, BATCH, LAYER = 0, 1, 2          # norm codes per layer
TRAIN, PROBE, EVAL = 0, 1, 2          # modes


@jit
def batch_forward(p, g0, state, s0, scratch, z, zh, d, r0, r1, bp, nb, mode, momentum, eps):
    """Rows r0..r1 of a batch-normalized layer, in place (see the module docstring)."""
    t = scratch.dtype.type
    for o in range(r0, r1):
        row = scratch[z + o * bp:z + (o + 1) * bp]
        if mode == EVAL:
            mean = np.float64(state[s0 + o])
            var = np.float64(state[s0 + d + o])
        else:
            s = 0.0
            for b in range(nb):
                s += np.float64(row[b])
            mean = s / nb
            q = 0.0
            for b in range(nb):
                v = np.float64(row[b]) - mean
                q += v * v
            var = q / nb
            if mode == TRAIN:
                unbiased = q / (nb - 1) if nb > 1 else var
                state[s0 + o] = t((1.0 - momentum) * np.float64(state[s0 + o]) + momentum * mean)
                state[s0 + d + o] = t((1.0 - momentum) * np.float64(state[s0 + d + o])
                                      + momentum * unbiased)
        inv = 1.0 / math.sqrt(var + eps)
        gamma, beta = p[g0 + o], p[g0 + d + o]
        hat = scratch[zh + o * bp:zh + (o + 1) * bp]
        for b in range(bp):
            h = t((np.float64(row[b]) - mean) * inv)
            hat[b] = h
            row[b] = gamma * h + beta
        scratch[zh + d * bp + o] = t(inv)


@jit
def batch_backward(p, g0, g, scratch, dn, zh, d, r0, r1, bp, nb, mode):
    """Rows r0..r1: dN at scratch[dn:] becomes dZ in place; dgamma, dbeta into g."""
    t = scratch.dtype.type
    for o in range(r0, r1):
        grad = scratch[dn + o * bp:dn + (o + 1) * bp]
        hat = scratch[zh + o * bp:zh + (o + 1) * bp]
        inv = np.float64(scratch[zh + d * bp + o])
        gamma = np.float64(p[g0 + o])
        s = 0.0
        sh = 0.0
        for b in range(nb):
            s += np.float64(grad[b])
            sh += np.float64(grad[b]) * np.float64(hat[b])
        g[g0 + o] = t(sh)
        g[g0 + d + o] = t(s)
        if mode == EVAL:
            for b in range(nb):
                grad[b] = t(gamma * inv * np.float64(grad[b]))
        else:
            for b in range(nb):
                grad[b] = t(gamma * inv * (np.float64(grad[b]) - s / nb
                                           - np.float64(hat[b]) * sh / nb))
        for b in range(nb, bp):
            grad[b] = 0.0


@jit
def layer_forward(p, g0, scratch, z, zh, d, bp, eps):
    """Every column of a layer-normalized (d, bp) block, in place."""
    t = scratch.dtype.type
    inv_col = scratch[zh + d * bp:zh + d * bp + bp]
    for b in range(bp):
        s = 0.0
        for o in range(d):
            s += np.float64(scratch[z + o * bp + b])
        mean = s / d
        q = 0.0
        for o in range(d):
            v = np.float64(scratch[z + o * bp + b]) - mean
            q += v * v
        inv = 1.0 / math.sqrt(q / d + eps)
        for o in range(d):
            h = t((np.float64(scratch[z + o * bp + b]) - mean) * inv)
            scratch[zh + o * bp + b] = h
            scratch[z + o * bp + b] = p[g0 + o] * h + p[g0 + d + o]
        inv_col[b] = t(inv)


@jit
def layer_backward(p, g0, g, scratch, dn, zh, d, bp, nb):
    """dN at scratch[dn:] (d, bp) becomes dZ in place; dgamma, dbeta (summed over the nb real
    samples) into g."""
    t = scratch.dtype.type
    for o in range(d):
        s = 0.0
        sh = 0.0
        for b in range(nb):
            v = np.float64(scratch[dn + o * bp + b])
            s += v
            sh += v * np.float64(scratch[zh + o * bp + b])
        g[g0 + o] = t(sh)
        g[g0 + d + o] = t(s)
    for b in range(nb):
        inv = np.float64(scratch[zh + d * bp + b])
        s = 0.0
        sh = 0.0
        for o in range(d):
            dzh = np.float64(p[g0 + o]) * np.float64(scratch[dn + o * bp + b])
            s += dzh
            sh += dzh * np.float64(scratch[zh + o * bp + b])
        for o in range(d):
            dzh = np.float64(p[g0 + o]) * np.float64(scratch[dn + o * bp + b])
            scratch[dn + o * bp + b] = t(inv * (dzh - s / d
                                                - np.float64(scratch[zh + o * bp + b]) * sh / d))
    for o in range(d):
        for b in range(nb, bp):
            scratch[dn + o * bp + b] = 0.0
