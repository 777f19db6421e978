"""Convergence benchmark: for relu, tanh and selu networks of depth 2, 8 and 32 on digits and a
teacher-student task, every main scheme x 5 seeds: epochs and seconds to a target, the final
value and the divergence count.

Each at learning rates 0.02 and 0.002 (SGD with momentum 0.9; 32 layers need the smaller one).
Targets: digits, test accuracy >= 0.90; teacher-student, test MSE <= 5% of the targets'
variance (R^2 >= 0.95). Seconds to target = epochs to target x the run's time per epoch (its
share of its population's time).
"""
import math
import os
import tempfile
from collections import defaultdict

import numpy as np

from ..datasets import load_dataset
from ..registry import label
from ..report import pyplot
from ..store import Store
from ..sweep import run_sweep

SCHEMES = ["zeros", "xavier_normal", {"name": "kaiming_normal", "nonlinearity": "relu"},
           "lecun_normal", "orthogonal", "ZerO", "torch_linear"]
TEACHER = {"n": 2000, "teacher": [20, 32, 1], "activation": "tanh"}


def specs(quick: bool = False) -> list[dict]:
    acts = ["relu", "tanh"] if quick else ["relu", "tanh", "selu"]
    depths = [2, 8] if quick else [2, 8, 32]
    seeds = [0, 1] if quick else [0, 1, 2, 3, 4]
    epochs = 8 if quick else 20
    schemes = SCHEMES[:4] if quick else SCHEMES
    out = []
    lrs = [0.02] if quick else [0.02, 0.002]   # deep nets need the smaller one
    for dataset in ("digits", "teacher_student")[:1 if quick else 2]:
        out.append({"name": f"convergence-{dataset}",
                    "grid": {"scheme": schemes, "seed": seeds, "depth": depths,
                             "activation": acts, "lr": lrs},
                    "train": {"dataset": dataset, "width": 64, "epochs": epochs,
                              "batch_size": 32, "optimizer": "momentum"},
                    "data": {"teacher_student": TEACHER}, "diagnose": False})
    return out


def summarise(rows, target_loss: float | None) -> list[dict]:
    """Per (dataset, activation, depth, lr, scheme): runs, reached, median epochs and seconds
    to the target, the mean final value over the runs that trained (NaN when none did), and
    the diverged count: a diverged run's final value, of its weights from before the bad
    step, is counted there only, as fastinit report's table counts it."""
    groups = defaultdict(list)
    for r in rows:
        scheme = label(r["scheme"], r["scheme_params"])
        groups[(r["dataset"], r["activation"], r["depth"], r["lr"], scheme)].append(r)
    out = []
    for (dataset, act, depth, lr, scheme), rs in sorted(groups.items()):
        epochs_to, secs_to, finals = [], [], []
        for r in rs:
            c = r["curves"]
            if dataset == "digits":
                seq = [v if v is not None else -1 for v in c["test_acc"]]
                hit = next((e for e, v in enumerate(seq) if v >= 0.9), None)
                final = c["test_acc"][-1]
            else:
                seq = [v if v is not None else math.inf for v in c["test_loss"]]
                hit = next((e for e, v in enumerate(seq) if v <= target_loss), None)
                final = c["test_loss"][-1]
            if final is not None and not r["diverged"]:
                finals.append(final)
            if hit is not None and not r["diverged"]:
                epochs_to.append(hit)
                secs_to.append(hit * r["time_s"] / max(1, r["epochs"]))
        fin = np.array(finals, dtype=float)
        out.append({"dataset": dataset, "activation": act, "depth": depth, "lr": lr,
                    "scheme": scheme,
                    "runs": len(rs), "reached": len(epochs_to),
                    "epochs": float(np.median(epochs_to)) if epochs_to else math.nan,
                    "seconds": float(np.median(secs_to)) if secs_to else math.nan,
                    "final": float(fin.mean()) if fin.size else math.nan,
                    "diverged": sum(bool(r["diverged"]) for r in rs)})
    return out


def markdown(summary) -> str:
    """Every cell of the summary as a markdown table; - where there is no value (no seed
    reached the target, or none trained)."""
    lines = ["| dataset | activation | depth | lr | scheme | reached/runs | epochs to target | "
             "ms to target | final | diverged |", "|---|---|---|---|---|---|---|---|---|---|"]
    for s in summary:
        ep = "-" if math.isnan(s["epochs"]) else f"{s['epochs']:.0f}"
        ms = "-" if math.isnan(s["seconds"]) else f"{s['seconds'] * 1e3:.1f}"
        final = "-" if math.isnan(s["final"]) else f"{s['final']:.4f}"
        lines.append(f"| {s['dataset']} | {s['activation']} | {s['depth']} | {s['lr']:g} | "
                     f"{s['scheme']} | "
                     f"{s['reached']}/{s['runs']} | {ep} | {ms} | {final} | "
                     f"{s['diverged']} |")
    return "\n".join(lines)


def pivot_markdown(summary) -> str:
    """One row per (dataset, activation, depth), one column per scheme: epochs to target at
    the better learning rate and how many of the seeds got there (- : none); diverged runs in
    brackets."""
    schemes = sorted({s["scheme"] for s in summary})
    short = [sc.split("(")[0] for sc in schemes]
    keys = sorted({(s["dataset"], s["activation"], s["depth"]) for s in summary})
    lines = ["| dataset | act | depth | " + " | ".join(short) + " |",
             "|---|---|---|" + "---|" * len(schemes)]
    for key in keys:
        cells = []
        for sc in schemes:
            opts = [s for s in summary if (s["dataset"], s["activation"], s["depth"]) == key
                    and s["scheme"] == sc]
            best = min(opts, key=lambda s: (-s["reached"], s["epochs"] if not
                                            math.isnan(s["epochs"]) else 1e9))
            div = sum(s["diverged"] for s in opts)
            cell = "-" if best["reached"] == 0 else \
                f"{best['epochs']:.0f} ({best['reached']}/{best['runs']})"
            cells.append(cell + (f" [{div}]" if div else ""))
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(summary, path):
    """Epochs to target per scheme, one panel per (dataset, activation), bars per depth."""
    plt = pyplot()
    panels = sorted({(s["dataset"], s["activation"]) for s in summary})
    schemes = sorted({s["scheme"] for s in summary})
    depths = sorted({s["depth"] for s in summary})
    fig, axes = plt.subplots(1, len(panels), figsize=(4.0 * len(panels), 3.6), squeeze=False)
    width = 0.8 / len(depths)
    for ax, (dataset, act) in zip(axes[0], panels):
        for j, depth in enumerate(depths):
            vals = []
            for sc in schemes:   # the best learning rate's epochs to target
                m = [s["epochs"] for s in summary if (s["dataset"], s["activation"],
                                                      s["depth"], s["scheme"]) ==
                     (dataset, act, depth, sc) and not math.isnan(s["epochs"])]
                vals.append(min(m) if m else math.nan)
            ax.bar(np.arange(len(schemes)) + (j - (len(depths) - 1) / 2) * width,
                   np.nan_to_num(vals, nan=0.0), width, label=f"depth {depth}")
        ax.set_xticks(np.arange(len(schemes)), [s.split("(")[0] for s in schemes],
                      rotation=45, ha="right", fontsize=7)
        ax.set_ylabel("epochs to target (0 bar: never)", fontsize=8)
        ax.set_title(f"{dataset}, {act}", fontsize=9)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(quick: bool = False, out: str | None = None, threads=None):
    """Run the convergence sweeps into out/convergence.db; (markdown, summary)."""
    tmp = None
    if out is None:
        tmp = tempfile.TemporaryDirectory()
        out = tmp.name
    os.makedirs(out, exist_ok=True)
    db = os.path.join(out, "convergence.db")
    summary = []
    for sp in specs(quick):
        run_sweep(sp, db, threads=threads)
        with Store(db) as s:
            rows = s.rows(sp["name"])
        target = None
        if sp["train"]["dataset"] == "teacher_student":
            d = load_dataset("teacher_student", TEACHER, 0)
            target = 0.05 * float(np.var(d.y_test))
        summary += summarise(rows, target)
    text = ("Epochs to target (seeds that got there) at the better learning rate; "
            "[diverged runs, both rates]:\n\n" + pivot_markdown(summary)
            + "\n\nEvery cell:\n\n" + markdown(summary))
    if tmp is not None:
        tmp.cleanup()
    return text, summary

