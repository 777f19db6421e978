"""What a newcomer meets: a word while kernels compile (CLI: on stderr, once; library: quiet
unless logging is configured), times that keep compiling apart (History, run_population, the
store, the reports), tables whose columns fit their content, and a demo that needs no PyTorch."""
import json
import os
import pathlib
import re
import shutil
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

try:
    import tomllib
except ImportError:                    # Python 3.10
    import tomli as tomllib

import fastinit
import fastinit.cli as cli
from fastinit import compilelog, kernels, report, report_html, warmup
from fastinit.kernels import _config
from fastinit.store import SCHEMA_VERSION, Store
from fastinit.sweep import load_spec, run_population, run_sweep

ROOT = pathlib.Path(__file__).resolve().parents[1]
COMPILED = re.compile(r"^fastinit kernels compiled in \d+\.\d s; cached in \S+ for the next "
                      r"run$", re.M)
TWO_SPECS = [{"name": "kaiming_normal", "nonlinearity": "relu"},
             {"name": "kaiming_normal", "nonlinearity": "tanh"}]


# -- a word while kernels compile ------------------------------------------------------------

def _cache_without(root: pathlib.Path, kernel: str) -> pathlib.Path:
    """A NUMBA_CACHE_DIR holding every kernel `fastinit warmup` loads except ``kernel``
    ("module.function"): a first run that compiles one kernel, in seconds, not a minute.
    The copy is taken under the cache's save lock: the other test process shares the cache and
    may be saving a kernel (its temporary file gone before copytree reaches it, or an index
    naming code not yet written)."""
    if _config.CACHE_DIR is None:
        pytest.skip("no writable Numba cache directory")
    copy = root / pathlib.Path(_config.CACHE_DIR).name
    if not copy.exists():
        warmup.warmup()                   # this process's cache holds what warmup loads
        with _config._cache_lock():       # no process saves a kernel while it is copied
            shutil.copytree(_config.CACHE_DIR, copy)
    gone = [f for f in copy.rglob(f"{kernel}-*") if f.suffix in (".nbi", ".nbc")]
    assert gone, f"{kernel} is not in the cache"
    for f in gone:
        f.unlink()
    return root


def _run(args, cache, **kw):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=600, **kw)


@pytest.mark.slow
def test_the_cli_says_once_while_kernels_compile_and_nothing_when_cached(tmp_path):
    cache = _cache_without(tmp_path / "numba", "sampling.uniform_fill")
    cold = _run([sys.executable, "-m", "fastinit", "warmup"], cache, cwd=tmp_path)
    assert cold.returncode == 0, cold.stderr
    assert cold.stderr.count(compilelog.COMPILING) == 1, cold.stderr
    assert len(COMPILED.findall(cold.stderr)) == 1, cold.stderr
    assert cold.stderr.index(compilelog.COMPILING) < COMPILED.search(cold.stderr).start()
    assert "kernels ready in" in cold.stdout
    warm = _run([sys.executable, "-m", "fastinit", "warmup"], cache, cwd=tmp_path)
    assert warm.returncode == 0 and warm.stderr == "", warm.stderr
    _cache_without(cache, "sampling.uniform_fill")
    quiet = _run([sys.executable, "-m", "fastinit", "warmup", "-q"], cache, cwd=tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == quiet.stdout == "", quiet.stderr


@pytest.mark.slow
def test_the_library_is_quiet_unless_logging_is_configured(tmp_path):
    cache = _cache_without(tmp_path / "numba", "sampling.uniform_fill")
    code = "import fastinit; fastinit.sample('uniform', (3, 3), seed=0)"
    quiet = _run([sys.executable, "-c", code], cache)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    _cache_without(cache, "sampling.uniform_fill")
    loud = _run([sys.executable, "-c", "import logging; logging.basicConfig(level=logging.INFO, "
                 "format='%(name)s: %(message)s'); " + code], cache)
    assert loud.returncode == 0, loud.stderr
    assert loud.stderr.count(f"fastinit: {compilelog.COMPILING}") == 1, loud.stderr
    assert re.search(r"^fastinit: fastinit kernels compiled in \d+\.\d s", loud.stderr, re.M)


# -- compile time apart ----------------------------------------------------------------------

@pytest.fixture
def compiles_once(monkeypatch):
    """A clock that moves only when told, and a first train_epoch call that spends 10 of its
    seconds in Numba's compiler lock (as compiling does) and 1 training; later calls 1."""
    from numba.core.compiler_lock import global_compiler_lock
    clock = [0.0]
    monkeypatch.setattr(time, "perf_counter", lambda: clock[0])
    real, calls = kernels.train.train_epoch, []

    def epoch(*args):
        if not calls:
            with global_compiler_lock:
                clock[0] += 10.0
        calls.append(1)
        clock[0] += 1.0
        return real(*args)

    monkeypatch.setattr(kernels.train, "train_epoch", epoch)


def test_train_keeps_compiling_out_of_its_epoch_times(compiles_once):
    net = fastinit.MLP([4, 8, 3], n=2, seed=0)
    x = np.random.default_rng(0).standard_normal((40, 4))
    h = fastinit.train(net, (x, np.arange(40) % 3), epochs=2, batch_size=16, threads=1)
    assert h.compile_time.tolist() == [0.0, 10.0, 0.0]
    assert h.epoch_time.tolist() == [0.0, 1.0, 1.0]           # training only
    assert h.to_dict()["compile_time"] == [0.0, 10.0, 0.0]


def test_a_population_stores_compile_time_apart_and_reports_say_it_once(compiles_once,
                                                                         tmp_path):
    spec = load_spec({"name": "t", "grid": {"scheme": TWO_SPECS},
                      "train": {"epochs": 2, "width": 8, "depth": 1}})
    [pop] = list(spec.populations())
    results = run_population([r.config for r in pop], threads=1)
    assert [r["compile_time"] for r in results] == [10.0, 10.0]
    assert [r["population_time"] for r in results] == [2.0, 2.0]   # two epochs, no compiling
    assert [r["time"] for r in results] == [1.0, 1.0]
    with Store(tmp_path / "runs.db") as s:
        s.add_results(results, "t")
        rows = s.rows()
    assert [r["compile_s"] for r in rows] == [10.0, 10.0]
    assert report.compile_seconds(rows) == 10.0                    # one population, once
    note = report.timing_note(rows)
    assert note == ("ms/run: a run's share of its population's time training, evaluating and "
                    "diagnosing; compiling and loading the kernels (10.0 s in all) is left out.")
    assert "<td>1000.0</td>" in report_html._table(rows)            # ms/run: training only


def test_a_compile_begun_before_fastinit_was_imported_is_left_untimed():
    """fastinit imported while Numba compiles (a cached kernel's environment can import it):
    its listeners see an end without its start. They ignore it (it raised AttributeError, and
    the notice's depth went negative), then time the next compile as usual."""
    from numba.core import event
    dispatcher = kernels.gemm.gemm_rows
    end = event.Event("numba:compile", event.EventStatus.END, data={"dispatcher": dispatcher})
    start = event.Event("numba:compile", event.EventStatus.START, data={"dispatcher": dispatcher})
    clock = compilelog._Clock()
    clock.on_end(end)
    assert not hasattr(clock.local, "seconds")
    clock.on_start(start)
    clock.on_end(end)
    assert clock.local.seconds >= 0 and clock.local.depth == 0
    assert compilelog._NOTICE.depth == 0
    compilelog._Compiles().on_end(end)
    assert compilelog._NOTICE.depth == 0


def test_the_summary_line_states_compile_time_once():
    assert cli.timing_line(120, 5.04, 70.0, 71.26) == (
        "120 runs trained in 5.0 s (plus 71.3 s compiling the kernels for this machine, "
        "first run only: they are cached now)")
    assert cli.timing_line(120, 5.04, 0.0, 0.81, rate=True) == (
        "120 runs trained in 5.0 s (23.8 runs/s; plus 0.8 s loading the compiled kernels)")
    assert cli.timing_line(3, 0.5, 0.0, 0.0) == "3 runs trained in 0.5 s"


# -- tables ----------------------------------------------------------------------------------

def _rows(tmp_path):
    db = tmp_path / "t.db"
    run_sweep({"name": "t", "grid": {"scheme": TWO_SPECS + ["zeros"], "seed": [0, 1]},
               "train": {"epochs": 1, "width": 8, "depth": 1}}, db)
    with Store(db) as s:
        return s.rows("t")


def test_tables_keep_two_specs_of_one_scheme_apart(tmp_path):
    rows = _rows(tmp_path)
    labels = ["kaiming_normal(nonlinearity='relu')", "kaiming_normal(nonlinearity='tanh')"]
    lines = report.text_table(rows).splitlines()
    head, rule, body = lines[0], lines[1], lines[2:]
    assert [line.split("  ")[0].strip() for line in body] == labels + ["zeros"]
    act = head.index("act")
    assert act > len(labels[0]) and all(line[act:act + 4] == "relu" for line in body)
    assert set(rule) == {"-"} and len(rule) == len(head)
    assert all(len(line) <= len(head) for line in body)            # columns fit their content
    assert head.split()[-2:] == ["div", "fail"]       # no nonfinite column of zeros to puzzle at
    page = report_html._table(rows)
    html_labels = ["kaiming_normal(nonlinearity=&#x27;relu&#x27;)",
                   "kaiming_normal(nonlinearity=&#x27;tanh&#x27;)"]
    assert all(f"<td>{lab}</td>" in page for lab in html_labels)
    files = report.make_report(tmp_path / "t.db", tmp_path / "report", "t")
    static = pathlib.Path(files["index.html"]).read_text()
    assert all(f"<td>{lab}</td>" in static for lab in html_labels)
    assert "white-space:nowrap" in static                         # a label never wraps


def test_a_huge_metric_reads_in_four_significant_digits():
    """A loss of 1e71 printed as 72 digits in the tables; small ones keep 4 decimals."""
    assert [report.value(v) for v in (0.98765, 1e71, -2e6, 123456.0, float("nan"))] == \
        ["0.9877", "1e+71", "-2e+06", "123456.0000", "nan"]


# -- the store: schema version 2 -> 3 --------------------------------------------------------

def _v2_database(path, rows):
    """A database as schema version 2 wrote it (no compile_s): rows of today's runs."""
    with Store(path) as s:
        s.add_results([], "t")
    con = sqlite3.connect(path)
    con.execute("DROP TABLE runs")
    con.execute(_V2_RUNS)
    for r in rows:
        cols = [c for c in r if c not in ("compile_s",)]
        con.execute(f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                    [json.dumps(r[c]) if isinstance(r[c], (dict, list)) else r[c]
                     for c in cols])
    con.execute("PRAGMA user_version = 2")
    con.commit()
    con.close()


_V2_RUNS = """
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    sweep TEXT NOT NULL,
    status TEXT NOT NULL,
    scheme TEXT, scheme_params TEXT, seed, depth INTEGER, width INTEGER,
    activation TEXT, lr REAL, dataset TEXT, optimizer TEXT, batch_size INTEGER,
    epochs INTEGER, loss TEXT,
    final_train_loss REAL, final_test_loss REAL, final_train_acc REAL, final_test_acc REAL,
    best_test_acc REAL, diverged INTEGER, diverged_step INTEGER,
    time_s REAL, population_time_s REAL, population_size INTEGER,
    config TEXT NOT NULL, curves TEXT, diagnostics TEXT, layer_sizes TEXT, error TEXT,
    fastinit_version TEXT, machine TEXT, created_at TEXT
)"""


def test_a_version_2_database_gains_compile_s_when_opened(tmp_path):
    old = _rows(tmp_path)
    db = tmp_path / "v2.db"
    _v2_database(db, old)
    with Store(db, readonly=True) as s:                   # read-only: read as it is
        before = s.rows()
    assert [r["id"] for r in before] == [r["id"] for r in old]
    assert {r["compile_s"] for r in before} == {None}
    assert report.timing_note(before).endswith("(stored by an older fastinit: compiling the "
                                               "kernels included).")
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0] == 2
    with Store(db) as s:                                   # for writing: migrated
        migrated = s.rows()
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    assert "compile_s" in [c[1] for c in con.execute("PRAGMA table_info(runs)")]
    assert [(r["id"], r["curves"], r["compile_s"]) for r in migrated] == \
        [(r["id"], r["curves"], None) for r in old]
    con.close()
    res = run_sweep({"name": "t", "grid": {"scheme": TWO_SPECS + ["zeros"], "seed": [0, 1, 2]},
                     "train": {"epochs": 1, "width": 8, "depth": 1}}, db)
    assert (res.skipped, res.ran) == (6, 3)               # the old runs stay finished
    with Store(db) as s:
        new = [r for r in s.rows("t") if r["seed"] == 2]
    assert len(new) == 3 and all(r["compile_s"] is not None for r in new)


# -- the install: no PyTorch for the main job ------------------------------------------------

def test_the_demo_runs_without_pytorch(tmp_path):
    code = (
        "import sys; sys.modules['torch'] = None   # import torch fails, as when not installed\n"
        "import fastinit.cli as cli\n"
        "cli.DEMO_SPEC = {**cli.DEMO_SPEC, 'grid': {'scheme': ['zeros', 'he_normal'], "
        "'seed': [0], 'depth': [1]}, 'train': {**cli.DEMO_SPEC['train'], 'epochs': 1}}\n"
        "code = cli.main(['demo', '--out', sys.argv[1]])\n"
        "assert 'torch' not in sys.modules or sys.modules['torch'] is None\n"
        "sys.exit(code)\n")
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path / "demo")],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert "runs trained in" in res.stdout and (tmp_path / "demo" / "index.html").exists()


def test_the_set_up_installs_no_gpu_stack_and_ci_installs_as_the_readme_says():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert not any(d.startswith("torch") for d in extras["dev"])   # PyPI's torch: CUDA wheels
    assert extras["torch"] == ["torch>=2.1"]
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    setup = re.search(r'^pip install -e "\.\[dev\]"', readme, re.M)
    assert setup and re.search(r'^python -m pip install --quiet (--no-compile )?-e "\.\[dev\]"$',
                               ci, re.M)
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in readme
    torch = re.search(r"^python -m pip install --quiet (--no-compile )?torch==", ci, re.M)
    assert torch and torch.start() < ci.index('-e ".[dev]"')     # the cross-checks run


def test_the_first_screen_says_what_a_newcomer_needs():
    top = "\n".join((ROOT / "README.md").read_text().splitlines()[:30])
    assert "![" in top                                           # one picture
    assert 'pip install -e ".[dev]" && fastinit demo' in top and "\npytest" in top
    assert "first run" in top and "compil" in top                # how long, and why
    assert "fastinit-demo/" in top                               # where the report lands


def test_the_demos_closing_line_reads_its_table():
    # it said "zeros and constant init stay at chance at every depth" under a table where
    # constant init reached 0.27 at 2 hidden layers
    rows = [{"scheme": s, "depth": d, "final_test_acc": a, "layer_sizes": [64, 64, 10]}
            for s, d, a in [("zeros", 2, 0.1003), ("zeros", 6, 0.1003), ("constant", 2, 0.27),
                            ("constant", 2, 0.28), ("constant", 6, 0.1003),
                            ("he_normal", 2, 0.98), ("zeros", 12, None)]]
    line = fastinit.examples.symmetric_verdict(rows)
    assert "stay at chance" not in line
    assert "at 2, 6 hidden layers: zeros 0.10, 0.10 and constant 0.28, 0.10 (chance 0.10)" \
        in line, line
    readme = (ROOT / "README.md").read_text()
    assert "constant init stay at chance" not in readme and "constant init barely learns (0.27" \
        in readme
