"""Nanoseconds per element of every activation's forward and backward pass, 1 thread.

    python bench/activation_costs.py            # float32 and float64, 8192 elements, median of 7

The kernels fastinit's training runs (kernels/activations.py forward and backward) on one
block of pre-activations drawn from N(0, 4), called 200 times inside one compiled loop (JIT
compile outside the timed region). A population's elementwise share of an epoch follows from
these: `fastinit profile --activation NAME` shows it inside a real epoch.
"""
import time

import numba
import numpy as np

from fastinit.kernels import activations as act

NAMES = ("linear", "relu", "leaky_relu", "elu", "selu", "gelu", "gelu_tanh", "silu", "tanh",
         "sigmoid", "softplus", "softsign", "mish")
N, CALLS, REPEATS = 8192, 200, 7


@numba.njit
def _loop(code, param, z, a, d, calls, backward):
    for _ in range(calls):
        if backward:
            act.backward(code, param, z, a, d)
        else:
            act.forward(code, param, z, a)


def per_element(name, dtype, backward):
    code = np.int64(NAMES.index(name))
    param = 0.01 if name == "leaky_relu" else 1.0
    z = (2.0 * np.random.default_rng(0).standard_normal(N)).astype(dtype)
    a, d = np.empty_like(z), np.ones_like(z)
    _loop(code, param, z, a, d, np.int64(1), False)          # a = phi(z), for the backward
    _loop(code, param, z, a, d, np.int64(1), backward)
    times = []
    for _ in range(REPEATS):
        d[:] = 1
        t0 = time.perf_counter()
        _loop(code, param, z, a, d, np.int64(CALLS), backward)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) / CALLS / N * 1e9


if __name__ == "__main__":
    numba.set_num_threads(1)
    print(f"{'activation':<12}" + "".join(f"{h:>12}" for h in (
        "f32 fwd", "f32 bwd", "f64 fwd", "f64 bwd")) + "   (ns per element, 1 thread)")
    for name in NAMES:
        cells = [per_element(name, dt, bw) for dt in (np.float32, np.float64)
                 for bw in (False, True)]
        print(f"{name:<12}" + "".join(f"{c:12.2f}" for c in cells), flush=True)
