"""A profile, presented: the terminal table, profile.md, the plot, the recommended threads.

Each population shape gets its epoch split by part at every thread count, the roofline of its
parts at one thread (GFLOP/s and GB/s against the honest single-thread GEMM peak and the
measured bandwidth: compute- or memory-bound), then the sweep's thread scaling, its expected
wall time and the recommended threads per population with the reason. The plot: time per epoch
stacked by part per thread count (the population that takes the most time), and the speed-up
against threads with the ideal line.
"""
from __future__ import annotations

import os

from . import roofline
from .report import pyplot

LABELS = {"gemm_forward": "GEMM forward (Z = W A; + b, activation where fused)",
          "gemm_dw": "GEMM dW (dZ A)", "gemm_dx": "GEMM dX (W^T dZ; x phi' where fused)",
          "transposes": "transposes (gather, A^T for dW)",
          "elementwise": "elementwise (bias, activation, dropout, residual; derivatives: "
                         "unfused)",
          "normalization": "normalization (batch or layer norm, both passes)",
          "loss": "loss", "optimizer": "optimizer (+ finiteness checks)",
          "call": "call (threads started and joined, gradients zeroed)",
          "rest": "rest (epoch - parts - call: loops, threads waiting)"}
ROWS = (*roofline.PARTS, "call", "rest")


def seconds(s: float) -> str:
    """A duration for people: 12.3 ms, 4.56 s, 0:12:34."""
    if s < 1:
        return f"{s * 1e3:.3g} ms"
    if s < 600:
        return f"{s:.3g} s"
    return f"{int(s // 3600)}:{int(s % 3600 // 60):02d}:{int(s % 60):02d}"


def _cores(p) -> int:
    return min(p.machine.cores, p.machine.numba_threads)


def recommend(p) -> dict:
    """Threads per population and populations in flight that finish the sweep first, with the
    expected wall time and the reason. The ways are compared warm (``warm``: the wall time
    without the first call's compile, which is the same at every thread count and would hide
    their difference). Running one population at a time on every thread (``fastinit sweep``
    as it is) is kept unless another way is at least 10% faster or its epochs measured
    slower than on the fewest threads; no thread count that did is recommended."""
    cores, pops = _cores(p), sum(x.populations for x in p.populations)
    top, low = p.threads[-1], p.threads[0]
    ways = [{"threads": t, "in_flight": max(1, min(pops, cores // t))} for t in p.threads]
    for w in ways:
        w["wall"] = p.wall(w["threads"], w["in_flight"])
        w["warm"] = w["wall"] - p.compile.get("seconds", 0.0)
    default = ways[-1]
    faster = [w for w in ways if p.speedup(w["threads"]) >= 1.0]    # the fewest threads: 1.0
    best = min(faster, key=lambda w: w["warm"])
    pick = dict(best if best["warm"] < 0.9 * default["warm"] or default not in faster
                else default)
    t, speed = pick["threads"], p.speedup(top)
    eff = speed / (top / low) if top > low else 1.0
    idle = [x for x in p.populations if x.modes[top] == "population-parallel"
            and x.config["members"] < top]
    split = [x for x in p.populations if x.modes[top] == "row-split"]
    scaling = f"its epochs speed up {speed:.2f}x from {low} to {top} threads ({eff:.0%} of " \
              f"ideal)"
    if top == low:
        pick["reason"] = f"measured at {top} thread(s) only: no scaling to compare."
    elif t == top:
        how = ("each member's products split by rows across the threads (fewer members than "
               "threads)" if split else "its members spread over the threads (population-"
               "parallel)")
        pick["reason"] = f"one population at a time on all {t} threads, as `fastinit sweep` " \
                         f"runs it: {how}; {scaling}."
    else:
        if idle:
            why = (f"populations of {min(x.config['members'] for x in idle)} member(s) leave "
                   f"threads idle and their steps are too small to split by rows")
        elif split:
            why = "splitting one member's products by rows gains little at these sizes"
        else:
            why = "waking and joining threads costs more than these epochs gain"
        if pick["in_flight"] == 1:
            pick["reason"] = (f"{t} thread(s), one population at a time (`fastinit sweep SPEC "
                              f"--threads {t}`): {scaling}, because {why}.")
        else:
            pick["reason"] = (
                f"{t} thread(s) per population, {pick['in_flight']} populations at once: "
                f"{scaling}, because {why}; populations side by side keep every core busy "
                f"({seconds(pick['wall'])} instead of {seconds(default['wall'])}). On this "
                f"machine: `dask scheduler --scheduler-file s.json &`, `dask worker "
                f"--scheduler-file s.json --nworkers {pick['in_flight']} --nthreads 1 &`, "
                f"then `fastinit sweep SPEC --scheduler-file s.json --threads {t}`. "
                f"Populations side by side share memory bandwidth; the estimate assumes they "
                f"do not slow each other.")
    pick["default"] = default
    return pick


def _roofs(p, pop, t):
    """{part: roofline.roof(...)} of one population at ``t`` threads."""
    m = p.machine
    peak = m.peak[pop.config["dtype"]]
    cached = pop.working_set <= m.l2
    bw = (m.cache if cached else m.memory)[t]
    steps = pop.parts[t]
    return {part: roofline.roof(*pop.work[part], steps[part], peak, t, bw)
            for part in parts_of(pop) if part in roofline.PARTS}, bw, cached


def parts_of(pop) -> tuple:
    """The parts a population's epoch has: normalization only when it normalizes."""
    return tuple(r for r in ROWS if r != "normalization" or pop.config.get("norm"))


def _tables(p):
    """(title, header, rows, notes) of every table, for text() and markdown()."""
    out = []
    for i, pop in enumerate(p.populations):
        head = ["part"] + [f"{t} thr ms" for t in p.threads] + \
            [f"{t} thr share" for t in p.threads]
        rows = []
        for part in parts_of(pop):
            label = LABELS[part]
            if part == "loss":
                label = f"loss ({pop.config['loss']})"
            elif part == "optimizer":
                label = f"optimizer ({pop.config['optimizer']}) + finiteness checks"
            rows.append([label] + [f"{pop.parts[t][part] * 1e3:.2f}" for t in p.threads]
                        + [f"{pop.parts[t][part] / pop.epoch[t]:.0%}" for t in p.threads])
        rows.append(["= training epoch (real, measured)"]
                    + [f"{pop.epoch[t] * 1e3:.2f}" for t in p.threads] + [""] * len(p.threads))
        rows.append(["evaluation (train + test sets)"]
                    + [f"{pop.evaluation[t] * 1e3:.2f}" for t in p.threads]
                    + [""] * len(p.threads))
        rows.append(["how the threads are used"] + [pop.modes[t] for t in p.threads]
                    + [""] * len(p.threads))
        rows.append(["speed-up of the epoch"]
                    + [f"{pop.epoch[p.threads[0]] / pop.epoch[t]:.2f}x" for t in p.threads]
                    + [""] * len(p.threads))
        count = (f"{pop.populations} population(s), {pop.runs} runs, {pop.epochs} epochs in "
                 f"all; " if len(p.populations) > 1 or pop.populations > 1 else "")
        title = (f"Population {i + 1}: {pop.label} ({count}{pop.steps} steps of "
                 f"{pop.config['samples']} samples per epoch)")
        out.append((title, head, rows, pop.notes))
        t = p.threads[0]
        roofs, bw, cached = _roofs(p, pop, t)
        peak = p.machine.peak[pop.config["dtype"]]
        rows = []
        for part, r in roofs.items():
            frac = "n/a" if r["fraction"] is None else f"{r['fraction']:.0%}"
            rows.append([LABELS[part].split(" (")[0], f"{r['gflops']:.2f}", f"{r['gbs']:.1f}",
                         f"{r['intensity']:.2f}", r["bound"], frac])
        where = (f"L2 bandwidth {bw:.0f} GB/s: a member's working set "
                 f"({pop.working_set / 1024:.0f} KiB) fits in L2" if cached else
                 f"memory bandwidth {bw:.1f} GB/s: a member's working set "
                 f"({pop.working_set / 2 ** 20:.1f} MiB) exceeds L2")
        title = (f"Roofline at {t} thread(s): peak {peak.gflops * t:.1f} GFLOP/s"
                 f"{'' if peak.verified else ' (not verified at one thread: no % of peak)'}"
                 f", {where}; ridge {peak.gflops * t / bw:.2f} flop/byte")
        above = [k for k, r in roofs.items() if (r["fraction"] or 0) > 1]
        notes = [f"above 100%: {', '.join(above)} ran from L1, faster than the triad's "
                 f"{'L2' if cached else 'memory'} bandwidth"] if above else []
        out.append((title, ["part", "GFLOP/s", "GB/s", "flop/byte", "bound", "% of roof"],
                    rows, notes))
    rec = recommend(p)
    cores = _cores(p)
    pops = sum(x.populations for x in p.populations)
    rows = []
    for t in p.threads:
        flight = max(1, min(pops, cores // t))
        rows.append([str(t), str(flight), seconds(sum(x.seconds(t) for x in p.populations)),
                     f"{p.speedup(t):.2f}x", f"{t / p.threads[0]:.0f}x",
                     seconds(p.wall(t, flight))])
    runs = sum(x.runs for x in p.populations)
    title = (f"Thread scaling of all {runs} runs ({pops} population(s)): compute at each "
             f"thread count, one population at a time, and the wall time with as many "
             f"populations in flight as the cores allow")
    out.append((title, ["threads", "in flight", "compute", "speed-up", "ideal", "wall time"],
                rows, []))
    return out, rec


def _summary(p, rec) -> list[str]:
    m = p.machine
    peaks = ", ".join(f"{k} {v.gflops:.1f} GFLOP/s ("
                      + ("verified at one BLAS thread" if v.verified else
                         f"NOT verified at one thread, {v.how}") + ")"
                      for k, v in m.peak.items())
    bws = ", ".join(f"{t} thr {m.memory[t]:.1f} GB/s (L2 {m.cache[t]:.0f})" for t in m.memory)
    c = p.compile
    lines = [f"Machine: {m.cpu}; {m.cores} usable cores, Numba {m.numba_threads} threads "
             f"({m.threading_layer})",
             f"Single-thread GEMM peak: {peaks}",
             f"Triad bandwidth: {bws}",
             "Parts: timed inside the real epoch by the kernels' own clock (network passes, loss, "
             "optimizer); the network passes shared among their parts as each part's replay "
             "alone shares them",
             f"Compile: {c.get('seconds', 0.0):.2f} s on the first call "
             f"({c.get('how', 'n/a')}); once per process, in no time below"
             + (f" (the profiler's own replays: {c['replays']:.2f} s more, not in a sweep)."
                if c.get("replays", 0) > 0.5 else ".")]
    lines += [f"Note: {n}" for n in p.notes]
    return lines


def _ending(p, rec) -> list[str]:
    d = rec["default"]
    return [f"Expected wall time: {seconds(d['wall'])} with {d['threads']} thread(s) per "
            f"population, {d['in_flight']} at a time"
            + ("" if rec["threads"] == d["threads"] else
               f"; {seconds(rec['wall'])} as recommended") + ".",
            f"Recommended: {rec['threads']} thread(s) per population, {rec['in_flight']} in "
            f"flight. {rec['reason']}"]


def text(p) -> str:
    """The profile as aligned plain-text tables, for the terminal."""
    tables, rec = _tables(p)
    lines = [f"fastinit profile: {p.name}"] + _summary(p, rec)
    for title, head, rows, notes in tables:
        widths = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
        lines += ["", title]
        for r in [head] + rows:
            lines.append("  ".join(str(v).ljust(w) if i == 0 else str(v).rjust(w)
                                   for i, (v, w) in enumerate(zip(r, widths))).rstrip())
        lines += [f"  ({n})" for n in notes]
    return "\n".join(lines + [""] + _ending(p, rec))


def markdown(p, figure: str | None = None) -> str:
    """The profile as markdown (profile.md), showing ``figure`` (a file name) if given."""
    tables, rec = _tables(p)
    lines = [f"# fastinit profile: {p.name}", ""] + [f"- {s}" for s in _summary(p, rec)]
    for title, head, rows, notes in tables:
        lines += ["", f"**{title}**", "", "| " + " | ".join(head) + " |",
                  "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(str(v) for v in r) + " |" for r in rows]
        lines += [f"\n_{n}_" for n in notes]
    lines += [""] + _ending(p, rec)
    if figure:
        lines += ["", f"![profile]({figure})"]
    return "\n".join(lines) + "\n"


def plot(p, path) -> str:
    """profile.png: left, time per epoch stacked by part at each thread count for the
    population that takes the sweep the most time; right, speed-up against threads, each
    population and all of them, with the ideal line."""
    plt = pyplot()                      # ImportError naming matplotlib when it is missing
    top = p.threads[-1]
    big = max(p.populations, key=lambda x: x.seconds(top))
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    xs = range(len(p.threads))
    base = [0.0] * len(p.threads)
    colors = plt.get_cmap("tab10").colors
    for i, part in enumerate(parts_of(big) + ("evaluation",)):
        vals = [max(0.0, big.evaluation[t] if part == "evaluation" else big.parts[t][part])
                * 1e3 for t in p.threads]
        a.bar(xs, vals, bottom=base, label=LABELS.get(part, "evaluation").split(" (")[0],
              color=colors[i % 10])
        base = [u + v for u, v in zip(base, vals)]
    a.set_xticks(list(xs), [str(t) for t in p.threads])
    a.set_xlabel("threads")
    a.set_ylabel("ms per epoch")
    a.set_title(big.label[:70], fontsize=8)
    a.legend(fontsize=7)
    ideal = [t / p.threads[0] for t in p.threads]
    b.plot(p.threads, ideal, "--", color="gray", label="ideal")
    for pop in p.populations[:8]:
        b.plot(p.threads, [pop.epoch[p.threads[0]] / pop.epoch[t] for t in p.threads], "o-",
               lw=1, alpha=0.6, label=pop.label[:40])
    if len(p.populations) > 1:
        b.plot(p.threads, [p.speedup(t) for t in p.threads], "o-", lw=2.5, color="black",
               label="all runs")
    b.set_xlabel("threads")
    b.set_ylabel("speed-up of an epoch")
    b.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def write(p, out) -> dict:
    """profile.md, profile.png (when matplotlib is installed) and profile.json in ``out``."""
    os.makedirs(out, exist_ok=True)
    files = {}
    try:
        files["profile.png"] = plot(p, os.path.join(out, "profile.png"))
    except ImportError as e:
        p.notes.append(f"no plot: {e}")
    body = markdown(p, "profile.png" if files else None)
    for name, body in (("profile.md", body), ("profile.json", p.to_json() + "\n")):
        files[name] = os.path.join(out, name)
        with open(files[name], "w", encoding="utf-8") as f:
            f.write(body)
    return files
