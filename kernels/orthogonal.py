"""Haar orthogonal matrices for a population: Stewart's product of Householder reflectors.

Shapes: out (N, P, Q), P <= Q, rows orthonormal; key, stream (N,) uint64 as in sampling.py;
gain (N,) float64. orthogonal_fill takes ``lo, hi`` first: tasks lo..hi-1, each a run of one
member's rows (fastinit.spread.orthonormal_rows picks the runs), so the result is the same on
any number of threads and however the rows are cut. A member's reflectors are drawn from the
float64 normals of its stream (sampling._normals), by each run or once for all of its runs
(orthogonal_reflectors, on normal_fill's normals: the same values).
"""
import math

import numpy as np
from ._config import jit, kernel
from .gemm import LANES, gemm
from .sampling import INT0, _normals

ORTHO_BLOCK = 16   # Householder reflectors applied together (compact WY)


@jit(inline="always")   # its callers compile it in place (no finalize of its own)
def _reflectors(g, beta, sign, offsets, Q, kend):
    """Householder reflectors 0..kend-1 of a Haar (P, Q) from its normals g (drawn: reflector k
    is the next Q - k of them, at offsets[k]): v[0] made x_0 + sign(x_0) |x| in place, beta[k]
    = 2 / v.v, sign[k] the sign correction."""
    off = 0
    for k in range(kend):
        length = Q - k
        offsets[k] = off
        v = g[off:off + length]
        s0 = 1.0 if v[0] >= 0.0 else -1.0
        if length == 1:
            sign[k] = s0          # no reflection: R_kk = x_0
        else:
            v[0] += s0 * math.sqrt(_dot_fixed(v, v))   # v = x + sign(x_0) |x| e_0
            beta[k] = 2.0 / _dot_fixed(v, v)
            sign[k] = -s0         # H x = -sign(x_0) |x| e_0
        off += length


@jit(inline="always")   # its callers compile it in place (no finalize of its own)
def _orthogonal_member(out_m, key, stream, gain, run, runs, gs, betas, signs):
    """Columns of run ``run`` of ``runs`` of one Haar orthogonal (P, Q), P <= Q, rows
    orthonormal, into out_m (its rows: Y's columns); see orthogonal_fill. ``gs``, ``betas``,
    ``signs``: the member's reflectors, prepared (orthogonal_reflectors), or empty: this run
    draws and prepares those it needs."""
    P, Q = out_m.shape
    pp = ((P + LANES - 1) // LANES) * LANES        # Y's columns, padded to whole tiles
    tiles = pp // LANES
    ca = (tiles * run // runs) * LANES             # this run's columns of Y: ca..cb-1
    cb = (tiles * (run + 1) // runs) * LANES
    if ca >= cb:
        return
    nb = ORTHO_BLOCK
    kend = min(P, ((cb + nb - 1) // nb) * nb)      # blocks k0 < cb reach these columns
    offsets = np.empty(P, dtype=np.int64)
    if gs.shape[0] == 0:
        g = np.empty(kend * Q - kend * (kend - 1) // 2, dtype=np.float64)
        _normals(g, INT0, stream, key, 0.0, 1.0)   # a prefix of every run's normals
        beta = np.zeros(P, dtype=np.float64)
        sign = np.empty(P, dtype=np.float64)
        _reflectors(g, beta, sign, offsets, Q, kend)
    else:
        g, beta, sign = gs, betas, signs
        off = 0
        for k in range(kend):
            offsets[k] = off
            off += Q - k
    width = cb - ca                                # Y's row stride here, a multiple of LANES
    y = np.zeros(Q * width, dtype=np.float64)
    for j in range(ca, min(cb, P)):
        y[j * width + j - ca] = 1.0
    vt = np.zeros(nb * Q, dtype=np.float64)         # V^T of a block: row j = reflector k0 + j
    t = np.zeros((nb, nb), dtype=np.float64)
    w = np.zeros(nb * width, dtype=np.float64)
    dots = np.zeros(nb, dtype=np.float64)
    for k0 in range(((kend - 1) // nb) * nb, -1, -nb):
        kb = min(nb, P - k0)
        rows = Q - k0                                # the block acts on rows k0..Q-1
        for j in range(kb):                          # V^T, rows aligned at row k0
            vj = vt[j * Q:j * Q + rows]
            vj[:] = 0.0
            src = g[offsets[k0 + j]:offsets[k0 + j] + Q - k0 - j]
            for i in range(Q - k0 - j):
                vj[j + i] = src[i]
        for j in range(kb):                          # T: H_k0 ... H_k0+kb-1 = I - V T V^T
            vj = vt[j * Q:j * Q + rows]
            for i in range(j):
                vi = vt[i * Q:i * Q + rows]
                dots[i] = _dot_fixed(vi[j:], vj[j:])
            for i in range(j):
                acc = 0.0
                for r in range(i, j):
                    acc += t[i, r] * dots[r]
                t[i, j] = -beta[k0 + j] * acc
            t[j, j] = beta[k0 + j]
        c0 = max(ca, (k0 // LANES) * LANES)          # columns < k0 are zero below row k0
        ncol = cb - c0
        # W = V^T Y[k0:, c0:cb]   (kb, ncol)
        gemm(w, 0, ncol, vt, 0, Q, 1, y, k0 * width + c0 - ca, width, kb, ncol, rows, 0)
        # W <- -T W, row by row from the top (T upper triangular)
        for i in range(kb):
            wi = w[i * ncol:(i + 1) * ncol]
            tii = t[i, i]
            for c in range(ncol):
                wi[c] *= tii
            for r in range(i + 1, kb):
                tir = t[i, r]
                wr = w[r * ncol:(r + 1) * ncol]
                for c in range(ncol):
                    wi[c] += tir * wr[c]
            for c in range(ncol):
                wi[c] = -wi[c]
        # Y[k0:, c0:cb] += V W
        gemm(y, k0 * width + c0 - ca, width, vt, 0, 1, Q, w, 0, ncol, rows, ncol, kb, 1)
    for j in range(ca, min(cb, P)):
        d = gain * sign[j]
        for i in range(Q):
            out_m[j, i] = d * y[i * width + j - ca]


@jit(forceinline=True)
def _dot_fixed(x, y):
    """Dot product in a fixed order on every machine (8 partial sums, then a fixed tree)."""
    n = x.shape[0]
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    i = 0
    while i + 8 <= n:
        s0 += x[i] * y[i]
        s1 += x[i + 1] * y[i + 1]
        s2 += x[i + 2] * y[i + 2]
        s3 += x[i + 3] * y[i + 3]
        s4 += x[i + 4] * y[i + 4]
        s5 += x[i + 5] * y[i + 5]
        s6 += x[i + 6] * y[i + 6]
        s7 += x[i + 7] * y[i + 7]
        i += 8
    while i < n:
        s0 += x[i] * y[i]
        i += 1
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


@kernel
def orthogonal_fill(lo, hi, out, key, stream, gain, runs, g, beta, sign):
    """out[m] <- gain[m] * Q, Q (P, Q) with orthonormal rows, P <= Q, Haar distributed; tasks
    lo..hi-1, task t a run of member t // runs's rows of Q (Y's columns, below: runs of whole
    LANES tiles, run runs - 1 - t % runs, the costliest first), so one big matrix can fill
    every thread. g (N, P Q - P (P - 1) / 2), beta and sign (N, P): the members' reflectors
    prepared by orthogonal_reflectors, shared by their runs; or (0, 0) each: every run draws
    and prepares the reflectors it needs (one run a member: no work twice).

    Stewart's method (SIAM J. Numer. Anal. 17, 1980): the Householder QR of a Gaussian (Q, P)
    matrix meets, at step k, a column distributed as a fresh Gaussian vector of length Q - k, so
    the reflectors are built from fresh Gaussian vectors (normals 0.. of the float64 stream, one
    after another) and only their product is formed: Y = H_0 ... H_{P-1} [I; 0] D, where
    D = diag(sign(R_kk)) is the sign correction that makes Y Haar distributed. (4/3) n^3 flops
    for a square n x n, no factorisation, backward stable, in float64 whatever the output dtype.
    Reflectors are applied ORTHO_BLOCK at a time as I - V T V^T (compact WY, LAPACK's dlarft),
    so the work is two matrix products per block on the register-blocked GEMM; every sum has a
    fixed order, so the result does not depend on the machine or the thread count. A column of
    Y never depends on another: a run of columns computes its own W and Y from the reflectors
    that reach it (those of blocks k0 < its last column, so a run of low columns needs fewer),
    each value the same fma chain as in one run.
    """
    shared = g.shape[0] > 0
    none = np.empty(0, dtype=np.float64)
    for t in range(lo, hi):
        m = t // runs
        _orthogonal_member(out[m], key[m], stream[m], gain[m], runs - 1 - (t - m * runs), runs,
                           g[m] if shared else none, beta[m] if shared else none,
                           sign[m] if shared else none)
    return out


@kernel
def orthogonal_reflectors(lo, hi, g, beta, sign, Q):
    """Members lo..hi-1: the Householder reflectors of a Haar (P, Q), P = beta.shape[1],
    prepared in place from their normals g[m] (normal_fill's float64 standard normals of the
    member's stream), with beta and sign: what orthogonal_fill's runs of a member share
    instead of each drawing them again."""
    offsets = np.empty(beta.shape[1], dtype=np.int64)
    for m in range(lo, hi):
        _reflectors(g[m], beta[m], sign[m], offsets, Q, beta.shape[1])
    return g
