"""Sweep throughput: 256 runs (8 schemes x 8 seeds x 4 depths, width 64, digits, 10 epochs).

    pytest bench/bench_sweep.py --benchmark-enable
    python bench/bench_sweep.py     # runs/s at 1 and 2 threads, time inside kernels, a profile

Targets: >= 90% of the wall time inside compiled kernels; two threads >= 1.7x one.
"""
import math
import sys

from fastinit.benchsuite import harness
from fastinit.benchsuite.sweeps import main, spec, sweep_once, warm


def test_sweep(benchmark, threads):
    sp = spec(harness.SMOKE)    # 64 runs when run untimed (bench/conftest.py), else 256
    if harness.SMOKE:           # untimed, it only has to run: one epoch each
        sp = {**sp, "train": {**sp["train"], "epochs": 1}}
    runs = math.prod(len(v) for v in sp["grid"].values())
    warm(sp)   # compile outside the timed region
    benchmark.group = f"sweep{runs} threads={threads}"
    res = benchmark.pedantic(sweep_once, args=(sp, threads), rounds=1, iterations=1)
    benchmark.extra_info.update(threads=threads, runs=res.ran,
                                runs_per_second=res.runs_per_second,
                                kernel_fraction=res.kernel_seconds / res.seconds)
    assert res.ran == runs and res.failed == 0


if __name__ == "__main__":
    print(f"Machine: {harness.machine()}\n")
    print(main([int(v) for v in sys.argv[1].split(",")] if len(sys.argv) > 1 else None)[0])
