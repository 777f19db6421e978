"""Slow, obvious reference implementations that fastinit's kernels are tested against.

Plain Python integers and float64 NumPy; nothing here is shared with the package (``each``
only runs a kernel's scalar helper over an array, compiled); and a spy the thread tests share
(``threads_running``).
"""
import math
import threading
import time

import numpy as np
from numba import njit

M0, M1 = 0xD2511F53, 0xCD9E8D57
W0, W1 = 0x9E3779B9, 0xBB67AE85
MASK = 0xFFFFFFFF
TOL = {np.float32: 1e-5, np.float64: 1e-12}   # absolute tolerances keyed by dtype


def ulps(got, want, dtype):
    """|got - want| in units of the last place of want rounded to dtype."""
    return np.abs(got.astype(np.float64) - want) / np.spacing(np.abs(want).astype(dtype))


@njit
def call(fn, *args):
    """fn(*args) for a kernel helper (compiled for other kernels only: no Python entry point)."""
    return fn(*args)


@njit
def each(fn, x):
    """fn (a scalar kernel helper) applied to every element of x, compiled."""
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = fn(x[i])
    return out


def philox4x32(ctr, key, rounds=10):
    """Philox4x32 as written in the Random123 paper, with Python integers."""
    c = list(ctr)
    k0, k1 = key
    for r in range(rounds):
        if r:
            k0, k1 = (k0 + W0) & MASK, (k1 + W1) & MASK
        p0, p1 = M0 * c[0], M1 * c[2]
        c = [(p1 >> 32) ^ c[1] ^ k0, p1 & MASK, (p0 >> 32) ^ c[3] ^ k1, p0 & MASK]
    return c


def words(seed, stream, n_words):
    """The first n_words 32-bit words of (seed, stream): block b gives words 4b..4b+3."""
    key = (seed & MASK, seed >> 32)
    out = []
    for b in range((n_words + 3) // 4):
        out += philox4x32((b & MASK, b >> 32, stream & MASK, stream >> 32), key)
    return np.array(out[:n_words], dtype=np.uint64)


def stream_of(member, tag=0):
    return (member << 32) | tag


def uniform_f32(seed, stream, n, low=0.0, high=1.0):
    w = words(seed, stream, n)
    u = (w >> 8).astype(np.float32) * np.float32(2.0 ** -24)
    return np.float32(low) + np.float32(np.float32(high) - np.float32(low)) * u


def hadamard(p):
    """Sylvester-Hadamard matrix of order p (a power of two), by the doubling construction."""
    h = np.ones((1, 1))
    while h.shape[0] < p:
        h = np.block([[h, h], [h, -h]])
    return h


def truncnorm_moments(a, b):
    """Mean and std of N(0, 1) truncated to [a, b], from the closed form."""
    pdf = lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    cdf = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))
    z = cdf(b) - cdf(a)
    mean = (pdf(a) - pdf(b)) / z
    var = 1 + (a * pdf(a) - b * pdf(b)) / z - mean ** 2
    return mean, math.sqrt(var)


# -- a plain float64 MLP: activations, losses, forward, backward ------------------------------

SELU_L, SELU_A = 1.0507009873554805, 1.6732632423543772


def _erf(x):
    return np.vectorize(math.erf)(x)


def act(name, z, p):
    """(phi(z), phi'(z)) in float64, written out from the definitions."""
    sig = lambda v: 1 / (1 + np.exp(-v))
    if name == "linear":
        return z, np.ones_like(z)
    if name == "relu":
        return np.maximum(z, 0), np.where(z > 0, 1.0, np.where(z == 0, p, 0.0))
    if name == "leaky_relu":
        return np.where(z > 0, z, p * z), np.where(z > 0, 1.0, p)
    if name == "elu":
        return np.where(z > 0, z, p * np.expm1(z)), np.where(z > 0, 1.0, p * np.exp(z))
    if name == "selu":
        return (SELU_L * np.where(z > 0, z, SELU_A * np.expm1(z)),
                SELU_L * np.where(z > 0, 1.0, SELU_A * np.exp(z)))
    if name == "gelu":
        cdf = 0.5 * (1 + _erf(z / math.sqrt(2)))
        return z * cdf, cdf + z * np.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    if name == "gelu_tanh":
        c = math.sqrt(2 / math.pi)
        u = c * (z + 0.044715 * z ** 3)
        t = np.tanh(u)
        return 0.5 * z * (1 + t), 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * c * (1 + 3 * 0.044715 * z * z)
    if name == "silu":
        s = sig(z)
        return z * s, s * (1 + z * (1 - s))
    if name == "tanh":
        t = np.tanh(z)
        return t, 1 - t * t
    if name == "sigmoid":
        s = sig(z)
        return s, s * (1 - s)
    if name == "softplus":
        return np.logaddexp(0, p * z) / p, sig(p * z)
    if name == "softsign":
        return z / (1 + np.abs(z)), 1 / (1 + np.abs(z)) ** 2
    if name == "mish":                      # x tanh(ln(1 + e^x))
        t = np.tanh(np.logaddexp(0, z))
        return z * t, t + z * (1 - t * t) * sig(z)
    raise ValueError(name)


def loss_and_grad(name, z, y):
    """Mean loss over the batch and its gradient w.r.t. the logits z (n, C)."""
    n, c = z.shape
    if name == "cross_entropy":
        m = z.max(axis=1, keepdims=True)
        lse = m[:, 0] + np.log(np.exp(z - m).sum(axis=1))
        loss = np.mean(lse - z[np.arange(n), y])
        p = np.exp(z - lse[:, None])
        p[np.arange(n), y] -= 1
        return loss, p / n
    t = y.reshape(n, c)
    if name == "mse":
        return np.mean((z - t) ** 2), 2 * (z - t) / (n * c)
    if name == "mse_sum":                   # 1/2 ||z - t||^2 per sample, mean over samples
        return 0.5 * np.sum((z - t) ** 2) / n, (z - t) / n
    sp = np.logaddexp(0, z)
    return np.mean(sp - t * z), (1 / (1 + np.exp(-z)) - t) / (n * c)


def mlp_grads(weights, biases, x, y, activation, p, loss):
    """Loss, dW list, db list of one network (weights (out, in)), plain NumPy float64."""
    a = np.asarray(x, dtype=float)
    acts, zs = [a], []
    L = len(weights)
    for l in range(L):
        z = a @ weights[l].T + biases[l]
        zs.append(z)
        a = act(activation, z, p)[0] if l < L - 1 else z
        acts.append(a)
    value, dz = loss_and_grad(loss, zs[-1], y)
    dws, dbs = [None] * L, [None] * L
    for l in range(L - 1, -1, -1):
        dws[l] = dz.T @ acts[l]
        dbs[l] = dz.sum(axis=0)
        if l:
            dz = (dz @ weights[l]) * act(activation, zs[l - 1], p)[1]
    return value, dws, dbs


def distinct_rows(rows: np.ndarray, tol: float) -> int:
    """Rows equal within tol * max(1, largest |entry| of the pair) count once: each row not yet
    claimed claims every row equal to it. The NumPy reference of kernels.stats.unit_symmetry."""
    rows = np.asarray(rows, dtype=float)
    n = len(rows)
    peak = np.max(np.abs(rows), axis=1) if rows.size else np.zeros(n)
    eq = np.zeros((n, n), dtype=bool)
    for i0 in range(0, n, 64):
        block = rows[i0:i0 + 64]
        diff = np.max(np.abs(block[:, None, :] - rows[None, :, :]), axis=2)
        scale = np.maximum(1.0, np.maximum(peak[i0:i0 + 64, None], peak[None, :]))
        eq[i0:i0 + 64] = diff <= tol * scale
    claimed = np.zeros(n, dtype=bool)
    count = 0
    for i in range(n):
        if not claimed[i]:
            count += 1
            claimed |= eq[i]
    return count


def max_cosine(rows: np.ndarray) -> float:
    """Largest cosine similarity between two different rows (two zero rows count as 1)."""
    if len(rows) < 2:
        return math.nan
    norms = np.linalg.norm(rows, axis=1)
    unit = np.divide(rows, norms[:, None], out=np.zeros_like(rows), where=norms[:, None] > 0)
    sim = unit @ unit.T
    zero = norms == 0
    sim[np.ix_(zero, zero)] = 1.0
    np.fill_diagonal(sim, -np.inf)
    return float(sim.max())





def threads_running(monkeypatch, module, name: str) -> set:
    """Patch kernel ``module.name`` to note the name of every thread that runs it, each call
    held 50 ms so the other threads claim their share meanwhile: the set of names, filled as
    it runs."""
    real, seen = getattr(module, name), set()

    def spy(lo, hi, *args):
        seen.add(threading.current_thread().name)
        time.sleep(0.05)
        return real(lo, hi, *args)
    monkeypatch.setattr(module, name, spy)
    return seen
