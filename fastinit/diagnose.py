"""Why an init works: signal propagation, dead units, symmetry and ranks, per member and layer.

    d = fastinit.diagnose(net, X, y)     # a Diagnostics: arrays (K, L), one row per member

Per layer l (L = net.depth; layer l maps width d_l to d_{l+1}):
    pre_mean, pre_var, pre_sq   mean, variance and mean square of the pre-activations Z_l
    act_mean, act_var           the same for the activations phi(Z_l) (the output layer: Z_L)
    dead_fraction               units whose derivative phi'(z) is 0 on every sample of the
                                batch (a dead ReLU; every unit of a zero-initialised ReLU layer)
    grad_norm                   Frobenius norm of dL/dW_l (when labels are given)
    distinct_units              number of distinct units: rows of [W_l | b_l] equal within
                                ``tol`` count once (1: the layer acts like one unit)
    max_similarity              largest cosine similarity between two units' rows of [W_l | b_l]
    weight_rank, act_rank       effective rank (Roy & Vetterli 2007: exp of the entropy of the
                                normalised singular values) of W_l and of the activations
And jacobian_singular_values(net, x): singular values of d(output)/d(input) at one point
(dynamical isometry: all 1 for a deep linear network with orthogonal weights).

Moments, dead units and symmetry come from compiled kernels (kernels/stats.py); ranks and the
Jacobian from the float64 layer-by-layer pass (layerwise.py); gradients from the training
kernels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import jsonable, kernels, tabular
from ._validate import check_bool, check_choice, check_real, check_x
from .layerwise import jacobian, run_forward
from .memory import check_scratch
from .network import LOSSES, check_net
from .spread import over_members

_F = "fastinit.diagnose"
FIELDS = ("pre_mean", "pre_var", "pre_sq", "act_mean", "act_var", "dead_fraction", "grad_norm",
          "distinct_units", "max_similarity", "weight_rank", "act_rank")


def layer_statistics(net, x) -> dict:
    """pre/act means, variances, mean squares and dead fractions, each (K, L), from one
    compiled pass over the probe batch (the network's own dtype, float64 sums)."""
    xs = check_x(x, net.layer_sizes[0], net.dtype, _F)
    check_scratch(net, [(net.n, len(xs))], _F, "probe batch (fastinit.train's diagnose_samples)")
    out = np.zeros((net.n, net.depth, 6))
    over_members(kernels.stats.layer_moments, net.n, net.params, xs, net.arch, out)
    names = ("pre_mean", "pre_var", "pre_sq", "act_mean", "act_var", "dead_fraction")
    return {name: out[:, :, i].copy() for i, name in enumerate(names)}


def effective_rank(matrix) -> float:
    """exp(-sum p_i log p_i), p_i = s_i / sum(s): 1 for rank one, n for n equal singular
    values, 0 for the zero matrix (Roy & Vetterli, EUSIPCO 2007)."""
    s = np.linalg.svd(np.asarray(matrix, dtype=float), compute_uv=False)
    total = s.sum()
    if not np.isfinite(total):
        return math.nan
    if total <= 0:
        return 0.0
    p = s[s > 0] / total
    return float(np.exp(-np.sum(p * np.log(p))))


def unit_statistics(net, tol: float = 1e-6, ranks: bool = True, units: bool = True) -> dict:
    """distinct_units, max_similarity (compiled, over rows of [W_l | b_l]; NaN without
    ``units``) and, with ranks, weight_rank per member and layer, (K, L)."""
    K, L = net.n, net.depth
    sym = np.full((K, L, 2), np.nan)
    if units:
        over_members(kernels.stats.unit_symmetry, K * L, net.params, net.arch, float(tol), sym)
    out = {"distinct_units": sym[:, :, 0].copy(), "max_similarity": sym[:, :, 1].copy(),
           "weight_rank": np.full((K, L), np.nan)}
    if ranks:
        for k in range(K):
            for l in range(L):
                out["weight_rank"][k, l] = effective_rank(net.weights[l][k])
    return out


def jacobian_singular_values(net, x) -> np.ndarray:
    """Singular values of the input-output Jacobian at x, (K, min(d_0, d_L)), descending."""
    return np.linalg.svd(jacobian(net, x, "fastinit.jacobian_singular_values"),
                         compute_uv=False)


@dataclass
class Diagnostics:
    """Per-member, per-layer diagnostics; every field an array (K, L) (see the module doc)."""
    pre_mean: np.ndarray
    pre_var: np.ndarray
    pre_sq: np.ndarray
    act_mean: np.ndarray
    act_var: np.ndarray
    dead_fraction: np.ndarray
    grad_norm: np.ndarray
    distinct_units: np.ndarray
    max_similarity: np.ndarray
    weight_rank: np.ndarray
    act_rank: np.ndarray
    labels: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return jsonable.clean({k: getattr(self, k) for k in FIELDS} | {"labels": self.labels})

    def table(self, member: int = 0) -> str:
        """One member's diagnostics, one line per layer."""
        head = f"{'layer':>5} " + " ".join(f"{k:>14}" for k in FIELDS)
        lines = [f"{self.labels[member] if self.labels else member}", head]
        for l in range(self.pre_mean.shape[1]):
            lines.append(f"{l:>5} " + " ".join(f"{getattr(self, k)[member, l]:>14.5g}"
                                                 for k in FIELDS))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return tabular.diagnostics_html(self, FIELDS)


def diagnose(net, X, y=None, loss: str = "cross_entropy", *, tol: float = 1e-6,
             ranks: bool = True, symmetry: bool = True) -> Diagnostics:
    """Diagnostics of every member of ``net`` on the batch X (and labels y for gradients).

    ``ranks=False`` skips the effective ranks (SVDs) and ``symmetry=False`` the unit-symmetry
    pass (pairs of units: quadratic in the width), leaving those fields NaN.

    >>> import fastinit, numpy as np
    >>> net = fastinit.MLP([8, 16, 16, 3], init=["zeros", "he_normal"], n=2, seed=0)
    >>> d = fastinit.diagnose(net, np.ones((5, 8)))
    >>> d.distinct_units[:, :2].tolist()    # zeros: one distinct unit per hidden layer
    [[1.0, 1.0], [16.0, 16.0]]
    """
    check_net(net, _F)
    check_choice(loss, "loss", _F, LOSSES)
    tol = check_real(tol, "tol", _F, low=0.0)
    ranks, symmetry = check_bool(ranks, "ranks", _F), check_bool(symmetry, "symmetry", _F)
    x = check_x(X, net.layer_sizes[0], net.dtype, _F)
    stats = layer_statistics(net, x)
    sym = unit_statistics(net, tol, ranks, symmetry)
    grad = np.full((net.n, net.depth), np.nan)
    if y is not None:
        dw, _ = net.gradients(x, y, loss, _func=_F)
        for l, g in enumerate(dw):
            grad[:, l] = np.sqrt(np.sum(np.asarray(g, dtype=float) ** 2, axis=(1, 2)))
    act_rank = np.full((net.n, net.depth), np.nan)
    if ranks:
        for l, a in enumerate(run_forward(net, x).post):
            for k in range(net.n):
                act_rank[k, l] = effective_rank(a[k])
    return Diagnostics(stats["pre_mean"], stats["pre_var"], stats["pre_sq"], stats["act_mean"],
                       stats["act_var"], stats["dead_fraction"], grad, sym["distinct_units"],
                       sym["max_similarity"], sym["weight_rank"], act_rank, net.labels)
