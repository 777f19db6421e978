"""LSUV and Kraehenbuehl et al.'s data-dependent init."""
import warnings

import numpy as np
import pytest

import fastinit

DIGITS = fastinit.datasets.digits()
X = DIGITS.x_train[:256]


@pytest.mark.parametrize("activation", ["relu", "tanh", "selu"])
@pytest.mark.parametrize("center", [False, True])
def test_lsuv_unit_variance_on_every_layer(activation, center):
    net = fastinit.MLP([64, 48, 48, 48, 10], activation=activation, init="he_normal", n=3,
                       seed=[1, 2, 3], dtype=np.float64)
    res = fastinit.lsuv(net, X, tol=0.05, center_bias=center)
    d = fastinit.diagnose(net, X)
    assert np.all(np.abs(d.pre_var - 1) < 0.05), d.pre_var
    np.testing.assert_allclose(res["variance"], d.pre_var, rtol=1e-9)
    if center:
        assert np.all(np.abs(d.pre_mean) < 1e-9)
    # orthonormal start: the first layer is a scaled orthogonal matrix
    w = net.weights[0][0]
    g = w @ w.T
    np.testing.assert_allclose(g / g[0, 0], np.eye(48), atol=1e-9)


def test_lsuv_member_is_independent_of_population():
    pop = fastinit.MLP([64, 32, 10], init="he_normal", n=3, seed=[5, 6, 7], dtype=np.float64)
    alone = fastinit.MLP([64, 32, 10], init="he_normal", n=1, seed=[6], dtype=np.float64)
    fastinit.lsuv(pop, X)
    fastinit.lsuv(alone, X)
    np.testing.assert_array_equal(pop.params[1], alone.params[0])


def test_lsuv_trains_deep_relu_network():
    net = fastinit.MLP([64] + [64] * 12 + [10], activation="relu", init="he_normal", n=2,
                       seed=0)
    fastinit.lsuv(net, X)
    h = fastinit.train(net, DIGITS, epochs=10, lr=0.02, optimizer="momentum")
    assert np.all(h.test_acc[-1] > 0.9)


def test_lsuv_errors():
    net = fastinit.MLP([64, 10], seed=0)
    with pytest.raises(ValueError, match=r"'tol' parameter of fastinit.lsuv.*\(0.0, inf\)"):
        fastinit.lsuv(net, X, tol=0)
    with pytest.raises(ValueError, match="at least 2 samples"):
        fastinit.lsuv(net, X[:1])
    with pytest.raises(ValueError, match="has 3 features"):
        fastinit.lsuv(net, np.ones((4, 3)))
    with pytest.raises(TypeError, match="must be a fastinit.MLP"):
        fastinit.lsuv("net", X)
    with pytest.raises(ValueError, match="'layers' parameter"):
        fastinit.lsuv(net, X, layers="some")
    with pytest.raises(ValueError, match=r"'layers' parameter of fastinit.lsuv must be one of "
                                         r"\{'all', 'hidden'\}. Got 'hiden' instead. Did you "
                                         r"mean 'hidden'\?"):    # the hint was missing
        fastinit.lsuv(net, X, layers="hiden")


def test_kraehenbuehl_within_layer_normalisation():
    net = fastinit.MLP([64, 40, 40, 10], activation="relu", init="xavier_uniform", n=2, seed=3,
                       dtype=np.float64)
    res = fastinit.kraehenbuehl(net, X, between_layers=False)
    from fastinit.layerwise import forward_layers
    zs, _ = forward_layers(net, X)
    for z in zs:                       # every unit: mean 0, std 1 on the batch
        np.testing.assert_allclose(z.mean(axis=1), 0, atol=1e-9)
        np.testing.assert_allclose(z.std(axis=1), 1, atol=1e-9)
    np.testing.assert_allclose(res["pre_std"], 1, atol=1e-9)


def test_kraehenbuehl_between_layers_equalises_rates():
    net = fastinit.MLP([64, 40, 40, 40, 10], activation="relu", init="xavier_uniform", n=1,
                       seed=3, dtype=np.float64)
    first = fastinit.kraehenbuehl(net.copy(), X, iterations=1)["ratios"]
    last = fastinit.kraehenbuehl(net, X, iterations=30)["ratios"]
    spread = lambda r: np.log(r.max() / r.min())
    assert spread(last[0]) < 0.5 * spread(first[0])
    h = fastinit.train(net, DIGITS, epochs=5, lr=0.02, optimizer="momentum")
    assert h.test_acc[-1, 0] > 0.9


@pytest.mark.parametrize("residual", ["plain", "skipinit", "rezero", "fixup", "zero"])
def test_lsuv_follows_residual_skips(residual):
    """LSUV measures each layer on the network's real forward pass: after it, the measured
    pre-activation variance of every layer (compiled pass, skips included) is within tol of 1."""
    net = fastinit.ResMLP(64, 48, 3, 10, "relu", init="he_normal", residual=residual, n=2,
                          seed=[1, 2], dtype=np.float64)
    res = fastinit.lsuv(net, X, tol=0.05)
    measured = fastinit.diagnose(net, X).pre_var
    assert np.all(np.abs(measured - 1) < 0.05), measured
    np.testing.assert_allclose(res["variance"], measured, rtol=1e-9)


@pytest.mark.parametrize("residual", ["plain", "fixup"])
def test_kraehenbuehl_follows_residual_skips(residual):
    net = fastinit.ResMLP(64, 32, 2, 10, "tanh", init="xavier_normal", residual=residual,
                          n=2, seed=[3, 4], dtype=np.float64)
    net.params[...] += 0.05     # no all-zero layer: every unit has a spread to normalise
    fastinit.kraehenbuehl(net, X, between_layers=False)
    zs, _ = fastinit.forward_layers(net, X)
    for z in zs:
        np.testing.assert_allclose(z.mean(axis=1), 0, atol=1e-8)
        np.testing.assert_allclose(z.std(axis=1), 1, atol=1e-8)


def test_kraehenbuehl_member_is_independent_of_population():
    pop = fastinit.MLP([64, 32, 32, 10], init="he_normal", n=3, seed=[5, 6, 7],
                       dtype=np.float64)
    alone = fastinit.MLP([64, 32, 32, 10], init="he_normal", seed=6, dtype=np.float64)
    fastinit.kraehenbuehl(pop, X, iterations=3, seed=9)
    fastinit.kraehenbuehl(alone, X, iterations=3, seed=9)
    np.testing.assert_array_equal(pop.params[1], alone.params[0])


def test_kraehenbuehl_seed_error():
    net = fastinit.MLP([64, 10], seed=0)
    with pytest.raises(ValueError, match=r"The 'seed' parameter of fastinit.kraehenbuehl must "
                                         r"be a non-negative integer in \[0, 2\*\*64 - 1\]"):
        fastinit.kraehenbuehl(net, X, seed=-1)


def test_lsuv_min_iter_rescales_at_least_once():
    net = fastinit.MLP([64, 32, 10], init="he_normal", n=1, seed=1, dtype=np.float64)
    loose = fastinit.lsuv(net.copy(), X, tol=10.0)                  # every variance within tol
    assert np.all(loose["iterations"] == 0)
    once = fastinit.lsuv(net.copy(), X, tol=10.0, min_iter=1)
    assert np.all(once["iterations"] == 1)
    with pytest.raises(ValueError, match=r"'min_iter' parameter of fastinit.lsuv must be an "
                                         r"integer <= 10"):
        fastinit.lsuv(net, X, min_iter=11)


@pytest.mark.parametrize("init", ["lsuv", "kraehenbuehl"])
def test_identical_samples_are_refused(init):
    """Constant inputs gave every unit a spread of rounding noise (1e-16 of its mean), and
    kraehenbuehl (and lsuv with center_bias) divided by it: float64 weights of 1e16, with
    pre-activations up to 1e19 on real data, and no error. Identical samples are one sample."""
    net = fastinit.MLP([4, 8, 8, 2], "tanh", seed=0, dtype=np.float64)
    before = net.params.copy()
    kw = {"center_bias": True} if init == "lsuv" else {}
    with pytest.raises(ValueError, match=rf"'X' parameter of fastinit.{init} needs at least 2 "
                                         rf"distinct samples to measure a variance. Got 16 "
                                         rf"identical ones"):
        getattr(fastinit, init)(net, np.ones((16, 4)), **kw)
    np.testing.assert_array_equal(net.params, before)


def test_kraehenbuehl_beta_needs_biases():
    """beta=0.5 on a bias-free network was dropped without a word (pre_mean stayed near 0),
    as lsuv's center_bias is refused there."""
    X = np.random.default_rng(0).normal(size=(32, 4))
    net = fastinit.MLP([4, 8, 2], bias=False)
    with pytest.raises(ValueError, match=r"'beta' parameter of fastinit.kraehenbuehl needs a "
                                         r"network with biases.*Got beta=0.5"):
        fastinit.kraehenbuehl(net, X, beta=0.5)
    assert np.isfinite(fastinit.kraehenbuehl(net, X)["pre_std"]).all()     # beta 0: the scale


def _sweep_networks(grid, train):
    """The networks a sweep builds for a spec's runs, one population each, and the runs."""
    from fastinit.sweep import SweepSpec, load_dataset, population_network
    runs = SweepSpec.from_dict({"grid": grid, "train": train}).runs()
    c = runs[0].config
    data = load_dataset(c["dataset"], c.get("data"), c["data_seed"])
    return [population_network([r.config], data) for r in runs], runs


@pytest.mark.parametrize("residual", [None, "rezero", "fixup"])
def test_a_sweep_lsuv_rescales_the_weights_of_each_runs_scheme(residual):
    """data_init = "lsuv" in a sweep starts from the weights the run's scheme drew (it re-drew
    orthonormal weights for every scheme: a grid's scheme axis gave one network under three
    names, and fixup's zero layers were overwritten). scheme = "orthogonal" is the paper's LSUV,
    bitwise what fastinit.lsuv's orthonormal default gives."""
    schemes = ["he_normal", "xavier_uniform", "orthogonal"]
    nets, runs = _sweep_networks({"scheme": schemes}, {"data_init": "lsuv", "width": 16,
                                                        "depth": 2, "residual": residual})
    first = [np.asarray(n.weights[0][0]) for n in nets]
    assert not np.array_equal(first[0], first[1]) and not np.array_equal(first[0], first[2])
    for net, run in zip(nets, runs):
        c = run.config
        kind = fastinit.ResMLP if residual else fastinit.MLP
        args = (64, 16, 2, 10) if residual else ([64, 16, 16, 10],)
        opts = dict(residual=residual) if residual else {}
        ref = kind(*args, init=c["scheme"][0], seed=c["seed"], **opts)
        fastinit.lsuv(ref, X[:256], orthonormal=False)
        np.testing.assert_array_equal(net.params, ref.params)
        if residual == "fixup":
            assert np.all(net.weights[2] == 0) and np.all(net.weights[-1] == 0)
    if residual != "fixup":
        paper = kind(*args, init="he_normal", seed=runs[2].config["seed"], **opts)
        fastinit.lsuv(paper, X[:256])
        np.testing.assert_array_equal(nets[2].params, paper.params)


@pytest.mark.parametrize("residual", ["skipinit", "zero"])
def test_kraehenbuehl_equalises_the_layers_that_have_a_gradient(residual):
    """Behind a zero branch (skipinit's alpha = 0, a zero last layer) a layer has no gradient
    (r = 0) and a zero layer no weight: those keep their scale and the other layers (stem,
    output) are equalised among themselves. A single r = 0 made the step skip the member: the
    between-layer step did nothing on every skipinit, rezero, fixup and zero network."""
    net = fastinit.ResMLP(64, 32, 2, 10, "relu", init="he_normal", residual=residual, n=2,
                          seed=[3, 4], dtype=np.float64)
    within = net.copy()
    fastinit.kraehenbuehl(within, X, between_layers=False)
    first = fastinit.kraehenbuehl(net.copy(), X, iterations=1)["ratios"]
    res = fastinit.kraehenbuehl(net, X, iterations=30)
    live = [0, net.depth - 1]                               # stem and output layer
    spread = lambda r: np.log(r[:, live].max(axis=1) / r[:, live].min(axis=1))
    assert np.all(spread(res["ratios"]) < 0.5 * spread(first)), (first, res["ratios"])
    for l in range(net.depth):
        same = np.array_equal(net.weights[l], within.weights[l])
        assert same == (l not in live), l                  # only stem and output moved


def _refused(given, named, skips, remedy, **call):
    """kraehenbuehl(**call, **given) refused with the between-layer message naming ``named``,
    before touching the network (returned, as it was)."""
    net = fastinit.MLP([64, 20, 10], init="xavier_uniform", seed=1, dtype=np.float64)
    before = [w.copy() for w in net.weights]
    verb, them = ("steers", "it") if len(given) == 1 else ("steer", "them")
    with pytest.raises(ValueError, match=r"^The " + named + r" parameters? of "
                       r"fastinit.kraehenbuehl " + verb + r" only the between-layer step, "
                       r"which " + skips + r"; drop " + them + r" or " + remedy + r"\.$"):
        fastinit.kraehenbuehl(net, X, **call, **given)
    for w, b in zip(net.weights, before):
        np.testing.assert_array_equal(w, b)
    return net


@pytest.mark.parametrize("given, named", [
    ({"iterations": 3}, r"'iterations' \(got 3\)"),
    ({"alpha": 0.5, "seed": 7}, r"'alpha' \(got 0.5\) and 'seed' \(got 7\)"),
    ({"iterations": 10, "alpha": 0.25, "seed": 0},      # the defaults, said out loud, too
     r"'iterations' \(got 10\), 'alpha' \(got 0.25\) and 'seed' \(got 0\)")])
def test_kraehenbuehl_refuses_between_layer_settings_without_that_step(given, named):
    """iterations, alpha and seed only steer the between-layer step; with between_layers=False
    they were accepted and silently did nothing."""
    net = _refused(given, named, r"between_layers=False skips", r"set between_layers=True",
                   between_layers=False)
    fastinit.kraehenbuehl(net, X, between_layers=False)          # without them: fine


@pytest.mark.parametrize("given, named", [
    ({"alpha": 0.5}, r"'alpha' \(got 0.5\)"),
    ({"alpha": 0.5, "seed": 7}, r"'alpha' \(got 0.5\) and 'seed' \(got 7\)")])
def test_kraehenbuehl_refuses_alpha_and_seed_with_iterations_0(given, named):
    """With between_layers=True and iterations=0 the between-layer step runs no iteration, so
    an alpha or seed given with it was accepted and silently did nothing."""
    net = _refused(given, named, r"iterations=0 skips", r"set iterations to 1 or more",
                   iterations=0)
    within = net.copy()
    fastinit.kraehenbuehl(within, X, between_layers=False)
    fastinit.kraehenbuehl(net, X, iterations=0)                 # iterations=0 alone: fine
    for w, v in zip(net.weights, within.weights):
        np.testing.assert_array_equal(w, v)


@pytest.mark.parametrize("given, named", [
    ({"iterations": 3}, r"'iterations' \(got 3\)"),
    ({"alpha": 0.5, "seed": 7}, r"'alpha' \(got 0.5\) and 'seed' \(got 7\)")])
def test_kraehenbuehl_warns_that_a_one_layer_network_has_nothing_to_equalise(given, named):
    """A one-layer network has no pair of layers for the between-layer step to equalise: its
    iterations, alpha and seed were accepted and silently did nothing. Now a warning says so
    (the call is fine for deeper networks, so a loop over depths is not stopped); without them
    nothing is said, and the within-layer step is done either way."""
    net = fastinit.MLP([64, 10], init="xavier_uniform", seed=1, dtype=np.float64)
    within = net.copy()
    fastinit.kraehenbuehl(within, X, between_layers=False)
    them, were = ("it", "was") if len(given) == 1 else ("them", "were")
    with pytest.warns(UserWarning, match=r"^fastinit.kraehenbuehl: the network has one layer, "
                      r"so the between-layer step has no pair of layers to equalise and " +
                      named + r" " + were + r" not used; drop " + them +
                      r" for a one-layer network\.$"):
        fastinit.kraehenbuehl(net, X, **given)
    np.testing.assert_array_equal(net.weights[0], within.weights[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fastinit.kraehenbuehl(net.copy(), X)                        # nothing given: no word
        fastinit.kraehenbuehl(net.copy(), X, iterations=0)          # no step asked for
        nets, _ = _sweep_networks({"seed": [0]}, {"data_init": "kraehenbuehl", "depth": 0,
                                                  "data_seed": 3})  # a sweep's depth 0
    assert nets[0].depth == 1
