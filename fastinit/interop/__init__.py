"""fastinit weights in other frameworks: PyTorch, JAX / Flax, Keras 3 (each optional).

    fastinit.interop.init_torch(module, "he_normal", seed=0)      # torch modules, in place
    init = fastinit.interop.jax_init("he_normal")                 # a jax.nn.initializers-style
    flax.linen.Dense(64, kernel_init=init)                        #   init(key, shape, dtype)
    keras.layers.Dense(64, kernel_initializer=fastinit.interop.KerasInitializer("orthogonal"))

One module per framework (torch, jax, keras); each imports its framework only when used, and a
missing one raises an ImportError naming what to install. ``KerasInitializer`` is a real Keras
class, so it is made (importing Keras) on first look-up, never by ``import fastinit``.
"""
from __future__ import annotations

from .jax import jax_init, key_seed
from .keras import initializer_class
from .torch import from_torch, init_torch, lsuv_torch, to_torch

__all__ = ["KerasInitializer", "from_torch", "init_torch", "jax_init", "key_seed",
           "lsuv_torch", "to_torch"]


def __getattr__(name):
    if name == "KerasInitializer":
        return initializer_class()
    raise AttributeError(f"module 'fastinit.interop' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | {"KerasInitializer"})
