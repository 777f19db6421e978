"""Sweep execution: a spec's unfinished runs, trained as populations on any Executor, stored.

The spec language (``SweepSpec``, ``load_spec``, ``SpecError``, the run keys) is
fastinit.sweepspec; datasets by name are fastinit.datasets; the database is fastinit.store. ``run_sweep`` counts the
grid before expanding it (refusing more than ``max_runs``), checks every run can start
(fastinit.preflight), records the sweep's version and members, then expands the grid lazily,
one population at a time. Runs that share an architecture and a training set-up (everything but
scheme, seed and lr) train together as one population in one kernel batch; a run's result does
not depend on which population it lands in, on the executor, or on the thread count
(fastinit's scaling contract), so resuming a killed sweep or moving it to a Dask cluster changes
no number.
"""
from __future__ import annotations

import concurrent.futures as cf
import math
import signal
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from . import cluster, compilelog, registry, tabular, warmup
from ._validate import check_bool, check_callable, check_int, check_path
from .cluster import ExecutorLost, LocalExecutor, population_threads  # noqa: F401 - public
from .datainit import kraehenbuehl, lsuv
from .datasets import DATASETS, FILE_DATASETS, load_dataset, located, reachable  # noqa: F401
from .diagnose import diagnose as diagnose_net
from .network import MLP
from .preflight import check_runs, check_threads
from .residual import ResMLP
from .sweepspec import Run, SpecError, SweepSpec, group, load_spec, run_id  # noqa: F401
from .store import Store, StoreError  # noqa: F401
from .training import train

MAX_RUNS = 1_000_000
_FUNC = "fastinit.sweep.run_sweep"


def _summary(d) -> dict:
    keep = ("pre_var", "act_var", "dead_fraction", "distinct_units", "max_similarity",
            "grad_norm")
    return {k: getattr(d, k) for k in keep}


def _init(scheme) -> registry.InitSpec:
    return registry.InitSpec(scheme[0], tuple(sorted(scheme[1].items())))


def run_population(configs: list[dict], diagnose: bool = True, threads: int | None = None,
                   hosts: dict | None = None, dataset: str | None = None) -> list[dict]:
    """Train one population (configs sharing all but the member keys); one result per run.

    A plain function of plain data, so any executor (a Dask worker included) can run it.
    ``threads``: Numba threads for it; None: its share of this host's cores given ``hosts``
    (fastinit.cluster.thread_share), or Numba's setting when ``hosts`` is None (local).
    Several threads of one process may run populations at once (fastinit.cluster). ``dataset``:
    where the data loads from (run_sweep: datasets.located's absolute path), not the run ids.
    Times (``time``, ``population_time``, ``kernel_time``) leave out compiling kernels and
    loading them from the cache: that is ``compile_time``, the population's, apart.
    """
    with population_threads(threads, hosts) as threads, compilelog.announcing():
        return _train_population(configs, diagnose, threads, dataset)   # loading: kernels too


def population_network(configs: list[dict], data) -> MLP:
    """The network a population (configs sharing all but the member keys) trains on ``data``:
    an MLP, or a ResMLP with ``residual``, one member per config, its data-dependent init
    (``data_init``) applied on the first 256 training samples to the weights its scheme drew
    (LSUV's orthonormal start is scheme "orthogonal")."""
    c0 = configs[0]
    sizes = [data.n_features] + [c0["width"]] * c0["depth"] + [data.n_outputs]
    each = lambda key: [c[key] for c in configs]                # a member key, per member
    common = dict(activation=c0["activation"], init=[_init(c["scheme"]) for c in configs],
                  bias_init=[None if c["bias_init"] is None else _init(c["bias_init"])
                             for c in configs],
                  n=len(configs), seed=each("seed"), dtype=np.dtype(c0["dtype"]),
                  activation_param=each("activation_param"), bias=c0["bias"],
                  dropout=each("dropout"), norm=c0["norm"])
    if c0["residual"]:
        net = ResMLP(data.n_features, c0["width"], c0["depth"], data.n_outputs,
                     residual=c0["residual"], **common)
    else:
        net = MLP(sizes, **common)
    probe = data.x_train[:256]
    if c0["data_init"] == "lsuv":
        lsuv(net, probe, orthonormal=False)
    elif c0["data_init"] == "kraehenbuehl":       # one layer: no step for a seed to steer
        kraehenbuehl(net, probe, **({"seed": c0["data_seed"]} if net.depth > 1 else {}))
    return net


def training_options(configs: list[dict], loss: str) -> dict:
    """The keywords of fastinit.train for a population's configs (all but ``epochs``)."""
    c0 = configs[0]
    each = lambda key: [c[key] for c in configs]                # a member key, per member
    return dict(batch_size=c0["batch_size"], drop_last=c0["drop_last"],
                optimizer=c0["optimizer"], lr=each("lr"), loss=loss, seed=c0["data_seed"],
                momentum=each("momentum"), weight_decay=each("weight_decay"))


def population_diagnostics(net: MLP, data, loss: str):
    """What a sweep records at init and at the end: fastinit.diagnose on 256 training
    samples."""
    return diagnose_net(net, data.x_train[:256], data.y_train[:256], loss, ranks=False)


def _train_population(configs, diagnose, threads, dataset):
    c0 = configs[0]
    compiling = compilelog.seconds()
    data = load_dataset(reachable(dataset, c0["dataset"]), c0.get("data"), c0["data_seed"])
    loss = c0["loss"] or data.loss
    t0, ready0 = time.perf_counter(), compilelog.seconds()
    net = population_network(configs, data)
    sizes = net.layer_sizes
    td, ready = time.perf_counter(), compilelog.seconds()
    d_init = population_diagnostics(net, data, loss) if diagnose else None
    diag_time = time.perf_counter() - td - (compilelog.seconds() - ready)
    hist = train(net, data, epochs=c0["epochs"], threads=threads,
                 **training_options(configs, loss))
    td, ready = time.perf_counter(), compilelog.seconds()
    d_end = population_diagnostics(net, data, loss) if diagnose else None
    diag_time += time.perf_counter() - td - (compilelog.seconds() - ready)
    total = time.perf_counter() - t0 - (compilelog.seconds() - ready0)   # compiling left out
    compiling = compilelog.seconds() - compiling
    # compiled time: training and evaluation epochs, and the (compiled) diagnostics
    kernel = float(hist.epoch_time.sum() + hist.eval_time.sum()) + diag_time
    results = []
    for k, c in enumerate(configs):
        diag = None
        if diagnose:
            diag = {"init": {f: v[k].tolist() for f, v in _summary(d_init).items()},
                    "final": {f: v[k].tolist() for f, v in _summary(d_end).items()}}
        curves = {f: getattr(hist, f)[:, k].tolist() for f in ("train_loss", "train_acc",
                                                               "test_loss", "test_acc")}
        results.append({
            "id": run_id(c), "config": c, "curves": curves, "diagnostics": diag,
            "diverged": bool(hist.diverged[k]), "diverged_step": int(hist.diverged_step[k]),
            "time": total / len(configs), "population_time": total,
            "kernel_time": kernel, "compile_time": compiling,
            "population_size": len(configs), "loss": loss,
            "layer_sizes": sizes})
    return results


class _StopOnInterrupt:
    """While active, the first Ctrl-C (SIGINT) only asks the sweep to stop after the population
    that is running (a signal cannot stop a compiled kernel cleanly); a second one stops at
    once. Only in the main thread; elsewhere Ctrl-C behaves as usual."""

    def __init__(self):
        self.requested, self._old = False, None

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False


class _Progress:
    """tqdm's bar when tqdm is installed, else a plain "sweep NAME: 12/40 runs" line on
    stderr; ``say`` prints a message above it."""

    def __init__(self, total: int, name: str, log):
        self.total, self.done, self.desc, self.log = total, 0, f"sweep {name}", log
        try:                              # optional dependency (pip install tqdm)
            from tqdm.auto import tqdm
        except ImportError:
            self.bar = None
            self._draw()
        else:
            self.bar = tqdm(total=total, desc=self.desc, unit="run")

    def _draw(self):
        sys.stderr.write(f"\r{self.desc}: {self.done}/{self.total} runs")
        sys.stderr.flush()

    def update(self, n: int):
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        else:
            self._draw()

    def say(self, msg: str):
        if self.bar is not None:
            self.bar.clear()
        else:
            sys.stderr.write("\r\033[K")
        self.log(msg)
        if self.bar is not None:
            self.bar.refresh()
        else:
            self._draw()

    def close(self):
        if self.bar is not None:
            self.bar.close()
        else:
            sys.stderr.write("\n")


@dataclass
class SweepResult:
    """What a run_sweep call did. ``failures``: (run id, reason) of each failed run;
    ``notes``: what the caller should know (duplicates dropped, the spec changed)."""
    total: int
    skipped: int
    ran: int
    failed: int
    seconds: float
    kernel_seconds: float
    db: str
    failures: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    @property
    def runs_per_second(self) -> float:
        return self.ran / self.seconds if self.seconds > 0 else math.nan

    def _repr_html_(self) -> str:
        return tabular.sweep_result_html(self)


def check_size(sp: SweepSpec, max_runs: int) -> int:
    """The number of runs, counted without expanding the grid; SpecError above max_runs."""
    max_runs = check_int(max_runs, "max_runs", _FUNC, minimum=1)
    total = sp.count()
    if total > max_runs:
        axes = " x ".join(f"{len(v)} {k}" for k, v in sp.grid.items())
        raise SpecError(f"{sp.source}: [grid]: {total:,} runs ({axes}) is more than max_runs "
                        f"= {max_runs:,}. Shrink the grid or raise the limit (fastinit sweep "
                        f"--max-runs N, run_sweep(..., max_runs=N)).")
    return total


def checked_spec(spec, max_runs: int = MAX_RUNS, local: bool = False) -> tuple[SweepSpec, int]:
    """(the spec, its number of runs) once it passes every check a sweep makes before it
    trains: loaded and validated (load_spec), the grid counted against ``max_runs``
    (check_size), every run able to start (fastinit.preflight.check_runs). A SpecError
    otherwise; fastinit.sweepprofile checks a spec with this too. ``local``: the runs train
    here (their populations must fit in memory), so the training kernels the cache lacks
    compile in another process while this one checks the runs (fastinit.warmup.ahead)."""
    sp = load_spec(spec)
    total = check_size(sp, max_runs)
    dtypes = sorted({str(np.dtype(d)) for d in sp.values("dtype")}) if local else ()
    with warmup.ahead(dtypes) as compiling:
        check_runs(sp, ready=None if compiling is None else lambda: compiling.join(dtypes),
                   local=local)
    return sp, total


def _task(attempt: int, configs, diagnose, threads, hosts, dataset):
    """run_population as submitted: ``attempt`` (0, then 1 for the retry after a lost worker)
    makes the retry a new task for executors that key tasks by their arguments (Dask)."""
    return run_population(configs, diagnose, threads, hosts, dataset)


def run_sweep(spec, db="runs.db", *, executor: cf.Executor | None = None,
              progress: bool = False, threads: int | None = None,
              max_in_flight: int | None = None, on_commit=None, max_runs: int = MAX_RUNS,
              log=None) -> SweepResult:
    """Run every unfinished run of ``spec``, storing each population's results as it finishes.

    Before anything trains or the database is touched: the grid is counted (SpecError above
    ``max_runs``) and every run is checked to start (SpecError naming the file, key and
    reason). ``executor``: any concurrent.futures.Executor (default LocalExecutor; Dask's
    ``Client.get_executor()`` for a cluster). ``max_in_flight``: populations submitted and not
    yet stored (default: twice the executor's slots, fastinit.cluster.InFlight). ``threads``:
    Numba threads per population (default: all cores locally; a worker's cores divided by its
    thread slots on a pool or cluster). Only this process writes ``db``: each population
    is committed in one transaction, so killing the sweep loses nothing already committed and
    re-running it skips finished runs. ``log(message)`` hears what the result's notes and
    failures say, as it happens. A population whose worker is lost (killed, disconnected) is
    recorded as failed with the cause and retried once; an executor that can run nothing more
    (the Dask scheduler's connection lost) raises ExecutorLost, everything finished saved.
    Ctrl-C stops after the running population (it is saved) and raises KeyboardInterrupt; a
    second Ctrl-C stops at once. A database that cannot be written (disk full) raises
    StoreError saying what is saved.
    """
    db = check_path(db, "db", _FUNC)
    executor = cluster.check_executor(executor, _FUNC)
    progress = check_bool(progress, "progress", _FUNC)
    on_commit = check_callable(on_commit, "on_commit", _FUNC, "on_commit(runs_done)")
    log = check_callable(log, "log", _FUNC, "log(message)") or (lambda msg: None)
    if isinstance(executor, LocalExecutor):
        threads = check_threads(threads)
    elif threads is not None:           # a worker may have more cores than this machine
        threads = check_int(threads, "threads", _FUNC, minimum=1)
    if max_in_flight is not None:
        max_in_flight = check_int(max_in_flight, "max_in_flight", _FUNC, minimum=1)
    sp, total = checked_spec(spec, max_runs, local=isinstance(executor, LocalExecutor))
    notes, failures, where = [], [], {d: located(d) for d in sp.values("dataset")}  # abs. paths

    def say(msg):
        notes.append(msg)
        (bar.say if bar is not None else log)(msg)

    bar = None
    store = Store(db)
    try:
        for d in sp.duplicates:
            say(f"{sp.source}: {d}")
        previous = store.record_sweep(sp.name, sp.hash(), sp.body(), sp.run_ids, total)
        if previous:
            say(f"sweep {sp.name!r}: the spec changed since it last ran into {db} (version "
                f"{previous} -> {sp.hash()}); its table and report now show this spec's "
                f"{total} runs, and the earlier runs stay in the database.")
        finished = store.finished_ids()
        todo = total - store.finished_count(sp.name)
        if sp.diagnose and (bare := store.finished_count(sp.name, undiagnosed=True)):
            say(f"sweep {sp.name!r}: {bare} of its finished runs in {db} were stored without "
                f"diagnostics (diagnose = false) and are not re-run, so the report shows none "
                f"for them; run this spec into a new database to get them.")
        window = cluster.InFlight(executor, max_in_flight)
        if progress:
            bar = _Progress(todo, sp.name, log)
        t0 = time.perf_counter()
        done = failed = 0
        kernel = 0.0
        pending: dict[cf.Future, tuple[list[Run], int]] = {}

        def lost(why, cause=None):
            nonlocal done
            for fut in [f for f in pending if f.done() and not f.cancelled()
                        and f.exception() is None]:       # finished before the loss: saved
                members, _ = pending.pop(fut)
                done += len(members) - len(store.add_results(fut.result(), sp.name))
            raise ExecutorLost(
                f"{_FUNC}: {why}. {done} runs of this call are saved in {db}; the "
                f"{sum(len(m) for m, _ in pending.values())} runs in flight are not. Run the "
                f"same sweep again to finish the rest.", why) from cause

        def submit(task, attempt):
            try:
                fut = executor.submit(_task, attempt, [r.config for r in task], sp.diagnose,
                                      threads, window.hosts, where[task[0].config["dataset"]])
            except Exception as e:
                why = cluster.gone(executor)
                if why is None:
                    raise
                lost(why, e)
            pending[fut] = (task, attempt)

        def collect(block: bool):
            nonlocal done, failed, kernel
            if not pending:
                return
            ready, _ = cf.wait(list(pending), return_when=cf.FIRST_COMPLETED,
                               timeout=(window.refresh if window.dynamic else None) if block
                               else 0)
            for fut in sorted(ready, key=lambda f: f.cancelled()):   # results first
                members, attempt = pending.pop(fut)
                if fut.cancelled():          # not by this loop: the executor gave it up
                    lost(cluster.gone(executor) or "the executor cancelled a population")
                try:
                    results = fut.result()
                except cf.BrokenExecutor as e:
                    lost(f"the executor broke ({type(e).__name__}: {e})", e)
                except Exception as e:  # noqa: BLE001 - recorded, the sweep goes on
                    error = f"{type(e).__name__}: {e}"
                    why = cluster.gone(executor)
                    if why is not None:
                        lost(why, e)
                    store.add_failed(members, error, sp.name)
                    if attempt == 0 and cluster.worker_lost(e):
                        say(f"{len(members)} run(s) lost their worker ({_ids(members)}): "
                            f"{error}; recorded as failed, retrying once")
                        submit(members, attempt + 1)
                        continue
                    bad = [(r.id, error) for r in members]
                else:
                    bad = store.add_results(results, sp.name)
                    kernel += results[0]["kernel_time"] if results else 0.0
                failures.extend(bad)
                failed += len(bad)
                done += len(members) - len(bad)
                for reason in dict.fromkeys(e for _, e in bad):
                    say(f"{sum(e == reason for _, e in bad)} run(s) failed "
                        f"({_ids([i for i, e in bad if e == reason])}): {reason}")
                if bar is not None:
                    bar.update(len(members))
                if on_commit is not None:
                    on_commit(done + failed)

        stop = _StopOnInterrupt()
        try:
            with stop:
                for task in sp.populations(keep=lambda r: r.id not in finished):
                    if stop.requested:
                        break
                    submit(task, 0)
                    collect(block=False)
                    while len(pending) >= window.limit() and not stop.requested:
                        collect(block=True)
                if stop.requested and pending:
                    say(f"stopping after the {len(pending)} population(s) in flight; Ctrl-C "
                        f"again to stop at once")
                while pending:          # in flight when Ctrl-C came: finished and saved
                    collect(block=True)
            if stop.requested:
                raise KeyboardInterrupt
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise
        return SweepResult(total, total - todo, done, failed, time.perf_counter() - t0,
                           kernel, str(db), failures, notes)
    finally:
        if bar is not None:
            bar.close()
        store.close()


def _ids(items) -> str:
    """The first three run ids of runs or ids, for a message."""
    ids = [getattr(r, "id", r) for r in items]
    return ", ".join(ids[:3]) + (", ..." if len(ids) > 3 else "")
