"""Dense (MLP) forward and backward passes for one population member, features x batch layout.

Shapes, for layer l = 0..L-1 mapping d_l inputs to d_{l+1} outputs, batch padded to bp:
    p         (P,)          the member's flat parameters: W_l at woff[l] as (d_{l+1}, ld[l]) rows,
                            ld[l] = d_l padded to gemm.LANES (padding columns stay 0); b_l at boff[l]
    acts      A_l^T         (d_l, bp) at aoff[l]: layer l's input (A_0 = the batch)
    zs        Z_l^T         (d_{l+1}, bp) at zoff[l]: layer l's pre-activation, Z = W A + b
                            (not stored where only phi'(Z) would read it and A tells it:
                            deriv_from_a; a probe always stores it)
    dz, da    (max d, bp)   dL/dZ of the current layer and dL/dA of its input
    xt        (bp, max ld)  A_l, transposed, for dW = dZ A (its padding columns stay 0)
    x0        (bp, ld[0])   the batch's input rows as gathered: layer 0's A, no transpose needed
    g         (P,)          the gradient, laid out like p

The architecture record ``Arch`` (built by fastinit.MLP, taken by every kernel):
    dims (L+1,)   layer widths d_0..d_L        ld, woff, boff (L,)  padded widths and offsets
                  (boff[l] = -1: layer l has no bias)
    act (L,)      activation code per layer    act_param (K, L)     its parameter, per member
    skip (L,)     residual layers: index of the activation added back (-1: none)
    alpha_idx (L,) offset in p of a residual layer's branch scalar    alpha_train: trained?
    dropout (K,)  inverted-dropout rate of the hidden activations, per member (training only)
    key, stream (K,) uint64  the member's Philox key and dropout stream (tag + layer added)
    norm (L,)     normalization of a hidden layer's Z (norm.py codes)  goff (L,) its gamma's
                  offset in p (beta follows)      soff (L,) its running statistics' offset in
    state (K, S)  the running statistics (mean, then variance) of batch norm, per member
    momentum, eps batch norm's running-statistics momentum and every norm's epsilon
The scratch layout ``Layout`` (from ``layout``): offsets aoff, zoff, zh (L,) of each layer's
A, Z and normalized Z, and dz, da, xt, tgt, work, x0, sk, pre, total (see ``layout``).
A pass runs at a ``step``: >= 0 trains (dropout, batch statistics updated), -1 evaluates
(no dropout, running statistics), -2 probes (no dropout, batch statistics, nothing updated:
gradients and diagnostics).

Samples are columns, so every product is column-independent: a sample's result never depends on
the padding or on the other samples, and the weight gradient sums over the nb real samples only.
Scratch is not zeroed: every value read is written first (padding samples start as zeros).
"""
import math
from collections import namedtuple

import numpy as np

from ._config import jit, kernel
from . import activations, losses, norm, rng
from .gemm import (EPI_COPY, EPI_LEAKY, EPI_NO_Z, EPI_NONE, EPI_RELU, NO_BIAS, gemm_act,
                   gemm_grad)
from .transposes import transpose
from .sums import fixed_sum

Arch = namedtuple("Arch", ("dims", "ld", "woff", "boff", "act", "act_param", "skip",
                           "alpha_idx", "alpha_train", "dropout", "key", "stream", "norm",
                           "goff", "soff", "state", "momentum", "eps"))
# Integers handed to another kernel are int64 values, never literals: Numba compiles a callee
# once per literal value it is called with (0, -1, ...), so a literal doubles its compile time.
# Likewise a prange index is unsigned inside the parallel body: pass np.int64(index) on.
ROW0 = np.int64(0)           # the first row of a block
EVAL_STEP = np.int64(-1)     # a pass that evaluates: no dropout, running statistics
PROBE_STEP = np.int64(-2)    # a pass that probes: batch statistics, nothing updated
NO_EPILOGUE = np.int64(EPI_NONE)
NO_PARAM = 0.0               # gemm_act's slope when it has no activation to apply

Layout = namedtuple("Layout", ("aoff", "zoff", "zh", "dz", "da", "xt", "tgt", "work", "x0",
                               "sk", "pre", "total"))


@kernel
def layout(arch, bp):
    """Offsets into one member's scratch for batches padded to bp: A_l and Z_l of every layer
    (aoff, zoff), a normalized layer's Zhat and inverse deviations (zh), then dz, da (max d,
    bp), xt (bp, max ld), tgt (the batch's targets, (d_L, bp)), work (WORK bp), x0 (the input rows,
    (bp, ld[0])), sk (a residual block's output gradient, held for its skip path), pre (phi(Z)
    recomputed under dropout) and the total size."""
    dims, ld = arch.dims, arch.ld
    L = dims.shape[0] - 1
    aoff = np.empty(L, dtype=np.int64)
    zoff = np.empty(L, dtype=np.int64)
    zh = np.full(L, -1, dtype=np.int64)
    off = 0
    maxd = 0
    maxld = 0
    for l in range(L):
        aoff[l] = off
        off += dims[l] * bp
        zoff[l] = off
        off += dims[l + 1] * bp
        if arch.norm[l] != norm.NONE:
            zh[l] = off
            off += dims[l + 1] * bp + max(dims[l + 1], bp)
            if arch.norm[l] == norm.LAYER:
                off += norm.LAYER_WORK * bp + 1          # its float64 work (norm.layer_work)
        maxd = max(maxd, max(dims[l], dims[l + 1]))
        maxld = max(maxld, ld[l])
    dz = off
    da = dz + maxd * bp
    xt = da + maxd * bp
    tgt = xt + bp * maxld
    work = tgt + dims[L] * bp
    x0 = work + losses.WORK * bp   # the batch's input rows, (bp, ld[0]): layer 0's A, untransposed
    sk = x0 + bp * ld[0]
    pre = sk + maxd * bp
    return Layout(aoff, zoff, zh, dz, da, xt, tgt, work, x0, sk, pre, pre + maxd * bp)


@jit
def mode_of(step):
    """The norm mode of a pass at ``step``: TRAIN (>= 0), EVAL (-1) or PROBE (-2)."""
    return norm.TRAIN if step >= 0 else (norm.EVAL if step == -1 else norm.PROBE)


@jit
def normalize(p, arch, m, scratch, lay, l, r0, r1, bp, nb, step):
    """Rows r0..r1 of layer l's Z, normalized in place when the layer has a norm (batch norm:
    any rows; layer norm: all rows at once, r0 = 0, r1 = d)."""
    code = arch.norm[l]
    if code == norm.BATCH:
        norm.batch_forward(p, arch.goff[l], arch.state[m], arch.soff[l], scratch, lay.zoff[l],
                           lay.zh[l], arch.dims[l + 1], r0, r1, bp, nb, mode_of(step),
                           arch.momentum, arch.eps)
    elif code == norm.LAYER:
        norm.layer_forward(p, arch.goff[l], scratch, lay.zoff[l], lay.zh[l], arch.dims[l + 1],
                           bp, arch.eps)


@jit
def normalize_backward(p, g, arch, scratch, lay, l, grad, r0, r1, bp, nb, step):
    """dL/dN of layer l's rows r0..r1 (at grad) into dL/dZ, and dgamma, dbeta into g."""
    code = arch.norm[l]
    if code == norm.BATCH:
        norm.batch_backward(p, arch.goff[l], g, scratch, grad, lay.zh[l], arch.dims[l + 1], r0,
                            r1, bp, nb, mode_of(step))
    elif code == norm.LAYER:
        norm.layer_backward(p, arch.goff[l], g, scratch, grad, lay.zh[l], arch.dims[l + 1], bp,
                            nb)


@jit
def gather(x, rows, nb, scratch, a0, x0, ld0, bp):
    """The batch's input rows x[rows[b]] into x0 (nb, ld0) (padding columns zero) and, as
    A_0^T[i, b], into a0 (d0, bp): row copies, then a transpose."""
    copy_rows(x, rows, ROW0, nb, scratch, x0, ld0)
    transpose_inputs(scratch, a0, x0, ld0, bp, nb, ROW0, x.shape[1])


@jit
def copy_rows(x, rows, b0, b1, scratch, x0, ld0):
    """x[rows[b]] into row b of x0 (nb, ld0), padding columns zero, for b0 <= b < b1."""
    d0 = x.shape[1]
    for b in range(b0, b1):
        src = x[rows[b]]
        dst = scratch[x0 + b * ld0:x0 + (b + 1) * ld0]
        for i in range(d0):
            dst[i] = src[i]
        for i in range(d0, ld0):
            dst[i] = 0.0


@jit
def transpose_inputs(scratch, a0, x0, ld0, bp, nb, i0, i1):
    """Features i0..i1-1 of x0 (nb, ld0) into rows i0..i1-1 of a0 (d0, bp)."""
    transpose(scratch, a0 + i0 * bp, bp, scratch, x0 + i0, ld0, nb, i1 - i0)
    if nb < bp:                 # padding samples: zeros, so no stale value (NaN, denormal) runs
        for i in range(i0, i1):  # through the forward pass; their results are never read
            for b in range(nb, bp):
                scratch[a0 + i * bp + b] = 0.0


@jit(forceinline=True)
def row_sum(x):
    """Sum with a fixed order on every machine: 8 interleaved partial sums, then a fixed tree
    (sums.fixed_sum: the partial sums one vector of eight lanes)."""
    return fixed_sum(x)


@jit(forceinline=True)
def add_bias(p, bo, scratch, z, r0, r1, bp):
    """Z rows r0..r1 += b (b at p[bo:]), every column of the padded batch."""
    for o in range(r0, r1):
        bias = p[bo + o]
        row = scratch[z + o * bp:z + (o + 1) * bp]
        for b in range(bp):
            row[b] += bias


@jit(forceinline=True)
def bias_grad(g, bo, scratch, dz, r0, r1, bp, nb):
    """db rows r0..r1 = the sum of dZ over the nb real samples (fixed order)."""
    for o in range(r0, r1):
        g[bo + o] = row_sum(scratch[dz + o * bp:dz + o * bp + nb])


@jit
def dropout(x, off, r0, r1, bp, layer, step, arch, m):
    """Rows r0..r1 of a layer's (d, bp) block at x[off:] times keep / (1 - rate): keep is a
    Philox word of the member's dropout stream (tag + layer) >= rate 2^32, the word at position
    (step d + row) bp + column, so a mask is a pure function of (seed, member, step, layer,
    row, column) whatever the population, the batch padding or the threads."""
    rate = arch.dropout[m]
    thr = np.uint64(rate * 4294967296.0)
    scale = x.dtype.type(1.0 / (1.0 - rate))
    zero = x.dtype.type(0.0)
    key = arch.key[m]
    stream = arch.stream[m] + np.uint64(layer)
    d = arch.dims[layer + 1]
    for o in range(r0, r1):
        block0 = (np.uint64(step) * np.uint64(d) + np.uint64(o)) * np.uint64(bp // 4)
        row = x[off + o * bp:off + (o + 1) * bp]
        for j in range(bp // 4):
            w0, w1, w2, w3 = rng.philox_block(block0 + np.uint64(j), stream, key)
            b = 4 * j
            row[b] = row[b] * scale if w0 >= thr else zero
            row[b + 1] = row[b + 1] * scale if w1 >= thr else zero
            row[b + 2] = row[b + 2] * scale if w2 >= thr else zero
            row[b + 3] = row[b + 3] * scale if w3 >= thr else zero


@jit
def hidden_backward(arch, m, l, step, scratch, lay, grad, r0, r1, bp):
    """dL/dA_{l+1} of rows r0..r1 (at grad) into dL/dZ_l: through the dropout mask when the
    member drops (its phi(Z_l) recomputed into pre, since A holds the dropped values), then
    times phi'(Z_l)."""
    lo, hi = r0 * bp, r1 * bp
    z = scratch[lay.zoff[l] + lo:lay.zoff[l] + hi]
    if step >= 0 and arch.dropout[m] > 0:
        dropout(scratch, grad, r0, r1, bp, l, step, arch, m)
        a = scratch[lay.pre + lo:lay.pre + hi]
        activations.forward(arch.act[l], arch.act_param[m, l], z, a)
    else:
        a = scratch[lay.aoff[l + 1] + lo:lay.aoff[l + 1] + hi]
    activations.backward(arch.act[l], arch.act_param[m, l], z, a, scratch[grad + lo:grad + hi])


@jit
def transpose_acts(scratch, a_in, xt, din, ldl, bp, nb):
    """xt[b, i] = A^T[i, b] for the nb real samples; padding columns 0."""
    acts_t(scratch, a_in, xt, din, ldl, bp, ROW0, nb)


@jit
def acts_t(scratch, a_in, xt, din, ldl, bp, b0, b1):
    """transpose_acts for samples b0..b1-1."""
    transpose(scratch, xt + b0 * ldl, ldl, scratch, a_in + b0, bp, din, b1 - b0)
    for b in range(b0, b1):
        for i in range(din, ldl):
            scratch[xt + b * ldl + i] = 0.0


@jit
def act_epilogue(arch, m, l, step):
    """gemm_act's epilogue for member m's layer l at ``step``: its activation fused when it is
    relu, leaky relu or linear and nothing comes between Z and phi(Z) (a hidden layer with no
    norm, not residual); else EPI_NONE (hidden_forward's pass). Dropout, applied to A after,
    stays a pass. A fused relu or leaky relu stores A alone (EPI_NO_Z) when deriv_from_a."""
    if l + 1 >= arch.dims.shape[0] - 1 or arch.norm[l] != norm.NONE or arch.skip[l] >= 0:
        return EPI_NONE
    code = arch.act[l]
    if code == activations.LINEAR:
        return EPI_COPY
    if code != activations.RELU and code != activations.LEAKY_RELU:
        return EPI_NONE
    epi = EPI_RELU if code == activations.RELU else EPI_LEAKY
    return epi + EPI_NO_Z if deriv_from_a(arch, m, l, step) else epi


@jit
def deriv_from_a(arch, m, l, step):
    """Whether nothing reads hidden layer l's Z after its forward pass at ``step`` but
    gemm_grad's epilogue for phi_l'(Z) (grad_epilogue of layer l + 1: no dropout mask, no skip
    path), and that derivative is a function of A = phi_l(Z) with the same bits: relu with
    relu'(0) = +0 (A > 0 exactly where Z > 0, NaN included; with -0, A = +0 would take the
    Z == 0 choice where Z < 0, C x -0 for C x +0) or leaky relu with a slope >= 0.
    A probe's diagnostics read Z: it is always stored there."""
    code, param = arch.act[l], arch.act_param[m, l]
    plus_zero = param == 0 and math.copysign(1.0, param) > 0     # -0 is not relu'(0) = +0
    if step == PROBE_STEP or not ((code == activations.RELU and plus_zero)
                                  or (code == activations.LEAKY_RELU and param >= 0)):
        return False
    return grad_epilogue(arch, m, l + 1, step) != EPI_NONE


@jit
def deriv_at(arch, m, l, step, lay):
    """Where gemm_grad's epilogue for dA_l (l > 0) reads phi'(Z_{l-1}) from: A_l when the
    forward pass stored no Z_{l-1} (act_epilogue's EPI_NO_Z), else Z_{l-1}."""
    return lay.aoff[l] if act_epilogue(arch, m, l - 1, step) >= EPI_NO_Z else lay.zoff[l - 1]


@jit
def grad_epilogue(arch, m, l, step):
    """gemm_grad's epilogue for dA_l = W_l^T dZ_l (l > 0): phi'(Z_{l-1}) fused (EPI_RELU,
    EPI_LEAKY) when layer l-1 is relu or leaky relu and nothing comes between dA_l and the
    derivative (no skip path adds into dA_l, no dropout mask at this step); else EPI_NONE
    (hidden_backward's pass)."""
    L = arch.dims.shape[0] - 1
    if (l + 1 < L and arch.skip[l + 1] == l) or (step >= 0 and arch.dropout[m] > 0):
        return EPI_NONE
    code = arch.act[l - 1]
    if code == activations.RELU:
        return EPI_RELU
    return EPI_LEAKY if code == activations.LEAKY_RELU else EPI_NONE


@jit
def forward(p, arch, m, scratch, lay, bp, nb, step):
    """Member m: Z_l = W_l A_l + b_l (normalized when the layer has a norm), then A_{l+1} =
    phi_l(Z_l) (dropped out at a training step when the member drops), or for a residual layer
    (skip[l] >= 0) A_{l+1} = A_{skip[l]} + alpha Z_l with alpha = p[alpha_idx[l]]; the last
    layer stays Z. The bias, and a relu, leaky relu or linear activation, are added in the
    GEMM's epilogue (act_epilogue): the same values as their own passes."""
    dims, ld, woff, boff = arch.dims, arch.ld, arch.woff, arch.boff
    aoff, zoff = lay.aoff, lay.zoff
    L = dims.shape[0] - 1
    for l in range(L):
        dout = dims[l + 1]
        epi = act_epilogue(arch, m, l, step)
        gemm_act(scratch, zoff[l], bp, p, woff[l], ld[l], 1, scratch, aoff[l], bp, dout, bp,
                 dims[l], p, boff[l], epi, aoff[l + 1] if l + 1 < L else zoff[l],
                 arch.act_param[m, l])
        if l + 1 < L:
            normalize(p, arch, m, scratch, lay, l, ROW0, dout, bp, nb, step)
            hidden_forward(p, arch, m, scratch, lay, l, bp, step, epi)


@jit
def hidden_forward(p, arch, m, scratch, lay, l, bp, step, epi):
    """A_{l+1} from Z_l: phi_l(Z_l) (already there when the GEMM's epilogue ``epi`` wrote it),
    dropped out at a training step when the member drops, or for a residual layer
    A_{skip[l]} + alpha Z_l."""
    n = arch.dims[l + 1] * bp
    z = scratch[lay.zoff[l]:lay.zoff[l] + n]
    a = scratch[lay.aoff[l + 1]:lay.aoff[l + 1] + n]
    skip = arch.skip[l]
    if skip >= 0:
        alpha = p[arch.alpha_idx[l]]
        h = scratch[lay.aoff[skip]:lay.aoff[skip] + n]
        for i in range(n):
            a[i] = h[i] + alpha * z[i]
    else:
        if epi == EPI_NONE:
            activations.forward(arch.act[l], arch.act_param[m, l], z, a)
        if step >= 0 and arch.dropout[m] > 0:
            dropout(scratch, lay.aoff[l + 1], ROW0, arch.dims[l + 1], bp, l, step, arch, m)


@jit
def residual_backward(p, g, arch, scratch, lay, l, cur, bp, nb):
    """Residual layer l's dL/dH (at cur) for H = A_skip + alpha Z: alpha's gradient
    sum(dL/dH * Z) into g (0 when not alpha_train), dL/dH held in sk, dZ = alpha dL/dH at cur."""
    dout, zoff, sk, ai = arch.dims[l + 1], lay.zoff[l], lay.sk, arch.alpha_idx[l]
    alpha = p[ai]
    acc = 0.0
    if arch.alpha_train:        # one chain of dout nb dependent additions: only when it is used
        for o in range(dout):
            zr = scratch[zoff + o * bp:zoff + o * bp + nb]
            gr = scratch[cur + o * bp:cur + o * bp + nb]
            for b in range(nb):
                acc += np.float64(gr[b]) * np.float64(zr[b])
    g[ai] = acc
    for i in range(dout * bp):
        scratch[sk + i] = scratch[cur + i]
        scratch[cur + i] *= alpha


@jit
def backward(p, g, arch, m, scratch, lay, bp, nb, step):
    """Member m's gradient g of the loss whose dL/dZ_{L-1} is in scratch[lay.dz:]; clobbers
    dz, da, sk, pre.

    A residual layer l receives dL/dH for its output H = A_skip + alpha Z: alpha's gradient is
    sum(dL/dH * Z) (0 when not alpha_train), dZ = alpha dL/dH, and dL/dH is held in sk and
    added to dL/dA_skip when the backward pass reaches the block's input. A normalized layer
    turns dL/dN into dL/dZ first (norm.py).
    """
    dims, ld, woff, boff, skip = arch.dims, arch.ld, arch.woff, arch.boff, arch.skip
    aoff, sk = lay.aoff, lay.sk
    L = dims.shape[0] - 1
    cur, other = lay.dz, lay.da
    for l in range(L - 1, -1, -1):
        din, dout, ldl = dims[l], dims[l + 1], ld[l]
        if skip[l] >= 0:
            residual_backward(p, g, arch, scratch, lay, l, cur, bp, nb)
        normalize_backward(p, g, arch, scratch, lay, l, cur, ROW0, dout, bp, nb, step)
        a_rows = lay.x0 if l == 0 else lay.xt     # layer 0's A: the gathered input rows
        if l > 0:
            transpose_acts(scratch, aoff[l], lay.xt, din, ldl, bp, nb)
        # dW_l = dZ (dout, nb) @ A_l (nb, ldl): gemm_act with no epilogue, the forward's
        # compiled code (its argument types), so the passes compile one GEMM per stride order
        gemm_act(g, woff[l], ldl, scratch, cur, bp, 1, scratch, a_rows, ldl, dout, ldl, nb, p,
                 NO_BIAS, NO_EPILOGUE, ROW0, NO_PARAM)
        if boff[l] >= 0:                   # db_l = sum over the real samples
            bias_grad(g, boff[l], scratch, cur, ROW0, dout, bp, nb)
        if l > 0:
            # dA_l = W_l^T (din, dout) @ dZ (dout, bp), then dZ_{l-1} = dA_l * phi'(Z_{l-1}),
            # relu's in the GEMM's epilogue (grad_epilogue)
            epi = grad_epilogue(arch, m, l, step)
            gemm_grad(scratch, other, bp, p, woff[l], 1, ldl, scratch, cur, bp, din, bp, dout,
                      epi, deriv_at(arch, m, l, step, lay), arch.act_param[m, l - 1])
            n = din * bp
            if l + 1 < L and skip[l + 1] == l:   # A_l also feeds the next layer's skip path
                for i in range(n):
                    scratch[other + i] += scratch[sk + i]
            if epi == EPI_NONE:
                hidden_backward(arch, m, l - 1, step, scratch, lay, other, ROW0, din, bp)
            cur, other = other, cur
