"""fastinit.warmup: the kernels a cache lacks compile in parallel processes, this process loads
them, and a sweep does this before it trains."""
import logging
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from fastinit import compilelog, warmup
from test_newcomer import _cache_without, _run

# the start of a child process's script: ``compiled`` lists the kernels it compiles itself
COMPILED_HERE = """
import sys
from numba.core import event
compiled = []
class L(event.Listener):
    def on_start(self, ev):
        compiled.append(ev.data["dispatcher"].py_func.__qualname__)
    def on_end(self, ev):
        pass
event.register("numba:compile", L())
"""

# a child process that runs fastinit.warmup and prints what it compiled itself and what the
# cache lacks before and after
PROBE = COMPILED_HERE + """
import fastinit.warmup as w
print(sorted(w.missing()))
w.warmup(jobs=int(sys.argv[1]))
print(sorted(set(compiled)))
print(sorted(w.missing()))
"""


def _probe(cache, jobs):
    res = _run([sys.executable, "-c", PROBE, str(jobs)], cache)
    assert res.returncode == 0, res.stderr
    return [eval(line) for line in res.stdout.splitlines()]


@pytest.mark.slow
def test_missing_kernels_compile_in_other_processes_and_load_here(tmp_path):
    cache = _cache_without(tmp_path / "numba", "sampling.sparse_zero")
    before, here, after = _probe(cache, 2)
    assert before == [("sampling", "float32"), ("sampling", "float64")]
    assert here == []              # both dtypes compiled in two other processes, loaded here
    assert after == []
    _cache_without(cache, "sampling.sparse_zero")
    cli = _run([sys.executable, "-m", "fastinit", "warmup", "--jobs", "2"], cache)
    assert cli.returncode == 0, cli.stderr
    assert cli.stderr.count(compilelog.COMPILING) == 1, cli.stderr
    assert cli.stderr.count("fastinit kernels compiled in ") == 1, cli.stderr


@pytest.mark.slow
def test_one_job_compiles_here(tmp_path):
    cache = _cache_without(tmp_path / "numba", "sampling.sparse_zero")
    before, here, after = _probe(cache, 1)
    assert before == [("sampling", "float32"), ("sampling", "float64")]
    assert "sparse_zero" in here and after == []


def test_a_warm_cache_needs_nothing():
    warmup.warmup(jobs=1)
    assert warmup.missing() == []
    with warmup.ahead(warmup.DTYPES) as compiling:
        assert compiling is None


def test_nothing_compiles_ahead_without_an_idle_core(monkeypatch):
    monkeypatch.setattr(warmup, "missing", lambda *a: [("training", "float32")])
    monkeypatch.setattr(warmup, "_cores", lambda: 2)
    monkeypatch.setattr(warmup, "_idle_cores", lambda: 1.2)      # one busy beside this one
    with warmup.ahead() as compiling:
        assert compiling is None


def test_idle_cores_are_counted_from_this_process_s_cores():
    idle = warmup._idle_cores(0.05)
    assert 0.0 <= idle <= len(os.sched_getaffinity(0)) + 1e-9


def test_groups_spread_longest_first_onto_the_least_loaded_process():
    tasks = [(g, d) for g in warmup.GROUPS for d in warmup.DTYPES]
    shares = warmup._shares(tasks, 2)
    assert sorted(t for s in shares for t in s) == sorted(tasks)
    longest = max(warmup.GROUPS, key=lambda g: warmup.GROUPS[g][2])     # the profiler's
    assert [s[0][0] for s in shares] == [longest, longest]
    assert warmup._shares(tasks[:1], 4) == [tasks[:1]]


# a sweep in a child process whose cache lacks a training and an evaluation kernel: which of
# them this process compiled itself
SWEEP = COMPILED_HERE + """
import fastinit.warmup
from fastinit.sweep import run_sweep
fastinit.warmup._idle_core = lambda: True      # however busy the tests keep this machine
res = run_sweep({"name": "w", "grid": {"seed": [0]}, "train": {"epochs": 1, "width": 8, "depth": 1}},
                sys.argv[1])
print(res.ran, res.failed, "train_epoch" in compiled, "layer_moments" in compiled)
"""


@pytest.mark.slow
def test_a_sweep_compiles_training_in_another_process_and_evaluation_here(tmp_path):
    cache = _cache_without(tmp_path / "numba", "stats.layer_moments")
    _cache_without(cache, "train.train_epoch")
    res = _run([sys.executable, "-c", SWEEP, str(tmp_path / "w.db")], cache)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["1", "0", "False", "True"]


BAD_SPEC = """
import multiprocessing
import fastinit.warmup
from fastinit.sweep import SpecError, run_sweep
fastinit.warmup._idle_core = lambda: True
try:
    run_sweep({"name": "w", "grid": {"dataset": ["no_such_data"]}}, "w.db")
except SpecError as e:
    print("SpecError", multiprocessing.active_children())
"""


def test_a_spec_that_fails_its_checks_stops_the_compiling_processes(tmp_path):
    cache = _cache_without(tmp_path / "numba", "train.train_epoch")
    res = _run([sys.executable, "-c", BAD_SPEC], cache, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "SpecError []", res.stdout


def test_time_compiling_elsewhere_is_announced_and_kept_out_of_the_work(caplog):
    with caplog.at_level(logging.INFO, logger="fastinit"):
        with compilelog.announcing() as block:
            with compilelog.elsewhere() as done:
                time.sleep(0.2)
    assert done.seconds >= 0.2
    assert block.ready >= 0.2 and block.compiled >= 0.2
    said = [r.getMessage() for r in caplog.records]
    assert said[0] == compilelog.COMPILING
    assert said[1].startswith(f"fastinit kernels compiled in {done.seconds:.1f} s")


def test_warmup_jobs_must_be_positive():
    res = subprocess.run([sys.executable, "-m", "fastinit", "warmup", "--jobs", "0"],
                         capture_output=True, text=True)
    assert res.returncode == 2
    assert "--jobs: must be a positive integer. Got '0'." in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_group_runs_in_this_process(dtype):
    for name in warmup.GROUPS:
        assert warmup.run_group(name, np.dtype(dtype).name) >= 0.0
