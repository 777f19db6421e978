"""Orthogonal schemes: orthonormality, Haar distribution (sign correction), batching."""
import numba
import numpy as np
import pytest
from scipy import stats

import fastinit

from reference import TOL, threads_running


@pytest.mark.parametrize("shape", [(1, 1), (7, 7), (5, 13), (13, 5), (64, 64), (3, 2, 3, 3)])
def test_orthonormal_rows_or_columns(shape, dtype):
    gain = 1.7
    w = fastinit.sample("orthogonal", shape, seed=11, n=4, dtype=dtype, gain=gain)
    assert w.shape == (4,) + shape and w.dtype == dtype
    rows = shape[0]
    m = w.reshape(4, rows, -1).astype(np.float64) / gain
    for q in m:
        g = q @ q.T if q.shape[0] <= q.shape[1] else q.T @ q
        np.testing.assert_allclose(g, np.eye(g.shape[0]), atol=TOL[dtype])


def test_keras_layout_flattens_all_but_last():
    w = fastinit.sample("orthogonal", (3, 3, 4, 8), seed=1, layout="keras", dtype=np.float64)
    q = w.reshape(-1, 8)  # (36, 8): columns orthonormal
    np.testing.assert_allclose(q.T @ q, np.eye(8), atol=1e-12)


def test_haar_distribution_of_entries():
    """For Haar Q in O(n), (Q_ij + 1) / 2 ~ Beta((n-1)/2, (n-1)/2) for every i, j.

    Without the sign correction, a Householder QR gives Q_00 < 0 always: this test fails."""
    n = 6
    q = fastinit.sample("orthogonal", (n, n), seed=3, n=4000, dtype=np.float64)
    beta = stats.beta((n - 1) / 2, (n - 1) / 2)
    for i, j in [(0, 0), (n - 1, n - 1), (0, n - 1), (2, 3)]:
        assert stats.kstest((q[:, i, j] + 1) / 2, beta.cdf).pvalue > 1e-3
    # the determinant is +1 or -1 with equal probability
    dets = np.linalg.det(q)
    np.testing.assert_allclose(np.abs(dets), 1.0, atol=1e-10)
    assert abs(np.mean(dets > 0) - 0.5) < 0.04


def test_haar_rectangular_projection():
    """Rows of a Haar 3x10 are a uniformly random orthonormal 3-frame: each entry squared
    ~ Beta(1/2, 9/2)."""
    q = fastinit.sample("orthogonal", (3, 10), seed=8, n=3000, dtype=np.float64)
    assert stats.kstest(q[:, 1, 4] ** 2, stats.beta(0.5, 4.5).cdf).pvalue > 1e-3


def test_float32_is_float64_rounded():
    a = fastinit.sample("orthogonal", (9, 5), seed=4, n=3, dtype=np.float64)
    b = fastinit.sample("orthogonal", (9, 5), seed=4, n=3, dtype=np.float32)
    np.testing.assert_array_equal(a.astype(np.float32), b)


def test_delta_orthogonal():
    w = fastinit.sample("delta_orthogonal", (8, 5, 3, 3), seed=2, dtype=np.float64, gain=2.0)
    centre = w[:, :, 1, 1] / 2.0             # (out, in): columns orthonormal
    np.testing.assert_allclose(centre.T @ centre, np.eye(5), atol=1e-12)
    mask = np.ones((3, 3), bool)
    mask[1, 1] = False
    assert np.all(w[:, :, mask] == 0)
    # JAX places it at (k - 1) // 2; Keras layout (k, k, in, out)
    wk = fastinit.sample("delta_orthogonal", (4, 4, 5, 8), seed=2, layout="keras",
                         dtype=np.float64)
    c = wk[1, 1]
    np.testing.assert_allclose(c @ c.T, np.eye(5), atol=1e-12)
    assert np.count_nonzero(wk) == np.count_nonzero(c)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="one Numba thread here")
@pytest.mark.parametrize("shape", [(520, 600), (600, 520), (1030, 1040)])
def test_one_big_matrix_runs_on_every_thread_with_the_bits_of_one(monkeypatch, shape):
    """Fewer members than threads: each member's columns of the reflectors' product are cut
    into runs, tasks of their own (a column never depends on another), so one big orthogonal
    matrix fills every thread; its bits are those of one thread, and of the same member in a
    population whose members fill the threads."""
    from fastinit import kernels
    from fastinit.training import numba_threads
    with numba_threads(1):
        alone = fastinit.sample("orthogonal", shape, seed=5, dtype=np.float64)
    pop = fastinit.sample("orthogonal", shape, seed=5, n=3, dtype=np.float64)
    seen = threads_running(monkeypatch, kernels.orthogonal, "orthogonal_fill")
    with numba_threads(2):
        spread_out = fastinit.sample("orthogonal", shape, seed=5, dtype=np.float64)
    assert len(seen) == 2, seen
    np.testing.assert_array_equal(spread_out, alone)
    np.testing.assert_array_equal(pop[0], alone)
    q = alone.reshape(shape[0], -1)
    g = q @ q.T if shape[0] <= shape[1] else q.T @ q
    np.testing.assert_allclose(g, np.eye(len(g)), atol=1e-12)


@pytest.mark.parametrize("shape", [(100, 130), (33, 33), (1, 5), (17, 40)])
def test_the_runs_a_matrix_is_cut_into_leave_its_bits(shape, dtype):
    """orthogonal_fill's runs of rows (spread.row_runs: for cache and for threads) each
    compute their own part of the reflectors' product, from reflectors they draw themselves
    or that orthogonal_reflectors prepared once for all of a member's runs: the same values as
    one run, however many runs, even and uneven, and with runs of no rows at all."""
    from fastinit import kernels, spread
    p, q = shape
    key, stream, gain = np.array([3, 4], np.uint64), np.array([5, 6], np.uint64), np.ones(2)
    none = np.zeros((0, 0))
    g = np.empty((2, p * q - p * (p - 1) // 2))
    beta, sign = np.zeros((2, p)), np.empty((2, p))
    spread.fill(kernels.sampling.normal_fill, g, key, stream, np.zeros(2), np.ones(2))
    spread.over_members(kernels.orthogonal.orthogonal_reflectors, 2, g, beta, sign, np.int64(q))
    outs = []
    for runs in (1, 2, 3, 7, 9):
        for reflectors in ((none, none, none), (g, beta, sign)):
            out = np.empty((2,) + shape, dtype)
            spread.over_members(kernels.orthogonal.orthogonal_fill, 2 * runs, out, key, stream,
                                gain, runs, *reflectors)
            outs.append(out)
    for out in outs[1:]:
        np.testing.assert_array_equal(out, outs[0])
    np.testing.assert_allclose(outs[0][1] @ outs[0][1].T, np.eye(shape[0]), atol=TOL[dtype])


@pytest.mark.parametrize("scheme,shape", [("orthogonal", (1, 2**31)),
                                          ("orthogonal", (2**31, 1)),
                                          ("delta_orthogonal", (2**14, 2**14, 3))])
def test_too_big_for_memory_fails_at_once_with_fastinits_message(monkeypatch, scheme, shape):
    """The kernel's scratch (float64 normals, Y, V^T) is counted: a (1, 2**31) weight is 8.6 GB
    of float32 but needs hundreds of GB of scratch; Numba said "Allocation failed"."""
    import fastinit.memory as v
    monkeypatch.setattr(v, "available_memory", lambda: 2**30)
    with pytest.raises(MemoryError, match=rf"Scheme '{scheme}' in fastinit.sample: 1 "
                                          r"orthogonal \d+ x \d+ matrices and their float64 "
                                          r"scratch need about .* GB but 1.07 GB of memory is "
                                          r"available"):
        fastinit.sample(scheme, shape, seed=0)
    monkeypatch.setattr(v, "available_memory", lambda: pytest.fail("read for a small draw"))
    assert fastinit.sample(scheme, (16, 16, 3)[:len(shape)], seed=0).shape[0] == 16
