"""The GEMM micro-kernel alone, per register blocking: GFLOP/s of fastinit's ``gemm`` on
operands that stay in cache, to tell the kernel's own speed from how an epoch feeds it.

    python bench/gemm_blocking.py                     # 64x64x64 and 96x256x256, MR 6, 8, 12
    python bench/gemm_blocking.py 64x64x64 --mr 6,8   # chosen shapes (M x N x K) and rows

The blocking is fixed when a kernel compiles (kernels/gemm.py: VBYTES, MR), so each blocking
runs in a process of its own with an empty kernel cache; float32, 1 thread, best of 7 timed
loops after a compiled warm-up call. Compare with the single-thread sgemm peak `fastinit bench`
prints (1024^3, BLAS held to one thread).
"""
import argparse
import os
import subprocess
import sys
import tempfile

CHILD = """
import sys, time
import numba, numpy as np
import fastinit.kernels.gemm as g
g.MR = int(sys.argv[1])                       # before anything compiles
m, n, k = (int(v) for v in sys.argv[2].split("x"))
reps = max(1, int(2e9 // (2 * m * n * k)))    # about 2 GFLOP a loop

@numba.njit
def loop(c, a, b, m, n, k, reps):
    for _ in range(reps):
        g.gemm(c, 0, n, a, 0, k, 1, b, 0, n, m, n, k, 0)

rng = np.random.default_rng(0)
a = rng.standard_normal(m * k).astype(np.float32)
b = rng.standard_normal(k * n).astype(np.float32)
c = np.zeros(m * n, np.float32)
i64 = np.int64
loop(c, a, b, i64(m), i64(n), i64(k), i64(1))
best = float("inf")
for _ in range(7):
    t = time.perf_counter()
    loop(c, a, b, i64(m), i64(n), i64(k), i64(reps))
    best = min(best, time.perf_counter() - t)
print(f"{sys.argv[2]:>12}  MR {g.MR:>2}  {2 * m * n * k * reps / best / 1e9:7.1f} GFLOP/s")
"""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("shapes", nargs="*", default=["64x64x64", "96x256x256"],
                    help="M x N x K; N a multiple of 16")
    ap.add_argument("--mr", default="6,8,12", help="rows per block to try (default 6,8,12)")
    args = ap.parse_args(argv)
    for shape in args.shapes:
        for mr in args.mr.split(","):
            with tempfile.TemporaryDirectory() as cache:
                env = dict(os.environ, NUMBA_CACHE_DIR=cache, NUMBA_NUM_THREADS="1")
                subprocess.run([sys.executable, "-c", CHILD, mr, shape], env=env, check=True)


if __name__ == "__main__":
    main()
