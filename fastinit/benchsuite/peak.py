"""The honest single-thread GEMM peak every "% of peak" figure divides by: measured with Numba,
PyTorch and every BLAS and OpenMP pool held to one thread and the hold checked
(threadpoolctl), or not claimed at all."""
import contextlib
from typing import NamedTuple

import numpy as np

from . import harness


class PeakUnverified(RuntimeError):
    """The single-thread GEMM peak cannot be measured honestly here (a BLAS not limited to one
    thread, or threadpoolctl missing): no "% of peak" is printed then."""


def _over_one(torch) -> list[str]:
    """Each BLAS or OpenMP library threadpoolctl reports with num_threads != 1, and PyTorch's
    intra-op pool when it is not at 1."""
    from threadpoolctl import threadpool_info
    over = [f"{i['internal_api']} ({i.get('filepath', '?')}): {i['num_threads']} threads"
            for i in threadpool_info() if i.get("num_threads") != 1]
    if torch is not None and torch.get_num_threads() != 1:
        over.append(f"PyTorch intra-op pool: {torch.get_num_threads()} threads")
    return over


@contextlib.contextmanager
def one_thread():
    """Numba, PyTorch and every BLAS and OpenMP library limited to one thread (threadpoolctl),
    the limit checked: raises PeakUnverified when threadpoolctl is missing or a library still
    runs more than one thread."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise PeakUnverified("threadpoolctl is not installed, so BLAS may use every core: pip "
                             "install threadpoolctl (or pip install 'fastinit[bench]')") from None
    torch = harness.torch_or_none()
    prev = harness.set_threads(1)
    try:
        with threadpool_limits(1):
            over = _over_one(torch)
            if over:
                raise PeakUnverified("BLAS not limited to one thread: " + "; ".join(over))
            yield
    finally:
        harness.set_threads(prev)


def _gemm_rate(dtype) -> float:
    """Best GEMM rate (GFLOP/s) of NumPy's BLAS and PyTorch at n=1024 in ``dtype``, at the
    thread setting the caller chose."""
    a = np.random.default_rng(0).random((1024, 1024)).astype(dtype)
    best = harness.median_time(lambda: a @ a, repeats=5)
    torch = harness.torch_or_none()
    if torch is not None:
        t = torch.from_numpy(a)
        best = min(best, harness.median_time(lambda: t @ t, repeats=5))
    return 2 * 1024 ** 3 / best / 1e9


class Peak(NamedTuple):
    """A single-thread GEMM peak: GFLOP/s, whether every BLAS and OpenMP pool was seen at one
    thread while it was measured (one_thread), and what was seen."""
    gflops: float
    verified: bool
    how: str


def gemm_peak(dtype=np.float32) -> Peak:
    """The single-thread GEMM rate in ``dtype`` (float32: sgemm, float64: dgemm), measured
    inside one_thread(): ``verified``. When one thread cannot be made sure of, the rate at one
    Numba and PyTorch thread with BLAS unchecked, not verified, ``how`` saying why: callers
    print no "% of peak" then."""
    try:
        with one_thread():
            return Peak(_gemm_rate(dtype), True, "every BLAS and OpenMP pool at one thread "
                                                 "(threadpoolctl)")
    except PeakUnverified as e:
        prev = harness.set_threads(1)
        try:
            return Peak(_gemm_rate(dtype), False, str(e))
        finally:
            harness.set_threads(prev)


def sgemm_peak() -> float:
    """The verified single-thread float32 GEMM rate (GFLOP/s); raises PeakUnverified when one
    thread cannot be made sure of (no "% of peak" is printed then)."""
    with one_thread():
        return _gemm_rate(np.float32)
