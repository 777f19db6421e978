"""Two-sample tests against torch.nn.init for every PyTorch-named scheme (skipped without torch)."""
import math

import numpy as np
import pytest
from scipy import stats

import fastinit

torch = pytest.importorskip("torch")
init = torch.nn.init
SHAPE = (300, 200)

CASES = [
    ("uniform", dict(low=-0.5, high=2.0), lambda t: init.uniform_(t, -0.5, 2.0)),
    ("normal", dict(mean=0.3, std=1.7), lambda t: init.normal_(t, 0.3, 1.7)),
    ("trunc_normal", dict(mean=0.1, std=1.0, a=-1.5, b=0.8),
     lambda t: init.trunc_normal_(t, 0.1, 1.0, -1.5, 0.8)),
    ("trunc_normal", dict(std=0.02), lambda t: init.trunc_normal_(t, std=0.02)),
    ("xavier_uniform", dict(gain=2.0), lambda t: init.xavier_uniform_(t, gain=2.0)),
    ("xavier_normal", dict(gain=0.5), lambda t: init.xavier_normal_(t, gain=0.5)),
    ("kaiming_uniform", dict(a=0.1, mode="fan_out"),
     lambda t: init.kaiming_uniform_(t, a=0.1, mode="fan_out")),
    ("kaiming_uniform", dict(a=-0.3), lambda t: init.kaiming_uniform_(t, a=-0.3)),  # any sign
    ("kaiming_normal", dict(nonlinearity="relu"),
     lambda t: init.kaiming_normal_(t, nonlinearity="relu")),
    ("kaiming_normal", dict(nonlinearity="tanh", mode="fan_out"),
     lambda t: init.kaiming_normal_(t, mode="fan_out", nonlinearity="tanh")),
    ("torch_linear", {}, lambda t: init.kaiming_uniform_(t, a=math.sqrt(5))),
]


@pytest.mark.parametrize("scheme,params,torch_fn", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_same_distribution_as_torch(scheme, params, torch_fn):
    torch.manual_seed(0)
    t = torch_fn(torch.empty(SHAPE, dtype=torch.float64)).numpy().ravel()
    w = fastinit.sample(scheme, SHAPE, seed=0, dtype=np.float64, **params).ravel()
    assert stats.ks_2samp(w, t).pvalue > 1e-3
    assert w.min() >= t.min() - 0.05 * np.ptp(t) and w.max() <= t.max() + 0.05 * np.ptp(t)


def test_torch_linear_matches_nn_linear_default():
    torch.manual_seed(1)
    lin = torch.nn.Linear(200, 300, dtype=torch.float64)
    w = fastinit.sample("torch_linear", (300, 200), seed=1, dtype=np.float64)
    b = fastinit.sample("torch_linear_bias", (300,), seed=1, fan_in=200, dtype=np.float64)
    assert stats.ks_2samp(w.ravel(), lin.weight.detach().numpy().ravel()).pvalue > 1e-3
    assert stats.ks_2samp(b, lin.bias.detach().numpy()).pvalue > 1e-3
    bound = 1 / math.sqrt(200)
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound


def test_orthogonal_same_distribution_as_torch():
    torch.manual_seed(2)
    ts = np.stack([init.orthogonal_(torch.empty(5, 5, dtype=torch.float64)).numpy()
                   for _ in range(2000)])
    ws = fastinit.sample("orthogonal", (5, 5), seed=2, n=2000, dtype=np.float64)
    for i, j in [(0, 0), (4, 4), (1, 3)]:
        assert stats.ks_2samp(ws[:, i, j], ts[:, i, j]).pvalue > 1e-3


@pytest.mark.parametrize("shape,groups", [((6, 4, 3), 1), ((8, 2, 3, 3), 4), ((4, 4, 3, 3, 3), 2)])
def test_dirac_equals_torch(shape, groups):
    t = init.dirac_(torch.empty(shape, dtype=torch.float64), groups=groups).numpy()
    np.testing.assert_array_equal(fastinit.sample("dirac", shape, seed=0, groups=groups,
                                                  dtype=np.float64), t)


def test_eye_equals_torch():
    t = init.eye_(torch.empty(4, 7, dtype=torch.float64)).numpy()
    np.testing.assert_array_equal(fastinit.sample("identity", (4, 7), seed=0, dtype=np.float64), t)


def test_sparse_zero_count_equals_torch():
    torch.manual_seed(0)
    t = init.sparse_(torch.empty(20, 9), sparsity=0.35, std=0.01).numpy()
    w = fastinit.sample("sparse", (20, 9), seed=0, sparsity=0.35, std=0.01)
    np.testing.assert_array_equal((t == 0).sum(axis=0), (w == 0).sum(axis=0))


def test_fans_equal_torch():
    for shape in [(5, 3), (8, 4, 3), (6, 2, 3, 5), (2, 3, 1, 2, 2)]:
        fi, fo = init._calculate_fan_in_and_fan_out(torch.empty(shape))
        assert fastinit.compute_fans(shape) == (fi, fo)


@pytest.mark.parametrize("scheme", ["xavier_uniform", "xavier_normal"])
def test_xavier_gain_zero_gives_zeros_as_torch(scheme):
    """gain=0 raised "The 'scale' parameter of fastinit.sample (scheme 'xavier_uniform') must
    be in the interval (0.0, inf)", a parameter the user never gave; torch gives zeros."""
    t = getattr(init, scheme + "_")(torch.empty(3, 4, dtype=torch.float64), gain=0.0).numpy()
    np.testing.assert_array_equal(fastinit.sample(scheme, (3, 4), seed=0, gain=0.0,
                                                  dtype=np.float64), t)
    with pytest.raises(ValueError, match=r"The 'scale' parameter of fastinit\.sample \(scheme "
                                         r"'variance_scaling'\) must be in the interval \(0\.0"):
        fastinit.sample("variance_scaling", (3, 4), seed=0, scale=0.0)   # as Keras refuses
