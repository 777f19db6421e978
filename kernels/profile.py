"""Replays of one training epoch's parts, each alone, for fastinit's profiler.

The real epoch (train.train_epoch, train_epoch_split) is one compiled call. ``replay`` and
``replay_split`` take the same arguments and run the same loops over members and steps, doing
only one part of each step:

    GEMM_FORWARD  Z_l = W_l A_l                    GEMM_DW      dW_l = dZ_l A_l
    GEMM_DX       dA_l = W_l^T dZ_l (l > 0)        TRANSPOSES   the batch gather, A_l^T for dW
    ELEMENTWISE   bias, activation, dropout, residual add; their derivatives, bias and alpha
                  gradients
    LOSS          the batch's loss and dL/dZ       OPTIMIZER    finiteness checks, the update

``replay`` spreads the members over the threads as train_epoch does; ``replay_split`` runs them
one after another, each product split by rows, as train_epoch_split does. Scratch (T, total)
and gradients (T, P) are one row per thread, filled by the caller, and a part alone never
feeds its own output back into its input (the GEMMs read dZ and write dA, never the other way;
the elementwise pass runs on zero gradients and a copy of the parameters with zero biases), so
the values stay finite and never denormal however often a part runs: their time is the time of
the same instructions in the real epoch. ``triad`` is a STREAM triad, for the memory bandwidth.
Shapes as in dense.py and train.py.
"""
import numba
import numpy as np
from numba import prange

from ._config import jit, pjit
from . import activations, dense, optim
from .gemm import gemm, gemm_rows, padded
from .train import batch_loss

GEMM_FORWARD, GEMM_DW, GEMM_DX, TRANSPOSES, ELEMENTWISE, LOSS, OPTIMIZER = range(7)


@jit
def _gemms(part, p, g, arch, scratch, aoff, zoff, dz, da, xt, x0, bp, nb, split, parts):
    """One step's GEMMs of one kind: forward Z_l = W A_l; dW_l = dZ A_l into g; dA_l =
    W_l^T dZ (l > 0), always from dz into da."""
    dims, ld, woff = arch.dims, arch.ld, arch.woff
    L = dims.shape[0] - 1
    for l in range(L):
        din, dout, ldl = dims[l], dims[l + 1], ld[l]
        if part == GEMM_FORWARD:
            if split:
                _rows_forward(p, woff[l], ldl, scratch, zoff[l], aoff[l], bp, dout, din,
                              parts)
            else:
                gemm(scratch, zoff[l], bp, p, woff[l], ldl, 1, scratch, aoff[l], bp, dout, bp,
                     din, 0)
        elif part == GEMM_DW:
            a_rows = x0 if l == 0 else xt
            if split:
                _rows_dw(g, woff[l], ldl, scratch, dz, a_rows, bp, nb, dout, parts)
            else:
                gemm(g, woff[l], ldl, scratch, dz, bp, 1, scratch, a_rows, ldl, dout, ldl, nb,
                     0)
        elif l > 0:
            if split:
                _rows_dx(p, woff[l], ldl, scratch, dz, da, bp, din, dout, parts)
            else:
                gemm(scratch, da, bp, p, woff[l], 1, ldl, scratch, dz, bp, din, bp, dout, 0)


@pjit
def _rows_forward(p, wo, ldl, scratch, z, a, bp, dout, din, parts):
    chunk, nch = dense._row_chunks(dout, parts)
    for c in prange(nch):
        r0 = c * chunk
        gemm_rows(scratch, z, bp, p, wo, ldl, 1, scratch, a, bp, r0, min(dout, r0 + chunk), bp,
                  din, 0)


@pjit
def _rows_dw(g, wo, ldl, scratch, dz, a_rows, bp, nb, dout, parts):
    chunk, nch = dense._row_chunks(dout, parts)
    for c in prange(nch):
        r0 = c * chunk
        gemm_rows(g, wo, ldl, scratch, dz, bp, 1, scratch, a_rows, ldl, r0,
                  min(dout, r0 + chunk), ldl, nb, 0)


@pjit
def _rows_dx(p, wo, ldl, scratch, dz, da, bp, din, dout, parts):
    chunk, nch = dense._row_chunks(din, parts)
    for c in prange(nch):
        r0 = c * chunk
        gemm_rows(scratch, da, bp, p, wo, 1, ldl, scratch, dz, bp, r0, min(din, r0 + chunk), bp,
                  dout, 0)


@jit
def _transposes(x, rows, nb, scratch, aoff, xt, x0, arch, bp, split):
    """The batch gather (rows, then A_0^T), and A_l^T for each dW with l > 0."""
    dims, ld = arch.dims, arch.ld
    dense.gather(x, rows, nb, scratch, aoff[0], x0, ld[0], bp)
    for l in range(dims.shape[0] - 2, 0, -1):
        if split:
            _rows_transpose(scratch, aoff[l], xt, dims[l], ld[l], bp, nb)
        else:
            dense.transpose_acts(scratch, aoff[l], xt, dims[l], ld[l], bp, nb)


@pjit
def _rows_transpose(scratch, a_in, xt, din, ldl, bp, nb):
    for b in prange(nb):
        for i in range(din):
            scratch[xt + b * ldl + i] = scratch[a_in + i * bp + b]
        for i in range(din, ldl):
            scratch[xt + b * ldl + i] = 0.0


@jit
def _elementwise(p, g, arch, m, scratch, aoff, zoff, dz, da, sk, bp, nb, step):
    """dense.forward and dense.backward without their GEMMs and transposes."""
    dims, boff, skip, alpha_idx = arch.dims, arch.boff, arch.skip, arch.alpha_idx
    L = dims.shape[0] - 1
    for l in range(L):
        dout = dims[l + 1]
        if boff[l] >= 0:
            dense.add_bias(p, boff[l], scratch, zoff[l], 0, dout, bp)
        if l + 1 < L:
            n = dout * bp
            z = scratch[zoff[l]:zoff[l] + n]
            a = scratch[aoff[l + 1]:aoff[l + 1] + n]
            if skip[l] >= 0:
                alpha = p[alpha_idx[l]]
                h = scratch[aoff[skip[l]]:aoff[skip[l]] + n]
                for i in range(n):
                    a[i] = h[i] + alpha * z[i]
            else:
                activations.forward(arch.act[l], arch.act_param[m, l], z, a)
                if step >= 0 and arch.dropout[m] > 0:
                    dense.dropout(scratch, aoff[l + 1], 0, dout, bp, l, step, arch, m)
    pre = sk + dims.max() * bp
    cur, other = dz, da
    for l in range(L - 1, -1, -1):
        din, dout = dims[l], dims[l + 1]
        if skip[l] >= 0:
            n = dout * bp
            alpha = p[alpha_idx[l]]
            acc = 0.0
            for o in range(dout):
                zr = scratch[zoff[l] + o * bp:zoff[l] + o * bp + nb]
                gr = scratch[cur + o * bp:cur + o * bp + nb]
                for b in range(nb):
                    acc += np.float64(gr[b]) * np.float64(zr[b])
            g[alpha_idx[l]] = acc if arch.alpha_train else 0.0
            for i in range(n):
                scratch[sk + i] = scratch[cur + i]
                scratch[cur + i] *= alpha
        if boff[l] >= 0:
            dense.bias_grad(g, boff[l], scratch, cur, 0, dout, bp, nb)
        if l > 0:
            n = din * bp
            if l + 1 < L and skip[l + 1] == l:
                for i in range(n):
                    scratch[other + i] += scratch[sk + i]
            dense.hidden_backward(arch, m, l - 1, step, scratch, zoff, aoff, other, pre, 0, din,
                                  bp)
            cur, other = other, cur


@pjit
def _elementwise_split(p, g, arch, m, scratch, aoff, zoff, dz, da, sk, bp, nb, parts, step):
    """The elementwise work of dense.forward_split and backward_split (no residual layers)."""
    dims, boff = arch.dims, arch.boff
    L = dims.shape[0] - 1
    for l in range(L):
        dout = dims[l + 1]
        chunk, nch = dense._row_chunks(dout, parts)
        for c in prange(nch):
            r0 = c * chunk
            r1 = min(dout, r0 + chunk)
            if boff[l] >= 0:
                dense.add_bias(p, boff[l], scratch, zoff[l], r0, r1, bp)
            if l + 1 < L:
                activations.forward(arch.act[l], arch.act_param[m, l],
                                    scratch[zoff[l] + r0 * bp:zoff[l] + r1 * bp],
                                    scratch[aoff[l + 1] + r0 * bp:aoff[l + 1] + r1 * bp])
                if step >= 0 and arch.dropout[m] > 0:
                    dense.dropout(scratch, aoff[l + 1], r0, r1, bp, l, step, arch, m)
    pre = sk + dims.max() * bp
    cur, other = dz, da
    for l in range(L - 1, -1, -1):
        din, dout = dims[l], dims[l + 1]
        if boff[l] >= 0:
            chunk, nch = dense._row_chunks(dout, parts)
            for c in prange(nch):
                r0 = c * chunk
                dense.bias_grad(g, boff[l], scratch, cur, r0, min(dout, r0 + chunk), bp, nb)
        if l > 0:
            chunk, nch = dense._row_chunks(din, parts)
            for c in prange(nch):
                r0 = c * chunk
                dense.hidden_backward(arch, m, l - 1, step, scratch, zoff, aoff, other, pre, r0,
                                      min(din, r0 + chunk), bp)
            cur, other = other, cur


@jit
def _member(part, m, split, parts, params, s1, s2, x, y, t, order, arch, loss_code, opt, plan,
            scratch, g):
    """Member m's epoch, only ``part`` of each step (train._member_epoch's loop)."""
    dims, ld = arch.dims, arch.ld
    n = x.shape[0]
    batch, step0 = plan.batch, plan.step0
    bp = padded(batch)
    aoff, zoff, dz, da, xt, tgt, work, x0, sk, total = dense.layout(dims, ld, bp)
    L = dims.shape[0] - 1
    p = params[m]
    ybuf = np.empty(bp, dtype=np.int64)
    orow = order[0] if order.shape[0] == 1 else order[m]
    if part == OPTIMIZER:
        optim.all_finite(p)
    for s in range(plan.steps):
        start = s * batch
        nb = min(batch, n - start)
        rows = orow[start:start + nb]
        if part <= GEMM_DX:
            _gemms(part, p, g, arch, scratch, aoff, zoff, dz, da, xt, x0, bp, nb, split, parts)
        elif part == TRANSPOSES:
            _transposes(x, rows, nb, scratch, aoff, xt, x0, arch, bp, split)
        elif part == ELEMENTWISE:
            if split:
                _elementwise_split(p, g, arch, m, scratch, aoff, zoff, dz, da, sk, bp, nb,
                                   parts, step0 + s)
            else:
                _elementwise(p, g, arch, m, scratch, aoff, zoff, dz, da, sk, bp, nb, step0 + s)
        elif part == LOSS:
            batch_loss(loss_code, scratch, zoff[L - 1], dz, tgt, work, dims[L], bp, nb, y, t,
                       rows, ybuf)
        else:
            optim.all_finite(g)
            if split:
                optim.update_split(opt.code, p, g, s1[m], s2[m], opt.lr[m], opt.momentum[m],
                                   opt.beta1, opt.beta2, opt.eps, opt.weight_decay[m],
                                   step0 + s + 1, parts)
            else:
                optim.update(opt.code, p, g, s1[m], s2[m], opt.lr[m], opt.momentum[m],
                             opt.beta1, opt.beta2, opt.eps, opt.weight_decay[m], step0 + s + 1)


@pjit
def replay(part, params, s1, s2, x, y, t, order, arch, loss_code, opt, plan, scratch, grads):
    """``part`` of train_epoch: members over the threads, each on its thread's scratch row."""
    rows = scratch.shape[0]
    for m in prange(params.shape[0]):
        tid = numba.get_thread_id() % rows
        _member(part, m, False, 1, params, s1, s2, x, y, t, order, arch, loss_code, opt, plan,
                scratch[tid], grads[tid])


@jit
def replay_split(part, params, s1, s2, x, y, t, order, arch, loss_code, opt, plan, scratch,
                 grads, parts):
    """``part`` of train_epoch_split: members one after another, products over ``parts``
    threads."""
    for m in range(params.shape[0]):
        _member(part, m, True, parts, params, s1, s2, x, y, t, order, arch, loss_code, opt, plan,
                scratch[0], grads[0])


@pjit
def triad(a, b, c, s, reps):
    """a = b + s c, ``reps`` times, over the threads: 3 arrays of traffic per element."""
    for _ in range(reps):
        for i in prange(a.shape[0]):
            a[i] = b[i] + s * c[i]
