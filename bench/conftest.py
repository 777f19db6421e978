"""Benchmark harness shared by every bench/bench_<family>.py suite.

Each suite declares one table of implementations per case; every implementation lands in one
pytest-benchmark group so peers are compared side by side. Thread counts are set for Numba and
PyTorch alike and recorded in ``extra_info``; JIT compilation happens in the warm-up call,
outside the timed region. Without pytest-benchmark's timing (``--benchmark-disable``, the
project's default) each suite takes its quick cases and runs each once, as a smoke test;
``--benchmark-enable`` times the full-size cases.
"""
import pytest

from fastinit.benchsuite import harness


def pytest_configure(config):
    harness.SMOKE = not config.getoption("benchmark_enable", False)


@pytest.fixture(params=harness.THREADS, ids=lambda t: f"threads{t}")
def threads(request):
    prev = harness.set_threads(request.param)
    yield request.param
    harness.set_threads(prev)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    session = getattr(config, "_benchmarksession", None)
    if session is None or session.disabled or not session.benchmarks:
        return
    rows = [(b.group, b.name, b.stats.median) for b in session.benchmarks if b.stats]
    table = harness.ratio_table(rows)
    if table:
        terminalreporter.write_sep("-", "fastinit speed-up over each peer (median time ratio)")
        terminalreporter.write_line(table)
