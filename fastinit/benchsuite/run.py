"""`fastinit bench`: the whole suite, a markdown report and plots in one directory."""
from __future__ import annotations

import os
import sys
import time

import numba

from ..report import pyplot
from . import coldstart, convergence, harness, profile, sampling, sweeps, training


def _plots(out, train_res, sample_rows, threads):
    plt = pyplot()
    files = []
    if len(threads) > 1:   # thread scaling of fastinit, every case
        t0, t1 = threads[0], threads[-1]
        cases, ratios = [], []
        for group, impl, sec in sample_rows:
            if impl == "[fastinit]" and group.endswith(f"threads={t0}"):
                case = group.rsplit(" ", 1)[0]
                other = [s for g, i, s in sample_rows if i == impl and g == f"{case} "
                         f"threads={t1}"]
                if other:
                    cases.append(case)
                    ratios.append(sec / other[0])
        for (case, t), sec in train_res["ours"].items():
            if t == t0 and (case, t1) in train_res["ours"]:
                cases.append(case)
                ratios.append(sec / train_res["ours"][(case, t1)])
        fig, ax = plt.subplots(figsize=(max(4, 0.7 * len(cases) + 1), 3.2))
        ax.bar(range(len(cases)), ratios, color="tab:blue")
        ax.axhline(t1 / t0, color="gray", ls="--", lw=1, label="linear")
        ax.axhline(1.7, color="tab:red", ls=":", lw=1, label="target 1.7x")
        ax.set_xticks(range(len(cases)), cases, rotation=45, ha="right", fontsize=7)
        ax.set_ylabel(f"speed-up, {t1} threads vs {t0}", fontsize=8)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = os.path.join(out, "thread_scaling.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        files.append(path)
    growth = train_res["growth"]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    for ax, axis, label in zip(axes, ("population", "depth", "width"),
                               ("population size K", "depth (layers)", "width")):
        for t, data in growth.items():
            xs = [v for v, _ in data[axis]]
            ys = [s * 1e3 for _, s in data[axis]]
            ax.plot(xs, ys, "o-", label=f"{t} thread(s)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(label, fontsize=8)
        ax.set_ylabel("ms per epoch", fontsize=8)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = os.path.join(out, "throughput.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    files.append(path)
    return files


def run_bench(args) -> int:
    threads = ([int(v) for v in args.threads.split(",")] if args.threads
               else harness.THREADS)
    if any(t < 1 or t > numba.config.NUMBA_NUM_THREADS for t in threads):
        print(f"fastinit bench: --threads values must be in [1, "
              f"{numba.config.NUMBA_NUM_THREADS}]", file=sys.stderr)
        return 2
    try:
        pyplot()
    except ImportError as e:
        print(f"fastinit bench: the plots need matplotlib. {e}", file=sys.stderr)
        return 2
    quick = args.quick
    os.makedirs(args.out, exist_ok=True)
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    t0 = time.perf_counter()
    say(f"fastinit bench{' --quick' if quick else ''}: threads {threads}, output {args.out}/")
    try:
        peak, why = training.sgemm_peak(), ""
    except training.PeakUnverified as e:       # the tables say so instead of a "% of peak"
        peak, why = None, str(e)
        print(f"fastinit bench: single-thread sgemm peak not measured: {why}", file=sys.stderr)
    say("  " + training.peak_line(peak, why))
    say("  cold start: " + ("one train" if quick else "one train and fastinit demo")
        + " with an empty kernel cache, then a warm one ...")
    cold_text, _ = coldstart.main(quick)
    say("  sampling ...")
    sample_text, sample_rows = sampling.main(threads, quick)
    say("  training ...")
    train_text, train_res = training.main(threads, quick, peak)
    peak = train_res["peak"]       # the higher of two readings (training.remeasured)
    say("  profile of one epoch ...")
    prof_text = "\n\n".join([
        profile.markdown(profile.epoch_profile(K=16 if quick else 64),
                         f"{16 if quick else 64} networks [64, 64, 64, 10], batch 64, 1 thread"),
        profile.markdown(profile.epoch_profile((784, 256, 256, 10), 128, 2048, 1),
                         "one [784, 256, 256, 10], batch 128, 1 thread")])
    say("  sweeps ...")
    sweep_text, _ = sweeps.main(threads, quick)
    say("  sweeps on a Dask LocalCluster ...")
    dask_text, _ = sweeps.dask_case(quick)
    say("  convergence ...")
    conv_text, summary = convergence.main(quick, args.out, threads[-1])
    conv_png = os.path.join(args.out, "time_to_accuracy.png")
    convergence.plot(summary, conv_png)
    pngs = _plots(args.out, train_res, sample_rows, threads) + [conv_png]
    report = "\n\n".join([
        "# fastinit benchmark", f"Machine: {harness.machine()}. Threads: {threads}. "
        f"{'Quick mode. ' if quick else ''}Median of repeats; JIT compile outside the timed "
        f"region; fastinit and its peers at the same thread count; speed-up = peer time / "
        f"fastinit time.", training.peak_line(peak, why),
        "## Cold start", coldstart.__doc__.strip().split("\n\n")[0], cold_text,
        "## Sampling", sample_text, "## Training", train_text,
        "## Where an epoch's time goes", profile.__doc__.strip(), prof_text,
        "## Sweeps", sweep_text, "### On a Dask cluster", dask_text,
        "## Convergence", convergence.__doc__.strip(), conv_text,
        "## Figures", "\n".join(f"![{os.path.basename(p)}]({os.path.basename(p)})"
                                for p in pngs)])
    path = os.path.join(args.out, "bench.md")
    with open(path, "w") as f:
        f.write(report + "\n")
    say(f"done in {time.perf_counter() - t0:.0f} s: {path} and {len(pngs)} figures")
    return 0
