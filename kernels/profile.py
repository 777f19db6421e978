"""Replays of one training epoch's parts, each alone, for fastinit's profiler.

The real epoch (train.train_epoch, train_epoch_split) is one compiled call. ``replay`` and
``replay_split`` take the same arguments and run the same loops over members and steps, doing
only one part of each step:

    GEMM_FORWARD  Z_l = W_l A_l                    GEMM_DW      dW_l = dZ_l A_l
    GEMM_DX       dA_l = W_l^T dZ_l (l > 0)        TRANSPOSES   the batch gather, A_l^T for dW
    ELEMENTWISE   bias, activation, dropout, residual add; their derivatives, bias and alpha
                  gradients; where the epoch fuses the bias and activation (or its
                  derivative) into a GEMM's epilogue (dense.act_epilogue, grad_epilogue; a
                  member per thread or its rows split), the replays do too: that work counts
                  as the GEMM's
    NORMALIZATION batch or layer norm of the hidden Z, forward and backward (norm.py)
    LOSS          the batch's loss and dL/dZ       OPTIMIZER    finiteness checks, the update
    CALL          nothing: with no step, what a call costs (threads, each group's zeroed
                  gradient) without setting any scratch from the template

``replay`` runs members lo..hi-1, as train_epoch does (fastinit.spread: runs per thread; the
members sharing the data order in groups, step by step, each step's batch gathered once per
group); ``replay_split`` runs all of them so, each product split by rows, as
train_epoch_split does. Each group starts from the caller's scratch ``work`` (total,) and
gradient ``grad`` (P,), one pair per thread as in the epoch, set to a copy of the caller's
``template`` (total,) (``snapshot``'s values of a real step, the gradient blocks dz, da and
sk zeroed) and to zero; the caller maps them once, as a training run does. A part alone never
feeds its own output back into its input (the GEMMs read dZ and write dA, never the other way;
the elementwise and normalization passes multiply zero gradients; biases are zero in the
caller's copy of the parameters), so the values stay finite and never denormal however often a
part runs: their time is the time of the same instructions on the values of the real epoch.
``triad`` is a STREAM triad, for the memory bandwidth.
Shapes as in dense.py and train.py; ``lay`` is dense.layout's record.
"""
import numpy as np
from numba import prange

from ._config import jit, kernel, pjit, pkernel
from . import activations, dense, norm, optim, split
from .gemm import EPI_NONE, gemm_act, gemm_grad, padded
from .train import batch_loss, gather_batch, group_size

(GEMM_FORWARD, GEMM_DW, GEMM_DX, TRANSPOSES, ELEMENTWISE, NORMALIZATION, LOSS,
 OPTIMIZER, CALL) = range(9)


@jit
def _gemms(part, p, g, arch, m, scratch, lay, bp, nb, parts, step):
    """One step's GEMMs of one kind: forward Z_l = W A_l; dW_l = dZ A_l into g; dA_l =
    W_l^T dZ (l > 0), always from dz into da; rows split over ``parts`` threads unless None,
    else with dense.forward's and backward's epilogues."""
    dims, ld, woff = arch.dims, arch.ld, arch.woff
    L = dims.shape[0] - 1
    for l in range(L):
        din, dout, ldl = dims[l], dims[l + 1], ld[l]
        if part == GEMM_FORWARD:
            if parts is not None:
                _rows_gemm(part, p, g, arch, m, scratch, lay, l, lay.zoff[l], bp, nb, parts,
                           step)
            else:
                gemm_act(scratch, lay.zoff[l], bp, p, woff[l], ldl, 1, scratch, lay.aoff[l], bp,
                         dout, bp, din, p, arch.boff[l], dense.act_epilogue(arch, m, l, step),
                         lay.aoff[l + 1] if l + 1 < L else lay.zoff[l],
                         arch.act_param[m, l])
        elif part == GEMM_DW:
            a_rows = lay.x0 if l == 0 else lay.xt
            if parts is not None:
                _rows_gemm(part, p, g, arch, m, scratch, lay, l, a_rows, bp, nb, parts, step)
            else:
                gemm_act(g, woff[l], ldl, scratch, lay.dz, bp, 1, scratch, a_rows, ldl, dout,
                         ldl, nb, p, dense.NO_BIAS, dense.NO_EPILOGUE, dense.ROW0,
                         dense.NO_PARAM)
        elif l > 0:
            if parts is not None:
                _rows_gemm(part, p, g, arch, m, scratch, lay, l, lay.dz, bp, nb, parts, step)
            else:
                gemm_grad(scratch, lay.da, bp, p, woff[l], 1, ldl, scratch, lay.dz, bp, din, bp,
                          dout, dense.grad_epilogue(arch, m, l, step),
                          dense.deriv_at(arch, m, l, step, lay), arch.act_param[m, l - 1])


@pjit
def _rows_gemm(part, p, g, arch, m, scratch, lay, l, src, bp, nb, parts, step):
    """One of _gemms' products of layer l with its rows split over ``parts`` threads, as
    split.forward_split and backward_split split them (split.forward_rows, dw_rows, dx_rows,
    epilogues included): forward from A_l; dW from dz and A's rows at src; dA into da from
    dz (src)."""
    d = arch.dims[l] if part == GEMM_DX else arch.dims[l + 1]
    epi = dense.act_epilogue(arch, m, l, step) if part == GEMM_FORWARD else (
        dense.grad_epilogue(arch, m, l, step) if part == GEMM_DX else EPI_NONE)
    deriv = dense.deriv_at(arch, m, l, step, lay) if part == GEMM_DX else dense.ROW0
    chunk, nch = split.row_chunks(d, parts)
    for c in prange(nch):
        r0 = c * chunk
        r1 = min(d, r0 + chunk)
        if part == GEMM_FORWARD:
            split.forward_rows(p, arch, m, scratch, lay, l, r0, r1, bp, epi)
        elif part == GEMM_DW:
            split.dw_rows(p, g, arch, scratch, l, lay.dz, src, r0, r1, bp, nb)
        else:
            split.dx_rows(p, arch, m, scratch, l, lay.da, src, r0, r1, bp, epi, deriv)


@jit
def _transposes(scratch, lay, arch, bp, nb, parts):
    """A_l^T for each dW with l > 0 (the batch gather is train.gather_batch)."""
    dims, ld = arch.dims, arch.ld
    for l in range(dims.shape[0] - 2, 0, -1):
        if parts is not None:
            split.transpose_acts_split(scratch, lay.aoff[l], lay.xt, dims[l], ld[l], bp, nb,
                                       parts)
        else:
            dense.transpose_acts(scratch, lay.aoff[l], lay.xt, dims[l], ld[l], bp, nb)


@jit
def _elementwise(p, g, arch, m, scratch, lay, bp, nb, step):
    """dense.forward and dense.backward without their GEMMs (epilogues included), transposes
    and norms."""
    dims, boff, skip = arch.dims, arch.boff, arch.skip
    L = dims.shape[0] - 1
    for l in range(L - 1):
        dense.hidden_forward(p, arch, m, scratch, lay, l, bp, step,
                             dense.act_epilogue(arch, m, l, step))
    cur, other = lay.dz, lay.da
    for l in range(L - 1, -1, -1):
        if skip[l] >= 0:
            dense.residual_backward(p, g, arch, scratch, lay, l, cur, bp, nb)
        if boff[l] >= 0:
            dense.bias_grad(g, boff[l], scratch, cur, dense.ROW0, dims[l + 1], bp, nb)
        if l > 0:
            if l + 1 < L and skip[l + 1] == l:
                for i in range(dims[l] * bp):
                    scratch[other + i] += scratch[lay.sk + i]
            if dense.grad_epilogue(arch, m, l, step) == EPI_NONE:
                dense.hidden_backward(arch, m, l - 1, step, scratch, lay, other, dense.ROW0,
                                      dims[l], bp)
            cur, other = other, cur


@pjit
def _elementwise_split(p, g, arch, m, scratch, lay, bp, nb, parts, step):
    """The elementwise work of split.forward_split and backward_split that their GEMMs'
    epilogues leave (no residual layers)."""
    dims, boff, aoff, zoff = arch.dims, arch.boff, lay.aoff, lay.zoff
    L = dims.shape[0] - 1
    for l in range(L - 1):
        dout = dims[l + 1]
        fused = dense.act_epilogue(arch, m, l, step) != EPI_NONE
        chunk, nch = split.row_chunks(dout, parts)
        for c in prange(nch):
            r0 = c * chunk
            r1 = min(dout, r0 + chunk)
            if not fused:
                activations.forward(arch.act[l], arch.act_param[m, l],
                                    scratch[zoff[l] + r0 * bp:zoff[l] + r1 * bp],
                                    scratch[aoff[l + 1] + r0 * bp:aoff[l + 1] + r1 * bp])
            if step >= 0 and arch.dropout[m] > 0:
                dense.dropout(scratch, aoff[l + 1], r0, r1, bp, l, step, arch, m)
    cur, other = lay.dz, lay.da
    for l in range(L - 1, -1, -1):
        din, dout = dims[l], dims[l + 1]
        if boff[l] >= 0:
            chunk, nch = split.row_chunks(dout, parts)
            for c in prange(nch):
                r0 = c * chunk
                dense.bias_grad(g, boff[l], scratch, cur, r0, min(dout, r0 + chunk), bp, nb)
        if l > 0 and dense.grad_epilogue(arch, m, l, step) == EPI_NONE:
            chunk, nch = split.row_chunks(din, parts)
            for c in prange(nch):
                r0 = c * chunk
                dense.hidden_backward(arch, m, l - 1, step, scratch, lay, other, r0,
                                      min(din, r0 + chunk), bp)
        if l > 0:
            cur, other = other, cur


@jit
def _normalization(p, g, arch, m, scratch, lay, bp, nb, step):
    """Every normalized layer's forward (dense.normalize) and backward (normalize_backward)."""
    d = arch.dims
    for l in range(d.shape[0] - 2):
        if arch.norm[l] != norm.NONE:
            dense.normalize(p, arch, m, scratch, lay, l, dense.ROW0, d[l + 1], bp, nb, step)
    for l in range(d.shape[0] - 3, -1, -1):
        if arch.norm[l] != norm.NONE:
            dense.normalize_backward(p, g, arch, scratch, lay, l, lay.da, dense.ROW0, d[l + 1],
                                     bp, nb, step)


@pjit
def _normalization_split(p, g, arch, m, scratch, lay, bp, nb, parts, step):
    """_normalization with each layer's rows over ``parts`` threads (batch norm only, as in
    split.forward_split and backward_split)."""
    d = arch.dims
    for l in range(d.shape[0] - 2):
        if arch.norm[l] != norm.NONE:
            chunk, nch = split.row_chunks(d[l + 1], parts)
            for c in prange(nch):
                r0 = c * chunk
                dense.normalize(p, arch, m, scratch, lay, l, r0, min(d[l + 1], r0 + chunk), bp,
                                nb, step)
    for l in range(d.shape[0] - 3, -1, -1):
        if arch.norm[l] != norm.NONE:
            chunk, nch = split.row_chunks(d[l + 1], parts)
            for c in prange(nch):
                r0 = c * chunk
                dense.normalize_backward(p, g, arch, scratch, lay, l, lay.da, r0,
                                         min(d[l + 1], r0 + chunk), bp, nb, step)


@jit(inline="always")   # its callers compile it in place (no finalize of its own)
def _members(part, lo, hi, parts, params, s1, s2, x, y, t, order, arch, loss_code, opt, plan,
             template, scratch, g):
    """Members lo..hi-1's epoch, only ``part`` of each step, in train._epoch's loops (members
    sharing the data order in groups, step by step, each step's batch gathered once for the
    group), on the caller's ``scratch`` (set to ``template`` for each group) and gradient ``g``
    (set to zero); products split over ``parts`` threads unless parts is None (which prunes the
    split calls, as in train)."""
    n = x.shape[0]
    batch, step0 = plan.batch, plan.step0
    bp = padded(batch)
    lay = dense.layout(arch, bp)
    L = arch.dims.shape[0] - 1
    ybuf = np.empty(bp, dtype=np.int64)
    shared = order.shape[0] == 1
    group = group_size(params, s1, s2, order)
    for m0 in range(lo, hi, group):
        m1 = min(hi, m0 + group)
        if part != CALL:
            scratch[:] = template
        g[:] = 0
        if part == OPTIMIZER:
            for m in range(m0, m1):
                optim.all_finite(params[m])
        for s in range(plan.steps):
            start = s * batch
            nb = min(batch, n - start)
            if shared and part == TRANSPOSES:
                gather_batch(x, order[0][start:start + nb], nb, scratch, lay, arch.ld, bp,
                             parts)
            for m in range(m0, m1):
                rows = order[0 if shared else m][start:start + nb]
                p = params[m]
                if part <= GEMM_DX:
                    _gemms(part, p, g, arch, m, scratch, lay, bp, nb, parts, step0 + s)
                elif part == TRANSPOSES:
                    if not shared:
                        gather_batch(x, rows, nb, scratch, lay, arch.ld, bp, parts)
                    _transposes(scratch, lay, arch, bp, nb, parts)
                elif part == ELEMENTWISE:
                    if parts is not None:
                        _elementwise_split(p, g, arch, m, scratch, lay, bp, nb, parts, step0 + s)
                    else:
                        _elementwise(p, g, arch, m, scratch, lay, bp, nb, step0 + s)
                elif part == NORMALIZATION:
                    if parts is not None:
                        _normalization_split(p, g, arch, m, scratch, lay, bp, nb, parts,
                                             step0 + s)
                    else:
                        _normalization(p, g, arch, m, scratch, lay, bp, nb, step0 + s)
                elif part == LOSS:
                    batch_loss(loss_code, scratch, lay, L, arch.dims[L], bp, nb, y, t, rows,
                               ybuf)
                elif part == OPTIMIZER:
                    optim.all_finite(g)
                    if parts is not None:
                        split.update_split(arch, opt.code, p, g, s1[m], s2[m], opt.lr[m],
                                           opt.momentum[m], opt.beta1, opt.beta2, opt.eps,
                                           opt.weight_decay[m], step0 + s + 1, parts)
                    else:
                        optim.update(opt.code, p, g, s1[m], s2[m], opt.lr[m], opt.momentum[m],
                                     opt.beta1, opt.beta2, opt.eps, opt.weight_decay[m],
                                     step0 + s + 1)


@kernel
def replay(lo, hi, part, params, s1, s2, x, y, t, order, arch, loss_code, opt, plan,
           template, work, grad):
    """``part`` of train_epoch: members lo..hi-1 (fastinit.spread: runs per thread), on
    this thread's ``work`` and ``grad``."""
    _members(part, lo, hi, None, params, s1, s2, x, y, t, order, arch, loss_code, opt, plan,
             template, work, grad)


@kernel
def replay_split(part, params, s1, s2, x, y, t, order, arch, loss_code, opt, plan, template,
                 work, grad, parts):
    """``part`` of train_epoch_split: every member on ``work`` and ``grad``,
    products over ``parts`` threads."""
    _members(part, dense.ROW0, params.shape[0], parts, params, s1, s2, x, y, t, order, arch,
             loss_code, opt, plan, template, work, grad)


@kernel
def snapshot(params, x, y, t, order, arch, loss_code, batch, template):
    """Member 0's scratch (``template``, zeros of dense.layout's total) after the forward and
    backward pass of its first training batch: the values the epoch's passes see (some cost
    depends on them: erf, exp and tanh take longer on some arguments than on others)."""
    bp = padded(batch)
    lay = dense.layout(arch, bp)
    L = arch.dims.shape[0] - 1
    nb = min(batch, x.shape[0])
    rows = order[0][:nb]
    p = params[0]
    g = np.zeros(params.shape[1], dtype=params.dtype)
    ybuf = np.empty(bp, dtype=np.int64)
    dense.gather(x, rows, nb, template, lay.aoff[0], lay.x0, arch.ld[0], bp)
    m = step = dense.ROW0               # member 0, training step 0
    dense.forward(p, arch, m, template, lay, bp, nb, step)
    batch_loss(loss_code, template, lay, L, arch.dims[L], bp, nb, y, t, rows, ybuf)
    dense.backward(p, g, arch, m, template, lay, bp, nb, step)


@pkernel
def triad(a, b, c, s, reps):
    """a = b + s c, ``reps`` times, over the threads: 3 arrays of traffic per element."""
    for _ in range(reps):
        for i in prange(a.shape[0]):
            a[i] = b[i] + s * c[i]
