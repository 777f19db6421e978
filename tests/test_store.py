"""The results store: schema version and migration, sweep membership, lossless seeds, a bad row
never loses its population, and every unusable database file refused with one clear line."""
import builtins
import hashlib
import json
import math
import os
import re
import sqlite3
import subprocess
import sys
import warnings

import pytest

import fastinit
import fastinit.cli as cli
import fastinit.report as report_mod
import fastinit.store as store_mod
from fastinit.frames import write_parquet
from fastinit.report import make_report
from fastinit.report_html import write_interactive
from fastinit.store import SCHEMA_VERSION, Store, StoreError
from fastinit.sweep import run_sweep
from fastinit.sweepspec import run_id

TINY = {"epochs": 1, "width": 8, "depth": 1}


def _spec(name, seeds, **train):
    return {"name": name, "grid": {"seed": list(seeds)}, "train": {**TINY, **train}}


# -- schema version 1 (fastinit 0.1) -> 3 -----------------------------------------------------

V1_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    sweep TEXT NOT NULL,
    status TEXT NOT NULL,
    scheme TEXT, scheme_params TEXT, seed INTEGER, depth INTEGER, width INTEGER,
    activation TEXT, lr REAL, dataset TEXT, optimizer TEXT, batch_size INTEGER,
    epochs INTEGER, loss TEXT,
    final_train_loss REAL, final_test_loss REAL, final_train_acc REAL, final_test_acc REAL,
    best_test_acc REAL, diverged INTEGER, diverged_step INTEGER,
    time_s REAL, population_time_s REAL, population_size INTEGER,
    config TEXT NOT NULL, curves TEXT, diagnostics TEXT, layer_sizes TEXT, error TEXT,
    fastinit_version TEXT, machine TEXT, created_at TEXT
);
CREATE TABLE IF NOT EXISTS sweeps (
    name TEXT PRIMARY KEY, spec TEXT NOT NULL, created_at TEXT
);
"""
V1_DEFAULTS = {
    "scheme": ["he_normal", {}], "seed": 0, "depth": 2, "width": 64, "activation": "relu",
    "activation_param": None, "bias_init": None, "lr": 0.01, "dataset": "digits",
    "optimizer": "sgd", "batch_size": 32, "epochs": 10, "momentum": 0.9, "weight_decay": 0.0,
    "loss": None, "data_seed": 0, "dtype": "float32", "residual": None, "data_init": None,
}
CURVES = {"train_loss": [2.3, 1.9], "test_loss": [2.3, 2.0], "train_acc": [0.1, 0.4],
          "test_acc": [0.1, 0.35]}


def _v1_database(path, seed=0, **config):
    """A database as fastinit 0.1 wrote it: its schema, its id (the whole config hashed)."""
    cfg = {**V1_DEFAULTS, **TINY, "seed": seed, "data": {}, **config}
    old_id = hashlib.sha256(json.dumps(cfg, sort_keys=True, separators=(",", ":")).encode()
                            ).hexdigest()[:20]
    con = sqlite3.connect(path)
    con.executescript(V1_SCHEMA)
    con.execute("INSERT INTO runs (id, sweep, status, scheme, scheme_params, seed, depth, width, "
                "activation, lr, dataset, epochs, final_test_acc, config, curves, diagnostics) "
                "VALUES (?, 'old', 'done', 'he_normal', '{}', ?, 1, 8, 'relu', 0.01, 'digits', "
                "1, 0.35, ?, ?, 'null')", (old_id, seed, json.dumps(cfg, sort_keys=True),
                                           json.dumps(CURVES)))
    body = {"grid": {"seed": [seed]}, "train": TINY, "data": {}, "max_population": 256,
            "diagnose": True}
    con.execute("INSERT INTO sweeps VALUES ('old', ?, '2024-01-01 00:00:00')",
                (json.dumps(body, sort_keys=True),))
    con.commit()
    con.close()
    return old_id, cfg


def test_a_version_1_database_is_migrated_on_open(tmp_path):
    db = tmp_path / "v1.db"
    old_id, cfg = _v1_database(db)
    with Store(db, readonly=True) as s:                  # read-only: migrated in memory only
        assert [r["id"] for r in s.rows("old")] == [run_id(cfg)]
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0] == 0
    res = run_sweep(_spec("old", [0, 1]), db)
    assert (res.total, res.skipped, res.ran) == (2, 1, 1)      # the old run counts as finished
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    assert {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            } == {"runs", "sweeps", "sweep_specs", "members"}
    with Store(db) as s:
        rows = s.rows("old")
    assert old_id not in {r["id"] for r in rows} and run_id(cfg) in {r["id"] for r in rows}
    assert [r["curves"] for r in rows if r["seed"] == 0] == [CURVES]



def test_a_version_1_run_whose_values_meant_otherwise_is_not_taken_as_finished(tmp_path):
    """fastinit 0.1's LSUV re-drew orthonormal weights whatever the scheme: its he_normal +
    lsuv run migrates to the id such runs had, not to today's, so the sweep trains it again."""
    db = tmp_path / "v1.db"
    _, cfg = _v1_database(db, data_init="lsuv")
    with Store(db) as s:
        assert [r["id"] for r in s.rows("old")] == [run_id(cfg, revised=False)]
    assert run_id(cfg) != run_id(cfg, revised=False)
    res = run_sweep({**_spec("old", [0]), "train": {**TINY, "data_init": "lsuv"}}, db)
    assert (res.total, res.skipped, res.ran) == (1, 0, 1)

# -- membership: a sweep is its spec ---------------------------------------------------------

def test_a_sweep_reports_exactly_its_spec_runs(tmp_path, capsys):
    db = tmp_path / "m.db"
    run_sweep(_spec("A", range(3)), db)
    run_sweep(_spec("B", range(6)), db)                      # reuses A's three runs
    with Store(db) as s:
        assert len(s.rows("A")) == 3 and len(s.rows("B")) == 6 and s.count() == 6
    heard = []
    run_sweep(_spec("A", range(2), epochs=2), db, log=heard.append)     # A edited
    assert any("sweep 'A': the spec changed since it last ran" in m for m in heard)
    with Store(db) as s:
        rows = s.rows("A")
        assert len(rows) == 2 and {r["epochs"] for r in rows} == {2}
        assert s.count() == 8                                 # the old runs stay stored
    out = tmp_path / "rep"
    assert cli.main(["report", str(db), "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert "holds 2 sweeps: " in err and "B (6 of 6 runs" in err and "A (2 of 2 runs" in err
    assert "Name one with --sweep NAME" in err and err.count("\n") == 1
    assert cli.main(["report", str(db), "--out", str(out), "--sweep", "A",
                     "--csv", str(tmp_path / "a.csv")]) == 0
    assert "2 runs from" in (out / "index.html").read_text()
    assert (tmp_path / "a.csv").read_text().count("\n") == 3
    assert cli.main(["report", str(db), "--sweep", "C", "--out", str(out)]) == 2
    assert "no sweep 'C'" in capsys.readouterr().err


def test_membership_follows_new_run_ids_when_their_number_is_unchanged(tmp_path):
    """The same spec, run again by a fastinit that gave some of its runs new ids (a value
    whose meaning changed): as many runs as before, but the members are the new ids. The
    membership was rewritten only when the number of runs differed: the report went on
    showing the old runs."""
    body = {"grid": {"seed": [0, 1]}}
    with Store(tmp_path / "m.db") as s:
        s.record_sweep("S", "v1", body, lambda: iter(["a", "b"]), 2)
        s.record_sweep("S", "v1", body, lambda: iter(["a", "c"]), 2)
        s.record_sweep("S", "v1", body, lambda: iter(["c", "a"]), 2)   # the same: kept
        got = s.con.execute("SELECT run_id FROM members WHERE sweep = 'S'").fetchall()
    assert sorted(r[0] for r in got) == ["a", "c"]


def test_report_of_runs_with_different_epochs_draws_separate_lines(tmp_path, capsys):
    db = tmp_path / "e.db"
    spec = {"name": "E", "grid": {"epochs": [1, 3], "seed": [0, 1]}, "train": {"width": 8}}
    run_sweep(spec, db)
    assert cli.main(["report", str(db), "--out", str(tmp_path / "r"), "--sweep", "E"]) == 0
    out = capsys.readouterr().out
    assert "epochs=1" in out and "epochs=3" in out           # the table keeps them apart


def test_report_of_runs_whose_losses_are_all_nan_draws_them(tmp_path, capsys):
    """An init so large the first forward pass overflows: every stored loss is None (NaN),
    so the loss panels have nothing a log axis can show. The report is still written, with
    no warning or traceback."""
    db, out = tmp_path / "n.db", tmp_path / "rep"
    run_sweep({"name": "N", "grid": {"seed": [0, 1], "scheme": [{"name": "normal",
                                                                 "std": 1e12}]},
               "train": {"epochs": 2, "width": 16, "depth": 4}}, db)
    with Store(db) as s:
        assert all(set(r["curves"]["train_loss"]) == {None} for r in s.rows("N"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cli.main(["report", str(db), "--out", str(out), "-q"]) == 0
    assert capsys.readouterr().err == ""
    assert (out / "loss.png").stat().st_size > 0 and (out / "index.html").exists()


def test_runs_whose_final_metric_overflowed_are_counted_apart(tmp_path, capsys):
    """A full-batch step at lr 1e6 leaves float32 weights whose last evaluation overflows:
    the run is stored done, not diverged (train() saw finite training losses), final loss
    None. The report says so in its table and both pages, apart from the diverged runs."""
    pytest.importorskip("plotly")
    db, out = tmp_path / "o.db", tmp_path / "rep"
    run_sweep({"name": "O", "grid": {"seed": [0, 1], "scheme": ["xavier_uniform"]}, "train": {
        "dataset": "teacher_student", "optimizer": "sgd", "lr": 1e6, "epochs": 2,
        "batch_size": 100_000, "width": 64, "depth": 2, "dtype": "float32"}}, db)
    with Store(db) as s:
        rows = s.rows("O")
    assert [(r["status"], r["diverged"], r["final_test_loss"]) for r in rows] == \
        [("done", 0, None)] * 2
    assert cli.main(["report", str(db), "--out", str(out), "--interactive"]) == 0
    text = capsys.readouterr().out
    head, rule, line = text.splitlines()[:3]
    assert "nonfinite" in head and line.split()[-3:] == ["0", "2", "0"]   # div nonfinite fail
    assert "nonfinite: 2 runs stored as done whose final test loss is not finite" in text
    for page in ("index.html", "interactive.html"):
        html = (out / page).read_text()
        assert re.search(r"<th[^>]*>diverged</th><th[^>]*>nonfinite</th>", html), page
        assert "2 runs stored as done whose final test loss is not finite" in html, page


# -- seeds and rows that cannot be stored ----------------------------------------------------

def test_seeds_up_to_2_to_the_64_are_stored_exactly(tmp_path):
    db = tmp_path / "s.db"
    seeds = [0, 2**63 - 1, 2**63 + 5, 2**64 - 1]
    res = run_sweep(_spec("s", seeds), db)
    assert (res.ran, res.failed) == (4, 0)
    with Store(db) as s:
        rows = s.rows("s")
    assert sorted(r["seed"] for r in rows) == seeds
    assert sorted(r["config"]["seed"] for r in rows) == seeds
    assert run_sweep(_spec("s", seeds), db).skipped == 4
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*) FROM runs WHERE seed = 0").fetchone()[0] == 1


def _seed_1_not_storable(monkeypatch):
    """Store._result_row fails for the run of seed 1, as SQLite fails an int it cannot hold."""
    real = Store._result_row

    def picky(self, r, sweep):
        if r["config"]["seed"] == 1:
            raise OverflowError("Python int too large to convert to SQLite INTEGER")
        return real(self, r, sweep)
    monkeypatch.setattr(Store, "_result_row", picky)


def test_a_row_that_cannot_be_stored_is_a_recorded_failure(tmp_path, monkeypatch):
    db = tmp_path / "o.db"
    _seed_1_not_storable(monkeypatch)
    res = run_sweep(_spec("o", range(3)), db)           # one population of three
    assert (res.ran, res.failed) == (2, 1)
    assert res.failures[0][1] == ("result not stored: OverflowError: Python int too large to "
                                  "convert to SQLite INTEGER")
    with Store(db) as s:
        status = {r["config"]["seed"]: r["status"] for r in s.rows("o")}
    assert status == {0: "done", 1: "failed", 2: "done"}
    monkeypatch.undo()
    assert run_sweep(_spec("o", range(3)), db).ran == 1          # retried


def test_the_tables_count_a_run_stored_bare_where_it_belongs(tmp_path, monkeypatch, capsys):
    """A run whose row could not be stored has only its id, config and reason: the printed
    tables of fastinit sweep and fastinit report take its scheme and shape from its config."""
    db, spec = tmp_path / "b.db", tmp_path / "b.toml"
    spec.write_text('name = "b"\n[grid]\nseed = [0, 1]\n[train]\nepochs = 1\nwidth = 8\n'
                    'depth = 1\n')
    _seed_1_not_storable(monkeypatch)
    assert cli.main(["sweep", str(spec), "--db", str(db)]) == 1
    monkeypatch.undo()
    assert cli.main(["report", str(db), "--out", str(tmp_path / "rep")]) == 0
    out = capsys.readouterr().out
    lines = [line.split() for line in out.splitlines() if line.startswith("he_normal")]
    assert len(lines) == 2                        # the sweep's table, then the report's
    for line in lines:
        assert line[:4] == ["he_normal", "relu", "1", "2"] and line[-2:] == ["0", "1"]


# -- files that are not (our) databases -------------------------------------------------------

def test_foreign_corrupt_and_newer_databases_are_refused(tmp_path, capsys):
    foreign = tmp_path / "shop.db"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE customers (name TEXT)")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match=r"shop.db: not a fastinit results database \(it holds "
                                         r"the tables customers\); refusing to use it"):
        run_sweep(_spec("f", [0]), foreign)
    tables = sqlite3.connect(foreign).execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == [("customers",)]
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is no database\n" * 400)
    newer = tmp_path / "newer.db"
    sqlite3.connect(newer).execute("PRAGMA user_version = 99").connection.close()
    for path, match in ((junk, r"junk.db: not a SQLite database, or a damaged one"),
                        (newer, r"newer.db: written by a newer fastinit \(schema version 99")):
        with pytest.raises(StoreError, match=match):
            Store(path)
        spec = tmp_path / "ok.toml"
        spec.write_text("[grid]\nseed = [0]\n[train]\nepochs = 1\nwidth = 8\n")
        assert cli.main(["sweep", str(spec), "--db", str(path), "-q"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"fastinit sweep: {path}: ") and err.count("\n") == 1


@pytest.mark.parametrize("rows", [0, 1])
def test_a_foreign_table_named_runs_is_not_taken_for_fastinit_0_1(tmp_path, capsys, rows):
    """Only fastinit 0.1's own runs table (its id, sweep, status and config columns) is
    migrated: another program's 'runs' was dropped and replaced when empty, and crashed the
    migration with a TypeError traceback when it held a row."""
    foreign = tmp_path / "jobs.db"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE runs (job TEXT, seconds REAL)")
    con.executemany("INSERT INTO runs VALUES (?, ?)", [("backup", 3.5)] * rows)
    con.commit()
    con.close()
    spec = tmp_path / "ok.toml"
    spec.write_text("[grid]\nseed = [0]\n[train]\nepochs = 1\nwidth = 8\n")
    for argv in (["report", str(foreign), "--out", str(tmp_path / "r")],
                 ["sweep", str(spec), "--db", str(foreign)]):
        assert cli.main(argv + ["-q"]) == 2
        assert capsys.readouterr().err == (
            f"fastinit {argv[0]}: {foreign}: not a fastinit results database (it holds the "
            f"tables runs); refusing to use it. Give another database file.\n")
    con = sqlite3.connect(foreign)
    assert con.execute("SELECT sql FROM sqlite_master").fetchall() == [
        ("CREATE TABLE runs (job TEXT, seconds REAL)",)]
    assert con.execute("SELECT * FROM runs").fetchall() == [("backup", 3.5)] * rows


@pytest.mark.parametrize("where,match", [
    ("missing/dir/runs.db", r"cannot create the database: no such directory .*missing/dir"),
    (".", r"is a directory, not a results database"),
])
def test_unopenable_db_paths_get_one_line(tmp_path, capsys, where, match):
    spec = tmp_path / "ok.toml"
    spec.write_text("[grid]\nseed = [0]\n[train]\nepochs = 1\nwidth = 8\n")
    db = tmp_path / where
    assert cli.main(["sweep", str(spec), "--db", str(db), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    with pytest.raises(StoreError, match=match):
        Store(db)


@pytest.mark.parametrize("call,func,param", [
    (lambda db: fastinit.load_runs(db), "fastinit.load_runs", "db"),
    (lambda db: fastinit.load_curves(db), "fastinit.load_curves", "db"),
    (lambda db: run_sweep({"train": {"epochs": 1}}, db), "fastinit.sweep.run_sweep", "db"),
    (lambda db: make_report(db), "fastinit.report.make_report", "db"),
    (lambda db: write_interactive(db), "fastinit.report_html.write_interactive", "db"),
    (lambda db: write_parquet(db, "runs.parquet"), "fastinit.frames.write_parquet", "db"),
    (lambda db: Store(db), "fastinit.store.Store", "path"),
])
def test_a_db_path_that_is_not_a_path_is_named(call, func, param):
    with pytest.raises(TypeError, match=rf"^The '{param}' parameter of {re.escape(func)} must "
                                        rf"be a path \(str or os.PathLike\). Got 3 of type int "
                                        rf"instead.$"):
        call(3)                         # Python's own: expected str, bytes or os.PathLike
    with pytest.raises(ValueError, match=r"must be a path. Got an empty one"):
        call("")                        # sqlite3 would open a temporary database


@pytest.mark.parametrize("export", ["export_csv", "export_json"])
def test_an_export_to_something_not_a_path_is_refused_before_anything_is_written(
        tmp_path, export):
    """open(3, "w") opens file descriptor 3: an export given a number wrote its rows into
    whatever the process had open there (the database's own file, a socket) and closed it."""
    with Store(tmp_path / "e.db") as st:
        read, write = os.pipe()
        try:
            with pytest.raises(TypeError, match=rf"^The 'path' parameter of fastinit.store."
                                                rf"Store.{export} must be a path"):
                getattr(st, export)(write)
            os.write(write, b"still open")        # the descriptor was neither used nor closed
            assert os.read(read, 64) == b"still open"
        finally:
            os.close(read)
            os.close(write)
        with pytest.raises(ValueError, match="must be a path. Got an empty one"):
            getattr(st, export)("")


def test_disk_full_says_what_is_saved_and_how_to_resume(tmp_path, capsys, monkeypatch):
    spec = tmp_path / "full.toml"
    spec.write_text("max_population = 1\n[grid]\nseed = [0, 1, 2]\n[train]\nepochs = 1\n"
                    "width = 8\n")
    db = tmp_path / "full.db"
    real, calls = Store._result_row, []

    def filling(self, r, sweep):
        calls.append(1)
        if len(calls) > 1:
            raise sqlite3.OperationalError("database or disk is full")
        return real(self, r, sweep)
    monkeypatch.setattr(Store, "_result_row", filling)
    assert cli.main(["sweep", str(spec), "--db", str(db), "-q"]) == 2
    err = capsys.readouterr().err
    assert err == (f"fastinit sweep: {db}: cannot save results: database or disk is full. The 1 "
                   f"runs committed before are saved; free some space and run the same command "
                   f"again to resume.\n")
    monkeypatch.undo()
    assert cli.main(["sweep", str(spec), "--db", str(db), "-q"]) == 0
    with Store(db) as s:
        assert s.count() == 3


# Run as root, a child first drops the capabilities that let root ignore file modes from its
# bounding set, then executes the command: the new image starts without them. (Done in a fresh
# interpreter, not in a preexec_fn: forking a test process that runs JAX threads can deadlock.)
_WITHOUT_ROOT_FILE_POWERS = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
for cap in (1, 2, 3):             # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
    if libc.prctl(24, cap, 0, 0, 0) != 0:      # PR_CAPBSET_DROP
        sys.exit(97)
os.execv(sys.executable, [sys.executable] + sys.argv[1:])
"""


def _as_user(args):
    """The command, run without root's file powers when this test runs as root."""
    if os.geteuid() == 0:
        return [sys.executable, "-c", _WITHOUT_ROOT_FILE_POWERS] + args[1:]
    return args


def test_reading_a_database_leaves_no_wal_files_and_writes_nothing(tmp_path):
    """A sweep then a report (or load_runs) left runs.db-shm and an empty runs.db-wal beside
    the database: the report's read-only (mode=ro) connection made them and could not remove
    them. A read-only Store on a writable file now refuses every write (query_only) and
    leaves nothing behind."""
    pytest.importorskip("matplotlib")
    db = tmp_path / "runs.db"
    run_sweep(_spec("w", [0]), db)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.db"]
    fastinit.report.make_report(db, tmp_path / "rep")
    with Store(db, readonly=True) as st:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            st.con.execute("DELETE FROM runs")
        assert len(st.rows()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep", "runs.db"]


def test_report_and_sweep_on_a_read_only_database(tmp_path):
    """Report reads a read-only database in a read-only directory; a sweep into it gets one
    line naming the cause. (As root, the child drops the powers that ignore file modes.)"""
    if sys.platform != "linux":
        pytest.skip("read-only files are made with Linux capabilities here")
    db = tmp_path / "ro.db"
    run_sweep(_spec("ro", [0, 1]), db)
    ro_dir = tmp_path / "data"
    ro_dir.mkdir()
    ro_db = ro_dir / "ro.db"
    ro_db.write_bytes(db.read_bytes())
    ro_db.chmod(0o444)
    ro_dir.chmod(0o555)
    out = tmp_path / "out"
    spec = tmp_path / "s.toml"
    spec.write_text("name = 'ro'\n[grid]\nseed = [0, 1, 2]\n[train]\nepochs = 1\nwidth = 8\n"
                    "depth = 1\n")
    try:
        rep = subprocess.run(_as_user([sys.executable, "-m", "fastinit", "report", str(ro_db),
                                       "--out", str(out)]), capture_output=True, text=True)
        if rep.returncode == 97:
            pytest.skip("cannot drop root's file capabilities here")
        assert rep.returncode == 0, rep.stderr
        assert "report:" in rep.stdout and (out / "index.html").exists()
        sw = subprocess.run(_as_user([sys.executable, "-m", "fastinit", "sweep", str(spec),
                                      "--db", str(ro_db), "-q"]), capture_output=True, text=True)
        assert sw.returncode == 2
        assert sw.stderr.startswith(f"fastinit sweep: {ro_db}: cannot ") and \
            "not writable" in sw.stderr and sw.stderr.count("\n") == 1, sw.stderr
        assert sorted(p.name for p in ro_dir.iterdir()) == ["ro.db"]
    finally:
        ro_dir.chmod(0o755)


def test_runs_without_a_test_split_are_not_counted_as_overflowed(tmp_path):
    """A sweep with no test split stores no final test loss (None: never measured): the report
    called every run "stored as done whose final test loss is not finite (it overflowed ...)"."""
    db = tmp_path / "nt.db"
    run_sweep({"name": "nt", "grid": {"seed": [0, 1]}, "data": {"blobs": {"test_fraction": 0.0}},
               "train": {"epochs": 1, "width": 8, "depth": 1, "dataset": "blobs"}}, db)
    with Store(db) as s:
        rows = s.rows("nt")
    text = fastinit.report.text_table(rows)
    assert "nonfinite" not in text and "overflowed" not in text


@pytest.mark.parametrize("export", ["export_csv", "export_json"])
def test_an_unknown_sweep_is_an_error_not_an_empty_export(tmp_path, export):
    """Store.rows("typo") returned [] and export_csv / export_json wrote an empty table over
    the file without a word: now a StoreError names the sweeps the database holds, and the
    file is left as it was."""
    db = tmp_path / "u.db"
    run_sweep(_spec("grid", [0]), db)
    out = tmp_path / "out.txt"
    out.write_text("kept")
    with Store(db, readonly=True) as st:
        assert len(st.rows("grid")) == 1
        with pytest.raises(StoreError, match=r"u.db: no sweep 'gird'. Did you mean 'grid'\? "
                                             r"It holds: grid.$"):
            st.rows("gird")
        with pytest.raises(StoreError, match=r"no sweep 'gird'"):
            getattr(st, export)(out, sweep="gird")
    assert out.read_text() == "kept"
    pytest.importorskip("pandas")
    with pytest.raises(StoreError, match=r"u.db: no sweep ''.* It holds: grid.$"):
        fastinit.load_runs(db, sweep="")          # was every run of the database


def test_exports_and_the_page_are_utf_8_whatever_the_locale(tmp_path, monkeypatch):
    """A sweep named "é <b>" under a locale whose encoding is ASCII (LANG=C without Python's
    UTF-8 mode; cp1252 on Windows is the same for most scripts): export_csv and index.html were
    written in the locale's encoding, so the CSV raised UnicodeEncodeError half-written and the
    page (which declares utf-8) could not hold the name. Now every file is UTF-8."""
    def ascii_locale_open(file, mode="r", *args, **kw):
        if "b" not in mode and len(args) < 2:        # no encoding given: the locale's, ASCII
            kw.setdefault("encoding", "ascii")
        return builtins.open(file, mode, *args, **kw)

    db = tmp_path / "u.db"
    run_sweep(_spec("é <b>", [0]), db)
    for mod in (store_mod, report_mod):
        monkeypatch.setattr(mod, "open", ascii_locale_open, raising=False)
    out = tmp_path / "r"
    assert cli.main(["report", str(db), "--out", str(out), "-q", "--csv",
                     str(tmp_path / "u.csv"), "--json", str(tmp_path / "u.json")]) == 0
    assert "é <b>" in (tmp_path / "u.csv").read_text(encoding="utf-8")
    assert json.loads((tmp_path / "u.json").read_text(encoding="utf-8"))[0]["sweep"] == "é <b>"
    assert "sweep é &lt;b&gt;" in (out / "index.html").read_text(encoding="utf-8")


def test_figures_draw_a_line_per_setting_not_one_across_settings(tmp_path, monkeypatch):
    """A grid over lr (0.05 and 1e6) and seeds: the table keeps the two lrs apart, but every
    figure averaged all four runs into one "he_normal" line and band (a trained run and a
    diverged one). Now each figure has a line per scheme and setting, over its seeds only."""
    db = tmp_path / "lr.db"
    run_sweep({"name": "lr", "grid": {"lr": [0.05, 1e6], "seed": [0, 1]},
               "train": {**TINY, "scheme": "he_normal"}}, db)
    drawn = []
    bands = report_mod._bands
    monkeypatch.setattr(report_mod, "_bands", lambda ax, curves, label, color: (
        drawn.append((label, len(curves))), bands(ax, curves, label, color))[1])
    make_report(db, tmp_path / "r")
    assert sorted(set(drawn)) == [("he_normal, lr=0.05", 2), ("he_normal, lr=1000000.0", 2)]
    pytest.importorskip("plotly")
    page = write_interactive(db, tmp_path / "r")["interactive.html"]
    data = json.loads(open(page, encoding="utf-8").read().split("var FIGURES = ", 1)[1]
                      .split(";\nObject.keys", 1)[0])
    names = {t.get("name") for t in data["fig-curves"]["data"]} - {None}
    assert names == {"he_normal, lr=0.05", "he_normal, lr=1000000.0"}


def test_the_depth_figures_show_a_network_without_hidden_layers(tmp_path, monkeypatch):
    """depth = [0, 1]: the final-metric-vs-depth figures put depth on a log axis, where 0 has
    no place, so the depth-0 result was not drawn (its line ran off the left edge). Now the
    axis is linear when a depth is 0, and every point lands on the canvas."""
    db = tmp_path / "d0.db"
    run_sweep({"name": "d0", "grid": {"depth": [0, 1]}, "train": {"epochs": 1, "width": 8}}, db)
    saved = {}
    keep = lambda fig, path, **kw: saved.setdefault(os.path.basename(path), fig)
    monkeypatch.setattr(report_mod.pyplot().Figure, "savefig", keep)
    make_report(db, tmp_path / "r")
    ax = saved["depth.png"].axes[0]
    (line,) = ax.lines
    assert list(line.get_xdata()) == [0, 1]
    lo, hi = ax.get_xlim()
    assert lo < 0 < 1 < hi                    # both points inside the panel (log: lo > 0)
    pytest.importorskip("plotly")
    page = write_interactive(db, tmp_path / "r")["interactive.html"]
    data = json.loads(open(page, encoding="utf-8").read().split("var FIGURES = ", 1)[1]
                      .split(";\nObject.keys", 1)[0])
    assert data["fig-depth"]["layout"]["xaxis"]["type"] == "linear"


def test_figure_legends_order_settings_by_value(tmp_path, monkeypatch):
    """lr = [0.1, 0.01, 1e-5] and width = [8, 16]: the figures' lines were sorted as text,
    so their legends read width=16 before width=8 and lr=0.01, 0.1, 1e-05. Now numbers are
    ordered by size, as the summary table orders them."""
    db = tmp_path / "lr.db"
    run_sweep({"name": "lr", "grid": {"lr": [0.1, 0.01, 1e-5], "width": [8, 16]},
               "train": {"epochs": 1, "depth": 1, "scheme": "he_normal"}}, db)
    want = [f"he_normal, width={w}, lr={lr}" for w in (8, 16) for lr in (1e-5, 0.01, 0.1)]
    saved = {}
    keep = lambda fig, path, **kw: saved.setdefault(os.path.basename(path), fig)
    monkeypatch.setattr(report_mod.pyplot().Figure, "savefig", keep)
    make_report(db, tmp_path / "r")
    for name in ("curves.png", "loss.png"):
        assert [t.get_text() for t in saved[name].legends[0].get_texts()] == want, name
    pytest.importorskip("plotly")
    page = write_interactive(db, tmp_path / "r")["interactive.html"]
    data = json.loads(open(page, encoding="utf-8").read().split("var FIGURES = ", 1)[1]
                      .split(";\nObject.keys", 1)[0])
    names = [t["name"] for t in data["fig-curves"]["data"] if t.get("showlegend", True)
             and t.get("name")]
    assert names == want


def test_a_report_of_an_unfinished_sweep_says_so(tmp_path):
    """A report drawn while a sweep runs (or after it stopped) said "sweep s: 1 runs from ..."
    as if that were the sweep; its spec has 2. Both pages now say how many are stored."""
    db = tmp_path / "half.db"
    run_sweep(_spec("s", [0, 1]), db)
    with Store(db) as s:
        s.con.execute("DELETE FROM runs WHERE id = (SELECT MIN(id) FROM runs)")
    make_report(db, tmp_path / "r")
    said = "sweep s (1 of its 2 runs stored so far): 1 runs from"
    assert said in (tmp_path / "r" / "index.html").read_text(encoding="utf-8")
    pytest.importorskip("plotly")
    page = write_interactive(db, tmp_path / "r")["interactive.html"]
    assert said in open(page, encoding="utf-8").read()
    run_sweep(_spec("s", [0, 1]), db)                     # finished: nothing more is said
    make_report(db, tmp_path / "r")
    assert "sweep s: 2 runs from" in (tmp_path / "r" / "index.html").read_text(encoding="utf-8")


def _one_seed_diverged(db):
    """A sweep of two seeds whose seed 1 is stored as a diverged run: its curves stop at a
    test accuracy of 0.09 (its weights from before the bad step) and no test loss. Returns
    the trained run's final test accuracy."""
    run_sweep(_spec("dv", [0, 1]), db)
    with Store(db) as s:
        (trained,) = [r for r in s.rows("dv") if r["seed"] == 0]
        (bad,) = [r for r in s.rows("dv") if r["seed"] == 1]
        curves = {**bad["curves"], "test_acc": bad["curves"]["test_acc"][:-1] + [0.09],
                  "test_loss": bad["curves"]["test_loss"][:-1] + [None]}
        s.con.execute("UPDATE runs SET status = 'diverged', diverged = 1, diverged_step = 3, "
                      "final_test_acc = 0.09, final_test_loss = NULL, curves = ? WHERE id = ?",
                      (json.dumps(curves), bad["id"]))
    return trained["final_test_acc"]


def test_the_depth_figures_leave_diverged_runs_out_as_the_table_does(tmp_path, monkeypatch):
    """One seed trained and one diverged, keeping 0.09 from before its bad step:
    the table's mean is the trained run's alone, but depth.png and the interactive depth
    figure drew the mean of both, with a band down to 0.09. Now their point and band are the
    trained run's; the per-epoch figures still draw both runs, so the divergence shows."""
    db = tmp_path / "dv.db"
    acc = _one_seed_diverged(db)
    saved, drawn = {}, []
    keep = lambda fig, path, **kw: saved.setdefault(os.path.basename(path), fig)
    monkeypatch.setattr(report_mod.pyplot().Figure, "savefig", keep)
    bands = report_mod._bands
    monkeypatch.setattr(report_mod, "_bands", lambda ax, curves, label, color: (
        drawn.append(len(curves)), bands(ax, curves, label, color))[1])
    make_report(db, tmp_path / "r")
    (line,) = saved["depth.png"].axes[0].lines
    assert list(line.get_ydata()) == [acc]
    (band,) = saved["depth.png"].axes[0].collections
    assert band.get_paths()[0].vertices[:, 1].min() == pytest.approx(acc)
    assert drawn == [2, 2]                          # curves.png and loss.png: both runs
    pytest.importorskip("plotly")
    page = write_interactive(db, tmp_path / "r")["interactive.html"]
    data = json.loads(open(page, encoding="utf-8").read().split("var FIGURES = ", 1)[1]
                      .split(";\nObject.keys", 1)[0])
    (depth,) = data["fig-depth"]["data"]
    assert depth["y"] == [acc] and depth["error_y"]["arrayminus"] == [0.0]
    assert all("(mean of 2)" in t["hovertemplate"] for t in data["fig-curves"]["data"]
               if t.get("hovertemplate"))


def test_a_depth_where_every_seed_diverged_is_marked_not_left_blank(tmp_path, monkeypatch):
    """Depth 2's two seeds both stored as diverged: the depth figures left them out (no run
    trained there), so the line ended at depth 1 as if depth 2 had not been run. Now an x at
    the panel's foot marks that depth in the line's colour, and the axis or title says what
    it means; the depth with a trained run keeps its point."""
    db = tmp_path / "all.db"
    run_sweep({"name": "all", "grid": {"depth": [1, 2], "seed": [0, 1]},
               "train": {"epochs": 1, "width": 8}}, db)
    with Store(db) as s:
        s.con.execute("UPDATE runs SET status = 'diverged', diverged = 1 WHERE depth = 2")
    saved = {}
    keep = lambda fig, path, **kw: saved.setdefault(os.path.basename(path), fig)
    monkeypatch.setattr(report_mod.pyplot().Figure, "savefig", keep)
    make_report(db, tmp_path / "r")
    ax = saved["depth.png"].axes[0]
    line, cross = ax.lines
    assert list(line.get_xdata()) == [1] and line.get_marker() == "o"
    assert list(cross.get_xdata()) == [2] and cross.get_marker() == "x"
    assert cross.get_color() == line.get_color()
    assert ax.get_xlabel() == "hidden layers  (x: every seed diverged)"
    pytest.importorskip("plotly")
    page = write_interactive(db, tmp_path / "r")["interactive.html"]
    data = json.loads(open(page, encoding="utf-8").read().split("var FIGURES = ", 1)[1]
                      .split(";\nObject.keys", 1)[0])
    (trace,) = data["fig-depth"]["data"]
    assert trace["x"] == [1]
    marks = [a for a in data["fig-depth"]["layout"]["annotations"] if a["text"] == "\u2715"]
    assert [(m["x"], m["y"], m["yref"]) for m in marks] == [(math.log10(2), 0, "y domain")]
    assert "every seed diverged" in data["fig-depth"]["layout"]["title"]["text"]


def test_a_diverged_run_is_stored_as_its_schema_says(tmp_path):
    """The runs table's docstring: a diverged run keeps the weights from before its bad step,
    so its final accuracy is theirs (finite, its curve's last value) and its final loss NULL;
    the summary counts it under div, out of the mean."""
    db = tmp_path / "big.db"
    run_sweep({"name": "big", "grid": {"seed": [0]}, "train": {
        "lr": 1e4, "epochs": 2, "width": 16, "depth": 2}}, db)
    with Store(db) as s:
        (r,) = s.rows("big")
    assert (r["status"], r["diverged"], r["final_test_loss"]) == ("diverged", 1, None)
    assert r["diverged_step"] >= 0 and 0 <= r["final_test_acc"] <= 1
    assert r["final_test_acc"] == r["curves"]["test_acc"][-1]
    (summ,) = report_mod.summarise([r])
    assert summ["diverged"] == 1 and summ["mean"] != summ["mean"]        # NaN: none trained
