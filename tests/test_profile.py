"""fastinit profile: an epoch's parts add up to the real epoch for every architecture the
kernels train (the epoch's own clock times them in place and changes no bit of training), a spec is taken and refused exactly as `fastinit sweep` takes and refuses it, and
the CLI's table, --json and --out say what a user needs before a sweep. No wall-clock time is
asserted: only how measured times relate to each other."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import fastinit
import fastinit.cli as cli
from fastinit import roofline
from fastinit.benchsuite.peak import Peak
from fastinit.profile_report import parts_of
from fastinit.runkeys import RUN_KEYS
from fastinit.sweepprofile import profile_sweep

# a machine stated, not measured: the roofline's arithmetic needs numbers, these tests need
# no GEMM peak or triad (the CLI test measures the real one)
MACHINE = roofline.Machine("test cpu", 2, 2, "omp", 2 ** 20,
                           {"float32": Peak(50.0, True, "stated")}, {1: 10.0}, {1: 100.0})
X = np.random.default_rng(0).standard_normal((512, 24))
Y = np.arange(512) % 6
T = np.random.default_rng(1).standard_normal((512, 6))

ARCHITECTURES = {
    "relu-sgd": (lambda: fastinit.MLP([24, 96, 96, 6], n=8), {}),
    "batchnorm-dropout-adam": (lambda: fastinit.MLP([24, 96, 96, 6], n=8, norm="batch",
                                                    dropout=[0.0, 0.2] * 4),
                               {"optimizer": "adam"}),
    "layernorm-tanh-nesterov": (lambda: fastinit.MLP([24, 96, 96, 6], "tanh", n=8,
                                                     norm="layer"), {"optimizer": "nesterov"}),
    "nobias-mse-adamw": (lambda: fastinit.MLP([24, 96, 96, 6], "gelu", n=8, bias=False),
                         {"optimizer": "adamw", "loss": "mse"}),
    "resmlp-rezero": (lambda: fastinit.ResMLP(24, 96, 2, 6, residual="rezero", n=8), {}),
    "resmlp-fixup-bce": (lambda: fastinit.ResMLP(24, 96, 2, 6, residual="fixup", n=8),
                         {"loss": "bce", "optimizer": "momentum"}),
}


def _profile(name, repeats=5):
    build, kw = ARCHITECTURES[name]
    y = (T > 0).astype(float) if kw.get("loss") == "bce" else T if kw.get("loss") == "mse" \
        else Y
    return fastinit.profile(build(), (X, y), threads=[1], repeats=repeats, batch_size=32,
                            machine=MACHINE, **kw)


def _share(prof):
    pop = prof.populations[0]
    parts = sum(v for k, v in pop.parts[1].items() if k != "rest")
    return parts / pop.epoch[1], pop


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_parts_add_up_to_the_real_epoch(name):
    shown = ("gemm_forward", "gemm_dw", "gemm_dx", "elementwise")
    for attempt in range(3):           # a shared machine: a busy spell gets another look
        share, pop = _share(_profile(name))
        if abs(share - 1) <= 0.10 and all(pop.alone[1][k] > 0 for k in shown):
            break
    assert abs(share - 1) <= 0.10, (share, pop.epoch, pop.parts)
    assert all(v >= 0 for k, v in pop.parts[1].items() if k != "rest")
    # the network passes' in-place time, shared among their parts as the parts alone share it
    network = sum(pop.parts[1][k] for k in fastinit.profiler.NETWORK_PARTS)
    assert network == pytest.approx(pop.phases[1]["network"])
    assert pop.parts[1]["loss"] == pop.phases[1]["loss"] > 0
    assert pop.parts[1]["optimizer"] == pop.phases[1]["optimizer"] > 0
    alone = pop.alone[1]
    assert all(alone[k] > 0 for k in shown)    # a part that is there reads so
    assert pop.parts[1]["gemm_dw"] / pop.parts[1]["gemm_forward"] == pytest.approx(
        alone["gemm_dw"] / alone["gemm_forward"])
    normed = ARCHITECTURES[name][0]().norm is not None
    assert ("normalization" in parts_of(pop)) == normed
    if normed:
        assert pop.parts[1]["normalization"] > 0 and pop.work["normalization"][0] > 0
    assert pop.modes[1] == "population-parallel"


@pytest.mark.parametrize("threads", [1, 2])
def test_the_epochs_own_clock_changes_no_bit_and_times_each_member(threads):
    """kernels.clock inside train_epoch (4 members) and train_epoch_split (one member worth
    splitting on 2 threads): the same bits as an untimed epoch; every phase of every member
    timed; the members' time inside the epochs' wall time on these threads."""
    for net in (fastinit.MLP([24, 96, 96, 6], n=4, seed=3),
                fastinit.MLP([24, 256, 256, 6], n=1, seed=3)):
        plain, timed = net.copy(), net.copy()
        fastinit.train(plain, (X, Y), epochs=2, batch_size=64, threads=threads, eval_every=0)
        clock = np.zeros((net.n, fastinit.kernels.clock.PHASES), dtype=np.int64)
        t0 = time.perf_counter()
        fastinit.train(timed, (X, Y), epochs=2, batch_size=64, threads=threads, eval_every=0,
                       _clock=clock)
        wall = time.perf_counter() - t0
        np.testing.assert_array_equal(plain.params, timed.params)
        assert np.all(clock > 0), clock
        assert clock.sum() * 1e-9 <= wall * threads, (clock, wall)


_WIDE_SCRIPT = """
import json, sys, numpy as np, fastinit
from fastinit import roofline
from fastinit.benchsuite.peak import Peak
machine = roofline.Machine("test cpu", 2, 2, "omp", 2 ** 20,
                           {"float32": Peak(50.0, True, "stated")}, {1: 10.0}, {1: 100.0})
g = np.random.default_rng(0)
x, y = g.standard_normal((2560, 784)), g.integers(0, 10, 2560)
data = fastinit.datasets.from_arrays(x[:2048], y[:2048], x[2048:], y[2048:])
SHOWN = ("gemm_forward", "gemm_dw", "gemm_dx", "transposes", "optimizer")
for attempt in range(3):           # a shared machine: a busy spell gets another look
    pop = fastinit.profile(fastinit.MLP([784, 256, 256, 10]), data, threads=[1], repeats=3,
                           batch_size=128, machine=machine).populations[0]
    print(json.dumps({"epoch": pop.epoch[1], "parts": pop.parts[1], "alone": pop.alone[1]}))
    share = sum(v for k, v in pop.parts[1].items() if k != "rest") / pop.epoch[1]
    if abs(share - 1) <= 0.05 and pop.parts[1]["call"] < 0.05 * pop.epoch[1] \
            and all(pop.alone[1][k] > 0 for k in SHOWN):
        break
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc tunables")
def test_a_wide_networks_parts_add_up_too():
    """A [784, 256, 256, 10] step of 128 needs 4 MB of scratch and gradient: mapped afresh,
    they cost about a millisecond, more than some parts take. A training run maps them in its
    first epoch and reuses them after; the profile times such a warm epoch, and replays every
    part on memory it mapped once, so no part reads as nothing and the parts add up, even
    with an allocator that gives freed memory back at once (glibc, a fixed mmap threshold),
    under which the profile's "call" read 2-3 ms of a 26 ms epoch and its "rest" -2 ms. (A
    small part's replay, less its scratch set-up, can read zero in a busy spell of the other
    test process: three attempts, the first that comes out right ends them.)"""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
    res = subprocess.run([sys.executable, "-c", _WIDE_SCRIPT], env=env, check=True,
                         capture_output=True, text=True)
    runs = [json.loads(line) for line in res.stdout.strip().splitlines()]
    shown = ("gemm_forward", "gemm_dw", "gemm_dx", "transposes", "optimizer")   # elementwise:
    # its bias and relu are in the GEMMs' epilogues here; what is left (0.1 ms of a 30 ms
    # epoch) is inside the replay's noise and read 0.0 in most attempts on an Intel Xeon
    good = [r for r in runs if abs(sum(v for k, v in r["parts"].items() if k != "rest")
                                   / r["epoch"] - 1) <= 0.05
            and r["parts"]["call"] < 0.05 * r["epoch"]
            and all(r["alone"][k] > 0 for k in shown)]    # a part that is there reads so
    assert good, runs


def test_a_call_is_timed_without_setting_any_scratch():
    """The profile's "call" is a replay with no step that sets no scratch: the epoch never
    copies a template into its scratch, the part replays do (and have that taken off)."""
    net = fastinit.MLP([24, 96, 96, 6], n=3)
    inputs = fastinit.profiler._Inputs(net, fastinit.training.as_dataset((X, Y)), 32, False,
                                       "sgd", 0.01, "cross_entropy", 0.9, (0.9, 0.999), 1e-8,
                                       0.0, 0)
    inputs.work[:] = np.nan
    inputs.replay("call", 1, fastinit.profiler.PARALLEL, 0)
    assert np.isnan(inputs.work).all()
    inputs.replay("loss", 1, fastinit.profiler.PARALLEL, 0)
    np.testing.assert_array_equal(inputs.work[0], inputs.template)


def test_the_clock_times_the_last_epoch_only():
    """fastinit.profile's clock (train's _clock) adds the phases of the last epoch: inside
    that epoch's wall time."""
    clock = np.zeros((4, fastinit.kernels.clock.PHASES), dtype=np.int64)
    h = fastinit.train(fastinit.MLP([24, 96, 96, 6], n=4), (X, Y), epochs=4, batch_size=32,
                       threads=1, eval_every=0, _clock=clock)
    assert 0 < clock.sum() * 1e-9 <= h.epoch_time[-1], (clock, h.epoch_time)


def test_profile_reports_scaling_roofline_compile_and_wall_time():
    prof = _profile("relu-sgd")
    pop = prof.populations[0]
    assert prof.compile["how"] in ("compiled", "loaded from the disk cache",
                                   "already compiled in this process")
    rec = prof.recommendation()
    assert rec["threads"] == 1 and "measured at 1 thread(s) only" in rec["reason"]
    assert prof.wall(1) == pytest.approx(prof.compile["seconds"] + pop.seconds(1))
    assert pop.seconds(1) == pytest.approx(pop.epoch[1] + 2 * pop.evaluation[1])
    text = prof.table()
    for row in ("GEMM forward", "GEMM dW", "GEMM dX", "transposes", "elementwise",
                "loss (cross_entropy)", "optimizer (sgd)", "call (threads", "rest",
                "Roofline at 1 thread",
                "Expected wall time", "Recommended: 1 thread(s)", "Compile:"):
        assert row in text, row
    assert "normalization" not in text
    d = json.loads(prof.to_json())
    assert set(d) >= {"machine", "threads", "compile", "populations", "speedup",
                      "recommendation"}


def _stated(epoch: dict, compile_s: float):
    """A profile of stated epoch times (seconds per thread count), one population of 8
    members, one epoch, no evaluation, ``compile_s`` seconds of compiling."""
    pop = fastinit.profiler.PopulationProfile(
        "stated", {"members": 8}, 10, 10, modes={t: "population-parallel" for t in epoch},
        epoch=epoch, evaluation={t: 0.0 for t in epoch}, evaluations=0)
    return fastinit.profiler.Profile("stated", MACHINE, sorted(epoch), [pop],
                                     {"seconds": compile_s})


@pytest.mark.parametrize("epoch,compile_s,threads", [
    ({1: 0.1, 2: 0.38}, 10.0, 1),    # 0.26x: 10.1 s vs 10.38 s was within 10%, 2 was kept
    ({1: 0.1, 2: 0.105}, 0.0, 1),    # slower than 1 thread, though within 10%: not kept
    ({1: 0.1, 2: 0.095}, 10.0, 2),   # as `fastinit sweep` runs it unless 10% is to be had
    ({1: 0.3, 2: 0.1}, 10.0, 2),
])
def test_the_threads_recommended_compare_warm_times_and_never_run_slower(epoch, compile_s,
                                                                         threads):
    """The recommendation compared wall times that include the first call's compile, the
    same at every thread count: 10 s of compile hid that 2 threads ran an epoch at 0.26x the
    speed of 1, and `fastinit profile` recommended 2. It compares warm times now, and keeps
    the default (every thread) only if that measured no slower than the fewest threads."""
    rec = _stated(epoch, compile_s).recommendation()
    assert rec["threads"] == threads, rec["reason"]
    assert rec["wall"] == pytest.approx(compile_s + epoch[threads])


def test_default_thread_counts_double_up_to_every_core():
    counts = fastinit.profiler.thread_counts()
    cores = min(len(os.sched_getaffinity(0)), fastinit.profiler.numba.config.NUMBA_NUM_THREADS)
    assert counts[0] == 1 and counts[-1] == cores
    assert all(b == 2 * a for a, b in zip(counts[:-2], counts[1:-1]))


@pytest.mark.parametrize("kwargs,error,match", [
    ({"threads": 0}, ValueError, r"The 'threads' parameter of fastinit.profile must be an integer >= 1. Got 0"),
    ({"threads": "all"}, TypeError, r"The 'threads' parameter of fastinit.profile must be a "
                                    r"thread count or a list of them. Got 'all'"),
    ({"repeats": 0}, ValueError, r"The 'repeats' parameter of fastinit.profile"),
    ({"optimizer": "adma"}, ValueError, r"The 'optimizer' parameter of fastinit.profile must "
                                        r"be one of .* Got 'adma' instead. Did you mean 'adam'"),
    ({"batch_size": 0}, ValueError, r"The 'batch_size' parameter of fastinit.profile"),
])
def test_bad_arguments_name_fastinit_profile(kwargs, error, match):
    with pytest.raises(error, match=match):
        fastinit.profile(fastinit.MLP([24, 8, 6]), (X, Y), machine=MACHINE,
                         **{"threads": 1, **kwargs})


def test_profile_takes_networks_only():
    with pytest.raises(TypeError, match=r"The 'net' parameter of fastinit.profile must be a "
                                         r"fastinit.MLP \(or ResMLP\). Got list."):
        fastinit.profile([24, 8, 6], (X, Y))


# -- sweep specs: what the sweep takes, and refuses, and nothing else --------------------------

def _every_key():
    """A spec that sets every run key (and every top-level key) the sweep accepts."""
    values = {"scheme": "xavier_normal", "seed": 3, "depth": 1, "width": 16,
              "activation": "leaky_relu", "activation_param": 0.1, "bias_init": "zeros",
              "bias": True, "norm": "batch", "dropout": 0.1, "lr": 0.05,
              "dataset": "blobs", "optimizer": "momentum", "batch_size": 48,
              "drop_last": True, "epochs": 2, "momentum": 0.8, "weight_decay": 1e-4,
              "loss": "cross_entropy", "data_seed": 1, "dtype": "float32",
              "residual": None, "data_init": "lsuv"}
    assert set(values) == {k.name for k in RUN_KEYS}, "a run key the test does not set"
    train = {k: v for k, v in values.items() if k not in ("seed", "residual", "bias")}
    return {"name": "every-key", "max_population": 2, "diagnose": True,
            "data": {"blobs": {"n": 300, "centers": 3}},
            "grid": {"seed": [0, 1, 2], "residual": [None, "rezero"], "bias": [True, False]},
            "train": train}


def test_every_sweep_key_is_accepted():
    spec = _every_key()
    prof = profile_sweep(spec, threads=[1], repeats=1, budget=0.01)
    pops = prof.populations
    # 3 seeds in populations of at most 2: 2 populations per (residual, bias)
    assert sum(p.populations for p in pops) == 2 * 2 * 2
    assert sum(p.runs for p in pops) == 3 * 2 * 2
    assert {(p.config["residual"], p.config["bias"]) for p in pops} == {
        (None, True), (None, False), ("rezero", True), ("rezero", False)}
    for p in pops:
        assert p.config["dataset"] == "blobs" and p.config["optimizer"] == "momentum"
        assert p.steps == 240 // 48 and p.setup > 0            # drop_last: 5 full batches
        assert p.epochs == 2 * p.populations


BAD_SPECS = [
    '[train]\nepochs = 1\nwidht = 8\n',                                 # unknown key
    '[grid]\nloss = ["cross_entropy", "mse"]\n[train]\nepochs = 1\n',  # preflight
    '[train]\nscheme = "dirac"\n',                                      # preflight
    '[train]\nresidual = "fixup"\ndepth = 0\n',
    '[grid]\nseed = [0, 1, 2]\n',                                       # with --max-runs 2
    'name = \n',                                                         # not TOML
]


@pytest.mark.parametrize("body", BAD_SPECS)
def test_bad_specs_get_the_sweeps_errors(tmp_path, capsys, body):
    spec = tmp_path / "spec.toml"
    spec.write_text(body)
    limit = ["--max-runs", "2"]
    assert cli.main(["sweep", str(spec), "--db", str(tmp_path / "r.db"), "-q", *limit]) == 2
    swept = capsys.readouterr().err
    assert cli.main(["profile", str(spec), "-q", *limit]) == 2
    profiled = capsys.readouterr().err
    assert swept.startswith("fastinit sweep: ") and profiled.startswith("fastinit profile: ")
    assert profiled.removeprefix("fastinit profile: ") == swept.removeprefix("fastinit sweep: ")


def test_overrides_are_applied_and_blamed_as_the_sweep_does(tmp_path, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_text("[train]\nepochs = 1\n")
    assert cli.main(["profile", str(spec), "train.optimizer=adma", "-q"]) == 2
    err = capsys.readouterr().err
    assert "optimizer" in err and "(set by the override 'train.optimizer=adma')" in err


# -- the command line ------------------------------------------------------------------------

def test_cli_json_and_out(tmp_path, capsys):
    out = tmp_path / "prof"
    args = ["profile", "--sizes", "24,32,6", "--population", "4", "--batch", "32",
            "--activation", "tanh", "--optimizer", "adam", "--norm", "layer", "--samples",
            "256", "--threads", "1", "--repeats", "1"]
    assert cli.main(args + ["--json", "--out", str(out)]) == 0
    d = json.loads(capsys.readouterr().out)
    pop = d["populations"][0]
    assert pop["config"]["layer_sizes"] == [24, 32, 6] and pop["config"]["members"] == 4
    assert pop["config"]["optimizer"] == "adam" and pop["config"]["norm"] == "layer"
    assert d["machine"]["peak"]["float32"]["gflops"] > 0
    assert d["recommendation"]["threads"] == 1
    assert sorted(os.listdir(out)) == ["profile.json", "profile.md", "profile.png"]
    md = (out / "profile.md").read_text()
    assert "![profile](profile.png)" in md and "| normalization" in md
    assert "Recommended:" in md and "Single-thread GEMM peak" in md
    assert json.loads((out / "profile.json").read_text())["threads"] == [1]


def test_cli_table_for_a_residual_network(capsys):
    assert cli.main(["profile", "--sizes", "24,32,6", "--residual", "rezero", "--blocks", "2",
                     "--population", "2", "--samples", "128", "--threads", "1",
                     "--repeats", "1", "--no-bias", "--dropout", "0.1"]) == 0
    out = capsys.readouterr().out
    assert "ResMLP rezero 24-32x2-6" in out and "no bias" in out and "dropout" in out


@pytest.mark.parametrize("args,match", [
    ([], "give a sweep spec (fastinit profile sweep.toml) or --sizes D0,D1,... (not both)"),
    (["spec.toml", "--sizes", "24,32,6"], "or --sizes D0,D1,... (not both)"),
    (["--sizes", "24,32,32,6", "--residual", "rezero"],
     "--residual takes --sizes IN,WIDTH,OUT (and --blocks N). Got --sizes 24,32,32,6."),
    (["--sizes", "24,32,6", "--threads", "0"], "--threads: must be positive integers"),
    (["--sizes", "24,32,6", "--threads", "1,99999"], "--threads: must be thread counts of at "
                                                     "most"),
    (["--sizes", "24,32,6", "--budget", "-1"], "--budget: must be a positive number of seconds. "
                                               "Got '-1'."),
    (["spec.toml", "--budget", "nan"], "--budget: must be a positive number of seconds"),
    (["spec.toml", "--batch", "64", "--dtype", "float64"], "--batch, --dtype are for --sizes "
     "only: a sweep spec sets its own (in the file, or as PATH=VALUE overrides such as "
     "train.batch_size=64). Got --batch 64, --dtype float64 with spec.toml."),
    (["spec.toml", "--no-bias"], "--no-bias is for --sizes only: a sweep spec sets its own "),
    (["--sizes", "24,32,6", "--blocks", "4"], "--blocks is for --residual networks (a ResMLP "
     "of --blocks residual blocks). Got --blocks 4 without --residual."),
])
def test_cli_errors(capsys, args, match):
    try:
        code = cli.main(["profile", *args])
    except SystemExit as e:             # argparse's own errors
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    assert match in err
    assert "timing" not in err          # every argument checked before anything is printed
