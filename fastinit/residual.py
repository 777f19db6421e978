"""fastinit.ResMLP: residual MLPs, and the inits made for them.

Layout: a stem (d_in -> width, phi), ``blocks`` residual blocks, an output layer (width ->
d_out, linear). Block b maps its input h to

    h + alpha_b * (W2 phi(W1 h + b1) + b2)

with one scalar alpha_b per block and member (a parameter, trained unless the variant fixes
it). Variants (``residual=``):

    plain      every layer from ``init``; alpha = 1, fixed
    skipinit   every layer from ``init``; alpha = 0, trained (De & Smith, NeurIPS 2020)
    rezero     the same parameterisation (Bachlechner et al., 2020: x + alpha F(x), alpha = 0)
    fixup      W1 from ``init`` scaled by blocks^(-1/2) (Fixup's L^(-1/(2m-2)), m = 2 layers per
               branch); W2, the branch biases and the output layer zero; alpha = 1, trained
               (Zhang, Dauphin & Ma, ICLR 2019)
    zero       every layer from ``init``, each branch's last layer zero; alpha = 1, fixed. With
               init left out: the ZerO scheme, relu'(0) = 1 (ZerO: Zhao, Schaefer &
               Anandkumar, TMLR 2022); with another init: the zero-init residual branches of
               Goyal et al. (2017) on that init

``init`` left out (None) is "he_normal", or "ZerO" for ``residual="zero"``.

Training, evaluation, gradients and diagnostics are the MLP's, on the same compiled kernels.
"""
from __future__ import annotations

import numpy as np

from ._validate import check_bool, check_choice, check_int
from .network import MLP

VARIANTS = ("plain", "skipinit", "rezero", "fixup", "zero")
_CLS = "fastinit.ResMLP"


class ResMLP(MLP):
    """Residual MLP population; see the module docstring.

    >>> import fastinit
    >>> net = fastinit.ResMLP(64, 64, 4, 10, residual="fixup", n=2, seed=0)
    >>> net.layer_sizes[:3], net.alphas.shape
    ([64, 64, 64], (2, 4))
    """

    def __init__(self, d_in: int, width: int, blocks: int, d_out: int, activation: str = "relu",
                 init=None, residual: str = "plain", *, bias_init=None, n: int = 1,
                 seed=0, dtype=np.float32, activation_param=None, bias: bool = True,
                 dropout=0.0, norm: str | None = None, train_alpha: bool | None = None):
        d_in = check_int(d_in, "d_in", _CLS, minimum=1)
        width = check_int(width, "width", _CLS, minimum=1)
        blocks = check_int(blocks, "blocks", _CLS, minimum=1)
        d_out = check_int(d_out, "d_out", _CLS, minimum=1)
        check_choice(residual, "residual", _CLS, VARIANTS)
        if train_alpha is None:
            train_alpha = residual in ("skipinit", "rezero", "fixup")
        self.blocks = blocks
        self.residual = residual
        self.train_alpha = check_bool(train_alpha, "train_alpha", _CLS)
        if init is None:             # ZerO's relu'(0) = 1 follows, per member, from the scheme
            init = "ZerO" if residual == "zero" else "he_normal"
        sizes = [d_in] + [width] * (2 * blocks + 1) + [d_out]
        super().__init__(sizes, activation, init, bias_init, n=n, seed=seed, dtype=dtype,
                         activation_param=activation_param, bias=bias, dropout=dropout,
                         norm=norm)

    def _residual(self):
        """Block b's second layer 2 + 2b adds its input (the activation entering layer 1 + 2b)
        back, scaled by the scalar alpha_b stored after the layers."""
        skip, alpha, _, _ = super()._residual()
        for b in range(self.blocks):
            skip[2 + 2 * b] = 1 + 2 * b
            alpha[2 + 2 * b] = b
        return skip, alpha, self.blocks, self.train_alpha

    def _views(self):
        super()._views()
        base = self._size - self.blocks
        self.alphas = self.params[:, base:base + self.blocks]

    def _draw(self):
        super()._draw()
        v = self.residual
        self.alphas[...] = 0.0 if v in ("skipinit", "rezero") else 1.0
        if v == "fixup":
            scale = self.blocks ** -0.5
            for b in range(self.blocks):
                self.weights[1 + 2 * b][...] *= scale
                self.weights[2 + 2 * b][...] = 0.0
            self.weights[-1][...] = 0.0
            for l in [1 + 2 * b for b in range(self.blocks)] + \
                     [2 + 2 * b for b in range(self.blocks)] + [-1]:
                if self.bias:
                    self.biases[l][...] = 0.0
        elif v == "zero":
            for b in range(self.blocks):
                self.weights[2 + 2 * b][...] = 0.0

    @property
    def labels(self) -> list[str]:
        return [f"{lab} residual={self.residual}" for lab in super().labels]

    def __repr__(self):
        return (f"ResMLP({self.layer_sizes[0]}, {self.layer_sizes[1]}, {self.blocks}, "
                f"{self.layer_sizes[-1]}, activation={self.activation!r}, "
                f"residual={self.residual!r}, n={self.n}, dtype={self.dtype.name})")

    FORMAT = "fastinit.ResMLP/1"

    def config(self) -> dict:
        cfg = super().config()
        cfg.update(blocks=self.blocks, residual=self.residual, train_alpha=self.train_alpha)
        return cfg

    def _extra_arrays(self) -> dict:
        return {"alphas": np.ascontiguousarray(self.alphas)}

    def _restore(self, cfg: dict, data) -> None:
        if data is None:
            self.blocks, self.residual = cfg["blocks"], cfg["residual"]
            self.train_alpha = cfg["train_alpha"]
        else:
            self.alphas[...] = data["alphas"]
