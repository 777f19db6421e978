"""One member's passes with each product's rows split over threads: a population smaller than
the thread count (fastinit.spread.splits) trains its members one after another this way
(train.train_epoch_split). Plain networks only (no residual layer, no layer norm: their passes
mix rows). Every value is the one dense.forward and dense.backward compute: splitting C's rows
changes no element's arithmetic (each is the same fma chain), a row's bias, activation and
batch-norm statistics never depend on how the rows are cut, and the batch gather and transposes
are copies. Shapes and the scratch layout as in dense.py.
"""
import numpy as np
from numba import prange

from ._config import jit, pjit
from . import activations, dense, optim
from .dense import bias_grad, dropout, hidden_backward, normalize, normalize_backward
from .gemm import EPI_NONE, LANES, MR, gemm_act, gemm_grad


@pjit
def gather_split(x, rows, nb, scratch, a0, x0, ld0, bp, parts):
    """gather with its row copies, then its transpose's features, split over ``parts``
    threads (the same values: copies)."""
    size = (nb + parts - 1) // parts
    for c in prange(parts):
        dense.copy_rows(x, rows, c * size, min(nb, (c + 1) * size), scratch, x0, ld0)
    d0 = x.shape[1]
    size, nch = tile_chunks(d0, parts)
    for c in prange(nch):
        dense.transpose_inputs(scratch, a0, x0, ld0, bp, nb, c * size, min(d0, (c + 1) * size))


@pjit
def transpose_acts_split(scratch, a_in, xt, din, ldl, bp, nb, parts):
    """transpose_acts with the samples split over ``parts`` threads (the same values)."""
    size, nch = tile_chunks(nb, parts)
    for c in prange(nch):
        dense.acts_t(scratch, a_in, xt, din, ldl, bp, c * size, min(nb, (c + 1) * size))


@jit
def tile_chunks(m, parts):
    """row_chunks for a transpose: chunks of whole tiles (LANES values, a multiple of every
    tile width)."""
    chunk = ((m + parts - 1) // parts + LANES - 1) // LANES * LANES
    return chunk, (m + chunk - 1) // chunk


@jit
def row_chunks(m, parts):
    """Boundaries of `parts` chunks of m rows, each a multiple of MR rows (a block) but the
    last."""
    chunk = ((m + parts - 1) // parts + MR - 1) // MR * MR
    return chunk, (m + chunk - 1) // chunk


@jit
def _piece(arch, l, c, parts, k):
    """Piece k of the parameters thread c owns in layer l: its rows of W (k = 0), of the bias
    (1), of gamma (2) and of beta (3), the rows row_chunks gives it in the layer's forward
    and dW products; (a, a) when there is none."""
    d = arch.dims[l + 1]
    chunk, nch = row_chunks(d, parts)
    r0, r1 = min(d, c * chunk), min(d, (c + 1) * chunk)
    if k == 0:
        return arch.woff[l] + r0 * arch.ld[l], arch.woff[l] + r1 * arch.ld[l]
    if k == 1:
        return (arch.boff[l] + r0, arch.boff[l] + r1) if arch.boff[l] >= 0 else (0, 0)
    if arch.goff[l] < 0:
        return 0, 0
    start = arch.goff[l] + (d if k == 3 else 0)
    return start + r0, start + r1


@jit
def _rest(arch):
    """Where the parameters no layer's rows own begin (none in a plain network: the last
    layer has no norm)."""
    L = arch.dims.shape[0] - 1
    d = arch.dims[L]
    return arch.boff[L - 1] + d if arch.boff[L - 1] >= 0 else arch.woff[L - 1] + d * arch.ld[L - 1]


@pjit
def update_split(arch, code, p, g, s1, s2, lr, mu, beta1, beta2, eps, wd, step, parts):
    """optim.update with each layer's rows of W, bias, gamma and beta on the thread whose
    forward and dW products read and wrote them (_piece), thread 0 also the rest: the update
    is elementwise, so every value is the one a single call gives, and a thread updates what
    its own cache holds."""
    for c in prange(parts):
        for l in range(arch.dims.shape[0] - 1):
            for k in range(4):
                a, b = _piece(arch, l, np.int64(c), parts, k)
                if a < b:
                    optim.update(code, p[a:b], g[a:b], s1[a:b] if s1.shape[0] else s1,
                                 s2[a:b] if s2.shape[0] else s2, lr, mu, beta1, beta2, eps, wd,
                                 step)
        a = _rest(arch)
        if c == 0 and a < p.shape[0]:
            optim.update(code, p[a:], g[a:], s1[a:] if s1.shape[0] else s1,
                         s2[a:] if s2.shape[0] else s2, lr, mu, beta1, beta2, eps, wd, step)


@jit
def forward_rows(p, arch, m, scratch, lay, l, r0, r1, bp, epi):
    """Rows r0..r1 of layer l's forward product, the bias and the epilogue ``epi``
    (dense.act_epilogue) in it, as dense.forward computes them."""
    ld, L = arch.ld, arch.dims.shape[0] - 1
    bo = arch.boff[l]
    out = lay.aoff[l + 1] if l + 1 < L else lay.zoff[l]
    gemm_act(scratch, lay.zoff[l] + r0 * bp, bp, p, arch.woff[l] + r0 * ld[l], ld[l], 1,
             scratch, lay.aoff[l], bp, r1 - r0, bp, arch.dims[l], p, bo + r0 if bo >= 0 else bo,
             epi, out + r0 * bp, arch.act_param[m, l])


@jit
def dw_rows(p, g, arch, scratch, l, cur, a_rows, r0, r1, bp, nb):
    """Rows r0..r1 of layer l's dW = dZ (at cur) A (its rows at a_rows), as dense.backward."""
    ldl = arch.ld[l]
    gemm_act(g, arch.woff[l] + r0 * ldl, ldl, scratch, cur + r0 * bp, bp, 1, scratch, a_rows,
             ldl, r1 - r0, ldl, nb, p, dense.NO_BIAS, dense.NO_EPILOGUE, dense.ROW0,
             dense.NO_PARAM)


@jit
def dx_rows(p, arch, m, scratch, l, out, cur, r0, r1, bp, epi, deriv):
    """Rows r0..r1 of dA_l = W_l^T dZ (at cur) into out, times phi'(Z_{l-1}) read at deriv
    when ``epi`` (dense.grad_epilogue, dense.deriv_at), as dense.backward."""
    ldl = arch.ld[l]
    gemm_grad(scratch, out + r0 * bp, bp, p, arch.woff[l] + r0, 1, ldl, scratch, cur, bp,
              r1 - r0, bp, arch.dims[l + 1], epi, deriv + r0 * bp, arch.act_param[m, l - 1])


@pjit
def forward_split(p, arch, m, scratch, lay, bp, nb, parts, step):
    """forward for plain networks (no skip, no layer norm), each product's rows split, the
    bias and activation in the GEMM's epilogue where dense.forward puts them."""
    aoff, zoff = lay.aoff, lay.zoff
    L = arch.dims.shape[0] - 1
    for l in range(L):
        dout = arch.dims[l + 1]
        epi = dense.act_epilogue(arch, m, l, step)
        chunk, nch = row_chunks(dout, parts)
        for c in prange(nch):
            r0 = c * chunk
            r1 = min(dout, r0 + chunk)
            forward_rows(p, arch, m, scratch, lay, l, r0, r1, bp, epi)
            if l + 1 < L:
                normalize(p, arch, m, scratch, lay, l, r0, r1, bp, nb, step)   # batch norm
                if epi == EPI_NONE:
                    activations.forward(arch.act[l], arch.act_param[m, l],
                                        scratch[zoff[l] + r0 * bp:zoff[l] + r1 * bp],
                                        scratch[aoff[l + 1] + r0 * bp:aoff[l + 1] + r1 * bp])
                if step >= 0 and arch.dropout[m] > 0:
                    dropout(scratch, aoff[l + 1], r0, r1, bp, l, step, arch, m)


@pjit
def backward_split(p, g, arch, m, scratch, lay, bp, nb, parts, step):
    """backward for plain networks (no skip, no layer norm), each product's rows split, the
    derivative in the GEMM's epilogue where dense.backward puts it."""
    dims, ld, boff = arch.dims, arch.ld, arch.boff
    L = dims.shape[0] - 1
    cur, other = lay.dz, lay.da
    for l in range(L - 1, -1, -1):
        din, dout = dims[l], dims[l + 1]
        a_rows = lay.x0 if l == 0 else lay.xt
        if l > 0:
            transpose_acts_split(scratch, lay.aoff[l], lay.xt, din, ld[l], bp, nb, parts)
        chunk, nch = row_chunks(dout, parts)
        for c in prange(nch):
            r0 = c * chunk
            r1 = min(dout, r0 + chunk)
            normalize_backward(p, g, arch, scratch, lay, l, cur, r0, r1, bp, nb, step)
            dw_rows(p, g, arch, scratch, l, cur, a_rows, r0, r1, bp, nb)
            if boff[l] >= 0:
                bias_grad(g, boff[l], scratch, cur, r0, r1, bp, nb)
        if l > 0:
            epi = dense.grad_epilogue(arch, m, l, step)
            deriv = dense.deriv_at(arch, m, l, step, lay)
            chunk, nch = row_chunks(din, parts)
            for c in prange(nch):
                r0 = c * chunk
                r1 = min(din, r0 + chunk)
                dx_rows(p, arch, m, scratch, l, other, cur, r0, r1, bp, epi, deriv)
                if epi == EPI_NONE:
                    hidden_backward(arch, m, l - 1, step, scratch, lay, other, r0, r1, bp)
            cur, other = other, cur
