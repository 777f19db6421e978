"""Register-blocked matrix multiply for small dense layers, written as LLVM vector IR.

    C[M, N] (+)= A[M, K] @ B[K, N]

C and B are row-major with row strides ``ldc`` and ``ldb``; A is read through two strides
(``a_rs`` between rows, ``a_ks`` along K), so W and W^T are the same call. N must be a multiple
of LANES (16 values): callers pad. An MR x (NV * LANES) block of C lives in vector registers
while K streams past: per k, NV vector loads of a B row, MR broadcasts of A, MR * NV fused
multiply-adds. Every C element is fma(a_k, b_k, acc) for k = 0, 1, ..., K-1 from acc = 0 (or C):
exactly rounded, in one fixed order, so results do not depend on the blocking, the thread count
or the machine's vector width (LLVM splits a 16-lane vector into whatever the CPU has).

The micro-kernels are Numba intrinsics generated here for MR = 1..MR_MAX and NV = 1, 2;
``gemm`` walks the blocks and picks the variant for each edge.
"""
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._config import jit

LANES = 16   # values per vector block and padding granularity (float32: one zmm; float64: two)
MR_MAX = 8   # rows of C per micro-kernel


def _block_kernel(mr, nv):
    """Intrinsic: C[mr, nv*LANES] (+)= A[mr, kc] B[kc, nv*LANES] at the given offsets."""

    @intrinsic
    def block(typingctx, c, c_off, ldc, a, a_off, a_rs, a_ks, b, b_off, ldb, kc, accumulate):
        sig = types.void(c, c_off, ldc, a, a_off, a_rs, a_ks, b, b_off, ldb, kc, accumulate)
        is64 = c.dtype == types.float64
        width = LANES // 2 if is64 else LANES  # elements per LLVM vector below; NV doubles it

        def codegen(context, builder, sig, args):
            tys = sig.args
            i64 = ir.IntType(64)

            def as_i64(k):
                return context.cast(builder, args[k], tys[k], types.int64)

            c_off, ldc, a_off, a_rs, a_ks, b_off, ldb, kc, acc_flag = (
                as_i64(k) for k in (1, 2, 4, 5, 6, 8, 9, 10, 11))
            cptr = context.make_array(tys[0])(context, builder, args[0]).data
            aptr = context.make_array(tys[3])(context, builder, args[3]).data
            bptr = context.make_array(tys[7])(context, builder, args[7]).data
            fty = ir.DoubleType() if is64 else ir.FloatType()
            vty = ir.VectorType(fty, width)
            vptr = vty.as_pointer()
            fma = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(vty, [vty, vty, vty]),
                f"llvm.fma.v{width}f{64 if is64 else 32}")
            nvec = nv * (LANES // width)
            zero = ir.Constant(vty, [0.0] * width)
            accumulate = builder.icmp_signed("!=", acc_flag, ir.Constant(i64, 0))
            const = lambda v: ir.Constant(i64, v)
            slots = []
            for r in range(mr):
                row = []
                for v in range(nvec):
                    slot = cgutils.alloca_once(builder, vty)
                    off = builder.add(c_off, builder.add(builder.mul(const(r), ldc),
                                                         const(v * width)))
                    p = builder.bitcast(builder.gep(cptr, [off]), vptr)
                    builder.store(builder.select(accumulate, builder.load(p, align=4), zero),
                                  slot)
                    row.append((slot, p))
                slots.append(row)
            undef = ir.Constant(vty, ir.Undefined)
            splat = ir.Constant(ir.VectorType(ir.IntType(32), width), [0] * width)
            with cgutils.for_range(builder, kc) as loop:
                k = loop.index
                brow = builder.add(b_off, builder.mul(k, ldb))
                bvec = [builder.load(builder.bitcast(
                    builder.gep(bptr, [builder.add(brow, const(v * width))]), vptr), align=4)
                    for v in range(nvec)]
                acol = builder.add(a_off, builder.mul(k, a_ks))
                for r in range(mr):
                    s = builder.load(builder.gep(aptr, [builder.add(acol,
                                                                    builder.mul(const(r), a_rs))]))
                    sv = builder.shuffle_vector(
                        builder.insert_element(undef, s, ir.Constant(ir.IntType(32), 0)),
                        undef, splat)
                    for v in range(nvec):
                        slot = slots[r][v][0]
                        builder.store(builder.call(fma, [sv, bvec[v], builder.load(slot)]), slot)
            for row in slots:
                for slot, p in row:
                    builder.store(builder.load(slot), p, align=4)
            return context.get_dummy_value()

        return sig, codegen

    return block


_k11, _k21, _k31, _k41, _k51, _k61, _k71, _k81 = (_block_kernel(m, 1) for m in range(1, 9))
_k12, _k22, _k32, _k42, _k52, _k62, _k72, _k82 = (_block_kernel(m, 2) for m in range(1, 9))


@jit(forceinline=True)
def _block(mr, two, c, co, ldc, a, ao, a_rs, a_ks, b, bo, ldb, kc, acc):
    if two:
        if mr == 8:
            _k82(c, co, ldc, a, ao, a_rs, a_ks, b, bo, ldb, kc, acc)
        elif mr == 7:
            _k72(c, co, ldc, a, ao, a_rs, a_ks, b, bo, ldb, kc, acc)
        elif mr == 6:
            _k62(c, co, ldc, a, ao, a_rs, a_ks, b, bo, ldb, kc, acc)
        elif mr == 5:
            _k52(c, co, ldc, a, ao, a_rs, a_ks, b, bo, ldb, kc, acc)
        elif mr == 4:
            _k42(c, co, ldc, a, ao, a_rs, a_ks, b, bo, ldb, kc, acc)
        elif mr == 3:
            _k32(c, co, ldc, a, ao, a_rs, a_ks, b, bo, ldb, kc, acc)
        elif mr == 2:
            _k22(c, co, ldc, a, ao, a_rs, a_ks, b, bo, ldb, kc, acc)
        else:
            _k12(c, co, ldc, a, ao, a_rs, a_ks, b, bo, ldb, kc, acc)
    else:
        if mr == 8:
            _k81(c, co, ldc, a, ao, a_rs, a_ks, b, bo, ldb, kc, acc)
        elif mr == 7:
            _k71(c, co, ldc, a, ao, a_rs, a_ks, b, bo, ldb, kc, acc)
        elif mr == 6:
            _k61(c, co, ldc, a, ao, a_rs, a_ks, b, bo, ldb, kc, acc)
        elif mr == 5:
            _k51(c, co, ldc, a, ao, a_rs, a_ks, b, bo, ldb, kc, acc)
        elif mr == 4:
            _k41(c, co, ldc, a, ao, a_rs, a_ks, b, bo, ldb, kc, acc)
        elif mr == 3:
            _k31(c, co, ldc, a, ao, a_rs, a_ks, b, bo, ldb, kc, acc)
        elif mr == 2:
            _k21(c, co, ldc, a, ao, a_rs, a_ks, b, bo, ldb, kc, acc)
        else:
            _k11(c, co, ldc, a, ao, a_rs, a_ks, b, bo, ldb, kc, acc)


@jit
def gemm(c, c_off, ldc, a, a_off, a_rs, a_ks, b, b_off, ldb, m, n, k, accumulate):
    """C[m, n] (+)= A[m, k] @ B[k, n] on flat arrays; n a multiple of LANES.

    C at c[c_off + i * ldc + j], A at a[a_off + i * a_rs + p * a_ks], B at b[b_off + p * ldb + j].
    accumulate = 0 overwrites C, 1 adds to it. k = 0 writes zeros (or leaves C).
    """
    nr = 2 * LANES
    for j0 in range(0, n, nr):
        two = n - j0 >= nr
        for i0 in range(0, m, MR_MAX):
            _block(min(MR_MAX, m - i0), two, c, c_off + i0 * ldc + j0, ldc, a, a_off + i0 * a_rs,
                   a_rs, a_ks, b, b_off + j0, ldb, k, accumulate)


@jit
def gemm_rows(c, c_off, ldc, a, a_off, a_rs, a_ks, b, b_off, ldb, i0, i1, n, k, accumulate):
    """Rows i0..i1-1 of gemm: the unit of work when one product is split across threads."""
    nr = 2 * LANES
    for j0 in range(0, n, nr):
        two = n - j0 >= nr
        for r0 in range(i0, i1, MR_MAX):
            _block(min(MR_MAX, i1 - r0), two, c, c_off + r0 * ldc + j0, ldc, a,
                   a_off + r0 * a_rs, a_rs, a_ks, b, b_off + j0, ldb, k, accumulate)


@intrinsic
def _transpose16(typingctx, dst, d_off, ldd, src, s_off, lds):
    """dst[d_off + c * ldd + r] = src[s_off + r * lds + c] for r, c < 16: sixteen vector loads,
    four butterfly stages of two-source shuffles, sixteen vector stores."""
    sig = types.void(dst, d_off, ldd, src, s_off, lds)
    is64 = dst.dtype == types.float64

    def codegen(context, builder, sig, args):
        tys = sig.args
        i64 = ir.IntType(64)
        d_off, ldd, s_off, lds = (context.cast(builder, args[k], tys[k], types.int64)
                                  for k in (1, 2, 4, 5))
        dptr = context.make_array(tys[0])(context, builder, args[0]).data
        sptr = context.make_array(tys[3])(context, builder, args[3]).data
        vty = ir.VectorType(ir.DoubleType() if is64 else ir.FloatType(), 16)
        vptr = vty.as_pointer()
        const = lambda v: ir.Constant(i64, v)
        rows = [builder.load(builder.bitcast(builder.gep(sptr, [builder.add(
            s_off, builder.mul(const(r), lds))]), vptr), align=4) for r in range(16)]
        i32 = ir.IntType(32)
        for step in (8, 4, 2, 1):
            lo = ir.Constant(ir.VectorType(i32, 16),
                             [j if j & step == 0 else 16 + j - step for j in range(16)])
            hi = ir.Constant(ir.VectorType(i32, 16),
                             [j + step if j & step == 0 else 16 + j for j in range(16)])
            new = list(rows)
            for r in range(16):
                if r & step:
                    continue
                new[r] = builder.shuffle_vector(rows[r], rows[r + step], lo)
                new[r + step] = builder.shuffle_vector(rows[r], rows[r + step], hi)
            rows = new
        for c in range(16):
            p = builder.bitcast(builder.gep(dptr, [builder.add(d_off, builder.mul(const(c),
                                                                                  ldd))]), vptr)
            builder.store(rows[c], p, align=4)
        return context.get_dummy_value()

    return sig, codegen


@jit
def transpose(dst, d_off, ldd, src, s_off, lds, rows, cols):
    """dst[d_off + c * ldd + r] = src[s_off + r * lds + c] for r < rows, c < cols: 16 x 16 tiles
    in registers, the edges element by element."""
    r16 = rows - rows % 16
    c16 = cols - cols % 16
    for r0 in range(0, r16, 16):
        for c0 in range(0, c16, 16):
            _transpose16(dst, d_off + c0 * ldd + r0, ldd, src, s_off + r0 * lds + c0, lds)
    for r in range(r16, rows):
        for c in range(cols):
            dst[d_off + c * ldd + r] = src[s_off + r * lds + c]
    for r in range(r16):
        for c in range(c16, cols):
            dst[d_off + c * ldd + r] = src[s_off + r * lds + c]


@jit
def padded(n):
    """n rounded up to a multiple of LANES (the padding of rows and batches)."""
    return ((n + LANES - 1) // LANES) * LANES
