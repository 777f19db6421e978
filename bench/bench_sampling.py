"""Sampling throughput: fastinit vs NumPy vs torch.nn.init, side by side, same thread count.

    pytest bench/bench_sampling.py --benchmark-enable    # pytest-benchmark tables + ratios
    python bench/bench_sampling.py                       # the README's markdown table

The cases live in fastinit.benchsuite.sampling (one table for pytest, this script and
`fastinit bench`). Targets: normal f32 4096^2 >= 3x torch normal_ and >= 5x NumPy, two threads
>= 1.7x one; truncated normal >= 10x torch; 10,000 He-normal 64x64 >= 3x a torch loop; 1,000
orthogonal 64x64 >= 3x a torch loop, one 1024^2 no slower than torch.
"""
import json
import subprocess
import sys

import pytest

from fastinit.benchsuite import harness
from fastinit.benchsuite.sampling import cases, main, startup_times

IMPLEMENTATIONS = cases(harness.SMOKE)    # quick cases when run untimed (bench/conftest.py)
PAIRS = [(case, impl) for case, impls in IMPLEMENTATIONS.items() for impl in impls]


@pytest.mark.parametrize("impl_case", PAIRS, ids=[f"{i}-{c}" for c, i in PAIRS])
def test_sampling(benchmark, threads, impl_case):
    case, impl = impl_case
    fn = IMPLEMENTATIONS[case][impl]()
    if fn is None:
        pytest.skip(f"{impl} is not installed")
    fn()  # JIT compile and first touch, outside the timed region
    benchmark.group = f"{case} threads={threads}"
    benchmark.extra_info.update(threads=threads, case=case, implementation=impl)
    benchmark(fn)


_IMPORT_BUDGET = """
import json, sys, numba
import fastinit
from fastinit import kernels
compiled = sorted(f"{m}.{a}" for m in dir(kernels) for a in dir(getattr(kernels, m))
                  if isinstance(getattr(getattr(kernels, m), a), numba.core.registry.CPUDispatcher)
                  and getattr(getattr(kernels, m), a).signatures)
extras = sorted(m for m in ("torch", "matplotlib", "pandas", "pyarrow", "plotly", "jax",
                            "distributed", "tqdm", "threadpoolctl") if m in sys.modules)
print(json.dumps({"compiled": compiled, "extras": extras}))
"""


def test_startup(benchmark):
    """The import budget: `import fastinit` compiles no kernel and imports no optional extra
    (PyTorch, matplotlib, Dask, ...); times (import, first he_normal call with a warm cache)
    are recorded, their targets 0.5 s and 1 s checked by `fastinit bench`, not here."""
    res = subprocess.run([sys.executable, "-c", _IMPORT_BUDGET], capture_output=True,
                         text=True, check=True)
    budget = json.loads(res.stdout.strip().splitlines()[-1])
    assert budget == {"compiled": [], "extras": []}, budget
    imp, first = benchmark.pedantic(startup_times, args=(1 if harness.SMOKE else 5,), rounds=1,
                                    iterations=1)
    benchmark.extra_info.update(import_seconds=imp, first_call_seconds=first)


if __name__ == "__main__":
    print(f"Machine: {harness.machine()}\n")
    print(main([int(x) for x in sys.argv[1].split(",")] if len(sys.argv) > 1 else None)[0])
