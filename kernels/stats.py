"""Diagnostic statistics for a population: per-layer moments, dead units, unit symmetry.

Shapes: params (K, P) as in train.py; x (n, d0) a probe batch (one batch of n samples).
    layer_moments -> out (K, L, 6): mean, variance, mean square of the pre-activations Z_l,
                     mean and variance of the activations (the output layer's are Z_L), and
                     the fraction of units whose derivative is 0 on every sample (NaN for the
                     output layer), over all samples and units of the layer, in float64.
    unit_symmetry -> out (K, L, 2): distinct units (rows of [W_l | b_l] equal within tol count
                     once) and the largest cosine similarity between two units' rows.
layer_moments takes ``lo, hi`` first: members lo..hi-1, unit_symmetry (member, layer) tasks
lo..hi-1 (fastinit.spread: each thread runs such runs of them on its own). Sums run in a
fixed order (float64 accumulators), so results do not depend on the threads.
"""
import math

import numpy as np
from ._config import jit, kernel
from . import activations, dense
from .gemm import padded


@jit
def _moments(block, rows, nb, bp):
    """(mean, variance, mean square) over rows x nb samples of a (rows, bp) block, float64."""
    s = 0.0
    sq = 0.0
    for r in range(rows):
        for b in range(nb):
            v = np.float64(block[r * bp + b])
            s += v
            sq += v * v
    cnt = rows * nb
    mean = s / cnt
    return mean, max(sq / cnt - mean * mean, 0.0), sq / cnt


@kernel
def layer_moments(lo, hi, params, x, arch, out):
    dims, ld, skip = arch.dims, arch.ld, arch.skip
    n = x.shape[0]
    bp = padded(n)
    L = dims.shape[0] - 1
    rows_all = np.arange(n)
    lay = dense.layout(arch, bp)
    aoff, zoff = lay.aoff, lay.zoff
    for m in range(lo, hi):
        scratch = np.empty(lay.total, dtype=params.dtype)
        p = params[m]
        dense.gather(x, rows_all, n, scratch, aoff[0], lay.x0, ld[0], bp)
        dense.forward(p, arch, m, scratch, lay, bp, n, dense.PROBE_STEP)
        for l in range(L):
            dout = dims[l + 1]
            zmean, zvar, zsq = _moments(scratch[zoff[l]:], dout, n, bp)
            out[m, l, 0] = zmean
            out[m, l, 1] = zvar
            out[m, l, 2] = zsq
            if l + 1 < L and skip[l] >= 0:      # a residual block's output: no derivative
                amean, avar, _ = _moments(scratch[aoff[l + 1]:], dout, n, bp)
                out[m, l, 3] = amean
                out[m, l, 4] = avar
                out[m, l, 5] = np.nan
            elif l + 1 < L:
                amean, avar, _ = _moments(scratch[aoff[l + 1]:], dout, n, bp)
                out[m, l, 3] = amean
                out[m, l, 4] = avar
                # derivative of every unit on every sample: phi'(z) * 1
                deriv = np.ones(dout * bp, dtype=params.dtype)
                activations.backward(arch.act[l], arch.act_param[m, l],
                                     scratch[zoff[l]:zoff[l] + dout * bp],
                                     scratch[aoff[l + 1]:aoff[l + 1] + dout * bp], deriv)
                dead = 0
                for o in range(dout):
                    alive = False
                    for b in range(n):
                        if deriv[o * bp + b] != 0.0:
                            alive = True
                            break
                    if not alive:
                        dead += 1
                out[m, l, 5] = dead / dout
            else:
                out[m, l, 3] = zmean
                out[m, l, 4] = zvar
                out[m, l, 5] = np.nan
    return out


@kernel
def unit_symmetry(lo, hi, params, arch, tol, out):
    """Tasks lo..hi-1 of the K * L (member, layer) pairs, task t being layer t % L of member
    t // L."""
    dims, ld, woff, boff = arch.dims, arch.ld, arch.woff, arch.boff
    L = dims.shape[0] - 1
    for t in range(lo, hi):
        m = t // L
        l = t - m * L
        p = params[m]
        dout, din, ldl = dims[l + 1], dims[l], ld[l]
        peak = np.empty(dout)
        norm = np.empty(dout)
        for o in range(dout):
            mx = abs(np.float64(p[boff[l] + o])) if boff[l] >= 0 else 0.0
            nn = mx * mx
            for i in range(din):
                v = abs(np.float64(p[woff[l] + o * ldl + i]))
                mx = max(mx, v)
                nn += v * v
            peak[o] = mx
            norm[o] = math.sqrt(nn)
        claimed = np.zeros(dout, dtype=np.bool_)
        distinct = 0
        best = -np.inf
        for a in range(dout):
            if not claimed[a]:
                distinct += 1
            for c in range(a + 1, dout):
                diff = 0.0
                dot = 0.0
                if boff[l] >= 0:
                    diff = abs(np.float64(p[boff[l] + a]) - np.float64(p[boff[l] + c]))
                    dot = np.float64(p[boff[l] + a]) * np.float64(p[boff[l] + c])
                for i in range(din):
                    u = np.float64(p[woff[l] + a * ldl + i])
                    v = np.float64(p[woff[l] + c * ldl + i])
                    diff = max(diff, abs(u - v))
                    dot += u * v
                if not claimed[a] and diff <= tol * max(1.0, max(peak[a], peak[c])):
                    claimed[c] = True
                if norm[a] > 0 and norm[c] > 0:
                    sim = dot / (norm[a] * norm[c])
                elif norm[a] == 0 and norm[c] == 0:
                    sim = 1.0
                else:
                    sim = 0.0
                best = max(best, sim)
        out[m, l, 0] = distinct
        out[m, l, 1] = best if dout > 1 else np.nan
    return out
