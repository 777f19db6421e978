"""Diagnostics on hand-built networks with known answers."""
import numpy as np
import pytest

import fastinit
from fastinit.diagnose import effective_rank
from reference import distinct_rows, max_cosine


def test_identical_rows_are_one_distinct_unit():
    net = fastinit.MLP([5, 8, 3], init=fastinit.spec("constant", value=0.3), n=1,
                       dtype=np.float64)
    d = fastinit.diagnose(net, np.random.default_rng(0).standard_normal((20, 5)))
    assert d.distinct_units[0].tolist() == [1, 1]
    assert d.max_similarity[0, 0] == pytest.approx(1.0)
    assert d.weight_rank[0, 0] == pytest.approx(1.0)
    assert d.act_rank[0, 0] == pytest.approx(1.0)


def test_random_rows_are_all_distinct():
    net = fastinit.MLP([5, 8, 3], init="he_normal", n=2, seed=0, dtype=np.float64)
    d = fastinit.diagnose(net, np.ones((4, 5)))
    assert d.distinct_units.tolist() == [[8, 3], [8, 3]]
    assert np.all(d.max_similarity < 0.999)


def test_tolerance_groups_nearly_equal_units():
    rows = np.array([[1.0, 2.0], [1.0 + 1e-9, 2.0], [0.0, 1.0]])
    assert distinct_rows(rows, 1e-6) == 2
    assert distinct_rows(rows, 1e-12) == 3


def test_effective_rank():
    assert effective_rank(np.eye(7)) == pytest.approx(7.0)
    assert effective_rank(np.outer(np.arange(1, 5), np.ones(6))) == pytest.approx(1.0)
    assert effective_rank(np.zeros((3, 3))) == 0.0


def test_orthogonal_linear_net_is_dynamically_isometric():
    net = fastinit.MLP([32] * 8, activation="linear", init="orthogonal", n=3, seed=1,
                       dtype=np.float64, bias_init="zeros")
    sv = fastinit.jacobian_singular_values(net, np.ones(32))
    np.testing.assert_allclose(sv, 1.0, atol=1e-12)
    gauss = fastinit.MLP([32] * 8, activation="linear", init="lecun_normal", n=1, seed=1,
                         dtype=np.float64)
    spread = fastinit.jacobian_singular_values(gauss, np.ones(32))
    assert spread.max() / spread.min() > 10      # Gaussian products spread the spectrum


def test_jacobian_against_finite_differences():
    net = fastinit.MLP([4, 6, 5, 3], activation="tanh", init="xavier_normal", seed=2,
                       dtype=np.float64, bias_init=fastinit.spec("normal", std=0.2))
    from fastinit.layerwise import jacobian
    x = np.array([0.3, -0.2, 0.5, 0.1])
    J = jacobian(net, x)[0]
    h = 1e-6
    fd = np.stack([(net.forward(x + h * e)[0, 0] - net.forward(x - h * e)[0, 0]) / (2 * h)
                   for e in np.eye(4)], axis=1)
    np.testing.assert_allclose(J, fd, rtol=1e-7, atol=1e-9)


def test_zero_init_relu_is_all_dead_and_gradient_free():
    ds = fastinit.datasets.digits()
    net = fastinit.MLP([64, 16, 16, 10], init=["zeros", "he_normal"], n=2, seed=0,
                       dtype=np.float64)
    d = fastinit.diagnose(net, ds.x_train[:100], ds.y_train[:100])
    assert d.dead_fraction[0, :2].tolist() == [1.0, 1.0]
    assert d.grad_norm[0].tolist() == [0.0, 0.0, 0.0]
    assert np.all(d.grad_norm[1] > 0) and np.all(d.dead_fraction[1, :2] < 0.5)
    assert d.pre_var[0].tolist() == [0.0, 0.0, 0.0]


def test_statistics_against_a_direct_computation():
    net = fastinit.MLP([3, 4, 2], activation="sigmoid", init="he_uniform", n=2, seed=3,
                       dtype=np.float64)
    x = np.random.default_rng(1).standard_normal((9, 3))
    d = fastinit.diagnose(net, x)
    for k in range(2):
        z = x @ net.weights[0][k].T + net.biases[0][k]
        a = 1 / (1 + np.exp(-z))
        assert d.pre_mean[k, 0] == pytest.approx(z.mean())
        assert d.pre_var[k, 0] == pytest.approx(z.var())
        assert d.act_var[k, 0] == pytest.approx(a.var())


def test_history_records_diagnostics():
    ds = fastinit.datasets.digits()
    net = fastinit.MLP([64, 16, 10], init=["zeros", "orthogonal"], n=2, seed=0)
    h = fastinit.train(net, ds, epochs=3, lr=0.1, diagnose_every=2)
    assert h.diagnostic_epochs == [0, 2, 3]
    assert h.diagnostics["distinct_units"].shape == (3, 2, 2)
    assert np.all(h.diagnostics["distinct_units"][:, 0, 0] == 1)   # zeros stays symmetric


def test_compiled_symmetry_matches_numpy_reference():

    net = fastinit.MLP([6, 12, 5], init=["he_normal", fastinit.spec("constant", value=0.2),
                       "ZerO"], n=3, seed=4, dtype=np.float64)
    net.weights[0][0, 3] = net.weights[0][0, 7]          # two identical units in member 0
    net.biases[0][0, 3] = net.biases[0][0, 7]
    d = fastinit.diagnose(net, np.ones((3, 6)))
    for k in range(3):
        for l in range(2):
            rows = np.concatenate([net.weights[l][k], net.biases[l][k][:, None]], 1)
            assert d.distinct_units[k, l] == distinct_rows(rows, 1e-6)
            assert d.max_similarity[k, l] == pytest.approx(max_cosine(rows), abs=1e-12)
    assert d.distinct_units[0, 0] == 11


def test_compiled_statistics_match_numpy_reference():
    from fastinit.layerwise import forward_layers
    net = fastinit.MLP([7, 9, 8, 3], activation="relu", init="he_normal", n=2, seed=5,
                       dtype=np.float64, bias_init=fastinit.spec("normal", std=0.5))
    x = np.random.default_rng(0).standard_normal((21, 7))
    d = fastinit.diagnose(net, x)
    zs, acts = forward_layers(net, x)
    for l in range(3):
        np.testing.assert_allclose(d.pre_sq[:, l], (zs[l] ** 2).mean(axis=(1, 2)), rtol=1e-12)
        np.testing.assert_allclose(d.act_var[:, l], acts[l].var(axis=(1, 2)), rtol=1e-10)
    dead = np.all(zs[0] <= 0, axis=1).mean(axis=1)
    np.testing.assert_allclose(d.dead_fraction[:, 0], dead)


def test_per_sample_gradients_average_to_the_gradient():
    from fastinit.layerwise import per_sample_gradients
    g = np.random.default_rng(3)
    for loss, y in (("cross_entropy", g.integers(0, 3, 9)), ("mse", g.standard_normal((9, 3))),
                    ("mse_sum", g.standard_normal((9, 3))),
                    ("bce", (g.random((9, 3)) > 0.5).astype(float))):
        net = fastinit.ResMLP(5, 6, 2, 3, "tanh", init="xavier_normal", residual="rezero",
                              n=2, seed=[1, 2], dtype=np.float64)
        net.params[...] += 0.1 * g.standard_normal(net.params.shape)
        x = g.standard_normal((9, 5))
        dw, db = net.gradients(x, y, loss)
        sw, sb = per_sample_gradients(net, x, y, loss, member=1)
        assert sw[0].shape == (9, 6, 5) and sb[-1].shape == (9, 3)
        for l in range(net.depth):
            np.testing.assert_allclose(sw[l].mean(axis=0), dw[l][1], rtol=1e-10, atol=1e-13)
            np.testing.assert_allclose(sb[l].mean(axis=0), db[l][1], rtol=1e-10, atol=1e-13)


def test_layer_jacobians_compose_to_the_jacobian_of_a_plain_net():
    from fastinit.layerwise import jacobian, layer_jacobians
    net = fastinit.MLP([5, 7, 6, 3], "tanh", init="xavier_normal", n=2, seed=[3, 4],
                       dtype=np.float64, bias_init=fastinit.spec("normal", std=0.3))
    x = np.random.default_rng(0).standard_normal(5)
    js = layer_jacobians(net, x)
    assert [j.shape for j in js] == [(2, 7, 5), (2, 6, 7), (2, 3, 6)]
    np.testing.assert_allclose(js[2] @ js[1] @ js[0], jacobian(net, x), rtol=1e-12)
    h = 1e-6                       # and the first against central differences
    for i in range(5):
        e = np.zeros(5)
        e[i] = h
        zs_up, _ = fastinit.forward_layers(net, (x + e)[None])
        zs_dn, _ = fastinit.forward_layers(net, (x - e)[None])
        fd = (np.tanh(zs_up[0]) - np.tanh(zs_dn[0]))[:, 0] / (2 * h)
        np.testing.assert_allclose(js[0][:, :, i], fd, rtol=1e-6, atol=1e-9)


def test_gradients_with_one_target_set_per_member():
    net = fastinit.MLP([4, 6, 3], n=3, seed=[1, 2, 3], dtype=np.float64)
    g = np.random.default_rng(1)
    x, y = g.standard_normal((8, 4)), g.integers(0, 3, (3, 8))
    dw, db = net.gradients(x, y)
    for k in range(3):
        one, _ = net.member(k).gradients(x, y[k])
        np.testing.assert_array_equal(dw[0][k], one[0][0])
    t = g.standard_normal((3, 8, 3))
    dw, _ = net.gradients(x, t, loss="mse")
    np.testing.assert_array_equal(dw[1][2], net.member(2).gradients(x, t[2], "mse")[0][1][0])
    with pytest.raises(ValueError, match=r"'y' parameter of fastinit.MLP.gradients has shape "
                                         r"\(2, 8\): pass one set for every member \(\(8,\)\) or "
                                         r"one per member \(3, 8\)"):
        net.gradients(x, y[:2])


def test_diagnose_can_skip_the_symmetry_pass():
    net = fastinit.MLP([8, 16, 3], init=["zeros", "he_normal"], n=2, seed=0)
    x = np.ones((5, 8))
    quick = fastinit.diagnose(net, x, symmetry=False)
    assert np.all(np.isnan(quick.distinct_units)) and np.all(np.isnan(quick.max_similarity))
    full = fastinit.diagnose(net, x)
    np.testing.assert_array_equal(quick.pre_var, full.pre_var)
    np.testing.assert_array_equal(quick.weight_rank, full.weight_rank)


def test_diagnostics_check_their_arguments_and_name_themselves():
    net = fastinit.MLP([6, 9, 3], n=2, seed=0)
    x = np.random.default_rng(0).standard_normal((5, 6))
    for call, func in ((lambda: fastinit.diagnose("net", x), "fastinit.diagnose"),
                       (lambda: fastinit.forward_layers(None, x), "fastinit.forward_layers"),
                       (lambda: fastinit.jacobian_singular_values([6, 9, 3], x[0]),
                        "fastinit.jacobian_singular_values")):
        with pytest.raises(TypeError, match=rf"^The 'net' parameter of {func} must be a "
                                            rf"fastinit.MLP \(or ResMLP\). Got "):
            call()
    # one input x (d0,): a batch is not silently flattened into 30 "features"
    with pytest.raises(ValueError, match=r"^The 'x' parameter of fastinit.jacobian_singular_"
                                         r"values must be one input of shape \(6,\). Got "
                                         r"shape \(5, 6\).$"):
        fastinit.jacobian_singular_values(net, x)
    with pytest.raises(TypeError, match=r"'x' parameter of fastinit.jacobian_singular_values "
                                        r"must hold numbers"):
        fastinit.jacobian_singular_values(net, np.array(list("abcdef")))
    with pytest.raises(ValueError, match=r"'loss' parameter of fastinit.diagnose must be one "
                                         r"of .*Got 'ce' instead. Did you mean 'cross_entropy'\?"):
        fastinit.diagnose(net, x, loss="ce")          # checked with or without labels
    with pytest.raises(ValueError, match=r"'tol' parameter of fastinit.diagnose must be in the "
                                         r"interval \[0.0, inf\). Got -1.0"):
        fastinit.diagnose(net, x, tol=-1)
    with pytest.raises(TypeError, match=r"'ranks' parameter of fastinit.diagnose must be True "
                                        r"or False"):
        fastinit.diagnose(net, x, ranks="no")
    with pytest.raises(ValueError, match=r"^The 'y' parameter of fastinit.diagnose holds "
                                         r"labels in \[10, 14\] but the network has 3 outputs"):
        fastinit.diagnose(net, x, np.arange(5) + 10)
    with pytest.raises(ValueError, match=r"^The 'y' parameter of fastinit.diagnose has shape "
                                         r"\(3, 5\): pass one set for every member"):
        fastinit.diagnose(net, x, np.zeros((3, 5), int))


def test_the_jacobian_takes_one_input_as_a_row_too():
    """x of shape (1, d0) is one input (it was, until batches of several rows were refused)."""
    net = fastinit.MLP([3, 4, 2], seed=0)
    x = np.linspace(-1, 1, 3)
    assert np.array_equal(fastinit.jacobian_singular_values(net, x[None, :]),
                          fastinit.jacobian_singular_values(net, x))
    with pytest.raises(ValueError, match=r"must be one input of shape \(3,\)"):
        fastinit.jacobian_singular_values(net, np.stack([x, x]))


def test_the_jacobian_takes_a_torch_tensor_that_requires_grad():
    """One input as a torch tensor with requires_grad (a user's model input): np.reshape
    raised torch's own RuntimeError before the input was checked."""
    torch = pytest.importorskip("torch")
    net = fastinit.MLP([3, 4, 2], seed=0, dtype=np.float64)
    x = np.linspace(-1, 1, 3)
    t = torch.tensor(x, requires_grad=True)
    assert np.array_equal(fastinit.jacobian_singular_values(net, t),
                          fastinit.jacobian_singular_values(net, x))
