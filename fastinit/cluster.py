"""Where populations run: an executor's slots, each population's share of a worker's cores,
and one process entering the parallel kernels safely from several threads.

The driver keeps ``2 x slots`` populations in flight (``InFlight``): slots are the thread slots
of a Dask cluster (re-read as workers come and go) or a concurrent.futures pool's workers, so
each slot has one population running and one queued. On a worker, a population runs on its share
of the cores (``thread_share``): the cores Numba sees divided by the populations that can be in
the kernels on that host at once. Two threads of one process may enter Numba's parallel kernels
together only on a thread-safe threading layer (tbb, omp); workqueue aborts the process
("Terminating: Nested parallel kernel launch detected"), so there a process-wide lock admits
one population at a time and each gets all the cores. A share changes no number (fastinit's
scaling contract: a run is bitwise the same on any thread count).
"""
from __future__ import annotations

import concurrent.futures as cf
import sys
import threading
import time
from contextlib import contextmanager, nullcontext
from typing import NamedTuple

import numba

from .training import numba_threads

THREADSAFE_LAYERS = ("tbb", "omp")      # Numba's documentation: workqueue is not thread-safe
_ENTRY = threading.Lock()               # one population in the kernels at a time (workqueue)
# errors that say a worker (not the population) failed: retried once on another worker
WORKER_LOST = ("KilledWorker", "CommClosedError", "StreamClosedError", "ConnectionError")


class Layout(NamedTuple):
    """The tasks that share one host's cores: its worker processes and their thread slots."""
    processes: int
    slots: int


class ExecutorLost(RuntimeError):
    """The executor can run nothing more (the Dask scheduler's connection is lost, a process
    pool broke); every population that finished before is saved. ``reason``: why, briefly."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


class LocalExecutor(cf.Executor):
    """Runs each task at once in the calling thread (its populations use every Numba thread):
    the default executor, and the one whose results every other must match."""

    def submit(self, fn, /, *args, **kwargs):
        fut: cf.Future = cf.Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as e:  # noqa: BLE001 - handed to the caller through the future
            if isinstance(e, KeyboardInterrupt):
                raise
            fut.set_exception(e)
        return fut


def check_executor(executor, func: str) -> cf.Executor:
    """``executor``, or a LocalExecutor for None; TypeError for anything that is no
    concurrent.futures.Executor (a Dask Client is none: its get_executor() is)."""
    if executor is None:
        return LocalExecutor()
    if not isinstance(executor, cf.Executor):
        hint = " For Dask, pass client.get_executor()." if hasattr(executor, "get_executor") \
            else ""
        raise TypeError(f"The 'executor' parameter of {func} must be a concurrent.futures."
                        f"Executor or None. Got an object of type {type(executor).__name__} "
                        f"instead.{hint}")
    return executor


def serial_layer() -> bool:
    """Whether this process's Numba threading layer must not be entered from two threads."""
    numba.get_num_threads()             # starts the threading layer, so that it has a name
    return numba.threading_layer() not in THREADSAFE_LAYERS


def _dask_client(executor):
    client = getattr(executor, "_client", None)        # distributed.cfexecutor.ClientExecutor
    return client if client is not None and hasattr(client, "scheduler_info") else None


def layouts(executor) -> dict[str, Layout] | None:
    """Per host ("" for this machine), the processes and thread slots that share its cores;
    None for the local executor (a population there uses Numba's thread setting)."""
    if isinstance(executor, LocalExecutor):
        return None
    client = _dask_client(executor)
    if client is not None:
        hosts: dict[str, Layout] = {}
        for w in client.scheduler_info(n_workers=-1).get("workers", {}).values():
            p, s = hosts.get(w["host"], (0, 0))
            hosts[w["host"]] = Layout(p + 1, s + w["nthreads"])
        return hosts
    n = getattr(executor, "_max_workers", None)
    if not isinstance(n, int) or n < 1:
        return {}                       # an executor we cannot see into: all cores per task
    processes = n if isinstance(executor, cf.ProcessPoolExecutor) else 1
    return {"": Layout(processes, n)}


def slots(executor, hosts=False) -> int:
    """How many populations the executor runs at once (0: a Dask cluster with no worker yet);
    ``hosts``: its layouts() if already read."""
    hosts = layouts(executor) if hosts is False else hosts
    if hosts is None:
        return 1
    if not hosts and _dask_client(executor) is None:
        return numba.config.NUMBA_NUM_THREADS
    return sum(h.slots for h in hosts.values())


class InFlight:
    """The driver's window: ``max_in_flight`` if given, else twice the executor's slots (at
    least 2), re-read from a Dask scheduler every ``refresh`` seconds as workers join or leave.
    ``hosts`` is the latest per-host layout, handed to each task for its thread share (on Dask,
    only the hosts with several worker processes)."""

    def __init__(self, executor, max_in_flight: int | None = None, refresh: float = 2.0):
        self.executor, self.fixed, self.refresh = executor, max_in_flight, refresh
        self.dynamic = _dask_client(executor) is not None
        self._read()

    def _read(self):
        hosts = layouts(self.executor)
        self._when = time.monotonic()
        self._auto = 1 if hosts is None else max(2, 2 * slots(self.executor, hosts))
        if self.dynamic:    # a worker alone on its host knows its layout: send only the others
            hosts = {h: v for h, v in hosts.items() if v.processes > 1}
        self.hosts = hosts

    def limit(self) -> int:
        if self.dynamic and time.monotonic() - self._when > self.refresh:
            try:
                self._read()
            except Exception:  # noqa: BLE001 - a lost scheduler shows in the futures instead
                self._when = time.monotonic()
        return self.fixed or self._auto


def _here() -> tuple[str, Layout | None]:
    """(this worker's host, its own layout) on a Dask worker, else ("", None)."""
    if "distributed" not in sys.modules:            # not a Dask worker process
        return "", None
    from distributed import get_worker              # optional extra, already imported here
    from distributed.comm import get_address_host
    try:
        worker = get_worker()
    except ValueError:                              # imported, but not in a worker's task
        return "", None
    return get_address_host(worker.address), Layout(1, worker.state.nthreads)


def thread_share(threads: int | None, hosts: dict | None, serial: bool) -> int | None:
    """Numba threads for one population here: ``threads`` if given (at most the cores Numba
    sees), else the cores divided by the populations that can be in the kernels on this host
    at once (its thread slots; its processes when ``serial``, one per process); None (Numba's
    setting) under the local executor."""
    cores = numba.config.NUMBA_NUM_THREADS
    if threads is not None:
        return min(threads, cores)
    if hosts is None:
        return None
    host, own = _here()
    layout = hosts.get(host) or own or Layout(1, 1)
    return max(1, cores // (layout.processes if serial else layout.slots))


@contextmanager
def population_threads(threads: int | None = None, hosts: dict | None = None):
    """Run a population's compiled work here: on its thread share, and under the process-wide
    lock where the threading layer is not thread-safe. Yields the thread count (or None)."""
    serial = serial_layer()
    share = thread_share(threads, hosts, serial)
    with _ENTRY if serial else nullcontext(), numba_threads(share):
        yield share


def worker_lost(error: BaseException) -> bool:
    """Whether ``error`` says the worker was lost (killed, disconnected), not the population."""
    return any(c.__name__ in WORKER_LOST for c in type(error).__mro__)


def gone(executor) -> str | None:
    """Why ``executor`` can run nothing more, or None while it can."""
    client = _dask_client(executor)
    if client is not None and client.status != "running":
        address = getattr(getattr(client, "scheduler", None), "address", None) or "?"
        return f"lost the connection to the Dask scheduler {address}"
    if getattr(executor, "_broken", False):
        return f"the executor broke: {executor._broken}"
    return None
