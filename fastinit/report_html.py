"""The interactive report: one offline HTML page of plotly figures and a sortable summary
(the ``interactive`` extra: plotly).

    fastinit report runs.db --interactive --out report/    # report/interactive.html

Same runs and aggregation as the static report (fastinit.report: one sweep's current spec;
over seeds, a line for the mean and a band from min to max), as figures you can zoom, hover
and toggle by clicking the legend:
    curves      test accuracy (or loss) and training loss per epoch, a panel per
                (activation, depth), a line and seed band per scheme; diverged runs
                included, as in curves.png, so the divergence shows
    depth       final metric vs depth, per scheme, a panel per activation, over the runs
                that trained: diverged ones left out, as in depth.png and the table; an
                ✕ marks a depth where every seed diverged
    variance    pre-activation variance by layer at init (deepest network), per scheme
    symmetry    distinct units of the first hidden layer at init and after training
and the summary table (click a column header to sort). The plotly library is written next to
the page (``plotly.min.js``, from the installed plotly package): no CDN, it works offline.
Every stored string is escaped for where it lands: HTML text (html.escape), figure labels
(``<``, ``>``, ``&``: plotly draws a few tags in labels) and the figures' JSON inside the
page's script (no ``<``, ``>`` or ``&`` left to close it).
"""
from __future__ import annotations

import html
import json
import math
import os
import warnings
from collections import defaultdict

import numpy as np

from ._validate import check_path
from .report import (_complete, _metric, heading, name_lines, pick_sweep, summarise,
                     timing_note)
from .store import Store, StoreError
from .tabular import depth_points, left_out_note, value

PAGE = "interactive.html"
SCRIPT = "plotly.min.js"


def _plotly():
    try:
        import plotly
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots
    except ImportError:
        raise ImportError("fastinit report --interactive needs plotly: pip install plotly (or "
                          "pip install 'fastinit[interactive]').") from None
    return plotly, go, make_subplots


def _esc(value) -> str:
    return html.escape(str(value))


def _label_text(value) -> str:
    """Text for a plotly label: plotly reads a few tags (<b>, <a href>) and turns &lt; &gt;
    &amp; back into characters, but not &quot;, so quotes stay as they are."""
    return html.escape(str(value), quote=False)


def _rgba(color: str, alpha: float) -> str:
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _band(go, ys_list, name, color, group, show):
    """Traces for the mean and min-max band of curves, one pair per curve length."""
    by_len = defaultdict(list)
    for y in ys_list:
        by_len[len(y)].append([np.nan if v is None else v for v in y])
    traces = []
    for n, ys in sorted(by_len.items(), reverse=True):
        ys = np.array(ys, dtype=float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)     # all-NaN epochs
            mean, lo, hi = (np.nanmean(ys, 0), np.nanmin(ys, 0), np.nanmax(ys, 0))
        x = np.arange(n)
        label = name if len(by_len) == 1 else f"{name}, {n - 1} epochs"
        traces += [
            go.Scatter(x=x, y=hi, mode="lines", line=dict(width=0), hoverinfo="skip",
                       legendgroup=group, showlegend=False),
            go.Scatter(x=x, y=lo, mode="lines", line=dict(width=0), fill="tonexty",
                       fillcolor=_rgba(color, 0.18), hoverinfo="skip", legendgroup=group,
                       showlegend=False),
            go.Scatter(x=x, y=mean, mode="lines", name=label, line=dict(color=color, width=2),
                       legendgroup=group, showlegend=show,
                       hovertemplate=f"{label}<br>epoch %{{x}}: %{{y:.4g}} "
                                     f"(mean of {len(ys)})<extra></extra>")]
        show = False
    return traces


class _Figures:
    """The figures of one report, from its rows."""

    def __init__(self, rows, plotly, go, make_subplots):
        self.go, self.subplots = go, make_subplots
        self.rows = rows
        self.ok = [r for r in rows if r["status"] in ("done", "diverged") and r["curves"]]
        self.key, self.title = _metric(self.ok or rows)
        self.schemes = name_lines(rows)    # scheme and setting, in order
        palette = plotly.colors.qualitative.Plotly + plotly.colors.qualitative.Dark24
        self.color = {s: palette[i % len(palette)] for i, s in enumerate(self.schemes)}
        self.names = {s: _label_text(s) for s in self.schemes}
        self.depths = sorted({r["depth"] for r in rows})
        self.acts = sorted({r["activation"] for r in rows})

    def _layout(self, fig, title, height):
        fig.update_layout(title=dict(text=_label_text(title), font=dict(size=15)), height=height,
                          template="plotly_white", legend=dict(font=dict(size=10)),
                          margin=dict(l=60, r=20, t=70, b=50))
        return fig

    def curves(self, metric, ylabel, logy):
        panels = [(a, d) for a in self.acts for d in self.depths]
        cols = len(self.depths)
        fig = self.subplots(rows=len(self.acts), cols=cols, subplot_titles=[
            f"{_label_text(a)}, depth {d}" for a, d in panels], horizontal_spacing=0.06,
            vertical_spacing=0.12)
        shown = set()
        for i, (act, depth) in enumerate(panels):
            for s in self.schemes:
                rs = [r for r in self.ok if r["line"] == s and r["depth"] == depth
                      and r["activation"] == act]
                if rs:
                    for t in _band(self.go, [r["curves"][metric] for r in rs], self.names[s],
                                   self.color[s], s, s not in shown):
                        fig.add_trace(t, row=i // cols + 1, col=i % cols + 1)
                    shown.add(s)
        fig.update_xaxes(title_text="epoch")
        fig.update_yaxes(title_text=ylabel, type="log" if logy else "linear")
        return self._layout(fig, f"{ylabel} per epoch (mean over seeds, band: min to max)",
                            300 * len(self.acts) + 120)

    def depth(self):
        go, log, marked = self.go, min(self.depths) > 0, 0
        fig = self.subplots(rows=1, cols=len(self.acts), subplot_titles=[
            _label_text(a) for a in self.acts])
        for i, act in enumerate(self.acts):
            stacked = 0                 # rows of marks in this panel: one a scheme
            for s in self.schemes:
                xs, ys, gone = depth_points(self.ok, s, act, self.depths, self.key)
                if xs:
                    fig.add_trace(go.Scatter(
                        x=xs, y=ys[:, 0].tolist(), mode="lines+markers", name=self.names[s],
                        legendgroup=s, showlegend=i == 0, line=dict(color=self.color[s]),
                        error_y=dict(type="data", symmetric=False, thickness=1,
                                     array=(ys[:, 2] - ys[:, 0]).tolist(),
                                     arrayminus=(ys[:, 0] - ys[:, 1]).tolist())),
                        row=1, col=i + 1)
                for d in gone:      # at the panel's foot (a log axis places log10 of x)
                    fig.add_annotation(
                        x=math.log10(d) if log else d, y=0.06 * stacked, yref="y domain",
                        yanchor="bottom",
                        text="\u2715", showarrow=False, font=dict(color=self.color[s]),
                        hovertext=f"{self.names[s]}: every seed diverged", row=1, col=i + 1)
                stacked += bool(gone)
                marked += bool(gone)
        fig.update_xaxes(title_text="hidden layers",    # a log axis has no depth 0
                         type="log" if log else "linear")
        fig.update_yaxes(title_text=f"final {self.title}")
        return self._layout(fig, f"final {self.title} vs depth (bars: min to max over seeds"
                            + "; \u2715: every seed diverged" * bool(marked) + ")", 420)

    def variance(self, diag_rows):
        go = self.go
        deep = max(r["depth"] for r in diag_rows)
        fig = self.subplots(rows=1, cols=len(self.acts), subplot_titles=[
            f"{_label_text(a)}, depth {deep}" for a in self.acts])
        for i, act in enumerate(self.acts):
            for s in self.schemes:
                rs = [r for r in diag_rows if r["line"] == s and r["depth"] == deep
                      and r["activation"] == act]
                if not rs:
                    continue
                v = np.array([[np.nan if x is None else x for x in r["diagnostics"]["init"]
                               ["pre_var"]] for r in rs], dtype=float)
                v = np.where(v > 0, v, np.nan)        # zero cannot show on a log axis
                if np.all(np.isnan(v)):
                    continue
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    mean = np.nanmean(v, axis=0)
                fig.add_trace(go.Scatter(x=np.arange(1, v.shape[1] + 1), y=mean,
                                         mode="lines+markers", name=self.names[s],
                                         legendgroup=s, showlegend=i == 0,
                                         line=dict(color=self.color[s])), row=1, col=i + 1)
        fig.update_xaxes(title_text="layer")
        fig.update_yaxes(title_text="Var[pre-activation] at init", type="log")
        return self._layout(fig, "pre-activation variance by layer at init", 420)

    def symmetry(self, diag_rows):
        go = self.go
        fig = go.Figure()
        for when in ("init", "final"):
            vals = []
            for s in self.schemes:
                rs = [r for r in diag_rows if r["line"] == s]
                units = [r["diagnostics"][when]["distinct_units"][0] for r in rs]
                units = [u for u in units if u is not None]
                vals.append(float(np.mean(units)) if units else None)
            fig.add_trace(go.Bar(x=[self.names[s] for s in self.schemes], y=vals, name=when))
        fig.update_layout(barmode="group", yaxis_type="log",
                          yaxis_title="distinct units, hidden layer 1")
        return self._layout(fig, "symmetry: distinct units in the first hidden layer "
                                 "(1: the layer acts like one unit)", 420)

    def all(self) -> dict:
        figs = {"curves": self.curves(self.key, self.title, self.key == "test_loss"),
                "loss": self.curves("train_loss", "training loss", True),
                "depth": self.depth()}
        diag_rows = [r for r in self.rows if r["diagnostics"]]
        if diag_rows:
            figs["variance"] = self.variance(diag_rows)
            figs["symmetry"] = self.symmetry(diag_rows)
        return figs


def _script_json(fig) -> str:
    """A figure's JSON, safe inside <script>: no character that could end the element."""
    text = fig.to_json()
    for ch, code in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                     ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(ch, code)
    return text


def _table(rows) -> str:
    summ = summarise(rows)
    metric = summ[0]["metric"].replace("_", " ") if summ else ""
    heads = ("scheme", "activation", "depth", "width", "other", "runs", f"{metric} mean",
             "std", "min", "diverged", "nonfinite", "failed", "ms/run")
    body = "".join(
        "<tr>" + "".join(f"<td>{v}</td>" for v in (
            _esc(s["scheme"]), _esc(s["activation"]), _esc(s["depth"]), _esc(s["width"]),
            _esc(s["setting"]), s["runs"], value(s["mean"]), value(s["std"]),
            value(s["min"]), s["diverged"], s["nonfinite"], s["failed"],
            f"{s['time_s'] * 1e3:.1f}"))
        + "</tr>" for s in summ)
    head = "".join(f'<th title="click to sort">{_esc(h)}</th>' for h in heads)
    return f'<table id="summary"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


_SORT = """
document.querySelectorAll("#summary th").forEach(function (th, col) {
  th.addEventListener("click", function () {
    var body = th.closest("table").tBodies[0];
    var up = th.getAttribute("data-order") !== "up";
    th.parentNode.querySelectorAll("th").forEach(function (h) { h.removeAttribute("data-order"); });
    th.setAttribute("data-order", up ? "up" : "down");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col].textContent, y = b.cells[col].textContent;
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (isNaN(nx) || isNaN(ny)) ? x.localeCompare(y) : nx - ny;
      return up ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""


def write_interactive(db, out: str = "report", sweep: str | None = None) -> dict:
    """Write ``interactive.html`` and ``plotly.min.js`` to ``out`` for the runs of one sweep's
    current spec in ``db``; returns {name: path}. Opens ``db`` read-only."""
    db = check_path(db, "db", "fastinit.report_html.write_interactive")
    plotly, go, make_subplots = _plotly()
    with Store(db, readonly=True) as store:
        sweep = pick_sweep(store, sweep)
        rows, about = [_complete(r) for r in store.rows(sweep)], heading(store, sweep)
    if not rows:
        raise StoreError(f"{db!s}: holds no runs" + (f" of sweep {sweep!r}" if sweep else "")
                         + " yet.")
    os.makedirs(out, exist_ok=True)
    figs = _Figures(rows, plotly, go, make_subplots).all()
    divs = "".join(f'<div id="fig-{name}" class="fig"></div>' for name in figs)
    data = ",".join(f'"fig-{name}":{_script_json(fig)}' for name, fig in figs.items())
    note = left_out_note(summarise(rows))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>fastinit report (interactive)</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1300px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
td:first-child,th:first-child{{text-align:left;white-space:nowrap}}
th{{cursor:pointer;background:#f4f4f4}}th[data-order=up]::after{{content:" \\25B2"}}
th[data-order=down]::after{{content:" \\25BC"}}.fig{{margin:1.5em 0}}</style>
<script src="{SCRIPT}"></script></head><body>
<h1>fastinit report</h1><p>{_esc(about)}{len(rows)} runs from {_esc(db)}. Summary: final
{_esc(_metric(rows)[1])} over seeds; click a header to sort. {_esc(note)}
{_esc(timing_note(rows))}</p>
{_table(rows)}{divs}
<script>
var FIGURES = {{{data}}};
Object.keys(FIGURES).forEach(function (id) {{
  Plotly.newPlot(id, FIGURES[id].data, FIGURES[id].layout,
                 {{responsive: true, displaylogo: false}});
}});
{_SORT}</script></body></html>
"""
    files = {PAGE: os.path.join(out, PAGE), SCRIPT: os.path.join(out, SCRIPT)}
    with open(files[SCRIPT], "w", encoding="utf-8") as f:
        f.write(plotly.offline.get_plotlyjs())
    with open(files[PAGE], "w", encoding="utf-8") as f:
        f.write(page)
    return files
