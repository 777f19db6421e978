"""One orthogonal matrix cut into runs of rows: milliseconds by run count, 1 and 2 threads.

    python bench/orthogonal_runs.py            # 512^2 .. 2048^2 (add 4096 as an argument)

kernels.orthogonal.orthogonal_fill computes a member's rows in runs (each run the part of the
reflectors' product it needs, from reflectors prepared once for all its runs; the same bits
however cut); fastinit.spread.row_runs picks how many. Each row of the table is one matrix on 1 thread at 1, 2, 4, ... runs, and on 2 threads
at the count row_runs picks; median of repeats, compile outside the timed region. The rule's
numbers (runs of about 256 rows) come from this table.
"""
import sys

import numpy as np

from fastinit import spread
from fastinit.benchsuite import harness
from fastinit.training import numba_threads

KEY, STREAM, GAIN = np.array([1], np.uint64), np.array([2], np.uint64), np.ones(1)


def seconds(out, runs, threads):
    with numba_threads(threads):
        def call():
            spread.orthonormal_rows(out, KEY, STREAM, GAIN, runs)
        call()                                   # compile outside the timed region
        return harness.median_time(call, repeats=3, min_seconds=0.3)


def main(sizes):
    counts = (1, 2, 4, 8, 16, 32)
    print("| p = q | " + " | ".join(f"{r} run{'s' * (r > 1)}, 1 thread" for r in counts)
          + " | row_runs, 2 threads |")
    print("|---|" + "---|" * (len(counts) + 1))
    for p in sizes:
        out = np.empty((1, p, p), np.float32)
        ms = [f"{seconds(out, r, 1) * 1e3:.1f}" if r <= p // 16 else "" for r in counts]
        two = spread.row_runs(1, p, p, 2)
        print(f"| {p} | " + " | ".join(ms) + f" | {seconds(out, two, 2) * 1e3:.1f} ({two}) |",
              flush=True)


if __name__ == "__main__":
    main([512, 1024, 2048] + [int(v) for v in sys.argv[1:]])
