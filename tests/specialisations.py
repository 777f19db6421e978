"""Kernels compiled twice for one argument type: a literal or an unsigned argument makes Numba
compile a callee again (its whole compile time again; kernels/dense.py says how to avoid it).
tests/conftest.py checks every kernel compiled in a test session with this."""
import importlib
import pkgutil

from numba.core import types
from numba.core.registry import CPUDispatcher

import fastinit.kernels

# kernels whose literal arguments are deliberate: the GEMM micro-kernels' unit strides and their
# accumulate flag, known at compile time, let LLVM vectorise the loads and drop a branch (one
# specialisation per literal value; an unsigned index is still a mistake there)
LITERAL_OK = {"gemm", "gemm_rows", "_block", "gemm_act", "_block_act", "gemm_grad",
              "_block_grad", "_rows_packed", "_act_packed", "_grad_packed"}


def _plain(t):
    t = types.unliteral(t)
    return types.int64 if t == types.uint64 else t


def duplicates(name: str, dispatcher) -> list[str]:
    """'name: sig1 | sig2' for each two signatures of ``dispatcher`` that differ only by
    literal or unsigned-vs-signed integer arguments."""
    found, seen = [], {}
    for sig in dispatcher.signatures:
        deliberate = name.rpartition(".")[2] in LITERAL_OK     # one copy per literal value
        key = tuple(t if deliberate and isinstance(t, types.Literal) else _plain(t)
                    for t in sig)
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
