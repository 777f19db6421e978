"""Timing helpers for bench/: thread control, a median timer and the ratio table."""
from __future__ import annotations

import re
import statistics
import time
from collections import defaultdict

import numba

from ..store import machine  # noqa: F401 - benchmarks name the machine as the store does

THREADS = [t for t in (1, 2) if t <= numba.config.NUMBA_NUM_THREADS]
# True while pytest runs bench/ untimed (--benchmark-disable, the default of `pytest`): each
# suite then takes its quick cases, a smoke test that keeps the code from rotting; the full
# sizes run with --benchmark-enable (bench/conftest.py sets it)
SMOKE = False


def torch_or_none():
    try:
        import torch
        return torch
    except ImportError:
        return None


def jax_or_none():
    try:
        import jax
        return jax
    except ImportError:
        return None


def set_threads(n: int) -> int:
    """Set Numba's and PyTorch's thread counts to n, and every BLAS and OpenMP pool's when
    threadpoolctl is installed (NumPy's QR, a peer, runs OpenBLAS's threads); return Numba's
    previous count."""
    prev = numba.get_num_threads()
    numba.set_num_threads(n)
    torch = torch_or_none()
    if torch is not None:
        torch.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return prev
    threadpool_limits(n)            # applied now, kept until the next call (not a block)
    return prev


def median_time(fn, *, repeats: int = 7, min_seconds: float = 0.2) -> float:
    """Median wall time of fn() over at least ``repeats`` calls and ``min_seconds``; one
    untimed warm-up call first (JIT compile, caches, page faults of reused buffers)."""
    fn()
    times = []
    start = time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= 200:
            break
    return statistics.median(times)


def ratio_table(rows) -> str:
    """Markdown table: per group, every implementation's median and fastinit's speed-up over it.

    rows: (group, test name, median seconds). The implementation is the first bracketed
    parameter of the test name, fastinit's ones start with 'fastinit'.
    """
    by_group = defaultdict(dict)
    for group, name, median in rows:
        m = re.search(r"\[([^\]-]+)", name)
        impl = m.group(1) if m else name
        by_group[group][impl] = median
    lines = ["| case | implementation | median ms | fastinit speed-up |", "|---|---|---|---|"]
    for group in sorted(by_group, key=str):
        impls = by_group[group]
        ours = [v for k, v in impls.items() if k.startswith("fastinit")]
        best = min(ours) if ours else None
        for impl, med in sorted(impls.items(), key=lambda kv: kv[1]):
            ratio = "" if best is None or impl.startswith("fastinit") else f"{med / best:.2f}x"
            lines.append(f"| {group} | {impl} | {med * 1e3:.3f} | {ratio} |")
    return "\n".join(lines)
