"""Residual MLPs: gradients, the variants' inits, training on digits, the scaling contract."""
import numpy as np
import pytest

import fastinit
from fastinit.layerwise import forward_layers

DIGITS = fastinit.datasets.digits()


def _perturbed(variant, activation="tanh"):
    net = fastinit.ResMLP(5, 6, 2, 3, activation=activation, init="xavier_normal",
                          residual=variant, n=1, seed=4, dtype=np.float64,
                          bias_init=fastinit.spec("normal", std=0.2))
    g = np.random.default_rng(0)        # move every parameter off its init (zeros included)
    net.params[...] += 0.1 * g.standard_normal(net.params.shape)
    return net


@pytest.mark.parametrize("variant", ["plain", "rezero", "fixup", "zero"])
def test_gradients_against_central_differences(variant):
    net = _perturbed(variant)
    g = np.random.default_rng(1)
    x, y = g.standard_normal((9, 5)), g.integers(0, 3, 9)
    full = np.zeros_like(net.params)      # every parameter's gradient, the alphas included
    from fastinit import kernels
    a = net.arch
    kernels.train.gradients(0, 1, net.params, x, y.astype(np.int64)[None], np.zeros((1, 1, 1)),
                            a, 0, full, np.zeros(1))
    h = 1e-6
    size = net.params.shape[1]
    idx = list(range(size - net.blocks, size))                     # the alphas
    for l in range(net.depth):                                     # a few weights per layer
        idx += [int(a.woff[l]), int(a.woff[l]) + 1, int(a.boff[l])]
    for i in idx:
        old = net.params[0, i]
        net.params[0, i] = old + h
        up = net.loss(x, y)[0]
        net.params[0, i] = old - h
        down = net.loss(x, y)[0]
        net.params[0, i] = old
        want = (up - down) / (2 * h) if (a.alpha_train or i < size - net.blocks) else 0.0
        assert full[0, i] == pytest.approx(want, rel=1e-6, abs=1e-8), i


def test_forward_matches_numpy_reference():
    net = _perturbed("rezero", "relu")
    x = np.random.default_rng(2).standard_normal((7, 5))
    _, acts = forward_layers(net, x)
    np.testing.assert_allclose(net.forward(x), acts[-1], rtol=1e-12, atol=1e-13)
    # by hand: stem, two blocks, output
    p = lambda l: (net.weights[l][0], net.biases[l][0])
    h = np.maximum(x @ p(0)[0].T + p(0)[1], 0)
    for b in range(2):
        w1, b1 = p(1 + 2 * b)
        w2, b2 = p(2 + 2 * b)
        h = h + net.alphas[0, b] * (np.maximum(h @ w1.T + b1, 0) @ w2.T + b2)
    np.testing.assert_allclose(net.forward(x)[0], h @ p(5)[0].T + p(5)[1], rtol=1e-12)


def test_variant_inits():
    fix = fastinit.ResMLP(8, 16, 4, 3, residual="fixup", n=2, seed=0, dtype=np.float64)
    assert np.all(fix.weights[2] == 0) and np.all(fix.weights[-1] == 0)
    assert np.all(fix.alphas == 1)
    ref = fastinit.MLP([8] + [16] * 9 + [3], init="he_normal", n=2, seed=0, dtype=np.float64)
    np.testing.assert_allclose(fix.weights[1], ref.weights[1] * 4 ** -0.5)
    rz = fastinit.ResMLP(8, 16, 3, 3, residual="rezero", seed=0)
    assert np.all(rz.alphas == 0) and rz.train_alpha
    x = np.random.default_rng(0).standard_normal((4, 8))
    zero = fastinit.ResMLP(8, 8, 3, 3, residual="zero", seed=0, dtype=np.float64)
    assert zero.activation_param == 1.0 and np.all(zero.weights[2] == 0)
    np.testing.assert_array_equal(zero.weights[1][0], np.eye(8))
    # a zero branch is the identity: the blocks pass the stem's output straight through
    _, acts = forward_layers(zero, x)
    np.testing.assert_allclose(acts[-2], acts[0], atol=1e-15)


@pytest.mark.parametrize("variant", ["fixup", "zero", "rezero"])
def test_residual_nets_train_on_digits(variant):
    net = fastinit.ResMLP(64, 64, 8, 10, residual=variant, n=2, seed=[0, 1])
    h = fastinit.train(net, DIGITS, epochs=12, batch_size=32, optimizer="momentum", lr=0.02)
    assert np.all(h.test_acc[-1] > 0.93), h.test_acc[-1]
    assert not h.diverged.any()


def test_member_alone_equals_member_in_population():
    pop = fastinit.ResMLP(64, 32, 3, 10, residual="rezero", init=["he_normal", "orthogonal"],
                          n=2, seed=[3, 4])
    fastinit.train(pop, DIGITS, epochs=2, lr=0.05, optimizer="adam")
    alone = fastinit.ResMLP(64, 32, 3, 10, residual="rezero", init="orthogonal", n=1, seed=[4])
    fastinit.train(alone, DIGITS, epochs=2, lr=0.05, optimizer="adam")
    np.testing.assert_array_equal(pop.params[1], alone.params[0])
    assert np.any(pop.alphas != 0)       # the branch scalars learned


def test_save_load_and_diagnose(tmp_path):
    net = fastinit.ResMLP(10, 12, 2, 4, residual="fixup", n=2, seed=1)
    net.alphas[1, 0] = 0.5
    net.save(tmp_path / "r.npz")
    back = fastinit.ResMLP.load(tmp_path / "r.npz")
    np.testing.assert_array_equal(back.params, net.params)
    assert back.residual == "fixup" and back.blocks == 2
    d = fastinit.diagnose(back, np.ones((3, 10)))
    assert np.isnan(d.dead_fraction[0, 2])                  # a block output has no activation
    sv = fastinit.jacobian_singular_values(back, np.ones(10))
    assert sv.shape == (2, 4)


def test_resmlp_errors():
    with pytest.raises(ValueError, match="'residual' parameter of fastinit.ResMLP.*Did you mean "
                                         "'rezero'"):
        fastinit.ResMLP(4, 4, 2, 2, residual="rezer")
    with pytest.raises(ValueError, match="'blocks' parameter.*>= 1"):
        fastinit.ResMLP(4, 4, 0, 2)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adam", "adamw"])
def test_weight_decay_leaves_a_fixed_alpha_alone(optimizer):
    """A branch scale that is not trained (train_alpha=False: "plain" keeps alpha = 1) is a
    constant of the architecture, like a buffer in PyTorch, not a parameter: weight decay
    (L2 or decoupled) shrank it by a factor every step (1 -> 0.92 in 8 steps); a trained one
    still moves."""
    g = np.random.default_rng(0)
    x, y = g.standard_normal((64, 12)), g.integers(0, 3, 64)
    kw = dict(epochs=2, batch_size=16, optimizer=optimizer, weight_decay=0.1, lr=0.05,
              eval_every=0)
    fixed = fastinit.ResMLP(12, 16, 2, 3, residual="plain", n=2, seed=[1, 2])
    trained = fastinit.ResMLP(12, 16, 2, 3, residual="plain", n=2, seed=[1, 2],
                              train_alpha=True)
    before = fixed.alphas.copy()
    fastinit.train(fixed, (x, y), **kw)
    fastinit.train(trained, (x, y), **kw)
    np.testing.assert_array_equal(fixed.alphas, before)
    assert np.all(trained.alphas != before)


def test_repr_is_the_call_that_builds_the_network():
    # it read "ResMLP(8, 16, blocks=2, 3, ...)": a positional argument after a keyword
    net = fastinit.ResMLP(8, 16, 2, 3, residual="fixup", n=2)
    assert repr(net) == ("ResMLP(8, 16, 2, 3, activation='relu', residual='fixup', n=2, "
                         "dtype=float32)")
    again = eval(repr(net), {"ResMLP": fastinit.ResMLP, "float32": "float32"})
    assert again.layer_sizes == net.layer_sizes and again.blocks == 2


def test_zero_variant_keeps_an_init_given_and_is_zero_by_default():
    """residual="zero" zeroes each branch's last layer (alpha 1, fixed) on the weights ``init``
    draws; left out, init is the ZerO scheme (the ZerO paper). An init given was replaced by
    ZerO without a word: a sweep's scheme axis gave one network under several names."""
    dflt = fastinit.ResMLP(8, 8, 3, 3, residual="zero", seed=0, dtype=np.float64)
    zero = fastinit.ResMLP(8, 8, 3, 3, init="ZerO", residual="zero", seed=0,
                           dtype=np.float64)
    np.testing.assert_array_equal(dflt.params, zero.params)
    assert dflt.init == zero.init and "ZerO" in repr(dflt.init)
    he = fastinit.ResMLP(8, 8, 3, 3, init="he_normal", residual="zero", n=2, seed=0)
    ref = fastinit.MLP([8] * 8 + [3], init="he_normal", n=2, seed=0)
    for l in range(he.depth):
        want = 0 * ref.weights[l] if l in (2, 4, 6) else ref.weights[l]
        np.testing.assert_array_equal(he.weights[l], want)
    assert np.all(he.alphas == 1) and not he.train_alpha
    assert list(he.activation_param) == [0, 0]                  # relu'(0) = 0: He's, not ZerO's
    mixed = fastinit.ResMLP(8, 8, 3, 3, init=["ZerO", "he_normal"], residual="zero", n=2,
                            seed=[0, 0])
    np.testing.assert_array_equal(mixed.params[0], zero.params[0].astype(np.float32))
    np.testing.assert_array_equal(mixed.params[1], he.params[0])
    assert list(mixed.activation_param) == [1, 0]
