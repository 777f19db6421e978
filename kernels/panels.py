"""Packed panels of B for the GEMM (gemm.py): B's NR columns copied, KC rows at a time, into a
contiguous array on the stack that stays in L1 while every block of rows of C reads it.

Read in place, the rows of a deep product leave L1 between row blocks, and rows whose stride is
a power of two (a batch of 128, a layer of 256) fall into a few cache sets and evict each
other. A product is packed when it is deeper than PACK_K and more than PACK_ROWS rows share
each panel; smaller ones (a population of 64-wide networks) are read in place, where the copy
would cost more than it saves.
"""
from llvmlite import ir
from numba import types
from numba.extending import intrinsic
from numba.np.arrayobj import populate_array

from ._config import jit

KC = 256                  # rows of B per panel: 32 KB of float32 at NR = 32, in L1
PANEL_BYTES = 128         # bytes of a panel's row: NR values at the widest vectors (AVX-512)
PACK_K, PACK_ROWS = 128, 24   # B is packed for products deeper than this, over more rows


@intrinsic
def panel(typingctx, like):
    """An array of KC rows of PANEL_BYTES of the 1-D array type ``like``, on the calling
    function's stack (a static alloca: no allocation, nothing to free): a packed panel of B."""
    count = KC * PANEL_BYTES // (like.dtype.bitwidth // 8)
    sig = like(like)

    def codegen(context, builder, sig, args):
        llty = context.get_data_type(like.dtype)
        with builder.goto_entry_block():
            store = builder.alloca(ir.ArrayType(llty, count), name="panel")
        store.align = 64
        intp = context.get_value_type(types.intp)
        size = context.get_abi_sizeof(llty)
        ary = context.make_array(like)(context, builder)
        populate_array(ary, data=builder.bitcast(store, llty.as_pointer()),
                       shape=[ir.Constant(intp, count)], strides=[ir.Constant(intp, size)],
                       itemsize=ir.Constant(intp, size), meminfo=None)
        return ary._getvalue()
    return sig, codegen


@jit(forceinline=True)
def packs(rows, k):
    """Whether a product of ``rows`` rows of C and depth ``k`` reads B from panels."""
    return k > PACK_K and rows > PACK_ROWS


@jit(forceinline=True)
def pack(out, b, b_off, ldb, kc, two, w):
    """B's rows b_off + p * ldb, p < kc, w values (half as many unless ``two``) each, into
    the rows of w of a panel ``out``."""
    width = w if two else w // 2
    for p in range(kc):
        for q in range(width):
            out[p * w + q] = b[b_off + p * ldb + q]
