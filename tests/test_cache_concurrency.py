"""Processes sharing one kernel cache (Dask workers on a shared NUMBA_CACHE_DIR, parallel test
runs) never lose or mix each other's compiled kernels.

Numba saves a kernel by reading the kernel's cache index, adding its signature and writing the
index back; two processes doing that at once for different signatures of one kernel lose an
entry, or map a signature to the other one's code. fastinit serialises its kernels' saves with
a file lock in the cache directory (kernels/_config.py). The test makes the window wide: each
process waits between reading the index and writing it until the other one is there too
(or 5 s pass)."""
import os
import subprocess
import sys
import textwrap

import pytest

# row_sum is a kernel helper (no Python entry point): the children call it from a compiled shim
CALL = "import numba\ncall = numba.njit(lambda fn, x: fn(x))\n"

CHILD = CALL + textwrap.dedent("""
    import os, sys, time, numpy as np
    from numba.core import caching
    mine, other = sys.argv[1], sys.argv[2]
    write_index = caching.IndexDataCacheFile._save_index
    def slow_write(self, overloads):                  # the index is read: say so, wait for
        open(mine, "w").close()                       # the other process (at most 5 s)
        t0 = time.time()
        while not os.path.exists(other) and time.time() - t0 < 5:
            time.sleep(0.02)
        return write_index(self, overloads)
    caching.IndexDataCacheFile._save_index = slow_write
    from fastinit.kernels import dense
    dt = np.float32 if sys.argv[3] == "f32" else np.float64
    print(call(dense.row_sum, np.arange(64, dtype=dt)))
""")

CHECK = CALL + textwrap.dedent("""
    import numpy as np
    from fastinit.kernels import dense
    a, b = np.arange(64, dtype=np.float32), np.arange(64, dtype=np.float64)
    print(call(dense.row_sum, a), call(dense.row_sum, b),
          sum(dense.row_sum.stats.cache_hits.values()),
          sum(dense.row_sum.stats.cache_misses.values()))
""")


@pytest.mark.slow
def test_two_processes_saving_one_kernel_at_once_keep_both_signatures(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    marks = [str(tmp_path / "a"), str(tmp_path / "b")]
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, marks[i], marks[1 - i], dt],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i, dt in enumerate(("f32", "f64"))]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        assert float(out) == 2016.0
    res = subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    f32, f64, hits, misses = res.stdout.split()
    assert float(f32) == float(f64) == 2016.0
    assert (int(hits), int(misses)) == (2, 0), "a signature was lost from the shared cache"


HOLDER = CALL + textwrap.dedent("""
    import os, sys, time, numba, numpy as np
    from fastinit.kernels import _config, dense
    held, waiting = sys.argv[1], sys.argv[2]
    x = np.arange(64, dtype=np.float32)
    with _config.compiling(dense.row_sum, (numba.typeof(x),)):
        open(held, "w").close()                       # compiling: the other process starts
        t0 = time.time()
        while not os.path.exists(waiting) and time.time() - t0 < 60:
            time.sleep(0.02)
        time.sleep(1.0)                               # it is waiting on the lock by now
        print(call(dense.row_sum, x), dense.row_sum.stats.cache_misses[(numba.typeof(x),)])
""")

WAITER = CALL + textwrap.dedent("""
    import os, sys, time, numba, numpy as np
    held, waiting = sys.argv[1], sys.argv[2]
    t0 = time.time()
    while not os.path.exists(held) and time.time() - t0 < 60:
        time.sleep(0.02)
    from fastinit.kernels import dense
    x = np.arange(64, dtype=np.float32)
    open(waiting, "w").close()
    print(call(dense.row_sum, x), sum(dense.row_sum.stats.cache_hits.values()),
          sum(dense.row_sum.stats.cache_misses.values()))
""")


def test_a_signature_another_process_is_compiling_is_loaded_not_compiled_again(tmp_path):
    """Two processes needing one kernel at once (tests in two processes, a sweep and its
    background compile): the second waits for the first and loads what it saved."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    marks = [str(tmp_path / "held"), str(tmp_path / "waiting")]
    procs = [subprocess.Popen([sys.executable, "-c", code] + marks, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for code in (HOLDER, WAITER)]
    (held, err_a), (waited, err_b) = [p.communicate(timeout=300) for p in procs]
    assert procs[0].returncode == 0, err_a
    assert procs[1].returncode == 0, err_b
    assert held.split() == ["2016.0", "1"]                  # the holder compiled it
    assert waited.split() == ["2016.0", "1", "0"]           # the other loaded it
