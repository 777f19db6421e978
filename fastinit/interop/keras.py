"""Keras 3 interop (optional: pip install 'fastinit[keras]'): a fastinit scheme as a
``keras.initializers.Initializer``, on any Keras backend.

    init = fastinit.interop.KerasInitializer("orthogonal", seed=0, gain=1.0)
    layer = keras.layers.Dense(64, kernel_initializer=init)

A call draws ``fastinit.sample(scheme, shape, seed=seed, layout="keras")``: Keras's layout
(Dense (in, out), Conv (*k, in, out)) and its fans. Like a Keras initializer seeded with an
integer, it returns the same values on every call of the same shape: give layers their own
seeds. float16 / bfloat16 are drawn in float32 and rounded.

The class is made (and registered with Keras as ``"fastinit>KerasInitializer"``, so a saved
``.keras`` model reloads with it) the first time ``fastinit.interop.KerasInitializer`` is looked
up, which imports Keras: ``import fastinit`` alone never does (Keras picks its backend when
first imported). Before loading a saved model, name the class once
(``from fastinit.interop import KerasInitializer``) or pass it in ``custom_objects``.
"""
from __future__ import annotations

from importlib import util

import numpy as np

from .. import registry
from .._validate import check_real, check_seed
from ..sample import sample

_FUNC = "fastinit.interop.KerasInitializer"
_CLASS: list = []        # the class, made once


def _keras():
    try:
        import keras
    except (ImportError, ValueError) as e:      # ValueError: a backend name Keras has not
        if util.find_spec("keras") is not None:    # Keras is there: its backend is not
            raise ImportError(f"fastinit.interop.KerasInitializer: Keras is installed but could "
                              f"not load its backend ({e}). Set KERAS_BACKEND=jax (pip install "
                              f"'jax[cpu]'), or install the backend Keras is set to "
                              f"(KERAS_BACKEND, else ~/.keras/keras.json).") from None
        raise ImportError("fastinit.interop.KerasInitializer needs Keras 3 and a backend: pip "
                          "install keras 'jax[cpu]' (or pip install 'fastinit[keras]').") from None
    if int(keras.__version__.split(".")[0]) < 3:
        raise ImportError(f"fastinit.interop.KerasInitializer needs Keras 3. Got Keras "
                          f"{keras.__version__}: pip install -U keras.")
    return keras


def _make(keras):
    class KerasInitializer(keras.initializers.Initializer):
        """A fastinit scheme as a Keras initializer: ``KerasInitializer(scheme, seed=0,
        fan_in=None, fan_out=None, **params)``; each call draws ``fastinit.sample(scheme, shape,
        seed=seed, layout="keras", ...)``. Serialisable (``get_config`` / ``from_config``)."""

        def __init__(self, scheme="he_normal", seed=0, fan_in=None, fan_out=None, **params):
            s, resolved = registry.resolve(scheme, params, _FUNC)
            given = {**registry.as_spec(scheme, _FUNC).kwargs, **params}
            self.spec = registry.InitSpec(s.name, tuple(sorted(given.items())))
            self.seed = check_seed(seed, "seed", _FUNC)
            self.fan_in, self.fan_out = (
                None if v is None else check_real(v, name, _FUNC, low=0.0, low_open=True)
                for v, name in ((fan_in, "fan_in"), (fan_out, "fan_out")))

        def __call__(self, shape, dtype=None):
            name = keras.backend.standardize_dtype(dtype or keras.config.floatx())
            if name not in ("float16", "bfloat16", "float32", "float64"):
                raise TypeError(f"The 'dtype' parameter of {_FUNC} must be a floating dtype "
                                f"(float32, float64, float16, bfloat16). Got {name!r}.")
            w = sample(self.spec, tuple(shape), seed=self.seed, layout="keras",
                       dtype=np.float64 if name == "float64" else np.float32,
                       fan_in=self.fan_in, fan_out=self.fan_out)
            return keras.ops.convert_to_tensor(w, dtype=name)

        def get_config(self):
            config = {"scheme": self.spec.scheme, "seed": self.seed,
                      "params": dict(self.spec.params)}
            if self.fan_in is not None:
                config["fan_in"] = self.fan_in
            if self.fan_out is not None:
                config["fan_out"] = self.fan_out
            return config

        @classmethod
        def from_config(cls, config):
            config = dict(config)
            params = config.pop("params", {})
            return cls(**config, **params)

        def __repr__(self):
            return f"KerasInitializer({str(self.spec)!r}, seed={self.seed})"

    KerasInitializer.__module__ = "fastinit.interop"
    return keras.saving.register_keras_serializable(package="fastinit",
                                                    name="KerasInitializer")(KerasInitializer)


def initializer_class():
    """``fastinit.interop.KerasInitializer``: made and registered with Keras on first use."""
    if not _CLASS:
        _CLASS.append(_make(_keras()))
    return _CLASS[0]
