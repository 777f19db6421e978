"""Sweeps: spec validation, expansion and grouping, the store, resume after SIGKILL, Dask."""
import json
import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

import fastinit
import fastinit.cli as cli
from fastinit import report
from fastinit.store import Store
from fastinit.sweep import (LocalExecutor, SpecError, SweepSpec, group, load_spec,
                            run_population, run_sweep)

SPEC = {"name": "t", "grid": {"scheme": ["zeros", "he_normal", {"name": "kaiming_normal",
                                                              "nonlinearity": "relu"}],
                              "seed": [0, 1], "depth": [1, 2]},
        "train": {"epochs": 2, "width": 16, "batch_size": 64}}

TOML = """
name = "tiny"
max_population = 3
[grid]
scheme = ["zeros", "he_normal", "orthogonal"]
seed = [0, 1, 2]
depth = [1, 3]
[train]
epochs = 3
width = 16
batch_size = 64
lr = 0.05
"""


# -- the spec --------------------------------------------------------------------------------

def test_toml_and_dict_specs_agree(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(TOML)
    spec = load_spec(p)
    assert spec.name == "tiny" and spec.max_population == 3
    runs = spec.runs()
    assert len(runs) == 3 * 3 * 2
    assert len({r.id for r in runs}) == 18
    same = load_spec({"name": "tiny", "max_population": 3,
                      "grid": {"scheme": ["zeros", "he_normal", "orthogonal"],
                               "seed": [0, 1, 2], "depth": [1, 3]},
                      "train": {"epochs": 3, "width": 16, "batch_size": 64, "lr": 0.05}})
    assert [r.id for r in same.runs()] == [r.id for r in runs]


def test_run_ids_are_config_hashes():
    a = SweepSpec.from_dict(SPEC).runs()
    b = SweepSpec.from_dict({**SPEC, "name": "other"}).runs()
    assert [r.id for r in a] == [r.id for r in b]        # the sweep's name is not the run
    c = SweepSpec.from_dict({**SPEC, "train": {**SPEC["train"], "epochs": 3}}).runs()
    assert not {r.id for r in a} & {r.id for r in c}


def test_grouping_into_populations():
    runs = SweepSpec.from_dict({"grid": {"scheme": ["zeros", "he_normal"], "seed": [0, 1, 2],
                                         "lr": [0.1, 0.01], "depth": [1, 2]}}).runs()
    tasks = group(runs, 256)
    assert len(tasks) == 2                              # one population per depth
    assert sorted(len(t) for t in tasks) == [12, 12]
    assert len(group(runs, 5)) == 6                      # chunks of at most 5
    for t in tasks:
        assert len({r.config["depth"] for r in t}) == 1


@pytest.mark.parametrize("spec,match", [
    ({"grid": {"shceme": ["zeros"]}}, r"<spec>: \[grid\]: unknown key 'shceme'. Did you mean "
                                      r"'scheme'\?"),
    ({"gird": {}}, r"unknown top-level key 'gird'. Did you mean 'grid'\?"),
    ({"grid": {"depth": []}}, r"\[grid\].depth: is an empty list"),
    ({"grid": {"depth": 3}}, r"\[grid\].depth: must be a list.*put a single value in \[train\]"),
    ({"grid": {"depth": [2, -1]}}, r"\[grid\].depth\[1\]: depth must be a non-negative integer"),
    ({"grid": {"lr": [0.1, 0]}}, r"\[grid\].lr\[1\]: lr must be a positive number"),
    ({"train": {"activation": "rleu"}}, r"\[train\].activation: activation must be one of "
                                        r"linear, relu, .*, mish. Got 'rleu'. Did you mean "
                                        r"'relu'\?$"),
    ({"train": {"optimizer": "adma"}}, r"optimizer must be one of sgd, momentum, nesterov, adam, "
                                       r"adamw. Got 'adma'. Did you mean 'adam'\?$"),
    ({"grid": {"scheme": ["he_norml"]}}, r"\[grid\].scheme\[0\]: scheme:.*Did you mean "
                                         r"'he_normal'"),
    ({"grid": {"scheme": [{"name": "kaiming_normal", "mode": "fan_avg"}]}},
     r"'mode' parameter.*must be one of \{'fan_in', 'fan_out'\}"),
    ({"train": {"dataset": "digitz"}}, r"fashion_mnist:PATH. Got 'digitz'. Did you mean "
                                       r"'digits'\?$"),
    ({"train": {"dataset": "npz"}}, r"'npz:PATH'"),
    ({"grid": {"seed": [0]}, "train": {"seed": 1}}, r"\['seed'\] appear in both"),
    ({"max_population": 0}, r"max_population: must be a positive integer"),
    ({"grid": {"seed": [0]}, "data": {"blobs": {"seed": 5}}},
     r"^<spec>: \[data\].blobs: 'seed' is the run key data_seed: set \[train\].data_seed = 5 "
     r"\(or a \[grid\].data_seed list\) instead.$"),
])
def test_spec_errors_point_at_the_key(spec, match):
    with pytest.raises(SpecError, match=match):
        SweepSpec.from_dict(spec)


def test_spec_errors_name_the_file(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("[grid]\nsheme = ['zeros']\n")
    with pytest.raises(SpecError, match=r"bad.toml: \[grid\]: unknown key 'sheme'"):
        load_spec(p)
    p.write_text("[grid\n")
    with pytest.raises(SpecError, match="bad.toml: not valid TOML"):
        load_spec(p)
    with pytest.raises(SpecError, match="no such sweep spec file"):
        load_spec(tmp_path / "missing.toml")


# -- running and storing ---------------------------------------------------------------------

def _table(db):
    with Store(db) as s:
        return {r["id"]: (r["status"], r["curves"], r["final_test_acc"], r["diagnostics"])
                for r in s.rows()}


def test_run_store_skip_and_export(tmp_path):
    db = tmp_path / "runs.db"
    res = run_sweep(SPEC, db)
    assert (res.total, res.ran, res.skipped, res.failed) == (12, 12, 0, 0)
    again = run_sweep(SPEC, db)
    assert (again.ran, again.skipped) == (0, 12)
    with Store(db) as s:
        rows = s.rows()
        assert len(rows) == 12 and s.count() == 12
        s.export_csv(tmp_path / "r.csv")
        s.export_json(tmp_path / "r.json")
    zeros = [r for r in rows if r["scheme"] == "zeros"]
    assert all(r["final_test_acc"] < 0.2 for r in zeros)
    assert all(r["diagnostics"]["init"]["distinct_units"][0] == 1 for r in zeros)
    assert all(len(r["curves"]["test_acc"]) == 3 for r in rows)
    assert rows[0]["fastinit_version"] == fastinit.__version__ and rows[0]["machine"]
    assert len(json.load(open(tmp_path / "r.json"))) == 12
    assert open(tmp_path / "r.csv").read().count("\n") == 13
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_sweep_without_a_test_split_is_reported_by_its_training_metric(tmp_path):
    """test_fraction = 0 leaves no test value in any run: the report ranks by training
    accuracy (the training loss for regression), not a column of NaN named "test loss"."""
    pytest.importorskip("matplotlib")
    spec = {**SPEC, "grid": {"scheme": ["zeros", "he_normal"], "seed": [0, 1]},
            "data": {"digits": {"test_fraction": 0.0}}}
    db = tmp_path / "runs.db"
    assert run_sweep(spec, db).failed == 0
    with Store(db) as s:
        rows = s.rows()
    assert all(r["final_test_acc"] is None and r["final_train_acc"] is not None for r in rows)
    summ = report.summarise(rows)
    assert {x["metric"] for x in summ} == {"train_acc"}
    assert all(math.isfinite(x["mean"]) for x in summ)
    table = report.text_table(rows)
    assert "train acc mean" in table and "nan" not in table
    page = (tmp_path / "rep" / "index.html")
    report.make_report(db, tmp_path / "rep")
    assert "Final train acc:" in page.read_text() and "test acc" not in page.read_text()
    regression = {**spec, "train": {**SPEC["train"], "dataset": "teacher_student"},
                  "data": {"teacher_student": {"test_fraction": 0.0, "n": 256}}}
    assert run_sweep(regression, tmp_path / "mse.db").failed == 0
    with Store(tmp_path / "mse.db") as s:
        assert {x["metric"] for x in report.summarise(s.rows())} == {"train_loss"}


def test_results_do_not_depend_on_grouping(tmp_path):
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    run_sweep({**SPEC, "max_population": 256}, a)
    run_sweep({**SPEC, "max_population": 1}, b)      # every run alone
    assert _table(a) == _table(b)


def test_diagnose_true_over_runs_stored_without_diagnostics_says_so(tmp_path, capsys):
    """diagnose is not part of a run's id: a finished sweep re-run with diagnose = true skips
    its runs, stored without diagnostics. The sweep says how many and how to get them."""
    db = tmp_path / "d.db"
    spec = {"name": "d", "grid": {"seed": [0, 1, 2]}, "train": {"epochs": 1, "width": 8}}
    run_sweep({**spec, "diagnose": False}, db)
    heard = []
    res = run_sweep({**spec, "grid": {"seed": [0, 1, 2, 3]}}, db, log=heard.append)
    assert (res.ran, res.skipped) == (1, 3)
    note = ("sweep 'd': 3 of its finished runs in {} were stored without diagnostics "
            "(diagnose = false) and are not re-run, so the report shows none for them; run "
            "this spec into a new database to get them.").format(db)
    assert note in res.notes and note in heard
    assert not any("without diagnostics" in n for n in run_sweep(spec, tmp_path / "e.db").notes)
    spec_file = tmp_path / "d.toml"
    spec_file.write_text('name = "d"\n[grid]\nseed = [0, 1, 2, 3]\n[train]\nepochs = 1\n'
                         'width = 8\n')
    assert cli.main(["sweep", str(spec_file), "--db", str(db), "-q"]) == 0
    assert capsys.readouterr().err == f"fastinit sweep: {note}\n"


def test_failed_population_is_recorded_reported_and_retried(tmp_path, monkeypatch):
    real = fastinit.sweep.run_population

    def flaky(configs, *a, **k):
        if any(c["seed"] == 1 for c in configs):
            raise FloatingPointError("the kernel gave up")
        return real(configs, *a, **k)
    monkeypatch.setattr(fastinit.sweep, "run_population", flaky)
    db = tmp_path / "f.db"
    spec = {"max_population": 1, "grid": {"seed": [0, 1]}, "train": {"epochs": 1, "width": 8}}
    heard = []
    res = run_sweep(spec, db, log=heard.append)
    assert res.failed == 1 and res.ran == 1
    assert res.failures[0][1] == "FloatingPointError: the kernel gave up"
    assert any("1 run(s) failed" in m and "the kernel gave up" in m for m in heard)
    with Store(db) as s:
        rows = s.rows()
    assert sorted(r["status"] for r in rows) == ["done", "failed"]
    assert "gave up" in [r for r in rows if r["status"] == "failed"][0]["error"]
    again = run_sweep(spec, db)                  # failed runs are tried again
    assert (again.skipped, again.failed) == (1, 1)


# -- kill -9, Ctrl-C -------------------------------------------------------------------------

KILL_TOML = """
name = "killme"
max_population = 2
[grid]
scheme = ["zeros", "he_normal", "orthogonal", "lecun_normal"]
seed = [0, 1, 2, 3]
depth = [1, 2]
[train]
epochs = 40
width = 32
batch_size = 16
"""


def _cli(args, **kw):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "fastinit"] + args, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _count(db):
    try:
        con = sqlite3.connect(db, timeout=5)
        n = con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        con.close()
        return n
    except sqlite3.Error:
        return 0


KILL20_TOML = """
name = "kill20"
max_population = 2
[grid]
scheme = ["zeros", "he_normal", "orthogonal"]
seed = [0, 1, 2, 3]
depth = [1, 2, 3]
[train]
epochs = 6
width = 16
batch_size = 64
"""


def _whole(db):
    """Every stored run is whole: finished, all its curves, in the current spec."""
    if not os.path.exists(db) or _count(db) == 0:
        return 0
    with Store(db) as s:
        rows = s.rows("kill20")
        assert len(rows) == s.count()
    assert all(r["status"] == "done" and len(r["curves"]["test_acc"]) == 7 for r in rows)
    return len(rows)


@pytest.mark.slow
def test_sigkill_20_times_then_resume_equals_uninterrupted(tmp_path):
    """kill -9 at 20 random moments (a fixed seed), each time resuming: the database ends the
    same as an uninterrupted sweep's: same run ids, same curves, metrics and diagnostics.
    Even kills land during start-up (imports, checks, recording the sweep), odd ones a random
    moment after a population was committed."""
    spec = tmp_path / "k.toml"
    spec.write_text(KILL20_TOML)
    rng = random.Random(20)
    killed = tmp_path / "killed.db"
    stored = []
    for i in range(20):
        before = _count(killed)
        proc = _cli(["sweep", str(spec), "--db", str(killed), "-q"])
        if i % 2:
            deadline = time.time() + 240
            while _count(killed) == before and proc.poll() is None and time.time() < deadline:
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.3))
        else:
            time.sleep(rng.uniform(0.0, 1.0))          # a sweep's start-up takes about 1 s
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        stored.append(_whole(killed))
    assert stored == sorted(stored) and stored[-1] > 0    # nothing committed is ever lost
    done = subprocess.run([sys.executable, "-m", "fastinit", "sweep", str(spec), "--db",
                           str(killed), "-q"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    clean = tmp_path / "clean.db"
    subprocess.run([sys.executable, "-m", "fastinit", "sweep", str(spec), "--db", str(clean),
                    "-q"], check=True, capture_output=True)
    a, b = _table(killed), _table(clean)
    assert len(a) == 36 and a == b               # complete, no duplicates, same numbers


@pytest.mark.slow
def test_ctrl_c_stops_cleanly(tmp_path):
    spec = tmp_path / "k.toml"
    spec.write_text(KILL_TOML.replace("epochs = 40", "epochs = 400"))
    db = tmp_path / "int.db"
    proc = _cli(["sweep", str(spec), "--db", str(db)])
    deadline = time.time() + 240
    while _count(db) < 2 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the sweep finished before the interrupt arrived")
    assert proc.returncode == 130, err
    assert "runs are saved" in err and "Run the same command again" in err
    n = _count(db)
    assert n % 2 == 0 and n < 32            # stopped after the running population, saved
    with Store(db) as s:
        assert {r["status"] for r in s.rows()} == {"done"}


# -- executors -------------------------------------------------------------------------------

@pytest.mark.slow
def test_dask_local_cluster_gives_identical_results(tmp_path):
    distributed = pytest.importorskip("distributed")
    local = tmp_path / "local.db"
    run_sweep(SPEC, local)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        res = run_sweep(SPEC, tmp_path / "dask.db", executor=client.get_executor())
    assert res.ran == 12 and res.failed == 0
    assert _table(local) == _table(tmp_path / "dask.db")


def test_local_executor_is_an_executor():
    import concurrent.futures as cf
    ex = LocalExecutor()
    assert isinstance(ex, cf.Executor)
    cfgs = [r.config for r in SweepSpec.from_dict(SPEC).runs()[:2]]
    fut = ex.submit(run_population, cfgs, False)
    assert len(fut.result()) == 2
    bad = ex.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        bad.result()


@pytest.mark.parametrize("kwargs,error,match", [
    ({"executor": "dask"}, TypeError, r"The 'executor' parameter of fastinit.sweep.run_sweep "
     r"must be a concurrent.futures.Executor or None. Got an object of type str instead."),
    ({"on_commit": 5}, TypeError, r"The 'on_commit' parameter of fastinit.sweep.run_sweep must "
     r"be callable as on_commit\(runs_done\) or None. Got 5 of type int"),
    ({"log": "stderr"}, TypeError, r"The 'log' parameter of fastinit.sweep.run_sweep must be "
     r"callable as log\(message\) or None. Got 'stderr' of type str"),
    ({"progress": "yes"}, TypeError, r"The 'progress' parameter of fastinit.sweep.run_sweep "
     r"must be True or False. Got 'yes'"),
])
def test_bad_arguments_are_refused_before_anything_runs(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        run_sweep(SPEC, tmp_path / "r.db", **kwargs)
    assert not (tmp_path / "r.db").exists()


def test_a_dask_client_is_no_executor(tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=1,
                            dashboard_address=None) as client:
        with pytest.raises(TypeError, match=r"must be a concurrent.futures.Executor or None. "
                           r"Got an object of type Client instead. For Dask, pass "
                           r"client.get_executor\(\)."):
            run_sweep(SPEC, tmp_path / "r.db", executor=client)
    assert not (tmp_path / "r.db").exists()


# -- the CLI ---------------------------------------------------------------------------------

def _valid_png(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_cli_sweep_and_report_end_to_end(tmp_path):
    pytest.importorskip("matplotlib")
    spec = tmp_path / "s.toml"
    spec.write_text(TOML)
    db, out = tmp_path / "r.db", tmp_path / "rep"
    res = subprocess.run([sys.executable, "-m", "fastinit", "sweep", str(spec), "--db",
                          str(db), "--report", str(out)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "he_normal" in res.stdout and "18 runs trained in" in res.stdout
    for name in ("curves.png", "loss.png", "depth.png", "variance.png", "symmetry.png", "divergence.png",
                 "time.png"):
        assert _valid_png(out / name), name
    page = (out / "index.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "</html>" in page and "curves.png" in page
    rep = subprocess.run([sys.executable, "-m", "fastinit", "report", str(db), "--out",
                          str(tmp_path / "rep2"), "--csv", str(tmp_path / "x.csv")],
                         capture_output=True, text=True)
    assert rep.returncode == 0, rep.stderr
    assert _valid_png(tmp_path / "rep2" / "curves.png") and (tmp_path / "x.csv").exists()


def test_cli_help_and_errors(tmp_path, capsys):
    """`python -m fastinit` answers --help in a process of its own; every command's --help and
    error in this one (what a process adds, the exit status and stderr, is the same)."""
    from fastinit import cli
    res = subprocess.run([sys.executable, "-m", "fastinit", "--help"], capture_output=True,
                         text=True)
    assert res.returncode == 0 and "usage: fastinit" in res.stdout
    for cmd in (["demo"], ["sweep"], ["report"], ["schemes"], ["warmup"], ["bench"]):
        with pytest.raises(SystemExit) as exit_:
            cli.main(cmd + ["--help"])
        assert exit_.value.code == 0 and "usage: fastinit" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text("[grid]\nsheme = ['zeros']\n")
    assert cli.main(["sweep", str(bad)]) == 2
    assert "Did you mean 'scheme'" in capsys.readouterr().err
    assert cli.main(["report", str(tmp_path / "no.db")]) == 2
    assert "no such database" in capsys.readouterr().err
    cli.main(["schemes", "--markdown"])
    assert "| `he_normal` |" in capsys.readouterr().out


def test_report_needs_matplotlib_message(tmp_path, monkeypatch):
    import builtins
    real = builtins.__import__

    def fake(name, *a, **k):
        if name.startswith("matplotlib"):
            raise ImportError("no matplotlib")
        return real(name, *a, **k)
    db = tmp_path / "m.db"
    run_sweep({"grid": {"seed": [0]}, "train": {"epochs": 1, "width": 8}}, db)
    monkeypatch.setattr(builtins, "__import__", fake)
    from fastinit.report import make_report
    with pytest.raises(ImportError, match="pip install matplotlib"):
        make_report(db, tmp_path / "o")


def test_residual_and_data_init_runs(tmp_path):
    spec = {"grid": {"residual": ["fixup", "rezero"], "seed": [0, 1]},
            "train": {"epochs": 2, "width": 16, "depth": 2, "data_init": None}}
    res = run_sweep(spec, tmp_path / "r.db")
    assert res.ran == 4 and res.failed == 0
    with Store(tmp_path / "r.db") as s:
        rows = s.rows()
    fix = [r for r in rows if r["config"]["residual"] == "fixup" and r["seed"] == 1][0]
    net = fastinit.ResMLP(64, 16, 2, 10, residual="fixup", n=1, seed=[1])
    h = fastinit.train(net, fastinit.datasets.digits(), epochs=2, lr=0.01, batch_size=32,
                       optimizer="sgd")
    assert fix["curves"]["test_loss"] == h.test_loss[:, 0].tolist()   # same numbers as the API
    lsuv = run_sweep({"grid": {"seed": [0]}, "train": {"epochs": 1, "width": 16,
                                                      "data_init": "lsuv"}}, tmp_path / "l.db")
    assert lsuv.ran == 1
    with pytest.raises(SpecError, match="residual must be one of.*Did you mean 'fixup'"):
        SweepSpec.from_dict({"train": {"residual": "fixpu"}})
    with pytest.raises(SpecError, match="data_init must be 'lsuv' or 'kraehenbuehl'"):
        SweepSpec.from_dict({"train": {"data_init": "lsvu"}})


def _row(epochs, status="done", time_s=0.004, acc=0.8):
    """A stored run as Store.rows gives it, for the summary alone."""
    return {"scheme": "he_normal", "scheme_params": {}, "activation": "relu", "depth": 1,
            "width": 8, "status": status, "diverged": 0, "time_s": time_s,
            "config": {"scheme": ["he_normal", {}], "epochs": epochs, "seed": 0},
            "curves": {}, "final_test_acc": acc, "final_test_loss": 0.5,
            "final_train_acc": acc, "final_train_loss": 0.5}


def test_the_summary_orders_settings_by_value_and_times_only_timed_runs():
    """epochs = [3, 10] was tabled 10 before 3 (the setting's text, "epochs=10" < "epochs=3");
    and a failed run (no time stored) counted as 0 ms in its row's ms/run: one run of 4 ms
    and two failed ones showed 1.3 ms/run."""
    rows = [_row(3), _row(10), _row(10, "failed", None, None), _row(10, "failed", None, None),
            _row(2)]
    summ = report.summarise(rows)
    assert [s["setting"] for s in summ] == ["epochs=2", "epochs=3", "epochs=10"]
    assert [s["runs"] for s in summ] == [1, 1, 3] and summ[2]["failed"] == 2
    assert summ[2]["time_s"] == pytest.approx(0.004)
    lines = report.text_table(rows).splitlines()[2:]
    assert [line.split()[-1] for line in lines] == ["epochs=2", "epochs=3", "epochs=10"]


def test_diverged_runs_are_counted_apart_from_the_summary_mean():
    """A run that diverged keeps the test accuracy of its weights from before the bad step
    (0.09 at lr 1e4 on digits): it was averaged in with the trained runs' 0.8, so two runs
    and one diverged read 'test acc mean 0.4450'. Now it is counted in div, left out of mean,
    std and min, and the table says so."""
    rows = [_row(3), {**_row(3, "diverged", acc=0.09), "diverged": 1}]
    (summ,) = report.summarise(rows)
    assert (summ["runs"], summ["diverged"]) == (2, 1)
    assert (summ["mean"], summ["std"], summ["min"]) == (0.8, 0.0, 0.8)
    table = report.text_table(rows)
    assert table.splitlines()[2].split()[3:8] == ["2", "0.8000", "0.0000", "0.8000", "1"]
    assert table.splitlines()[-1] == ("diverged: 1 run diverged in training (the loss went "
                                      "NaN or infinite); left out of mean, std and min.")
    alone = report.summarise([{**_row(3, "diverged", acc=0.09), "diverged": 1}])
    assert math.isnan(alone[0]["mean"]) and alone[0]["diverged"] == 1


def test_a_relative_npz_path_loads_on_a_worker_started_elsewhere(tmp_path, monkeypatch):
    """A relative npz:PATH was opened against the loading process's directory: preflight
    passed on the client, and every run failed on a worker started in another directory.
    The client resolves it before the runs leave; the runs keep their ids and the name as
    written."""
    rng = np.random.default_rng(0)
    (tmp_path / "data").mkdir()
    np.savez(tmp_path / "data" / "relative_path_test.npz", x=rng.standard_normal((40, 5)),
             y=rng.integers(0, 3, 40))
    elsewhere = tmp_path / "worker"
    elsewhere.mkdir()
    monkeypatch.chdir(tmp_path)
    real = fastinit.sweep.run_population

    def worker(*a, **k):                 # a fresh worker process, started in another directory
        os.chdir(elsewhere)
        fastinit.datasets._CACHE.clear()
        return real(*a, **k)
    monkeypatch.setattr(fastinit.sweep, "run_population", worker)
    spec = {"name": "rel", "max_population": 1, "grid": {"seed": [0, 1]},
            "train": {"epochs": 1, "width": 8, "dataset": "npz:data/relative_path_test.npz"}}
    res = run_sweep(spec, tmp_path / "rel.db")
    assert (res.ran, res.failed) == (2, 0), res.failures
    with Store(tmp_path / "rel.db") as s:
        rows = s.rows("rel")
    assert {r["id"] for r in rows} == {r.id for r in load_spec(spec).runs()}
    assert {r["config"]["dataset"] for r in rows} == {"npz:data/relative_path_test.npz"}
