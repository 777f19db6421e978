"""fastinit.MLP: forward, loss and gradients against independent references."""
import io
import itertools
import os
import re

import numpy as np
import pytest

import fastinit

import reference

ACTS = list(fastinit.ACTIVATIONS)
PARAM = {"relu": 0.0, "leaky_relu": 0.01, "elu": 1.0, "softplus": 1.0}
SIZES = [5, 7, 6, 3]


def _data(loss, n=11, seed=0):
    g = np.random.default_rng(seed)
    x = g.standard_normal((n, SIZES[0]))
    if loss == "cross_entropy":
        y = g.integers(0, SIZES[-1], n)
    elif loss in ("mse", "mse_sum"):
        y = g.standard_normal((n, SIZES[-1]))
    else:
        y = (g.random((n, SIZES[-1])) > 0.5).astype(float)
    return x, y


def _net(activation, dtype=np.float64, n=2):
    # non-zero biases, so every activation is exercised away from 0
    return fastinit.MLP(SIZES, activation=activation, init="xavier_normal",
                        bias_init=fastinit.spec("normal", std=0.3), n=n, seed=3, dtype=dtype)


@pytest.mark.parametrize("activation,loss", list(itertools.product(ACTS, fastinit.LOSSES)))
def test_gradients_against_central_differences(activation, loss):
    net = _net(activation, n=1)
    x, y = _data(loss)
    dw, db = net.gradients(x, y, loss=loss)
    h = 1e-6
    params = [(net.weights[l], dw[l]) for l in range(3)] + \
             [(net.biases[l], db[l]) for l in range(3)]
    for arr, grad in params:
        for idx in np.ndindex(arr.shape[1:]):
            old = arr[(0,) + idx]
            arr[(0,) + idx] = old + h
            up = net.loss(x, y, loss)[0]
            arr[(0,) + idx] = old - h
            down = net.loss(x, y, loss)[0]
            arr[(0,) + idx] = old
            fd = (up - down) / (2 * h)
            assert abs(fd - grad[(0,) + idx]) <= 1e-6 * max(1.0, abs(fd)), (idx, fd, grad[(0,) + idx])


@pytest.mark.parametrize("activation,loss", list(itertools.product(ACTS, fastinit.LOSSES)))
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_gradients_against_numpy_reference(activation, loss, dtype):
    net = _net(activation, dtype=dtype)
    x, y = _data(loss, n=37)
    dw, db = net.gradients(x, y, loss=loss)
    losses = net.loss(x, y, loss)
    rtol = 1e-11 if dtype == np.float64 else 2e-4
    atol = 1e-13 if dtype == np.float64 else 2e-6
    for k in range(net.n):
        ws = [w[k].astype(float) for w in net.weights]
        bs = [b[k].astype(float) for b in net.biases]
        value, rdw, rdb = reference.mlp_grads(ws, bs, x, y, activation,
                                              PARAM.get(activation, 0.0), loss)
        assert losses[k] == pytest.approx(value, rel=rtol, abs=atol)
        for l in range(3):
            np.testing.assert_allclose(dw[l][k], rdw[l], rtol=rtol, atol=atol)
            np.testing.assert_allclose(db[l][k], rdb[l], rtol=rtol, atol=atol)


def test_forward_matches_numpy_reference(dtype):
    net = _net("tanh", dtype=dtype, n=3)
    x, _ = _data("mse", n=50)
    out = net.forward(x)
    assert out.shape == (3, 50, 3) and out.dtype == dtype
    for k in range(3):
        a = x
        for l in range(3):
            a = a @ net.weights[l][k].astype(float).T + net.biases[l][k]
            if l < 2:
                a = np.tanh(a)
        np.testing.assert_allclose(out[k], a, rtol=1e-5 if dtype == np.float32 else 1e-12,
                                   atol=1e-6 if dtype == np.float32 else 1e-13)
    np.testing.assert_array_equal(net.predict(x), np.argmax(out, axis=-1))


def _torch_activation(torch, name):
    nn = torch.nn
    return {"linear": nn.Identity(), "relu": nn.ReLU(), "leaky_relu": nn.LeakyReLU(0.01),
            "elu": nn.ELU(1.0), "selu": nn.SELU(), "gelu": nn.GELU(),
            "gelu_tanh": nn.GELU(approximate="tanh"), "silu": nn.SiLU(), "tanh": nn.Tanh(),
            "sigmoid": nn.Sigmoid(), "softplus": nn.Softplus(beta=1.0, threshold=1e9),
            "softsign": nn.Softsign(), "mish": nn.Mish()}[name]


@pytest.mark.parametrize("activation,loss", list(itertools.product(ACTS, fastinit.LOSSES)))
def test_gradients_against_torch_autograd(activation, loss):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    net = _net(activation, n=1)
    x, y = _data(loss, n=23)
    layers = []
    for l in range(3):
        lin = torch.nn.Linear(SIZES[l], SIZES[l + 1], dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(net.weights[l][0].copy()))
            lin.bias.copy_(torch.from_numpy(net.biases[l][0].copy()))
        layers += [lin, _torch_activation(torch, activation)]
    model = torch.nn.Sequential(*layers[:-1])
    out = model(torch.from_numpy(x))
    target = torch.from_numpy(y)
    value = {"cross_entropy": lambda: F.cross_entropy(out, target),
             "mse": lambda: F.mse_loss(out, target),
             "mse_sum": lambda: 0.5 * F.mse_loss(out, target, reduction="sum") / len(x),
             "bce": lambda: F.binary_cross_entropy_with_logits(out, target)}[loss]()
    value.backward()
    dw, db = net.gradients(x, y, loss=loss)
    assert net.loss(x, y, loss)[0] == pytest.approx(value.item(), rel=1e-12)
    for l in range(3):
        np.testing.assert_allclose(dw[l][0], layers[2 * l].weight.grad.numpy(), rtol=1e-10,
                                   atol=1e-13)
        np.testing.assert_allclose(db[l][0], layers[2 * l].bias.grad.numpy(), rtol=1e-10,
                                   atol=1e-13)


def test_members_get_independent_streams_and_schemes():
    net = fastinit.MLP([8, 16, 4], init=["he_normal", "zeros", "orthogonal"], n=3, seed=5,
                       dtype=np.float64)
    assert np.all(net.weights[0][1] == 0)
    w = net.weights[0][2]
    np.testing.assert_allclose(w.T @ w, np.eye(8), atol=1e-12)   # (16, 8): columns orthonormal
    alone = fastinit.MLP([8, 16, 4], init="orthogonal", n=1, seed=5, dtype=np.float64)
    # member 2 with one seed is stream 2: not member 0 of a network built alone
    assert not np.array_equal(alone.weights[0][0], w)
    listed = fastinit.MLP([8, 16, 4], init=["he_normal", "orthogonal"], n=2, seed=[5, 9],
                          dtype=np.float64)
    single = fastinit.MLP([8, 16, 4], init="orthogonal", n=1, seed=9, dtype=np.float64)
    for l in range(2):
        np.testing.assert_array_equal(listed.weights[l][1], single.weights[l][0])
        np.testing.assert_array_equal(listed.biases[l][1], single.biases[l][0])


def test_presets_set_bias_scheme():
    net = fastinit.MLP([30, 20, 5], init="torch_linear", n=2, seed=0, dtype=np.float64)
    bound = 1 / np.sqrt(30)
    assert np.abs(net.biases[0]).max() <= bound and np.abs(net.biases[0]).max() > 0.5 * bound
    assert np.abs(net.weights[0]).max() <= bound
    keras = fastinit.MLP([30, 20, 5], init="keras_dense", seed=0)
    assert np.all(keras.biases[0] == 0)


def test_zero_init_uses_relu_derivative_one_at_zero():
    assert fastinit.MLP([4, 4, 2], init="ZerO").activation_param == 1.0
    assert fastinit.MLP([4, 4, 2], init="he_normal").activation_param == 0.0
    assert fastinit.MLP([4, 4, 2], init="ZerO", activation_param=0.0).activation_param == 0.0


def test_save_load_roundtrip(tmp_path):
    net = fastinit.MLP([6, 9, 3], activation="elu", init=["he_normal", "lecun_normal"], n=2,
                       seed=[1, 2], activation_param=0.7)
    net.weights[0][1, 2, 3] = 42.0
    path = tmp_path / "net.npz"
    net.save(path)
    back = fastinit.MLP.load(path)
    np.testing.assert_array_equal(back.params, net.params)
    assert back.config() == net.config()
    x = np.random.default_rng(0).standard_normal((4, 6))
    np.testing.assert_array_equal(back.forward(x), net.forward(x))
    with np.load(path, allow_pickle=False) as f:      # no pickle inside
        assert "config" in f.files


def test_saving_a_network_whose_scheme_holds_a_function_says_so(tmp_path):
    """A custom scheme taking its transform as a parameter: save met json's bare "Object of
    type function is not JSON serializable"; now fastinit's TypeError, and no file."""
    fastinit.register_scheme(fastinit.Scheme(
        "test_transform_param", "custom",
        params=(fastinit.Param("transform", kind="callable"),)), replace=True)
    net = fastinit.MLP([3, 4, 2], init=fastinit.spec("test_transform_param",
                                                     transform=lambda u, fi, fo: u - 0.5))
    with pytest.raises(TypeError, match=r"^fastinit.MLP.save: the network's schemes hold "
                                        r"<function .*> \(a function\), which a saved file "
                                        r"\(JSON\) cannot keep"):
        net.save(tmp_path / "net.npz")
    assert not (tmp_path / "net.npz").exists()


def test_loading_a_file_that_is_no_saved_network_says_so(tmp_path):
    text, array, other = tmp_path / "text.npz", tmp_path / "array.npy", tmp_path / "other.npz"
    text.write_text("layer_sizes = [6, 9, 3]\n")
    np.save(array, np.zeros(3))
    np.savez(other, a=np.arange(3))
    for path in (text, array):          # numpy: "This file contains pickled (object) data"
        with pytest.raises(ValueError, match=rf"^fastinit.MLP.load: {re.escape(str(path))} is "
                                             rf"not a saved fastinit network \(an .npz archive "
                                             rf"that fastinit.MLP.save writes\).$"):
            fastinit.MLP.load(path)
    with pytest.raises(ValueError, match=r"^fastinit.ResMLP.load: .*other.npz is not a saved "
                                         r"fastinit network \(an .npz archive that "
                                         r"fastinit.ResMLP.save writes\): it has no 'config'.$"):
        fastinit.ResMLP.load(other)
    with pytest.raises(TypeError, match=r"'path' parameter of fastinit.MLP.load must be a path"):
        fastinit.MLP.load(3)
    with pytest.raises(FileNotFoundError):
        fastinit.MLP.load(tmp_path / "missing.npz")


def test_weights_are_writable_views():
    net = fastinit.MLP([3, 4, 2], init="zeros", n=2, dtype=np.float64)
    net.weights[1][0] = 1.0
    net.biases[1][1] = 2.0
    out = net.forward(np.ones((1, 3)))
    np.testing.assert_array_equal(out[0, 0], [0.0, 0.0])    # hidden activations are relu(0)
    np.testing.assert_array_equal(out[1, 0], [2.0, 2.0])
    assert net.weights[0].shape == (2, 4, 3) and net.biases[0].shape == (2, 4)


def test_member_copy():
    net = fastinit.MLP([5, 6, 2], n=4, seed=1)
    m2 = net.member(2)
    assert m2.n == 1
    np.testing.assert_array_equal(m2.weights[0][0], net.weights[0][2])
    m2.weights[0][0] = 0
    assert np.any(net.weights[0][2] != 0)


def test_population_too_big_for_memory_fails_at_once(monkeypatch):
    with pytest.raises(MemoryError, match=r"fastinit.MLP: n=1000000000000 members of layer "
                                          r"sizes \[4, 3\] \(float32\) need about .* GB but .* GB "
                                          r"of memory is available"):
        fastinit.MLP([4, 3], n=10**12)
    import fastinit.memory as v
    monkeypatch.setattr(v, "available_memory", lambda: 10**6)
    with pytest.raises(MemoryError, match=r"n=10000 members of layer sizes \[64, 64, 10\]"):
        fastinit.MLP([64, 64, 10], n=10_000)
    net = fastinit.MLP([8, 4], n=2)
    with pytest.raises(MemoryError, match=r"fastinit.train: the adam state of 2 members"):
        monkeypatch.setattr(v, "available_memory", lambda: 100)
        fastinit.train(net, (np.ones((4, 8)), np.zeros(4, int)), epochs=1, optimizer="adam")


def test_passes_whose_scratch_cannot_fit_fail_before_any_work(monkeypatch):
    """train, diagnose and gradients count their passes' scratch (every layer's Z and A for a
    batch, a row per thread in use) before any work: a deep network with a big batch got
    NumPy's allocation error after building its evaluation, or in a sweep Numba's bare
    "Allocation failed"; now fastinit's MemoryError names the function and the setting."""
    import fastinit.memory as v
    net = fastinit.MLP([8, 512, 512, 3], n=2, dtype=np.float64)
    x, y = np.ones((5000, 8)), np.zeros(5000, int)
    before = net.params.copy()
    scratch = net._scratch_size(5000) * 8
    assert scratch > 2**26          # a probe of 5000 samples: above what is left unchecked
    monkeypatch.setattr(v, "available_memory", lambda: scratch // 2)
    with pytest.raises(MemoryError, match=r"^fastinit.diagnose: the scratch of 3-layer passes "
                                          r"over batches of 5000 samples need about .* GB but "
                                          r".* GB of memory is available. Use a smaller probe "
                                          r"batch \(fastinit.train's diagnose_samples\)"):
        fastinit.diagnose(net, x)
    with pytest.raises(MemoryError, match=r"^fastinit.MLP.gradients: the scratch .* Use a "
                                          r"smaller X,"):
        net.gradients(x, y)
    with pytest.raises(MemoryError, match=r"^fastinit.train: the scratch of 3-layer passes "
                                          r"over batches of 5000, 5000 samples .* Use a smaller "
                                          r"batch_size or eval_batch_size"):
        fastinit.train(net, (x, y), epochs=1, batch_size=5000, eval_batch_size=5000)
    np.testing.assert_array_equal(net.params, before)
    monkeypatch.setattr(v, "available_memory", lambda: pytest.fail("read for a small pass"))
    fastinit.train(net, (x[:64], y[:64]), epochs=1)           # 64 MiB and less: not read


def test_available_memory_is_memavailable_and_nothing_is_checked_for_no_bytes(monkeypatch):
    import fastinit.memory as v
    if os.path.exists("/proc/meminfo"):
        with open("/proc/meminfo") as f:
            kb = next(int(line.split()[1]) for line in f if line.startswith("MemAvailable:"))
        assert abs(v.available_memory() - kb * 1024) < 0.05 * kb * 1024   # moments apart
    monkeypatch.setattr(v, "available_memory", lambda: pytest.fail("read for no bytes"))
    v.check_memory(0, "nothing")                      # sgd keeps no state: no check
    monkeypatch.setattr(v, "available_memory", lambda: 0)
    with pytest.raises(MemoryError, match="one byte need about"):
        v.check_memory(1, "one byte")


def test_a_list_of_schemes_or_seeds_without_n_asks_for_n():
    # MLP(sizes, init=[3 schemes]) said "must be one of its schemes or a list of n=1 schemes"
    for kw in ({"init": ["zeros", "he_normal", "orthogonal"]}, {"seed": [0, 1, 2]},
               {"dropout": [0.0, 0.1, 0.2]}):
        for make in (lambda: fastinit.MLP([4, 3], **kw),
                     lambda: fastinit.ResMLP(4, 5, 1, 3, **kw)):
            with pytest.raises(ValueError, match=r"must be one (scheme|integer|number) or a "
                               r"list of n=1 .* Got a list of 3. Did you mean n=3\?$"):
                make()
    with pytest.raises(ValueError, match=r"Got a list of 2.$"):     # train's n is the net's
        fastinit.train(fastinit.MLP([4, 3]), (np.ones((4, 4)), np.zeros(4, int)), epochs=1,
                       lr=[0.1, 0.2])


def test_activation_parameter_per_member_errors():
    with pytest.raises(ValueError, match=r"'activation_param' parameter of fastinit.MLP must be "
                                         r"one number or a list of n=2 numbers"):
        fastinit.MLP([4, 3], n=2, activation_param=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"'activation_param' parameter of fastinit.MLP must be "
                                         r"a finite real number. Got nan"):
        fastinit.MLP([4, 3], "elu", activation_param=float("nan"))
    with pytest.raises(ValueError, match=r"softplus beta\) must be > 0"):
        fastinit.MLP([4, 3], "softplus", activation_param=0.0)


def test_a_network_saved_to_an_open_file_loads_from_it():
    """MLP.save and np.load take file objects; MLP.load refused them once its path check came
    (TypeError: must be a path)."""
    net = fastinit.MLP([4, 5, 3], n=2, seed=0)
    buf = io.BytesIO()
    net.save(buf)
    buf.seek(0)
    back = fastinit.MLP.load(buf)
    assert np.array_equal(back.params, net.params)


def test_repr_lists_the_schemes_in_member_order():
    # the quick start's net printed init=['ZerO', 'he_normal', 'orthogonal', 'xavier_normal',
    # 'zeros'] (sorted) for members zeros, xavier_normal, he_normal, orthogonal, ZerO
    schemes = ["zeros", "xavier_normal", "he_normal", "orthogonal", "ZerO"]
    net = fastinit.MLP([8, 8, 3], init=schemes + ["zeros"], n=6)
    assert f"init={schemes!r}" in repr(net)
