"""fastinit.MLP: a population of K multilayer perceptrons with the same layer sizes.

Members may differ in init scheme, seed and activation parameter; each draws its weights from
its own Philox streams, so member k is the same network whether it is built alone or among
thousands. The network describes itself to the kernels with one record, ``net.arch``
(kernels.dense.Arch: widths, offsets, activation codes and per-member parameters, residual
skips); every kernel takes that record and the flat parameters ``net.params``.
"""
from __future__ import annotations

import json
from typing import Sequence

import numpy as np

from . import activations, jsonable, kernels, population, registry, streams
from ._validate import check_bool, check_choice, check_dtype, check_int, check_npz, \
    check_targets, check_x
from .memory import check_memory, check_scratch
from .sample import draw
from .spread import evaluate as spread_evaluate, over_members

ACTIVATIONS = activations.NETWORK
LOSSES = ("cross_entropy", "mse", "bce", "mse_sum")   # kernels.losses codes 0..3
NORMS = ("batch", "layer")
NORM_MOMENTUM, NORM_EPS = 0.1, 1e-5                    # PyTorch's BatchNorm1d / LayerNorm
_CLS = "fastinit.MLP"


def padded_size(layer_sizes) -> int:
    """Parameters of one member as laid out in memory (weight rows padded for the kernels)."""
    return sum(b * int(kernels.gemm.padded(a)) + b
               for a, b in zip(layer_sizes[:-1], layer_sizes[1:]))


class MLP:
    """K dense networks ``layer_sizes[0] -> ... -> layer_sizes[-1]`` trained side by side.

    Parameters
    ----------
    layer_sizes : sequence of int
        Widths from input to output, e.g. ``[64, 64, 64, 10]``.
    activation : str
        Hidden-layer activation: one of ``ACTIVATIONS``. The output layer is linear (logits).
    init : scheme, InitSpec or list of K of them
        Weight scheme(s), any name of ``fastinit.schemes()``. A framework preset
        (``torch_linear``, ``keras_dense``, ``flax_dense``) also sets the matching bias scheme.
    bias_init : scheme, InitSpec or list of K of them (None entries allowed), optional
        Bias scheme(s); default (None): the weight scheme's preset bias, else ``"zeros"``.
        Drawn with the layer weight's fans (so ``torch_linear_bias`` gets its fan_in).
    n : int
        Population size K.
    seed : int or sequence of K ints
        One seed: member k uses stream k of it. A list: member k uses stream 0 of seed[k], so
        it equals ``MLP(..., n=1, seed=seed[k])``.
    dtype : np.float32 (default; None means it) or np.float64
    activation_param : float or list of K, optional
        relu: derivative at 0 (default 0, and 1 for a member drawn with ZerO, which needs it);
        leaky_relu: slope (0.01); elu: alpha (1.0); softplus: beta (1.0). Resolved per member:
        member k's value never depends on the others.
    dropout : float or list of K, in [0, 1)
        Inverted dropout of every hidden activation while training (not when evaluating):
        each unit kept with probability 1 - p and scaled by 1 / (1 - p). The masks come from
        Philox streams keyed by (seed, member, step, layer): member k drops the same units alone
        or in any population, on any thread count.
    norm : None, "batch" or "layer"
        Normalize every hidden layer's pre-activations before its activation: batch norm
        (per unit over the batch; running mean and variance for evaluation, momentum 0.1) or
        layer norm (per sample over the units), eps 1e-5, a trained gain (``gammas``, 1 at
        init) and shift (``betas``, 0), as PyTorch's BatchNorm1d and LayerNorm.
    bias : bool
        False: no bias parameters at all (not drawn, trained, counted or saved: the ZerO and
        Saxe deep-linear analyses are of bias-free networks); ``biases`` is then empty.

    Attributes
    ----------
    weights : list of arrays (K, out, in)   views into ``params``, writable
    biases : list of arrays (K, out)        (empty without bias)
    params : array (K, P)                   every member's parameters, flat
    activation_param : array (K,)           each member's activation parameter
    arch : kernels.dense.Arch               the record every kernel takes

    >>> import fastinit
    >>> net = fastinit.MLP([64, 32, 10], init=["he_normal", "xavier_uniform"], n=2, seed=0)
    >>> net.weights[0].shape
    (2, 32, 64)
    """

    def __init__(self, layer_sizes: Sequence[int], activation: str = "relu",
                 init="he_normal", bias_init=None, *, n: int = 1, seed=0,
                 dtype=np.float32, activation_param=None, bias: bool = True, dropout=0.0,
                 norm: str | None = None):
        if isinstance(layer_sizes, (str, bytes)) or not hasattr(layer_sizes, "__len__"):
            raise TypeError(f"The 'layer_sizes' parameter of {_CLS} must be a list of positive "
                            f"integers, e.g. [64, 64, 10]. Got {layer_sizes!r}.")
        sizes = [check_int(s, "layer_sizes", _CLS, minimum=1) for s in layer_sizes]
        if len(sizes) < 2:
            raise ValueError(f"The 'layer_sizes' parameter of {_CLS} needs at least 2 sizes "
                             f"(input and output). Got {list(layer_sizes)!r}.")
        act = activations.network_activation(activation, _CLS)
        count = check_int(n, "n", _CLS, minimum=1)
        dt = check_dtype(dtype, "dtype", _CLS)
        self.layer_sizes = sizes
        self.bias = check_bool(bias, "bias", _CLS)
        self.norm = norm if norm is None else check_choice(norm, "norm", _CLS, NORMS)
        per_member = padded_size(sizes) * dt.itemsize + 64     # parameters, keys, flags
        largest = max(a * b for a, b in zip(sizes[:-1], sizes[1:])) * dt.itemsize
        check_memory(count * (per_member + largest), f"{_CLS}: n={count} members of layer "
                     f"sizes {sizes} ({dt.name})")
        self.init, self.bias_init, self.activation_param = population.schemes(
            init, bias_init, count, _CLS, act, activation_param)
        self.keys, self.members = population.streams(seed, count, _CLS)
        self.activation = act.name
        self.dropout = population.reals(dropout, count, "dropout", _CLS, low=0.0, high=1.0,
                                        high_open=True)
        self.dtype = dt
        self.n = count
        self._layout()
        self.params = np.zeros((count, self._size), dtype=dt)
        self.diverged = np.zeros(count, dtype=bool)
        self._views()
        self._draw()
        for gamma in self.gammas:            # a norm starts as the identity: gamma 1, beta 0
            gamma[...] = 1.0

    # -- layout -----------------------------------------------------------------------------
    def _residual(self):
        """(skip (L,), alpha_idx relative to the end of the layers (L,), extra parameters,
        alpha trained): a plain MLP has no skips; ResMLP overrides this."""
        L = self.depth
        return np.full(L, -1, np.int64), np.full(L, -1, np.int64), 0, False

    def _scratch_size(self, batch: int) -> int:
        """Values of a member's scratch for a pass over ``batch`` samples (kernels.dense.layout's
        total), worked out once per batch size (the kernel call costs microseconds)."""
        known = self.__dict__.setdefault("_scratch_sizes", {})
        if batch not in known:
            known[batch] = int(kernels.dense.layout(self.arch, kernels.gemm.padded(batch)).total)
        return known[batch]

    def _layout(self, state=None):
        """Offsets of every parameter, the kernels' record ``arch`` and, for batch norm, the
        running statistics (``state``: a fresh mean 0 and variance 1 unless given)."""
        sizes = self.layer_sizes
        L = len(sizes) - 1
        dims = np.array(sizes, dtype=np.int64)
        ld = np.array([kernels.gemm.padded(d) for d in sizes[:-1]], dtype=np.int64)
        skip, alpha_rel, extra, alpha_train = self._residual()
        hidden = (np.arange(L) < L - 1) & (skip < 0)       # layers followed by phi
        code = {None: kernels.norm.NONE, "batch": kernels.norm.BATCH,
                "layer": kernels.norm.LAYER}[self.norm]
        norm = np.where(hidden, code, kernels.norm.NONE).astype(np.int64)
        woff, boff, goff, soff = (np.full(L, -1, dtype=np.int64) for _ in range(4))
        off = states = 0
        for l in range(L):
            woff[l] = off
            off += sizes[l + 1] * int(ld[l])
            if self.bias:                               # -1: a layer without bias
                boff[l] = off
                off += sizes[l + 1]
            if norm[l] != kernels.norm.NONE:            # gamma, then beta
                goff[l] = off
                off += 2 * sizes[l + 1]
            if norm[l] == kernels.norm.BATCH:           # running mean, then variance
                soff[l] = states
                states += 2 * sizes[l + 1]
        if state is None:
            state = np.zeros((self.n, states), dtype=self.dtype)
            for l in np.flatnonzero(soff >= 0):
                state[:, soff[l] + sizes[l + 1]:soff[l] + 2 * sizes[l + 1]] = 1.0
        self.norm_state = state
        alpha_idx = np.where(alpha_rel >= 0, off + alpha_rel, -1).astype(np.int64)
        linear = activations.TABLE["linear"].code
        act = np.where(hidden, activations.TABLE[self.activation].code, linear).astype(np.int64)
        act_param = np.where(hidden[None, :], self.activation_param[:, None], 0.0)
        stream = (self.members.astype(np.uint64) << np.uint64(32)) | np.uint64(streams.DROPOUT)
        self.arch = kernels.dense.Arch(dims, ld, woff, boff, act, act_param, skip, alpha_idx,
                                       bool(alpha_train), self.dropout, self.keys, stream,
                                       norm, goff, soff, state, NORM_MOMENTUM, NORM_EPS)
        self._size = off + extra

    def _views(self):
        K, sizes, a = self.n, self.layer_sizes, self.arch
        self.weights, self.biases = [], []
        for l in range(len(sizes) - 1):
            out, ld = sizes[l + 1], int(a.ld[l])
            w = self.params[:, a.woff[l]:a.woff[l] + out * ld].reshape(K, out, ld)
            self.weights.append(w[:, :, :sizes[l]])
            if self.bias:
                self.biases.append(self.params[:, a.boff[l]:a.boff[l] + out])
        normed = [l for l in range(self.depth) if a.goff[l] >= 0]
        self.gammas = [self.params[:, a.goff[l]:a.goff[l] + sizes[l + 1]] for l in normed]
        self.betas = [self.params[:, a.goff[l] + sizes[l + 1]:a.goff[l] + 2 * sizes[l + 1]]
                      for l in normed]
        batch = [l for l in range(self.depth) if a.soff[l] >= 0]
        self.running_mean = [self.norm_state[:, a.soff[l]:a.soff[l] + sizes[l + 1]]
                             for l in batch]
        self.running_var = [self.norm_state[:, a.soff[l] + sizes[l + 1]:
                                            a.soff[l] + 2 * sizes[l + 1]] for l in batch]

    def _draw(self):
        sizes = self.layer_sizes
        groups: dict[tuple, list[int]] = {}
        for k in range(self.n):
            groups.setdefault((self.init[k], self.bias_init[k]), []).append(k)
        for (wspec, bspec), idx in groups.items():
            idx = np.array(idx)
            wscheme, wparams = registry.resolve(wspec, {}, _CLS, "init")
            bscheme, bparams = registry.resolve(bspec, {}, _CLS, "bias_init")
            for l in range(len(sizes) - 1):
                shape = (sizes[l + 1], sizes[l])
                w = draw(wscheme, wparams, shape, dtype=self.dtype, layout="torch",
                         key=self.keys[idx], members=self.members[idx],
                         tag=streams.layer_tag(l, streams.WEIGHT), func=_CLS)
                if self.bias:
                    b = draw(bscheme, bparams, (sizes[l + 1],), dtype=self.dtype,
                             layout="torch", key=self.keys[idx], members=self.members[idx],
                             tag=streams.layer_tag(l, streams.BIAS), fan_in=sizes[l],
                             fan_out=sizes[l + 1], func=_CLS)
                self.weights[l][idx] = w
                if self.bias:
                    self.biases[l][idx] = b

    # -- properties -------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        """Number of weight layers."""
        return len(self.layer_sizes) - 1

    @property
    def labels(self) -> list[str]:
        """One line per member: its init scheme and seed."""
        out = []
        for k in range(self.n):
            seed = int(self.keys[k])
            stream = int(self.members[k])
            out.append(f"{self.init[k]} seed={seed}" + (f" member={stream}" if stream else ""))
        return out

    def __repr__(self):
        schemes = list(dict.fromkeys(str(s) for s in self.init))   # in member order
        return (f"MLP({self.layer_sizes}, activation={self.activation!r}, n={self.n}, "
                f"init={schemes if len(schemes) > 1 else schemes[0]!r}, "
                f"dtype={self.dtype.name})")

    def _select(self, idx) -> "MLP":
        """A new population of the members idx (copies of their parameters and flags)."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.n = len(idx)
        new.init, new.bias_init = [self.init[k] for k in idx], [self.bias_init[k] for k in idx]
        new.keys, new.members = self.keys[idx].copy(), self.members[idx].copy()
        new.activation_param = self.activation_param[idx].copy()
        new.dropout = self.dropout[idx].copy()
        new._layout(self.norm_state[idx].copy())
        new.params = self.params[idx].copy()
        new.diverged = self.diverged[idx].copy()
        new._views()
        return new

    def member(self, k: int) -> "MLP":
        """A new one-member network holding a copy of member k (its parameters, not its
        history)."""
        k = check_int(k, "k", f"{_CLS}.member", minimum=0, maximum=self.n - 1)
        return self._select([k])

    def copy(self) -> "MLP":
        return self._select(list(range(self.n)))

    # -- evaluation -------------------------------------------------------------------------
    def forward(self, X) -> np.ndarray:
        """Outputs (logits) of every member: (K, n, out)."""
        x = check_x(X, self.layer_sizes[0], self.dtype, f"{_CLS}.forward")
        labels = np.zeros(x.shape[0], dtype=np.int64)   # cross-entropy on label 0: discarded
        return evaluate(self, x, labels, np.zeros((1, 1), self.dtype), "cross_entropy",
                        write_out=True)[2]

    def predict(self, X) -> np.ndarray:
        """Class predictions (K, n): argmax of the outputs (one output: logit > 0). For
        regression use forward."""
        z = self.forward(X)
        if z.shape[-1] == 1:
            return (z[..., 0] > 0).astype(np.int64)
        return np.argmax(z, axis=-1)

    def _checked(self, X, y, loss, func):
        check_choice(loss, "loss", func, LOSSES)
        x = check_x(X, self.layer_sizes[0], self.dtype, func)
        return x, check_targets(y, x.shape[0], self.layer_sizes[-1], loss, self.dtype, func)

    def loss(self, X, y, loss: str = "cross_entropy") -> np.ndarray:
        """Mean loss of every member over (X, y): (K,)."""
        x, (labels, targets) = self._checked(X, y, loss, f"{_CLS}.loss")
        return evaluate(self, x, labels, targets, loss)[0] / x.shape[0]

    def accuracy(self, X, y) -> np.ndarray:
        """Fraction of samples whose argmax output equals the label: (K,)."""
        x, (labels, targets) = self._checked(X, y, "cross_entropy", f"{_CLS}.accuracy")
        return evaluate(self, x, labels, targets, "cross_entropy")[1] / x.shape[0]

    def gradients(self, X, y, loss: str = "cross_entropy", *, _func: str | None = None):
        """Gradient of the mean loss over (X, y) for every member.

        y is one set of labels (n,) or targets (n, out) for every member, or one per member:
        labels (K, n), targets (K, n, out). Returns (dW, db): lists over layers of arrays
        (K, out, in) and (K, out). ``_func``: the public function its errors name (diagnose).
        """
        func = _func or f"{_CLS}.gradients"
        check_choice(loss, "loss", func, LOSSES)
        x = check_x(X, self.layer_sizes[0], self.dtype, func)
        per_member = np.ndim(y) == (2 if loss == "cross_entropy" else 3)
        if per_member and len(y) != self.n:
            shape = (self.n, x.shape[0]) + ((self.layer_sizes[-1],) if loss != "cross_entropy"
                                            else ())
            raise ValueError(f"The 'y' parameter of {func} has shape {np.shape(y)}: pass one "
                             f"set for every member ({shape[1:]}) or one per member {shape}.")
        checked = [check_targets(yk, x.shape[0], self.layer_sizes[-1], loss, self.dtype, func,
                                 f"y[{k}]" if per_member else "y")
                   for k, yk in enumerate(y if per_member else [y])]
        labels = np.stack([c[0] for c in checked])
        targets = np.stack([c[1] for c in checked])
        check_scratch(self, [(self.n, len(x))], func, "X")
        grads = np.zeros_like(self.params)
        over_members(kernels.train.gradients, self.n, self.params, x, labels, targets,
                     self.arch, LOSSES.index(loss), grads, np.zeros(self.n))
        a = self.arch
        dw, db = [], []
        for l in range(self.depth):
            out, ld = self.layer_sizes[l + 1], int(a.ld[l])
            dw.append(grads[:, a.woff[l]:a.woff[l] + out * ld]
                      .reshape(self.n, out, ld)[:, :, :self.layer_sizes[l]].copy())
            if self.bias:
                db.append(grads[:, a.boff[l]:a.boff[l] + out].copy())
        return dw, db

    # -- persistence ------------------------------------------------------------------------
    FORMAT = "fastinit.MLP/1"

    def config(self) -> dict:
        return {"layer_sizes": self.layer_sizes, "activation": self.activation,
                "bias": self.bias, "dropout": [float(v) for v in self.dropout],
                "norm": self.norm,
                "activation_param": [float(v) for v in self.activation_param],
                "dtype": self.dtype.name,
                "n": self.n, "init": [[s.scheme, dict(s.params)] for s in self.init],
                "bias_init": [[s.scheme, dict(s.params)] for s in self.bias_init],
                "keys": [int(k) for k in self.keys], "members": [int(m) for m in self.members],
                "format": self.FORMAT}

    def _extra_arrays(self) -> dict:
        """Arrays a subclass saves beside the weights and biases."""
        return {}

    def _restore(self, cfg: dict, data) -> None:
        """A subclass's own fields, from its config (before the layout is built)."""

    def save(self, path) -> None:
        """Save to an .npz file (arrays and a JSON config; no pickle)."""
        arrays = {f"weight_{l}": np.ascontiguousarray(w) for l, w in enumerate(self.weights)}
        arrays.update({f"bias_{l}": np.ascontiguousarray(b) for l, b in enumerate(self.biases)})
        arrays.update({f"gamma_{i}": np.ascontiguousarray(g) for i, g in enumerate(self.gammas)})
        arrays.update({f"beta_{i}": np.ascontiguousarray(b) for i, b in enumerate(self.betas)})
        arrays["norm_state"] = self.norm_state
        arrays.update(self._extra_arrays())
        arrays["diverged"] = self.diverged
        arrays["config"] = np.array(jsonable.saved(self.config(), f"{_CLS}.save"))
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path) -> "MLP":
        """Load a network saved by ``save``: the same parameters, bit for bit."""
        func = f"fastinit.{cls.__name__}"
        what = f"a saved fastinit network (an .npz archive that {func}.save writes)"
        with np.load(check_npz(path, "path", f"{func}.load", what), allow_pickle=False) as data:
            if "config" not in data:
                raise ValueError(f"{func}.load: {path!s} is not {what}: it has no 'config'.")
            cfg = json.loads(str(data["config"]))
            if cfg.get("format") != cls.FORMAT:
                raise ValueError(f"{path!s}: format {cfg.get('format')!r}, expected "
                                 f"{cls.FORMAT!r} (load it with the class that saved it).")
            net = object.__new__(cls)
            net.layer_sizes = cfg["layer_sizes"]
            net.bias = cfg.get("bias", True)
            net.norm = cfg.get("norm")
            net.dropout = np.broadcast_to(np.asarray(cfg.get("dropout", 0.0), dtype=np.float64),
                                          (cfg["n"],)).copy()
            net.activation = cfg["activation"]
            net.activation_param = np.broadcast_to(np.asarray(  # one value in older files
                cfg["activation_param"], dtype=np.float64), (cfg["n"],)).copy()
            net.dtype = np.dtype(cfg["dtype"])
            net.n = cfg["n"]
            net.init = [registry.InitSpec(s, tuple(sorted(p.items()))) for s, p in cfg["init"]]
            net.bias_init = [registry.InitSpec(s, tuple(sorted(p.items())))
                             for s, p in cfg["bias_init"]]
            net.keys = np.array(cfg["keys"], dtype=np.uint64)
            net.members = np.array(cfg["members"], dtype=np.int64)
            net._restore(cfg, None)
            net._layout(data["norm_state"].astype(net.dtype) if "norm_state" in data else None)
            net.params = np.zeros((net.n, net._size), dtype=net.dtype)
            net._views()
            for l in range(net.depth):
                net.weights[l][...] = data[f"weight_{l}"]
                if net.bias:
                    net.biases[l][...] = data[f"bias_{l}"]
            for i, (gamma, beta) in enumerate(zip(net.gammas, net.betas)):
                gamma[...] = data[f"gamma_{i}"]
                beta[...] = data[f"beta_{i}"]
            net._restore(cfg, data)
            net.diverged = data["diverged"].astype(bool)
        return net


def check_net(net, func: str) -> None:
    """TypeError naming ``func`` unless net is a fastinit.MLP (a ResMLP is one)."""
    if not isinstance(net, MLP):
        raise TypeError(f"The 'net' parameter of {func} must be a fastinit.MLP (or ResMLP). "
                        f"Got {type(net).__name__}.")


def evaluate(net: MLP, x, labels, targets, loss: str, *, write_out: bool = False,
             batch: int = 256, work=None):
    """(loss sums (K,), correct counts (K,), logits (K, n, out) or a stub) of every member over
    checked arrays x, labels, targets, in batches of ``batch`` (spread.evaluate). ``work``:
    spread.workspace(net, batch or more, evaluation=True) to reuse (default: a new one)."""
    return spread_evaluate(net, x, labels, targets, LOSSES.index(loss), write_out, batch, work)


__all__ = ["MLP", "ACTIVATIONS", "LOSSES", "check_net", "evaluate"]
