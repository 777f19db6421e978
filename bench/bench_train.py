"""Training throughput: fastinit vs PyTorch eager (bmm, torch.func.vmap) and JAX, same threads.

    pytest bench/bench_train.py --benchmark-enable     # pytest-benchmark tables + ratios
    python bench/bench_train.py                        # the README's tables

Cases in fastinit.benchsuite.training: one epoch of SGD, same architecture, data, batch size
and optimizer. small_b32: one [64, 64, 64, 10] network, batch 32 [>= 10x torch], one epoch a
call; small_b32_run: the same, ten epochs a call (`fastinit bench` prints a time per epoch,
fastinit.train's set-up shared by the ten, as in a user's run); medium_b128:
one [784, 256, 256, 10], batch 128 [>= 1.0x torch]; population64: 64 networks [64, 64, 64, 10],
batch 64 [>= 8x a torch loop, >= 1.25x the best batched torch]; medium_eval256: one
evaluation (loss and accuracy) of a [784, 256, 256, 10] over 4096 samples in batches of 256,
as fastinit.train runs every epoch. Also GFLOP/s against the
machine's measured single-thread sgemm, thread scaling, two threads against one with a core
busy, and time per epoch vs K, depth, width.
"""
import sys

import pytest

from fastinit.benchsuite import harness
from fastinit.benchsuite.training import (busy, busy_markdown, case_flops, cases, epochs_of,
                                          main, make)

TABLE = cases(harness.SMOKE)    # quick cases when run untimed (bench/conftest.py)
PAIRS = [(c, i) for c, (_, impls) in TABLE.items() for i in impls]


@pytest.mark.parametrize("impl_case", PAIRS, ids=[f"{i}-{c}" for c, i in PAIRS])
def test_train(benchmark, threads, impl_case):
    case, impl = impl_case
    fn = make(TABLE, case, impl)
    if fn is None:
        pytest.skip(f"{impl} is not installed")
    fn()   # compile and warm up outside the timed region
    c = TABLE[case][0]
    benchmark.group = f"{case} threads={threads}"
    benchmark.extra_info.update(threads=threads, case=case, implementation=impl,
                                samples=c["n"] * c["K"] * epochs_of(c),
                                flops=case_flops(c) * epochs_of(c))
    benchmark(fn)


@pytest.mark.skipif(harness.THREADS[-1] < 2, reason="needs 2 Numba threads")
def test_busy_core():
    """Two threads against one, cores free and one core busy with another process (the
    numbers go in `fastinit bench`; here the case runs once, so it cannot rot)."""
    data = busy(quick=True, repeats=1, min_seconds=0.0)      # a smoke test: one timing each
    assert set(data) == set(cases(True)) and all(r > 0 for pair in data.values() for r in pair)
    assert "one core busy" in busy_markdown(data)


if __name__ == "__main__":
    print(f"Machine: {harness.machine()}\n")
    print(main([int(v) for v in sys.argv[1].split(",")] if len(sys.argv) > 1 else None)[0])
