"""Gains: PyTorch's values exactly; principled gains by quadrature, checked by Monte Carlo."""
import math

import numpy as np
import pytest

import fastinit

TORCH_VALUES = [("linear", None, 1), ("conv2d", None, 1), ("conv_transpose3d", None, 1),
                ("sigmoid", None, 1), ("tanh", None, 5.0 / 3), ("relu", None, math.sqrt(2.0)),
                ("leaky_relu", None, math.sqrt(2.0 / (1 + 0.01 ** 2))),
                ("leaky_relu", 0.2, math.sqrt(2.0 / (1 + 0.2 ** 2))), ("selu", None, 3.0 / 4)]


@pytest.mark.parametrize("name,param,value", TORCH_VALUES)
def test_torch_values_exact(name, param, value):
    assert fastinit.calculate_gain(name, param) == value
    assert fastinit.calculate_gain(name, param, method="torch") == value


@pytest.mark.parametrize("name,param", [(n, p) for n, p, _ in TORCH_VALUES])
def test_against_torch_when_installed(name, param):
    torch = pytest.importorskip("torch")
    assert fastinit.calculate_gain(name, param) == torch.nn.init.calculate_gain(name, param)


# 1/sqrt(E[phi(z)^2]) to 4 decimals (initializers.md)
PRINCIPLED = {"relu": 1.4142, "tanh": 1.5925, "gelu": 1.5335, "silu": 1.6765, "elu": 1.2452,
              "selu": 1.0000, "mish": 1.4868, "softplus": 1.0419, "sigmoid": 1.8462}


@pytest.mark.parametrize("name", sorted(PRINCIPLED))
def test_second_moment_gain_table(name):
    assert round(fastinit.calculate_gain(name, method="second_moment"), 4) == PRINCIPLED[name]


def test_auto_uses_quadrature_for_names_torch_lacks():
    assert fastinit.calculate_gain("gelu") == fastinit.calculate_gain("gelu",
                                                                      method="second_moment")
    assert fastinit.calculate_gain("swish") == fastinit.calculate_gain("silu")


def test_relu_closed_forms():
    assert fastinit.calculate_gain("relu", method="second_moment") == pytest.approx(
        math.sqrt(2), rel=1e-13)
    # Var[relu(z)] = 1/2 - 1/(2 pi)
    assert fastinit.calculate_gain("relu", method="variance") == pytest.approx(
        1 / math.sqrt(0.5 - 1 / (2 * math.pi)), rel=1e-13)
    assert fastinit.calculate_gain("leaky_relu", 0.1, method="second_moment") == \
        pytest.approx(math.sqrt(2 / (1 + 0.01)), rel=1e-13)


@pytest.mark.parametrize("name", ["tanh", "gelu", "gelu_tanh", "silu", "elu", "selu", "mish",
                                  "softplus", "softsign", "sigmoid"])
def test_quadrature_against_monte_carlo(name):
    from fastinit import activations
    phi = activations.resolve(name, func="test")
    z = np.random.default_rng(0).standard_normal(2_000_000)
    mc = np.mean(phi(z) ** 2)
    se = np.std(phi(z) ** 2) / math.sqrt(z.size)
    g = fastinit.calculate_gain(name, method="second_moment")
    assert abs(1 / g ** 2 - mc) < 5 * se


def test_callable_activation():
    g = fastinit.calculate_gain(lambda x: np.maximum(x, 0))
    assert g == pytest.approx(math.sqrt(2), rel=1e-12)
    g = fastinit.calculate_gain(np.sin, method="variance")
    # E[sin(z)] = 0, E[sin(z)^2] = (1 - exp(-2)) / 2
    assert g == pytest.approx(1 / math.sqrt((1 - math.exp(-2)) / 2), rel=1e-12)


@pytest.mark.parametrize("slope", [0, 1, -0.2, 3.0, 0.2])
def test_leaky_relu_slopes_against_torch(slope):
    """torch.nn.init.calculate_gain("leaky_relu", a) = sqrt(2 / (1 + a^2)) for any int or float
    slope, negative or above 1 included (checked against torch 2.13); fastinit's is the same
    float, and the second-moment gain of the leaky_relu activation agrees for slopes >= 0 (the
    activation's E[phi(z)^2] = (1 + a^2) / 2)."""
    torch = pytest.importorskip("torch")
    assert fastinit.calculate_gain("leaky_relu", slope) == \
        torch.nn.init.calculate_gain("leaky_relu", slope)
    if slope >= 0:
        assert fastinit.calculate_gain("leaky_relu", slope, method="second_moment") == \
            pytest.approx(torch.nn.init.calculate_gain("leaky_relu", slope), rel=1e-13)
