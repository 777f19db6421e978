"""PyTorch interop (skipped cleanly without torch)."""
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


def test_lsuv_through_a_module():
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.Tanh(), torch.nn.Linear(64, 64),
                                torch.nn.Tanh(), torch.nn.Linear(64, 10)).double()
    x = torch.from_numpy(fastinit.datasets.digits().x_train[:256])
    variances = interop.lsuv_torch(model, x, tol=0.05)
    assert len(variances) == 3 and all(abs(v - 1) < 0.05 for v in variances)


def test_interop_errors():
    with pytest.raises(TypeError, match="torch.nn.Module"):
        interop.init_torch("model")
    with pytest.raises(ValueError, match="no Linear or Conv layers"):
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
