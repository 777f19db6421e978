"""Results as DataFrames: load_runs (one row per run), load_curves (long), History.to_pandas,
Parquet export; and the notebook HTML tables of History, Diagnostics and SweepResult."""
import sqlite3
import sys

import numpy as np
import pytest

import fastinit
import fastinit.cli as cli
import fastinit.sweep as sweep_mod
from fastinit import frames
from fastinit.store import Store, StoreError

pd = pytest.importorskip("pandas")

SCHEMES = ["he_normal", {"name": "kaiming_normal", "nonlinearity": "relu"}]
SEEDS = [0, 2**64 - 1]            # the largest seed is stored as text; it must come back exact


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("frames") / "runs.db"
    sweep_mod.run_sweep({"name": "a", "grid": {"scheme": SCHEMES, "seed": SEEDS},
                         "train": {"epochs": 2, "width": 8, "lr": 0.05}}, path)
    sweep_mod.run_sweep({"name": "b", "grid": {"seed": [3]},
                         "train": {"epochs": 1, "width": 8, "activation": "tanh"}}, path)
    return path


def test_load_runs_has_a_row_per_run_and_every_key_and_metric(db):
    df = fastinit.load_runs(db)
    assert list(df.columns) == frames.run_columns() and len(df) == 5
    for key in fastinit.sweepspec.RUN_KEYS:
        assert key.name in df.columns
    a = fastinit.load_runs(db, sweep="a")
    assert len(a) == 4 and set(a["sweep"]) == {"a"}
    assert sorted(a["scheme"].unique()) == ["he_normal", "kaiming_normal(nonlinearity='relu')"]
    assert set(a["scheme_name"]) == {"he_normal", "kaiming_normal"}
    assert sorted(int(s) for s in a["seed"]) == sorted(SEEDS * 2)
    assert (a["lr"] == 0.05).all() and (a["epochs"] == 2).all() and (a["width"] == 8).all()
    assert (a["loss"] == "cross_entropy").all() and (a["status"] == "done").all()
    with Store(db, readonly=True) as s:
        rows = {r["id"]: r for r in s.rows("a")}
    for _, r in a.iterrows():
        stored = rows[r["run_id"]]
        for c in ("final_test_acc", "final_train_loss", "best_test_acc", "time_s"):
            assert r[c] == stored[c]
        assert r["diverged"] == bool(stored["diverged"])
    b = fastinit.load_runs(db, sweep="b")
    assert list(b["activation"]) == ["tanh"] and list(b["epochs"]) == [1]


def test_load_curves_is_long_and_joins_the_runs(db):
    curves = fastinit.load_curves(db, sweep="a")
    assert list(curves.columns) == ["run_id", "epoch", "metric", "value"]
    assert len(curves) == 4 * 4 * 3               # runs x metrics x (epochs + 1)
    assert set(curves["metric"]) == {"train_loss", "test_loss", "train_acc", "test_acc"}
    with Store(db, readonly=True) as s:
        row = s.rows("a")[0]
    mine = curves[(curves["run_id"] == row["id"]) & (curves["metric"] == "test_acc")]
    assert list(mine["epoch"]) == [0, 1, 2]
    np.testing.assert_array_equal(mine["value"].to_numpy(), row["curves"]["test_acc"])
    joined = curves.merge(fastinit.load_runs(db, sweep="a"), on="run_id")
    last = joined[(joined["metric"] == "test_acc") & (joined["epoch"] == 2)]
    np.testing.assert_array_equal(last["value"].to_numpy(), last["final_test_acc"].to_numpy())


def test_an_unknown_sweep_is_named(db):
    with pytest.raises(StoreError, match=r"runs.db: no sweep 'aa'. Did you mean 'a'\? It holds: "
                                         r"a, b."):
        fastinit.load_runs(db, sweep="aa")


def test_report_parquet_writes_runs_and_curves(db, tmp_path, capsys):
    pytest.importorskip("pyarrow")
    pytest.importorskip("matplotlib")
    path = tmp_path / "out" / "runs.parquet"
    assert cli.main(["report", str(db), "--sweep", "a", "--out", str(tmp_path / "rep"),
                     "--parquet", str(path)]) == 0
    assert f"parquet: {path} (runs), {tmp_path / 'out' / 'runs.curves.parquet'} (curves)" \
        in capsys.readouterr().out
    runs = pd.read_parquet(path)
    pd.testing.assert_frame_equal(runs, fastinit.load_runs(db, sweep="a"), check_dtype=False)
    assert sorted(int(s) for s in runs["seed"]) == sorted(SEEDS * 2)
    curves = pd.read_parquet(tmp_path / "out" / "runs.curves.parquet")
    pd.testing.assert_frame_equal(curves, fastinit.load_curves(db, sweep="a"),
                                  check_dtype=False)


def _history():
    net = fastinit.MLP([4, 6, 3], init=["he_normal", "zeros"], n=2, seed=0)
    x = np.random.default_rng(0).standard_normal((30, 4))
    return fastinit.train(net, (x, np.arange(30) % 3), epochs=2, batch_size=10)


def test_history_to_pandas_is_tidy():
    h = _history()
    df = h.to_pandas()
    assert list(df.columns) == list(fastinit.tabular.HISTORY_COLUMNS) and len(df) == 2 * 3
    for k in range(2):
        mine = df[df["member"] == k]
        assert list(mine["epoch"]) == [0, 1, 2] and set(mine["label"]) == {h.labels[k]}
        np.testing.assert_array_equal(mine["test_acc"].to_numpy(), h.test_acc[:, k])
        np.testing.assert_array_equal(mine["train_loss"].to_numpy(), h.train_loss[:, k])
    long = df.melt(id_vars=["member", "label", "epoch"],
                   value_vars=["train_loss", "test_acc"], var_name="metric")
    assert len(long) == 12


def test_without_pandas_or_pyarrow_the_error_names_the_extra(db, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(ImportError, match=r"fastinit report --parquet needs pyarrow: pip install "
                                          r"pyarrow \(or pip install 'fastinit\[frames\]'\)"):
        frames.write_parquet(db, tmp_path / "x.parquet")
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"fastinit.load_runs needs pandas: pip install pandas "
                                          r"\(or pip install 'fastinit\[frames\]'\)"):
        fastinit.load_runs(db)
    with pytest.raises(ImportError, match=r"fastinit.load_curves needs pandas"):
        fastinit.load_curves(db)
    with pytest.raises(ImportError, match=r"History.to_pandas needs pandas"):
        _history().to_pandas()
    assert cli.main(["report", str(db), "--sweep", "a", "--out", str(tmp_path / "r"), "-q",
                     "--parquet", str(tmp_path / "x.parquet")]) == 2


EVIL = "<script>alert('x')</script>\"&"


def test_notebook_tables_escape_every_string():
    h = _history()
    h.labels = [EVIL, "b"]
    page = h._repr_html_()
    assert page.startswith("<table>") and "<script>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&quot;&amp;" in page
    assert page.count("<tr>") == 3                      # a header and one row per member
    net = fastinit.MLP([4, 6, 3], init=["he_normal", "zeros"], n=2, seed=0)
    d = fastinit.diagnose(net, np.ones((5, 4)))
    d.labels = [EVIL, "b"]
    page = d._repr_html_()
    assert "<script>" not in page and "distinct_units" in page
    assert page.count("<tr>") == 1 + 2 * 2             # members x layers
    r = sweep_mod.SweepResult(total=3, skipped=1, ran=2, failed=1, seconds=2.0,
                              kernel_seconds=1.0, db=EVIL, failures=[("id1", EVIL)],
                              notes=[EVIL])
    page = r._repr_html_()
    assert "<script>" not in page and page.count("&lt;script&gt;") == 3
    assert "<td>runs per second</td><td>1</td>" in page


def test_a_big_table_shows_its_first_rows():
    net = fastinit.MLP([4, 6, 3], n=40, seed=0)
    page = fastinit.diagnose(net, np.ones((5, 4)))._repr_html_()
    assert page.count("<tr>") == 1 + fastinit.tabular.MAX_HTML_ROWS
    assert "… 30 more rows." in page


def test_curves_of_runs_that_all_failed_keep_their_column_types(db, tmp_path):
    """A sweep whose every run failed has no curves: load_curves gave run_id and metric as
    float64 (an empty column's default), unlike every other call, so the Parquet file of such
    a sweep had another schema than the rest. The text columns are text with or without rows."""
    failed = tmp_path / "failed.db"
    with sqlite3.connect(db) as src, sqlite3.connect(failed) as dst:
        src.backup(dst)
    with Store(failed) as s:
        s.con.execute("UPDATE runs SET status = 'failed', curves = NULL, error = 'boom'")
    empty, full = fastinit.load_curves(failed), fastinit.load_curves(db)
    assert len(empty) == 0 and len(full) > 0
    assert empty.dtypes.to_dict() == full.dtypes.to_dict()


@pytest.mark.parametrize("given", ["dir", "dir/"])
def test_report_parquet_to_a_directory_is_one_line(db, tmp_path, capsys, given):
    """--parquet DIR (an existing directory, or any path ending in /) ended in a traceback
    (pyarrow's IsADirectoryError, which names no file for the CLI to report); now one line that
    says to give a file, and nothing is written."""
    pytest.importorskip("pyarrow")
    (tmp_path / "dir").mkdir()
    path = str(tmp_path / given)
    assert cli.main(["report", str(db), "--sweep", "a", "--out", str(tmp_path / "rep"),
                     "--parquet", path]) == 2
    err = capsys.readouterr().err
    assert err == (f"fastinit report: {path}: is a directory; give a file, e.g. "
                   f"{tmp_path / 'dir' / 'runs.parquet'}.\n")
    assert not list((tmp_path / "dir").iterdir())
