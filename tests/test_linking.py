"""A helper's machine code is made once, in its own library; a kernel calls it there, also
when loaded from the on-disk cache in another process (kernels/_linking.py)."""
import importlib.util
import os
import pathlib
import re
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest

import fastinit
import reference
from fastinit import kernels
from fastinit.kernels import _config, _linking

CHAIN = textwrap.dedent("""
    import math
    from fastinit.kernels._config import jit, kernel

    @jit
    def leaf(x):                      # far over LLVM's inlining threshold on any CPU: a call
        s = 0.0
        for i in range(x.size):
            v = x[i]
            if v > 1.0:
                s += math.sqrt(v) * math.log(v)
            elif v < -1.0:
                s -= math.atan(v) / v
            else:
                s += math.exp(v) * v
        for i in range(x.size - 1):
            v = x[i] * x[i + 1]
            if v > 0.5:
                s += math.cosh(v) / (1.0 + v)
            elif v < -0.5:
                s -= math.sinh(v) * math.tan(v * 0.1)
            else:
                s += math.log1p(v * v) - math.expm1(v)
        for i in range(x.size - 2):
            v = x[i] - x[i + 2]
            if v > 0.0:
                s += math.atan2(v, 1.0 + s * s) * math.erf(v)
            else:
                s -= math.hypot(v, s) * math.erfc(-v)
        return s

    @kernel
    def entry(x):
        return leaf(x) + 1.0
""")

CHILD = textwrap.dedent("""
    import sys
    import numba, numpy as np
    for i in range(int(sys.argv[2])):    # compiles that move Numba's per-process symbol count
        numba.njit(lambda: 1.0)()
    sys.path.insert(0, sys.argv[1])
    import chain
    x = np.linspace(-3.0, 3.0, 101)
    value = chain.entry(x)
    (args,) = chain.entry.signatures
    needs = chain.entry.overloads[args].library.fastinit_needs
    print(repr(value), sum(chain.entry.stats.cache_hits.values()),
          sum(chain.entry.stats.cache_misses.values()),
          " ".join(f"{qualname}:{name}" for name, _, qualname, _ in needs))
""")


def _expected(folder: pathlib.Path) -> float:
    """entry's value as plain Python runs it: chain.py's leaf, uncompiled."""
    spec = importlib.util.spec_from_file_location("chain_plain", folder / "chain.py")
    chain = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(chain)                    # decorates, compiles nothing
    return chain.leaf.py_func(np.linspace(-3.0, 3.0, 101)) + 1.0


def _run(folder: pathlib.Path, cache: pathlib.Path, bump: int):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    res = subprocess.run([sys.executable, "-c", CHILD, str(folder), str(bump)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr        # a call to an undefined symbol: a crash
    value, hits, misses, needs = res.stdout.split(maxsplit=3)
    assert float(value) == _expected(folder)
    return int(hits), int(misses), dict(n.split(":", 1) for n in needs.split())


@pytest.mark.slow
def test_a_cached_kernel_loads_the_helpers_it_calls_or_compiles_again(tmp_path):
    (tmp_path / "chain.py").write_text(CHAIN)
    cache = tmp_path / "cache"
    hits, misses, needs = _run(tmp_path, cache, 0)
    assert (hits, misses) == (0, 1) and "leaf" in needs, needs      # leaf stayed a call
    assert _run(tmp_path, cache, 0) == (1, 0, needs)                # loaded, leaf with it
    for f in cache.rglob("chain.leaf-*"):                            # leaf compiles again,
        f.unlink()                                                  # named by a later count:
    hits, misses, again = _run(tmp_path, cache, 7)                  # entry compiles again
    assert (hits, misses) == (0, 1) and again["leaf"] != needs["leaf"], (needs, again)
    assert _run(tmp_path, cache, 0) == (1, 0, again)


def test_kernels_call_their_big_helpers_in_the_helpers_own_libraries():
    """train_epoch's and evaluate's libraries hold no copy of forward's or backward's code."""
    x = np.random.default_rng(0).standard_normal((32, 5))
    net = fastinit.MLP([5, 7, 3], n=2, seed=0, dtype=np.float64)
    fastinit.train(net, (x, np.arange(32) % 3), epochs=1, batch_size=16)
    for kernel, helpers in ((kernels.train.train_epoch, {"forward", "backward"}),
                            (kernels.train.evaluate, {"forward"})):
        called = {qualname for cres in kernel.overloads.values()
                  for _, module, qualname, _ in cres.library.fastinit_needs
                  if module == kernels.dense.__name__}
        assert helpers <= called, (kernel, called)


def test_a_need_that_cannot_be_loaded_refuses_the_cache_entry():
    """Its module gone (renamed, a script's __mp_main__): the kernel compiles again, no error."""
    engine = kernels.train.train_epoch.targetctx.codegen()._engine
    assert _linking._load([("_ZN7nowhere1fE", "no_such_module_of_fastinit", "f", ())],
                          engine) is False


def test_needs_that_call_each_other_are_loaded_once(monkeypatch):
    """Helpers calling each other (A needs B, B needs A) load without recursing forever."""
    engine = kernels.train.train_epoch.targetctx.codegen()._engine
    need = ("_ZN7nowhere1aE", kernels.dense.__name__, "a_twin", ())
    calls = []

    class Twin:                           # its load asks for itself again, as A's B would
        def compile(self, args):
            calls.append(args)
            assert _linking._load([need], engine) is False

    monkeypatch.setitem(_linking._dispatchers, need[1:3], Twin())
    assert _linking._load([need], engine) is False and len(calls) == 1


def _allocates(n):
    return np.zeros(n).sum() + 1.0


def _calls_a_kernel(n):
    return ALLOCATES(n) * 2.0


ALLOCATES = _config.kernel(_allocates)
CALLS_A_KERNEL = _config.jit(_calls_a_kernel)


def test_a_kernel_first_compiled_from_a_helper_keeps_reference_counting():
    """Numba gives a function first compiled inside another compile that compile's reference
    counting: a kernel first called from a helper (which has none) would not allocate."""
    from numba.core.caching import NullCache
    for dispatcher in (ALLOCATES, CALLS_A_KERNEL):
        dispatcher._cache = NullCache()
    assert reference.call(CALLS_A_KERNEL, np.int64(3)) == 2.0
    assert ALLOCATES(np.int64(4)) == 1.0


def _scale(x):
    for i in range(x.size):
        x[i] = x[i] * np.float32(2.0) + np.float32(1.0)


def _scale_rows(x):
    for r in numba.prange(x.shape[0]):
        for i in range(x.shape[1]):
            x[r, i] = x[r, i] * np.float32(2.0) + np.float32(1.0)


SCALE_KERNEL = _config.kernel(_scale)
SCALE_ROWS = _config.pkernel(_scale_rows)    # its prange body: a library of Numba's naming
SCALE_PLAIN = numba.njit(_scale)          # a user's own code, in the same process


def test_kernels_vectorise_at_full_width_and_a_users_code_as_numba_does():
    """A fastinit kernel asks LLVM for 512-bit loops (kernels/_linking.py FULL_WIDTH), which
    LLVM's tuning of Intel's AVX-512 server CPUs otherwise halves; a user's njit function in
    the same process keeps LLVM's choice; a prange body of a kernel asks as its kernel does
    (its library, named by Numba, got nothing)."""
    from numba.core.caching import NullCache
    x, rows = np.zeros(1000, np.float32), np.zeros((4, 1000), np.float32)
    for dispatcher, arg in ((SCALE_KERNEL, x), (SCALE_ROWS, rows), (SCALE_PLAIN, x)):
        dispatcher._cache = NullCache()             # compiled here: its IR can be inspected
        dispatcher(arg)
    ir_kernel, = SCALE_KERNEL.inspect_llvm().values()
    ir_plain, = SCALE_PLAIN.inspect_llvm().values()
    assert _linking.FULL_WIDTH in ir_kernel and _linking.FULL_WIDTH not in ir_plain
    assert (x == 3.0).all() and (rows == 1.0).all()           # x ran twice, rows once
    if "+avx512f" in SCALE_KERNEL.targetctx.codegen()._get_host_cpu_features().split(","):
        wide = lambda d: re.search(r"\n\s+vaddps\s+[^\n]*zmm", *d.inspect_asm().values())
        assert wide(SCALE_KERNEL), "the kernel's loop is not 512 bits wide"
        assert wide(SCALE_ROWS), "the kernel's prange body is not 512 bits wide"
