"""Losses on a batch of logits, their gradient and the accuracy count.

Layout (features x batch): z and dz are flat, row c holding output c for every sample of the
batch: z[c * ldz + b], b < nb real samples (columns nb..ldz-1 are padding and are never read).
Labels y (nb,) int64 for cross-entropy; targets t in the same layout as z for MSE and BCE.

Each returns (sum over the batch of the per-sample loss, number correct) in float64 and writes
dz = d(mean loss)/dz. Conventions follow PyTorch's defaults (reduction="mean"):

    cross_entropy   l_b = logsumexp(z_b) - z_b[y_b]            dz = (softmax(z) - onehot) / nb
    mse             l_b = sum_c (z - t)^2 / C                  dz = 2 (z - t) / (nb C)
    mse_sum         l_b = sum_c (z - t)^2 / 2                  dz = (z - t) / nb
                    (the papers' 1/2 ||f(x) - y||^2: a paper's learning rate carries over)
    bce (logits)    l_b = sum_c softplus(z) - t z / C          dz = (sigmoid(z) - t) / (nb C)

Accuracy: argmax (first maximum) equal to the label; for BCE the fraction of outputs on the
right side of 0.5 (summed over samples); none for MSE.
"""
import math

import numpy as np

from ._config import jit, single
from .activations import exp_f32, sigmoid_f32, softplus_f32, softplus_f64
from .rng import log_f32

CROSS_ENTROPY, MSE, BCE, MSE_SUM = 0, 1, 2, 3
WORK = 4     # work values per (padded) sample the losses need: cross_entropy's four rows


@jit
def cross_entropy(z, ldz, nc, nb, y, dz, work):
    """Softmax cross-entropy; work holds at least WORK * ldz values. Every loop runs along the
    batch (contiguous), so it vectorises: the row maximum and the argmax (first maximum) in one
    pass over the classes, the exponentials and their sums, the log-sum-exp; only the label's
    logit is gathered one sample at a time."""
    f32 = single(z)
    t = z.dtype.type
    mx = work[:ldz]                        # per sample: the first maximum, its class (arg)
    se = work[ldz:2 * ldz]
    arg = work[2 * ldz:3 * ldz]
    lse = work[3 * ldz:4 * ldz]
    for b in range(nb):
        mx[b] = z[b]
        arg[b] = 0.0
        se[b] = 0.0
    for c in range(1, nc):
        row = z[c * ldz:c * ldz + nb]
        tc = t(c)
        for b in range(nb):
            # every value loaded first: the class is a select and a plain store (written in
            # one branch it became a masked load and store, slow on AMD: 3.1 -> 1.9 us a call)
            r, m, a = row[b], mx[b], arg[b]
            mx[b] = max(m, r)              # r if r > m else m: NaN never replaces
            arg[b] = tc if r > m else a
    for c in range(nc):
        row = z[c * ldz:c * ldz + nb]
        drow = dz[c * ldz:c * ldz + nb]
        if f32:
            for b in range(nb):
                e = exp_f32(row[b] - mx[b])
                drow[b] = e
                se[b] += e
        else:
            for b in range(nb):
                e = math.exp(row[b] - mx[b])
                drow[b] = e
                se[b] += e
    inv_nb = t(1.0) / t(nb)
    for c in range(nc):
        drow = dz[c * ldz:c * ldz + nb]
        for b in range(nb):
            drow[b] = drow[b] / se[b] * inv_nb
    if f32:
        for b in range(nb):
            lse[b] = mx[b] + log_f32(se[b])
    else:
        for b in range(nb):
            lse[b] = mx[b] + math.log(se[b])
    loss = 0.0
    correct = 0.0
    for b in range(nb):
        label = y[b]
        dz[label * ldz + b] -= inv_nb
        loss += np.float64(lse[b] - z[label * ldz + b])
        correct += 1.0 if arg[b] == label else 0.0
    return loss, correct


@jit
def mse(z, ldz, nc, nb, tgt, dz, half_sum):
    """Mean squared error over the outputs (PyTorch's MSELoss), or with ``half_sum`` half the
    sum of squares over the outputs; both averaged over the batch."""
    t = z.dtype.type
    scale = t(1.0) / t(nb) if half_sum else t(2.0) / t(nb * nc)
    loss = 0.0
    for c in range(nc):
        row = z[c * ldz:c * ldz + nb]
        trow = tgt[c * ldz:c * ldz + nb]
        drow = dz[c * ldz:c * ldz + nb]
        for b in range(nb):
            diff = row[b] - trow[b]
            drow[b] = scale * diff
    for b in range(nb):           # per-sample sums in a fixed order
        s = 0.0
        for c in range(nc):
            diff = np.float64(z[c * ldz + b] - tgt[c * ldz + b])
            s += diff * diff
        loss += 0.5 * s if half_sum else s / nc
    return loss, 0.0


@jit
def bce(z, ldz, nc, nb, tgt, dz):
    f32 = single(z)
    t = z.dtype.type
    inv = t(1.0) / t(nb * nc)
    for c in range(nc):
        row = z[c * ldz:c * ldz + nb]
        trow = tgt[c * ldz:c * ldz + nb]
        drow = dz[c * ldz:c * ldz + nb]
        if f32:
            for b in range(nb):
                drow[b] = (sigmoid_f32(row[b]) - trow[b]) * inv
        else:
            for b in range(nb):
                drow[b] = (1.0 / (1.0 + math.exp(-row[b])) - trow[b]) * inv
    loss = 0.0
    correct = 0.0
    for b in range(nb):
        s = 0.0
        right = 0.0
        for c in range(nc):
            x = z[c * ldz + b]
            tv = tgt[c * ldz + b]
            sp = softplus_f32(x) if f32 else softplus_f64(x)
            s += np.float64(sp - tv * x)
            right += 1.0 if (x > 0) == (tv > 0.5) else 0.0
        loss += s / nc
        correct += right / nc
    return loss, correct
