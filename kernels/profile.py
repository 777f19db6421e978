"""Replays of one training epoch's parts, each alone, for the benchmark suite's profile.

Each runs ``reps`` times the work one part of an epoch does (the GEMM micro-kernels forward,
dW and dX; the transposes; the elementwise passes; the loss; the optimizer) on the epoch's
shapes, so fastinit.benchsuite.profile can time it next to the real epoch. Shapes as in
dense.py: dims (L+1,), ld (L,), bp the padded batch, nb the real batch.
"""
from ._config import jit
from . import activations, dense, gemm, losses, optim


@jit
def gemms(reps, dims, ld, bp, nb, w, a, z, g, xt):
    L = dims.shape[0] - 1
    for _ in range(reps):
        for l in range(L):
            gemm.gemm(z, 0, bp, w, 0, ld[l], 1, a, 0, bp, dims[l + 1], bp, dims[l], 0)
        for l in range(L - 1, -1, -1):
            gemm.gemm(g, 0, ld[l], z, 0, bp, 1, xt, 0, ld[l], dims[l + 1], ld[l], nb, 0)
            if l > 0:
                gemm.gemm(a, 0, bp, w, 0, 1, ld[l], z, 0, bp, dims[l], bp, dims[l + 1], 0)


@jit
def transposes(reps, dims, ld, bp, nb, s, x, rows):
    L = dims.shape[0] - 1
    for _ in range(reps):
        dense.gather(x, rows, nb, s, 0, s.shape[0] // 2, ld[0], bp)
        for l in range(1, L):
            dense.transpose_acts(s, 0, s.shape[0] // 2, dims[l], ld[l], bp, nb)


@jit
def elementwise(reps, dims, bp, nb, code, z, a, d, bias):
    L = dims.shape[0] - 1
    for _ in range(reps):
        for l in range(L):
            n = dims[l + 1] * bp
            for o in range(dims[l + 1]):
                row = z[o * bp:(o + 1) * bp]
                for b in range(bp):
                    row[b] += bias[o]
            if l + 1 < L:
                activations.forward(code, 0.0, z[:n], a[:n])
                activations.backward(code, 0.0, z[:n], a[:n], d[:n])
            for o in range(dims[l + 1]):
                bias[o] = dense.row_sum(d[o * bp:o * bp + nb])


@jit
def loss(reps, dl, bp, nb, z, y, d, work):
    for _ in range(reps):
        losses.cross_entropy(z, bp, dl, nb, y, d, work)


@jit
def optimizer(reps, p, g):
    for _ in range(reps):
        optim.update(0, p, g, p[:0], p[:0], 0.01, 0.9, 0.9, 0.999, 1e-8, 0.0, 1)
