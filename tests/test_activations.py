"""float32 activations against independent float64 references (NumPy's expm1 and log1p,
scipy's erfc): within about 1 ulp where their results matter (|x| < 20).

float32 GELU computes x Phi(x) in float64 with fastinit's own vectorisable normal CDF
(kernels/activations.py); the result, rounded to float32, is the correctly rounded value but
where the exact one lies within about 1e-13 of halfway between two floats."""
import numpy as np
import pytest

from fastinit.kernels import activations as act
from fastinit.kernels import rng

import reference

special = pytest.importorskip("scipy.special")


def _float32_grid(lo, hi, step=211):
    """Every step-th float32 in [lo, hi] by bit pattern (both signs), and the ends."""
    pos = np.arange(0, np.float32(max(abs(lo), abs(hi))).view(np.uint32) + 1, step,
                    dtype=np.uint32).view(np.float32)
    x = np.concatenate([pos, -pos, np.float32([lo, hi])])
    return x[(x >= lo) & (x <= hi)]


ACCURATE = {    # name -> float64 reference, within 1.1 ulp in float32 for |x| < 20
    "elu": lambda x: np.where(x > 0, x, np.expm1(x)),
    "selu": lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * np.expm1(x)),
    "silu": lambda x: x / (1 + np.exp(-x)),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
    "softplus": lambda x: np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x))),
    "mish": lambda x: x * np.tanh(np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))),
}


@pytest.mark.parametrize("name", sorted(ACCURATE))
def test_float32_activation_within_an_ulp(name):
    """elu and selu near 0 (e^x - 1 cancelled in float32: every digit lost), softplus and mish
    near x = -9 (1 + e^-|x| rounded to float32: up to 8e3 ulp) failed this on the old code."""
    x = _float32_grid(-20.0, 20.0, step=997)
    a = np.empty_like(x)
    reference.call(act.forward, np.int64(getattr(act, name.upper())), 1.0, x, a)
    with np.errstate(over="ignore"):
        want = ACCURATE[name](x.astype(np.float64))
    ulps = reference.ulps(a, want, np.float32)
    assert ulps.max() < 1.1, (x[ulps.argmax()], ulps.max())


def _gelu(x, derivative=False):
    a, d = np.empty_like(x), np.ones_like(x)
    reference.call(act.forward, np.int64(act.GELU), 0.0, x, a)
    reference.call(act.backward, np.int64(act.GELU), 0.0, x, a, d)
    return d if derivative else a


def test_float32_gelu_is_correctly_rounded_but_at_halfway_cases():
    """Up to |x| = 20 (beyond, x Phi(x) is x or -0 in float32). The old float32 GELU,
    0.5 x (1 + erf(x / sqrt 2)) in float64, was off by up to 10% below x = -8: 1 + erf lost the
    tail's relative accuracy (the float64 GELU, PyTorch's formula, keeps it; it is exact enough
    there for a float64 check and matches PyTorch)."""
    x = _float32_grid(-20.0, 20.0)
    xd = x.astype(np.float64)
    want = xd * 0.5 * special.erfc(-xd / np.sqrt(2.0))
    ulps = reference.ulps(_gelu(x), want, np.float32)
    assert ulps.max() < 0.51, (x[ulps.argmax()], ulps.max())
    assert np.mean(_gelu(x) != want.astype(np.float32)) < 1e-5


def test_float32_gelu_derivative_within_one_ulp():
    x = _float32_grid(-20.0, 20.0)
    xd = x.astype(np.float64)
    want = 0.5 * special.erfc(-xd / np.sqrt(2.0)) + xd * np.exp(-0.5 * xd * xd) / np.sqrt(
        2.0 * np.pi)
    ulps = reference.ulps(_gelu(x, derivative=True), want, np.float32)
    assert ulps.max() < 1.0, (x[ulps.argmax()], ulps.max())


def test_float32_gelu_at_the_extremes():
    x = np.float32([0.0, -0.0, 1e-30, -1e-30, 3e38, -3e38, np.inf, -np.inf, np.nan])
    a = _gelu(x)
    assert a[0] == 0.0 and a[1] == 0.0
    assert a[2] == np.float32(0.5e-30) and a[3] == np.float32(-0.5e-30)
    assert a[4] == np.float32(3e38) and a[5] == 0.0 and a[6] == np.inf
    assert np.isnan(a[7]) and np.isnan(a[8])     # -inf * Phi(-inf) = -inf * 0, as PyTorch's


def test_the_fitted_erfc_holds_its_relative_error_bound():
    """The polynomial's constants: erfc's relative error over its whole range, and 0 beyond."""
    t = np.concatenate([np.linspace(0.0, 12.999999, 200_001), np.float64([13.0, 40.0])])
    want = special.erfc(t) / 2
    got = reference.each(act.half_erfc, t)
    rel = np.abs(got[:-2] - want[:-2]) / want[:-2]
    assert rel.max() < 3e-13, (t[rel.argmax()], rel.max())
    assert got[-2] == got[-1] == 0.0


def test_vector_exp_float64_accuracy():
    y = np.concatenate([np.linspace(-708.0, 709.0, 400_001),
                        np.random.default_rng(0).uniform(-5, 5, 100_000), [0.0, -0.0]])
    want = np.exp(y)
    ulps = reference.ulps(reference.each(rng.exp_f64, y), want, np.float64)
    assert ulps.max() <= 3.0, (y[ulps.argmax()], ulps.max())
