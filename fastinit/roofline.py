"""The roofline of this machine and of a training epoch's parts: what the machine can compute
and move per second, and what each part computes and moves.

    attainable GFLOP/s = min(peak x threads, intensity x bandwidth)    (Williams, Waterman and
                                                                        Patterson, CACM 2009)

``peak``: the honest single-thread GEMM rate (fastinit.benchsuite.peak.gemm_peak: NumPy's
BLAS or PyTorch, n = 1024, every BLAS and OpenMP pool limited to one thread and checked; an
unchecked peak gives no "% of peak"). ``bandwidth``: a STREAM triad a = b + s c (McCalpin,
1995; 24 bytes per element) compiled with Numba, on arrays of 32 MB each (memory) and on arrays
that fit in the L2 cache (cache), at each thread count. A part whose intensity (flop per byte
it must move) lies below the ridge (peak / bandwidth) is memory-bound, else compute-bound; a
part whose working set fits in L2 is held to the cache's bandwidth.

Work per epoch (``work``): GEMM flops as executed (2 M N K, the padded batch columns included);
elsewhere nominal flops, one per arithmetic operation and a transcendental (exp, tanh) as one,
so the elementwise passes, the loss and the optimizer are lower bounds; bytes: the least
traffic a part makes, each array it touches read or written once per use.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numba
import numpy as np

from .benchsuite.peak import Peak, gemm_peak
from .kernels import profile as replay
from .kernels.gemm import padded
from .store import machine as machine_name
from .training import numba_threads

PARTS = ("gemm_forward", "gemm_dw", "gemm_dx", "transposes", "elementwise", "normalization",
         "loss", "optimizer")
MEMORY_BYTES = 32 * 2 ** 20          # per triad array: far beyond any L3 slice of one core
# nominal flops and bytes (in units of the parameters' size) per parameter and step
OPTIMIZER_WORK = {"sgd": (3, 4), "momentum": (5, 6), "nesterov": (6, 6), "adam": (13, 8),
                  "adamw": (14, 8)}
LOSS_WORK = {"cross_entropy": (6, 6), "mse": (6, 5), "mse_sum": (6, 5), "bce": (8, 5)}
# per element of a normalized Z, forward + backward: statistics, normalize, affine; the
# gradient's two sums and its formula (norm.py)
NORM_WORK = (18, 10)


def cores() -> int:
    """The cores this process may run on (its CPU affinity)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:             # not Linux
        return os.cpu_count() or 1


def l2_bytes() -> int:
    """One core's L2 cache size from sysfs (Linux), else 1 MiB."""
    try:
        with open("/sys/devices/system/cpu/cpu0/cache/index2/size") as f:
            text = f.read().strip().upper()
        scale = {"K": 2 ** 10, "M": 2 ** 20}.get(text[-1], 1)
        return int(text.rstrip("KM")) * scale
    except (OSError, ValueError, IndexError):
        return 2 ** 20


@dataclass
class Machine:
    """What this machine can do: its CPU, usable cores, Numba's thread ceiling and layer, the
    single-thread GEMM peak per dtype name, and triad bandwidths (GB/s) per thread count."""
    cpu: str
    cores: int
    numba_threads: int
    threading_layer: str
    l2: int
    peak: dict = field(default_factory=dict)         # dtype name -> Peak
    memory: dict = field(default_factory=dict)       # threads -> GB/s, arrays of 32 MB
    cache: dict = field(default_factory=dict)        # threads -> GB/s, arrays in L2

    def to_dict(self) -> dict:
        return {"cpu": self.cpu, "cores": self.cores, "numba_threads": self.numba_threads,
                "threading_layer": self.threading_layer, "l2_bytes": self.l2,
                "peak": {k: p._asdict() for k, p in self.peak.items()},
                "memory_bandwidth": self.memory, "cache_bandwidth": self.cache}


def _triad(n: int, threads: int, reps: int, calls: int) -> float:
    """Best triad bandwidth (GB/s) on three float64 arrays of n values."""
    a, b, c = (np.full(n, v) for v in (0.0, 1.0, 2.0))
    best = np.inf
    with numba_threads(threads):
        replay.triad(a, b, c, 0.5, 1)                  # compile or load, first touch
        for _ in range(calls):
            t0 = time.perf_counter()
            replay.triad(a, b, c, 0.5, reps)
            best = min(best, time.perf_counter() - t0)
    return 24 * n * reps / best / 1e9


def measure(threads, dtypes=("float32",)) -> Machine:
    """The machine's peak for each dtype and its bandwidths at each thread count (a second or
    two: the peak is 10 GEMMs of 1024^3, each triad a handful of passes)."""
    numba.get_num_threads()                            # starts the layer, so it has a name
    m = Machine(machine_name(), cores(), numba.config.NUMBA_NUM_THREADS,
                numba.threading_layer(), l2_bytes())
    for name in dict.fromkeys(dtypes):
        m.peak[name] = gemm_peak(np.dtype(name))
    for t in threads:
        m.memory[t] = _triad(MEMORY_BYTES // 8, t, 1, 5)
        m.cache[t] = _triad(t * m.l2 // 48, t, 200, 3)
    return m


def work(arch, batch: int, n: int, steps: int, itemsize: int, loss: str, optimizer: str,
         params: int, dropout) -> dict:
    """{part: (flops, bytes)} of ``steps`` training steps of every member (see the module
    docstring): layer shapes and norms from ``arch``, batches of ``batch`` of ``n`` samples,
    ``dropout`` the members' rates."""
    dims = [int(d) for d in arch.dims]
    ld = [int(v) for v in arch.ld]
    skip, bias = [int(s) for s in arch.skip], [int(b) >= 0 for b in arch.boff]
    L, bp, dl = len(dims) - 1, int(padded(batch)), dims[-1]
    total = {p: np.zeros(2) for p in PARTS}
    members = len(dropout)
    drop = float(np.mean(np.asarray(dropout) > 0))
    normed = [int(c) != 0 for c in arch.norm]
    for s in range(steps):
        nb = min(batch, n - s * batch)
        w = {p: np.zeros(2) for p in PARTS}
        w["transposes"] += (0, nb * dims[0] + 2 * nb * ld[0] + dims[0] * bp)
        for l in range(L):
            din, dout, ldl = dims[l], dims[l + 1], ld[l]
            zn, an = dout * bp, din * bp
            w["gemm_forward"] += (2 * dout * din * bp, dout * ldl + an + zn)
            w["gemm_dw"] += (2 * dout * ldl * nb, dout * nb + nb * ldl + dout * ldl)
            if l > 0:
                w["gemm_dx"] += (2 * din * bp * dout, dout * ldl + zn + an)
                w["transposes"] += (0, din * nb + nb * ldl)
                w["elementwise"] += (2 * an + 4 * drop * an, 4 * an + 4 * drop * an)  # phi'
                if l + 1 < L and skip[l + 1] == l:
                    w["elementwise"] += (an, 3 * an)
            if bias[l]:
                w["elementwise"] += (zn + dout * nb, 2 * zn + dout * nb)   # b, its gradient
            if normed[l]:
                w["normalization"] += (NORM_WORK[0] * zn, NORM_WORK[1] * zn)
            if l + 1 < L:
                if skip[l] >= 0:               # A = H + alpha Z, and backward: alpha's grad
                    w["elementwise"] += (3 * zn + 2 * dout * nb, 6 * zn + 2 * dout * nb)
                else:
                    w["elementwise"] += (zn + 4 * drop * zn, 2 * zn + 2 * drop * zn)
        f, b = LOSS_WORK[loss]
        w["loss"] += (f * dl * nb, b * dl * nb)
        f, b = OPTIMIZER_WORK[optimizer]
        w["optimizer"] += (f * params, b * params)
        for p in PARTS:
            total[p] += w[p]
    return {p: (float(v[0] * members), float(v[1] * members * itemsize))
            for p, v in total.items()}


def roof(flops: float, nbytes: float, seconds: float, peak: Peak, threads: int,
         bandwidth: float) -> dict:
    """Where a part stands: achieved GFLOP/s and GB/s, intensity (flop/byte), its bound
    ("compute" or "memory") and the fraction of that roof it reaches (None for a compute-bound
    part when the peak was not verified at one thread)."""
    gflops = flops / seconds / 1e9 if seconds > 0 else 0.0
    gbs = nbytes / seconds / 1e9 if seconds > 0 else 0.0
    intensity = flops / nbytes if nbytes else float("inf")
    top = peak.gflops * threads
    bound = "compute" if intensity * bandwidth >= top else "memory"
    if bound == "memory":
        fraction = gbs / bandwidth if bandwidth > 0 else None
    else:
        fraction = gflops / top if peak.verified else None
    return {"gflops": gflops, "gbs": gbs, "intensity": intensity, "bound": bound,
            "fraction": fraction}
