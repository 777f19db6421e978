"""fastinit.spread: a population's members over the threads, every member exactly once, each
thread claiming runs of them with a row of scratch of its own, a slow thread taking fewer,
errors raised where the call was made."""
import threading
import time

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


def _recorder(hold=None):
    """A kernel recording (lo, hi, tag, id of its row, thread name) of every call; ``hold``
    (thread name -> seconds per member) slows a thread down."""
    calls, lock = [], threading.Lock()

    def kernel(lo, hi, tag, row=None):
        with lock:
            calls.append((lo, hi, tag, id(row), threading.current_thread().name))
        time.sleep((hold or {}).get(threading.current_thread().name, 0) * (hi - lo))
    return calls, kernel


def _members(calls):
    return sorted(m for c in calls for m in range(c[0], c[1]))


two = pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="one Numba thread here")


@two
@pytest.mark.parametrize("K", [1, 2, 5, 64])
def test_every_member_runs_once_and_a_threads_row_is_its_own(K):
    calls, kernel = _recorder()
    rows = [[], []]
    with numba_threads(2):
        spread.over_members(kernel, K, "x", each=(rows,))
    assert _members(calls) == list(range(K)) and {c[2] for c in calls} == {"x"}
    owner = {}
    for *_, row, name in calls:
        assert owner.setdefault(row, name) == name    # a row is never shared between threads
    assert len(owner) <= min(K, 2)
    calls.clear()
    with numba_threads(1):
        spread.over_members(kernel, 5, "y")
    assert calls == [(0, 5, "y", id(None), threading.current_thread().name)]


@two
def test_a_slow_thread_takes_fewer_members():
    """A thread on a slow core (here: the caller's, 20 ms a member) does not hold the others
    up: the other thread claims most members instead of half of them."""
    calls, kernel = _recorder(hold={threading.current_thread().name: 0.02})
    with numba_threads(2):
        spread.over_members(kernel, 64, "x")
    assert _members(calls) == list(range(64))
    mine = sum(c[1] - c[0] for c in calls if c[4] == threading.current_thread().name)
    assert mine <= 24
    assert len(calls) <= 24                    # long runs first: a few calls, not 64


def _on_caller():
    return threading.current_thread() is threading.main_thread()


@two
def test_an_error_in_another_thread_is_raised_to_the_caller_and_stops_the_claims():
    pool_ran, ran = threading.Event(), []

    def kernel(lo, hi):
        ran.extend(range(lo, hi))
        if _on_caller():            # the caller waits for the pool thread's first run
            pool_ran.wait(10)
            time.sleep(0.01 * (hi - lo))
            return
        pool_ran.set()
        raise ValueError(f"members {lo}..{hi}")
    with numba_threads(2), pytest.raises(ValueError, match=r"members \d+\.\.\d+"):
        spread.over_members(kernel, 64)
    assert len(ran) < 64                       # no more claimed after the error


@two
def test_the_callers_own_error_wins_and_every_thread_finishes_first():
    """Both threads fail; the caller's error is the one raised, and only once the pool's
    thread is done (its run outlasts the caller's)."""
    entered, calling, done = threading.Event(), threading.Event(), []

    def kernel(lo, hi):
        if _on_caller():
            calling.set()
            entered.wait(10)
            raise ValueError("the caller's")
        entered.set()
        calling.wait(10)            # the caller has a run too, whichever thread claimed first
        time.sleep(0.05)
        done.append(lo)
        raise ValueError("the pool's")
    with numba_threads(2), pytest.raises(ValueError, match="the caller's"):
        spread.over_members(kernel, 4)
    assert len(done) == 1
