"""Before pytest-xdist starts its workers: the kernels the on-disk cache lacks, compiled once in
parallel processes (fastinit.warmup), instead of once in every worker. Each worker of a cold
`pytest -n 2` compiled every kernel it called itself, the same kernels on both cores at once
(a fresh clone here: the tests 232 s; the same tests on a warm cache 143 s). A run without
xdist compiles lazily, only what its tests call."""
import os
import sys
import time


def _workers(config) -> int:
    n = getattr(config.option, "numprocesses", None) or 0
    if n == "auto" or n == "logical":
        return len(os.sched_getaffinity(0))
    return int(n)


def pytest_configure(config):
    if hasattr(config, "workerinput") or _workers(config) < 2 or config.option.collectonly:
        return                          # a worker, no xdist, or nothing will run
    from fastinit import warmup
    from fastinit.kernels import _config
    if _config.CACHE_DIR is None:       # no writable cache: the workers compile their own
        return
    todo = warmup.missing()
    if todo:
        t0 = time.perf_counter()
        with warmup.Ahead(todo, min(_workers(config), len(todo))):
            pass                        # leaving the block waits for them
        print(f"fastinit: {len(todo)} kernel groups compiled in "
              f"{time.perf_counter() - t0:.0f} s before the tests start", file=sys.stderr)
