"""fastinit.spread: a population's members in contiguous blocks, one per thread, every member
exactly once, the first block on the calling thread, errors raised where the call was made."""
import threading

import numba
import pytest

from fastinit import spread
from fastinit.training import numba_threads


@pytest.mark.parametrize("K,T", [(1, 1), (1, 4), (5, 2), (64, 2), (7, 3), (3, 8)])
def test_blocks_cover_every_member_once_in_near_equal_blocks(K, T):
    b = spread.blocks(K, T)
    assert len(b) == min(K, T)
    assert b[0][0] == 0 and b[-1][1] == K
    assert all(hi0 == lo1 for (_, hi0), (lo1, _) in zip(b, b[1:]))
    sizes = [hi - lo for lo, hi in b]
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1


def _recorder():
    calls, lock = [], threading.Lock()

    def kernel(lo, hi, tag):
        with lock:
            calls.append((lo, hi, tag, threading.current_thread().name))
    return calls, kernel


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="one Numba thread here")
def test_blocks_run_on_numba_threads_count_first_on_the_caller():
    calls, kernel = _recorder()
    with numba_threads(2):
        spread.over_members(kernel, 5, "x")
    assert sorted(c[:3] for c in calls) == [(0, 3, "x"), (3, 5, "x")]
    first = [c for c in calls if c[0] == 0][0]
    assert first[3] == threading.current_thread().name
    calls.clear()
    with numba_threads(1):
        spread.over_members(kernel, 5, "y")
    assert calls == [(0, 5, "y", threading.current_thread().name)]


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="one Numba thread here")
def test_an_error_in_another_threads_block_is_raised_to_the_caller():
    def kernel(lo, hi):
        if lo > 0:
            raise ValueError(f"block {lo}..{hi}")
    with numba_threads(2), pytest.raises(ValueError, match="block 2..4"):
        spread.over_members(kernel, 4)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="one Numba thread here")
def test_the_callers_own_error_wins_and_every_block_finishes_first():
    done = []

    def kernel(lo, hi):
        done.append(lo)
        raise ValueError(f"block {lo}..{hi}")
    with numba_threads(2), pytest.raises(ValueError, match="block 0..2"):
        spread.over_members(kernel, 4)
    assert sorted(done) == [0, 2]
