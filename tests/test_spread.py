"""fastinit.spread: a population's members over the threads, every member exactly once, each
thread claiming runs of them with a row of scratch of its own, a slow thread taking fewer,
errors raised where the call was made."""
import os
import signal
import threading
import time

import numba
import numpy as np
import pytest

import fastinit
from fastinit import spread
from fastinit.training import numba_threads
from reference import threads_running


@pytest.mark.parametrize("K,T,lanes", [(1, 1, 1), (1, 4, 1), (5, 2, 2), (64, 2, 2), (3, 8, 3),
                                         (0, 2, 1)])
def test_members_run_on_as_many_threads_as_there_are_members_at_most(K, T, lanes):
    assert spread.lanes(K, T) == lanes


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


def _exit(*_):
    raise SystemExit         # as the SIGINT handler some libraries install (dask_jobqueue)


@two
@pytest.mark.parametrize("handler,raised", [(signal.default_int_handler, KeyboardInterrupt),
                                            (_exit, SystemExit)])
def test_a_ctrl_c_while_waiting_returns_only_once_no_kernel_runs(handler, raised):
    """Ctrl-C while the caller waits for a pool thread's run: over_members still returns (by
    raising what the SIGINT handler raises) only when that run is done, so nothing writes into
    the caller's arrays after a notebook's interrupted train() returns."""
    entered, caller_done, done = threading.Event(), threading.Event(), []

    def kernel(lo, hi):
        if _on_caller():
            entered.wait(10)           # the pool thread has the other member
            caller_done.set()
            return
        entered.set()
        caller_done.wait(10)
        time.sleep(0.05)               # the caller is waiting for this run now
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.3)
        done.append(lo)
    old = signal.signal(signal.SIGINT, handler)
    try:
        with numba_threads(2), pytest.raises(raised):
            spread.over_members(kernel, 2)
    finally:
        signal.signal(signal.SIGINT, old)
    assert len(done) == 1


@two
def test_an_interrupt_right_after_starting_a_thread_leaves_nothing_running(monkeypatch):
    """A Ctrl-C just after a pool thread was started (here: its submit raises once the thread
    is scheduled) closes the claims and waits for that thread's run: no member runs after
    over_members has raised."""
    from concurrent.futures import ThreadPoolExecutor
    real, ran = ThreadPoolExecutor(1), []

    class Interrupted:
        def submit(self, *args):
            real.submit(*args)
            raise KeyboardInterrupt
    monkeypatch.setattr(spread, "_pool", Interrupted)

    def kernel(lo, hi):
        time.sleep(0.005 * (hi - lo))
        ran.extend(range(lo, hi))
    with numba_threads(2), pytest.raises(KeyboardInterrupt):
        spread.over_members(kernel, 64)
    n = len(ran)
    real.shutdown(wait=True)                   # whatever that thread was going to run, it ran
    assert len(ran) == n < 64


_FORK_SCRIPT = """
import os, signal, sys, time
import fastinit
from fastinit import spread
with spread._LOCK:                      # as when another thread is inside _pool()
    pid = os.fork()
    if pid == 0:                        # the child: its own pool, not a deadlock
        spread._pool()
        os._exit(0)
deadline = time.time() + 30
while time.time() < deadline:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        sys.exit(os.waitstatus_to_exitcode(status))
    time.sleep(0.02)
os.kill(pid, signal.SIGKILL)
sys.exit("the forked child waited forever for the pool lock")
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_child_forked_while_the_pool_lock_is_held_can_start_its_pool():
    """In a process of its own (this one may run threads, e.g. JAX's, that fork warns of)."""
    import subprocess
    import sys
    res = subprocess.run([sys.executable, "-c", _FORK_SCRIPT], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


@two
def test_a_ctrl_c_between_the_callers_claim_and_its_run_does_not_hang(monkeypatch):
    """A Ctrl-C can land in the calling thread right after it claimed a run and before it ran
    it: over_members raises, it does not wait for that run forever."""
    real, caller, hit, result = spread._Claims.take, [], [], []

    def take(self, *args):
        block = real(self, *args)
        if block is not None and threading.current_thread() is caller[0] and not hit:
            hit.append(block)
            raise KeyboardInterrupt
        return block
    monkeypatch.setattr(spread._Claims, "take", take)

    def call():                   # a thread of its own: a hang fails the test, not the run
        caller.append(threading.current_thread())
        try:
            with numba_threads(2):
                spread.over_members(lambda lo, hi: time.sleep(0.001 * (hi - lo)), 64)
        except KeyboardInterrupt:
            result.append("raised")
    t = threading.Thread(target=call, daemon=True)
    t.start()
    t.join(30)
    assert result == ["raised"] and hit


@two
def test_fewer_members_than_threads_evaluate_their_batches_on_every_thread(monkeypatch):
    """One network's evaluation (train's every epoch, forward, loss, accuracy) runs its
    batches on every thread, not one thread for its one member, with the bits of one thread:
    each batch's sums are kept and added in batch order."""
    from fastinit import kernels
    g = np.random.default_rng(3)
    x, y = g.standard_normal((1600, 64)).astype(np.float32), g.integers(0, 10, 1600)
    net = fastinit.MLP([64, 256, 256, 10])             # 135 M multiply-adds: worth spreading
    with numba_threads(1):
        alone = net.loss(x, y), net.accuracy(x, y), net.forward(x)
        h1 = fastinit.train(net.copy(), (x, y, x[:700], y[:700]), epochs=1, batch_size=500,
                            eval_batch_size=100, threads=1)
    seen = threads_running(monkeypatch, kernels.train, "evaluate")
    with numba_threads(2):
        spread_out = net.loss(x, y), net.accuracy(x, y), net.forward(x)
    assert len(seen) == 2, seen
    for a, b in zip(alone, spread_out):
        np.testing.assert_array_equal(a, b)
    monkeypatch.undo()
    h2 = fastinit.train(net.copy(), (x, y, x[:700], y[:700]), epochs=1, batch_size=500,
                        eval_batch_size=100, threads=2)
    for f in ("train_loss", "train_acc", "test_loss", "test_acc"):
        np.testing.assert_array_equal(getattr(h1, f), getattr(h2, f))


@two
def test_evaluation_refuses_scratch_without_a_row_for_each_thread_it_spreads_over():
    from fastinit import network
    x = np.zeros((3000, 64), np.float32)
    net = fastinit.MLP([64, 256, 256, 10])
    with numba_threads(2):
        for bad in (spread.workspace(net, 256), spread.workspace(net, 8, evaluation=True),
                    np.zeros_like(spread.workspace(net, 256, evaluation=True), np.float64)):
            with pytest.raises(ValueError, match=r"'work' must be spread.workspace\(net, batch, "
                                                 r"evaluation=True\): C-contiguous float32, at "
                                                 r"least \(2, \d+\) here. Got float(32|64), "
                                                 r"shape \(\d, \d+\)"):
                network.evaluate(net, x, np.zeros(3000, np.int64), np.zeros((1, 1), np.float32),
                                 "cross_entropy", work=bad)
        sums = network.evaluate(net, x, np.zeros(3000, np.int64), np.zeros((1, 1), np.float32),
                                "cross_entropy", work=spread.workspace(net, 256, evaluation=True))
    assert all(a.flags.c_contiguous and a.shape == (1,) for a in sums[:2])
    pop = fastinit.MLP([64, 8, 10], n=3, seed=[1, 2, 3])
    sums = network.evaluate(pop, x, np.zeros(3000, np.int64), np.zeros((1, 1), np.float32),
                            "cross_entropy")
    assert all(a.flags.c_contiguous and a.shape == (3,) for a in sums[:2])


@pytest.mark.parametrize("K,p,q,threads,runs", [
    (1, 330, 330, 2, 1),        # small: one run, one task
    (1, 512, 512, 2, 2),        # a run per thread
    (1, 1024, 1024, 2, 4),      # runs of 256 rows, two per thread
    (8, 2048, 2048, 2, 8),      # members fill the threads: runs of 256 rows for the cache
    (1, 1024, 1024, 64, 16),    # many threads: runs of no fewer than 64 rows
    (1, 32, 2 ** 17, 2, 1)])    # fewer than 64 rows: one run, never none
def test_an_orthogonal_matrix_is_cut_into_runs_of_rows(K, p, q, threads, runs):
    assert spread.row_runs(K, p, q, threads) == runs
