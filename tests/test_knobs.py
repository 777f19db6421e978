"""The knobs init studies turn: bias-free layers (and, per member, everything the invariance
tests mix); each checked against finite differences, NumPy, PyTorch and its solo run."""
import numpy as np
import pytest

import fastinit
import reference

DIGITS = fastinit.datasets.digits()


def _data(n=23, d=6, classes=4, seed=0):
    g = np.random.default_rng(seed)
    return g.standard_normal((n, d)), g.integers(0, classes, n)


# -- bias-free layers -------------------------------------------------------------------------

def test_bias_free_network_has_no_bias_parameters(tmp_path):
    with_b = fastinit.MLP([6, 9, 4], "tanh", n=2, seed=[1, 2], dtype=np.float64)
    free = fastinit.MLP([6, 9, 4], "tanh", n=2, seed=[1, 2], dtype=np.float64, bias=False)
    assert free.biases == [] and free.bias is False
    assert free.params.shape[1] == with_b.params.shape[1] - 9 - 4     # not counted
    for l in range(2):                                                 # same weight streams
        np.testing.assert_array_equal(free.weights[l], with_b.weights[l])
    x, y = _data()
    dw, db = free.gradients(x, y)
    assert db == [] and len(dw) == 2
    free.save(tmp_path / "free.npz")
    back = fastinit.MLP.load(tmp_path / "free.npz")
    assert back.bias is False and back.biases == []
    np.testing.assert_array_equal(back.params, free.params)
    with np.load(tmp_path / "free.npz") as f:
        assert not [k for k in f.files if k.startswith("bias_")]
    d = fastinit.diagnose(free, x, y)
    assert d.distinct_units.shape == (2, 2)


@pytest.mark.parametrize("activation", ["tanh", "relu", "gelu"])
def test_bias_free_gradients_against_numpy_and_finite_differences(activation):
    net = fastinit.MLP([6, 9, 7, 4], activation, init="xavier_normal", n=1, seed=3,
                       dtype=np.float64, bias=False)
    x, y = _data()
    dw, _ = net.gradients(x, y)
    ws = [w[0] for w in net.weights]
    value, rdw, _ = reference.mlp_grads(ws, [np.zeros(w.shape[0]) for w in ws], x, y,
                                        activation, 0.0, "cross_entropy")
    assert net.loss(x, y)[0] == pytest.approx(value, rel=1e-12)
    for l in range(3):
        np.testing.assert_allclose(dw[l][0], rdw[l], rtol=1e-10, atol=1e-13)
    h = 1e-6
    for l, (o, i) in ((0, (2, 3)), (2, (1, 5))):
        old = net.weights[l][0, o, i]
        net.weights[l][0, o, i] = old + h
        up = net.loss(x, y)[0]
        net.weights[l][0, o, i] = old - h
        down = net.loss(x, y)[0]
        net.weights[l][0, o, i] = old
        assert dw[l][0, o, i] == pytest.approx((up - down) / (2 * h), rel=1e-6, abs=1e-9)


def test_bias_free_against_torch_autograd():
    torch = pytest.importorskip("torch")
    net = fastinit.MLP([6, 9, 4], "relu", init="he_normal", seed=5, dtype=np.float64,
                       bias=False)
    seq = fastinit.interop.to_torch(net)
    assert all(m.bias is None for m in seq if isinstance(m, torch.nn.Linear))
    x, y = _data()
    loss = torch.nn.functional.cross_entropy(seq(torch.from_numpy(x)), torch.from_numpy(y))
    loss.backward()
    dw, _ = net.gradients(x, y)
    np.testing.assert_allclose(dw[0][0], seq[0].weight.grad.numpy(), rtol=1e-10, atol=1e-13)
    back = fastinit.interop.from_torch(seq)
    assert back.bias is False
    np.testing.assert_array_equal(back.forward(x), net.forward(x))


def test_bias_free_member_alone_equals_member_in_population():
    x, y = _data(n=64)
    specs = ["ZerO", "orthogonal", "he_normal", "identity"]
    pop = fastinit.MLP([6, 8, 8, 4], "relu", init=specs, n=4, seed=[1, 2, 3, 4], bias=False)
    fastinit.train(pop, (x, y), epochs=2, batch_size=16, lr=[0.1, 0.05, 0.02, 0.01])
    for k, s in enumerate(specs):
        solo = fastinit.MLP([6, 8, 8, 4], "relu", init=s, seed=k + 1, bias=False)
        fastinit.train(solo, (x, y), epochs=2, batch_size=16, lr=[0.1, 0.05, 0.02, 0.01][k])
        np.testing.assert_array_equal(pop.params[k], solo.params[0])


def test_bias_free_residual_lsuv_kraehenbuehl_and_theory():
    x = DIGITS.x_train[:128]
    res = fastinit.ResMLP(64, 32, 2, 10, residual="fixup", n=2, seed=[1, 2], dtype=np.float64,
                          bias=False)
    assert res.biases == []
    fastinit.lsuv(res, x, tol=0.05)
    assert np.all(np.abs(fastinit.diagnose(res, x).pre_var - 1) < 0.05)
    with pytest.raises(ValueError, match=r"'center_bias' parameter of fastinit.lsuv needs a "
                                         r"network with biases"):
        fastinit.lsuv(res, x, center_bias=True)
    net = fastinit.MLP([64, 32, 10], "tanh", init="xavier_normal", dtype=np.float64,
                       bias=False)
    fastinit.kraehenbuehl(net, x, between_layers=False)
    zs, _ = fastinit.forward_layers(net, x)
    np.testing.assert_allclose(zs[0].std(axis=1), 1, atol=1e-8)   # scaled; the mean stays
    pred = fastinit.theory.predicted_q(net, x)
    assert np.all(np.isfinite(pred))
    with pytest.raises(TypeError, match=r"The 'bias' parameter of fastinit.MLP must be True or "
                                        r"False. Got 'no'"):
        fastinit.MLP([4, 3], bias="no")


def test_bias_free_sweep_key(tmp_path):
    from fastinit.store import Store
    from fastinit.sweep import run_sweep
    from fastinit.sweepspec import SpecError, SweepSpec, run_id
    spec = {"name": "b", "grid": {"bias": [True, False], "seed": [0]},
            "train": {"epochs": 1, "width": 8}}
    run_sweep(spec, tmp_path / "b.db")
    with Store(tmp_path / "b.db") as s:
        rows = s.rows("b")
    assert sorted(r["config"]["bias"] for r in rows) == [False, True]
    free = [r for r in rows if not r["config"]["bias"]][0]
    assert free["layer_sizes"] == [64, 8, 8, 10] and free["status"] == "done"
    default = SweepSpec.from_dict({"grid": {"seed": [0]}}).runs()[0].config
    assert run_id(default) == run_id({k: v for k, v in default.items() if k != "bias"})
    with pytest.raises(SpecError, match=r"bias must be true or false. Got 0"):
        SweepSpec.from_dict({"grid": {"bias": [0]}})


# -- per-step records, steps=N, drop_last -----------------------------------------------------

def test_step_records_equal_the_loss_and_gradient_before_each_step():
    """Full-batch SGD: the minibatch at every step is the whole data, so step t's record is
    the loss and ||dW|| of the network after t steps, computed independently."""
    x, y = _data(n=40)
    net = fastinit.MLP([6, 9, 7, 4], "tanh", n=2, seed=[1, 2], dtype=np.float64)
    ref = net.copy()
    h = fastinit.train(net, (x, y), steps=5, batch_size=40, lr=0.3, record_every_steps=1)
    assert h.steps.tolist() == [0, 1, 2, 3, 4] and h.epochs == 5
    assert h.step_loss.shape == (5, 2) and h.step_grad_norm.shape == (5, 2, 3)
    for t in range(5):
        np.testing.assert_allclose(h.step_loss[t], ref.loss(x, y), rtol=1e-12)
        dw, _ = ref.gradients(x, y)
        norms = np.stack([np.sqrt((w ** 2).sum(axis=(1, 2))) for w in dw], axis=1)
        np.testing.assert_allclose(h.step_grad_norm[t], norms, rtol=1e-12)
        fastinit.train(ref, (x, y), steps=1, batch_size=40, lr=0.3, eval_every=0)
    np.testing.assert_allclose(ref.params, net.params, rtol=1e-12, atol=1e-14)  # sample order


def test_steps_counts_exact_steps_and_records_every_k():
    x, y = _data(n=50)
    whole = fastinit.MLP([6, 8, 4], n=2, seed=[1, 2])
    h_ep = fastinit.train(whole, (x, y), epochs=2, batch_size=16, record_every_steps=1)
    steps = fastinit.MLP([6, 8, 4], n=2, seed=[1, 2])
    h_st = fastinit.train(steps, (x, y), steps=8, batch_size=16, record_every_steps=1)
    np.testing.assert_array_equal(whole.params, steps.params)          # 2 epochs = 8 steps
    np.testing.assert_array_equal(h_ep.step_loss, h_st.step_loss)
    part = fastinit.MLP([6, 8, 4], n=2, seed=[1, 2])
    h = fastinit.train(part, (x, y), steps=6, batch_size=16, record_every_steps=3)
    assert h.epochs == 2 and h.config["steps"] == 6 and h.steps.tolist() == [0, 3]
    np.testing.assert_array_equal(h.step_loss, h_ep.step_loss[[0, 3]])
    assert np.all(np.isfinite(h.train_loss[-1]))       # the partial last epoch is evaluated


def test_drop_last_drops_the_partial_batch():
    x, y = _data(n=10)
    net = fastinit.MLP([6, 8, 4], n=1, seed=1)
    h = fastinit.train(net, (x, y), epochs=3, batch_size=4, drop_last=True,
                       record_every_steps=1)
    assert h.steps.tolist() == [0, 1, 2, 3, 4, 5]               # 2 full batches per epoch
    kept = fastinit.MLP([6, 8, 4], n=1, seed=1)
    h2 = fastinit.train(kept, (x, y), epochs=3, batch_size=4, record_every_steps=1)
    assert len(h2.steps) == 9
    with pytest.raises(ValueError, match=r"'batch_size' parameter of fastinit.train is 16 with "
                                         r"drop_last=True but the training set has 10 samples"):
        fastinit.train(net, (x, y), epochs=1, batch_size=16, drop_last=True)
    with pytest.raises(TypeError, match=r"fastinit.train needs exactly one of 'epochs' and "
                                        r"'steps'. Got epochs=1, steps=3"):
        fastinit.train(net, (x, y), epochs=1, steps=3)
    with pytest.raises(TypeError, match=r"exactly one of 'epochs' and 'steps'"):
        fastinit.train(net, (x, y))
    with pytest.raises(ValueError, match=r"'record_every_steps' parameter.*>= 0"):
        fastinit.train(net, (x, y), epochs=1, record_every_steps=-1)


def test_step_records_of_a_member_alone_equal_those_in_a_population():
    x, y = _data(n=60)
    pop = fastinit.MLP([6, 8, 8, 4], "relu", init=["ZerO", "he_normal", "orthogonal"], n=3,
                       seed=[4, 5, 6])
    hp = fastinit.train(pop, (x, y), steps=7, batch_size=16, lr=[0.1, 0.05, 0.02],
                        record_every_steps=2, optimizer="adam")
    for k, s in enumerate(["ZerO", "he_normal", "orthogonal"]):
        solo = fastinit.MLP([6, 8, 8, 4], "relu", init=s, seed=4 + k)
        hs = fastinit.train(solo, (x, y), steps=7, batch_size=16, lr=[0.1, 0.05, 0.02][k],
                            record_every_steps=2, optimizer="adam")
        np.testing.assert_array_equal(hp.step_loss[:, k], hs.step_loss[:, 0])
        np.testing.assert_array_equal(hp.step_grad_norm[:, k], hs.step_grad_norm[:, 0])
    assert hp.to_dict()["step_loss"][0][0] == float(hp.step_loss[0, 0])


# -- dropout ----------------------------------------------------------------------------------

def _masks(seed, member, step, sizes, rate, bp):
    """Each hidden layer's keep mask (units, bp), from the Philox words of tests/reference.py:
    word (step d + unit) bp + column of stream (member << 32) | (DROPOUT + layer)."""
    from fastinit import streams
    thr = int(rate * 2**32)
    out = []
    for l, d in enumerate(sizes[1:-1]):
        stream = reference.stream_of(member, streams.DROPOUT + l)
        w = reference.words(seed, stream, (step * d + d) * bp)[step * d * bp:]
        out.append((w.reshape(d, bp) >= thr).astype(float))
    return out


def test_dropout_step_against_a_numpy_reference_with_independent_masks():
    """One full-batch SGD step with dropout: the update equals lr times the gradient of a
    NumPy network that drops the units the reference Philox says, scaled by 1 / (1 - p)."""
    sizes, rate, lr = [6, 9, 7, 4], 0.3, 0.5
    x, y = _data(n=20)
    net = fastinit.MLP(sizes, "tanh", init="xavier_normal", seed=[5], dtype=np.float64,
                       dropout=rate, bias_init=fastinit.spec("normal", std=0.2))
    before = [w[0].copy() for w in net.weights], [b[0].copy() for b in net.biases]
    fastinit.train(net, (x, y), steps=1, batch_size=20, lr=lr, eval_every=0, seed=3)
    order = fastinit.datasets.permutation(20, 3, fastinit.streams.ORDER + 1)
    masks = _masks(5, 0, 0, sizes, rate, bp=32)
    ws, bs = before
    a, acts, zs = x[order], [x[order]], []
    for l in range(3):
        z = a @ ws[l].T + bs[l]
        zs.append(z)
        a = np.tanh(z) * masks[l][:, :20].T / (1 - rate) if l < 2 else z
        acts.append(a)
    _, dz = reference.loss_and_grad("cross_entropy", zs[-1], y[order])
    for l in range(2, -1, -1):
        np.testing.assert_allclose((ws[l] - net.weights[l][0]) / lr, dz.T @ acts[l],
                                   rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose((bs[l] - net.biases[l][0]) / lr, dz.sum(axis=0),
                                   rtol=1e-9, atol=1e-12)
        if l:
            da = dz @ ws[l] * masks[l - 1][:, :20].T / (1 - rate)
            dz = da * (1 - np.tanh(zs[l - 1]) ** 2)
    assert 0.15 < 1 - masks[0].mean() < 0.45


def test_dropout_is_per_member_and_only_while_training():
    x, y = _data(n=64)
    rates = [0.0, 0.5, 0.2]
    pop = fastinit.MLP([6, 16, 16, 4], "relu", init=["he_normal", "ZerO", "orthogonal"], n=3,
                       seed=[1, 2, 3], dropout=rates)
    plain = fastinit.MLP([6, 16, 16, 4], "relu", init="he_normal", seed=1)
    np.testing.assert_array_equal(pop.member(0).forward(x), plain.forward(x))   # eval: no drop
    np.testing.assert_array_equal(pop.forward(x)[1], fastinit.MLP(
        [6, 16, 16, 4], "relu", init="ZerO", seed=2).forward(x)[0])
    hp = fastinit.train(pop, (x, y), epochs=3, batch_size=16, lr=0.05, record_every_steps=1)
    hn = fastinit.train(plain, (x, y), epochs=3, batch_size=16, lr=0.05, record_every_steps=1)
    np.testing.assert_array_equal(pop.params[0], plain.params[0])   # rate 0 never drops
    for k, s in enumerate(["he_normal", "ZerO", "orthogonal"]):
        solo = fastinit.MLP([6, 16, 16, 4], "relu", init=s, seed=k + 1, dropout=rates[k])
        hs = fastinit.train(solo, (x, y), epochs=3, batch_size=16, lr=0.05,
                            record_every_steps=1)
        np.testing.assert_array_equal(pop.params[k], solo.params[0])
        np.testing.assert_array_equal(hp.step_loss[:, k], hs.step_loss[:, 0])
    assert not np.array_equal(hp.step_loss[:, 1], hn.step_loss[:, 0])
    with pytest.raises(ValueError, match=r"'dropout' parameter of fastinit.MLP must be in the "
                                         r"interval \[0.0, 1.0\). Got 1.0"):
        fastinit.MLP([4, 3], dropout=1.0)
    with pytest.raises(TypeError, match=r"'dropout' parameter of fastinit.MLP must be one "
                                        r"number or a flat list of n=2 numbers \(one per "
                                        r"member\). Got a nested list of shape \(2, 1\)"):
        fastinit.MLP([4, 3], n=2, dropout=[[0.1], [0.5]])      # not flattened into two rates
    with pytest.raises(TypeError, match=r"'lr' parameter of fastinit.train .* nested ndarray"):
        fastinit.train(fastinit.MLP([4, 3]), (np.ones((2, 4)), np.zeros(2, int)), epochs=1,
                       lr=np.full((1, 1), 0.1))


_DROP = """
import hashlib, json, numpy as np, numba, fastinit
g = np.random.default_rng(0)
x, y = g.standard_normal((300, 256)), g.integers(0, 4, 300)
out = {"threads": numba.get_num_threads()}
for n, sizes in ((3, [256, 64, 64, 4]), (1, [256, 512, 512, 4])):   # population; row split
    net = fastinit.MLP(sizes, "gelu", n=n, seed=list(range(n)), dropout=0.25)
    fastinit.train(net, (x, y), epochs=1, batch_size=100, lr=0.01)
    out[str(n)] = hashlib.sha256(net.params.tobytes()).hexdigest()
print(json.dumps(out))
"""


def test_dropout_bitwise_on_one_and_two_threads():
    import json
    import os
    import subprocess
    import sys
    runs = []
    for threads in (1, 2):
        env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
        res = subprocess.run([sys.executable, "-c", _DROP], env=env, capture_output=True,
                             text=True, check=True)
        runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
    assert [r.pop("threads") for r in runs] == [1, 2] and runs[0] == runs[1]


def test_dropout_breaks_the_symmetry_of_constant_init():
    """d2l 5.4: constant init keeps every hidden unit identical under gradient descent, but
    dropout (a different mask for each unit) breaks the symmetry."""
    x, y = DIGITS.x_train[:512], DIGITS.y_train[:512]
    nets = [fastinit.MLP([64, 32, 10], "tanh", init=fastinit.spec("constant", value=0.05),
                         seed=0, dtype=np.float64, dropout=p) for p in (0.0, 0.5)]
    for net in nets:
        fastinit.train(net, (x, y), epochs=3, lr=0.1)
    still, broken = (fastinit.diagnose(net, x).distinct_units[0, 0] for net in nets)
    assert still == 1 and broken == 32


def test_dropout_sweep_key_is_per_member(tmp_path):
    from fastinit.sweepspec import SweepSpec
    spec = SweepSpec.from_dict({"grid": {"dropout": [0.0, 0.5], "seed": [0, 1]}})
    assert [len(p) for p in spec.populations()] == [4]          # one population
    from fastinit.sweepspec import SpecError
    with pytest.raises(SpecError, match=r"dropout must be a number in \[0, 1\). Got 1"):
        SweepSpec.from_dict({"grid": {"dropout": [1]}})


# -- batch and layer normalization ------------------------------------------------------------

def _normed(norm, seed=3, activation="tanh", sizes=(6, 9, 7, 4)):
    g = np.random.default_rng(seed)
    net = fastinit.MLP(list(sizes), activation, init="xavier_normal", seed=[seed],
                       dtype=np.float64, norm=norm, bias_init=fastinit.spec("normal", std=0.3))
    for gamma, beta in zip(net.gammas, net.betas):      # away from the identity
        gamma[...] += 0.2 * g.standard_normal(gamma.shape)
        beta[...] += 0.2 * g.standard_normal(beta.shape)
    return net


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_norm_gradients_and_one_step_against_torch(norm):
    """The gradient (training-mode statistics), one SGD step of every parameter (gamma and beta
    too) and batch norm's running statistics equal PyTorch's BatchNorm1d / LayerNorm."""
    torch = pytest.importorskip("torch")
    x, y = _data(n=20)
    net = _normed(norm)
    seq = fastinit.interop.to_torch(net)
    seq.eval()
    np.testing.assert_allclose(net.forward(x)[0], seq(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-12, atol=1e-13)              # evaluation: running stats
    seq.train()
    loss = torch.nn.functional.cross_entropy(seq(torch.from_numpy(x)), torch.from_numpy(y))
    loss.backward()
    dw, db = net.gradients(x, y)
    lin = [m for m in seq if isinstance(m, torch.nn.Linear)]
    nrm = [m for m in seq if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.LayerNorm))]
    for l in range(3):
        np.testing.assert_allclose(dw[l][0], lin[l].weight.grad.numpy(), rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(db[l][0], lin[l].bias.grad.numpy(), rtol=1e-10, atol=1e-14)
    lr = 0.5
    fastinit.train(net, (x, y), steps=1, batch_size=20, lr=lr, eval_every=0)
    with torch.no_grad():
        for l in range(2):
            np.testing.assert_allclose(net.gammas[l][0], (nrm[l].weight - lr * nrm[l].weight.grad)
                                       .numpy(), rtol=1e-10, atol=1e-13)
            np.testing.assert_allclose(net.betas[l][0], (nrm[l].bias - lr * nrm[l].bias.grad)
                                       .numpy(), rtol=1e-10, atol=1e-13)
            if norm == "batch":
                np.testing.assert_allclose(net.running_mean[l][0], nrm[l].running_mean.numpy(),
                                           rtol=1e-10, atol=1e-13)
                np.testing.assert_allclose(net.running_var[l][0], nrm[l].running_var.numpy(),
                                           rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(net.weights[0][0], (lin[0].weight - lr * lin[0].weight.grad)
                                   .numpy(), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_norm_float64_pass_matches_the_kernels(norm):
    from fastinit.layerwise import loss_gradient, run_backward, run_forward
    x, y = _data(n=20)
    net = _normed(norm, activation="gelu")
    ps = run_forward(net, x)
    rw, _, _ = run_backward(net, ps, loss_gradient(ps.post[-1], y, None, "cross_entropy") / 20)
    dw, _ = net.gradients(x, y)
    for l in range(3):
        np.testing.assert_allclose(rw[l], dw[l], rtol=1e-10, atol=1e-14)
    d = fastinit.diagnose(net, x, y)                # compiled moments: what phi sees
    np.testing.assert_allclose(d.pre_var[:, :2], [[z.var() for z in ps.pre[:2]]], rtol=1e-10)


def test_norm_member_alone_equals_member_in_population_and_persists(tmp_path):
    x, y = _data(n=64)
    specs = ["he_normal", "orthogonal", "ZerO"]
    for norm in ("batch", "layer"):
        pop = fastinit.MLP([6, 16, 16, 4], "relu", init=specs, n=3, seed=[1, 2, 3], norm=norm,
                           dropout=[0.0, 0.2, 0.1])
        fastinit.train(pop, (x, y), epochs=3, batch_size=16, lr=[0.1, 0.05, 0.02],
                       optimizer="adam")
        for k, s in enumerate(specs):
            solo = fastinit.MLP([6, 16, 16, 4], "relu", init=s, seed=k + 1, norm=norm,
                                dropout=[0.0, 0.2, 0.1][k])
            fastinit.train(solo, (x, y), epochs=3, batch_size=16, lr=[0.1, 0.05, 0.02][k],
                           optimizer="adam")
            np.testing.assert_array_equal(pop.params[k], solo.params[0])
            np.testing.assert_array_equal(pop.norm_state[k], solo.norm_state[0])
            np.testing.assert_array_equal(pop.member(k).forward(x)[0], solo.forward(x)[0])
        pop.save(tmp_path / f"{norm}.npz")
        back = fastinit.MLP.load(tmp_path / f"{norm}.npz")
        assert back.norm == norm
        np.testing.assert_array_equal(back.params, pop.params)
        np.testing.assert_array_equal(back.norm_state, pop.norm_state)
        np.testing.assert_array_equal(back.forward(x), pop.forward(x))
    assert pop.running_mean == [] and len(pop.gammas) == 2


_NORM = """
import hashlib, json, numpy as np, numba, fastinit
g = np.random.default_rng(0)
x, y = g.standard_normal((300, 256)), g.integers(0, 4, 300)
out = {"threads": numba.get_num_threads()}
for n, sizes in ((3, [256, 64, 64, 4]), (1, [256, 512, 512, 4])):   # population; row split
    for norm in ("batch", "layer"):
        net = fastinit.MLP(sizes, "tanh", n=n, seed=list(range(n)), norm=norm, dropout=0.1)
        fastinit.train(net, (x, y), epochs=1, batch_size=100, lr=0.01)
        state = net.params.tobytes() + net.norm_state.tobytes()
        out[f"{n}{norm}"] = hashlib.sha256(state).hexdigest()
print(json.dumps(out))
"""


def test_norm_bitwise_on_one_and_two_threads():
    import json
    import os
    import subprocess
    import sys
    runs = []
    for threads in (1, 2):
        env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
        res = subprocess.run([sys.executable, "-c", _NORM], env=env, capture_output=True,
                             text=True, check=True)
        runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
    assert [r.pop("threads") for r in runs] == [1, 2] and runs[0] == runs[1]


def test_norm_in_residual_nets_sweeps_and_torch_round_trip(tmp_path):
    x = DIGITS.x_train[:128]
    res = fastinit.ResMLP(64, 32, 2, 10, residual="fixup", norm="batch", seed=1)
    h = fastinit.train(res, DIGITS, epochs=2, lr=0.05, optimizer="momentum")
    assert h.test_acc[-1, 0] > 0.8 and len(res.gammas) == 3      # stem and each branch
    torch = pytest.importorskip("torch")
    net = _normed("layer", sizes=(64, 12, 10))
    back = fastinit.interop.from_torch(fastinit.interop.to_torch(net))
    assert back.norm == "layer"
    np.testing.assert_array_equal(back.forward(x), net.forward(x))
    with pytest.raises(TypeError, match=r"to_torch builds a torch.nn.Sequential; a residual "
                                        r"network \(ResMLP\)"):
        fastinit.interop.to_torch(res)
    with pytest.raises(ValueError, match=r"'norm' parameter of fastinit.MLP must be one of "
                                         r"\{'batch', 'layer'\}. Got 'btach' instead. Did you "
                                         r"mean 'batch'\?"):
        fastinit.MLP([4, 3], norm="btach")
    with pytest.raises(ValueError, match=r"fastinit.layerwise.per_sample_gradients needs "
                                         r"samples that do not depend on each other"):
        fastinit.layerwise.per_sample_gradients(_normed("batch"), *_data())
    from fastinit.store import Store
    from fastinit.sweep import run_sweep
    run_sweep({"name": "n", "grid": {"norm": [None, "batch", "layer"]},
               "train": {"epochs": 1, "width": 8}}, tmp_path / "n.db")
    with Store(tmp_path / "n.db") as s:
        assert sorted(str(r["config"]["norm"]) for r in s.rows("n")) == ["None", "batch",
                                                                          "layer"]
    del torch


def test_drop_last_sweep_key_is_checked_before_training(tmp_path):
    from fastinit.preflight import check_runs
    from fastinit.sweepspec import SpecError, SweepSpec
    ok = SweepSpec.from_dict({"grid": {"drop_last": [True, False]},
                              "train": {"batch_size": 500}})
    check_runs(ok)
    big = SweepSpec.from_dict({"grid": {"drop_last": [True]}, "train": {"batch_size": 5000}})
    with pytest.raises(SpecError, match=r"batch_size 5000 with drop_last = true drops every "
                                        r"batch of dataset 'digits' \(1438 training samples\)"):
        check_runs(big)
