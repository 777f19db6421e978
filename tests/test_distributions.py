"""Each random scheme against scipy.stats, with the expected parameters recomputed here."""
import math

import numpy as np
import pytest
from scipy import stats

import fastinit

OUT, IN = 384, 160          # a (out, in) dense weight: fan_in 160, fan_out 384
FI, FO = IN, OUT
TRUNC = 0.87962566103423978
P_MIN = 1e-3                 # fixed seeds: each test passes or fails deterministically


def uniform(bound):
    return stats.uniform(loc=-bound, scale=2 * bound)


def truncnorm_corrected(std):
    s = std / TRUNC
    return stats.truncnorm(-2, 2, scale=s)


def kaiming_gain(nonlinearity, a):
    return {"relu": math.sqrt(2), "leaky_relu": math.sqrt(2 / (1 + a * a)), "tanh": 5 / 3,
            "linear": 1.0, "selu": 0.75, "sigmoid": 1.0}[nonlinearity]


# (scheme, params, shape, expected scipy distribution, bounds or None)
CASES = [
    ("uniform", dict(low=-0.3, high=0.7), None, stats.uniform(-0.3, 1.0), (-0.3, 0.7)),
    ("normal", dict(mean=0.5, std=2.0), None, stats.norm(0.5, 2.0), None),
    ("trunc_normal", dict(mean=0.2, std=1.5, a=-1.0, b=3.0), None,
     stats.truncnorm((-1 - 0.2) / 1.5, (3 - 0.2) / 1.5, loc=0.2, scale=1.5), (-1.0, 3.0)),
    ("trunc_normal", dict(mean=0.0, std=1.0, a=2.5, b=math.inf), None,
     stats.truncnorm(2.5, math.inf), (2.5, math.inf)),
    ("trunc_normal", dict(mean=0.0, std=1.0, a=-9.0, b=-8.0), None,
     stats.truncnorm(-9.0, -8.0), (-9.0, -8.0)),
    ("trunc_normal_std", dict(mean=1.0, std=0.5, a=-1.0, b=2.0), None,
     stats.truncnorm(-1.0, 2.0, loc=1.0, scale=0.5), (0.5, 2.0)),
    ("trunc_normal_corrected", dict(std=0.3), None, truncnorm_corrected(0.3),
     (-2 * 0.3 / TRUNC, 2 * 0.3 / TRUNC)),
    ("xavier_uniform", dict(gain=1.3), None, uniform(1.3 * math.sqrt(6 / (FI + FO))), True),
    ("xavier_normal", dict(gain=0.7), None, stats.norm(0, 0.7 * math.sqrt(2 / (FI + FO))), None),
    ("kaiming_uniform", dict(), None, uniform(math.sqrt(2) * math.sqrt(3 / FI)), True),
    ("kaiming_uniform", dict(a=0.2, mode="fan_out"), None,
     uniform(kaiming_gain("leaky_relu", 0.2) * math.sqrt(3 / FO)), True),
    ("kaiming_normal", dict(nonlinearity="relu"), None, stats.norm(0, math.sqrt(2 / FI)), None),
    ("kaiming_normal", dict(nonlinearity="tanh", mode="fan_out"), None,
     stats.norm(0, (5 / 3) / math.sqrt(FO)), None),
    ("glorot_uniform", {}, None, uniform(math.sqrt(6 / (FI + FO))), True),
    ("glorot_normal", {}, None, truncnorm_corrected(math.sqrt(2 / (FI + FO))), True),
    ("he_uniform", {}, None, uniform(math.sqrt(6 / FI)), True),
    ("he_normal", {}, None, truncnorm_corrected(math.sqrt(2 / FI)), True),
    ("lecun_uniform", {}, None, uniform(math.sqrt(3 / FI)), True),
    ("lecun_normal", {}, None, truncnorm_corrected(math.sqrt(1 / FI)), True),
    ("variance_scaling", dict(scale=3.0, mode="fan_geo_avg", distribution="normal"), None,
     stats.norm(0, math.sqrt(3.0 / math.sqrt(FI * FO))), None),
    ("variance_scaling", dict(scale=0.5, mode="fan_out", distribution="uniform"), None,
     uniform(math.sqrt(3 * 0.5 / FO)), True),
    ("variance_scaling", dict(scale=2.0, mode="fan_avg"), None,
     truncnorm_corrected(math.sqrt(2.0 / ((FI + FO) / 2))), True),
    # Keras reads distribution="normal" as truncated_normal (JAX, variance_scaling: untruncated)
    ("keras_variance_scaling", dict(scale=2.0, mode="fan_out", distribution="normal"), None,
     truncnorm_corrected(math.sqrt(2.0 / FO)), True),
    ("keras.variance_scaling", dict(distribution="untruncated_normal"), None,
     stats.norm(0, math.sqrt(1 / FI)), None),
    ("torch_linear", {}, None, uniform(1 / math.sqrt(FI)), True),
    ("keras_dense", {}, None, uniform(math.sqrt(6 / (FI + FO))), True),
    ("flax_dense", {}, None, truncnorm_corrected(math.sqrt(1 / FI)), True),
    # conv weight (out, in, kh, kw): fans multiply by the receptive field
    ("kaiming_normal", dict(nonlinearity="relu"), (64, 20, 3, 3),
     stats.norm(0, math.sqrt(2 / (20 * 9))), None),
]


def _support(dist):
    lo, hi = dist.support()
    return float(lo), float(hi)


@pytest.mark.parametrize("scheme,params,shape,dist,bounds", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_scheme_matches_distribution(scheme, params, shape, dist, bounds, dtype):
    w = fastinit.sample(scheme, shape or (OUT, IN), seed=2024, dtype=dtype, **params)
    assert w.dtype == dtype and w.shape == (shape or (OUT, IN))
    x = w.ravel().astype(np.float64)
    assert stats.kstest(x, dist.cdf).pvalue > P_MIN
    if bounds is not None:
        lo, hi = _support(dist) if bounds is True else bounds
        assert x.min() >= np.float64(dtype(lo)) and x.max() <= np.float64(dtype(hi))
        if np.isfinite(hi) and np.isfinite(lo):  # the sample reaches into both ends
            assert x.min() < lo + 0.02 * (hi - lo) and x.max() > hi - 0.02 * (hi - lo)


def test_population_members_are_independent(dtype):
    """Members of a population are independent draws: their pooled sample is one distribution
    and pairwise correlations are at noise level."""
    w = fastinit.sample("normal", (32, 32), seed=5, n=64, dtype=dtype).reshape(64, -1)
    assert stats.kstest(w.ravel().astype(float), "norm").pvalue > P_MIN
    c = np.corrcoef(w.astype(float))
    off = c[~np.eye(64, dtype=bool)]
    assert np.abs(off).max() < 5 / math.sqrt(w.shape[1])


def test_seeds_give_different_streams():
    a = fastinit.sample("normal", (50,), seed=1)
    b = fastinit.sample("normal", (50,), seed=2)
    c = fastinit.sample("normal", (50,), seed=1, start=1)
    assert not np.array_equal(a, b) and not np.array_equal(a, c)


def test_large_seed_uses_all_64_bits():
    a = fastinit.sample("uniform", (20,), seed=3)
    b = fastinit.sample("uniform", (20,), seed=3 + 2**32)
    assert not np.array_equal(a, b)
    fastinit.sample("uniform", (2,), seed=2**64 - 1)


def test_float64_uses_53_bits():
    u = fastinit.sample("uniform", (4096,), seed=9, dtype=np.float64)
    frac = u * 2.0**53
    assert np.array_equal(frac, np.floor(frac))       # a multiple of 2^-53
    assert np.count_nonzero(np.floor(u * 2.0**24) != u * 2.0**24) > 4000  # finer than float32
