"""A population's members spread over threads: one serial kernel call per block of members.

The population kernels (kernels.train.train_epoch, evaluate, gradients, kernels.stats
.layer_moments and unit_symmetry, kernels.profile.replay, and the sampling fills, whose tasks are
chunks of members' values) take ``lo, hi`` first and run members (tasks) lo..hi-1 one after
another; ``over_members`` calls such a kernel once per thread on contiguous blocks of members
(sizes differing by at most one, as a static parallel loop would), the first block on the
calling thread, the others on a pool of Python threads. The kernels release the GIL (nogil), so
the blocks run at once. The thread count is Numba's for the calling thread
(``numba.get_num_threads()``: fastinit.train's ``threads`` and training.numba_threads set it).

Why not ``prange``: Numba compiles a parallel loop's body into a function of its own and the
kernel around it separately, each optimising and emitting machine code for everything the body
calls, so a population kernel that calls the whole forward and backward pass compiled it three
times over (about 20 s more per kernel on a cold cache, measured on 2 cores). A member's
arithmetic never depends on which thread or block runs it, so the bits are the same on any
thread count. Waiting threads sleep (no spinning), so a busy core costs a population at most
its share of the work.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba

from . import kernels

_LOCK = threading.Lock()
_POOL: ThreadPoolExecutor | None = None


def _reset_after_fork() -> None:
    global _POOL
    _POOL = None                 # a forked child has none of its parent's threads


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max(1, numba.config.NUMBA_NUM_THREADS - 1),
                                       thread_name_prefix="fastinit-members")
        return _POOL


def blocks(K: int, threads: int) -> list[tuple[int, int]]:
    """Contiguous (lo, hi) blocks of K members for ``threads`` threads, sizes within one."""
    T = max(1, min(threads, K))
    size, extra = divmod(K, T)
    out, lo = [], 0
    for i in range(T):
        hi = lo + size + (i < extra)
        out.append((lo, hi))
        lo = hi
    return out


def over_members(kernel, K: int, *args) -> None:
    """kernel(lo, hi, *args) for every block of the K members, on Numba's thread count for
    this thread; returns when every block is done, raising the first block's error (the
    caller's block first)."""
    parts = blocks(K, numba.get_num_threads())
    if len(parts) == 1:
        kernel(0, K, *args)
        return
    futures = [_pool().submit(kernel, lo, hi, *args) for lo, hi in parts[1:]]
    try:
        kernel(*parts[0], *args)
    finally:                            # every block done before returning or raising; the
        for f in futures:               # caller's own error, if any, is the one raised
            f.exception()
    for f in futures:
        f.result()


def fill(kernel, out, *args) -> None:
    """A chunked sampling fill (kernels.sampling) of ``out`` (N, M), its tasks over the threads."""
    over_members(kernel, kernels.sampling.tasks(out), out, *args)
