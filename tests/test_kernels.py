"""Low-level kernels against NumPy: the GEMM micro-kernels and the register transpose."""
import io
import os
import subprocess
import sys
from unittest import mock

import numba
import numpy as np
import pytest

import fastinit
import reference
from fastinit.kernels import _config, _linking, activations, dense, gemm, panels, split, transposes


@pytest.mark.parametrize("m,n,k", [(1, 16, 1), (7, 16, 3), (13, 48, 29), (64, 64, 64),
                                   (9, 32, 0), (33, 80, 17), (31, 48, 129), (37, 80, 530)])
@pytest.mark.parametrize("a_transposed", [False, True])
def test_gemm_against_numpy(m, n, k, a_transposed, dtype):
    g = np.random.default_rng(m * 100 + n + k)
    a = g.standard_normal((m, k)).astype(dtype)
    b = g.standard_normal((k, n)).astype(dtype)
    c = np.full((m, n), 7.0, dtype=dtype)
    if a_transposed:                # A read through strides from its transpose
        at = np.ascontiguousarray(a.T)
        reference.call(gemm.gemm, c.ravel(), 0, n, at.ravel(), 0, 1, m, b.ravel(), 0, n, m, n,
                       k, 0)
    else:
        reference.call(gemm.gemm, c.ravel(), 0, n, a.ravel(), 0, k, 1, b.ravel(), 0, n, m, n, k,
                       0)
    want = a.astype(float) @ b.astype(float)
    tol = 1e-12 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(c, want, rtol=tol, atol=tol * max(1, k))
    c2 = c.copy()
    reference.call(gemm.gemm, c2.ravel(), 0, n, a.ravel(), 0, k, 1, b.ravel(), 0, n, m, n, k,
                   1)                                                             # accumulate
    np.testing.assert_allclose(c2, 2 * want, rtol=tol, atol=2 * tol * max(1, k))


def test_gemm_blocking_does_not_change_bits():
    """Rows computed in a whole block or alone are the same fma chain."""
    g = np.random.default_rng(0)
    a = g.standard_normal((13, 40)).astype(np.float32)
    b = g.standard_normal((40, 32)).astype(np.float32)
    whole = np.zeros((13, 32), np.float32)
    reference.call(gemm.gemm, whole.ravel(), 0, 32, a.ravel(), 0, 40, 1, b.ravel(), 0, 32, 13,
                   32, 40, 0)
    split = np.zeros((13, 32), np.float32)
    for r0, r1 in [(0, 3), (3, 11), (11, 13)]:
        reference.call(gemm.gemm_rows, split.ravel(), 0, 32, a.ravel(), 0, 40, 1, b.ravel(), 0,
                       32, r0, r1, 32, 40, 0)
    np.testing.assert_array_equal(whole, split)


@pytest.mark.parametrize("m,n,k,a_transposed", [(25, 48, 129, False), (40, 80, 530, True),
                                                (64, 16, 257, False), (30, 48, 512, True),
                                                (27, 16, 256, False)])
def test_a_packed_product_has_the_bits_of_its_rows_unpacked(m, n, k, a_transposed, dtype):
    """B packed into k-panels (more than PACK_ROWS rows, K deeper than PACK_K, KC rows a
    panel) gives the bits of the same rows a few at a time, read in place: the same fma
    chain. Accumulating onto C too, and with a column block of half width (n = 16 mod 32)."""
    assert m > panels.PACK_ROWS and k > panels.PACK_K
    g = np.random.default_rng(k)
    a = g.standard_normal((m, k)).astype(dtype)
    b = g.standard_normal((k, n)).astype(dtype)
    a_args = (np.ascontiguousarray(a.T).ravel(), 0, 1, m) if a_transposed else \
        (a.ravel(), 0, k, 1)
    start = g.standard_normal((m, n)).astype(dtype)
    for accumulate in (0, 1):
        whole, rows = start.copy(), start.copy()
        reference.call(gemm.gemm, whole.ravel(), 0, n, *a_args, b.ravel(), 0, n, m, n, k,
                       accumulate)
        for r0 in range(0, m, 5):       # 5 rows: never packed
            reference.call(gemm.gemm_rows, rows.ravel(), 0, n, *a_args, b.ravel(), 0, n, r0,
                           min(m, r0 + 5), n, k, accumulate)
        np.testing.assert_array_equal(whole.view(f"u{whole.itemsize}"),
                                      rows.view(f"u{rows.itemsize}"))
        want = (accumulate * start.astype(float)) + a.astype(float) @ b.astype(float)
        tol = 1e-12 if dtype == np.float64 else 1e-4
        np.testing.assert_allclose(whole, want, rtol=tol, atol=tol * k)


@pytest.mark.parametrize("m,n,k,a_t", [(1, 16, 3, False), (7, 16, 5, False), (13, 48, 29, True),
                                       (6, 80, 9, False), (64, 32, 64, False), (5, 32, 0, False),
                                       (31, 48, 200, False), (26, 80, 530, False),
                                       (30, 48, 300, True), (26, 48, 512, True)])
def test_gemm_epilogues_are_gemm_then_their_passes_bit_for_bit(m, n, k, a_t, dtype):
    """gemm_act = gemm, then + bias per row, then relu, leaky relu (slope param) or a copy of
    Z into A; gemm_grad = gemm, then dZ = dA x relu'(Z) with relu'(0) = param, or x leaky
    relu'(Z): each value the bits NumPy's IEEE operations give, with infinities and NaN in the
    product, zeros, -0 and NaN in Z, and no bias (-1); relu'(0) and leaky slopes 0.5, 0, -0,
    1 and NaN. Neither writes outside its blocks."""
    g = np.random.default_rng(m * 1000 + n + k)
    a = g.standard_normal((m, k)).astype(dtype)
    b = g.standard_normal((k, n)).astype(dtype)
    if k:
        a[m // 2, 0] = np.inf          # a row of inf and NaN products
        b[k - 1, 1] = np.nan
    a_args = (np.ascontiguousarray(a.T).ravel(), 0, 1, m) if a_t else (a.ravel(), 0, k, 1)
    plain = np.empty((m, n), dtype)                     # A read as W^T too (a_t), as dA's is
    reference.call(gemm.gemm, plain.ravel(), 0, n, *a_args, b.ravel(), 0, n, m, n, k, 0)
    bias = g.standard_normal(m + 3).astype(dtype)
    z = g.standard_normal((m, n)).astype(dtype)
    z.ravel()[::5], z.ravel()[1::7], z.ravel()[2::11] = 0.0, -0.0, np.nan
    zero = dtype(0)
    bits = lambda v: v.view(f"u{v.itemsize}")

    def run(fn, *epilogue):            # C at 7 of a scratch, Z or A after it
        s = np.full(3 * m * n + 7, 9.0, dtype)
        s[7 + m * n:7 + 2 * m * n] = z.ravel()
        reference.call(fn, s, 7, n, *a_args, b.ravel(), 0, n, m, n, k, *epilogue)
        assert (s[:7] == 9).all() and (s[7 + 2 * m * n:] == 9).all()
        return s[7:7 + m * n].reshape(m, n), s[7 + m * n:7 + 2 * m * n].reshape(m, n)

    slope = dtype(0.5)
    for bias_off in (-1, 3):
        with_bias = plain + bias[bias_off:bias_off + m, None] if bias_off >= 0 else plain
        relu = np.where(with_bias > zero, with_bias, zero)
        with np.errstate(invalid="ignore"):
            leaky = np.where(with_bias > zero, with_bias, slope * with_bias)
        for act, want_o in ((gemm.EPI_NONE, z), (gemm.EPI_RELU, relu),
                            (gemm.EPI_LEAKY, leaky), (gemm.EPI_COPY, with_bias)):
            got_c, got_o = run(gemm.gemm_act, bias, np.int64(bias_off), np.int64(act),
                               7 + m * n, 0.5)
            np.testing.assert_array_equal(bits(got_c), bits(with_bias), err_msg=str(act))
            np.testing.assert_array_equal(bits(got_o), bits(want_o), err_msg=str(act))
        for act, want_o in ((gemm.EPI_RELU, relu), (gemm.EPI_LEAKY, leaky)):   # A alone
            got_c, got_o = run(gemm.gemm_act, bias, np.int64(bias_off),
                               np.int64(act + gemm.EPI_NO_Z), 7 + m * n, 0.5)
            if k <= panels.KC or m <= panels.PACK_ROWS:   # else scratch for the k-panels' sums
                assert (got_c == 9).all()
            np.testing.assert_array_equal(bits(got_o), bits(want_o), err_msg=str(act))
    for slope in map(dtype, (0.5, 0.0, -0.0, 1.0, np.nan)):   # relu'(0), leaky's slope
        with np.errstate(invalid="ignore"):                # inf x 0
            grad = plain * np.where(z > zero, dtype(1), np.where(z == zero, slope, zero))
            leaky_grad = plain * np.where(z > zero, dtype(1), slope)
        for act, want_c in ((gemm.EPI_NONE, plain), (gemm.EPI_RELU, grad),
                            (gemm.EPI_LEAKY, leaky_grad)):
            got_c, got_z = run(gemm.gemm_grad, np.int64(act), 7 + m * n, slope)
            np.testing.assert_array_equal(bits(got_c), bits(want_c), err_msg=f"{act} {slope}")
            np.testing.assert_array_equal(bits(got_z), bits(z))


@pytest.mark.parametrize("act,param,from_a", [
    ("relu", 0.0, True), ("relu", 1.0, False), ("relu", -0.0, False), ("leaky_relu", 0.1, True),
    ("leaky_relu", 0.0, True), ("leaky_relu", np.inf, True), ("leaky_relu", -0.5, False)])
def test_the_derivative_read_from_a_has_the_bits_read_from_z_where_the_passes_use_it(
        act, param, from_a, dtype):
    """dense.deriv_from_a's claim: for relu with relu'(0) = 0 and leaky relu with a slope >= 0,
    gemm_grad's epilogue given A = phi(Z) instead of Z multiplies by the same derivative, bit
    for bit (zeros, -0, NaN and infinities in Z); for relu'(0) = 1 or a negative slope it does
    not (so the forward pass stores Z there; a network takes no negative slope, a kernel
    checks anyway); nor for relu'(0) = -0 (A = +0 where Z < 0: C x -0 for C x +0)."""
    g = np.random.default_rng(5)
    m, n, k = 7, 32, 9
    w = g.standard_normal((m, k)).astype(dtype)
    dz = g.standard_normal((k, n)).astype(dtype)
    z = g.standard_normal((m, n)).astype(dtype)
    z.ravel()[::5], z.ravel()[1::7], z.ravel()[2::11] = 0.0, -0.0, np.nan
    z.ravel()[3::13], z.ravel()[4::17] = np.inf, -np.inf
    p = dtype(param)
    code = activations.RELU if act == "relu" else activations.LEAKY_RELU
    a = np.empty_like(z)
    with np.errstate(invalid="ignore", over="ignore"):
        reference.call(activations.forward, code, p, z.ravel(), a.ravel())
    epi = np.int64(gemm.EPI_RELU if act == "relu" else gemm.EPI_LEAKY)

    def grad(src):
        s = np.concatenate([np.zeros(m * n, dtype), src.ravel()])
        reference.call(gemm.gemm_grad, s, 0, n, w.ravel(), 0, k, 1, dz.ravel(), 0, n, m, n, k,
                       epi, m * n, p)
        return s[:m * n].view(f"u{s.itemsize}")

    same = np.array_equal(grad(z), grad(a))
    assert same == from_a
    if np.isfinite(param) and param >= 0:   # (a network refuses other slopes)
        arch = fastinit.MLP([3, 4, 4, 2], activation=act, activation_param=param,
                            dtype=dtype).arch
        assert reference.call(dense.deriv_from_a, arch, 0, 0, 0) == from_a


def test_vector_width_from_target_features():
    """The block is two vector registers wide on the CPU the code is compiled for."""
    assert gemm.vector_bytes("+avx,+avx2,+fma,-avx512f,+sse2") == 32
    assert gemm.vector_bytes("+avx,+avx2,+avx512f,+avx512vl") == 64
    assert gemm.vector_bytes("+sse2,-avx,-avx2") == 16
    assert gemm.vector_bytes("") == 16
    assert gemm.VBYTES in (16, 32, 64)


_BLOCKING = """
import sys
import numpy as np
import numba
import fastinit.kernels.gemm as g
g.VBYTES, g.MR = int(sys.argv[1]), int(sys.argv[2])   # before anything compiles
call = numba.njit(lambda fn, *args: fn(*args))        # gemm is a helper: no Python entry point
rng = np.random.default_rng(0)
out = []
for dtype in (np.float32, np.float64):
    for m, n, k in ((1, 16, 3), (7, 16, 5), (13, 48, 29), (17, 80, 9), (8, 32, 0),
                    (30, 48, 300)):                   # the last in packed panels
        a = rng.standard_normal((m, k)).astype(dtype)
        b = rng.standard_normal((k, n)).astype(dtype)
        c = np.full((m, n), 0.5, dtype=dtype)
        call(g.gemm, c.ravel(), 0, n, a.ravel(), 0, k, 1, b.ravel(), 0, n, m, n, k, 1)
        want = 0.5 + a.astype(float) @ b.astype(float)
        assert np.allclose(c, want, rtol=1e-4, atol=1e-4 * max(1, k)), (dtype, m, n, k)
        out.append(c.tobytes())
        if dtype != np.float32:    # the epilogues: float32 has every block shape (half or not)
            continue
        for act in (g.EPI_NONE, g.EPI_RELU, g.EPI_COPY, g.EPI_LEAKY):
            s = np.zeros(2 * m * n, dtype=dtype)
            s[m * n:] = rng.standard_normal(m * n)
            bias = rng.standard_normal(m + 2).astype(dtype)
            call(g.gemm_act, s, 0, n, a.ravel(), 0, k, 1, b.ravel(), 0, n, m, n, k, bias,
                 np.int64(2), np.int64(act), m * n, 0.25)
            out.append(s.tobytes())
            call(g.gemm_grad, s, 0, n, a.ravel(), 0, k, 1, b.ravel(), 0, n, m, n, k,
                 np.int64(act if act != g.EPI_COPY else g.EPI_NONE), m * n, 0.25)
            out.append(s.tobytes())
sys.stdout.buffer.write(b"".join(out))
"""


@pytest.mark.slow
def test_every_register_blocking_gives_the_same_bits(tmp_path):
    """The AVX-512, AVX2 and SSE blockings (MR = 6 rows x two vectors, with or without a
    half-width edge block) compute every element as the same fma chain: the same bits. Each
    runs in a process of its own with an empty cache (the blocking is fixed when a kernel
    compiles), unoptimised (NUMBA_OPT=0: LLVM's passes keep IEEE semantics, so they change
    no bit; half the compile time), and all equal this process's blocking at full
    optimisation. MR = 8 (measured: no faster on AVX-512) is not run: add (64, 8) to try it."""
    outs = set()
    for vbytes, mr in ((64, 6), (32, 6), (16, 6)):
        env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / f"cache{vbytes}-{mr}"),
                   NUMBA_OPT="0")
        run = subprocess.run([sys.executable, "-c", _BLOCKING, str(vbytes), str(mr)],
                             capture_output=True, env=env, timeout=600)
        assert run.returncode == 0, run.stderr.decode()[-2000:]
        outs.add(run.stdout)
    here = io.BytesIO()
    with mock.patch.object(sys, "argv", ["-c", str(gemm.VBYTES), str(gemm.MR)]), \
            mock.patch.object(sys, "stdout", mock.Mock(buffer=here)):
        exec(_BLOCKING, {})
    assert len(outs) == 1 and outs == {here.getvalue()}


@pytest.mark.parametrize("rows,cols", [(16, 16), (37, 50), (64, 64), (5, 3), (32, 17), (1, 40)])
def test_transpose(rows, cols, dtype):
    lds, ldd = cols + 5, rows + 3
    src = np.random.default_rng(rows).standard_normal(2 + rows * lds).astype(dtype)
    dst = np.zeros(3 + cols * ldd, dtype=dtype)
    reference.call(transposes.transpose, dst, 3, ldd, src, 2, lds, rows, cols)
    s = src[2:].reshape(rows, lds)[:, :cols]
    d = dst[3:].reshape(cols, ldd)[:, :rows]
    np.testing.assert_array_equal(d, s.T)
    assert np.all(dst[3:].reshape(cols, ldd)[:, rows:] == 0)   # nothing written outside


@pytest.mark.parametrize("d,ld,nb,bp", [(37, 48, 45, 48), (64, 64, 128, 128), (5, 16, 1, 16),
                                         (100, 112, 33, 48)])
def test_split_gather_and_transposes_write_what_the_plain_ones_write(d, ld, nb, bp, dtype):
    """A split epoch's batch gather and A^T (over ``parts`` threads, by feature and by sample
    chunks) write exactly what the one-thread ones write, and that is x[rows] and its
    transpose, padding zero."""
    g = np.random.default_rng(d)
    x = g.standard_normal((200, d)).astype(dtype)
    rows = g.permutation(200)[:nb].astype(np.int64)
    i64 = np.int64

    def run(parts):                     # A_0^T (d, bp) at 0, x0 (bp, ld) after it
        s = np.full(d * bp + bp * ld, np.nan, dtype)
        args = (x, rows, i64(nb), s, i64(0), i64(d * bp), i64(ld), i64(bp))
        if parts is None:
            reference.call(dense.gather, *args)
        else:
            reference.call(split.gather_split, *args, i64(parts))
        t = np.full(d * bp + nb * ld, np.nan, dtype)      # A (d, bp) at 0, its xt (nb, ld)
        t[:d * bp] = s[:d * bp]
        args = (t, i64(0), i64(d * bp), i64(d), i64(ld), i64(bp), i64(nb))
        if parts is None:
            reference.call(dense.transpose_acts, *args)
        else:
            reference.call(split.transpose_acts_split, *args, i64(parts))
        return s, t

    s, t = run(None)
    np.testing.assert_array_equal(s[:d * bp].reshape(d, bp)[:, :nb], x[rows].T)
    assert np.all(s[:d * bp].reshape(d, bp)[:, nb:] == 0)
    np.testing.assert_array_equal(s[d * bp:].reshape(bp, ld)[:nb, :d], x[rows])
    np.testing.assert_array_equal(t[d * bp:].reshape(nb, ld), np.pad(x[rows], ((0, 0),
                                                                              (0, ld - d))))
    for parts in (1, 2, 3):
        for a, b in zip((s, t), run(parts)):
            np.testing.assert_array_equal(a, b)


def test_cross_entropy_against_numpy(dtype):
    """Loss sum, correct count and dL/dz of softmax cross-entropy against NumPy, in the
    features x batch layout with padding: ties count the first maximum; a NaN logit at class 0
    is the sample's maximum (its loss NaN), a later NaN never is."""
    from fastinit.kernels import losses
    nc, nb, ldz = 7, 21, 32
    g = np.random.default_rng(3)
    z = g.standard_normal((nb, nc)).round(1)          # rounded: many ties
    z[0] = 2.0                                        # all tied: class 0
    z[1, 2] = z[1, 5] = 9.0                           # the first maximum: class 2
    z[-2, 4] = np.nan                                 # a later NaN: never the maximum
    z[-1, 0] = np.nan                                 # a NaN first: the maximum, loss NaN
    y = g.integers(0, nc, nb)
    y[[0, 1, -1]] = [0, 2, 0]
    y[-2] = np.nanargmax(z[-2])
    zt = np.full((nc, ldz), 99.0, dtype)              # padding columns are never read
    zt[:, :nb] = z.T
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for n in (nb - 2, nb):                            # without and with the NaN samples
        dz = np.zeros_like(zt)
        work = np.full(losses.WORK * ldz, np.nan, dtype)   # scratch is not zeroed
        loss, correct = reference.call(losses.cross_entropy, zt.ravel(), np.int64(ldz),
                                       np.int64(nc), np.int64(n), y, dz.ravel(), work)
        zz = zt[:, :nb - 2].T.astype(float)
        arg = np.argmax(zz, axis=1)                   # NumPy's argmax: the first maximum
        assert correct == (arg == y[:nb - 2]).sum() + (2 if n == nb else 0)
        m = zz.max(axis=1, keepdims=True)
        p = np.exp(zz - m)
        lse = m[:, 0] + np.log(p.sum(axis=1))
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(nb - 2), y[:nb - 2]] -= 1
        np.testing.assert_allclose(dz[:, :nb - 2].T, p / n, rtol=tol, atol=tol)
        assert (dz[:, n:] == 0).all()                 # nothing written past the batch
        if n == nb:
            assert np.isnan(loss)
        else:
            want = (lse - zz[np.arange(nb - 2), y[:nb - 2]]).sum()
            np.testing.assert_allclose(loss, want, rtol=tol)


@pytest.mark.parametrize("mode", [0, 1, 2])           # norm.TRAIN, PROBE, EVAL
def test_batch_norm_rows_in_fours_have_the_bits_of_rows_one_at_a_time(mode, dtype):
    """Batch norm's statistics sum four rows' chains side by side: any split of the rows
    (threads split them by blocks of 6; one row at a time is the plain sequential sum) gives
    the same bits, forward and backward, and the values are NumPy's (float64 statistics over
    the nb real samples)."""
    from fastinit.kernels import norm
    d, bp, nb, eps, mom = 13, 32, 29, 1e-5, 0.1
    g = np.random.default_rng(4)
    z0 = (g.standard_normal((d, bp)) * 3 + 1).astype(dtype)
    dn0 = g.standard_normal((d, bp)).astype(dtype)
    p = g.standard_normal(2 * d).astype(dtype)             # gamma, beta
    state0 = np.abs(g.standard_normal(2 * d)).astype(dtype)

    def run(splits):
        scratch = np.zeros(3 * d * bp + d, dtype)            # Z, dN, Zhat + inv std
        scratch[:d * bp], scratch[d * bp:2 * d * bp] = z0.ravel(), dn0.ravel()
        state, grad = state0.copy(), np.zeros(2 * d, dtype)
        zh, m = np.int64(2 * d * bp), np.int64(mode)
        for r0, r1 in splits:
            r0, r1 = np.int64(r0), np.int64(r1)
            reference.call(norm.batch_forward, p, np.int64(0), state, np.int64(0), scratch,
                           np.int64(0), zh, np.int64(d), r0, r1, np.int64(bp), np.int64(nb), m,
                           mom, eps)
            reference.call(norm.batch_backward, p, np.int64(0), grad, scratch,
                           np.int64(d * bp), zh, np.int64(d), r0, r1, np.int64(bp),
                           np.int64(nb), m)
        return scratch, state, grad

    whole = run([(0, d)])
    for splits in ([(0, 6), (6, 12), (12, 13)], [(r, r + 1) for r in range(d)]):
        for a, b in zip(whole, run(splits)):
            np.testing.assert_array_equal(a, b)
    scratch, state, grad = whole
    z = z0[:, :nb].astype(float)
    mean, var = (z.mean(1), z.var(1)) if mode != 2 else (state0[:d], state0[d:])
    hat = (z - mean[:, None]) / np.sqrt(var + eps)[:, None]
    tol = 1e-12 if dtype == np.float64 else 1e-5
    out = scratch[:d * bp].reshape(d, bp)[:, :nb]
    np.testing.assert_allclose(out, p[:d, None] * hat + p[d:, None], rtol=tol, atol=tol)
    if mode == 0:                                          # running statistics updated
        np.testing.assert_allclose(state[:d], 0.9 * state0[:d] + 0.1 * mean, rtol=tol)
        np.testing.assert_allclose(state[d:], 0.9 * state0[d:] + 0.1 * z.var(1, ddof=1),
                                   rtol=tol)
    else:
        np.testing.assert_array_equal(state, state0)
    dn = dn0[:, :nb].astype(float)
    np.testing.assert_allclose(grad[d:], dn.sum(1), rtol=tol, atol=tol)        # dbeta
    np.testing.assert_allclose(grad[:d], (dn * hat).sum(1), rtol=tol, atol=tol)


def test_layer_norm_of_a_batch_has_the_bits_of_each_sample_alone(dtype):
    """Layer norm sums over the units a row at a time into a sum per sample, each sample's in
    unit order: a batch of 13 real samples in a block of 16 gives the bits of each sample
    alone (a block one column wide), and NumPy's values to rounding."""
    from fastinit.kernels import norm
    d, eps = 7, 1e-5
    g = np.random.default_rng(6)
    z0 = (g.standard_normal((d, 16)) * 2 - 1).astype(dtype)
    dn0 = g.standard_normal((d, 16)).astype(dtype)
    p = g.standard_normal(2 * d).astype(dtype)

    def run(z, dn, nb):
        bp = z.shape[1]
        work = norm.LAYER_WORK * bp + 1                    # as dense.layout reserves it
        scratch = np.concatenate([z.ravel(), dn.ravel(), np.zeros(d * bp + bp + work, dtype)])
        grad, zh = np.zeros(2 * d, dtype), np.int64(2 * d * bp)
        reference.call(norm.layer_forward, p, np.int64(0), scratch, np.int64(0), zh,
                       np.int64(d), np.int64(bp), eps)
        reference.call(norm.layer_backward, p, np.int64(0), grad, scratch, np.int64(d * bp),
                       zh, np.int64(d), np.int64(bp), np.int64(nb))
        parts = scratch[:d * bp], scratch[zh:zh + d * bp], scratch[d * bp:2 * d * bp]
        return [x.reshape(d, bp) for x in parts] + [scratch[zh + d * bp:zh + d * bp + bp], grad]

    out, hat, dz, inv, grad = run(z0, dn0, 13)
    for b in range(16):
        alone = run(z0[:, b:b + 1].copy(), dn0[:, b:b + 1].copy(), int(b < 13))
        for whole, one in zip((out, hat, dz, inv), alone):
            np.testing.assert_array_equal(whole[..., b:b + 1], one)
    zz = z0.astype(float)
    want = (zz - zz.mean(0)) / np.sqrt(zz.var(0) + eps) * p[:d, None] + p[d:, None]
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(out, want, rtol=tol, atol=tol)
    dn = dn0[:, :13].astype(float)
    np.testing.assert_allclose(grad[d:], dn.sum(1), rtol=tol, atol=tol)
    np.testing.assert_allclose(grad[:d], (dn * hat[:, :13]).sum(1), rtol=tol, atol=tol)


LIBM_F32 = ("@expf(", "@expm1f(", "@tanhf(", "@logf(", "@log1pf(")


@pytest.mark.parametrize("kernel", ["activations.forward", "activations.backward",
                                    "losses.cross_entropy", "losses.bce"])
def test_a_float32_kernel_compiles_no_float64_branch(kernel):
    """The float32 paths use fastinit's own vectorisable exp, tanh and log; the float64 paths
    call libm, which given float32 arguments is expf, tanhf, ... So none of those in a float32
    kernel means its float64 branch was not compiled into it (``_config.single`` is a constant
    of the signature; ``itemsize == 4`` was read at run time and compiled both)."""
    from numba import njit
    from fastinit import kernels
    module, name = kernel.split(".")
    fn = njit(getattr(getattr(kernels, module), name).py_func)
    i, f = np.int64(1), np.zeros(8, np.float32)
    args = {"activations.forward": (i, 0.5, f, f.copy()),
            "activations.backward": (i, 0.5, f, f.copy(), f.copy()),
            "losses.cross_entropy": (f, np.int64(4), np.int64(2), np.int64(4),
                                     np.zeros(4, np.int64), f.copy(), np.zeros(16, np.float32)),
            "losses.bce": (f, np.int64(4), np.int64(2), np.int64(4), f.copy(), f.copy())}[kernel]
    fn(*args)
    ir = fn.inspect_llvm(fn.signatures[0])
    assert not [c for c in LIBM_F32 if c in ir], [c for c in LIBM_F32 if c in ir]
    assert kernels._config.single(f) and not kernels._config.single(f.astype(np.float64))


def test_single_passed_on_is_one_specialisation():
    """single() is a bool of the signature, not a literal: a helper it is passed to compiles
    once for float32 and float64 callers alike (tests/specialisations.py guards the kernels)."""
    from numba import njit
    from fastinit.kernels._config import single

    @njit
    def helper(f32):
        return 1.0 if f32 else 2.0

    @njit
    def caller(x):
        return helper(single(x))

    assert caller(np.zeros(2, np.float32)) == 1.0 and caller(np.zeros(2)) == 2.0
    assert len(helper.signatures) == 1, helper.signatures


def _fixed_order_sum(x):
    """The documented order of dense.row_sum, one scalar addition at a time in x's dtype."""
    s = [x.dtype.type(0.0)] * 8
    whole = len(x) - len(x) % 8
    with np.errstate(invalid="ignore", over="ignore"):
        for i in range(whole):
            s[i % 8] = s[i % 8] + x[i]
        for i in range(whole, len(x)):
            s[0] = s[0] + x[i]
        return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))


@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=["f32", "f64"])
def test_row_sum_is_its_documented_order_bit_for_bit(dt):
    """row_sum's eight partial sums run as one vector of eight lanes (kernels/sums.py): the
    same bits as the scalar order, for every length (whole blocks, a tail, shorter than a
    block, empty), slices at any offset, magnitudes 1e-20..1e20 that make rounding order
    visible, signed zeros, infinities and NaN."""
    g = np.random.default_rng(7)
    for n in list(range(0, 40)) + [63, 64, 65, 127, 1000]:
        for offset in (0, 3):
            x = (g.standard_normal(n + offset) * 10.0 ** g.integers(-20, 21, n + offset))
            x = x.astype(dt)[offset:]
            got, want = reference.call(dense.row_sum, x), _fixed_order_sum(x)
            assert np.array(got, dt).tobytes() == np.array(want, dt).tobytes(), (n, offset)
    for x in ([-0.0] * 9, [1.0, np.inf, 2.0], [np.inf, -np.inf] * 5, [1.0, np.nan] * 6):
        x = np.array(x, dt)
        got, want = reference.call(dense.row_sum, x), _fixed_order_sum(x)
        assert np.array(got, dt).tobytes() == np.array(want, dt).tobytes(), x


@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=["f32", "f64"])
def test_all_finite_agrees_with_numpy_on_every_exponent(dt):
    """optim.all_finite (the divergence check on every step's gradient) against np.isfinite:
    every exponent value with the smallest, a middle and the largest mantissa, both signs, at
    the start, middle and end of arrays of odd and vector-sized lengths, and empty arrays."""
    from fastinit.kernels import optim
    bits, ebits = (np.uint32, 8) if dt == np.float32 else (np.uint64, 11)
    mbits = np.finfo(dt).nmant
    exps = np.arange(2 ** ebits, dtype=bits) << bits(mbits)
    specials = np.concatenate([(exps | bits(m) | bits(s)).view(dt)
                               for m in (0, 1, 1 << (mbits - 1), (1 << mbits) - 1)
                               for s in (0, 1 << (8 * np.dtype(dt).itemsize - 1))])
    assert reference.call(optim.all_finite, np.zeros(0, dt))
    for n in (1, 7, 16, 33, 1000):
        base = np.linspace(-3, 3, n).astype(dt)
        assert reference.call(optim.all_finite, base)
        for pos in {0, n // 2, n - 1}:
            for v in specials:
                x = base.copy()
                x[pos] = v
                assert reference.call(optim.all_finite, x) == bool(np.isfinite(x).all()), (n, v)


def test_a_helper_called_from_python_says_so():
    """A helper has no Python entry point (kernels/_config.py): called from Python it raises
    TypeError, also once compiled for those types (Numba would jump to address 0), and called
    from a compiled function it runs."""
    x = np.arange(64, dtype=np.float64)
    match = r"fastinit\.kernels\.dense\.row_sum is a helper .* compiled with numba\.njit"
    with pytest.raises(TypeError, match=match):
        dense.row_sum(x)
    assert reference.call(dense.row_sum, x) == 2016.0
    with pytest.raises(TypeError, match=match):
        dense.row_sum(x)


def test_helpers_carry_no_python_wrappers():
    """The wrappers a call from Python needs are compiled for entry kernels only: a helper's
    library (and so every kernel it is linked into) has neither (all had both: a fifth of a
    cold compile)."""
    x = np.arange(64, dtype=np.float64)
    reference.call(dense.row_sum, x)
    gemm.padded(np.int64(5))
    for dispatcher, args, entry in ((dense.row_sum, (numba.typeof(x),), False),
                                    (gemm.padded, (numba.int64,), True)):
        cres = dispatcher.overloads[args]           # compiled now or loaded from the cache
        for wrapper in (cres.fndesc.llvm_cpython_wrapper_name,
                        cres.fndesc.llvm_cfunc_wrapper_name):
            assert bool(cres.library.get_pointer_to_function(wrapper)) == entry, wrapper


def _fresh(decorator, fn):
    """fn compiled by a fastinit decorator, never from (or into) the on-disk cache."""
    from numba.core.caching import NullCache
    dispatcher = decorator(fn)
    dispatcher._cache = NullCache()
    return dispatcher


def _same(x):
    return x


def test_a_helper_returning_an_array_is_refused_when_it_compiles():
    """Helpers run without reference counting (kernels/_config.py): an array a helper returns
    would be freed by its caller, which counts it, while the helper never did (Numba refuses a
    view; the argument itself it allows)."""
    same = _fresh(_config.jit, _same)
    with pytest.raises(Exception, match=r"test_kernels\._same returns array\(float64, 1d, C\): "
                                        r"a helper runs without reference counting"):
        reference.call(same, np.arange(4.0))


def _leaf(x):
    return x * 2.0


def _middle(x):
    return LEAF(x) + 1.0


def _entry(x):
    return MIDDLE(x) - 1.0


LEAF = _fresh(_config.jit(forceinline=True), _leaf)
MIDDLE = _fresh(_config.jit, _middle)
ENTRY = _fresh(_config.kernel, _entry)


def test_module_passes_skip_only_an_inlined_helpers_own_library(monkeypatch):
    """Numba's whole-module O3 runs on every library but an inlined helper's own (its code runs
    only inlined, optimised in its callers): a helper that may be called keeps it, since a
    kernel compiled in the same process calls the helper's own code (kernels/_config.py)."""
    optimised = []
    real = _linking._optimize_module
    monkeypatch.setattr(_linking, "_optimize_module",
                        lambda library: (optimised.append(library.name), real(library)))
    assert ENTRY(1.5) == 3.0
    assert "_leaf" not in optimised and {"_middle", "_entry"} <= set(optimised), optimised
