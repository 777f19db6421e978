"""Cold start: a workload in a new process with an empty kernel cache, then with a warm one.

    fastinit bench                  # the table: one train and fastinit demo, cold and warm
    pytest bench/bench_coldstart.py # untimed: the same code on this process's (warm) cache

Cases in fastinit.benchsuite.coldstart. Target (issue: speed): `fastinit demo` done in <= 30 s
on 2 cores with an empty cache.
"""
import os

import pytest

from fastinit import kernels
from fastinit.benchsuite import coldstart, harness


def test_coldstart(benchmark):
    base = kernels._config.CACHE_DIR
    if base is None:
        pytest.skip("no writable kernel cache directory")
    # untimed, the run uses this process's cache (warm: seconds, not minutes); timed, an empty one
    cache = os.path.dirname(base) if harness.SMOKE else None
    text, rows = benchmark.pedantic(coldstart.main, args=(True, cache), rounds=1, iterations=1)
    benchmark.extra_info.update(rows[0])
    assert rows[0]["warm_compiling"] == 0, rows       # the second process compiles nothing
    assert "| one fastinit.train" in text
