"""Shared fixtures, and a guard over the whole run: every kernel compiled in this process has
one specialisation per argument types, never a second copy for a literal or unsigned argument
(each copy costs its compile time again; kernels/dense.py says how to avoid them)."""
import importlib
import pkgutil

import numpy as np
import pytest
from numba.core import types
from numba.core.registry import CPUDispatcher

import fastinit.kernels

# kernels whose literal arguments are deliberate: the GEMM micro-kernel's unit strides, known at
# compile time, let LLVM vectorise its loads (one specialisation per layout, not per value)
LITERAL_OK = {"gemm", "gemm_rows", "_block"}


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dtype(request):
    return request.param


def _plain(t):
    t = types.unliteral(t)
    return types.int64 if t == types.uint64 else t


def duplicates(name: str, dispatcher) -> list[str]:
    """'name: sig1 | sig2' for each two signatures of ``dispatcher`` that differ only by
    literal or unsigned-vs-signed integer arguments."""
    found, seen = [], {}
    for sig in dispatcher.signatures:
        key = tuple(_plain(t) for t in sig)
        if name.rpartition(".")[2] in LITERAL_OK:
            key = (key, tuple(isinstance(t, types.Literal) for t in sig))
        if key in seen:
            found.append(f"{name}: {seen[key]} | {sig}")
        seen.setdefault(key, sig)
    return found


def duplicate_specialisations() -> list[str]:
    """duplicates() of every fastinit kernel compiled in this process."""
    found = []
    for info in pkgutil.iter_modules(fastinit.kernels.__path__):
        module = importlib.import_module(f"fastinit.kernels.{info.name}")
        for name, obj in vars(module).items():
            if isinstance(obj, CPUDispatcher) and obj.py_func.__module__ == module.__name__:
                found += duplicates(f"{info.name}.{name}", obj)
    return found


def pytest_sessionfinish(session, exitstatus):
    found = duplicate_specialisations()
    if found:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        for line in ["kernels compiled twice for one argument type (pass np.int64 values, "
                     "not literals or prange indices):"] + found:
            (reporter.write_line if reporter else print)(line)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
