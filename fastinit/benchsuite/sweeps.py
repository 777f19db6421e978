"""The sweep case: 256 runs (8 schemes x 8 seeds x 4 depths, width 64, digits, 10 epochs),
locally and on a Dask LocalCluster."""
import cProfile
import io
import os
import pstats
import tempfile

from . import harness
from ..sweep import run_sweep

SCHEMES = ["zeros", "xavier_normal", "he_normal", "lecun_normal", "orthogonal", "ZerO",
           "torch_linear", "kaiming_uniform"]


def spec(quick: bool = False) -> dict:
    seeds = list(range(2 if quick else 8))
    return {"name": "bench", "grid": {"scheme": SCHEMES, "seed": seeds, "depth": [1, 2, 4, 8]},
            "train": {"dataset": "digits", "width": 64, "epochs": 10, "batch_size": 32,
                      "lr": 0.05}}


def sweep_once(sp, threads=None, executor=None):
    """One full sweep into a fresh database; returns its SweepResult."""
    with tempfile.TemporaryDirectory() as d:
        return run_sweep(sp, os.path.join(d, "runs.db"), threads=threads, executor=executor)


def warm(sp, executor=None):
    sweep_once({**sp, "grid": {**sp["grid"], "seed": [99]}}, executor=executor)


def dask_case(quick=False, workers=2):
    """Markdown: the same sweep through the local executor (all cores, one population at a
    time) and a Dask LocalCluster of ``workers`` single-thread worker processes (a population
    per worker, each on its share of the cores); Dask's overhead in runs/s. Populations of 8
    runs, so each worker has several."""
    try:                                # optional extra: pip install 'fastinit[dask]'
        from distributed import Client, LocalCluster
    except ImportError:
        return "Dask is not installed (pip install 'fastinit[dask]'): no cluster case.", None
    sp = {**spec(quick), "max_population": 8}
    warm(sp)
    repeats = 2 if quick else 3
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as lc, Client(lc) as client:
        executor = client.get_executor()
        warm(sp, executor)              # each worker process loads the cached kernels
        local, dask = [], []
        for _ in range(repeats):        # interleaved, so both see the same machine
            local.append(sweep_once(sp))
            dask.append(sweep_once(sp, executor=executor))
    best = {"local": max(r.runs_per_second for r in local),
            "dask": max(r.runs_per_second for r in dask)}
    overhead = 1 - best["dask"] / best["local"]
    n = local[0].ran
    text = "\n".join([
        f"The same {n} runs in populations of 8 through the local executor and a Dask "
        f"LocalCluster ({workers} worker processes x 1 thread), best of {repeats}:", "",
        "| executor | runs/s |", "|---|---|",
        f"| local (all cores, one population at a time) | {best['local']:.1f} |",
        f"| Dask LocalCluster {workers} x 1 | {best['dask']:.1f} |", "",
        f"Dask's overhead: {100 * overhead:.1f}% of the local runs/s (target <= 10%, "
        f"{'met' if overhead <= 0.10 else 'not met'})."])
    return text, overhead


def main(threads=None, quick=False):
    """Markdown: runs/s and time inside kernels per thread count, 2-vs-1 scaling, a profile."""
    threads = threads or harness.THREADS
    sp = spec(quick)
    warm(sp)
    n = len(SCHEMES) * len(sp["grid"]["seed"]) * 4
    lines = [f"{n} runs (8 schemes x {len(sp['grid']['seed'])} seeds x 4 depths, width 64, "
             f"digits, 10 epochs), best of {2 if quick else 3}:", "",
             "| threads | runs | seconds | runs/s | time inside kernels |", "|---|---|---|---|---|"]
    rates = {}
    for t in threads:
        best = min((sweep_once(sp, t) for _ in range(2 if quick else 3)),
                   key=lambda r: r.seconds)
        rates[t] = best.runs_per_second
        lines.append(f"| {t} | {best.ran} | {best.seconds:.2f} | {best.runs_per_second:.1f} | "
                     f"{100 * best.kernel_seconds / best.seconds:.1f}% |")
    if len(rates) > 1:
        lines.append(f"\nTwo threads vs one: {rates[threads[-1]] / rates[threads[0]]:.2f}x")
    prof = cProfile.Profile()
    prof.enable()
    sweep_once(sp)
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(6)
    lines += ["", "Profile of one sweep, top functions by own time:", "", "```"]
    lines += [ln for ln in buf.getvalue().splitlines()[4:] if ln.strip()] + ["```"]
    return "\n".join(lines), rates
