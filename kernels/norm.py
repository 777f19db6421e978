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
Sums are float64 in a fixed order (each row's or sample's, from the first value to the last),
with the bits of one at a time however they are interleaved: batch norm's statistics run four
rows' chains side by side (four independent chains of additions instead of one, each waiting
on its own); layer norm adds a row at a time into a float64 sum per sample (``layer_work``,
after its inverse deviations), so its loops run along the batch and vectorise. Padding
columns get dZ = 0.
"""
import math

import numpy as np

from ._config import jit

NONE, BATCH, LAYER = 0, 1, 2          # norm codes per layer
TRAIN, PROBE, EVAL = 0, 1, 2          # modes


@jit(forceinline=True)
def _rows(x, o, k, bp):
    """Offsets of rows o..o+k-1 (k = 1..4) of the (d, bp) block at x; rows past k repeat row o
    (their results are not used)."""
    a = x + o * bp
    return a, a + bp * min(1, k - 1), a + bp * min(2, k - 1), a + bp * min(3, k - 1)


@jit
def _moments(scratch, z, o, k, bp, nb):
    """(means, sums of squared deviations) of rows o..o+k-1 over the nb real samples, each
    row's sums in sample order (the same bits as one row at a time), four rows' chains
    side by side: a float64 sum is a chain of dependent additions, so one row at a time
    waited on each; four at once keep the adders busy (the forward pass of 64 rows x 32
    samples in 3.0 instead of 6.0 us)."""
    a0, a1, a2, a3 = _rows(z, o, k, bp)
    r0, r1 = scratch[a0:a0 + bp], scratch[a1:a1 + bp]
    r2, r3 = scratch[a2:a2 + bp], scratch[a3:a3 + bp]
    s0 = s1 = s2 = s3 = 0.0
    for b in range(nb):
        s0 += np.float64(r0[b])
        s1 += np.float64(r1[b])
        s2 += np.float64(r2[b])
        s3 += np.float64(r3[b])
    m0, m1, m2, m3 = s0 / nb, s1 / nb, s2 / nb, s3 / nb
    q0 = q1 = q2 = q3 = 0.0
    for b in range(nb):
        v0 = np.float64(r0[b]) - m0
        v1 = np.float64(r1[b]) - m1
        v2 = np.float64(r2[b]) - m2
        v3 = np.float64(r3[b]) - m3
        q0 += v0 * v0
        q1 += v1 * v1
        q2 += v2 * v2
        q3 += v3 * v3
    return (m0, m1, m2, m3), (q0, q1, q2, q3)


@jit
def batch_forward(p, g0, state, s0, scratch, z, zh, d, r0, r1, bp, nb, mode, momentum, eps):
    """Rows r0..r1 of a batch-normalized layer, in place (see the module docstring), four
    rows' statistics at a time (``_moments``)."""
    t = scratch.dtype.type
    for o4 in range(r0, r1, 4):
        k = min(4, r1 - o4)
        means = sqs = (0.0, 0.0, 0.0, 0.0)
        if mode != EVAL:
            means, sqs = _moments(scratch, z, o4, k, bp, nb)
        for j in range(k):
            o = o4 + j
            row = scratch[z + o * bp:z + (o + 1) * bp]
            if mode == EVAL:
                mean = np.float64(state[s0 + o])
                var = np.float64(state[s0 + d + o])
            else:
                mean, q = means[j], sqs[j]
                var = q / nb
                if mode == TRAIN:
                    unbiased = q / (nb - 1) if nb > 1 else var
                    state[s0 + o] = t((1.0 - momentum) * np.float64(state[s0 + o])
                                      + momentum * mean)
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
def _grad_sums(scratch, dn, zh, o, k, bp, nb):
    """(sum dN, sum dN Zhat) of rows o..o+k-1, in sample order, four rows side by side
    (``_moments``): layer norm's dgamma and dbeta."""
    a0, a1, a2, a3 = _rows(dn, o, k, bp)
    g0, g1, g2, g3 = (scratch[a0:a0 + bp], scratch[a1:a1 + bp], scratch[a2:a2 + bp],
                      scratch[a3:a3 + bp])
    a0, a1, a2, a3 = _rows(zh, o, k, bp)
    h0, h1, h2, h3 = (scratch[a0:a0 + bp], scratch[a1:a1 + bp], scratch[a2:a2 + bp],
                      scratch[a3:a3 + bp])
    s0 = s1 = s2 = s3 = 0.0
    t0 = t1 = t2 = t3 = 0.0
    for b in range(nb):
        s0 += np.float64(g0[b])
        t0 += np.float64(g0[b]) * np.float64(h0[b])
        s1 += np.float64(g1[b])
        t1 += np.float64(g1[b]) * np.float64(h1[b])
        s2 += np.float64(g2[b])
        t2 += np.float64(g2[b]) * np.float64(h2[b])
        s3 += np.float64(g3[b])
        t3 += np.float64(g3[b]) * np.float64(h3[b])
    return (s0, s1, s2, s3), (t0, t1, t2, t3)


@jit
def batch_backward(p, g0, g, scratch, dn, zh, d, r0, r1, bp, nb, mode):
    """Rows r0..r1: dN at scratch[dn:] becomes dZ in place; dgamma, dbeta into g. (A row at
    a time: its two sums' chains already overlap; four rows side by side, as ``_grad_sums``
    does for layer norm, measured no faster: 2.7-4.5 against 2.8-3.7 us for 64 rows x 32.)"""
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


@jit(forceinline=True)
def layer_work(zh, d, bp):
    """Offset of a layer-normalized layer's float64 work (2 bp values: a sum per sample, then a
    second) after its Zhat and inverse deviations at zh: even, so 8-byte aligned in a float32
    scratch too. ``LAYER_WORK`` scratch values hold it (dense.layout)."""
    w = zh + d * bp + bp
    return w + w % 2


LAYER_WORK = 4           # scratch values per padded sample for layer_work (and one more)


@jit
def layer_forward(p, g0, scratch, z, zh, d, bp, eps):
    """Every column of a layer-normalized (d, bp) block, in place. The sums over the units run
    a row at a time into a float64 sum per sample (layer_work): each sample's sum is still in
    unit order (the bits of one sample at a time) and the loops along the batch vectorise
    (a block of 64 x 32 in 2.7 instead of 9.2 us)."""
    t = scratch.dtype.type
    w = layer_work(zh, d, bp)
    work = scratch[w:w + LAYER_WORK * bp].view(np.float64)
    mean, inv = work[:bp], work[bp:2 * bp]
    for b in range(bp):
        mean[b] = 0.0
        inv[b] = 0.0
    for o in range(d):
        row = scratch[z + o * bp:z + (o + 1) * bp]
        for b in range(bp):
            mean[b] += np.float64(row[b])
    for b in range(bp):
        mean[b] = mean[b] / d
    for o in range(d):
        row = scratch[z + o * bp:z + (o + 1) * bp]
        for b in range(bp):
            v = np.float64(row[b]) - mean[b]
            inv[b] += v * v
    for b in range(bp):
        inv[b] = 1.0 / math.sqrt(inv[b] / d + eps)
    for o in range(d):
        row = scratch[z + o * bp:z + (o + 1) * bp]
        hat = scratch[zh + o * bp:zh + (o + 1) * bp]
        gamma, beta = p[g0 + o], p[g0 + d + o]
        for b in range(bp):
            h = t((np.float64(row[b]) - mean[b]) * inv[b])
            hat[b] = h
            row[b] = gamma * h + beta
    inv_col = scratch[zh + d * bp:zh + d * bp + bp]
    for b in range(bp):
        inv_col[b] = t(inv[b])


@jit
def layer_backward(p, g0, g, scratch, dn, zh, d, bp, nb):
    """dN at scratch[dn:] (d, bp) becomes dZ in place; dgamma, dbeta (summed over the nb real
    samples) into g: four units' sums side by side (``_grad_sums``), then the sums over the
    units a row at a time into float64 sums per sample (``layer_forward``)."""
    t = scratch.dtype.type
    for o4 in range(0, d, 4):
        k = min(4, d - o4)
        sums, hsums = _grad_sums(scratch, dn, zh, o4, k, bp, nb)
        for j in range(k):
            g[g0 + o4 + j] = t(hsums[j])
            g[g0 + d + o4 + j] = t(sums[j])
    w = layer_work(zh, d, bp)
    work = scratch[w:w + LAYER_WORK * bp].view(np.float64)
    s, sh = work[:bp], work[bp:2 * bp]
    inv = scratch[zh + d * bp:zh + d * bp + bp]
    for b in range(nb):
        s[b] = 0.0
        sh[b] = 0.0
    for o in range(d):
        grad = scratch[dn + o * bp:dn + (o + 1) * bp]
        hat = scratch[zh + o * bp:zh + (o + 1) * bp]
        gamma = np.float64(p[g0 + o])
        for b in range(nb):
            e = gamma * np.float64(grad[b])
            s[b] += e
            sh[b] += e * np.float64(hat[b])
    for o in range(d):
        grad = scratch[dn + o * bp:dn + (o + 1) * bp]
        hat = scratch[zh + o * bp:zh + (o + 1) * bp]
        gamma = np.float64(p[g0 + o])
        for b in range(nb):
            grad[b] = t(np.float64(inv[b]) * (gamma * np.float64(grad[b]) - s[b] / d
                                              - np.float64(hat[b]) * sh[b] / d))
        for b in range(nb, bp):
            grad[b] = 0.0
