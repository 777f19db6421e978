"""Before pytest-xdist starts its workers on the whole suite: the kernels the on-disk cache
lacks, compiled once in parallel processes (fastinit.warmup), instead of once in every worker.
Each worker of a cold `pytest -n 2` compiled every kernel it called itself, the same kernels
on both cores at once (a fresh clone here: the tests 232 s; the same tests on a warm cache
143 s). A run of chosen tests (paths, -k, --lf), a run without xdist and `FASTINIT_TEST_WARMUP=0`
compile lazily, only what their tests call."""
import os
import sys
import time


def _workers(config) -> int:
    """The worker processes xdist will start (0: no xdist), --maxprocesses included."""
    n = getattr(config.option, "numprocesses", None) or 0
    if n in ("auto", "logical"):
        n = len(os.sched_getaffinity(0))
    most = getattr(config.option, "maxprocesses", None)
    return min(int(n), int(most)) if most else int(n)


def _whole_suite(config) -> bool:
    """Whether this run is every test (pyproject's testpaths, no selection), with tests to run:
    a chosen few would pay for compiling every kernel."""
    o = config.option
    testpaths = getattr(getattr(config, "ArgsSource", None), "TESTPATHS", None)  # pytest >= 7.2
    return (testpaths is not None and config.args_source == testpaths and not o.keyword
            and not getattr(o, "lf", False) and not getattr(o, "stepwise", False)
            and not o.collectonly and not getattr(o, "help", False)
            and not getattr(o, "markers", False))


def pytest_configure(config):
    if (hasattr(config, "workerinput") or _workers(config) < 2 or not _whole_suite(config)
            or os.environ.get("FASTINIT_TEST_WARMUP", "1") == "0"):
        return
    from fastinit import warmup
    from fastinit.kernels import _config
    if _config.CACHE_DIR is None:       # no writable cache: the workers compile their own
        return
    todo = warmup.missing()
    if not todo:
        return
    t0 = time.perf_counter()
    with warmup.Ahead(todo, min(_workers(config), len(todo))) as running:
        pass                            # leaving the block waits for them
    failed = [p.exitcode for p in running.processes if p.exitcode]
    print(f"fastinit: {len(todo)} kernel groups compiled in {time.perf_counter() - t0:.0f} s "
          f"before the tests start" + (f"; {len(failed)} compiling process(es) failed (exit "
                                       f"{failed}): the workers compile what they left"
                                       if failed else ""), file=sys.stderr)


def pytest_collection_modifyitems(config, items):
    """The files holding long checks (marked slow: processes of their own, real trainings)
    first, their slow tests first within each, so each xdist worker starts one early instead
    of the last one leaving the other core idle. A file's tests stay together: a module-scoped
    fixture (test_dask's sweeps) is made once, not again after the slow block."""
    slow = lambda item: item.get_closest_marker("slow") is not None
    files = {item.path for item in items if slow(item)}
    first = {}                  # a file's place: where its first test was collected
    for i, item in enumerate(items):
        first.setdefault(item.path, i)
    items.sort(key=lambda item: (item.path not in files, first[item.path], not slow(item)))
