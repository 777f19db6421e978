"""Compiling the kernels before a run needs them, in parallel processes: ``fastinit warmup``.

Numba compiles in one thread of a process at a time. The kernels fall into groups: training
(the epoch), evaluation (evaluate, gradients, statistics), sampling, the profiler's replays and
the row-split epoch. The first two call the same forward and backward passes; two processes
compiling them at once compile each shared helper once between them (one compiles it under a
lock, the other waits and loads it from the cache: kernels/_config.py ``compiling``). The
groups, one per dtype, are what runs in parallel: ``warmup`` spreads them over ``jobs``
processes (spawned, not forked: a fork would copy Numba's threads) that save what they compile
into the on-disk cache; this process then loads each kernel from the cache in milliseconds.
``ahead`` does the same in the background while this process does other work: a sweep checks
its spec (drawing its schemes compiles the samplers) and compiles the evaluation group while
another core compiles the training group, and waits for it before anything trains.

A group calls the public API on tiny inputs, so it compiles exactly the signatures a real run
uses. ``missing`` tells the groups whose kernels the cache lacks for this machine (Numba keys
its cache by CPU as well as by signature).
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import time
from contextlib import contextmanager

import numba
import numpy as np

from . import compilelog, kernels, roofline
from .diagnose import layer_statistics, unit_statistics
from .kernels import _config
from .network import MLP
from .profiler import profile
from .sample import sample
from .training import train

DTYPES = ("float32", "float64")


def _data(n: int, d: int, classes: int):
    return np.random.default_rng(0).standard_normal((n, d)), np.arange(n) % classes


def _sampling(dtype):
    for scheme, kw in (("uniform", {}), ("normal", {}), ("trunc_normal", {}),
                       ("orthogonal", {}), ("sparse", {"sparsity": 0.5})):
        sample(scheme, (5, 4), seed=0, n=2, dtype=dtype, **kw)
    sample("uniform", (5, 4), seed=0, dtype=np.float64)  # the synthetic datasets draw float64
    sample("orthogonal", (512, 512), seed=0, dtype=dtype)  # in runs: reflectors prepared once


def _net(dtype, n=2, sizes=(4, 8, 3)):
    """A network whose init compiles no sampler (zeros): the groups compile their own kernels
    only, the samplers being the sampling group's (a sweep's own draws, in ``ahead``)."""
    return MLP(list(sizes), n=n, seed=0, dtype=dtype, init="zeros")


def _training(dtype):
    x, y = _data(40, 4, 3)
    for loss in ("cross_entropy", "mse", "bce"):
        train(_net(dtype), (x, y if loss == "cross_entropy" else np.eye(3)[y]), epochs=1,
              batch_size=16, loss=loss, eval_every=0)    # evaluate: the evaluation group's


def _split(dtype):
    x, y = _data(256, 64, 10)            # one member, a step worth splitting over threads
    train(_net(dtype, 1, (64, 128, 128, 10)), (x, y), epochs=1, batch_size=128, eval_every=0)


def _evaluation(dtype):
    """Ordered for ``ahead``: the kernels that need none of the passes the training group is
    compiling first, the one that needs its backward pass last (less waiting on its lock)."""
    x, y = _data(40, 4, 3)
    net = _net(dtype)
    unit_statistics(net, ranks=False)
    layer_statistics(net, x)
    net.forward(x)
    net.gradients(x, y)


def _profile(dtype):
    machine = roofline.measure([1], dtypes=())      # no GEMM peak: it would load PyTorch
    profile(_net(dtype), _data(40, 4, 3), batch_size=16, threads=1, repeats=1, budget=0.01,
            machine=machine)


# name: (the group, the kernels whose cached code says it is done, its cold compile seconds
# alone on one core of a 2-core AMD EPYC, float32, `warmup.run_group(name, "float32")` with an
# empty cache: for spreading the groups over processes)
GROUPS = {
    "training": (_training, (kernels.train.train_epoch,), 31),
    "evaluation": (_evaluation, (kernels.train.evaluate, kernels.train.gradients,
                                 kernels.stats.layer_moments), 29),
    "split": (_split, (kernels.train.train_epoch_split,), 35),
    "sampling": (_sampling, (kernels.sampling.normal_fill, kernels.orthogonal.orthogonal_fill,
                             kernels.sampling.truncnorm_fill, kernels.sampling.sparse_zero), 14),
    "profile": (_profile, (kernels.profile.replay,), 39),
}


def _cached_dtypes(dispatcher) -> set[str]:
    """Array dtypes of the signatures of ``dispatcher`` cached on disk for this machine."""
    cache = getattr(dispatcher, "_cache", None)
    index = getattr(getattr(cache, "_cache_file", None), "_load_index", None)
    if index is None:
        return set()
    magic = dispatcher.targetctx.codegen().magic_tuple()
    found = set()
    for sig, machine, _ in index():
        if machine == magic:
            found.update(str(t.dtype) for t in sig if isinstance(t, numba.types.Array)
                         and str(t.dtype) in DTYPES)
    return found


def _needed(names):
    """``names`` but "split" on one thread, where training never splits a member."""
    return [n for n in names if n != "split" or numba.config.NUMBA_NUM_THREADS > 1]


def missing(dtypes=DTYPES, names=tuple(GROUPS)) -> list[tuple[str, str]]:
    """The (group, dtype) pairs whose kernels are not all in the on-disk cache for this
    machine, the longest to compile first."""
    return [(name, dt) for name in _needed(names) for dt in dtypes
            if any(dt not in _cached_dtypes(k) for k in GROUPS[name][1])]


def run_group(name: str, dtype: str) -> float:
    """Run one group in this process (compiling or loading its kernels); its seconds."""
    t0 = time.perf_counter()
    GROUPS[name][0](np.dtype(dtype))
    return time.perf_counter() - t0


def _run_here(names, dtypes) -> None:
    """Every group of ``names`` for every dtype, in this process."""
    for name in names:
        for dt in dtypes:
            run_group(name, dt)


def _child(tasks):
    """A warmup process: its groups one after another (Ctrl-C is the parent's to handle)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name, dtype in tasks:
        run_group(name, dtype)


def _shares(tasks, jobs: int) -> list[list]:
    """``tasks`` spread over ``jobs`` processes, longest first onto the least loaded."""
    shares, loads = [[] for _ in range(jobs)], [0] * jobs
    for task in sorted(tasks, key=lambda t: -GROUPS[t[0]][2]):
        i = loads.index(min(loads))
        shares[i].append(task)
        loads[i] += GROUPS[task[0]][2]
    return [s for s in shares if s]


def _cores() -> int:
    return len(os.sched_getaffinity(0))


def _idle_cores(window: float = 0.2) -> float:
    """How many of this process's cores were idle over the next ``window`` seconds, from
    /proc/stat (Linux); elsewhere the cores less the last minute's load average."""
    cpus = {f"cpu{c}" for c in os.sched_getaffinity(0)}

    def read():
        with open("/proc/stat") as f:
            rows = [line.split() for line in f if line.startswith("cpu")]
        return {r[0]: (int(r[4]) + int(r[5]), sum(map(int, r[1:9]))) for r in rows
                if r[0] in cpus}                # (idle + iowait, all) jiffies per core
    try:
        before = read()
        time.sleep(window)
        after = read()
    except (OSError, ValueError, IndexError):
        return _cores() - os.getloadavg()[0]
    return sum((after[c][0] - before[c][0]) / (after[c][1] - before[c][1]) for c in after
               if c in before and after[c][1] > before[c][1])


def _idle_core() -> bool:
    """Whether a core is free for a background compile beside this process's own: on a busy
    machine (tests in several processes, another sweep) a second compiling process would
    only take time from the others."""
    return _idle_cores() >= 1.5


class Ahead:
    """Processes compiling groups in the background. As a context manager: on leaving the
    block, wait for them, or stop them when the block raised (Ctrl-C too)."""

    def __init__(self, tasks, jobs: int):
        context = multiprocessing.get_context("spawn")
        self.processes = [context.Process(target=_child, args=(share,), daemon=True)
                          for share in _shares(tasks, jobs)]
        for p in self.processes:
            p.start()

    def wait(self) -> None:
        for p in self.processes:
            p.join()

    def join(self, dtypes, here=("evaluation",)) -> None:
        """Compile (or load) the groups ``here`` in this process meanwhile, then wait."""
        _run_here(here, dtypes)
        self.wait()

    def __enter__(self):
        return self

    def __exit__(self, kind, error, trace):
        if kind is not None:
            for p in self.processes:
                if p.is_alive():
                    p.terminate()
        self.wait()


@contextmanager
def ahead(dtypes=("float32",), names=("training",), jobs: int | None = None):
    """Compile the groups the cache lacks in other processes while the block runs; on leaving
    it, wait for them (or, when the block raised, stop them). Yields the Ahead (``wait()`` to
    wait sooner), or None when there is nothing to compile, no writable cache, one core or no
    idle one (``_idle_core``).
    The fastinit logger's notice counts the wait as compiling (compilelog.elsewhere)."""
    todo = missing(dtypes, names) if _config.CACHE_DIR is not None else []
    jobs = min(jobs or _cores(), len(todo))
    if not todo or _cores() < 2 or not _idle_core():
        yield None
        return
    with compilelog.elsewhere(), Ahead(todo, jobs) as running:
        yield running


def warmup(dtypes=DTYPES, jobs: int | None = None, names=tuple(GROUPS)) -> float:
    """Compile (or load from the cache) the kernels of the groups ``names`` for ``dtypes``:
    what the cache lacks in ``jobs`` processes at once (default: the cores this process may
    use), or here with one job or no writable cache; then this process loads them all.
    Returns the seconds taken."""
    t0 = time.perf_counter()
    todo = missing(dtypes, names)
    jobs = min(jobs or _cores(), len(todo))
    if jobs > 1 and _config.CACHE_DIR is not None:
        with compilelog.elsewhere(), Ahead(todo, jobs):
            pass                        # leaving the block waits for them
    _run_here(_needed(names), dtypes)   # load (or, without a cache, compile) them here
    return time.perf_counter() - t0
