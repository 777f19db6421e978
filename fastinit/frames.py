"""A results database as pandas DataFrames and Parquet files (the ``frames`` extra: pandas,
pyarrow).

    runs = fastinit.load_runs("runs.db")           # one row per run
    curves = fastinit.load_curves("runs.db")       # long: run_id, epoch, metric, value
    curves.merge(runs, on="run_id")                # every curve point with its run's settings

``load_runs`` columns: ``run_id``, ``sweep`` (the sweep that last wrote the run), ``status``
(done, diverged, failed), every run key of the spec language (``fastinit.sweepspec.RUN_KEYS``:
``scheme`` as its label, e.g. "kaiming_normal(nonlinearity='relu')", with ``scheme_name`` and
``scheme_params`` (JSON) beside it; ``bias_init`` as its label; ``loss`` as trained, the
dataset's default filled in; ``data``, the dataset options, as JSON), then the final metrics and
bookkeeping: final_train_loss, final_test_loss, final_train_acc, final_test_acc, best_test_acc,
diverged, diverged_step, time_s, population_time_s, population_size, error, fastinit_version,
machine, created_at. Missing numbers are NaN. Epoch 0 of a curve is at initialisation.

``sweep=None`` reads every run in the file; ``sweep=NAME`` exactly the runs of that sweep's
current spec (what ``fastinit report --sweep NAME`` shows). The database is opened read-only.
"""
from __future__ import annotations

import errno
import json
import os

import numpy as np

from ._validate import check_path
from .registry import label
from .report import pick_sweep
from .store import Store
from .sweepspec import RUN_KEYS
from .tabular import pandas

RESULT_COLUMNS = ("final_train_loss", "final_test_loss", "final_train_acc", "final_test_acc",
                  "best_test_acc", "diverged", "diverged_step", "time_s", "population_time_s",
                  "population_size", "error", "fastinit_version", "machine", "created_at")
CURVE_COLUMNS = ("run_id", "epoch", "metric", "value")


def run_columns() -> list[str]:
    """The columns of ``load_runs``, in order."""
    keys = [k.name for k in RUN_KEYS]
    i = keys.index("scheme") + 1
    return ["run_id", "sweep", "status"] + keys[:i] + ["scheme_name", "scheme_params"] \
        + keys[i:] + ["data"] + list(RESULT_COLUMNS)


def _rows(db, sweep):
    with Store(db, readonly=True) as store:
        return store.rows(pick_sweep(store, sweep) if sweep is not None else None)


def _scheme_label(value):
    if not value:                       # None: the default (zeros or the weight's preset)
        return None
    name, params = value
    return label(name, params)


def _flat(row: dict) -> dict:
    cfg = row.get("config") or {}
    out = {"run_id": row["id"], "sweep": row["sweep"], "status": row["status"]}
    for k in RUN_KEYS:
        out[k.name] = cfg.get(k.name)
    scheme = cfg.get("scheme") or [row.get("scheme"), row.get("scheme_params") or {}]
    out["scheme"] = _scheme_label(scheme) if scheme[0] else None
    out["scheme_name"] = scheme[0]
    out["scheme_params"] = json.dumps(scheme[1] or {}, sort_keys=True) if scheme[0] else None
    out["bias_init"] = _scheme_label(cfg.get("bias_init"))
    out["loss"] = row.get("loss") or cfg.get("loss")
    out["data"] = json.dumps(cfg.get("data") or {}, sort_keys=True)
    for c in RESULT_COLUMNS:
        out[c] = row.get(c)
    out["diverged"] = None if row.get("diverged") is None else bool(row["diverged"])
    return out


def load_runs(db, sweep: str | None = None):
    """One row per run of ``db`` (every run, or ``sweep``'s), every run key and final metric a
    column (see the module doc)."""
    db = check_path(db, "db", "fastinit.load_runs")
    pd = pandas("fastinit.load_runs")
    df = pd.DataFrame([_flat(r) for r in _rows(db, sweep)], columns=run_columns())
    for c in ("final_train_loss", "final_test_loss", "final_train_acc", "final_test_acc",
              "best_test_acc", "time_s", "population_time_s", "lr", "momentum",
              "weight_decay", "activation_param"):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    df["diverged"] = df["diverged"].astype("boolean")
    for c in ("depth", "width", "batch_size", "epochs", "diverged_step", "population_size"):
        df[c] = df[c].astype("Int64")
    return df


def load_curves(db, sweep: str | None = None):
    """Every run's curves in long format: run_id, epoch, metric (train_loss, test_loss,
    train_acc, test_acc), value (NaN where not measured, e.g. accuracy of an mse run)."""
    db = check_path(db, "db", "fastinit.load_curves")
    pd = pandas("fastinit.load_curves")
    ids, epochs, metrics, values = [], [], [], []
    for r in _rows(db, sweep):
        for metric, ys in sorted((r.get("curves") or {}).items()):
            ids += [r["id"]] * len(ys)
            epochs += range(len(ys))
            metrics += [metric] * len(ys)
            values += [np.nan if v is None else v for v in ys]
    return pd.DataFrame({"run_id": ids, "epoch": np.asarray(epochs, dtype=np.int64),
                         "metric": metrics, "value": np.asarray(values, dtype=float)},
                        columns=CURVE_COLUMNS).astype({"run_id": str, "metric": str})
    # astype: text columns whether or not there is a row (no curves: they were float64)


def curves_path(path) -> str:
    """Where ``write_parquet`` puts the curves: runs.parquet -> runs.curves.parquet."""
    root, ext = os.path.splitext(os.fspath(path))
    return f"{root}.curves{ext or '.parquet'}"


def write_parquet(db, path, sweep: str | None = None) -> dict:
    """``load_runs`` to ``path`` and ``load_curves`` to ``curves_path(path)``, as Parquet
    (pyarrow), making the directory if needed; returns {"runs": path, "curves": path}."""
    db, path = (check_path(v, k, "fastinit.frames.write_parquet") for k, v in
                (("db", db), ("path", path)))
    try:
        import pyarrow  # noqa: F401 - pandas writes Parquet through it
    except ImportError:
        raise ImportError("fastinit report --parquet needs pyarrow: pip install pyarrow (or pip "
                          "install 'fastinit[frames]').") from None
    if os.path.isdir(path) or path.endswith(("/", os.sep)):   # pyarrow: a bare traceback
        raise IsADirectoryError(errno.EISDIR, f"is a directory; give a file, e.g. "
                                f"{os.path.join(path, 'runs.parquet')}", path)
    runs, curves = load_runs(db, sweep), load_curves(db, sweep)
    out = {"runs": os.fspath(path), "curves": curves_path(path)}
    os.makedirs(os.path.dirname(os.path.abspath(out["runs"])), exist_ok=True)
    runs.to_parquet(out["runs"], index=False)
    curves.to_parquet(out["curves"], index=False)
    return out
