"""The bit generator and its transforms against independent oracles."""
import numpy as np
import pytest
from numba import njit
from scipy import special

import fastinit
from fastinit.kernels import rng

import reference

# Random123 kat_vectors, "philox4x32 10": counter (4 words), key (2 words), expected (4 words)
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@njit
def _philox(c, k):
    u = np.uint64
    return rng.philox4x32(u(c[0]), u(c[1]), u(c[2]), u(c[3]), u(k[0]), u(k[1]))


@pytest.mark.parametrize("ctr,key,expected", KAT)
def test_philox_known_answers(ctr, key, expected):
    assert tuple(int(x) for x in _philox(np.array(ctr, np.uint64), np.array(key, np.uint64))) \
        == expected
    assert tuple(reference.philox4x32(ctr, key)) == expected


def test_philox_matches_reference_on_random_counters():
    gen = np.random.default_rng(7)
    for _ in range(200):
        ctr = [int(x) for x in gen.integers(0, 2**32, size=4)]
        key = [int(x) for x in gen.integers(0, 2**32, size=2)]
        got = _philox(np.array(ctr, np.uint64), np.array(key, np.uint64))
        assert [int(x) for x in got] == reference.philox4x32(ctr, key)


def test_uniform_stream_is_philox_words():
    """fastinit.sample('uniform', float32) is exactly the documented map of Philox words."""
    seed = 2**40 + 12345
    got = fastinit.sample("uniform", (7, 13), seed=seed, n=3, start=5)
    for m in range(3):
        want = reference.uniform_f32(seed, reference.stream_of(5 + m), 7 * 13)
        np.testing.assert_array_equal(got[m].ravel(), want)


@njit
def _box_muller_of_words(w, f32):
    """Each pair of words (float32) or four (float64) of a stream -> its two normals, one
    block at a time: the obvious loop the sampling kernel's tiled passes must agree with."""
    out = np.empty(w.size if f32 else w.size // 2, np.float64)
    if f32:
        for j in range(w.size // 2):
            out[2 * j], out[2 * j + 1] = rng.box_muller_f32(w[2 * j], w[2 * j + 1])
    else:
        for j in range(w.size // 4):
            out[2 * j], out[2 * j + 1] = rng.box_muller_f64(w[4 * j], w[4 * j + 1],
                                                            w[4 * j + 2], w[4 * j + 3])
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normal_stream_is_box_muller_of_philox_words(dtype):
    """fastinit.sample('normal') is Box-Muller on consecutive Philox words, value for value,
    across the kernel's chunks and tiles (one member's 8192 + 1031 values: a chunk of whole
    tiles, then a chunk of a whole tile, a tile of one block and a tail of 3) and members."""
    seed, n_values = 2**33 + 99, 8192 + 1031
    got = fastinit.sample("normal", (n_values,), seed=seed, n=2, start=3, dtype=dtype, std=1.0)
    per_value = 1 if dtype == np.float32 else 2
    for m in range(2):
        w = reference.words(seed, reference.stream_of(3 + m), 4 * -(-n_values * per_value // 4))
        want = _box_muller_of_words(w, dtype == np.float32)[:n_values].astype(dtype)
        np.testing.assert_array_equal(got[m], want)


def test_ndtri_against_scipy():
    p = np.concatenate([np.logspace(-300, -1, 600), np.linspace(0.01, 0.99, 9999),
                        1 - np.logspace(-16, -2, 200)])
    got, want = reference.each(rng.ndtri, p), special.ndtri(p)
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-15)


@njit
def _units(w):
    a = np.empty(w.size, np.float32)
    b = np.empty(w.size, np.float32)
    for i in range(w.size):
        a[i] = rng.u32_to_unit_f32(w[i])
        b[i] = rng.u32_to_open_unit_f32(w[i])
    return a, b


def test_unit_conversions_bounds():
    w = np.array([0, 1, 255, 256, 2**31, 2**32 - 1], dtype=np.uint64)
    closed_open, open_closed = _units(w)
    assert closed_open.min() == 0.0 and closed_open.max() < 1.0
    assert open_closed.min() > 0.0 and open_closed.max() == 1.0


@njit
def _logs(x32, x64):
    a = np.empty_like(x32)
    b = np.empty_like(x64)
    for i in range(x32.size):
        a[i] = rng.log_f32(x32[i])
    for i in range(x64.size):
        b[i] = rng.log_f64(x64[i])
    return a, b


@njit
def _sincos(x32, x64):
    s32, c32 = np.empty_like(x32), np.empty_like(x32)
    s64, c64 = np.empty_like(x64), np.empty_like(x64)
    for i in range(x32.size):
        s32[i], c32[i] = rng.sincos_f32(x32[i])
    for i in range(x64.size):
        s64[i], c64[i] = rng.sincos_f64(x64[i])
    return s32, c32, s64, c64


def test_vector_log_accuracy():
    """The Box-Muller logs stay within 1.5 ulp of float64 NumPy on every input they can see."""
    x32 = (np.arange(1, 2**24 + 1, dtype=np.float64) * 2.0**-24).astype(np.float32)
    gen = np.random.default_rng(1)
    x64 = np.concatenate([gen.random(100_000), 2.0**-53 * np.arange(1, 5000),
                          1 - 2.0**-53 * np.arange(1, 5000)])
    a, b = _logs(x32, x64)
    ref32, ref64 = np.log(x32.astype(np.float64)), np.log(x64)
    keep = ref32 != 0
    assert reference.ulps(a[keep], ref32[keep], np.float32).max() < 1.5
    assert a[-1] == 0.0
    assert reference.ulps(b, ref64, np.float64).max() < 1.5


def test_vector_sincos_accuracy():
    x64 = np.linspace(-np.pi / 4, np.pi / 4, 200_001)
    x32 = x64.astype(np.float32)
    s32, c32, s64, c64 = _sincos(x32, x64)
    ref = x32.astype(np.float64)
    nz = ref != 0
    assert reference.ulps(s32[nz], np.sin(ref[nz]), np.float32).max() < 1.5
    assert reference.ulps(c32, np.cos(ref), np.float32).max() < 1.5
    assert np.abs(s64 - np.sin(x64)).max() <= 2 * np.spacing(0.71)
    assert np.abs(c64 - np.cos(x64)).max() <= 2 * np.spacing(1.0)


def test_normal_tails_reach_the_resolution_limit():
    """float32 Box-Muller radii reach sqrt(-2 ln 2^-24) = 5.77 sd; float64 go further."""
    big = fastinit.sample("normal", (4_000_000,), seed=3)
    assert 4.5 < np.abs(big).max() <= 5.8
