"""Register transposes: a square tile of one vector register's width transposed in registers
(butterfly shuffles), and a matrix of any shape by such tiles and its edges element by element.
A layer's activations are stored features x batch; the weight gradient dW = dZ A reads A with
samples as rows (dense.transpose_acts), and the batch is gathered as rows then transposed."""
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ._config import jit
from . import gemm
from .gemm import _vector


@intrinsic
def _transpose_tile(typingctx, dst, d_off, ldd, src, s_off, lds):
    """dst[d_off + c * ldd + r] = src[s_off + r * lds + c] for r, c < w, w the values of one
    vector register: w vector loads, log2(w) butterfly stages of two-source shuffles, w vector
    stores."""
    sig = types.void(dst, d_off, ldd, src, s_off, lds)
    vty = _vector(dst.dtype)
    w = vty.count

    def codegen(context, builder, sig, args):
        tys = sig.args
        i64 = ir.IntType(64)
        d_off, ldd, s_off, lds = (context.cast(builder, args[k], tys[k], types.int64)
                                  for k in (1, 2, 4, 5))
        dptr = context.make_array(tys[0])(context, builder, args[0]).data
        sptr = context.make_array(tys[3])(context, builder, args[3]).data
        vptr = vty.as_pointer()
        const = lambda v: ir.Constant(i64, v)
        rows = [builder.load(builder.bitcast(builder.gep(sptr, [builder.add(
            s_off, builder.mul(const(r), lds))]), vptr), align=4) for r in range(w)]
        i32 = ir.IntType(32)
        step = w // 2
        while step:
            lo = ir.Constant(ir.VectorType(i32, w),
                             [j if j & step == 0 else w + j - step for j in range(w)])
            hi = ir.Constant(ir.VectorType(i32, w),
                             [j + step if j & step == 0 else w + j for j in range(w)])
            new = list(rows)
            for r in range(w):
                if r & step:
                    continue
                new[r] = builder.shuffle_vector(rows[r], rows[r + step], lo)
                new[r + step] = builder.shuffle_vector(rows[r], rows[r + step], hi)
            rows = new
            step //= 2
        for c in range(w):
            p = builder.bitcast(builder.gep(dptr, [builder.add(d_off, builder.mul(const(c),
                                                                                  ldd))]), vptr)
            builder.store(rows[c], p, align=4)
        return context.get_dummy_value()

    return sig, codegen


@jit
def transpose(dst, d_off, ldd, src, s_off, lds, rows, cols):
    """dst[d_off + c * ldd + r] = src[s_off + r * lds + c] for r < rows, c < cols: square tiles
    of one vector register's width in registers, the edges element by element."""
    w = gemm.VBYTES // dst.itemsize      # read when compiled, as _vector reads it
    rw = rows - rows % w
    cw = cols - cols % w
    for r0 in range(0, rw, w):
        for c0 in range(0, cw, w):
            _transpose_tile(dst, d_off + c0 * ldd + r0, ldd, src, s_off + r0 * lds + c0, lds)
    for r in range(rw, rows):
        for c in range(cols):
            dst[d_off + c * ldd + r] = src[s_off + r * lds + c]
    for r in range(rw):
        for c in range(cw, cols):
            dst[d_off + c * ldd + r] = src[s_off + r * lds + c]
