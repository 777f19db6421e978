"""Trained weights pinned to the bit: a speed-up of a kernel (a new GEMM blocking, a loop that
vectorises, a fused pass) must leave every number a study stored unchanged.

The cases use only fastinit's own arithmetic (its GEMM, its float32 exp / tanh / log and
float64 log / sincos polynomials, IEEE sqrt): no libm call whose last bit may differ between C
libraries, so the same digests hold on every machine. Data are exact rationals built from
integers, not a NumPy random stream. A deliberate change of results updates these digests and
says so in its commit.
"""
import hashlib

import numpy as np
import pytest

import fastinit

PINNED = {   # sha256 of the (K, P) parameters after training, first 16 hex digits
    "relu32": "9b0582b223a5941c",
    "tanh32": "3f38eb74b19ba0ba",
    "sigmoid32": "b61d51798a77c749",
    "gelu32": "88f804a7afff5867",
    "relu64": "5cbe6c0f8f6dbfd1",
    "linear64": "14168c8aa95397ff",
    "batchnorm32": "9570e87830b4717f",
    "layernorm64": "bc610e9e5ae2ba11",
    "dropout32": "9b4356b3b9c6b710",
}
CASES = {   # activation, dtype, optimizer, loss, init, more MLP settings
    "relu32": ("relu", np.float32, "momentum", "cross_entropy", "kaiming_uniform", {}),
    "tanh32": ("tanh", np.float32, "adam", "cross_entropy", "xavier_normal", {}),
    "sigmoid32": ("sigmoid", np.float32, "sgd", "bce", "orthogonal", {}),
    "gelu32": ("gelu_tanh", np.float32, "nesterov", "mse", "lecun_normal", {}),
    "relu64": ("relu", np.float64, "sgd", "mse_sum", "kaiming_normal", {}),
    "linear64": ("linear", np.float64, "adamw", "mse", "ZerO", {}),
    "batchnorm32": ("relu", np.float32, "momentum", "cross_entropy", "kaiming_normal",
                    {"norm": "batch"}),
    "layernorm64": ("relu", np.float64, "adam", "mse", "xavier_uniform", {"norm": "layer"}),
    "dropout32": ("relu", np.float32, "sgd", "cross_entropy", "he_uniform", {"dropout": 0.2}),
}


def _data(n, d, k, dtype):
    i, j = np.arange(n)[:, None], np.arange(d)[None, :]
    x = (((i * 7919 + j * 104729) % 1000) / 500.0 - 1.0).astype(dtype)
    return x, (np.arange(n) * 7 % k).astype(np.int64)


@pytest.mark.parametrize("case", sorted(CASES))
def test_trained_weights_keep_their_bits(case):
    act, dtype, opt, loss, init, more = CASES[case]
    x, y = _data(96, 20, 3, dtype)
    target = y if loss == "cross_entropy" else np.eye(3, dtype=dtype)[y]
    net = fastinit.MLP([20, 48, 40, 3], activation=act, init=init, n=3, seed=7, dtype=dtype,
                       **more)
    fastinit.train(net, (x, target), epochs=3, batch_size=16, optimizer=opt, lr=0.01,
                   loss=loss, eval_every=0)
    assert hashlib.sha256(net.params.tobytes()).hexdigest()[:16] == PINNED[case], case
