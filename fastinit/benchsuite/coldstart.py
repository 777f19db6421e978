"""Cold start: how long a new machine waits for fastinit's kernels, and how long a warm one.

Each workload runs twice, each time in a new Python process, both with the same Numba cache
directory of its own, empty at first (never one another workload filled): the first process
compiles every kernel the workload needs (cold: a new machine, a fresh CI run, a Dask worker on
a new node), the second loads them from the disk cache (warm: every later process). Reported:
each process's wall seconds from its first import to done, and the seconds the cold one spent
compiling (fastinit.compilelog).

    train   one fastinit.train of a float32 population, 1 epoch (the train and evaluate kernels)
    demo    ``fastinit demo``, the main job (full mode only: minutes on a new machine)
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

_SCRIPT = """
import json, sys, tempfile, time
t0 = time.perf_counter()
import numpy as np
import fastinit
from fastinit import cli, compilelog
if sys.argv[1] == "train":
    x = np.random.default_rng(0).standard_normal((256, 16))
    net = fastinit.MLP([16, 32, 32, 4], n=4, seed=0, dtype=np.float32)
    fastinit.train(net, (x, np.arange(256) % 4), epochs=1, batch_size=32)
else:
    with tempfile.TemporaryDirectory() as d:
        assert cli.main(["demo", "--out", d, "-q"]) == 0
print(json.dumps({"wall": time.perf_counter() - t0, "compiling": compilelog.compiled_seconds()}))
"""
WORKLOADS = {"train": "one fastinit.train (float32, 4 members, 1 epoch)",
             "demo": "fastinit demo (the main job)"}


def run(workload: str, cache_dir: str) -> dict:
    """{"wall", "compiling"} seconds of ``workload`` in a new process using ``cache_dir``."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    res = subprocess.run([sys.executable, "-c", _SCRIPT, workload], env=env,
                         capture_output=True, text=True)
    if res.returncode:
        raise RuntimeError(f"the {workload} cold-start process failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(quick: bool = False, cache_dir: str | None = None) -> tuple[str, list[dict]]:
    """Markdown table and rows: each workload cold, then warm. ``cache_dir``: a cache to use
    instead of a new empty one (an existing cache makes both runs warm: a smoke test)."""
    rows = []
    for name in (["train"] if quick else ["train", "demo"]):
        with tempfile.TemporaryDirectory(prefix=f"fastinit-cold-{name}-") as fresh:  # its own
            cold = run(name, cache_dir or fresh)
            warm = run(name, cache_dir or fresh)
        rows.append({"workload": name, "cold": cold["wall"], "compiling": cold["compiling"],
                     "warm": warm["wall"], "warm_compiling": warm["compiling"]})
    lines = ["| workload | cold: empty cache (s) | of which compiling (s) | warm: disk cache (s) |",
             "|---|---|---|---|"]
    lines += [f"| {WORKLOADS[r['workload']]} | {r['cold']:.1f} | {r['compiling']:.1f} | "
              f"{r['warm']:.1f} |" for r in rows]
    return "\n".join(lines), rows
