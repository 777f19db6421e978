"""fastinit.train: optimizers, the scaling contract, symmetry facts, divergence, bad data."""
import json
import os
import subprocess
import sys
import warnings

import numba
import numpy as np
import pytest

import fastinit
import reference

DIGITS = fastinit.datasets.digits()


def _small_data(n=40, d=6, c=3, seed=0):
    g = np.random.default_rng(seed)
    return g.standard_normal((n, d)), g.integers(0, c, n)


# -- optimizers ----------------------------------------------------------------------------

def _reference_steps(net, x, y, optimizer, lr, steps, mu=0.9, b1=0.9, b2=0.999, eps=1e-8,
                     wd=0.0):
    """The optimizer's formula written out, applied to full-batch gradients from the net."""
    ref = net.copy()
    state = [[np.zeros_like(p) for p in ref.weights + ref.biases] for _ in range(2)]
    for t in range(1, steps + 1):
        dw, db = ref.gradients(x, y)
        for i, (p, g) in enumerate(zip(ref.weights + ref.biases, dw + db)):
            p0 = p.copy()
            if optimizer == "sgd":
                p -= lr * (g + wd * p0)
            elif optimizer in ("momentum", "nesterov"):
                g = g + wd * p0
                state[0][i] = mu * state[0][i] + g
                p -= lr * (g + mu * state[0][i] if optimizer == "nesterov" else state[0][i])
            else:
                if optimizer == "adamw":
                    p *= 1 - lr * wd
                else:
                    g = g + wd * p0
                m = state[0][i] = b1 * state[0][i] + (1 - b1) * g
                v = state[1][i] = b2 * state[1][i] + (1 - b2) * g * g
                mhat, vhat = m / (1 - b1 ** t), v / (1 - b2 ** t)
                p -= lr * mhat / (np.sqrt(vhat) + eps)
    return ref


@pytest.mark.parametrize("optimizer", fastinit.OPTIMIZERS)
@pytest.mark.parametrize("wd", [0.0, 0.01])
def test_optimizer_matches_formula(optimizer, wd):
    x, y = _small_data()
    net = fastinit.MLP([6, 8, 3], activation="tanh", init="xavier_normal", n=2, seed=1,
                       dtype=np.float64)
    ref = _reference_steps(net, x, y, optimizer, 0.05, 5, wd=wd)
    fastinit.train(net, (x, y), epochs=5, batch_size=len(x), optimizer=optimizer, lr=0.05,
                   weight_decay=wd, momentum=0.9)
    np.testing.assert_allclose(net.params, ref.params, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("optimizer", fastinit.OPTIMIZERS)
def test_optimizer_matches_torch(optimizer):
    torch = pytest.importorskip("torch")
    x, y = _small_data()
    net = fastinit.MLP([6, 8, 3], activation="relu", init="he_normal", n=1, seed=2,
                       dtype=np.float64)
    lins = [torch.nn.Linear(6, 8, dtype=torch.float64), torch.nn.Linear(8, 3, dtype=torch.float64)]
    with torch.no_grad():
        for l, lin in enumerate(lins):
            lin.weight.copy_(torch.from_numpy(net.weights[l][0].copy()))
            lin.bias.copy_(torch.from_numpy(net.biases[l][0].copy()))
    model = torch.nn.Sequential(lins[0], torch.nn.ReLU(), lins[1])
    params = list(model.parameters())
    opt = {"sgd": lambda: torch.optim.SGD(params, lr=0.05, weight_decay=0.01),
           "momentum": lambda: torch.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=0.01),
           "nesterov": lambda: torch.optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True,
                                               weight_decay=0.01),
           "adam": lambda: torch.optim.Adam(params, lr=0.05, weight_decay=0.01),
           "adamw": lambda: torch.optim.AdamW(params, lr=0.05, weight_decay=0.01)}[optimizer]()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(6):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(xt), yt).backward()
        opt.step()
    fastinit.train(net, (x, y), epochs=6, batch_size=len(x), optimizer=optimizer, lr=0.05,
                   weight_decay=0.01)
    for l, lin in enumerate(lins):
        np.testing.assert_allclose(net.weights[l][0], lin.weight.detach().numpy(), rtol=1e-9,
                                   atol=1e-12)
        np.testing.assert_allclose(net.biases[l][0], lin.bias.detach().numpy(), rtol=1e-9,
                                   atol=1e-12)


@pytest.mark.parametrize("activation,params", [("relu", [0.0, 1.0, 0.0]),
                                               ("leaky_relu", [0.0, 0.1, 2.0])])
def test_a_training_step_takes_the_reference_gradient_whatever_phi_prime_reads(activation,
                                                                              params):
    """One full-batch SGD step (lr 1) moves each member by its NumPy reference gradient,
    whether the step reads phi'(Z) from the activations (relu with relu'(0) = 0, leaky relu:
    no Z stored) or from Z (relu'(0) = 1, where A = 0 cannot tell Z = 0 from Z < 0), the
    members mixed in one population."""
    x, y = _small_data()
    net = fastinit.MLP([6, 16, 16, 3], activation=activation, activation_param=params,
                       init="he_normal", n=3, seed=4, dtype=np.float64)
    before = net.copy()
    fastinit.train(net, (x, y), epochs=1, batch_size=len(x), lr=1.0, eval_every=0)
    for k, param in enumerate(params):
        ws = [w[k] for w in before.weights]
        bs = [b[k] for b in before.biases]
        _, dws, dbs = reference.mlp_grads(ws, bs, x, y, activation, param, "cross_entropy")
        for l in range(3):
            np.testing.assert_allclose(ws[l] - net.weights[l][k], dws[l], rtol=1e-10,
                                       atol=1e-13)
            np.testing.assert_allclose(bs[l] - net.biases[l][k], dbs[l], rtol=1e-10,
                                       atol=1e-13)


# -- the scaling contract --------------------------------------------------------------------

INITS = ["he_normal", "xavier_uniform", "orthogonal", "lecun_normal", "torch_linear"]


def _population(dtype, seeds=(3, 4, 5, 6, 7)):
    return fastinit.MLP([64, 32, 24, 10], activation="tanh", init=INITS, n=5, seed=list(seeds),
                        dtype=dtype)


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_member_trajectory_identical_alone_or_in_population(dtype, optimizer):
    lrs = np.array([0.05, 0.02, 0.05, 0.01, 0.03])
    pop = _population(dtype)
    hp = fastinit.train(pop, DIGITS, epochs=3, batch_size=50, lr=lrs, optimizer=optimizer)
    for k in (0, 2, 4):
        alone = fastinit.MLP([64, 32, 24, 10], activation="tanh", init=INITS[k], n=1,
                             seed=[3 + k], dtype=dtype)
        ha = fastinit.train(alone, DIGITS, epochs=3, batch_size=50, lr=lrs[k],
                            optimizer=optimizer)
        np.testing.assert_array_equal(alone.params[0], pop.params[k])
        np.testing.assert_array_equal(ha.test_loss[:, 0], hp.test_loss[:, k])
    # and inside a bigger population with other members around it
    big = fastinit.MLP([64, 32, 24, 10], activation="tanh", init=INITS * 3, n=15,
                       seed=[3, 4, 5, 6, 7] * 3, dtype=dtype)
    fastinit.train(big, DIGITS, epochs=3, batch_size=50, lr=np.tile(lrs, 3), optimizer=optimizer)
    np.testing.assert_array_equal(big.params[10:], pop.params)


_THREAD_SCRIPT = """
import hashlib, json, numba, numpy as np, fastinit
ds = fastinit.datasets.digits()
out = {"threads": numba.get_num_threads()}
for dt in (np.float32, np.float64):
    for opt in ("sgd", "adamw"):
        net = fastinit.MLP([64, 48, 10], activation="gelu_tanh", init=["he_normal", "orthogonal",
                           "xavier_normal"], n=3, seed=11, dtype=dt)
        h = fastinit.train(net, ds, epochs=2, batch_size=37, lr=0.03, optimizer=opt)
        out[dt.__name__ + opt] = hashlib.sha256(net.params.tobytes()).hexdigest()
        out[dt.__name__ + opt + "loss"] = h.test_loss.tolist()
# one member big enough that two threads split its products (train_epoch_split): on two
# threads epoch 1 splits, epoch 2 does not, epoch 5 goes the way 3 and 4 did not
one = fastinit.MLP([64, 256, 256, 10], activation="tanh", init="orthogonal", n=1, seed=2)
assert fastinit.spread.split_worthwhile(one, 48)
fastinit.train(one, ds, epochs=5, batch_size=48, lr=0.01, optimizer="adam")
out["split"] = hashlib.sha256(one.params.tobytes()).hexdigest()
print(json.dumps(out))
"""


@pytest.mark.slow
def test_training_bitwise_identical_on_one_and_two_threads():
    runs = []
    for threads in (1, 2):
        env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
        res = subprocess.run([sys.executable, "-c", _THREAD_SCRIPT], env=env, check=True,
                             capture_output=True, text=True)
        runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
    assert runs[0].pop("threads") == 1 and runs[1].pop("threads") == 2
    assert runs[0] == runs[1]


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="one thread only")
@pytest.mark.parametrize("settings", [
    dict(activation="relu"), dict(activation="relu", activation_param=1.0),
    dict(activation="leaky_relu", activation_param=0.1), dict(activation="linear"),
    dict(activation="relu", dropout=0.2), dict(activation="relu", norm="batch"),
    dict(activation="relu", bias=False), dict(activation="tanh", dtype=np.float64)],
    ids=["relu", "relu1", "leaky", "linear", "dropout", "batchnorm", "nobias", "tanh64"])
def test_a_row_split_epoch_has_the_bits_of_one_thread(settings, monkeypatch):
    """train_epoch_split (one member's products cut by rows over 2 threads, the bias,
    activation and derivative in the GEMMs' epilogues where one thread's passes put them, Z
    stored only where read) gives one thread's bits, epilogue by epilogue."""
    x, y = DIGITS.x_train[:512], DIGITS.y_train[:512]
    nets = [fastinit.MLP([64, 128, 128, 10], seed=3, **settings) for _ in range(2)]
    assert fastinit.spread.splits(nets[0], 128, 2)
    calls = []
    real = fastinit.kernels.train.train_epoch_split
    monkeypatch.setattr(fastinit.kernels.train, "train_epoch_split",
                        lambda *a: calls.append(1) or real(*a))
    for net, threads in zip(nets, (1, 2)):
        fastinit.train(net, (x, y), epochs=2, batch_size=128, lr=0.05, optimizer="momentum",
                       threads=threads, _adaptive=False)
    assert len(calls) == 2
    np.testing.assert_array_equal(nets[0].params, nets[1].params)
    np.testing.assert_array_equal(nets[0].norm_state, nets[1].norm_state)


_FAULTS_SCRIPT = """
import json, resource, numpy as np, fastinit
g = np.random.default_rng(0)
x, y = g.standard_normal((1280, 784)).astype(np.float32), g.integers(0, 10, 1280)
out = {}
for name, n in (("population", 2), ("split", 1)):     # 2 threads: a block each; split rows
    net = fastinit.MLP([784, 256, 256, 10], n=n)
    faults = []                                       # evaluated on both sets every epoch
    fastinit.train(net, (x[:1024], y[:1024], x[1024:], y[1024:]), epochs=4, batch_size=128,
                   threads=2,
                   callback=lambda e, h: faults.append(resource.getrusage(
                       resource.RUSAGE_SELF).ru_minflt))
    lay = fastinit.kernels.dense.layout(net.arch, fastinit.kernels.gemm.padded(128))
    out[name] = {"after_first": (faults[-1] - faults[0]) / 3,
                 "scratch_pages": int(lay.total) * 4 // 4096}
print(json.dumps(out))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc tunables")
def test_epochs_after_the_first_map_no_memory():
    """An epoch's scratch and gradient, and its evaluations' scratch, are allocated once per
    run, not once per epoch: with an allocator that gives freed memory back at once (glibc, a
    fixed mmap threshold), the 4 MB of training scratch mapped afresh every epoch cost about a
    millisecond of page faults, and each evaluation as much again."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
    res = subprocess.run([sys.executable, "-c", _FAULTS_SCRIPT], env=env, check=True,
                         capture_output=True, text=True)
    out = json.loads(res.stdout.strip().splitlines()[-1])
    for name, seen in out.items():
        assert seen["scratch_pages"] > 500, seen
        assert seen["after_first"] < 0.05 * seen["scratch_pages"], (name, seen)


def test_a_callback_may_raise_the_thread_count():
    """An epoch's scratch has a row per thread for as many threads as Numba allows, so a
    callback that raises the count mid-run gets more threads, not an error; the members' bits
    stay those of one thread."""
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("one thread only")
    x, y = DIGITS.x_train[:200], DIGITS.y_train[:200]
    nets = [fastinit.MLP([64, 32, 10], n=4, seed=[0, 1, 2, 3]) for _ in range(2)]
    prev = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        fastinit.train(nets[0], (x, y), epochs=3, batch_size=50,
                       callback=lambda e, h: numba.set_num_threads(2))
        numba.set_num_threads(1)
        fastinit.train(nets[1], (x, y), epochs=3, batch_size=50)
    finally:
        numba.set_num_threads(prev)
    np.testing.assert_array_equal(nets[0].params, nets[1].params)


def _split_ways(worth, seconds, epochs):
    """The ways a fresh SplitChoice takes over ``epochs`` epochs timed by seconds(e, split):
    "s" a split epoch, "-" a plain one."""
    c, went = fastinit.spread.SplitChoice(worth), ""
    for e in range(1, epochs + 1):
        split = c.split()
        went += "s" if split else "-"
        c.took(split, seconds(e, split))
    return went


def test_split_choice_keeps_the_faster_way_and_tries_the_other_ever_less_often():
    def ways(worth, seconds):
        return _split_ways(worth, seconds, 60)
    split_faster = lambda e, split: 1.0 if split else 2.0
    assert ways(True, split_faster) == "s-ss-ssss-" + "s" * 8 + "-" + "s" * 16 + "-" + "s" * 24
    busy_after_30 = lambda e, split: (3.0 if e > 30 else 1.0) if split else 2.0
    # epoch 31 splits at 3x its last time: epoch 32 tries one thread at once and keeps it
    assert ways(True, busy_after_30)[30:] == "s---s----s--------s" + "-" * 11
    assert ways(False, split_faster) == "-" * 60        # not worth splitting: never tried


def test_split_choice_splits_only_when_it_pays_and_notices_a_core_coming_free():
    """A split no more than 10% faster is not worth a second busy core (with another process
    on one core both ways take about as long, and the timing noise picked either); while one
    thread is kept, splitting is tried again at least every 16 epochs, so a core that comes
    free is used within 16 epochs (the slower-epoch trigger only notices load arriving)."""
    def ways(seconds):
        return _split_ways(True, seconds, 160)
    assert "ss" not in ways(lambda e, split: 0.95 if split else 1.0)
    assert ways(lambda e, split: 0.85 if split else 1.0)[-40:].count("s") > 36
    free_after_100 = lambda e, split: (0.6 if e > 100 else 1.2) if split else 1.0
    went = ways(free_after_100)
    assert went[:100].count("s") < 10                   # a try every 16 epochs at most
    assert "s" in went[100:116] and went[-40:].count("s") > 36


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 Numba threads")
def test_one_split_choice_serves_every_call_on_the_same_shapes():
    x, y = DIGITS.x_train[:256], DIGITS.y_train[:256]
    net = fastinit.MLP([64, 256, 256, 10], n=1, seed=0, dtype=np.float64)
    for _ in range(3):
        fastinit.train(net, (x, y), epochs=1, batch_size=64, threads=2, eval_every=0)
    c = fastinit.spread.for_shape(net, 64, 2)
    assert c.worth and c.epochs == 3               # split, then not, then the faster way
    assert c.seconds[True] > 0 and c.seconds[False] > 0
    assert fastinit.spread.for_shape(net, 64, 1) is not c


def test_shuffle_is_shared_by_default_and_per_member_on_request():
    x, y = DIGITS.x_train[:200], DIGITS.y_train[:200]
    a = fastinit.MLP([64, 10], init="zeros", n=2, seed=0, dtype=np.float64)
    fastinit.train(a, (x, y), epochs=1, batch_size=10, lr=0.1, seed=4)
    np.testing.assert_array_equal(a.params[0], a.params[1])     # same init, same batches
    b = fastinit.MLP([64, 10], init="zeros", n=2, seed=0, dtype=np.float64)
    fastinit.train(b, (x, y), epochs=1, batch_size=10, lr=0.1, seed=4, shuffle="per_member")
    assert not np.array_equal(b.params[0], b.params[1])
    c = fastinit.MLP([64, 10], init="zeros", n=1, seed=0, dtype=np.float64)
    fastinit.train(c, (x, y), epochs=1, batch_size=10, lr=0.1, seed=5)
    assert not np.array_equal(c.params[0], a.params[0])         # another data seed



def test_each_epochs_orders_are_the_documented_permutations(monkeypatch):
    """The data order of epoch e: permutation(n, seed, ORDER + e) shared, or per member
    permutation(n, (key * 0x9E3779B97F4A7C15 + seed) mod 2^64, member << 32 | ORDER + e) (a
    member's own, whatever population it is in)."""
    from fastinit import datasets, kernels, streams
    x, y = DIGITS.x_train[:77], DIGITS.y_train[:77]
    real, seen = kernels.train.train_epoch, []

    def epoch(lo, hi, *args, **kwargs):
        seen.append(args[6].copy())                  # train_epoch's order
        return real(lo, hi, *args, **kwargs)
    monkeypatch.setattr(kernels.train, "train_epoch", epoch)
    net = fastinit.MLP([64, 10], n=3, seed=[7, 2**40, 5])
    for shuffle in ("shared", "per_member"):
        seen.clear()
        fastinit.train(net, (x, y), epochs=2, batch_size=16, seed=9, shuffle=shuffle,
                       threads=1, eval_every=0)
        for e, order in enumerate(seen, 1):
            if shuffle == "shared":
                want = [datasets.permutation(77, 9, streams.ORDER + e)]
            else:
                want = [datasets.permutation(77, (int(k) * 0x9E3779B97F4A7C15 + 9) % 2**64,
                                             (int(m) << 32) | (streams.ORDER + e))
                        for k, m in zip(net.keys, net.members)]
            np.testing.assert_array_equal(order, np.stack(want))


# -- the symmetry facts ----------------------------------------------------------------------

@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_zero_init_hidden_weights_never_move(activation):
    x, y = DIGITS.x_train[:256], DIGITS.y_train[:256]
    net = fastinit.MLP([64, 32, 32, 10], activation=activation, init="zeros", n=1,
                       dtype=np.float64)
    h = fastinit.train(net, (x, y), epochs=25, batch_size=32, lr=0.1)   # 200 steps
    assert np.all(net.weights[0] == 0) and np.all(net.weights[1] == 0)
    assert np.all(net.weights[2] == 0) and np.all(net.biases[0] == 0)
    assert np.any(net.biases[2] != 0)           # only the output bias learns
    assert h.train_loss[-1, 0] < h.train_loss[0, 0]


def test_constant_init_keeps_hidden_units_identical():
    x, y = DIGITS.x_train[:256], DIGITS.y_train[:256]
    net = fastinit.MLP([64, 32, 32, 10], activation="tanh", init=fastinit.spec("constant",
                       value=0.05), bias_init=fastinit.spec("constant", value=0.01), n=1,
                       dtype=np.float64)
    fastinit.train(net, (x, y), epochs=25, batch_size=32, lr=0.1)       # 200 steps
    for l in range(2):
        w = net.weights[l][0]
        assert np.all(w == w[0]), "every hidden unit has the same incoming weights"
        assert np.linalg.matrix_rank(w) == 1
        assert np.all(net.biases[l][0] == net.biases[l][0][0])
    out = net.weights[2][0]                      # outgoing weights identical per unit column
    assert np.all(out == out[:, :1])


def test_he_normal_learns_digits():
    net = fastinit.MLP([64, 128, 64, 10], activation="relu", init="he_normal", n=3, seed=0,
                       dtype=np.float64)
    h = fastinit.train(net, DIGITS, epochs=30, batch_size=32, lr=0.05, optimizer="momentum")
    assert np.all(h.test_acc[-1] >= 0.95), h.test_acc[-1]
    assert h.test_acc.shape == (31, 3) and np.all(h.epoch_time[1:] > 0)


# -- divergence ------------------------------------------------------------------------------

def test_divergent_member_is_frozen_and_flagged_others_unaffected():
    lrs = np.array([0.05, 1e6, 0.05])
    net = fastinit.MLP([64, 32, 10], activation="relu", init="he_normal", n=3, seed=[1, 2, 3],
                       dtype=np.float32)
    h = fastinit.train(net, DIGITS, epochs=4, batch_size=64, lr=lrs, optimizer="sgd")
    assert h.diverged.tolist() == [False, True, False]
    assert h.diverged_step[1] >= 0 and h.diverged_step[0] == -1
    assert np.all(np.isfinite(h.test_loss[:, [0, 2]]))
    calm = fastinit.MLP([64, 32, 10], activation="relu", init="he_normal", n=2, seed=[1, 3],
                        dtype=np.float32)
    hc = fastinit.train(calm, DIGITS, epochs=4, batch_size=64, lr=0.05, optimizer="sgd")
    np.testing.assert_array_equal(calm.params, net.params[[0, 2]])
    np.testing.assert_array_equal(hc.test_loss, h.test_loss[:, [0, 2]])
    before = net.params[1].copy()
    fastinit.train(net, DIGITS, epochs=1, batch_size=64, lr=lrs)   # stays frozen
    np.testing.assert_array_equal(net.params[1], before)
    assert net.diverged[1]


def test_the_progress_bar_leaves_diverged_members_out_of_its_mean(capsys):
    """A diverged member keeps the test accuracy of its weights from before the bad step: the
    bar averaged it in with the members that trained, so lrs [0.05, 1e6, 0.05] showed a mean
    well below theirs and no sign of the divergence. Now the mean is over the members that
    trained, and the bar says how many diverged."""
    pytest.importorskip("tqdm")
    net = fastinit.MLP([64, 32, 10], activation="relu", init="he_normal", n=3, seed=[1, 2, 3],
                       dtype=np.float32)
    h = fastinit.train(net, DIGITS, epochs=2, batch_size=64, lr=[0.05, 1e6, 0.05],
                       progress=True)
    assert h.diverged.tolist() == [False, True, False]
    trained = float(np.mean(h.test_acc[-1, [0, 2]]))
    assert f"test_acc={trained:.4g}, 1 diverged" in capsys.readouterr().err


def test_the_progress_bar_says_when_every_member_diverged(capsys):
    """Without a test split the bar shows the training loss, NaN for a diverged member: when
    every member diverged the bar took it for an epoch not evaluated and said nothing. Now it
    says how many diverged."""
    pytest.importorskip("tqdm")
    x, y = DIGITS.x_train[:256], DIGITS.y_train[:256]
    net = fastinit.MLP([64, 32, 10], activation="relu", init="he_normal", n=2, seed=[1, 2],
                       dtype=np.float32)
    h = fastinit.train(net, (x, y), epochs=2, batch_size=64, lr=1e6, progress=True)
    assert h.diverged.tolist() == [True, True]
    assert "2 diverged" in capsys.readouterr().err


def test_divergent_member_keeps_its_running_statistics_from_before_that_step():
    """Batch norm updates its running statistics in the forward pass: a member frozen at a
    step keeps the ones it had before that step (its solo run of the steps before), as it
    keeps its parameters, not the step's non-finite ones."""
    x, y = _small_data()
    lrs = [0.05, 1e200, 0.05]
    net = fastinit.MLP([6, 16, 16, 3], n=3, seed=[1, 2, 3], norm="batch", dtype=np.float64)
    alone = net.member(1)
    h = fastinit.train(net, (x, y), epochs=2, batch_size=8, lr=lrs)
    step = int(h.diverged_step[1])
    assert h.diverged.tolist() == [False, True, False] and step > 0
    fastinit.train(alone, (x, y), steps=step, batch_size=8, lr=lrs[1], eval_every=0)
    np.testing.assert_array_equal(net.params[1], alone.params[0])
    np.testing.assert_array_equal(net.norm_state[1], alone.norm_state[0])
    assert np.all(np.isfinite(net.norm_state))


# -- bad input -------------------------------------------------------------------------------

def test_callback_and_progress_are_checked_before_training():
    """Not after the first epoch has trained and changed the network in place."""
    net = fastinit.MLP([4, 5, 3], seed=0)
    before = net.params.copy()
    data = (np.ones((6, 4)), np.array([0, 1, 2, 0, 1, 2]))
    with pytest.raises(TypeError, match=r"^The 'callback' parameter of fastinit.train must be "
                                        r"callable as callback\(epoch, history\) or None. "
                                        r"Got 3 of type int instead.$"):
        fastinit.train(net, data, epochs=2, callback=3)
    with pytest.raises(TypeError, match=r"The 'progress' parameter of fastinit.train must be "
                                        r"True or False. Got 'yes'"):
        fastinit.train(net, data, epochs=2, progress="yes")
    np.testing.assert_array_equal(net.params, before)


def test_bad_data_errors():
    net = fastinit.MLP([4, 5, 3], seed=0)
    x = np.ones((6, 4))
    y = np.array([0, 1, 2, 0, 1, 2])
    bad = x.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"X_train.*contains 1 NaN or infinite"):
        fastinit.train(net, (bad, y), epochs=1)
    with pytest.raises(ValueError, match=r"labels in \[0, 3\] but the network has 3 outputs"):
        fastinit.train(net, (x, np.array([0, 1, 2, 3, 1, 0])), epochs=1)
    with pytest.raises(ValueError, match="integer class labels"):
        fastinit.train(net, (x, y + 0.5), epochs=1, loss="cross_entropy")
    with pytest.raises(ValueError, match=r"'data \(y_train\)' parameter of fastinit.train "
                       r"must have one entry per sample of X_train \(6\). Got shape \(5,\)"):
        fastinit.train(net, (x, y[:5]), epochs=1)
    with pytest.raises(ValueError, match=r"'data \(y_test\)' .* one entry per sample of "
                       r"X_test \(6\). Got shape \(5,\)"):
        fastinit.train(net, (x, y, x, y[:5]), epochs=1)
    with pytest.raises(ValueError, match=r"'data \(y_test\)' .* one entry per sample of "
                       r"X_test \(0\). Got shape \(6,\)"):
        fastinit.train(net, (x, y, x[:0], y), epochs=1)       # no test samples, 6 labels
    with pytest.raises(ValueError, match=r"'data \(X_train\)' .* must be 2-D \(samples, "
                       r"features\). Got shape \(4,\)"):
        fastinit.train(net, (x[0], y[:1]), epochs=1)           # one sample, not a row
    with pytest.raises(ValueError, match=r"'data \(X_test\)' .* must be 2-D"):
        fastinit.train(net, (x, y, x[0], y[:1]), epochs=1)
    with pytest.raises(ValueError, match=r"'data \(y_train\)' .* Got shape \(\)"):
        fastinit.train(net, (x, None), epochs=1)
    with pytest.raises(ValueError, match=r"'data' parameter of fastinit.train gives X_test but "
                       r"y_test is None"):
        fastinit.train(net, (x, y, x, None), epochs=1)
    h = fastinit.train(net, (x, y, None, None), epochs=1)    # no test set, as from_arrays
    assert np.isnan(h.test_loss).all() and np.isfinite(h.train_loss).all()
    with pytest.raises(ValueError, match=r"'data \(y_train\)' .* labels in \[-2, 2\] but the "
                       r"network has 3 outputs"):
        fastinit.train(net, (x, np.array([0, 1, 2, -2, 1, 0])), epochs=1)
    with pytest.raises(TypeError, match=r"'data \(X_train\)' .* must hold numbers"):
        fastinit.train(net, (np.full((6, 4), "a"), y), epochs=1)
    with pytest.raises(ValueError, match="has 5 features but the network's input width is 4"):
        fastinit.train(net, (np.ones((6, 5)), y), epochs=1)
    with pytest.raises(ValueError, match=r"must have shape \(6, 3\) for mse"):
        fastinit.train(net, (x, np.ones((6, 2))), epochs=1, loss="mse")
    for bad_value in (np.nan, np.inf, -np.inf):
        targets = np.ones((6, 3))
        targets[4, 2] = bad_value
        with pytest.raises(ValueError, match=r"'data \(y_train\)' .* contains 1 NaN or "
                           r"infinite value"):
            fastinit.train(net, (x, targets), epochs=1, loss="mse")
    with pytest.raises(ValueError, match=r"targets in \[0, 1\] for bce"):
        fastinit.train(net, (x, 2 * np.ones((6, 3))), epochs=1, loss="bce")
    with pytest.raises(ValueError, match="contains 1 NaN"):
        net.forward(bad)
    with pytest.raises(TypeError, match="must hold numbers"):
        net.forward(np.array([["a"] * 4]))


def test_shape_error_of_a_loss_inferred_from_float_labels_says_so():
    net = fastinit.MLP([4, 3], seed=0)
    x, y = np.ones((20, 4)), (np.arange(20) % 3).astype(float)
    with pytest.raises(ValueError, match=r"must have shape \(20, 3\) for mse \(one target per "
                       r"output\). Got shape \(20,\). The loss mse was inferred from "
                       r"y_train's dtype, float64: for classification give integer labels, or "
                       r"loss='cross_entropy'.$"):
        fastinit.train(net, (x, y), epochs=1)
    with pytest.raises(ValueError, match=r"Got shape \(20,\).$"):       # a loss given: no guess
        fastinit.train(net, (x, y), epochs=1, loss="mse")
    assert fastinit.train(net, (x, y), epochs=1, loss="cross_entropy").epochs == 1


def test_labels_that_are_not_numbers_are_told_so_whatever_the_loss():
    # string labels were taken for mse targets ("The loss mse was inferred from y_train's
    # dtype, <U1"), and a shape error showed (20, 1) for the (20,) labels given
    net = fastinit.MLP([4, 3], seed=0)
    x, y = np.ones((6, 4)), np.array(list("abcabc"))
    for loss in (None, "cross_entropy", "mse"):
        with pytest.raises(TypeError, match=r"^The 'data \(y_train\)' parameter of fastinit."
                           r"train must hold numbers: integer class labels 0, 1, 2, ... or "
                           r"float targets. Got dtype <U1. Did you mean np.unique\(y, "
                           r"return_inverse=True\)\[1\], each label's index\?$"):
            fastinit.train(net, (x, y), epochs=1, loss=loss)
    with pytest.raises(TypeError, match=r"'y' parameter of fastinit.MLP.loss must hold numbers"):
        net.loss(x, y.astype(object))
    with pytest.raises(ValueError, match=r"must have shape \(6, 3\) for bce \(one target per "
                       r"output\). Got shape \(6,\).$"):
        fastinit.train(net, (x, np.ones(6)), epochs=1, loss="bce")


def test_one_hot_column_and_binary_labels_get_a_did_you_mean():
    # one-hot labels, a column of labels and 0/1 labels for one output were told only what was
    # wrong, not the one call that makes them right
    net, x, y = fastinit.MLP([4, 3], seed=0), np.ones((6, 4)), np.array([0, 1, 2, 0, 1, 2])
    with pytest.raises(ValueError, match=r"Got shape \(6, 3\), dtype int64. One-hot labels\? "
                       r"Did you mean y.argmax\(axis=1\)\?$"):
        fastinit.train(net, (x, np.eye(3, dtype=np.int64)[y]), epochs=1)
    with pytest.raises(ValueError, match=r"Got shape \(6, 1\), dtype int64. Did you mean "
                       r"y.ravel\(\)\?$"):
        fastinit.train(net, (x, y[:, None]), epochs=1)
    with pytest.raises(ValueError, match=r"has 1 output: labels must be in \[0, 0\]. Did you "
                       r"mean loss='bce' \(one output, binary targets\)\?$"):
        fastinit.train(fastinit.MLP([4, 1], seed=0), (x, y == 1), epochs=1)
    assert fastinit.train(fastinit.MLP([4, 1], seed=0), (x, y == 1), epochs=1, loss="bce")


def test_finite_values_beyond_float32_are_called_out_of_range_not_nan():
    net = fastinit.MLP([4, 3], seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # and no numpy "overflow encountered in cast"
        with pytest.raises(ValueError, match=r"The 'X' parameter of fastinit.MLP.forward holds "
                           r"values up to 1e\+300 in magnitude, beyond float32's range "
                           r"\(largest finite 3.403e\+38\)"):
            net.forward(np.full((3, 4), 1e300))
        with pytest.raises(ValueError, match=r"'data \(y_train\)' .* values up to 1e\+300 in "
                           r"magnitude, beyond float32's range"):
            fastinit.train(net, (np.ones((3, 4)), np.full((3, 3), -1e300)), epochs=1)
    mixed = np.full((3, 4), 1e300)
    mixed[0, 0] = np.nan                          # a NaN as given is counted as before
    with pytest.raises(ValueError, match=r"contains 1 NaN or infinite value\(s\)"):
        net.forward(mixed)
    assert np.isfinite(fastinit.MLP([4, 3], dtype=np.float64).forward(mixed[1:])).all()


def test_bad_training_arguments():
    net = fastinit.MLP([4, 3], seed=0)
    data = (np.ones((6, 4)), np.zeros(6, dtype=int))
    with pytest.raises(ValueError, match="'optimizer' parameter of fastinit.train.*Did you "
                                         "mean 'adam'"):
        fastinit.train(net, data, epochs=1, optimizer="adma")
    with pytest.raises(ValueError, match=r"'lr' parameter .*\(0.0, inf\)"):
        fastinit.train(net, data, epochs=1, lr=0)
    with pytest.raises(ValueError, match=r"'lr' parameter of fastinit.train must be one "
                                         r"number or a list of n=1 numbers \(one per member\)"):
        fastinit.train(net, data, epochs=1, lr=[0.1, 0.2])
    two = fastinit.MLP([4, 3], n=2, seed=0)
    with pytest.raises(TypeError, match=r"The 'lr\[0\]' parameter of fastinit.train must be a "
                                        r"real number. Got 'a' of type str"):
        fastinit.train(two, data, epochs=1, lr=["a", "b"])
    with pytest.raises(ValueError, match=r"The 'momentum\[1\]' parameter.*\[0.0, 1.0\)"):
        fastinit.train(two, data, epochs=1, optimizer="momentum", momentum=[0.9, 1.0])
    with pytest.raises(ValueError, match=r"The 'weight_decay' parameter.*finite"):
        fastinit.train(two, data, epochs=1, weight_decay=float("inf"))
    with pytest.raises(ValueError, match="'batch_size' parameter.*>= 1"):
        fastinit.train(net, data, epochs=1, batch_size=0)
    with pytest.raises(TypeError, match="'epochs' parameter.*integer"):
        fastinit.train(net, data, epochs=1.5)
    with pytest.raises(ValueError, match="'loss' parameter.*Did you mean 'mse'"):
        fastinit.train(net, data, epochs=1, loss="mes")
    with pytest.raises(ValueError, match="'shuffle' parameter"):
        fastinit.train(net, data, epochs=1, shuffle="none")
    with pytest.raises(TypeError, match="'data' parameter"):
        fastinit.train(net, "digits", epochs=1)
    with pytest.raises(TypeError, match="'net' parameter.*fastinit.MLP"):
        fastinit.train("net", data, epochs=1)


def test_bad_network_arguments():
    with pytest.raises(ValueError, match="'activation' parameter of fastinit.MLP.*Did you mean "
                                         "'relu'"):
        fastinit.MLP([4, 3], activation="rleu")
    with pytest.raises(ValueError, match="at least 2 sizes"):
        fastinit.MLP([4])
    with pytest.raises(ValueError, match="'layer_sizes' parameter.*>= 1. Got 0"):
        fastinit.MLP([4, 0, 3])
    with pytest.raises(ValueError, match="list of n=3 schemes"):
        fastinit.MLP([4, 3], init=["he_normal", "zeros"], n=3)
    with pytest.raises(ValueError, match="'init' parameter of fastinit.MLP must be a "
                                         "registered scheme.*Did you mean 'he_normal'"):
        fastinit.MLP([4, 3], init="he_norml")
    with pytest.raises(ValueError, match="list of n=2 integers"):
        fastinit.MLP([4, 3], n=2, seed=[1, 2, 3])
    with pytest.raises(ValueError, match="'dtype' parameter of fastinit.MLP"):
        fastinit.MLP([4, 3], dtype=np.int32)


def test_history_serialises():
    net = fastinit.MLP([64, 10], n=2, seed=0)
    h = fastinit.train(net, DIGITS, epochs=1, lr=0.01)
    d = json.loads(h.to_json())
    assert len(d["test_acc"]) == 2 and len(d["labels"]) == 2
    assert "he_normal" in h.summary()


def test_a_history_prints_in_one_line():
    """print(history) dumped every array, about 200 lines for one epoch; it is one line now:
    members, epochs, the final test accuracy (training loss without a test set) and the
    diverged count, pointing at summary() and to_pandas()."""
    net = fastinit.MLP([64, 10], n=3, seed=0, init=["zeros", "he_normal", "xavier_normal"])
    h = fastinit.train(net, DIGITS, epochs=2)
    text = repr(h)
    assert len(text.splitlines()) == 1 and len(text) < 200
    assert text.startswith("History(3 members, 2 epochs, final test_acc=[")
    assert f"{h.test_acc[-1, 0]:.4f}" in text and "diverged=0" in text
    alone = fastinit.train(fastinit.MLP([64, 10]), (DIGITS.x_train, DIGITS.y_train), epochs=1)
    assert repr(alone).startswith("History(1 member, 1 epoch, final train_loss=[")


def test_batch_larger_than_the_data_is_the_whole_data():
    """A huge batch_size is clamped to the data (no buffer of batch_size rows)."""
    x, y = DIGITS.x_train[:150], DIGITS.y_train[:150]
    runs = []
    for bs in (150, 10**6, 2**32):
        net = fastinit.MLP([64, 16, 10], n=2, seed=[1, 2])
        h = fastinit.train(net, (x, y), epochs=2, batch_size=bs, lr=0.1)
        runs.append((net.params.copy(), h.train_loss))
        assert h.config["batch_size"] == bs
    for params, loss in runs[1:]:
        np.testing.assert_array_equal(params, runs[0][0])
        np.testing.assert_array_equal(loss, runs[0][1])


@pytest.mark.parametrize("layer", [0, 1])
def test_nan_parameter_hidden_by_relu_is_flagged(layer):
    """relu turns a NaN pre-activation into 0, so the loss stays finite; the parameters are
    checked too. Planted before training (layer 0 or 1) or between epochs by a callback."""
    net = fastinit.MLP([64, 32, 32, 10], "relu", n=3, seed=[1, 2, 3], dtype=np.float64)
    net.weights[layer][1, 3, 5] = np.nan
    before = net.params[1].copy()
    h = fastinit.train(net, DIGITS, epochs=2, lr=0.05)
    assert h.diverged.tolist() == [False, True, False]
    assert h.diverged_step[1] == 0
    np.testing.assert_array_equal(net.params[1], before)        # frozen as it was
    assert np.all(np.isfinite(net.params[[0, 2]]))

    def plant(epoch, hist):
        if epoch == 1:
            net2.weights[layer][2, 0, 0] = np.inf
    net2 = fastinit.MLP([64, 32, 32, 10], "relu", n=3, seed=[1, 2, 3], dtype=np.float64)
    h2 = fastinit.train(net2, DIGITS, epochs=3, lr=0.05, callback=plant)
    steps = -(-len(DIGITS.x_train) // 32)
    assert h2.diverged.tolist() == [False, False, True]
    assert h2.diverged_step[2] == steps            # the first step of epoch 2


def test_torch_tensors_needing_grad_and_bfloat16_inputs_train_as_their_arrays():
    # a tensor that requires grad raised torch's "Can't call numpy() on Tensor that requires
    # grad"; a bfloat16 tensor torch's "unsupported ScalarType BFloat16"; JAX's bfloat16 (an
    # ml_dtypes array) "must hold numbers". Each is now its float32 array.
    torch = pytest.importorskip("torch")
    x, y = _small_data()
    x16 = torch.tensor(x, dtype=torch.bfloat16)
    wide = x16.float().numpy()
    same = lambda data: fastinit.train(fastinit.MLP([6, 8, 3], seed=1), data, epochs=1,
                                       batch_size=16).train_loss
    want = same((wide, y))
    np.testing.assert_array_equal(same((x16, torch.tensor(y))), want)
    np.testing.assert_array_equal(same((x16.float().requires_grad_(), y, x16, y)), same(
        (wide, y, wide, y)))
    ml_dtypes = pytest.importorskip("ml_dtypes")
    np.testing.assert_array_equal(same((wide.astype(ml_dtypes.bfloat16), y)), want)
    ds = fastinit.datasets.from_arrays(torch.tensor(x, requires_grad=True), torch.tensor(y))
    np.testing.assert_array_equal(ds.x_train, x)


def test_history_summary_keeps_whole_labels_apart():
    """summary() cut each label at 40 characters: two members of one long scheme spec, seeds
    0 and 1, both printed as "kaiming_normal(a=0.1, mode='fan_out', no" (seed and member cut
    off). The member column is now as wide as its longest label."""
    init = fastinit.spec("kaiming_normal", a=0.1, mode="fan_out", nonlinearity="leaky_relu")
    net = fastinit.MLP([4, 3], init=init, n=2, seed=[0, 1])
    x = np.random.default_rng(0).standard_normal((12, 4))
    h = fastinit.train(net, (x, np.arange(12) % 3), epochs=1, batch_size=6)
    lines = h.summary().splitlines()
    assert len(h.labels[1]) > 40 and len(lines) == 3
    for label, line in zip(h.labels, lines[1:]):
        assert line.startswith(label + " ")
    assert not h.diverged.any() and len({len(line) for line in lines}) == 1   # aligned
