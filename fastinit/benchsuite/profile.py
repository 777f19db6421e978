"""Where one training epoch's time goes, kernel by kernel.

The epoch is one compiled call, so its parts are timed by replaying each part alone, compiled,
on the same shapes and as many times as the epoch runs it (steps x members), next to the real
epoch. Parts: the GEMM micro-kernels (forward, dW, dX), the transposes (batch gather, A for dW),
the elementwise passes (bias, activation and its derivative, bias gradient), the loss, the
optimizer; "rest" is the real epoch minus their sum (batch bookkeeping, scratch allocation).
"""
import time

import numpy as np

from ..kernels import profile as replay
from ..kernels.gemm import padded
from . import harness
from .training import _data, fastinit_epoch


def epoch_profile(sizes=(64, 64, 64, 10), batch=64, n=1536, K=64, threads=1):
    """{part: seconds} for one epoch of K members, plus "epoch" (the real one) and "rest"."""
    harness.set_threads(threads)
    sizes = list(sizes)
    dims = np.array(sizes, dtype=np.int64)
    ld = np.array([padded(d) for d in sizes[:-1]], dtype=np.int64)
    bp = padded(batch)
    steps = -(-n // batch)
    reps = steps * K // threads
    big = max(sizes) * max(bp, max(ld)) + 64
    f = np.float32
    rng = np.random.default_rng(0)
    w = rng.standard_normal(big).astype(f) * 0.1
    a, z, g, xt = (rng.standard_normal(big).astype(f) for _ in range(4))
    s = rng.standard_normal(4 * big).astype(f)
    x = rng.standard_normal((n, sizes[0])).astype(f)
    rows = np.arange(batch)
    y = rng.integers(0, sizes[-1], bp)
    p = rng.standard_normal(sum(o * l for o, l in zip(sizes[1:], ld)) + sum(sizes[1:])).astype(f)
    parts = {
        "GEMM (forward, dW, dX)": lambda r: replay.gemms(r, dims, ld, bp, batch, w, a, z, g, xt),
        "transposes (gather, dW input)": lambda r: replay.transposes(r, dims, ld, bp, batch, s, x,
                                                                rows),
        "elementwise (bias, activation, bias grad)": lambda r: replay.elementwise(
            r, dims, bp, batch, 1, z, a, g, w[:max(sizes)].copy()),
        "loss (softmax cross-entropy)": lambda r: replay.loss(r, sizes[-1], bp, batch, z, y, g,
                                                        np.empty(2 * bp, f)),
        "optimizer (SGD)": lambda r: replay.optimizer(r, p, p.copy()),
    }
    out = {}
    for name, fn in parts.items():
        fn(1)
        t0 = time.perf_counter()
        fn(reps)
        out[name] = time.perf_counter() - t0
    xs, ys = _data(sizes, n)
    out["epoch"] = harness.median_time(fastinit_epoch(sizes, xs, ys, batch, K), repeats=5)
    out["rest"] = max(0.0, out["epoch"] - sum(v for k, v in out.items() if k != "epoch"))
    return out


def markdown(prof, label) -> str:
    total = prof["epoch"]
    lines = [f"One epoch, {label}: {total * 1e3:.1f} ms", "",
             "| part | ms | share |", "|---|---|---|"]
    for k, v in prof.items():
        if k != "epoch":
            lines.append(f"| {k} | {v * 1e3:.1f} | {100 * v / total:.0f}% |")
    return "\n".join(lines)
