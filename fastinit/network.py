"""fastinit.MLP: a population of K multilayer perceptrons with the same layer sizes.

Members may differ in init scheme and seed; each draws its weights from its own Philox streams,
so member k is the same network whether it is built alone or among thousands.
"""
from __future__ import annotations

import json
from typing import Sequence

import numpy as np

from . import kernels, streams
from . import registry
from ._validate import check_choice, check_dtype, check_int, check_real, check_seed
from .sample import draw

ACTIVATIONS = ("linear", "relu", "leaky_relu", "elu", "selu", "gelu", "gelu_tanh", "silu",
               "tanh", "sigmoid", "softplus", "softsign")
ACTIVATION_CODES = {name: code for code, name in enumerate(ACTIVATIONS)}
ACTIVATION_ALIASES = {"identity": "linear", "swish": "silu"}
# default parameter: relu's derivative at 0, leaky_relu's slope, elu's alpha, softplus's beta
ACTIVATION_DEFAULTS = {"relu": 0.0, "leaky_relu": 0.01, "elu": 1.0, "softplus": 1.0}
LOSSES = ("cross_entropy", "mse", "bce")
_CLS = "fastinit.MLP"


def _as_specs(value, count: int, param: str, func: str):
    """One InitSpec per member from a scheme, a spec or a list of K of them."""
    if isinstance(value, (list, tuple)) and not (
            len(value) == 2 and isinstance(value, tuple) and isinstance(value[1], dict)):
        if len(value) != count:
            raise ValueError(f"The {param!r} parameter of {func} must be one scheme or a list "
                             f"of n={count} schemes (one per member). Got a list of "
                             f"{len(value)}.")
        return [registry.as_spec(v, func, param) for v in value]
    spec = registry.as_spec(value, func, param)
    return [spec] * count


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
    bias_init : scheme, InitSpec or list, optional
        Bias scheme(s); default: the preset's bias scheme, else ``"zeros"``. Drawn with the
        layer weight's fans (so ``torch_linear_bias`` gets its fan_in).
    n : int
        Population size K.
    seed : int or sequence of K ints
        One seed: member k uses stream k of it. A list: member k uses stream 0 of seed[k], so
        it equals ``MLP(..., n=1, seed=seed[k])``.
    dtype : np.float32 (default) or np.float64
    activation_param : float, optional
        relu: derivative at 0 (default 0; 1 when every member uses ZerO, which needs it);
        leaky_relu: slope (0.01); elu: alpha (1.0); softplus: beta (1.0).

    Attributes
    ----------
    weights : list of arrays (K, out, in)   views into ``params``, writable
    biases : list of arrays (K, out)
    params : array (K, P)                   every member's parameters, flat

    >>> import fastinit
    >>> net = fastinit.MLP([64, 32, 10], init=["he_normal", "xavier_uniform"], n=2, seed=0)
    >>> net.weights[0].shape
    (2, 32, 64)
    """

    def __init__(self, layer_sizes: Sequence[int], activation: str = "relu",
                 init="he_normal", bias_init=None, *, n: int = 1, seed=0,
                 dtype=np.float32, activation_param: float | None = None):
        if isinstance(layer_sizes, (str, bytes)) or not hasattr(layer_sizes, "__len__"):
            raise TypeError(f"The 'layer_sizes' parameter of {_CLS} must be a list of positive "
                            f"integers, e.g. [64, 64, 10]. Got {layer_sizes!r}.")
        sizes = [check_int(s, "layer_sizes", _CLS, minimum=1) for s in layer_sizes]
        if len(sizes) < 2:
            raise ValueError(f"The 'layer_sizes' parameter of {_CLS} needs at least 2 sizes "
                             f"(input and output). Got {list(layer_sizes)!r}.")
        activation = ACTIVATION_ALIASES.get(activation, activation)
        check_choice(activation, "activation", _CLS, ACTIVATIONS)
        count = check_int(n, "n", _CLS, minimum=1)
        dt = check_dtype(dtype, "dtype", _CLS)
        inits = _as_specs(init, count, "init", _CLS)
        if bias_init is None:   # a preset's bias scheme, given the parameters it shares
            biases = [registry.preset_bias(s) for s in inits]
        else:
            biases = _as_specs(bias_init, count, "bias_init", _CLS)
        if isinstance(seed, (list, tuple, np.ndarray)):
            if len(seed) != count:
                raise ValueError(f"The 'seed' parameter of {_CLS} must be one integer or a list "
                                 f"of n={count} integers. Got a list of {len(seed)}.")
            keys = np.array([check_seed(s, "seed", _CLS) for s in seed], dtype=np.uint64)
            members = np.zeros(count, dtype=np.int64)
        else:
            keys = np.full(count, check_seed(seed, "seed", _CLS), dtype=np.uint64)
            members = np.arange(count, dtype=np.int64)
        if activation_param is None:
            zero_net = all(registry.get_scheme(s.scheme).family == "zero" for s in inits)
            param = 1.0 if (activation == "relu" and zero_net) else \
                ACTIVATION_DEFAULTS.get(activation, 0.0)
        else:
            param = check_real(activation_param, "activation_param", _CLS)
            if activation == "softplus" and param <= 0:
                raise ValueError(f"The 'activation_param' parameter of {_CLS} (softplus beta) "
                                 f"must be > 0. Got {param!r}.")

        self.layer_sizes = sizes
        self.activation = activation
        self.activation_param = float(param)
        self.dtype = dt
        self.n = count
        self.init = inits
        self.bias_init = biases
        self.keys = keys
        self.members = members
        self._layout()
        self.params = np.zeros((count, self._size), dtype=dt)
        self.diverged = np.zeros(count, dtype=bool)
        self._views()
        self._draw()

    # -- layout -----------------------------------------------------------------------------
    def _layout(self):
        sizes = self.layer_sizes
        L = len(sizes) - 1
        self._dims = np.array(sizes, dtype=np.int64)
        self._ld = np.array([kernels.gemm.padded(d) for d in sizes[:-1]], dtype=np.int64)
        self._woff = np.zeros(L, dtype=np.int64)
        self._boff = np.zeros(L, dtype=np.int64)
        off = 0
        for l in range(L):
            self._woff[l] = off
            off += sizes[l + 1] * int(self._ld[l])
            self._boff[l] = off
            off += sizes[l + 1]
        self._size = off
        code = ACTIVATION_CODES[self.activation]
        self._act = np.array([code] * (L - 1) + [ACTIVATION_CODES["linear"]], dtype=np.int64)
        self._act_param = np.array([self.activation_param] * (L - 1) + [0.0])
        self._skip = np.full(L, -1, dtype=np.int64)         # residual layers: see ResMLP
        self._alpha_idx = np.full(L, -1, dtype=np.int64)
        self._alpha_train = False

    def _views(self):
        K, sizes = self.n, self.layer_sizes
        self.weights, self.biases = [], []
        for l in range(len(sizes) - 1):
            out, ld = sizes[l + 1], int(self._ld[l])
            w = self.params[:, self._woff[l]:self._woff[l] + out * ld].reshape(K, out, ld)
            self.weights.append(w[:, :, :sizes[l]])
            self.biases.append(self.params[:, self._boff[l]:self._boff[l] + out])

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
                b = draw(bscheme, bparams, (sizes[l + 1],), dtype=self.dtype, layout="torch",
                         key=self.keys[idx], members=self.members[idx],
                         tag=streams.layer_tag(l, streams.BIAS), fan_in=sizes[l],
                         fan_out=sizes[l + 1], func=_CLS)
                self.weights[l][idx] = w
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
        schemes = sorted({str(s) for s in self.init})
        return (f"MLP({self.layer_sizes}, activation={self.activation!r}, n={self.n}, "
                f"init={schemes if len(schemes) > 1 else schemes[0]!r}, "
                f"dtype={self.dtype.name})")

    def member(self, k: int) -> "MLP":
        """A new one-member MLP holding a copy of member k (its parameters, not its history)."""
        k = check_int(k, "k", "fastinit.MLP.member", minimum=0, maximum=self.n - 1)
        new = object.__new__(MLP)
        new.__dict__.update(self.__dict__)
        new.n = 1
        new.init, new.bias_init = [self.init[k]], [self.bias_init[k]]
        new.keys, new.members = self.keys[k:k + 1].copy(), self.members[k:k + 1].copy()
        new.params = self.params[k:k + 1].copy()
        new.diverged = self.diverged[k:k + 1].copy()
        new._views()
        return new

    # -- data checks ------------------------------------------------------------------------
    def check_x(self, x, func: str, param: str = "X") -> np.ndarray:
        """X as a C-contiguous (n, in) array of the network's dtype, checked."""
        try:
            arr = np.asarray(x)
        except Exception as e:  # noqa: BLE001 - anything that is not array-like
            raise TypeError(f"The {param!r} parameter of {func} must be an array. Got "
                            f"{type(x).__name__}: {e}") from None
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"The {param!r} parameter of {func} must hold numbers. Got dtype "
                            f"{arr.dtype}.")
        if arr.ndim == 1 and self.layer_sizes[0] != 1:
            arr = arr[None, :]
        if arr.ndim != 2:
            raise ValueError(f"The {param!r} parameter of {func} must be 2-D (samples, "
                             f"features). Got shape {arr.shape}.")
        if arr.shape[1] != self.layer_sizes[0]:
            raise ValueError(f"The {param!r} parameter of {func} has {arr.shape[1]} features "
                             f"but the network's input width is {self.layer_sizes[0]}.")
        if arr.shape[0] == 0:
            raise ValueError(f"The {param!r} parameter of {func} has no samples.")
        arr = np.ascontiguousarray(arr, dtype=self.dtype)
        if not np.all(np.isfinite(arr)):
            bad = int(np.count_nonzero(~np.isfinite(arr)))
            raise ValueError(f"The {param!r} parameter of {func} contains {bad} NaN or "
                             f"infinite value(s).")
        return arr

    def check_targets(self, y, n: int, loss: str, func: str, param: str = "y"):
        """(labels int64 (n,), targets (n, out)) for a loss; the unused one is a stub."""
        out = self.layer_sizes[-1]
        arr = np.asarray(y)
        if arr.shape[:1] != (n,):
            raise ValueError(f"The {param!r} parameter of {func} must have one entry per sample "
                             f"of X ({n}). Got shape {arr.shape}.")
        stub_y = np.zeros(1, dtype=np.int64)
        stub_t = np.zeros((1, 1), dtype=self.dtype)
        if loss == "cross_entropy":
            if arr.ndim != 1 or arr.dtype.kind not in "biuf":
                raise ValueError(f"The {param!r} parameter of {func} must be a 1-D array of "
                                 f"integer class labels for cross_entropy. Got shape "
                                 f"{arr.shape}, dtype {arr.dtype}.")
            if arr.dtype.kind == "f":
                if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
                    raise ValueError(f"The {param!r} parameter of {func} must hold integer "
                                     f"class labels. Got non-integer values.")
            labels = arr.astype(np.int64)
            if labels.min() < 0 or labels.max() >= out:
                raise ValueError(f"The {param!r} parameter of {func} holds labels in "
                                 f"[{labels.min()}, {labels.max()}] but the network has {out} "
                                 f"outputs: labels must be in [0, {out - 1}].")
            return np.ascontiguousarray(labels), stub_t
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2 or arr.shape[1] != out:
            raise ValueError(f"The {param!r} parameter of {func} must have shape ({n}, {out}) "
                             f"for {loss} (one target per output). Got shape {arr.shape}.")
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"The {param!r} parameter of {func} must hold numbers. Got dtype "
                            f"{arr.dtype}.")
        targets = np.ascontiguousarray(arr, dtype=self.dtype)
        if not np.all(np.isfinite(targets)):
            raise ValueError(f"The {param!r} parameter of {func} contains NaN or infinite "
                             f"values.")
        if loss == "bce" and (targets.min() < 0 or targets.max() > 1):
            raise ValueError(f"The {param!r} parameter of {func} must hold targets in [0, 1] "
                             f"for bce. Got values in [{targets.min()}, {targets.max()}].")
        return stub_y, targets

    # -- evaluation -------------------------------------------------------------------------
    def _evaluate(self, x, labels, targets, loss: str, write_out: bool, batch: int = 256):
        K = self.n
        n = x.shape[0]
        loss_sum = np.zeros(K)
        correct = np.zeros(K)
        out = np.empty((K, n, self.layer_sizes[-1]) if write_out else (1, 1, 1), dtype=self.dtype)
        kernels.train.evaluate(self.params, x, labels, targets, min(batch, n), self._dims,
                               self._ld, self._woff, self._boff, self._act, self._act_param,
                               self._skip, self._alpha_idx, LOSSES.index(loss), loss_sum,
                               correct, out, write_out)
        return loss_sum, correct, out

    def forward(self, X) -> np.ndarray:
        """Outputs (logits) of every member: (K, n, out)."""
        x = self.check_x(X, "fastinit.MLP.forward")
        labels = np.zeros(x.shape[0], dtype=np.int64)   # cross-entropy on label 0: discarded
        return self._evaluate(x, labels, np.zeros((1, 1), self.dtype), "cross_entropy",
                              True)[2]

    def predict(self, X) -> np.ndarray:
        """Class predictions (K, n): argmax of the outputs (one output: logit > 0). For
        regression use forward."""
        z = self.forward(X)
        if z.shape[-1] == 1:
            return (z[..., 0] > 0).astype(np.int64)
        return np.argmax(z, axis=-1)

    def loss(self, X, y, loss: str = "cross_entropy") -> np.ndarray:
        """Mean loss of every member over (X, y): (K,)."""
        func = "fastinit.MLP.loss"
        check_choice(loss, "loss", func, LOSSES)
        x = self.check_x(X, func)
        labels, targets = self.check_targets(y, x.shape[0], loss, func)
        return self._evaluate(x, labels, targets, loss, False)[0] / x.shape[0]

    def accuracy(self, X, y) -> np.ndarray:
        """Fraction of samples whose argmax output equals the label: (K,)."""
        func = "fastinit.MLP.accuracy"
        x = self.check_x(X, func)
        labels, targets = self.check_targets(y, x.shape[0], "cross_entropy", func)
        return self._evaluate(x, labels, targets, "cross_entropy", False)[1] / x.shape[0]

    def gradients(self, X, y, loss: str = "cross_entropy"):
        """Gradient of the mean loss over (X, y) for every member.

        Returns (dW, db): lists over layers of arrays (K, out, in) and (K, out).
        """
        func = "fastinit.MLP.gradients"
        check_choice(loss, "loss", func, LOSSES)
        x = self.check_x(X, func)
        labels, targets = self.check_targets(y, x.shape[0], loss, func)
        grads = np.zeros_like(self.params)
        kernels.train.gradients(self.params, x, labels, targets, self._dims, self._ld,
                                self._woff, self._boff, self._act, self._act_param,
                                self._skip, self._alpha_idx, self._alpha_train,
                                LOSSES.index(loss), grads, np.zeros(self.n))
        dw, db = [], []
        for l in range(self.depth):
            out, ld = self.layer_sizes[l + 1], int(self._ld[l])
            dw.append(grads[:, self._woff[l]:self._woff[l] + out * ld]
                      .reshape(self.n, out, ld)[:, :, :self.layer_sizes[l]].copy())
            db.append(grads[:, self._boff[l]:self._boff[l] + out].copy())
        return dw, db

    # -- persistence ------------------------------------------------------------------------
    def config(self) -> dict:
        return {"layer_sizes": self.layer_sizes, "activation": self.activation,
                "activation_param": self.activation_param, "dtype": self.dtype.name,
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
        arrays.update(self._extra_arrays())
        arrays["diverged"] = self.diverged
        arrays["config"] = np.array(json.dumps(self.config()))
        np.savez(path, **arrays)

    FORMAT = "fastinit.MLP/1"

    @classmethod
    def load(cls, path) -> "MLP":
        """Load a network saved by ``save``: the same parameters, bit for bit."""
        with np.load(path, allow_pickle=False) as data:
            if "config" not in data:
                raise ValueError(f"{path!s} is not a fastinit network file (no 'config').")
            cfg = json.loads(str(data["config"]))
            if cfg.get("format") != cls.FORMAT:
                raise ValueError(f"{path!s}: format {cfg.get('format')!r}, expected "
                                 f"{cls.FORMAT!r} (load it with the class that saved it).")
            net = object.__new__(cls)
            net.layer_sizes = cfg["layer_sizes"]
            net.activation = cfg["activation"]
            net.activation_param = cfg["activation_param"]
            net.dtype = np.dtype(cfg["dtype"])
            net.n = cfg["n"]
            net.init = [registry.InitSpec(s, tuple(sorted(p.items()))) for s, p in cfg["init"]]
            net.bias_init = [registry.InitSpec(s, tuple(sorted(p.items())))
                             for s, p in cfg["bias_init"]]
            net.keys = np.array(cfg["keys"], dtype=np.uint64)
            net.members = np.array(cfg["members"], dtype=np.int64)
            net._restore(cfg, None)
            net._layout()
            net.params = np.zeros((net.n, net._size), dtype=net.dtype)
            net._views()
            for l in range(net.depth):
                net.weights[l][...] = data[f"weight_{l}"]
                net.biases[l][...] = data[f"bias_{l}"]
            net._restore(cfg, data)
            net.diverged = data["diverged"].astype(bool)
        return net

    def copy(self) -> "MLP":
        new = object.__new__(MLP)
        new.__dict__.update(self.__dict__)
        new.params = self.params.copy()
        new.diverged = self.diverged.copy()
        new._views()
        return new


def n_parameters(layer_sizes) -> int:
    """Weights and biases of one member."""
    return sum(a * b + b for a, b in zip(layer_sizes[:-1], layer_sizes[1:]))


__all__ = ["MLP", "ACTIVATIONS", "LOSSES", "n_parameters"]
