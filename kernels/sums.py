"""A sum in a fixed order on every machine, eight lanes wide: ``fixed_sum(x)``.

The order is that of eight interleaved partial sums, s_j = x[j] + x[j + 8] + x[j + 16] + ...
(the elements past the last whole block of eight added to s_0, in turn), then the fixed tree
((s_0 + s_1) + (s_2 + s_3)) + ((s_4 + s_5) + (s_6 + s_7)). Written as eight scalar sums, LLVM
kept them scalar (Numba runs no SLP vectoriser): two additions a cycle, a [64, 64, 64, 10]
population's bias gradients about 4% of its epoch. Here the eight partial sums are one
vector register of eight lanes, built in LLVM IR: one vector addition per block of eight, the
same IEEE additions in the same order, so the same bits as the scalar form (no fast-math).
"""
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

LANES = 8


@intrinsic
def fixed_sum(typingctx, x):
    """The sum of the contiguous 1-D float array ``x`` in the order above (its dtype)."""
    if not (isinstance(x, types.Array) and x.ndim == 1 and x.layout == "C"
            and x.dtype in (types.float32, types.float64)):
        return None
    sig = x.dtype(x)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        n = builder.extract_value(ary.shape, 0)
        ftype = context.get_value_type(signature.args[0].dtype)
        vtype = ir.VectorType(ftype, LANES)
        i64 = ir.IntType(64)
        lanes = ir.Constant(i64, LANES)
        acc = cgutils.alloca_once_value(builder, ir.Constant(vtype, [0.0] * LANES))
        blocks = builder.sdiv(n, lanes)
        with cgutils.for_range(builder, blocks) as loop:
            at = builder.gep(ary.data, [builder.mul(loop.index, lanes)])
            block = builder.load(builder.bitcast(at, vtype.as_pointer()),
                                 align=context.get_abi_sizeof(ftype))
            builder.store(builder.fadd(builder.load(acc), block), acc)
        vec = builder.load(acc)
        s0 = cgutils.alloca_once_value(builder, builder.extract_element(vec, ir.Constant(i64, 0)))
        tail = builder.mul(blocks, lanes)
        with cgutils.for_range(builder, builder.sub(n, tail)) as loop:
            at = builder.gep(ary.data, [builder.add(tail, loop.index)])
            builder.store(builder.fadd(builder.load(s0), builder.load(at)), s0)
        s = [builder.load(s0)] + [builder.extract_element(vec, ir.Constant(i64, j))
                                  for j in range(1, LANES)]
        return builder.fadd(builder.fadd(builder.fadd(s[0], s[1]), builder.fadd(s[2], s[3])),
                            builder.fadd(builder.fadd(s[4], s[5]), builder.fadd(s[6], s[7])))
    return sig, codegen
