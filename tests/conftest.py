"""Shared fixtures, and a guard over the whole run: every kernel compiled in this process has
one specialisation per argument types, never a second copy for a literal or unsigned argument
(specialisations.py)."""
import numpy as np
import pytest

from specialisations import duplicate_specialisations


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dtype(request):
    return request.param


@pytest.fixture(scope="session", autouse=True)
def _one_specialisation_per_type():
    """After the last test of this process (each pytest-xdist worker is one): the kernels it
    compiled. A failure here is an error at the teardown of that last test, which fails the run
    with or without xdist (an exit status set at session end would be lost in a worker)."""
    yield
    found = duplicate_specialisations()
    if found:
        pytest.fail("\n".join(["kernels compiled twice for one argument type (pass np.int64 "
                               "values, not literals or prange indices):"] + found),
                    pytrace=False)
