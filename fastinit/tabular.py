"""Results as tables for notebooks and analysis tools: pandas DataFrames (the optional ``frames``
extra), the HTML tables Jupyter shows for a History, a Diagnostics or a SweepResult, and the
aligned text tables the CLI prints.

Everything here reads plain attributes (arrays, lists, numbers, strings) and imports no other
fastinit module, so the classes that offer ``to_pandas`` / ``_repr_html_`` can import it. Every
value in an HTML cell is escaped (html.escape), whatever it holds.
"""
from __future__ import annotations

import html
import math

import numpy as np

MAX_HTML_ROWS = 50          # a notebook glance, not a dump: the arrays hold everything
HISTORY_COLUMNS = ("member", "label", "epoch", "train_loss", "train_acc", "test_loss",
                   "test_acc", "epoch_time", "eval_time", "diverged", "diverged_step")


def pandas(what: str):
    """pandas, or an ImportError naming the extra: ``what`` is the feature that needs it."""
    try:
        import pandas as pd
    except ImportError:
        raise ImportError(f"{what} needs pandas: pip install pandas (or pip install "
                          f"'fastinit[frames]').") from None
    return pd


def history_frame(h):
    """A History as a tidy DataFrame: one row per (member, epoch), epoch 0 at initialisation;
    the columns of ``HISTORY_COLUMNS``; ``diverged`` and ``diverged_step`` are the member's
    (whether, and at which step, it diverged during training; -1: never)."""
    pd = pandas("History.to_pandas")
    E1, K = h.train_loss.shape                    # epochs + 1, members
    epochs = np.tile(np.arange(E1), K)
    members = np.repeat(np.arange(K), E1)
    col = lambda a: np.asarray(a, dtype=float).T.ravel()     # [epoch, member] -> member-major
    labels = list(h.labels) if len(h.labels) == K else [str(k) for k in range(K)]
    return pd.DataFrame({
        "member": members, "label": [labels[k] for k in members], "epoch": epochs,
        "train_loss": col(h.train_loss), "train_acc": col(h.train_acc),
        "test_loss": col(h.test_loss), "test_acc": col(h.test_acc),
        "epoch_time": np.tile(np.asarray(h.epoch_time, dtype=float), K),
        "eval_time": np.tile(np.asarray(h.eval_time, dtype=float), K),
        "diverged": np.asarray(h.diverged, dtype=bool)[members],
        "diverged_step": np.asarray(h.diverged_step, dtype=np.int64)[members]})


def columns(head, cells, left) -> list[str]:
    """Lines of a text table whose columns are as wide as their widest cell (header included):
    ``left`` columns aligned left, the others right; the header underlined."""
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(head)]

    def line(row):
        return "  ".join(v.ljust(w) if i in left else v.rjust(w)
                         for i, (v, w) in enumerate(zip(row, widths))).rstrip()

    top = line(head)
    return [top, "-" * len(top)] + [line(r) for r in cells]


def value(v: float) -> str:
    """A metric for a table: 4 decimals, or 4 significant digits once it is that large (a
    loss of 1e71 printed as 72 digits)."""
    return f"{v:.4f}" if not abs(v) >= 1e6 else f"{v:.4g}"


def left_out_note(summ) -> str:
    """What a sweep summary's mean, std and min leave out (fastinit.report.summarise): its
    diverged runs and its nonfinite ones, each said when it counts any run."""
    notes = []
    if n := sum(s["diverged"] for s in summ):
        notes.append(f"diverged: {n} run{'s' * (n != 1)} diverged in training (the loss went "
                     f"NaN or infinite); left out of mean, std and min.")
    if n := sum(s["nonfinite"] for s in summ):
        metric = summ[0]["metric"].replace("_", " ")
        notes.append(f"nonfinite: {n} run{'s' * (n != 1)} stored as done whose final {metric} "
                     f"is not finite (it overflowed after the last training step, so the run "
                     f"is not counted as diverged); left out of mean, std and min.")
    return " ".join(notes)


def depth_points(ok, line: str, act, depths, key: str):
    """One line's points in one activation's final-metric-vs-depth panel (fastinit.report's
    depth.png, report_html's depth figure): (depths, an (n, 3) array of mean, min and max)
    over the runs that trained (a diverged run's final ``key``, of its weights from before the
    bad step, is left out, as fastinit.report.summarise leaves it out of the table's mean, std
    and min; so is a value never measured or not finite), and the depths whose every run
    diverged: marked apart, or the line would just end there."""
    xs, stats, gone = [], [], []
    for depth in depths:
        rs = [r for r in ok if r["line"] == line and r["depth"] == depth
              and r["activation"] == act]
        vals = [r["curves"][key][-1] for r in rs
                if not r["diverged"] and r["curves"][key][-1] is not None
                and math.isfinite(r["curves"][key][-1])]
        if vals:
            xs.append(depth)
            stats.append((np.mean(vals), np.min(vals), np.max(vals)))
        elif rs and all(r["diverged"] for r in rs):
            gone.append(depth)
    return xs, np.array(stats, dtype=float).reshape(-1, 3), gone


def cell(value) -> str:
    """One escaped table cell: floats to 5 significant digits, NaN and None as a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        text = "–"
    elif isinstance(value, (float, np.floating)):
        text = f"{float(value):.5g}"
    else:
        text = str(value)
    return html.escape(text)


def html_table(headers, rows, caption: str = "", note: str = "") -> str:
    """An HTML table (first MAX_HTML_ROWS rows, then a note saying how many more)."""
    rows = list(rows)
    shown = rows[:MAX_HTML_ROWS]
    more = len(rows) - len(shown)
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in shown)
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    tail = f"<p>{html.escape(note)}</p>" if note else ""
    if more:
        tail += f"<p>… {more} more rows.</p>"
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{tail}"


def history_html(h) -> str:
    """One row per member: final losses and accuracies, the best test accuracy, divergence."""
    K = h.train_loss.shape[1]
    labels = list(h.labels) if len(h.labels) == K else [str(k) for k in range(K)]
    with np.errstate(all="ignore"):
        best = np.nanmax(np.where(np.isnan(h.test_acc), -np.inf, h.test_acc), axis=0)
    rows = [(k, labels[k], h.train_loss[-1, k], h.test_loss[-1, k], h.train_acc[-1, k],
             h.test_acc[-1, k], best[k] if np.isfinite(best[k]) else None,
             f"step {int(h.diverged_step[k])}" if h.diverged[k] else "no")
            for k in range(K)]
    return html_table(("member", "label", "train loss", "test loss", "train acc", "test acc",
                       "best test acc", "diverged"), rows,
                      f"fastinit History: {K} members, {h.train_loss.shape[0] - 1} epochs "
                      f"(final values)")


def diagnostics_html(d, fields) -> str:
    """One row per (member, layer), a column per diagnostic field."""
    K, L = np.shape(getattr(d, fields[0]))
    labels = list(d.labels) if len(d.labels) == K else [str(k) for k in range(K)]
    rows = [(labels[k], l) + tuple(np.asarray(getattr(d, f))[k, l] for f in fields)
            for k in range(K) for l in range(L)]
    return html_table(("member", "layer") + tuple(fields), rows,
                      f"fastinit Diagnostics: {K} members x {L} layers")


def sweep_result_html(r) -> str:
    """What a run_sweep call did, one line per number, then failures and notes."""
    rows = [("runs in the sweep", r.total), ("already done (skipped)", r.skipped),
            ("ran", r.ran), ("failed", r.failed), ("seconds", r.seconds),
            ("runs per second", r.runs_per_second), ("kernel seconds", r.kernel_seconds),
            ("database", r.db)]
    rows += [(f"failed: {rid}", reason) for rid, reason in r.failures]
    rows += [("note", n) for n in r.notes]
    return html_table(("", "value"), rows, "fastinit SweepResult")
