"""The activation table: every activation once, with its function, derivative, parameter and code.

Each entry gives phi and phi' as plain float64 NumPy functions of (x, p) (p the activation's
parameter, an array broadcasting against x, or None for its default), the parameter's default
and meaning, and the code of the compiled kernel (``kernels.activations``; None for one that
networks cannot run). Gains and mean-field theory integrate these functions by
quadrature; networks run the kernels, which the tests check against these functions.

Parameters: relu's derivative at 0 (0 by default; ZerO networks need 1; it does not change
relu itself), leaky_relu's negative slope (0.01), elu's alpha (1.0), softplus's beta (1.0).
Constants: SELU (Klambauer et al. 2017) lambda = 1.0507009873554805, alpha = 1.6732632423543772;
GELU "erf" is x * Phi(x), "tanh" is Hendrycks & Gimpel's approximation (PyTorch approximate='tanh').
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ._validate import check_choice, check_real
from .kernels import activations as codes
from .kernels.activations import SELU_ALPHA, SELU_LAMBDA

_erf = np.vectorize(math.erf, otypes=[float])


def _f(x):
    return np.asarray(x, dtype=float)


def _or(p, default):
    return default if p is None else p


def _sigmoid(x, p=None):
    return 0.5 * (1.0 + np.tanh(0.5 * _f(x)))


def _softplus(x, p):
    beta = _or(p, 1.0)
    return np.logaddexp(0.0, beta * _f(x)) / beta


def _gelu_d(x, p):
    x = _f(x)
    return 0.5 * (1.0 + _erf(x / math.sqrt(2.0))) + x * np.exp(-0.5 * x * x) / math.sqrt(
        2 * math.pi)


def _gelu_tanh(x, p):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def _gelu_tanh_d(x, p):
    c = math.sqrt(2.0 / math.pi)
    t = np.tanh(c * (x + 0.044715 * x ** 3))
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x)


def _mish_d(x, p):
    t = np.tanh(_softplus(x, None))
    return t + x * (1 - t * t) * _sigmoid(x)


@dataclass(frozen=True)
class Activation:
    """One activation: phi(x, p), phi'(x, p), its parameter and its kernel code."""
    name: str
    fn: Callable
    derivative: Callable
    default: float | None = None      # the parameter's default; None: no parameter
    param_doc: str = ""
    code: int | None = None           # kernels.activations code; None: not in networks
    param_shapes_phi: bool = True     # False: the parameter only touches phi' (relu at 0)


TABLE: dict[str, Activation] = {a.name: a for a in (
    Activation("linear", lambda x, p: _f(x), lambda x, p: np.ones_like(_f(x)), code=codes.LINEAR),
    Activation("relu", lambda x, p: np.maximum(x, 0.0),
               lambda x, p: np.where(x > 0, 1.0, np.where(x == 0, _or(p, 0.0), 0.0)),
               0.0, "derivative at 0 (1 for ZerO)", codes.RELU, param_shapes_phi=False),
    Activation("leaky_relu", lambda x, p: np.where(x >= 0, x, x * _or(p, 0.01)),
               lambda x, p: np.where(x > 0, 1.0, _or(p, 0.01)), 0.01, "negative slope",
               codes.LEAKY_RELU),
    Activation("elu", lambda x, p: np.where(x > 0, x, _or(p, 1.0) * np.expm1(np.minimum(x, 0))),
               lambda x, p: np.where(x > 0, 1.0, _or(p, 1.0) * np.exp(np.minimum(x, 0.0))),
               1.0, "alpha", codes.ELU),
    Activation("selu", lambda x, p: SELU_LAMBDA * np.where(
                   x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0.0))),
               lambda x, p: SELU_LAMBDA * np.where(x > 0, 1.0, SELU_ALPHA * np.exp(
                   np.minimum(x, 0.0))), code=codes.SELU),
    Activation("gelu", lambda x, p: 0.5 * x * (1.0 + _erf(_f(x) / math.sqrt(2.0))), _gelu_d,
               code=codes.GELU),
    Activation("gelu_tanh", _gelu_tanh, _gelu_tanh_d, code=codes.GELU_TANH),
    Activation("silu", lambda x, p: x * _sigmoid(x),
               lambda x, p: _sigmoid(x) * (1 + x * (1 - _sigmoid(x))), code=codes.SILU),
    Activation("tanh", lambda x, p: np.tanh(x), lambda x, p: 1 - np.tanh(x) ** 2,
               code=codes.TANH),
    Activation("sigmoid", _sigmoid, lambda x, p: _sigmoid(x) * (1 - _sigmoid(x)),
               code=codes.SIGMOID),
    Activation("softplus", _softplus, lambda x, p: _sigmoid(_or(p, 1.0) * _f(x)), 1.0, "beta",
               codes.SOFTPLUS),
    Activation("softsign", lambda x, p: x / (1.0 + np.abs(x)),
               lambda x, p: 1 / (1 + np.abs(x)) ** 2, code=codes.SOFTSIGN),
    Activation("mish", lambda x, p: x * np.tanh(_softplus(x, None)), _mish_d, code=codes.MISH),
)}
ALIASES = {"identity": "linear", "swish": "silu"}
# views of the table, by name
ACTIVATIONS: dict[str, Callable] = {n: a.fn for n, a in TABLE.items()}
DERIVATIVES: dict[str, Callable] = {n: a.derivative for n, a in TABLE.items()}
PARAMETERS = {n: f"{a.param_doc} (default {a.default})" for n, a in TABLE.items()
              if a.default is not None and a.param_shapes_phi}
NETWORK = tuple(n for n, a in TABLE.items() if a.code is not None)   # what networks run
PARAM_RULES = {"softplus": "> 0", "elu": "> 0", "leaky_relu": ">= 0"}   # what check_param takes


def network_activation(name, func: str, argname: str = "activation") -> Activation:
    """The table entry of an activation networks can run (aliases resolved), checked."""
    name = ALIASES.get(name, name)
    check_choice(name, argname, func, NETWORK)
    return TABLE[name]


def check_param(act: Activation, value, func: str, argname: str = "activation_param") -> float:
    """An activation's parameter, checked: a finite number; softplus's beta and elu's alpha
    > 0, leaky_relu's slope >= 0. None gives the default (0 for parameter-free ones). The one
    check of networks, edge_of_chaos and the theory functions (``resolve``)."""
    if value is None:
        return 0.0 if act.default is None else act.default
    v = check_real(value, argname, func)
    rule = PARAM_RULES.get(act.name)
    if rule is not None and not (v > 0 if rule == "> 0" else v >= 0):
        raise ValueError(f"The {argname!r} parameter of {func} ({act.name} {act.param_doc}) "
                         f"must be {rule}. Got {v!r} instead.")
    return v


def resolve_derivative(activation, param=None, *, func: str, argname: str = "nonlinearity"):
    """phi' as a float64 NumPy function; for a callable, a central difference with step
    h = 1e-5 min(|x|, 1): relative below 1, so a kink at 0 (relu) stays sharp where the mean
    field takes the slope's limit q -> 0 (at |x| ~ 1e-100 a fixed h averaged both sides)."""
    if callable(activation):
        f = resolve(activation, param, func=func, argname=argname)

        def central(x):
            x = _f(x)
            h = 1e-5 * np.clip(np.abs(x), 1e-290, 1.0)
            return (f(x + h) - f(x - h)) / (2 * h)
        return central
    name = ALIASES.get(activation, activation)
    resolve(activation, param, func=func, argname=argname)   # validates name and parameter
    d = TABLE[name].derivative
    p = None if param is None else float(param)
    return lambda x: np.asarray(d(_f(x), p), dtype=float)


def resolve(activation, param=None, *, func: str,
            argname: str = "nonlinearity") -> Callable[[np.ndarray], np.ndarray]:
    """A float64 NumPy function for an activation name (with its parameter) or a callable."""
    if callable(activation):
        if param is not None:
            raise ValueError(f"The 'param' parameter of {func} applies to named activations "
                             f"only. Got param={param!r} with a callable activation.")
        return lambda x: np.asarray(activation(_f(x)), dtype=float)
    name = ALIASES.get(activation, activation)
    check_choice(name, argname, func, list(TABLE) + list(ALIASES))
    if param is not None:
        if name not in PARAMETERS:
            raise ValueError(f"The 'param' parameter of {func} is not used by the "
                             f"{name!r} activation. Got param={param!r}; only "
                             f"{sorted(PARAMETERS)} take a parameter.")
        param = check_param(TABLE[name], param, func, "param")   # as networks check it
    f = TABLE[name].fn
    return lambda x: f(_f(x), param)


_PANELS = np.linspace(-12.0, 12.0, 97)  # 96 panels of width 0.25; 0 is a panel edge


def gaussian_nodes(panels: np.ndarray, nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes z and weights w with sum(w f(z)) ~ E[f(Z)], Z ~ N(0, 1): Gauss-Legendre with
    ``nodes`` points on each panel between consecutive ``panels`` edges."""
    x, wx = np.polynomial.legendre.leggauss(nodes)
    a, b = panels[:-1, None], panels[1:, None]
    z = (0.5 * (b - a) * x + 0.5 * (a + b)).ravel()
    w = (0.5 * (b - a) * wx).ravel() * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    return z, w


_Z, _W = gaussian_nodes(_PANELS, 24)


def gaussian_expectation(f: Callable[[np.ndarray], np.ndarray], scale: float = 1.0) -> float:
    """E[f(scale * z)], z ~ N(0, 1), by composite Gauss-Legendre on [-12, 12].

    Panel edges fall on 0, so kinks at the origin (relu, leaky_relu, elu) do not spoil the
    quadrature; the mass beyond 12 standard deviations (about 2e-33) is ignored.
    """
    z, w = _Z, _W
    vals = np.asarray(f(scale * z), dtype=float)
    if vals.shape != z.shape:
        raise ValueError("An activation callable must map an array elementwise to an array of "
                         f"the same shape. Got shape {vals.shape} for input shape {z.shape}.")
    return float(np.dot(w, vals))
