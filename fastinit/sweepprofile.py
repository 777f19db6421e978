"""Profile a sweep before running it: every population shape its spec would train, timed on
this machine, and the wall time of the whole sweep.

The spec is checked by the sweep's own checks (fastinit.sweep.checked_spec), with the same
SpecError before anything is timed: the spec validated, the grid counted against ``max_runs``,
every run preflighted. Its populations are expanded as the sweep expands
them and grouped by shape: populations that differ only in epochs, data seed or data-dependent
init train epochs of the same cost, so each shape is built once, by the sweep's own
construction (fastinit.sweep.population_network), profiled once (fastinit.profiler) and
counted for every population of its shape. Per population the sweep also builds the network,
initialises it from data and diagnoses it at init and at the end: that is its ``setup`` time.
"""
from __future__ import annotations

import inspect
import json
import time

from . import compilelog, roofline
from .datasets import load_dataset
from .profiler import Profile, measure, thread_counts
from .runkeys import RUN_KEYS
from .sweep import MAX_RUNS, checked_spec, population_diagnostics, population_network, \
    training_options
from ._validate import check_int, check_real
from .training import evaluations, train

_FUNC = "fastinit.sweepprofile.profile_sweep"
_MEMBER = {k.name for k in RUN_KEYS if k.member}
SAME_COST = ("epochs", "data_seed", "data_init")      # change no epoch's cost
_TRAIN = {k: v.default for k, v in inspect.signature(train).parameters.items()}


def shape_key(configs: list[dict]) -> str:
    """What makes two populations' epochs cost the same: every shared run key but those of
    SAME_COST, the population size, and how many members drop out."""
    same = {k: v for k, v in configs[0].items() if k not in _MEMBER and k not in SAME_COST}
    return json.dumps([same, len(configs), sum(c["dropout"] > 0 for c in configs)],
                      sort_keys=True)


def _timed(fn, compile: dict):
    """(fn's result, its seconds without compiling or loading kernels); those go to
    compile["seconds"]."""
    with compilelog.announcing() as block:
        t0 = time.perf_counter()
        out = fn()
        took = time.perf_counter() - t0
    compile["seconds"] = compile.get("seconds", 0.0) + block.ready
    return out, took - block.ready


def profile_sweep(spec, *, threads=None, repeats: int = 3, budget: float = 0.25,
                  max_runs: int = MAX_RUNS, log=None) -> Profile:
    """Profile every population shape of ``spec`` (a SweepSpec, dict or TOML path) at each of
    ``threads`` (default 1, 2, 4, ... up to every core) and estimate the sweep's wall time.

    Raises the SpecError ``fastinit sweep`` raises for the same spec. ``repeats`` and
    ``budget`` as in fastinit.profile; ``log(message)`` hears which shape is being timed.
    """
    sp, _ = checked_spec(spec, max_runs)
    threads = thread_counts(threads, _FUNC)
    repeats = check_int(repeats, "repeats", _FUNC, minimum=1)
    budget = check_real(budget, "budget", _FUNC, low=0.0, low_open=True)
    log = log or (lambda msg: None)
    shapes: dict[str, dict] = {}
    for pop in sp.populations():
        configs = [r.config for r in pop]
        s = shapes.setdefault(shape_key(configs), {"configs": configs, "populations": 0,
                                                   "runs": 0, "epochs": 0, "evaluations": 0})
        s["populations"] += 1
        s["runs"] += len(configs)
        s["epochs"] += configs[0]["epochs"]
        s["evaluations"] += evaluations(configs[0]["epochs"], _TRAIN["eval_every"])
    compile: dict = {}
    pops = []
    for i, s in enumerate(shapes.values()):
        configs = s["configs"]
        c0 = configs[0]
        data = load_dataset(c0["dataset"], c0.get("data"), c0["data_seed"])
        loss = c0["loss"] or data.loss
        net, build = _timed(lambda: population_network(configs, data), compile)
        diag = 0.0
        if sp.diagnose:
            _, diag = _timed(lambda: population_diagnostics(net, data, loss), compile)
        log(f"timing population shape {i + 1} of {len(shapes)}: {len(configs)} x "
            f"{net.layer_sizes} {c0['activation']}, {c0['optimizer']}, batch "
            f"{c0['batch_size']} ({s['populations']} population(s))")
        options = {"betas": _TRAIN["betas"], "eps": _TRAIN["eps"],
                   **training_options(configs, loss)}
        pop = measure(net, data, threads=threads, repeats=repeats, budget=budget,
                      eval_every=_TRAIN["eval_every"],
                      eval_batch_size=_TRAIN["eval_batch_size"], epochs=c0["epochs"],
                      options=options, compile=compile)
        pop.populations, pop.runs = s["populations"], s["runs"]
        pop.epochs, pop.evaluations = s["epochs"], s["evaluations"]
        pop.setup = build + 2 * diag
        pop.config["dataset"] = c0["dataset"]
        pops.append(pop)
    machine = roofline.measure(threads, [p.config["dtype"] for p in pops])
    notes = [f"{sp.source}: {d}" for d in sp.duplicates]
    if machine.numba_threads < machine.cores:
        notes.append(f"Numba may use {machine.numba_threads} of the {machine.cores} cores "
                     f"(NUMBA_NUM_THREADS).")
    return Profile(f"sweep {sp.name!r} ({sp.source})", machine, threads, pops, compile, notes)
