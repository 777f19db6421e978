"""One member's passes with each product's rows split over threads: a population smaller than
the thread count (fastinit.spread.splits) trains its members one after another this way
(train.train_epoch_split). Plain networks only (no residual layer, no layer norm: their passes
mix rows). Every value is the one dense.forward and dense.backward compute: splitting C's rows
changes no element's arithmetic (each is the same fma chain), a row's bias, activation and
batch-norm statistics never depend on how the rows are cut, and the batch gather and transposes
are copies. Shapes and the scratch layout as in dense.py.
"""
from numba import prange

from ._config import jit, pjit
from . import activations, dense
from .dense import add_bias, bias_grad, dropout, hidden_backward, normalize, normalize_backward
from .gemm import LANES, MR, gemm_rows


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


@pjit
def forward_split(p, arch, m, scratch, lay, bp, nb, parts, step):
    """forward for plain networks (no skip, no layer norm), each product's rows split."""
    dims, ld, woff, boff = arch.dims, arch.ld, arch.woff, arch.boff
    aoff, zoff = lay.aoff, lay.zoff
    L = dims.shape[0] - 1
    for l in range(L):
        dout = dims[l + 1]
        chunk, nch = row_chunks(dout, parts)
        for c in prange(nch):
            r0 = c * chunk
            r1 = min(dout, r0 + chunk)
            gemm_rows(scratch, zoff[l], bp, p, woff[l], ld[l], 1, scratch, aoff[l], bp, r0, r1,
                      bp, dims[l], 0)
            if boff[l] >= 0:
                add_bias(p, boff[l], scratch, zoff[l], r0, r1, bp)
            if l + 1 < L:
                normalize(p, arch, m, scratch, lay, l, r0, r1, bp, nb, step)   # batch norm
                activations.forward(arch.act[l], arch.act_param[m, l],
                                    scratch[zoff[l] + r0 * bp:zoff[l] + r1 * bp],
                                    scratch[aoff[l + 1] + r0 * bp:aoff[l + 1] + r1 * bp])
                if step >= 0 and arch.dropout[m] > 0:
                    dropout(scratch, aoff[l + 1], r0, r1, bp, l, step, arch, m)


@pjit
def backward_split(p, g, arch, m, scratch, lay, bp, nb, parts, step):
    """backward for plain networks (no skip, no layer norm), each product's rows split."""
    dims, ld, woff, boff = arch.dims, arch.ld, arch.woff, arch.boff
    aoff, xt = lay.aoff, lay.xt
    L = dims.shape[0] - 1
    cur, other = lay.dz, lay.da
    for l in range(L - 1, -1, -1):
        din, dout, ldl = dims[l], dims[l + 1], ld[l]
        a_rows = lay.x0 if l == 0 else xt
        if l > 0:
            transpose_acts_split(scratch, aoff[l], xt, din, ldl, bp, nb, parts)
        chunk, nch = row_chunks(dout, parts)
        for c in prange(nch):
            r0 = c * chunk
            r1 = min(dout, r0 + chunk)
            normalize_backward(p, g, arch, scratch, lay, l, cur, r0, r1, bp, nb, step)
            gemm_rows(g, woff[l], ldl, scratch, cur, bp, 1, scratch, a_rows, ldl, r0, r1, ldl,
                      nb, 0)
            if boff[l] >= 0:
                bias_grad(g, boff[l], scratch, cur, r0, r1, bp, nb)
        if l > 0:
            chunk, nch = row_chunks(din, parts)
            for c in prange(nch):
                r0 = c * chunk
                r1 = min(din, r0 + chunk)
                gemm_rows(scratch, other, bp, p, woff[l], 1, ldl, scratch, cur, bp, r0, r1, bp,
                          dout, 0)
                hidden_backward(arch, m, l - 1, step, scratch, lay, other, r0, r1, bp)
            cur, other = other, cur
