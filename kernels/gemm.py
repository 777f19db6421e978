"""Register-blocked matrix multiply for small dense layers, written as LLVM vector IR.

    C[M, N] (+)= A[M, K] @ B[K, N]

C and B are row-major with row strides ``ldc`` and ``ldb``; A is read through two strides
(``a_rs`` between rows, ``a_ks`` along K), so W and W^T are the same call. N must be a multiple
of LANES (16 values): callers pad. An MR x NR block of C lives in vector registers while K
streams past: per k, two vector loads of a B row, MR broadcasts of A, 2 MR fused multiply-adds.
Every C element is fma(a_k, b_k, acc) for k = 0, 1, ..., K-1 from acc = 0 (or C): exactly
rounded, in one fixed order, so results do not depend on the blocking, the thread count or the
machine's vector width. A deep product over many rows reads B from packed panels
(panels.py): the same chain, the same bits.

The block fits the register file of the CPU Numba compiles for: NR is two vector registers
of the dtype (``vector_bytes``; AVX-512: 32 float32 or 16 float64, AVX2: 16 or 8, SSE: 8 or 4)
and MR = 6 rows, so the 12 accumulators, two B vectors and a broadcast fit in 16 registers
(AVX2, SSE) and, where LLVM prefers 256-bit vectors on an AVX-512 CPU and splits each in two,
in 32. (A 32-column float32 block of 8 rows needs 32 of AVX2's 16 registers: it ran at a third
of the speed.) Compiled code is cached per CPU, so the choice is made where the code runs.
``_block`` is one intrinsic: a switch over the block's rows (and, where N can end in half a
block, its width) to a micro-kernel for each.

A dense layer's elementwise work can finish a block while it is still in registers:
``gemm_act`` adds the bias and writes the activation (relu, leaky relu, or Z itself for a
linear layer), ``gemm_grad`` multiplies dA by relu'(Z) or leaky relu'(Z). Each is the same
IEEE operation, in the same order, as the separate pass it replaces (dense.add_bias,
activations.forward / backward), so the same bits (tests/test_kernels.py); a pass over the
whole layer from L1 or L2 is saved (a population of 64 [64, 64, 64, 10] networks: 8.3 -> 5.9
ms of an epoch outside the GEMMs).
"""
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.registry import cpu_target
from numba.extending import intrinsic

from ._config import jit, kernel
from .panels import KC, pack, packs, panel

LANES = 16   # padding granularity of N (rows of activations, batches): a multiple of every NR
EPI_NONE, EPI_RELU, EPI_COPY, EPI_LEAKY = 0, 1, 2, 3    # gemm_act's and gemm_grad's epilogues
EPI_NO_Z = 4     # added to gemm_act's EPI_RELU or EPI_LEAKY: A only, Z not stored


def vector_bytes(features: str | None = None) -> int:
    """Bytes per vector register of the CPU Numba compiles for (its target features,
    NUMBA_CPU_FEATURES included), or of a ``+avx2,-avx512f,...`` feature string."""
    if features is None:
        features = cpu_target.target_context.codegen()._get_host_cpu_features()
    on = {f[1:] for f in features.split(",") if f.startswith("+")}
    return 64 if "avx512f" in on else 32 if "avx" in on else 16


VBYTES = vector_bytes()
MR = 6                           # rows of C per block (see the docstring)
NO_BIAS = np.int64(-1)           # gemm_act's bias offset for none
_ROW0 = np.int64(0)              # an int64, not a literal: a literal 0 is a second signature


def _vector(dtype) -> ir.VectorType:
    """The LLVM vector of one register of ``dtype`` (a Numba float type) on this CPU."""
    is64 = dtype == types.float64
    return ir.VectorType(ir.DoubleType() if is64 else ir.FloatType(), VBYTES // (8 if is64 else 4))


def _emit(builder, ptrs, offs, accumulate, fma, mr, nvec, vty, epi=None):
    """The micro-kernel: C[mr, nvec vectors] (+)= A[mr, kc] B[kc, nvec vectors]; ``ptrs`` are
    C's, A's and B's data, ``offs`` gemm's offsets, strides and kc as i64 values; ``epi`` an
    epilogue (_act_epilogue, _grad_epilogue) and its values, or None."""
    cptr, aptr, bptr = ptrs
    c_off, ldc, a_off, a_rs, a_ks, b_off, ldb, kc = offs
    width = vty.count
    vptr = vty.as_pointer()
    zero = ir.Constant(vty, [0.0] * width)
    const = lambda v: ir.Constant(ir.IntType(64), v)
    slots = []
    for r in range(mr):
        row = []
        for v in range(nvec):
            slot = cgutils.alloca_once(builder, vty)
            off = builder.add(c_off, builder.add(builder.mul(const(r), ldc), const(v * width)))
            row.append((slot, builder.bitcast(builder.gep(cptr, [off]), vptr)))
        slots.append(row)
    with builder.if_else(accumulate) as (adding, overwriting):    # C is read only to add to
        with adding:
            for row in slots:
                for slot, p in row:
                    builder.store(builder.load(p, align=4), slot)
        with overwriting:
            for row in slots:
                for slot, _ in row:
                    builder.store(zero, slot)
    undef = ir.Constant(vty, ir.Undefined)
    splat = ir.Constant(ir.VectorType(ir.IntType(32), width), [0] * width)
    with cgutils.for_range(builder, kc) as loop:
        k = loop.index
        brow = builder.add(b_off, builder.mul(k, ldb))
        bvec = [builder.load(builder.bitcast(builder.gep(bptr, [builder.add(brow,
                                                                          const(v * width))]),
                                             vptr), align=4) for v in range(nvec)]
        acol = builder.add(a_off, builder.mul(k, a_ks))
        for r in range(mr):
            s = builder.load(builder.gep(aptr, [builder.add(acol, builder.mul(const(r), a_rs))]))
            sv = builder.shuffle_vector(
                builder.insert_element(undef, s, ir.Constant(ir.IntType(32), 0)), undef, splat)
            for v in range(nvec):
                slot = slots[r][v][0]
                builder.store(builder.call(fma, [sv, bvec[v], builder.load(slot)]), slot)
    if epi is None:
        for row in slots:
            for slot, p in row:
                builder.store(builder.load(slot), p, align=4)
    else:
        epi[0](builder, slots, epi[1], cptr, ldc, mr, vty)


def _vectors(builder, vty):
    """(zero, one, broadcast of a scalar) for ``vty`` vectors."""
    width = vty.count
    undef = ir.Constant(vty, ir.Undefined)
    splat = ir.Constant(ir.VectorType(ir.IntType(32), width), [0] * width)
    return (ir.Constant(vty, [0.0] * width), ir.Constant(vty, [1.0] * width),
            lambda s: builder.shuffle_vector(
                builder.insert_element(undef, s, ir.Constant(ir.IntType(32), 0)), undef, splat))


def _at(builder, cptr, off, ldc, r, v, vty):
    """A pointer to vector v of row r of the block at ``off`` (row stride ldc)."""
    const = lambda x: ir.Constant(ir.IntType(64), x)
    return builder.bitcast(builder.gep(cptr, [builder.add(off, builder.add(
        builder.mul(const(r), ldc), const(v * vty.count)))]), vty.as_pointer())


def _act_epilogue(builder, slots, values, cptr, ldc, mr, vty):
    """gemm_act's epilogue on a finished block: C + the row's bias (bias_off >= 0) stored to
    C (unless ``act`` carries EPI_NO_Z), and by ``act``: EPI_RELU stores relu(C), EPI_LEAKY C
    where C > 0 else param C, and EPI_COPY C itself, at o_off's block too."""
    bias, bias_off, act, o_off, param = values
    const = lambda v: ir.Constant(ir.IntType(64), v)
    zero, _, bcast = _vectors(builder, vty)
    has_bias = builder.icmp_signed(">=", bias_off, const(0))
    for r in range(mr):            # bias row r: element 0 when there is none (never used)
        b = bcast(builder.load(builder.gep(bias, [builder.select(
            has_bias, builder.add(bias_off, const(r)), const(0))])))
        for slot, _ in slots[r]:
            acc = builder.load(slot)
            builder.store(builder.select(has_bias, builder.fadd(acc, b), acc), slot)
    with builder.if_then(builder.icmp_signed("==", builder.and_(act, const(EPI_NO_Z)),
                                             const(0))):
        for row in slots:
            for slot, p in row:
                builder.store(builder.load(slot), p, align=4)
    act = builder.and_(act, const(EPI_NO_Z - 1))
    relu = builder.icmp_signed("==", act, const(EPI_RELU))
    leaky = builder.icmp_signed("==", act, const(EPI_LEAKY))
    with builder.if_then(builder.icmp_signed("!=", act, const(EPI_NONE))):
        p = bcast(param)
        for r in range(mr):
            for v, (slot, _) in enumerate(slots[r]):
                z = builder.load(slot)
                positive = builder.fcmp_ordered(">", z, zero)
                a = builder.select(relu, builder.select(positive, z, zero), builder.select(
                    leaky, builder.select(positive, z, builder.fmul(p, z)), z))
                builder.store(a, _at(builder, cptr, o_off, ldc, r, v, vty), align=4)


def _grad_epilogue(builder, slots, values, cptr, ldc, mr, vty):
    """gemm_grad's epilogue on a finished block: C times, by ``act``, relu'(Z) (EPI_RELU: 1
    where Z > 0, ``param`` where Z is 0, else 0) or leaky relu'(Z) (EPI_LEAKY: 1 where Z > 0,
    else param), Z at z_off's block; then C stored. Where Z > 0 C is kept (C x 1 is C, NaN
    and -0 included), elsewhere multiplied by the derivative: relu with relu'(0) = +0 and
    leaky relu by one value (0 or the slope), a relu with relu'(0) set by Z == 0's choice."""
    act, z_off, param = values
    zero, _, bcast = _vectors(builder, vty)
    const = lambda v: ir.Constant(ir.IntType(64), v)
    relu = builder.icmp_signed("==", act, const(EPI_RELU))
    p = bcast(param)
    bits = ir.IntType(64 if isinstance(param.type, ir.DoubleType) else 32)
    at_zero = builder.and_(relu, builder.icmp_unsigned("!=", builder.bitcast(param, bits),
                                                       ir.Constant(bits, 0)))
    below = builder.select(relu, zero, p)          # the derivative where Z <= 0 but at_zero

    def times(rest):
        for r in range(mr):
            for v, (slot, _) in enumerate(slots[r]):
                z = builder.load(_at(builder, cptr, z_off, ldc, r, v, vty), align=4)
                c = builder.load(slot)
                builder.store(builder.select(builder.fcmp_ordered(">", z, zero), c,
                                             builder.fmul(c, rest(z))), slot)

    with builder.if_then(builder.icmp_signed("!=", act, const(EPI_NONE))):
        with builder.if_else(at_zero) as (then, otherwise):
            with then:
                times(lambda z: builder.select(builder.fcmp_ordered("==", z, zero), p, zero))
            with otherwise:
                times(lambda z: below)
    for row in slots:
        for slot, p in row:
            builder.store(builder.load(slot), p, align=4)


def _codegen(half, vty, epilogue=None):
    """_block's code: C (+)= A B (accumulate, the last argument, nonzero: C is added to), then,
    with ``epilogue`` (_act_epilogue or _grad_epilogue, whose values follow kc in the
    arguments), the epilogue: a switch over the block's rows (and, when N can end in half a
    block, its width) to a micro-kernel for each."""
    def codegen(context, builder, sig, args):
        tys = sig.args
        i64 = ir.IntType(64)
        as_i64 = lambda k: context.cast(builder, args[k], tys[k], types.int64)
        ptrs = [context.make_array(tys[k])(context, builder, args[k]).data for k in (2, 5, 9)]
        offs = [as_i64(k) for k in (3, 4, 6, 7, 8, 10, 11, 12)]
        epi = None
        if epilogue is _act_epilogue:       # bias, bias_off, act, o_off, param
            epi = (epilogue, (context.make_array(tys[13])(context, builder, args[13]).data,
                              as_i64(14), as_i64(15), as_i64(16),
                              context.cast(builder, args[17], tys[17], tys[2].dtype)))
        elif epilogue is _grad_epilogue:    # act, z_off, param
            epi = (epilogue, (as_i64(13), as_i64(14),
                              context.cast(builder, args[15], tys[15], tys[2].dtype)))
        accumulate = builder.icmp_signed("!=", as_i64(len(args) - 1), ir.Constant(i64, 0))
        fma = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vty, [vty, vty, vty]),
            f"llvm.fma.v{vty.count}f{64 if isinstance(vty.element, ir.DoubleType) else 32}")
        key = builder.mul(as_i64(0), ir.Constant(i64, 2))
        if half:
            key = builder.add(key, builder.zext(context.cast(builder, args[1], tys[1],
                                                             types.boolean), i64))
        done = builder.append_basic_block("block.done")
        switch = builder.switch(key, done)
        for r in range(1, MR + 1):
            for nvec in ((1, 2) if half else (2,)):
                bb = builder.append_basic_block(f"block.{r}x{nvec}")
                switch.add_case(ir.Constant(i64, 2 * r + (nvec - 1 if half else 0)), bb)
                builder.position_at_end(bb)
                _emit(builder, ptrs, offs, accumulate, fma, r, nvec, vty, epi)
                builder.branch(done)
        builder.position_at_end(done)
        return context.get_dummy_value()
    return codegen


@intrinsic
def _block(typingctx, mr, two, c, c_off, ldc, a, a_off, a_rs, a_ks, b, b_off, ldb, kc,
           accumulate):
    """C[mr, NR] (+)= A[mr, kc] B[kc, NR] (two) or C[mr, NR / 2] (not two), mr = 1..MR."""
    sig = types.void(mr, two, c, c_off, ldc, a, a_off, a_rs, a_ks, b, b_off, ldb, kc, accumulate)
    vty = _vector(c.dtype)
    return sig, _codegen(2 * vty.count > LANES, vty)   # N may end in half a block?


@intrinsic
def _block_act(typingctx, mr, two, c, c_off, ldc, a, a_off, a_rs, a_ks, b, b_off, ldb, kc,
               bias, bias_off, act, o_off, param, accumulate):
    """_block, then _act_epilogue."""
    sig = types.void(mr, two, c, c_off, ldc, a, a_off, a_rs, a_ks, b, b_off, ldb, kc, bias,
                     bias_off, act, o_off, param, accumulate)
    vty = _vector(c.dtype)
    return sig, _codegen(2 * vty.count > LANES, vty, _act_epilogue)


@intrinsic
def _block_grad(typingctx, mr, two, c, c_off, ldc, a, a_off, a_rs, a_ks, b, b_off, ldb, kc,
                act, z_off, param, accumulate):
    """_block, then _grad_epilogue."""
    sig = types.void(mr, two, c, c_off, ldc, a, a_off, a_rs, a_ks, b, b_off, ldb, kc, act,
                     z_off, param, accumulate)
    vty = _vector(c.dtype)
    return sig, _codegen(2 * vty.count > LANES, vty, _grad_epilogue)


@jit
def gemm(c, c_off, ldc, a, a_off, a_rs, a_ks, b, b_off, ldb, m, n, k, accumulate):
    """C[m, n] (+)= A[m, k] @ B[k, n] on flat arrays; n a multiple of LANES.

    C at c[c_off + i * ldc + j], A at a[a_off + i * a_rs + p * a_ks], B at b[b_off + p * ldb + j].
    accumulate = 0 overwrites C, 1 adds to it. k = 0 writes zeros (or leaves C).
    """
    gemm_rows(c, c_off, ldc, a, a_off, a_rs, a_ks, b, b_off, ldb, _ROW0, m, n, k, accumulate)


@jit
def gemm_rows(c, c_off, ldc, a, a_off, a_rs, a_ks, b, b_off, ldb, i0, i1, n, k, accumulate):
    """Rows i0..i1-1 of gemm: the unit of work when one product is split across threads.

    Column blocks of NR, each streaming B's NR columns past every block of MR rows, read in
    place; over more than PACK_ROWS rows of a product deeper than PACK_K, packed (_rows_packed).
    """
    if packs(i1 - i0, k):
        _rows_packed(c, c_off, ldc, a, a_off, a_rs, a_ks, b, b_off, ldb, i0, i1, n, k,
                     accumulate)
        return
    w = 2 * (VBYTES // c.itemsize)            # NR: two vector registers of c's dtype
    for j0 in range(0, n, w):
        two = n - j0 >= w
        for r0 in range(i0, i1, MR):
            _block(min(MR, i1 - r0), two, c, c_off + r0 * ldc + j0, ldc, a,
                   a_off + r0 * a_rs, a_rs, a_ks, b, b_off + j0, ldb, k, accumulate)


@jit
def _rows_packed(c, c_off, ldc, a, a_off, a_rs, a_ks, b, b_off, ldb, i0, i1, n, k,
                 accumulate):
    """gemm_rows with B's columns packed into panels (panels.py): each k-panel adds to the C
    the one before left, the same fma chain in the same order, so the same bits (256 x 512 x
    784, float32, one Emerald Rapids core: 1.6-1.7x the speed read in place, 0.85x NumPy's
    OpenBLAS, in five runs side by side). The packed drivers are functions of their own: the
    panel's stack frame and the k-panel loop cost a product read in place a few percent."""
    w = 2 * (VBYTES // c.itemsize)
    store = panel(b)
    for j0 in range(0, n, w):
        two = n - j0 >= w
        for k0 in range(0, k, KC):
            kc = min(KC, k - k0)
            pack(store, b, b_off + k0 * ldb + j0, ldb, kc, two, w)
            for r0 in range(i0, i1, MR):
                _block(min(MR, i1 - r0), two, c, c_off + r0 * ldc + j0, ldc, a,
                       a_off + r0 * a_rs + k0 * a_ks, a_rs, a_ks, store, _ROW0, w, kc,
                       accumulate if k0 == 0 else 1)


@jit
def gemm_act(c, c_off, ldc, a, a_off, a_rs, a_ks, b, b_off, ldb, m, n, k, bias, bias_off, act,
             o_off, param):
    """C[m, n] = A[m, k] @ B[k, n] as gemm, plus bias[bias_off + i] on row i (bias_off < 0:
    none), each block finished while in registers; ``act`` EPI_RELU also writes relu(C),
    EPI_LEAKY leaky relu(C) with slope ``param``, and EPI_COPY C itself, at c[o_off + i * ldc
    + j] (a layer's activation A, C's row stride); EPI_NONE nothing more. EPI_RELU or
    EPI_LEAKY plus EPI_NO_Z writes A alone (C, Z, is not written but as scratch, for a packed
    product's sums over its first k-panels (_act_packed): a backward pass that can read
    phi'(Z) from A saves a store per value). Each value has the bits of gemm, then
    dense.add_bias, then the activation's pass. ``bias`` is never empty: with no bias its
    element 0 is read and unused."""
    if packs(m, k):
        _act_packed(c, c_off, ldc, a, a_off, a_rs, a_ks, b, b_off, ldb, m, n, k, bias,
                    bias_off, act, o_off, param)
        return
    w = 2 * (VBYTES // c.itemsize)
    for j0 in range(0, n, w):
        two = n - j0 >= w
        for r0 in range(0, m, MR):
            _block_act(min(MR, m - r0), two, c, c_off + r0 * ldc + j0, ldc, a, a_off + r0 * a_rs,
                       a_rs, a_ks, b, b_off + j0, ldb, k, bias,
                       bias_off + r0 if bias_off >= 0 else bias_off, act, o_off + r0 * ldc + j0,
                       param, 0)


@jit
def _act_packed(c, c_off, ldc, a, a_off, a_rs, a_ks, b, b_off, ldb, m, n, k, bias, bias_off,
                act, o_off, param):
    """gemm_act packed as _rows_packed: the k-panels before the last store their sums in C,
    the last adds to them and finishes each block with the epilogue."""
    w = 2 * (VBYTES // c.itemsize)
    store = panel(b)
    for j0 in range(0, n, w):
        two = n - j0 >= w
        for k0 in range(0, k, KC):
            kc = min(KC, k - k0)
            last = k0 + KC >= k                   # the epilogue on the last k-panel's sums
            pack(store, b, b_off + k0 * ldb + j0, ldb, kc, two, w)
            for r0 in range(0, m, MR):
                _block_act(min(MR, m - r0), two, c, c_off + r0 * ldc + j0, ldc, a,
                           a_off + r0 * a_rs + k0 * a_ks, a_rs, a_ks, store, _ROW0, w, kc,
                           bias, bias_off + r0 if bias_off >= 0 and last else NO_BIAS,
                           act if last else EPI_NONE, o_off + r0 * ldc + j0, param,
                           0 if k0 == 0 else 1)


@jit
def gemm_grad(c, c_off, ldc, a, a_off, a_rs, a_ks, b, b_off, ldb, m, n, k, act, z_off, param):
    """C[m, n] = A[m, k] @ B[k, n] as gemm, times phi'(Z) for ``act`` EPI_RELU (``param``
    where Z is 0) or EPI_LEAKY (slope ``param``), Z at c[z_off + i * ldc + j]; EPI_NONE:
    nothing more. Each block is finished while in registers: the bits of gemm, then
    activations.backward's pass."""
    if packs(m, k):
        _grad_packed(c, c_off, ldc, a, a_off, a_rs, a_ks, b, b_off, ldb, m, n, k, act, z_off,
                     param)
        return
    w = 2 * (VBYTES // c.itemsize)
    for j0 in range(0, n, w):
        two = n - j0 >= w
        for r0 in range(0, m, MR):
            _block_grad(min(MR, m - r0), two, c, c_off + r0 * ldc + j0, ldc, a,
                        a_off + r0 * a_rs, a_rs, a_ks, b, b_off + j0, ldb, k, act,
                        z_off + r0 * ldc + j0, param, 0)


@jit
def _grad_packed(c, c_off, ldc, a, a_off, a_rs, a_ks, b, b_off, ldb, m, n, k, act, z_off,
                 param):
    """gemm_grad packed as _rows_packed: the epilogue on the last k-panel's sums."""
    w = 2 * (VBYTES // c.itemsize)
    store = panel(b)
    for j0 in range(0, n, w):
        two = n - j0 >= w
        for k0 in range(0, k, KC):
            kc = min(KC, k - k0)
            last = k0 + KC >= k                   # the epilogue on the last k-panel's sums
            pack(store, b, b_off + k0 * ldb + j0, ldb, kc, two, w)
            for r0 in range(0, m, MR):
                _block_grad(min(MR, m - r0), two, c, c_off + r0 * ldc + j0, ldc, a,
                            a_off + r0 * a_rs + k0 * a_ks, a_rs, a_ks, store, _ROW0, w, kc,
                            act if last else EPI_NONE, z_off + r0 * ldc + j0, param,
                            0 if k0 == 0 else 1)


@kernel
def padded(n):
    """n rounded up to a multiple of LANES (the padding of rows and batches)."""
    return ((n + LANES - 1) // LANES) * LANES
