"""Contract 3: a member's numbers are the same alone and in any population, on any threads.

Every setting that can differ between members (scheme, seed, learning rate, momentum, weight
decay, activation parameter) is carried per member down to the kernels; these tests build
populations that mix them and compare each member with its solo run, bitwise.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastinit
from fastinit.registry import REQUIRED
from reference import call

DIGITS = fastinit.datasets.digits()
# values for the schemes whose parameters have no default
REQUIRED_PARAMS = {"constant": {"value": 0.1}, "sparse": {"sparsity": 0.5}}


def _dense_specs():
    """One spec per registered scheme that can initialise a dense layer."""
    specs = []
    for name, s in fastinit.schemes().items():
        if any(p.default is REQUIRED for p in s.params):
            if name not in REQUIRED_PARAMS:
                continue                     # a scheme a test registered, with no defaults
            specs.append(fastinit.spec(name, **REQUIRED_PARAMS[name]))
        else:
            specs.append(fastinit.spec(name))
    out = []
    for sp in specs:
        try:
            fastinit.MLP([6, 5, 4], init=sp, dtype=np.float64)
        except ValueError:                   # conv-only schemes (dirac, delta_orthogonal)
            continue
        out.append(sp)
    return out


SPECS = _dense_specs()
TRAIN = dict(epochs=2, batch_size=16, optimizer="momentum")


def _data(n=96, d=12, classes=3, seed=0):
    g = np.random.default_rng(seed)
    return g.standard_normal((n, d)), g.integers(0, classes, n)


def test_every_builtin_dense_scheme_is_mixed():
    names = {s.scheme for s in SPECS}
    assert {"zeros", "ZerO", "orthogonal", "torch_linear", "edge_of_chaos", "sparse",
            "constant", "he_normal", "kaiming_uniform", "identity"} <= names
    assert "dirac" not in names


ARCHS = {"plain": {}, "bias-free": {"bias": False}, "batch-norm": {"norm": "batch"},
         "layer-norm": {"norm": "layer", "bias": False}}


@pytest.mark.parametrize("arch", list(ARCHS))
@pytest.mark.parametrize("activation", ["relu", "tanh", "leaky_relu", "softplus"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_population_mixing_every_scheme_equals_each_member_alone(activation, dtype, arch):
    x, y = _data()
    K = len(SPECS)
    rates = [0.1 * (k % 3) for k in range(K)]         # dropout, per member
    seeds = [1000 + k for k in range(K)]
    lrs = [0.01 * (1 + k % 5) for k in range(K)]
    momenta = [0.5 + 0.1 * (k % 4) for k in range(K)]
    decays = [1e-4 * (k % 3) for k in range(K)]
    params = [None] * K if activation in ("relu", "tanh") else \
        [0.05 + 0.1 * (k % 3) for k in range(K)]
    pop = fastinit.MLP([12, 16, 16, 3], activation, init=SPECS, n=K, seed=seeds, dtype=dtype,
                       activation_param=params, dropout=rates, **ARCHS[arch])
    hp = fastinit.train(pop, (x, y), lr=lrs, momentum=momenta, weight_decay=decays, **TRAIN)
    for k, sp in enumerate(SPECS):
        solo = fastinit.MLP([12, 16, 16, 3], activation, init=sp, seed=seeds[k], dtype=dtype,
                            activation_param=params[k], dropout=rates[k], **ARCHS[arch])
        hs = fastinit.train(solo, (x, y), lr=lrs[k], momentum=momenta[k],
                            weight_decay=decays[k], **TRAIN)
        assert solo.activation_param[0] == pop.activation_param[k], sp
        np.testing.assert_array_equal(pop.params[k], solo.params[0], err_msg=str(sp))
        np.testing.assert_array_equal(hp.train_loss[:, k], hs.train_loss[:, 0], err_msg=str(sp))


# (sizes, dtype, optimizer, optimizer states, network options): two members to a group of
# GROUP_BYTES (1 MiB) each way: 44k float64 parameters for SGD; 37k float32 parameters and
# Adam's two states, with batch norm (its running statistics per member) and dropout
GROUPED = {"f64-sgd": ([12, 200, 200, 3], np.float64, "sgd", 0, {}),
           "f32-adam-norm-dropout": ([12, 180, 180, 3], np.float32, "adam", 2,
                                     {"norm": "batch", "dropout": 0.1})}


@pytest.mark.parametrize("case", list(GROUPED))
@pytest.mark.parametrize("shuffle", ["shared", "per_member"])
def test_members_stepped_in_groups_equal_each_member_alone(shuffle, case):
    """train_epoch steps the members sharing the data order in groups (each step's batch
    gathered once per group), and evaluate likewise: members in every position of a group, a
    member diverging part way through an epoch beside a live one, a group whose members all
    diverge (its steps stop) are each their solo run: parameters, losses, divergence step and
    outputs."""
    sizes, dt, optimizer, states, options = GROUPED[case]
    x, y = _data()
    wide = _data(n=600)[0]
    seeds, lrs = [11, 12, 13, 14, 15, 16], [0.01, 1e5, 1e5, 2e5, 0.03, 0.04]
    if optimizer == "adam":                 # Adam's steps are lr-sized: diverge by a huge lr
        lrs = [1e-3, 1e30, 1e30, 1e31, 2e-3, 3e-3]
    pop = fastinit.MLP(sizes, init="he_normal", n=6, seed=seeds, dtype=dt, **options)
    order = np.zeros((1 if shuffle == "shared" else 6, len(x)), dtype=np.int64)
    state = np.zeros((6, pop.params.shape[1] if states else 0), dtype=dt)
    expected = 2 if shuffle == "shared" else 1
    assert call(fastinit.kernels.train.group_size, pop.params, state,
                state if states == 2 else state[:, :0], order) == expected
    kw = dict(epochs=2, batch_size=16, shuffle=shuffle, optimizer=optimizer)
    hp = fastinit.train(pop, (x, y), lr=lrs, **kw)
    # member 1 diverges beside a live member; 2 and 3, a whole group, both diverge
    assert hp.diverged.tolist() == [False, True, True, True, False, False]
    assert min(hp.diverged_step[1:4]) > 0    # part way through, not at the start
    for k in range(6):
        solo = fastinit.MLP(sizes, init="he_normal", seed=seeds[k], dtype=dt, **options)
        hs = fastinit.train(solo, (x, y), lr=lrs[k], **kw)
        np.testing.assert_array_equal(pop.params[k], solo.params[0])
        np.testing.assert_array_equal(hp.train_loss[:, k], hs.train_loss[:, 0])
        assert hp.diverged_step[k] == hs.diverged_step[0]
        # evaluation in groups too, over several batches of 256
        np.testing.assert_array_equal(pop.forward(wide)[k], solo.forward(wide)[0])


def test_zero_relu_member_is_the_zero_network_in_any_population():
    """relu'(0) = 1 belongs to the ZerO member alone, never to the whole population (the
    issue's example: member 0's losses were 0.714 alone and 0.865 beside he_normal)."""
    kw = dict(epochs=5, batch_size=32, lr=0.05)
    alone = fastinit.MLP([64, 64, 64, 10], "relu", init="ZerO", dtype=np.float64)
    he = fastinit.MLP([64, 64, 64, 10], "relu", init="he_normal", seed=1, dtype=np.float64)
    mixed = fastinit.MLP([64, 64, 64, 10], "relu", init=["ZerO", "he_normal"], n=2,
                         seed=[0, 1], dtype=np.float64)
    ha, hh, hm = (fastinit.train(net, DIGITS, **kw) for net in (alone, he, mixed))
    assert mixed.activation_param.tolist() == [1.0, 0.0]
    np.testing.assert_array_equal(ha.train_loss[:, 0], hm.train_loss[:, 0])
    np.testing.assert_array_equal(hh.train_loss[:, 0], hm.train_loss[:, 1])
    assert ha.train_loss[-1, 0] < 0.5          # the ZerO network learns


def test_residual_zero_member_alone_equals_member_in_population():
    x, y = _data(d=8)
    pop = fastinit.ResMLP(8, 12, 2, 3, "relu", init=["he_normal", "xavier_normal"],
                          residual="rezero", n=2, seed=[4, 5], dtype=np.float64,
                          activation_param=[0.0, 1.0])
    solo = fastinit.ResMLP(8, 12, 2, 3, "relu", init="xavier_normal", residual="rezero",
                           seed=5, dtype=np.float64, activation_param=1.0)
    fastinit.train(pop, (x, y), lr=[0.02, 0.05], **TRAIN)
    fastinit.train(solo, (x, y), lr=0.05, **TRAIN)
    np.testing.assert_array_equal(pop.params[1], solo.params[0])


@pytest.mark.parametrize("activation,values", [("leaky_relu", [0.2, None, 0.5, 0.01, 0.2]),
                                               ("elu", [0.5, None, 2.0, 1.0, 0.5])])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_edge_of_chaos_member_takes_its_own_activation_parameter_in_any_population(
        activation, values, dtype):
    """edge_of_chaos's critical variance follows each member's activation parameter, never the
    population's: member k alone and in a population mixing parameters, schemes and explicit
    values draws and trains the same bits (the last member gives its scheme's value)."""
    x, y = _data()
    inits = ["edge_of_chaos", "edge_of_chaos", fastinit.spec("edge_of_chaos", sigma_b2=0.2),
             "he_normal", fastinit.spec("edge_of_chaos", activation_param=1.5)]
    seeds = [11, 12, 13, 14, 15]
    pop = fastinit.MLP([12, 16, 16, 3], activation, init=inits, n=5, seed=seeds, dtype=dtype,
                       activation_param=values)
    assert [s.kwargs.get("activation_param") for s in pop.init] == [
        values[0], None, values[2], None, 1.5]
    hp = fastinit.train(pop, (x, y), lr=0.05, **TRAIN)
    for k in range(5):
        solo = fastinit.MLP([12, 16, 16, 3], activation, init=inits[k], seed=seeds[k],
                            dtype=dtype, activation_param=values[k])
        assert solo.init == [pop.init[k]] and solo.bias_init == [pop.bias_init[k]]
        hs = fastinit.train(solo, (x, y), lr=0.05, **TRAIN)
        np.testing.assert_array_equal(pop.params[k], solo.params[0], err_msg=str(k))
        np.testing.assert_array_equal(hp.train_loss[:, k], hs.train_loss[:, 0])


def test_member_and_copy_keep_their_own_activation_parameter(tmp_path):
    net = fastinit.MLP([5, 7, 2], "relu", init=["ZerO", "he_normal", "ZerO"], n=3, seed=[1, 2, 3])
    assert net.activation_param.tolist() == [1.0, 0.0, 1.0]
    assert net.member(1).activation_param.tolist() == [0.0]
    assert net.member(2).arch.act_param[0].tolist() == [1.0, 0.0]
    net.save(tmp_path / "n.npz")
    assert fastinit.MLP.load(tmp_path / "n.npz").activation_param.tolist() == [1.0, 0.0, 1.0]
    x = np.random.default_rng(0).standard_normal((4, 5))
    np.testing.assert_array_equal(net.member(2).forward(x)[0], net.forward(x)[2])


_SCRIPT = """
import hashlib, json, numpy as np, numba, fastinit
g = np.random.default_rng(0)
x, y = g.standard_normal((96, 12)), g.integers(0, 3, 96)
specs = [fastinit.spec(s) for s in ("ZerO", "he_normal", "orthogonal", "torch_linear", "zeros")]
net = fastinit.MLP([12, 16, 16, 3], "relu", init=specs, n=5, seed=[5, 6, 7, 8, 9])
fastinit.train(net, (x, y), epochs=2, batch_size=16, optimizer="adam", lr=[1e-3] * 5)
print(json.dumps({"threads": numba.get_num_threads(),
                  "params": hashlib.sha256(net.params.tobytes()).hexdigest()}))
"""


def test_mixed_population_bitwise_on_one_and_two_threads():
    out = []
    for threads in (1, 2):
        env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
        res = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True,
                             text=True, check=True)
        out.append(json.loads(res.stdout.strip().splitlines()[-1]))
    assert [o.pop("threads") for o in out] == [1, 2]
    assert out[0] == out[1]


def test_sweep_members_differing_in_every_member_key_match_their_solo_runs(tmp_path):
    """A sweep puts runs that differ only in member keys into one population; each run's
    stored numbers equal the same run trained alone (max_population = 1)."""
    from fastinit.store import Store
    from fastinit.sweep import run_sweep
    from fastinit.sweepspec import RUN_KEYS, SweepSpec
    member = {k.name for k in RUN_KEYS if k.member}
    grid = {"scheme": ["ZerO", "he_normal"], "seed": [0, 1], "lr": [0.05],
            "activation_param": [None, 0.5], "bias_init": [None, {"name": "normal", "std": 0.1}],
            "momentum": [0.5, 0.9], "weight_decay": [0.0, 1e-3]}
    assert set(grid) <= member
    spec = {"name": "m", "grid": grid,
            "train": {"epochs": 2, "width": 16, "depth": 2, "optimizer": "momentum",
                      "dtype": "float64", "activation": "relu"}}
    assert len(list(SweepSpec.from_dict(spec).populations())) == 1   # one population of 64
    tables = []
    for mp, name in ((256, "together.db"), (1, "alone.db")):
        run_sweep({**spec, "max_population": mp}, tmp_path / name)
        with Store(tmp_path / name) as s:
            tables.append({r["id"]: (r["curves"], r["diagnostics"]) for r in s.rows()})
    assert len(tables[0]) == 64 and tables[0] == tables[1]
