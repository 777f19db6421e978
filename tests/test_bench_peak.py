"""The benchmark's single-thread peak is measured on one thread or not at all, and its cold
start on empty caches (never a timing assertion here: only that the thread limit is applied,
checked, and its failure said, which cache each cold run starts from, and what a case's
time is of)."""
import contextlib
import os
import sys

import numba
import pytest

import fastinit
from fastinit.benchsuite import harness, peak, training

threadpoolctl = pytest.importorskip("threadpoolctl")


def test_inside_the_limit_every_blas_runs_one_thread():
    import numpy as np
    np.ones((4, 4)) @ np.ones((4, 4))                    # BLAS loaded
    with peak.one_thread():                         # raises unless every one runs 1
        from threadpoolctl import threadpool_info
        assert {i["num_threads"] for i in threadpool_info()} == {1}
        torch = harness.torch_or_none()
        assert torch is None or torch.get_num_threads() == 1


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one core: every BLAS runs one")
def test_a_limit_that_did_not_take_refuses_the_peak(monkeypatch):
    threadpoolctl.threadpool_limits(len(os.sched_getaffinity(0)))     # BLAS on every core
    monkeypatch.setattr(threadpoolctl, "threadpool_limits", lambda n: contextlib.nullcontext())
    with pytest.raises(training.PeakUnverified, match="BLAS not limited to one thread: .*"
                                                      "[2-9][0-9]* threads"):
        training.sgemm_peak()


def test_without_threadpoolctl_the_peak_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)
    with pytest.raises(training.PeakUnverified, match=r"pip install 'fastinit\[bench\]'"):
        training.sgemm_peak()


def test_the_peak_line_gives_the_value_or_the_reason():
    assert training.peak_line(97.25).endswith("checked): 97.2 GFLOP/s")
    assert training.peak_line(None, "why") == "Single-thread sgemm peak: not measured: why"


def test_a_peak_that_read_low_once_is_read_again_and_the_higher_kept(monkeypatch):
    """A shared machine read the peak at 54.0 GFLOP/s once and 83.8 later: one low reading
    made a population run at "107% of peak". The peak is read again after the training cases
    and the higher kept; readings 10% apart are both stated."""
    monkeypatch.setattr(training, "sgemm_peak", lambda: 83.8)
    peak, line = training.remeasured(54.0)
    assert peak == 83.8
    assert "83.8 GFLOP/s, the higher of 54.0 before the training cases and 83.8 after" in line
    peak, line = training.remeasured(80.0)                # within 10%: one value
    assert peak == 83.8 and line == training.peak_line(83.8)
    assert training.remeasured(None) == (None, training.peak_line(None))

    def unverified():
        raise training.PeakUnverified("BLAS not limited")
    monkeypatch.setattr(training, "sgemm_peak", unverified)
    assert training.remeasured(54.0) == (54.0, training.peak_line(54.0))


def test_each_cold_start_workload_gets_a_cache_of_its_own(monkeypatch):
    """The demo's "cold: empty cache" row was measured on the cache the train workload had
    just filled (12.5 s compiling instead of a minute): each workload now starts empty."""
    from fastinit.benchsuite import coldstart
    seen = []

    def fake(name, cache_dir):
        seen.append((name, sorted(os.listdir(cache_dir))))
        with open(os.path.join(cache_dir, f"{name}.nbi"), "w"):     # what compiling leaves
            pass
        return {"wall": 1.0, "compiling": 0.5}

    monkeypatch.setattr(coldstart, "run", fake)
    text, rows = coldstart.main(quick=False)
    assert seen == [("train", []), ("train", ["train.nbi"]), ("demo", []),
                    ("demo", ["demo.nbi"])]
    assert [r["workload"] for r in rows] == ["train", "demo"] and "| fastinit demo" in text


def test_an_implementations_thread_counts_are_timed_back_to_back(monkeypatch):
    """A "2 threads vs 1" ratio is of two times taken one after the other, and a case's
    peers are timed in the same minutes: on a shared machine, times taken minutes apart
    measure its drift as much as the threads."""
    timed = []
    monkeypatch.setattr(training, "make", lambda table, case, impl: (case, impl))
    monkeypatch.setattr(training, "busy", lambda quick: {})
    monkeypatch.setattr(training, "scaling", lambda t, quick: {})
    monkeypatch.setattr(training, "scaling_markdown", lambda *a: "")
    monkeypatch.setattr(training, "remeasured", lambda peak: (peak, ""))

    def median_time(fn, **kw):
        timed.append((*fn, numba.get_num_threads()))
        return 1.0
    monkeypatch.setattr(harness, "median_time", median_time)
    text, res = training.main([1, 2], quick=True, peak=100.0)
    pairs = [(case, impl) for case, impl, _ in timed]
    assert [t for _, _, t in timed] == [1, 2] * (len(timed) // 2)
    assert pairs[::2] == pairs[1::2]                      # each pair back to back
    cases = [case for case, _ in pairs]
    assert cases == sorted(cases, key=cases.index)         # a case's peers together
    rows = [line for line in text.splitlines() if line.count("|") == 7][2:]
    half = len(rows) // 2                                 # the rates table: 1 thread, then 2
    assert [r.split(" | ")[1] for r in rows] == ["1"] * half + ["2"] * half


def test_a_case_of_many_epochs_a_call_is_reported_per_epoch(monkeypatch):
    """small_b32_run times ten epochs a call (fastinit.train's set-up once, as in a user's
    run) and its tables read per epoch, as every other case's: the same time per call as
    small_b32 reads a tenth of it, and ten times the rate."""
    table = training.cases(quick=True)
    assert training.epochs_of(table["small_b32_run"][0]) == 10
    assert training.epochs_of(table["small_b32"][0]) == 1
    monkeypatch.setattr(training, "cases", lambda quick: {
        k: table[k] for k in ("small_b32", "small_b32_run")})
    monkeypatch.setattr(training, "make", lambda table, case, impl: (case, impl))
    monkeypatch.setattr(training, "remeasured", lambda peak: (peak, ""))
    monkeypatch.setattr(harness, "median_time", lambda fn, **kw: 1.0)
    text, res = training.main([1], quick=True, peak=100.0)
    seconds = {group.split()[0]: sec for group, impl, sec in res["rows"] if impl == "[torch]"}
    assert seconds == {"small_b32": 1.0, "small_b32_run": 0.1}
    rates = {line.split(" | ")[0][2:]: line.split(" | ")[4] for line in text.splitlines()
             if line.count("|") == 7 and "torch" in line}
    flops = training.case_flops(table["small_b32"][0])
    assert rates == {"small_b32": f"{flops / 1e9:.1f}", "small_b32_run": f"{flops / 1e8:.1f}"}


def test_a_case_of_many_epochs_a_call_runs_them(monkeypatch):
    """Both implementations of a many-epoch case run every epoch in the call: fastinit.train
    gets epochs=10, the PyTorch loop takes ten passes over the batches."""
    table = training.cases(quick=True)
    got = []
    real = fastinit.train
    monkeypatch.setattr(fastinit, "train", lambda *a, **kw: got.append(kw["epochs"])
                        or real(*a, **kw))
    training.make(table, "small_b32_run", "fastinit")()
    assert got == [10]
    if harness.torch_or_none() is None:
        return
    import torch
    steps = []
    monkeypatch.setattr(torch.optim.SGD, "step", lambda self, *a: steps.append(1))
    training.make(table, "small_b32_run", "torch")()
    c = table["small_b32_run"][0]
    assert len(steps) == 10 * -(-c["n"] // c["batch"])


def test_sampling_thread_counts_are_timed_back_to_back(monkeypatch):
    from fastinit.benchsuite import sampling
    timed = []
    monkeypatch.setattr(sampling, "startup_times", lambda: (0.1, 0.1))

    def median_time(fn, **kw):
        timed.append((fn, numba.get_num_threads()))
        return 1.0
    monkeypatch.setattr(harness, "median_time", median_time)
    sampling.main([1, 2], quick=True)
    assert [t for _, t in timed] == [1, 2] * (len(timed) // 2)
    assert [f for f, _ in timed][::2] == [f for f, _ in timed][1::2]


def test_a_peer_runs_at_the_thread_count_it_is_timed_at():
    """harness.set_threads holds NumPy's BLAS (a sampling peer's QR) to the count too."""
    import numpy as np
    np.ones((4, 4)) @ np.ones((4, 4))                    # BLAS loaded
    prev = harness.set_threads(1)
    try:
        assert {i["num_threads"] for i in threadpoolctl.threadpool_info()} == {1}
        assert numba.get_num_threads() == 1
    finally:
        harness.set_threads(prev)
    assert numba.get_num_threads() == prev
