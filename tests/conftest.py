"""Shared fixtures, and a guard over the whole run: every kernel compiled in this process has
one specialisation per argument types, never a second copy for a literal or unsigned argument
(specialisations.py)."""
import numpy as np
import pytest

from specialisations import duplicate_specialisations


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dtype(request):
    return request.param


def pytest_sessionfinish(session, exitstatus):
    found = duplicate_specialisations()
    if found:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        for line in ["kernels compiled twice for one argument type (pass np.int64 values, "
                     "not literals or prange indices):"] + found:
            (reporter.write_line if reporter else print)(line)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
