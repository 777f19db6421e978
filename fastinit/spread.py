"""A population's members spread over threads: serial kernel calls on runs of members.

The population kernels (kernels.train.train_epoch, evaluate, gradients, kernels.stats
.layer_moments and unit_symmetry, kernels.profile.replay, the sampling fills, whose tasks are
chunks of members' values, and kernels.orthogonal's, runs of a member's rows: ``row_runs``)
take ``lo, hi`` first and run members (tasks) lo..hi-1 one after another; ``over_members`` runs
such a kernel on ``lanes`` threads: the calling thread and a pool of Python threads, each with
a row of its own of any scratch (``each``), claim contiguous runs of members from a shared
counter until none is left, long runs first, shorter ones as the members run out (guided
scheduling: 15 calls for 64 members on two threads, 6 us each). The kernels release the GIL
(nogil), so the threads run at once, and a thread whose core is slower (another process on it,
a noisy neighbour) takes fewer members instead of holding the others up: in equal halves, a
population of 64 on two threads waited up to a fifth of its epoch for the slower half. The
thread count is Numba's for the calling thread (``numba.get_num_threads()``: fastinit.train's
``threads`` and training.numba_threads set it).

Why not ``prange``: Numba compiles a parallel loop's body into a function of its own and the
kernel around it separately, each optimising and emitting machine code for everything the body
calls, so a population kernel that calls the whole forward and backward pass compiled it three
times over (about 20 s more per kernel on a cold cache, measured on 2 cores). A member's
arithmetic never depends on which thread or run of members runs it, so the bits are the same
on any thread count. Waiting threads sleep (no spinning), and a busy core takes fewer members.

With fewer members than threads, an epoch may instead split each member's products by rows
over the threads (kernels.train.train_epoch_split, the same bits): ``splits`` says when that
may pay and ``SplitChoice`` keeps whichever way measures faster on this machine and load. An
evaluation with fewer members than threads spreads runs of each member's batches instead
(``batch_runs``, ``evaluate``): each batch's sums are kept and added in batch order, the same
bits.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from . import kernels

_LOCK = threading.Lock()
_POOL: ThreadPoolExecutor | None = None


def _reset_after_fork() -> None:
    global _POOL, _LOCK
    _POOL = None                 # a forked child has none of its parent's threads,
    _LOCK = threading.Lock()     # and a lock one of them held would stay held


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max(1, numba.config.NUMBA_NUM_THREADS - 1),
                                       thread_name_prefix="fastinit-members")
        return _POOL


def lanes(K: int, threads: int) -> int:
    """How many threads over_members runs K members on: ``threads``, but no more than K (and
    at least one)."""
    return max(1, min(threads, K))


class _Claims:
    """The next members to run, handed out under a lock: runs of about 1 / (2 threads) of the
    members left, at least one; none once every member is claimed or the claims are closed (an
    error, a Ctrl-C). ``running`` counts the pool threads' runs handed out and not yet done
    (not the calling thread's: a Ctrl-C, delivered to that thread, could land between a count
    and its run, and the count would never come down)."""

    def __init__(self, K: int, threads: int):
        self.K, self.threads, self.next, self.closed, self.running = K, threads, 0, False, 0
        self._idle = threading.Condition()

    def take(self, counted: bool) -> tuple[int, int] | None:
        with self._idle:
            if self.closed or self.next >= self.K:
                return None
            lo = self.next
            self.next = lo + max(1, (self.K - lo) // (2 * self.threads))
            self.running += counted
            return lo, self.next

    def done(self) -> None:
        with self._idle:
            self.running -= 1
            self._idle.notify_all()

    def close(self) -> None:
        with self._idle:
            self.closed = True

    def settle(self, futures) -> None:
        """In the calling thread, after its own runs: return once no pool thread's run is
        going and none can start (the claims closed or all taken): a run still writing into
        the caller's arrays would race with whatever the caller does next. Threads not
        started yet are cancelled (nothing is left for them). A Ctrl-C while waiting (or
        whatever a signal handler raises) closes the claims, waits on, and is raised at the
        end."""
        interrupted = None
        while True:
            try:
                for f in futures:
                    f.cancel()
                with self._idle:
                    self._idle.wait_for(lambda: self.running == 0)
                for f in futures:
                    if not f.cancelled():
                        f.exception()
                break
            except BaseException as e:  # noqa: BLE001 - raised once the threads are done
                self.close()
                interrupted = e
        if interrupted is not None:
            raise interrupted


def over_members(kernel, K: int, *args, each=None) -> None:
    """kernel(lo, hi, *args) until every one of the K members has run once, on Numba's thread
    count for this thread, each thread claiming runs of members as it finishes the last.
    Returns, or raises, only when no thread is running the kernel any more (a Ctrl-C
    included): an error in one thread closes the claims, so the others stop after the run
    they are on, and the calling thread's error is raised, else the first pool thread's (by
    thread number). ``each``: a sequence of arrays with a row per thread (at least
    lanes(K, threads) rows), thread b's row passed after ``args``: memory of its own that the
    caller allocates once for many calls."""
    T = lanes(K, numba.get_num_threads())
    own = [()] * T if each is None else [tuple(a[b] for a in each) for b in range(T)]
    if T == 1:
        kernel(0, K, *args, *own[0])
        return
    claims = _Claims(K, T)

    def run(b):
        counted = b > 0                 # a pool thread's run (see _Claims)
        while (block := claims.take(counted)) is not None:
            try:
                kernel(*block, *args, *own[b])
            except BaseException:
                claims.close()          # the other threads stop after the run they are on
                raise
            finally:
                if counted:
                    claims.done()
    futures = []
    try:
        for b in range(1, T):
            futures.append(_pool().submit(run, b))
        run(0)
    except BaseException:
        claims.close()
        raise
    finally:
        claims.settle(futures)
    for f in futures:
        if not f.cancelled():
            f.result()


def workspace(net, batch: int, threads: int | None = None, evaluation: bool = False
              ) -> np.ndarray:
    """Scratch for ``net``'s passes over batches of ``batch`` samples, a row (dense.layout's
    total) per thread over_members runs on ``threads`` (default: Numba's count for this
    thread; ``evaluation``: a row for every thread, as evaluation spreads a few members'
    batches over them, see ``batch_runs``): allocated once for many calls, so only the first
    maps its memory (and only the rows used are ever mapped)."""
    T = numba.get_num_threads() if threads is None else threads
    rows = T if evaluation else lanes(net.n, T)
    return np.empty((rows, net._scratch_size(batch)), dtype=net.dtype)


def batch_runs(net, n: int, batch: int, threads: int) -> int:
    """How many runs of batches an evaluation of ``n`` samples cuts each member's pass into,
    each run a task of its own (kernels.train.evaluate): one when the members fill the threads
    (a thread takes whole members) or the pass is under 128 M multiply-adds, about 3 ms on one
    thread, else four per thread (a slower thread takes fewer), at most one per batch. A
    member's sums are added in batch order either way: the same bits. Under that size a pool
    thread that wakes late, or is preempted by another process, holds its run for longer than
    the split saves (one [64, 64, 64, 10], two threads against one: 1536 samples 1.0x free;
    3700 and 5000 samples 0.66-0.81x free but 1.05-1.15x with the other core busy; 14600
    samples, 130 M, 0.53-0.57x free and 1.03-1.08x busy)."""
    if net.n >= threads or _macs(net) * n < 128_000_000:
        return 1
    return min(-(-n // batch), 4 * threads)


def evaluate(net, x, labels, targets, loss_code: int, write_out: bool, batch: int, work=None):
    """fastinit.network.evaluate's sums and logits: every member over x in batches of
    ``batch``, on ``lanes`` threads, runs of members or (fewer members than threads) runs of
    batches (``batch_runs``) as the tasks of kernels.train.evaluate; each member's batches
    then added in batch order (NumPy's accumulate is sequential), the bits of one thread."""
    n, K, T = x.shape[0], net.n, numba.get_num_threads()
    batch = min(batch, n)
    runs = batch_runs(net, n, batch, T)
    sums = np.zeros((2, K, -(-n // batch) + 1))    # per batch; column 0: where the sums start
    out = np.empty((K, n, net.layer_sizes[-1]) if write_out else (1, 1, 1), dtype=net.dtype)
    work = workspace(net, batch, evaluation=True) if work is None else work
    rows, size = lanes(K * runs, T), net._scratch_size(batch)
    if not (work.ndim == 2 and work.dtype == net.dtype and work.flags.c_contiguous
            and work.shape[1] >= size and len(work) >= rows):
        raise ValueError(f"fastinit.network.evaluate: 'work' must be spread.workspace(net, "
                         f"batch, evaluation=True): C-contiguous {net.dtype.name}, at least "
                         f"({rows}, {size}) here. Got {work.dtype.name}, shape {work.shape}.")
    over_members(kernels.train.evaluate, K * runs, net.params, x, labels, targets, batch, runs,
                 net.arch, loss_code, sums, out, write_out, each=(work,))
    total = np.add.accumulate(sums, axis=2)[:, :, -1].copy()    # (2, K): its rows contiguous
    return total[0], total[1], out


def row_runs(K: int, p: int, q: int, threads: int) -> int:
    """How many runs of rows each of K orthogonal (p, q) matrices, p <= q, is cut into, each a
    task of kernels.orthogonal.orthogonal_fill (a row never depends on another; the same bits
    however they are cut). One for p^2 q under 2^27 (smaller than 512 x 512, under 6 ms).
    Bigger: runs of about 256 rows, which keep the product the reflectors build in cache (one
    thread, `python bench/orthogonal_runs.py 4096`: 2048^2 in 1 run 814 ms, in 8 323; 4096^2
    7.4 s, in 16 2.4 s), and, with fewer members than threads, a run per thread, two from
    1024 rows on, the costliest first (more reflectors reach the last rows), shorter ones
    filling in. Each run builds again V^T and T of every block of reflectors that reaches it,
    so more runs than that gain nothing; and with another process busy on one of two cores,
    700^2 in 4 runs took 1.07-1.11x its time on one thread, in 2 runs 1.02-1.05x (512^2 in 2:
    0.81-0.84x; 1024^2 in 4: 0.66-0.78x). No more runs than one per 64 rows (many threads)."""
    if p * p * q < 2 ** 27:
        return 1
    runs = max(1, p // 256)
    if K < threads:
        runs = max(runs, threads if p < 1024 else 2 * threads)
    return max(1, min(runs, p // 64))


def orthonormal_scratch(K: int, p: int, q: int) -> int:
    """Bytes of float64 scratch ``orthonormal_rows`` of (K, p, q) holds at once, at most: the
    reflectors' normals of the members in flight (p q - p (p - 1) / 2 each) and, per run in
    flight, its Y (q x its columns, whole LANES tiles), V^T and W (kernels.orthogonal)."""
    T = numba.get_num_threads()
    runs, lanes, nb = row_runs(K, p, q, T), kernels.gemm.LANES, kernels.orthogonal.ORTHO_BLOCK
    width = -(-(-(-p // lanes)) // runs) * lanes
    return 8 * (min(K, T) * (p * q - p * (p - 1) // 2 + 3 * p)
                + min(K * runs, T) * (q * width + nb * (q + width) + p))


def orthonormal_rows(out, key, stream, gain, runs: int | None = None) -> None:
    """kernels.orthogonal.orthogonal_fill of ``out`` (K, p, q), p <= q: its members' rows in
    runs (``row_runs``, or ``runs``) over the threads. Members cut into runs have their
    reflectors drawn (normal_fill) and prepared (orthogonal_reflectors) once, which their runs
    share, as many members at a time as there are threads (their normals are the memory:
    p q - p (p - 1) / 2 float64 each)."""
    K, p, q = out.shape
    T = numba.get_num_threads()
    runs = row_runs(K, p, q, T) if runs is None else runs
    if runs == 1:
        none = np.zeros((0, 0))
        over_members(kernels.orthogonal.orthogonal_fill, K, out, key, stream, gain, 1, none,
                     none, none)
        return
    size = min(K, T)
    g = np.empty((size, p * q - p * (p - 1) // 2))
    beta, sign = np.zeros((size, p)), np.empty((size, p))
    for m0 in range(0, K, size):
        m1 = min(K, m0 + size)
        n = m1 - m0
        fill(kernels.sampling.normal_fill, g[:n], key[m0:m1], stream[m0:m1], np.zeros(n),
             np.ones(n))
        over_members(kernels.orthogonal.orthogonal_reflectors, n, g[:n], beta[:n], sign[:n],
                     np.int64(q))
        over_members(kernels.orthogonal.orthogonal_fill, n * runs, out[m0:m1], key[m0:m1],
                     stream[m0:m1], gain[m0:m1], runs, g[:n], beta[:n], sign[:n])


def fill(kernel, out, *args) -> None:
    """A chunked sampling fill (kernels.sampling) of ``out`` (N, M), its tasks over the threads."""
    over_members(kernel, kernels.sampling.tasks(out), out, *args)


def _macs(net) -> int:
    """Multiply-adds of one member's forward pass, per sample."""
    return sum(a * b for a, b in zip(net.layer_sizes[:-1], net.layer_sizes[1:]))


def split_worthwhile(net, batch_size: int) -> bool:
    """Whether one member's step is big enough to gain from several threads (a parallel region
    costs microseconds; a [64, 64, 64, 10] step at batch 32 takes about ten)."""
    return _macs(net) * batch_size >= 2_000_000


class SplitChoice:
    """Whether an epoch splits every member's products over the threads, decided by timing
    both ways: the row-split epoch and the plain one (each member on one thread) give the same
    bits (kernels/train.py), so fastinit.train may take either. When a split may pay
    (``worth``: ``splits``), the first epoch splits and the second does not; then the way
    that measured faster is kept, a split only when it took under 0.9x the plain epoch's time
    (``PAYS``: when it gains less, a second core is not worth taking, and timing noise would
    pick either way at random), and the other way is tried again after 2, 4, 8, ... epochs
    (after 2 again when the other won), up to 64 while splitting and 16 while not, or at once
    when the kept way took 1.5x its last epoch. A split waits for every thread at every layer,
    so when another process takes a core it can be slower than one thread: the slower split
    epoch notices that load arriving at once, and the try every 16 epochs at most notices a
    core coming free. One choice serves every fastinit.train call on the same shapes in this
    process (``for_shape``), so many short calls learn as one long one."""

    LONGEST = 64        # epochs between tries of one thread while splitting, at most
    LONGEST_PLAIN = 16  # and of a split while not splitting
    PAYS = 0.9          # a split is kept only when it took under this times the plain epoch
    SLOWER = 1.5        # an epoch this much slower than the last one the same way: retry now

    def __init__(self, worth: bool, adaptive: bool = True):
        self.worth = worth
        self.adaptive = adaptive                    # False: split whenever worth it
        self.seconds = {True: None, False: None}    # the last epoch each way took
        self.epochs = 0                             # epochs timed so far
        self.best = True
        self.gap = 2
        self.retry = 0                              # the epoch that next tries the other way

    def split(self) -> bool:
        """Whether the next epoch splits."""
        e = self.epochs + 1
        if not self.worth or not self.adaptive:
            return self.worth
        if e <= 2:
            return e == 1
        return self.best if e < self.retry else not self.best

    def took(self, split: bool, seconds: float) -> None:
        """The epoch went ``split`` and took ``seconds`` (compiling left out)."""
        self.epochs += 1
        e = self.epochs
        before, self.seconds[split] = self.seconds[split], seconds
        if not (self.worth and self.adaptive) or e < 2:
            return
        pays = self.seconds[True] < self.PAYS * self.seconds[False]
        if e == 2 or e >= self.retry:               # the second way, or the other, just tried
            longest = self.LONGEST if pays else self.LONGEST_PLAIN
            self.gap = 2 if e == 2 or pays != self.best else min(2 * self.gap, longest)
            self.best = pays
            self.retry = e + 1 + self.gap
        elif seconds > self.SLOWER * before:        # the load changed: try the other way now
            self.retry = e + 1


_CHOICES: dict = {}


def for_shape(net, batch_size: int, threads: int) -> SplitChoice:
    """The SplitChoice of ``net``'s shapes, batch and thread count in this process."""
    key = (tuple(net.layer_sizes), net.n, net.dtype, batch_size, threads,
           net.arch.skip.tobytes(), net.arch.norm.tobytes())
    if key not in _CHOICES:
        if len(_CHOICES) >= 256:                    # a long session of many shapes
            _CHOICES.pop(next(iter(_CHOICES)))
        _CHOICES[key] = SplitChoice(splits(net, batch_size, threads))
    return _CHOICES[key]


def splits(net, batch_size: int, threads: int) -> bool:
    """Whether fastinit.train runs an epoch on ``threads`` by splitting each member's products
    by rows (kernels.train.train_epoch_split) instead of spreading the members over the
    threads: fewer members than threads, no residual layer and no layer norm (their passes
    mix rows), and a step worth splitting."""
    rows_only = not (np.any(net.arch.skip >= 0) or np.any(net.arch.norm == kernels.norm.LAYER))
    return net.n < threads and rows_only and split_worthwhile(net, batch_size)
