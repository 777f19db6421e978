"""Reports from a results database: PNG figures (matplotlib) and an HTML page with a summary.

    fastinit report runs.db --out report/ [--sweep NAME]

A report is about one sweep: the runs of its current spec (the database's only sweep, or the
one named). Figures, each aggregated over seeds only (line: mean; band: min to max; a
"scheme" below is a scheme with its width and other settings where those vary, as in the
table's rows; runs of different lengths are separate lines, never one band); "test
accuracy" is the report's metric (_metric: test loss for regression, the training set's metric
for a sweep without a test split):
    curves.png          test accuracy per epoch, one line per scheme, a panel per depth (and
                        activation); diverged runs included, so the divergence shows: from
                        the bad step on, a diverged run's loss is missing and its accuracy
                        stays that of its weights from before it
    loss.png            training loss per epoch, the same panels
    depth.png           final test accuracy vs depth, per scheme, a panel per activation,
                        over the runs that trained: diverged runs left out, as the table
                        leaves them out of mean, std and min; an x marks a depth where
                        every seed diverged
    variance.png        pre-activation variance by layer at init, per scheme (deepest net)
    symmetry.png        distinct units in the first hidden layer, at init and after training
    divergence.png      diverged runs per scheme
    time.png            time per run (its share of its population's time, compiling the
                        kernels left out: that is stored apart, compile_s) by depth
"""
from __future__ import annotations

import html
import math
import os
import warnings
from collections import defaultdict

import numpy as np

from ._validate import check_path
from .registry import label
from .store import Store, StoreError
from .tabular import columns, depth_points, left_out_note, value  # noqa: F401 - public


def pyplot():
    """matplotlib.pyplot on the Agg backend (files, no screen), or an ImportError that says
    what to install: every figure fastinit draws goes through here."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("fastinit report draws with matplotlib: pip install matplotlib "
                          "(or pip install 'fastinit[report]').") from None
    return plt


def pick_sweep(store: Store, sweep: str | None) -> str | None:
    """The sweep a report is about: ``sweep`` if the database has it, else its only sweep;
    with several and none named, a StoreError listing them."""
    known = store.sweeps()
    names = [s["name"] for s in known]
    if sweep is None:
        if len(names) > 1:
            store.fail(f"holds {len(names)} sweeps: " + "; ".join(
                f"{s['name']} ({s['stored']} of {s['runs']} runs, last run {s['last_run_at']})"
                for s in known) + ". Name one with --sweep NAME.")
        return names[0] if names else None
    if sweep not in names:
        store.rows(sweep)       # its runs stored without a sweep record, or "no sweep" error
    return sweep


def heading(store: Store, sweep: str | None) -> str:
    """What a report is about: "sweep NAME: ", and while its spec has runs not stored yet (a
    sweep still running, or stopped), how many of them are."""
    info = next((s for s in store.sweeps() if s["name"] == sweep), None)
    todo = f" ({info['stored']} of its {info['runs']} runs stored so far)" if info and \
        info["stored"] < info["runs"] else ""
    return f"sweep {sweep}{todo}: " if sweep else ""


def _complete(row) -> dict:
    """A row stored bare (its result could not be stored) with its key columns from its
    config, so it counts where it belongs."""
    cfg = row.get("config") or {}
    if row["scheme"] is None and cfg.get("scheme"):
        row.update(scheme=cfg["scheme"][0], scheme_params=cfg["scheme"][1],
                   activation=cfg.get("activation"), depth=cfg.get("depth"),
                   width=cfg.get("width"))
    return row


def _label(row) -> str:
    return label(row["scheme"], row["scheme_params"] or {})


def _metric(rows):
    """(key, title) of the metric a report ranks by: test accuracy for classification runs,
    else test loss; the training set's when no run has a test value (a sweep with no test
    split, test_fraction = 0)."""
    def seen(key):
        return any(r[f"final_{key}"] is not None
                   or any(v is not None for v in (r.get("curves") or {}).get(key) or [])
                   for r in rows)
    for split in ("test", "train"):
        for kind, name in (("acc", "accuracy"), ("loss", "loss")):
            if seen(f"{split}_{kind}"):
                return f"{split}_{kind}", f"{split} {name}"
    return "test_loss", "test loss"


def _bands(ax, curves, label, color) -> bool:
    """Mean and min-max band of curves, one line per curve length (epoch count); whether any
    value is positive (something a log axis can show: an all-NaN one cannot be drawn)."""
    by_len = defaultdict(list)
    for y in curves:
        by_len[len(y)].append([np.nan if v is None else v for v in y])
    styles = iter(("-", "--", ":", "-."))
    positive = False
    for n, ys in sorted(by_len.items(), reverse=True):
        ys = np.array(ys, dtype=float)
        positive |= bool(np.any(ys > 0))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)     # all-NaN epochs
            mean = np.nanmean(ys, axis=0)
            lo, hi = np.nanmin(ys, axis=0), np.nanmax(ys, axis=0)
        name = label if len(by_len) == 1 else f"{label}, {n - 1} epochs"
        x = np.arange(n)
        ax.plot(x, mean, next(styles, "-"), label=name, color=color, lw=1.6)
        ax.fill_between(x, lo, hi, color=color, alpha=0.18, lw=0)
    return positive


_SHOWN = ("scheme", "seed", "activation", "depth", "width")


def _varying(rows) -> list[str]:
    """The run keys other than _SHOWN whose values differ across rows, sorted."""
    configs = [r["config"] or {} for r in rows]
    keys = sorted({k for c in configs for k in c} - set(_SHOWN))
    return [k for k in keys if len({repr(c.get(k)) for c in configs}) > 1]


def _setting(rows):
    """For each row, the other run keys that vary across rows, as "lr=0.05, epochs=3"."""
    varying = _varying(rows)
    return [", ".join(f"{k}={(r['config'] or {}).get(k)}" for k in varying) for r in rows]


def _by_value(v) -> tuple:
    """A sort key for a run key's value: numbers by size (lr 1e-05 before 0.01 and 0.1, which
    their text puts last), then anything else by its text."""
    return (0, v, "") if type(v) in (int, float) else (1, 0, repr(v))


def name_lines(rows) -> list[str]:
    """Name each row's line in the figures (row["line"]): its scheme label, then its width
    when widths vary and the other run keys that vary (the table's "other"), so a figure never
    averages runs of different settings (lr 0.05 and lr 1e6) into one line and band. The
    names in the figures' order: by scheme label, then width and those keys by value."""
    widths, varying, order = len({r["width"] for r in rows}) > 1, _varying(rows), {}
    for r, setting in zip(rows, _setting(rows)):
        r["line"] = ", ".join([_label(r)] + [f"width={r['width']}"] * widths
                              + [setting] * bool(setting))
        order[r["line"]] = (_label(r), _by_value(r["width"]),
                            tuple(_by_value((r["config"] or {}).get(k)) for k in varying))
    return sorted(order, key=order.get)


def _finite(value) -> bool:
    return value is not None and math.isfinite(value)


def _overflowed(r, key: str) -> bool:
    """A run stored done whose final ``key`` is not finite though its curve had a finite value
    before (measured, then overflowed; None throughout: never measured, e.g. no test split)."""
    curve = (r.get("curves") or {}).get(key) or []
    return r["status"] == "done" and not _finite(r[f"final_{key}"]) and \
        any(_finite(v) for v in curve)


def summarise(rows) -> list[dict]:
    """One line per (scheme, activation, depth, width, other varying keys): runs (seeds),
    mean / std / min of the final metric over the runs that trained (a diverged run's metric,
    of its weights from before the bad step, is left out), diverged and failed counts,
    nonfinite (runs stored done whose final metric is not finite: it overflowed after the last
    training step, which train() does not call diverged), mean time per run. A row stored
    bare counts where its config puts it."""
    rows = [_complete(r) for r in rows]
    key_metric, _ = _metric(rows)
    groups = defaultdict(list)
    for r, setting in zip(rows, _setting(rows)):
        groups[(_label(r), r["activation"] or "", r["depth"] or 0, r["width"] or 0,
                setting)].append(r)
    varying = _varying(rows)       # ordered by value: numbers by size (epochs 3 before 10)
    by_value = lambda kv: tuple(_by_value((kv[1][0]["config"] or {}).get(k)) for k in varying)
    out = []
    for (scheme, act, depth, width, setting), rs in sorted(groups.items(), key=lambda kv: (
            kv[0][1], kv[0][2], by_value(kv), kv[0][0], kv[0][3])):
        timed = [r["time_s"] for r in rs if r["time_s"] is not None]    # a failed run has none
        vals = np.array([r[f"final_{key_metric}"] for r in rs if not r["diverged"]
                         and _finite(r[f"final_{key_metric}"])], dtype=float)
        out.append({"scheme": scheme, "activation": act, "depth": depth, "width": width,
                    "setting": setting, "runs": len(rs), "metric": key_metric,
                    "mean": float(vals.mean()) if vals.size else math.nan,
                    "std": float(vals.std()) if vals.size else math.nan,
                    "min": float(vals.min()) if vals.size else math.nan,
                    "diverged": sum(r["diverged"] or 0 for r in rs),
                    "nonfinite": sum(_overflowed(r, key_metric) for r in rs),
                    "failed": sum(r["status"] == "failed" for r in rs),
                    "time_s": float(np.mean(timed)) if timed else math.nan})
    return out


def text_table(rows) -> str:
    """The summary as a text table (what the CLI prints), every column as wide as its content:
    no scheme label is cut, so two specs of one scheme stay apart."""
    summ = summarise(rows)
    if not summ:
        return "(no runs)"
    metric = summ[0]["metric"].replace("_", " ")
    other = any(s["setting"] for s in summ)
    nonfinite = any(s["nonfinite"] for s in summ)     # a column only when it counts a run
    head = ["scheme", "act", "depth", "runs", f"{metric} mean", "std", "min", "div"] + \
        ["nonfinite"] * nonfinite + ["fail"] + ["other"] * other
    cells = [[s["scheme"], s["activation"], str(s["depth"]), str(s["runs"]), value(s["mean"]),
              value(s["std"]), value(s["min"]), str(s["diverged"])]
             + [str(s["nonfinite"])] * nonfinite + [str(s["failed"])] + [s["setting"]] * other
             for s in summ]
    note = left_out_note(summ)
    return "\n".join(columns(head, cells, left={0, 1, len(head) - 1 if other else 0})
                     + ([note] if note else []))


def compile_seconds(rows) -> float:
    """Seconds the rows' populations spent compiling or loading kernels: each run stores its
    population's (compile_s), so a population of n runs counts once."""
    return sum((r.get("compile_s") or 0.0) / (r.get("population_size") or 1) for r in rows)


def timing_note(rows) -> str:
    """What the reports' ms/run holds, and the compile time left out of it, said once."""
    note = "ms/run: a run's share of its population's time training, evaluating and diagnosing"
    known = [r for r in rows if r.get("compile_s") is not None]
    if not known:
        return note + " (stored by an older fastinit: compiling the kernels included)."
    return note + f"; compiling and loading the kernels ({compile_seconds(known):.1f} s in " \
                  f"all) is left out."


def make_report(db, out: str = "report", sweep: str | None = None) -> dict:
    """Write the figures and index.html for the runs of one sweep's current spec in ``db``
    (``sweep``, or the database's only sweep); returns {name: path}. Opens ``db`` read-only."""
    db = check_path(db, "db", "fastinit.report.make_report")
    plt = pyplot()
    with Store(db, readonly=True) as store:
        sweep = pick_sweep(store, sweep)
        rows, about = [_complete(r) for r in store.rows(sweep)], heading(store, sweep)
    if not rows:
        raise StoreError(f"{db!s}: holds no runs" + (f" of sweep {sweep!r}" if sweep else "")
                         + " yet.")
    schemes = name_lines(rows)                     # a line per scheme and setting
    os.makedirs(out, exist_ok=True)
    ok = [r for r in rows if r["status"] in ("done", "diverged") and r["curves"]]
    key, title = _metric(ok or rows)
    colors = {s: plt.get_cmap("tab10" if len(schemes) <= 10 else "tab20")(i % 20)
              for i, s in enumerate(schemes)}
    depths = sorted({r["depth"] for r in rows})
    acts = sorted({r["activation"] for r in rows})
    files = {}

    def save(fig, name, legend_from=None):
        path = os.path.join(out, name)
        fig.tight_layout()
        if legend_from is not None:      # one legend for all panels, right of them (the
            handles, labels = legend_from.get_legend_handles_labels()   # image grows to it)
            fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5),
                       fontsize=7, frameon=False)
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        files[name] = path

    def curve_panels(metric, ylabel, logy, name):
        """One panel per (activation, depth): the metric per epoch, a line per scheme."""
        fig, axes = plt.subplots(len(acts), len(depths), figsize=(3.6 * len(depths),
                                                                  2.9 * len(acts)), squeeze=False)
        for i, act in enumerate(acts):
            for j, depth in enumerate(depths):
                ax = axes[i, j]
                positive = False
                for s in schemes:
                    rs = [r for r in ok if r["line"] == s and r["depth"] == depth
                          and r["activation"] == act]
                    if rs:
                        positive |= _bands(ax, [r["curves"][metric] for r in rs], s, colors[s])
                ax.set_title(f"{act}, depth {depth}", fontsize=9)
                ax.set_xlabel("epoch", fontsize=8)
                ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))   # no epoch 0.5
                ax.set_ylabel(ylabel, fontsize=8)
                ax.tick_params(labelsize=7)
                if logy and positive:
                    ax.set_yscale("log")
        save(fig, name, legend_from=axes[0, 0])

    curve_panels(key, title, key == "test_loss", "curves.png")
    curve_panels("train_loss", "training loss", True, "loss.png")

    # final metric vs depth
    fig, axes = plt.subplots(1, len(acts), figsize=(4.2 * len(acts), 3.2), squeeze=False)
    for i, act in enumerate(acts):
        ax, stacked = axes[0, i], 0      # rows of x marks: one a scheme
        for s in schemes:
            xs, ys, gone = depth_points(ok, s, act, depths, key)
            if xs:
                ax.plot(xs, ys[:, 0], "o-", color=colors[s], label=s, ms=3)
                ax.fill_between(xs, ys[:, 1], ys[:, 2], color=colors[s], alpha=0.15, lw=0)
            if gone:                       # at the panel's foot, whatever its y range
                ax.plot(gone, [0.04 + 0.06 * stacked] * len(gone), "x", ms=6,
                        color=colors[s], clip_on=False, transform=ax.get_xaxis_transform())
                stacked += 1
        ax.set_xlabel("hidden layers" + "  (x: every seed diverged)" * bool(stacked),
                      fontsize=8)
        ax.set_ylabel(f"final {title}", fontsize=8)
        ax.set_title(act, fontsize=9)
        if min(depths) > 0:              # a log axis has no depth 0: it would drop the point
            ax.set_xscale("log", base=2)
        ax.tick_params(labelsize=7)
    save(fig, "depth.png", legend_from=axes[0, 0])

    # pre-activation variance by layer at init, deepest depth
    diag_rows = [r for r in rows if r["diagnostics"]]
    if diag_rows:
        deep = max(r["depth"] for r in diag_rows)
        fig, axes = plt.subplots(1, len(acts), figsize=(4.2 * len(acts), 3.2), squeeze=False)
        for i, act in enumerate(acts):
            ax = axes[0, i]
            for s in schemes:
                rs = [r for r in diag_rows if r["line"] == s and r["depth"] == deep
                      and r["activation"] == act]
                if rs:
                    v = np.array([r["diagnostics"]["init"]["pre_var"] for r in rs], dtype=float)
                    v = np.where(v > 0, v, np.nan)    # zero variance cannot show on a log axis
                    if np.all(np.isnan(v)):
                        continue
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN layers
                        mean = np.nanmean(v, axis=0)
                    ax.plot(np.arange(1, v.shape[1] + 1), mean, "o-", color=colors[s], label=s,
                            ms=3)
            ax.set_yscale("log")
            ax.set_xlabel("layer", fontsize=8)
            ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
            ax.set_ylabel("Var[pre-activation] at init", fontsize=8)
            ax.set_title(f"{act}, depth {deep}", fontsize=9)
            ax.tick_params(labelsize=7)
        save(fig, "variance.png", legend_from=axes[0, 0])

        fig, ax = plt.subplots(figsize=(max(4.0, 0.55 * len(schemes) + 1.5), 3.2))
        xs = np.arange(len(schemes))
        for off, when in ((-0.2, "init"), (0.2, "final")):
            vals = []
            for s in schemes:
                rs = [r for r in diag_rows if r["line"] == s]
                vals.append(np.mean([r["diagnostics"][when]["distinct_units"][0] for r in rs]
                                    if rs else np.nan))
            ax.bar(xs + off, vals, width=0.4, label=when)
        ax.set_xticks(xs, schemes, rotation=45, ha="right", fontsize=7)
        ax.set_ylabel("distinct units, hidden layer 1", fontsize=8)
        ax.set_yscale("log")
        ax.legend(fontsize=7)
        save(fig, "symmetry.png")

    fig, ax = plt.subplots(figsize=(max(4.0, 0.55 * len(schemes) + 1.5), 3.0))
    counts = [sum(bool(r["diverged"]) for r in rows if r["line"] == s) for s in schemes]
    ax.bar(np.arange(len(schemes)), counts, color=[colors[s] for s in schemes])
    ax.set_xticks(np.arange(len(schemes)), schemes, rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("diverged runs", fontsize=8)
    save(fig, "divergence.png")

    fig, ax = plt.subplots(figsize=(4.2, 3.0))
    for depth in depths:
        t = [r["time_s"] for r in rows if r["depth"] == depth and r["time_s"]]
        ax.bar(str(depth), np.mean(t) * 1e3 if t else 0.0, color="tab:gray")
    ax.set_xlabel("hidden layers", fontsize=8)
    ax.set_ylabel("ms per run (share of its population)", fontsize=8)
    save(fig, "time.png")

    files["index.html"] = _html(rows, out, [f for f in files if f.endswith(".png")], db, about)
    return files


def _html(rows, out, images, db, about="") -> str:
    esc = lambda v: html.escape(str(v))      # every stored value, whatever it holds
    summ = summarise(rows)
    metric = summ[0]["metric"].replace("_", " ") if summ else ""
    cells = "".join(
        f"<tr><td>{esc(s['scheme'])}</td><td>{esc(s['activation'])}</td><td>{esc(s['depth'])}"
        f"</td><td>{esc(s['width'])}</td><td>{esc(s['setting'])}</td><td>{s['runs']}</td>"
        f"<td>{value(s['mean'])}</td><td>{value(s['std'])}</td><td>{value(s['min'])}</td>"
        f"<td>{s['diverged']}</td><td>{s['nonfinite']}</td><td>{s['failed']}</td>"
        f"<td>{s['time_s'] * 1e3:.1f}</td></tr>"
        for s in summ)
    figs = "".join(f'<figure><img src="{esc(name)}" alt="{esc(name)}"><figcaption>'
                   f"{esc(name)}</figcaption></figure>" for name in images)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>fastinit report</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
td:first-child{{text-align:left;white-space:nowrap}}
img{{max-width:100%}}figure{{margin:1em 0}}</style></head><body>
<h1>fastinit report</h1><p>{esc(about)}{len(rows)} runs from {esc(db)}.
Final {esc(metric)}: mean, std and min over seeds. {esc(left_out_note(summ))}
{esc(timing_note(rows))}</p>
<table><tr><th>scheme</th><th>activation</th><th>depth</th><th>width</th><th>other</th><th>runs</th>
<th>mean</th><th>std</th><th>min</th><th>diverged</th><th>nonfinite</th><th>failed</th>
<th>ms/run</th></tr>
{cells}</table>{figs}</body></html>
"""
    path = os.path.join(out, "index.html")
    with open(path, "w", encoding="utf-8") as f:      # what the page declares, whatever the locale
        f.write(page)
    return path
