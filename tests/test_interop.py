"""PyTorch interop (skipped cleanly without torch)."""
import re
import warnings

import numpy as np
import pytest

import fastinit
from fastinit import interop

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu_tanh", "leaky_relu", "elu",
                                        "softplus", "linear"])
def test_round_trip_identical_outputs(activation):
    net = fastinit.MLP([7, 12, 9, 4], activation=activation, init="he_normal", n=3, seed=2,
                       dtype=np.float64, bias_init=fastinit.spec("normal", std=0.1),
                       activation_param=0.2 if activation in ("leaky_relu", "elu") else None)
    x = np.random.default_rng(0).standard_normal((11, 7))
    seq = interop.to_torch(net, member=1)
    out = seq(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(out, net.forward(x)[1], rtol=1e-12, atol=1e-13)
    back = interop.from_torch(seq)
    assert back.activation == activation and back.layer_sizes == net.layer_sizes
    np.testing.assert_array_equal(back.params[0], net.member(1).params[0])
    np.testing.assert_array_equal(back.forward(x)[0], net.forward(x)[1])


def test_init_torch_equals_fastinit_mlp():
    model = torch.nn.Sequential(torch.nn.Linear(10, 20), torch.nn.ReLU(), torch.nn.Linear(20, 5))
    interop.init_torch(model, "kaiming_normal", seed=7, nonlinearity="relu")
    net = fastinit.MLP([10, 20, 5], init=fastinit.spec("kaiming_normal", nonlinearity="relu"),
                       seed=7)
    np.testing.assert_array_equal(model[0].weight.detach().numpy(), net.weights[0][0])
    np.testing.assert_array_equal(model[2].weight.detach().numpy(), net.weights[1][0])
    np.testing.assert_array_equal(model[0].bias.detach().numpy(), net.biases[0][0])
    again = torch.nn.Sequential(torch.nn.Linear(10, 20), torch.nn.ReLU(), torch.nn.Linear(20, 5))
    interop.init_torch(again, "kaiming_normal", seed=7, nonlinearity="relu")
    assert torch.equal(again[0].weight, model[0].weight)        # reproducible by seed


def test_init_torch_conv_and_presets():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(),
                                torch.nn.Conv2d(8, 8, 3, groups=2))
    interop.init_torch(model, "torch_linear", seed=1)
    w = model[0].weight.detach().numpy()
    bound = 1 / np.sqrt(3 * 9)
    assert np.abs(w).max() <= bound and np.abs(model[0].bias.detach().numpy()).max() <= bound
    interop.init_torch(model, "dirac")
    out = model[0](torch.ones(1, 3, 5, 5))
    assert torch.allclose(out[0, :3], torch.ones(3, 3, 3))      # dirac passes channels through


def test_init_torch_draws_conv_transpose_weights_and_names_the_weights_it_leaves():
    """A ConvTranspose weight (in, out / groups, *kernel) is drawn with the fans torch.nn.init
    takes from that shape (fan_in = out / groups x kernel; it was left untouched); a weight
    init_torch has no rule for is left as it was and named in a warning."""
    model = torch.nn.Sequential(torch.nn.ConvTranspose2d(64, 32, 3), torch.nn.ReLU(),
                                torch.nn.Conv2d(32, 8, 1))
    interop.init_torch(model, "kaiming_normal", seed=3, nonlinearity="relu")
    w = model[0].weight.detach().numpy()
    ref = torch.nn.init.kaiming_normal_(torch.empty(64, 32, 3, 3), nonlinearity="relu")
    assert np.std(w) == pytest.approx(np.sqrt(2 / (32 * 9)), rel=0.03)
    assert np.std(w) == pytest.approx(float(ref.std()), rel=0.05)
    assert not model[0].bias.detach().numpy().any()              # the preset bias: zeros
    interop.init_torch(model, "torch_linear", seed=1)            # its bias: out_channels long
    b, bound = model[0].bias.detach().numpy(), 1 / np.sqrt(32 * 9)
    assert b.shape == (32,) and bound / 2 < np.abs(b).max() <= bound
    with_embedding = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Linear(4, 2))
    table = with_embedding[0].weight.detach().clone()
    attention = torch.nn.MultiheadAttention(8, 2)
    with pytest.warns(UserWarning, match=r"left these weights as they were .*: Embedding"
                                         r"\.weight\.$"):
        interop.init_torch(with_embedding, "xavier_uniform")
    assert torch.equal(with_embedding[0].weight, table)
    with pytest.warns(UserWarning, match=r"MultiheadAttention\.in_proj_weight\.$"):
        interop.init_torch(attention, "xavier_uniform")


def test_lsuv_through_a_module():
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.Tanh(), torch.nn.Linear(64, 64),
                                torch.nn.Tanh(), torch.nn.Linear(64, 10)).double()
    x = torch.from_numpy(fastinit.datasets.digits().x_train[:256])
    variances = interop.lsuv_torch(model, x, tol=0.05)
    assert len(variances) == 3 and all(abs(v - 1) < 0.05 for v in variances)


def test_interop_errors():
    with pytest.raises(TypeError, match="torch.nn.Module"):
        interop.init_torch("model")
    with pytest.raises(ValueError, match="no Linear, Conv or ConvTranspose layers"):
        interop.init_torch(torch.nn.ReLU())
    mixed = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.ReLU(), torch.nn.Linear(3, 3),
                                torch.nn.Tanh(), torch.nn.Linear(3, 2))
    with pytest.raises(ValueError, match="uses one activation"):
        interop.from_torch(mixed)
    with pytest.raises(ValueError, match="'scheme' parameter.*Did you mean 'he_normal'"):
        interop.init_torch(torch.nn.Linear(3, 3), "he_norml")
    chained_wrong = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(),
                                        torch.nn.Linear(9, 3))
    with pytest.raises(ValueError, match=r"^fastinit.interop.from_torch: Linear layer 1 takes "
                                         r"9 inputs but the layer before it gives 8 outputs.$"):
        interop.from_torch(chained_wrong)


def _seq(*mods):
    return torch.nn.Sequential(*mods)


def test_from_torch_refuses_what_an_mlp_cannot_hold_instead_of_changing_the_network():
    nn = torch.nn
    lin = lambda: nn.Linear(4, 4)
    # each of these was read, silently, as another network (or failed with an AttributeError)
    with pytest.raises(ValueError, match=r"mixes \['leaky_relu\(0.1\)', 'leaky_relu\(0.3\)'\]"):
        interop.from_torch(_seq(lin(), nn.LeakyReLU(0.1), lin(), nn.LeakyReLU(0.3), lin()))
    with pytest.raises(ValueError, match=r"optional norm then one activation.* Got, after each "
                                         r"Linear layer: \[\['ReLU', 'BatchNorm1d'\], \[\]\]."):
        interop.from_torch(_seq(lin(), nn.ReLU(), nn.BatchNorm1d(4), lin()))
    with pytest.raises(ValueError, match=r"\[\[\], \['ReLU', 'ReLU'\], \[\]\]"):
        interop.from_torch(_seq(lin(), lin(), nn.ReLU(), nn.ReLU(), lin()))
    with pytest.raises(ValueError, match=r"must start with a Linear layer. Got Flatten first."):
        interop.from_torch(_seq(nn.Flatten(), lin(), nn.ReLU(), lin()))
    for norm in (nn.BatchNorm1d(4, affine=False), nn.BatchNorm1d(4, track_running_stats=False),
                 nn.LayerNorm(4, elementwise_affine=False)):
        with pytest.raises(ValueError, match=r"have a gain and a shift \(affine\) and "
                                             r"BatchNorm1d keeps running statistics"):
            interop.from_torch(_seq(lin(), norm, nn.ReLU(), lin()))
    with pytest.raises(ValueError, match=r"use eps=1e-05, momentum=0.1 \(PyTorch's defaults\); "
                                         r"the Sequential has BatchNorm1d\(4, eps=0.001"):
        interop.from_torch(_seq(lin(), nn.BatchNorm1d(4, eps=1e-3), nn.ReLU(), lin()))
    with pytest.raises(ValueError, match=r"use eps=1e-05 \(PyTorch's defaults\)"):
        interop.from_torch(_seq(lin(), nn.LayerNorm(4, eps=1e-3), nn.ReLU(), lin()))
    with pytest.raises(ValueError, match=r"mixes \['BatchNorm1d', 'LayerNorm'\]"):
        interop.from_torch(_seq(lin(), nn.BatchNorm1d(4), nn.ReLU(), lin(), nn.LayerNorm(4),
                                nn.ReLU(), lin()))


def test_from_torch_reads_half_precision_exactly():
    seq = _seq(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).bfloat16()
    net = interop.from_torch(seq)            # was torch's "Got unsupported ScalarType BFloat16"
    assert net.dtype == np.float32
    np.testing.assert_array_equal(net.weights[0][0], seq[0].weight.float().detach().numpy())


def test_interop_torch_arguments_are_named():
    with pytest.raises(TypeError, match=r"^The 'net' parameter of fastinit.interop.to_torch "
                                        r"must be a fastinit.MLP. Got str.$"):
        interop.to_torch("net")
    with pytest.raises(ValueError, match=r"^fastinit.interop.init_torch: the module's LazyLinear "
                                         r"layers have no shape yet: run one batch through it"):
        interop.init_torch(torch.nn.LazyLinear(3))
    model = _seq(torch.nn.Linear(3, 3))
    with pytest.raises(TypeError, match=r"^The 'x' parameter of fastinit.interop.lsuv_torch "
                                        r"must be a torch.Tensor \(a batch for the module\). "
                                        r"Got ndarray.$"):
        interop.lsuv_torch(model, np.ones((4, 3)))
    with pytest.raises(TypeError, match=r"^The 'module' parameter of fastinit.interop.lsuv_torch"):
        interop.lsuv_torch("model", torch.ones(4, 3))


def test_from_torch_refuses_a_layer_norm_without_a_shift():
    """LayerNorm(bias=False) raised "'NoneType' object has no attribute 'detach'"."""
    torch = pytest.importorskip("torch")
    nn = torch.nn
    seq = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4, bias=False), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match=r"norm layers have a gain and a shift"):
        interop.from_torch(seq)


def test_init_torch_and_lsuv_set_parametrized_weights():
    # weight_norm holds a weight as originals (g, v): init_torch copied its draw into a tensor
    # computed from them and lost it (the weight stayed PyTorch's, silently, with a warning
    # that the originals were left); lsuv_torch's rescaling was lost the same way.
    nn = torch.nn
    plain = nn.Sequential(nn.Linear(40, 30), nn.Tanh(), nn.Linear(30, 5))
    normed = nn.Sequential(nn.Linear(40, 30), nn.Tanh(), nn.Linear(30, 5))
    for l in (0, 2):
        nn.utils.parametrizations.weight_norm(normed[l])
    interop.init_torch(plain, "he_normal", seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                  # nothing is left as it was
        interop.init_torch(normed, "he_normal", seed=4)
    for l in (0, 2):
        np.testing.assert_allclose(normed[l].weight.detach().numpy(),
                                   plain[l].weight.detach().numpy(), rtol=1e-5, atol=1e-6)
    variances = interop.lsuv_torch(normed, torch.randn(64, 40, generator=torch.manual_seed(0)),
                                   tol=0.05)
    assert all(abs(v - 1) < 0.05 for v in variances)
    spectral = nn.Sequential(nn.Linear(40, 30), nn.Tanh(), nn.Linear(30, 5))
    for l in (0, 2):                    # its scale is fixed: LSUV returned 0.42, silently
        nn.utils.parametrizations.spectral_norm(spectral[l])
    with pytest.raises(ValueError, match=r"lsuv_torch: ParametrizedLinear.weight's "
                       r"parametrization undoes LSUV's rescaling \(spectral_norm"):
        interop.lsuv_torch(spectral, torch.randn(64, 40, generator=torch.manual_seed(0)),
                           tol=0.05)


def test_init_torch_refuses_a_meta_module_and_counts_a_tied_weight_as_drawn():
    nn = torch.nn
    with torch.device("meta"):                           # copy_ into it did nothing, silently
        meta = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match=r"^fastinit.interop.init_torch: the module's weights "
                                         r"are on the meta device .*to_empty\(device='cpu'\)"):
        interop.init_torch(meta)
    # an output layer tied to the embedding: drawn through the Linear, not "left as it was"
    emb, head = nn.Embedding(50, 8), nn.Linear(8, 50, bias=False)
    head.weight = emb.weight
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        interop.init_torch(nn.ModuleDict({"emb": emb, "head": head}), "xavier_normal", seed=1)
    alone = interop.init_torch(nn.Linear(8, 50, bias=False), "xavier_normal", seed=1)
    assert torch.equal(emb.weight, alone.weight)


def test_init_torch_draws_a_tied_weight_once_from_its_first_layer():
    """Two Linear layers sharing one weight tensor: it was drawn for each, so it held the
    second layer's draw. Now the first layer that owns it draws it; every layer keeps its
    place in the stream order (the third layer draws what layer 2 of an MLP draws), each own
    bias is drawn, and nothing is reported as left."""
    nn = torch.nn
    model = nn.Sequential(nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 6), nn.ReLU(),
                          nn.Linear(6, 3))
    model[2].weight = model[0].weight
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        interop.init_torch(model, "he_normal", seed=5)
    net = fastinit.MLP([6, 6, 6, 3], init="he_normal", seed=5)
    assert model[2].weight is model[0].weight
    np.testing.assert_array_equal(model[0].weight.detach().numpy(), net.weights[0][0])
    for layer, l in ((model[0], 0), (model[2], 1), (model[4], 2)):
        np.testing.assert_array_equal(layer.bias.detach().numpy(), net.biases[l][0])
    np.testing.assert_array_equal(model[4].weight.detach().numpy(), net.weights[2][0])


def test_lsuv_torch_rescales_a_layer_called_twice_by_its_first_call():
    """A Sequential holding one Linear twice (a layer applied twice in a forward pass): LSUV
    measured only its last call's output, so the variance returned and the scale were the
    second call's, the first call's left off unit variance without a word. Now the first
    call's output sets the scale and is returned, and a warning gives the later call's."""
    nn = torch.nn
    twice = nn.Linear(16, 16)
    model = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), twice, nn.ReLU(), twice, nn.ReLU(),
                          nn.Linear(16, 4)).double()
    x = torch.randn(256, 16, generator=torch.manual_seed(0), dtype=torch.float64)
    with pytest.warns(UserWarning, match=r"^fastinit.interop.lsuv_torch: Linear '2' runs 2 "
                      r"times in one forward pass; LSUV rescaled it by its first call's output "
                      r"\(variance [\d.]+\): the later calls' output variances are [\d.]+, not "
                      r"all within 1 ± 0\.05\.$"):
        variances = interop.lsuv_torch(model, x, tol=0.05, seed=3)
    calls = []
    twice.register_forward_hook(lambda m, a, o: calls.append(float(o.var(unbiased=False))))
    with torch.no_grad():
        model(x)
    assert len(variances) == 3 and variances[1] == pytest.approx(calls[0], rel=1e-9)
    assert abs(calls[0] - 1) < 0.05 and abs(calls[1] - 1) >= 0.05


def test_lsuv_torch_rescales_a_tied_weight_at_its_first_layer_only():
    """Two Linear layers sharing one weight tensor: LSUV rescaled it at each, so the second
    layer's rescale undid the first layer's unit variance and the variance returned for it was
    stale (here the two alternate, 2.04 and 0.49, and the third rescale leaves layer 0 at 2.03
    while 0.99 was returned for it). Now the first layer holding it rescales it, the later one
    is measured and named in a warning when one scale cannot serve both, and the layers after
    the tie are rescaled."""
    nn = torch.nn
    model = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                          nn.Linear(16, 4)).double()
    model[2].weight = model[0].weight
    measured = _rescaled_by_the_first(model, "Linear")
    assert model[2].weight is model[0].weight
    assert abs(measured[1] - 1) >= 0.05
    x = torch.randn(256, 16, generator=torch.manual_seed(0), dtype=torch.float64)
    untied = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 16)).double()
    with warnings.catch_warnings():
        warnings.simplefilter("error")                           # no tie, no warning
        interop.lsuv_torch(untied, x, tol=0.05)


def _rescaled_by_the_first(model, kind: str) -> list:
    """lsuv_torch on a model whose layers 0 and 2 (of ``kind``) share a weight, then 4: the
    warning naming the tie, what it returns as measured after, layers 0 and 4 at unit variance
    (within tol 0.05); the output variances of 0, 2 and 4."""
    x = torch.randn(256, 16, generator=torch.manual_seed(0), dtype=torch.float64)
    with pytest.warns(UserWarning, match=rf"^fastinit.interop.lsuv_torch: {kind} '2' shares its "
                      rf"weight with {kind} '0', where LSUV rescaled it \(LSUV gives each layer "
                      r"its own weight; one scale cannot give both unit variance\): its output "
                      r"variance is [\d.]+, not within 1 ± 0\.05\.$"):
        variances = interop.lsuv_torch(model, x, tol=0.05, max_iter=3, seed=3)
    measured = [v for v, in _output_variances(model, x, [model[0], model[2], model[4]])]
    np.testing.assert_allclose(variances, measured, rtol=1e-9)     # what it returns holds
    assert abs(measured[0] - 1) < 0.05 and abs(measured[2] - 1) < 0.05
    return measured


def _output_variances(model, x, layers):
    """Each layer's output variance (of each call) in one pass of x, taken as the layer returns."""
    calls, hooks = {}, []
    for i, layer in enumerate(layers):
        hooks.append(layer.register_forward_hook(lambda m, a, o, i=i: calls.setdefault(
            i, []).append(float(o.double().var(unbiased=False)))))
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return [calls.get(i) for i in range(len(layers))]


class _TiedLM(torch.nn.Module):
    """A language model's usual output tying: head.weight = emb.weight."""

    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.emb = nn.Embedding(50, 16)
        self.body = nn.Sequential(nn.Linear(16, 16), nn.Tanh())
        self.head = nn.Linear(16, 50, bias=False)
        self.head.weight = self.emb.weight

    def forward(self, tokens):
        return self.head(self.body(self.emb(tokens)))


def test_lsuv_torch_leaves_a_weight_tied_to_an_embedding_as_drawn():
    """A Linear whose weight is an Embedding's (head.weight = emb.weight): LSUV rescaled it,
    which rescaled the embedding too, without a word, so the input of every layer after the
    embedding changed and the variances returned for them were stale. Now the Linear is
    measured as it stands, like a layer sharing a drawn layer's weight, and a warning names
    both modules."""
    model = _TiedLM().double()
    x = torch.randint(0, 50, (256,), generator=torch.manual_seed(0))
    drawn = interop.init_torch(_TiedLM().double(), "orthogonal", "zeros", seed=3).emb.weight
    with pytest.warns(UserWarning, match=r"^fastinit.interop.lsuv_torch: Linear 'head' shares "
                      r"its weight with Embedding 'emb', which LSUV does not rescale \(rescaling "
                      r"it here would change the Embedding's output too\): its output variance "
                      r"is [\d.]+, not within 1 ± 0\.05\.$"):
        variances = interop.lsuv_torch(model, x, tol=0.05, seed=3)
    assert model.head.weight is model.emb.weight
    assert torch.equal(model.emb.weight, drawn)
    outputs = {}
    for name in ("body", "head"):
        layer = model.body[0] if name == "body" else model.head
        layer.register_forward_hook(lambda m, a, o, name=name: outputs.__setitem__(name, o))
    with torch.no_grad():
        model(x)
    measured = [float(outputs[n].var(unbiased=False)) for n in ("body", "head")]
    np.testing.assert_allclose(variances, measured, rtol=1e-9)     # what it returns holds
    assert abs(measured[0] - 1) < 0.05 and abs(measured[1] - 1) >= 0.05


class _Halved(torch.nn.Module):
    """A parametrization storing a weight as half of it (the original is w / 2)."""

    def forward(self, original):
        return 2 * original

    def right_inverse(self, weight):
        return weight / 2


def _tied_parametrized(sizes):
    """Linear layers with ReLU between, layers 0 and 1 parametrized over one shared Parameter
    (tied, then each given its own parametrization)."""
    nn = torch.nn
    mods = [m for a, b in zip(sizes, sizes[1:]) for m in (nn.Linear(a, b), nn.ReLU())][:-1]
    model = nn.Sequential(*mods)
    model[2].weight = model[0].weight
    for i in (0, 2):
        nn.utils.parametrize.register_parametrization(model[i], "weight", _Halved())
    assert model[0].parametrizations.weight.original is model[2].parametrizations.weight.original
    return model


def test_init_torch_draws_a_tensor_two_parametrizations_share_once():
    """Two layers parametrized over one shared Parameter hold one tensor, but tie detection
    compared their parametrizations, so it was drawn for each and held the second layer's
    draw. Now it is drawn once, by the first layer, as a plain tied weight is."""
    model = _tied_parametrized([6, 6, 6, 3])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        interop.init_torch(model, "he_normal", seed=5)
    net = fastinit.MLP([6, 6, 6, 3], init="he_normal", seed=5)
    for i, l in ((0, 0), (2, 0), (4, 2)):
        np.testing.assert_array_equal(model[i].weight.detach().numpy(), net.weights[l][0])
    for i, l in ((0, 0), (2, 1), (4, 2)):
        np.testing.assert_array_equal(model[i].bias.detach().numpy(), net.biases[l][0])


def test_lsuv_torch_rescales_a_tensor_two_parametrizations_share_once():
    """lsuv_torch rescaled a tensor two parametrizations share at each layer, as it once did a
    plain tied weight: the second rescale undid the first layer's unit variance, and what it
    returned for that layer was stale. Now the first layer rescales it and the second is
    measured and named in the plain tie's warning."""
    model = _tied_parametrized([16, 16, 16, 4]).double()
    _rescaled_by_the_first(model, "ParametrizedLinear")


def test_lsuv_torch_sees_a_parametrization_over_an_embedding_weight():
    """The output layer parametrized over the embedding's weight shares it as a plain tie does:
    it was rescaled through its parametrization, rescaling the embedding without a word."""
    model, reference = _TiedLM().double(), _TiedLM().double()
    for m in (model, reference):
        torch.nn.utils.parametrize.register_parametrization(m.head, "weight", _Halved())
    x = torch.randint(0, 50, (256,), generator=torch.manual_seed(0))
    with pytest.warns(UserWarning, match=r"^fastinit.interop.lsuv_torch: ParametrizedLinear "
                      r"'head' shares its weight with Embedding 'emb', which LSUV does not "
                      r"rescale"):
        interop.lsuv_torch(model, x, tol=0.05, seed=3)
    interop.init_torch(reference, "orthogonal", "zeros", seed=3)
    assert torch.equal(model.emb.weight, reference.emb.weight)      # as drawn, not rescaled


@pytest.mark.parametrize("act, name, param", [
    (lambda: torch.nn.ReLU(), "relu", None), (lambda: torch.nn.Tanh(), "tanh", None),
    (lambda: torch.nn.LeakyReLU(0.2), "leaky_relu", 0.2),
    (lambda: torch.nn.ELU(0.5), "elu", 0.5), (lambda: torch.nn.SELU(), "selu", None)])
def test_init_torch_draws_edge_of_chaos_for_the_modules_activation(act, name, param):
    """edge_of_chaos draws at the critical point of an activation; init_torch drew tanh's
    (1.761 / fan_in at sigma_b2 = 0.05) whatever the module ran, so a ReLU network got 12 %
    less than relu's 2 / fan_in without a word. It now draws for the activation the module
    holds, as fastinit.MLP draws for its own: the same weights and biases, bit for bit."""
    nn = torch.nn
    model = nn.Sequential(nn.Linear(10, 20), act(), nn.Linear(20, 20), act(), nn.Linear(20, 5),
                          nn.LogSoftmax(dim=1))            # a classifier's output: no activation
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        interop.init_torch(model, "edge_of_chaos", seed=7)
    net = fastinit.MLP([10, 20, 20, 5], activation=name, activation_param=param,
                       init="edge_of_chaos", seed=7)
    for i, l in ((0, 0), (2, 1), (4, 2)):
        np.testing.assert_array_equal(model[i].weight.detach().numpy(), net.weights[l][0])
        np.testing.assert_array_equal(model[i].bias.detach().numpy(), net.biases[l][0])


def test_init_torch_refuses_edge_of_chaos_without_one_activation_to_draw_for():
    """A module holding no activation module (a forward calling torch.relu), several, or one
    fastinit has no formula for: edge_of_chaos drew tanh's point for it. Now it asks for the
    activation; given, it is drawn for (with the module's parameter when it is the module's)."""
    nn = torch.nn
    where = r"^fastinit.interop.init_torch: scheme 'edge_of_chaos' draws for an activation, and "
    ask = (r" Pass the one to draw for, e.g. activation='relu' \(with activation_param= for "
           r"leaky_relu, elu or softplus\)\.$")
    linear = nn.Sequential(nn.Linear(6, 6), nn.Linear(6, 3))
    with pytest.raises(ValueError, match=where + r"the module holds no "
                       r"activation module to take it from \(a forward may call one as a "
                       r"function\)\." + ask):
        interop.init_torch(linear, "edge_of_chaos")
    mixed = nn.Sequential(nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 6), nn.LeakyReLU(0.2),
                          nn.Linear(6, 3))
    with pytest.raises(ValueError, match=where + r"the module holds several: "
                       r"\['leaky_relu\(0.2\)', 'relu'\] \(after the last layer of a plain "
                       r"nn.Sequential one is not counted: pass that Sequential if the module "
                       r"wraps one\)\." + ask):
        interop.init_torch(mixed, fastinit.spec("edge_of_chaos", sigma_b2=0.1))
    clipped = nn.Sequential(nn.Linear(6, 6), nn.ReLU6(), nn.Linear(6, 3))
    with pytest.raises(ValueError, match=where + r"fastinit has no "
                       r"activation for the module's ReLU6\." + ask):
        interop.init_torch(clipped, "edge_of_chaos")
    interop.init_torch(linear, "edge_of_chaos", seed=2, activation="relu")
    net = fastinit.MLP([6, 6, 3], activation="relu", init="edge_of_chaos", seed=2)
    np.testing.assert_array_equal(linear[1].weight.detach().numpy(), net.weights[1][0])
    leaky = nn.Sequential(nn.Linear(6, 6), nn.LeakyReLU(0.2), nn.Linear(6, 3))
    interop.init_torch(leaky, "edge_of_chaos", seed=2, activation="leaky_relu")
    net = fastinit.MLP([6, 6, 3], activation="leaky_relu", activation_param=0.2,
                       init="edge_of_chaos", seed=2)
    np.testing.assert_array_equal(leaky[0].weight.detach().numpy(), net.weights[0][0])
    interop.init_torch(leaky, "edge_of_chaos", seed=2, activation="tanh")     # kept, on purpose
    net = fastinit.MLP([6, 6, 3], activation="tanh", init="edge_of_chaos", seed=2)
    np.testing.assert_array_equal(leaky[0].weight.detach().numpy(), net.weights[0][0])


def test_init_torch_keeps_an_activation_given_without_looking_at_the_modules_parameter():
    """activation='tanh' on a module running LeakyReLU(-0.1) (or 'relu' on ELU(0.0)) drew
    tanh's (relu's) point before init_torch took activations from modules; then it refused
    the module's parameter, blaming an activation_param the user never passed. An activation
    given that is not the module's is kept, its parameter unread; where the module's parameter
    is used (the module's activation drawn for) and fastinit refuses it, the message says it
    is the module's and how to draw for another."""
    nn = torch.nn
    for act, given in ((nn.LeakyReLU(-0.1), "tanh"), (nn.ELU(0.0), "relu")):
        model = nn.Sequential(nn.Linear(10, 20), act, nn.Linear(20, 5))
        interop.init_torch(model, "edge_of_chaos", seed=5, activation=given)
        net = fastinit.MLP([10, 20, 5], activation=given, init="edge_of_chaos", seed=5)
        np.testing.assert_array_equal(model[2].weight.detach().numpy(), net.weights[1][0])
    leaky = nn.Sequential(nn.Linear(10, 20), nn.LeakyReLU(-0.1), nn.Linear(20, 5))
    for given in ({}, {"activation": "leaky_relu"}):
        with pytest.raises(ValueError, match=r"^fastinit.interop.init_torch: the module's "
                           r"LeakyReLU has negative_slope -0.1; fastinit's leaky_relu needs a "
                           r"finite negative slope >= 0\. Pass the activation to draw for: "
                           r"activation='leaky_relu' with an activation_param= it takes, or "
                           r"another activation=\.$"):
            interop.init_torch(leaky, "edge_of_chaos", **given)
    with pytest.raises(ValueError, match=r"^fastinit.interop.init_torch: the module's ELU has "
                       r"alpha 0.0; fastinit's elu needs a finite alpha > 0\. "):
        interop.init_torch(nn.Sequential(nn.Linear(4, 4), nn.ELU(0.0), nn.Linear(4, 2)),
                           "edge_of_chaos")
    interop.init_torch(leaky, "edge_of_chaos", seed=5, activation="leaky_relu",
                       activation_param=0.1)                  # given: the module's is unread
    net = fastinit.MLP([10, 20, 5], activation="leaky_relu", activation_param=0.1,
                       init="edge_of_chaos", seed=5)
    np.testing.assert_array_equal(leaky[0].weight.detach().numpy(), net.weights[0][0])


def _same_draws(model, indices, net):
    for l, i in enumerate(indices):
        np.testing.assert_array_equal(model[i].weight.detach().numpy(), net.weights[l][0])
        np.testing.assert_array_equal(model[i].bias.detach().numpy(), net.biases[l][0])


def test_init_torch_takes_the_parameter_of_the_activation_given_from_the_module():
    """A module mixing activations, with activation='leaky_relu' given: the module's slope
    (0.2) was dropped and slope 0.01's point drawn without a word. Now the parameter of the
    module's activation modules of that kind is taken (several differing: refused, asking for
    activation_param=, which always wins)."""
    nn = torch.nn
    mixed = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 20), nn.LeakyReLU(0.2),
                          nn.Linear(20, 5))
    interop.init_torch(mixed, "edge_of_chaos", seed=4, activation="leaky_relu")
    _same_draws(mixed, (0, 2, 4), fastinit.MLP([10, 20, 20, 5], "leaky_relu", seed=4,
                                               activation_param=0.2, init="edge_of_chaos"))
    slopes = nn.Sequential(nn.Linear(10, 20), nn.LeakyReLU(0.1), nn.Linear(20, 20),
                           nn.LeakyReLU(0.3), nn.Linear(20, 5))
    with pytest.raises(ValueError, match=r"^fastinit.interop.init_torch: activation="
                       r"'leaky_relu' was given, and the module's LeakyReLU modules have "
                       r"several negative_slope: \[0.1, 0.3\]\. Pass the one to draw for as "
                       r"activation_param=\.$"):
        interop.init_torch(slopes, "edge_of_chaos", activation="leaky_relu")
    interop.init_torch(slopes, "edge_of_chaos", seed=4, activation="leaky_relu",
                       activation_param=0.3)
    _same_draws(slopes, (0, 2, 4), fastinit.MLP([10, 20, 20, 5], "leaky_relu", seed=4,
                                                activation_param=0.3, init="edge_of_chaos"))


def test_init_torch_does_not_draw_for_an_output_activation_of_a_sequential():
    """A DCGAN discriminator, Sequential(Linear, LeakyReLU(0.2), Linear, Sigmoid()): the
    Sigmoid on its output feeds no layer, yet edge_of_chaos was refused (several activations)
    and activation='leaky_relu' drew slope 0.01's point. In a plain nn.Sequential (nested
    plain ones opened), whose order is its modules', an activation module running only after
    the last layer is not drawn for: this one draws as fastinit.MLP([10, 20, 1], 'leaky_relu',
    activation_param=0.2). Another module's order is its forward's: all its activations count."""
    nn = torch.nn
    net = fastinit.MLP([10, 20, 1], "leaky_relu", activation_param=0.2, init="edge_of_chaos",
                       seed=4)
    for given in ({}, {"activation": "leaky_relu"}):
        disc = nn.Sequential(nn.Linear(10, 20), nn.LeakyReLU(0.2), nn.Linear(20, 1),
                             nn.Sigmoid())
        interop.init_torch(disc, "edge_of_chaos", seed=4, **given)
        _same_draws(disc, (0, 2), net)
    nested = nn.Sequential(nn.Sequential(nn.Linear(10, 20), nn.LeakyReLU(0.2)),
                           nn.Sequential(nn.Linear(20, 1), nn.Dropout(0.1), nn.Tanh()))
    interop.init_torch(nested, "edge_of_chaos", seed=4)
    _same_draws(nn.Sequential(nested[0][0], nested[1][0]), (0, 1), net)
    shared = nn.Tanh()                     # one module, between the layers and after them
    interop.init_torch(nn.Sequential(nn.Linear(6, 6), shared, nn.Linear(6, 3), shared),
                       "edge_of_chaos", seed=4)   # tanh: no refusal
    where = r"^fastinit.interop.init_torch: scheme 'edge_of_chaos' draws for an activation, and "

    class Block(nn.Module):                # its forward, not its modules, orders them
        def __init__(self):
            super().__init__()
            self.lin, self.act = nn.Linear(20, 1), nn.Sigmoid()

        def forward(self, x):
            return self.act(self.lin(x))
    for opaque in (nn.Sequential(nn.Linear(10, 20), nn.LeakyReLU(0.2), Block()),
                   type("Disc", (nn.Sequential,), {})(nn.Linear(10, 20), nn.LeakyReLU(0.2),
                                                      nn.Linear(20, 1), nn.Sigmoid())):
        with pytest.raises(ValueError, match=where + r"the module holds several: "
                           r"\['leaky_relu\(0.2\)', 'sigmoid'\] \(after the last layer of "
                           r"a plain nn.Sequential one is not counted: pass that Sequential if "
                           r"the module wraps one\)\. Pass"):
            interop.init_torch(opaque, "edge_of_chaos")
    with pytest.raises(ValueError, match=where + r"the module runs no activation module "
                       r"between its layers to take it from \(its Sigmoid runs after the last "
                       r"layer, on the output\)\. Pass"):
        interop.init_torch(nn.Sequential(nn.Linear(6, 6), nn.Linear(6, 1), nn.Sigmoid()),
                           "edge_of_chaos")


@pytest.mark.parametrize("act, name", [(lambda: torch.nn.GELU(), "gelu"),
                                       (lambda: torch.nn.SiLU(), "silu"),
                                       (lambda: torch.nn.Mish(), "mish")])
def test_init_torch_says_an_activation_without_an_edge_of_chaos_was_the_modules(act, name):
    """GELU, SiLU and Mish have no edge of chaos (fastinit.MLP refuses them alike): init_torch
    refused with fastinit.theory's message alone, not saying it took the activation from the
    module nor that activation= draws for another."""
    nn = torch.nn
    model = nn.Sequential(nn.Linear(10, 20), act(), nn.Linear(20, 5))
    cls = type(act()).__name__
    with pytest.raises(ValueError, match=rf"^fastinit.interop.init_torch took activation "
                       rf"'{name}' from the module's {cls}; fastinit.theory.critical_sigma_w2: "
                       rf".*\(activation '{name}', sigma_b\^2 0.05\).* this activation has no "
                       rf"edge of chaos\. Pass activation= to draw for another \(the one "
                       rf"closest to the module's\), e\.g\. activation='relu'\.$"):
        interop.init_torch(model, "edge_of_chaos")
    with pytest.raises(ValueError, match=r"^fastinit.theory.critical_sigma_w2: "):
        interop.init_torch(model, "edge_of_chaos", activation=name)   # given: as fastinit.MLP


def test_lsuv_torch_measures_a_layer_before_an_in_place_activation_changes_its_output():
    """Sequential(Linear, ReLU(inplace=True), ...), as DCGAN writes it: LSUV read each layer's
    output after the forward pass, when the in-place ReLU had overwritten it, so it gave the
    ReLU's output unit variance (the Linear layers' were 2.96 and 2.29, 1.0 returned for both).
    Now each output is measured as the layer returns it."""
    nn = torch.nn
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(inplace=True), nn.Linear(32, 32),
                          nn.ReLU(inplace=True), nn.Linear(32, 4)).double()
    x = torch.randn(256, 16, generator=torch.manual_seed(0), dtype=torch.float64)
    variances = interop.lsuv_torch(model, x, tol=0.05, seed=3)
    measured = [v for v, in _output_variances(model, x, [model[0], model[2], model[4]])]
    np.testing.assert_allclose(variances, measured, rtol=1e-9)     # what it returns holds
    assert all(abs(v - 1) < 0.05 for v in measured)


class _HeadFirstLM(torch.nn.Module):
    """_TiedLM with its output layer declared first: module order is not forward order."""

    def __init__(self, tied=True):
        super().__init__()
        nn = torch.nn
        self.head = nn.Linear(16, 50, bias=False)
        self.emb = nn.Embedding(50, 16)
        self.body = nn.Sequential(nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh())
        if tied:
            self.head.weight = self.emb.weight

    def forward(self, tokens):
        return self.head(self.body(self.emb(tokens)))


def test_lsuv_torch_rescales_layers_in_the_order_the_forward_pass_runs_them():
    """LSUV (Mishkin & Matas 2016) goes from the input to the output; lsuv_torch went in
    module order. With the output layer declared first, it was rescaled (or, tied to the
    embedding, measured) before the layers feeding it, which then changed its input: untied,
    its output variance ended at 1.62 with 1.0 returned; tied, 0.128 with 0.006 returned and
    quoted in the warning. Now layers go in the order the forward pass first runs them; the
    variances are returned in module order (layer i as init_torch counts them)."""
    x = torch.randint(0, 50, (256,), generator=torch.manual_seed(0))
    model = _HeadFirstLM(tied=False).double()
    layers = [model.head, model.body[0], model.body[2]]
    with pytest.warns(UserWarning, match=r"init_torch left these weights as they were .*: "
                      r"Embedding\.weight\.$"):                # the embedding's, not tied
        variances = interop.lsuv_torch(model, x, tol=0.05, seed=3)
    measured = [v for v, in _output_variances(model, x, layers)]
    np.testing.assert_allclose(variances, measured, rtol=1e-9)
    assert all(abs(v - 1) < 0.05 for v in measured)
    model = _HeadFirstLM().double()
    layers = [model.head, model.body[0], model.body[2]]
    with pytest.warns(UserWarning, match=r"^fastinit.interop.lsuv_torch: Linear 'head' shares "
                      r"its weight with Embedding 'emb'.*: its output variance is ([\d.]+), "
                      r"not within 1 ± 0\.05\.$") as record:
        variances = interop.lsuv_torch(model, x, tol=0.05, seed=3)
    measured = [v for v, in _output_variances(model, x, layers)]
    np.testing.assert_allclose(variances, measured, rtol=1e-9)
    assert abs(measured[1] - 1) < 0.05 and abs(measured[2] - 1) < 0.05
    quoted = re.search(r"variance is ([\d.]+),", str(record[0].message)).group(1)
    assert quoted == f"{measured[0]:.3g}"


def test_lsuv_torch_refuses_a_layer_the_forward_pass_does_not_run():
    """A layer x never reaches (an auxiliary head the forward pass skips) has no output to
    rescale it by: lsuv_torch raised an IndexError ("list index out of range")."""

    class Aux(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body, self.aux = torch.nn.Linear(4, 4), torch.nn.Linear(4, 2)

        def forward(self, x):
            return self.body(x)
    with pytest.raises(ValueError, match=r"^fastinit.interop.lsuv_torch: Linear 'aux' does not "
                       r"run when the module runs x, so LSUV has no output to rescale it by\. "
                       r"Run LSUV on a module whose forward pass runs every layer it holds\.$"):
        interop.lsuv_torch(Aux(), torch.randn(32, 4, generator=torch.manual_seed(0)))


def test_lsuv_torch_gives_a_repeated_layers_later_calls_as_they_end():
    """A layer run again after another layer (B, M, B: a block applied twice around M): the
    later call's output variance was read when B was rescaled, before M was; the warning
    quoted that (0.632) while the call ended at 1.035, within tol. Now the later calls are
    measured after every layer is rescaled."""
    nn = torch.nn
    x = torch.randn(256, 16, generator=torch.manual_seed(0), dtype=torch.float64)
    warned = []
    for tol in (0.05, 0.01):
        torch.manual_seed(0)
        twice, between = nn.Linear(16, 16), nn.Linear(16, 16)
        model = nn.Sequential(nn.Linear(16, 16), nn.Tanh(), twice, nn.Tanh(), between,
                              nn.Tanh(), twice, nn.Tanh(), nn.Linear(16, 4)).double()
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            variances = interop.lsuv_torch(model, x, tol=tol, seed=3)
        calls, = _output_variances(model, x, [twice])
        assert variances[1] == pytest.approx(calls[0], rel=1e-9)
        assert len(record) == (abs(calls[1] - 1) >= tol)
        for r in record:
            assert str(r.message).endswith(f"the later calls' output variances are "
                                           f"{calls[1]:.3g}, not all within 1 ± {tol:g}.")
        warned.append(len(record))
    assert warned == [0, 1]


def test_lsuv_torch_refuses_a_layer_a_later_pass_skips_by_name():
    """A forward pass that skips layers at random (LayerDrop in train mode) ran every layer on
    lsuv_torch's first pass and skipped one on a later one: a bare KeyError (an id). Now the
    same refusal as for a layer never run, naming it and saying the passes differ."""
    nn = torch.nn

    class LayerDrop(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([nn.Linear(8, 8) for _ in range(3)])
            self.passes = 0

        def forward(self, x):
            self.passes += 1
            for i, block in enumerate(self.blocks):
                if not (self.passes == 3 and i == 1):        # the third pass skips block 1
                    x = x + torch.tanh(block(x))
            return x
    with pytest.raises(ValueError, match=r"^fastinit.interop.lsuv_torch: Linear 'blocks.1' "
                       r"does not run when the module runs x on every pass \(the module's "
                       r"forward pass differs between passes: LayerDrop or another random "
                       r"skip in training mode\? call module.eval\(\) first\), so LSUV has no "
                       r"output to rescale it by\."):
        interop.lsuv_torch(LayerDrop(), torch.randn(32, 8, generator=torch.manual_seed(0)))


def test_init_torch_blames_an_activation_param_given_not_the_activation_taken():
    """activation_param=0.2 on a ReLU module: a relu takes no parameter. The message blamed the
    activation taken from the module and advised activation='relu', which fails alike; the
    mistake is the parameter given, and its message is fastinit.MLP's."""
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    with pytest.raises(ValueError) as raised:
        interop.init_torch(model, "edge_of_chaos", activation_param=0.2)
    assert "activation_param=0.2" in str(raised.value)
    assert "took activation" not in str(raised.value)
