"""Sampling cases: fastinit vs NumPy vs torch.nn.init (one table drives pytest and the CLI)."""
import math
import subprocess
import sys

import numpy as np

import fastinit

from . import harness


def _torch_inplace(shape, fn):
    torch = harness.torch_or_none()
    if torch is None:
        return None
    t = torch.empty(shape)
    return lambda: fn(torch, t)


def _torch_loop(count, shape, fn):
    torch = harness.torch_or_none()
    if torch is None:
        return None
    ts = [torch.empty(shape) for _ in range(count)]

    def run():
        for t in ts:
            fn(torch, t)
    return run


def _numpy_orthogonal(count, n):
    gen = np.random.default_rng(0)

    def run():
        q, r = np.linalg.qr(gen.standard_normal((count, n, n)))
        return q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[..., None, :]
    return run


def _fastinit_into(scheme, shape, n=None, **params):
    out = np.empty(shape if n is None else (n,) + shape, dtype=np.float32)
    return lambda: fastinit.sample(scheme, shape, seed=1, n=n, out=out, **params)


def cases(quick: bool = False):
    """{case: {implementation: factory}}; a factory returns a zero-argument callable (or None
    when the peer is not installed)."""
    big = (1024, 1024) if quick else (4096, 4096)
    small = (64, 64)
    many = 1000 if quick else 10_000
    northo = 100 if quick else 1000
    nbig = 256 if quick else 1024
    return {
        f"normal_f32_{big[0]}": {
            "fastinit": lambda: _fastinit_into("normal", big),
            "fastinit_alloc": lambda: lambda: fastinit.sample("normal", big, seed=1),
            "numpy": lambda: (lambda g, o: lambda: g.standard_normal(out=o, dtype=np.float32))(
                np.random.default_rng(0), np.empty(big, np.float32)),
            "torch": lambda: _torch_inplace(big, lambda torch, t: t.normal_()),
            "torch_alloc": lambda: (lambda torch: None if torch is None else
                                    (lambda: torch.empty(big).normal_()))(harness.torch_or_none()),
        },
        f"trunc_normal_{big[0]}": {
            "fastinit": lambda: _fastinit_into("trunc_normal", big),
            "torch": lambda: _torch_inplace(big, lambda torch, t: torch.nn.init.trunc_normal_(t)),
        },
        f"kaiming_{many}x64": {
            "fastinit": lambda: _fastinit_into("kaiming_normal", small, n=many),
            "numpy": lambda: (lambda g: lambda: g.standard_normal((many,) + small,
                                                                  dtype=np.float32)
                              * np.float32(math.sqrt(2 / 64)))(np.random.default_rng(0)),
            "torch_loop": lambda: _torch_loop(many, small,
                                              lambda torch, t: torch.nn.init.kaiming_normal_(t)),
        },
        f"orthogonal_{northo}x64": {
            "fastinit": lambda: _fastinit_into("orthogonal", small, n=northo),
            "numpy": lambda: _numpy_orthogonal(northo, 64),
            "torch_loop": lambda: _torch_loop(northo, small,
                                              lambda torch, t: torch.nn.init.orthogonal_(t)),
        },
        f"orthogonal_{nbig}": {
            "fastinit": lambda: _fastinit_into("orthogonal", (nbig, nbig)),
            "numpy": lambda: _numpy_orthogonal(1, nbig),
            "torch": lambda: _torch_inplace((nbig, nbig),
                                            lambda torch, t: torch.nn.init.orthogonal_(t)),
        },
    }


_STARTUP = """
import time
t0 = time.perf_counter()
import fastinit
t1 = time.perf_counter()
fastinit.sample("he_normal", (64, 64), seed=0)
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def startup_times(repeats: int = 5):
    """(import seconds, first he_normal call seconds) in a fresh process with a warm cache:
    the medians of ``repeats`` processes."""
    subprocess.run([sys.executable, "-c", _STARTUP], check=True, capture_output=True)  # warm
    runs = [subprocess.run([sys.executable, "-c", _STARTUP], check=True, capture_output=True,
                           text=True).stdout.split() for _ in range(repeats)]
    imp = sorted(float(r[0]) for r in runs)[repeats // 2]
    first = sorted(float(r[1]) for r in runs)[repeats // 2]
    return imp, first


def main(threads=None, quick=False):
    """Markdown: the ratio table, 2-thread scaling, start-up times. Returns (text, rows)."""
    threads = threads or harness.THREADS
    rows = []
    table = cases(quick)
    for case, impls in table.items():       # thread counts back to back (training.main)
        for impl, factory in impls.items():
            fn = factory()
            if fn is None:
                continue
            for t in threads:
                harness.set_threads(t)
                rows.append((f"{case} threads={t}", f"[{impl}]",
                             harness.median_time(fn, repeats=3 if quick else 7)))
    out = [harness.ratio_table(rows)]
    ours = {g: m for g, n, m in rows if n == "[fastinit]"}
    if len(threads) > 1:
        out.append("\n| case | fastinit 2 threads vs 1 |\n|---|---|")
        for case in table:
            a, b = ours.get(f"{case} threads=1"), ours.get(f"{case} threads=2")
            if a and b:
                out.append(f"| {case} | {a / b:.2f}x |")
    imp, first = startup_times()
    out.append(f"\nimport fastinit: {imp * 1e3:.0f} ms; first he_normal call, warm cache: "
               f"{first * 1e3:.0f} ms")
    return "\n".join(out), rows
