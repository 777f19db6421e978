"""JAX and Flax interop (optional: pip install 'fastinit[jax]'): fastinit schemes as JAX
initializers, usable wherever ``jax.nn.initializers`` are.

    init = fastinit.interop.jax_init("he_normal")            # like jax.nn.initializers.he_normal()
    w = init(jax.random.key(0), (784, 256))                   # (in, out): JAX's layout
    flax.linen.Dense(256, kernel_init=fastinit.interop.jax_init("orthogonal"))
    flax.nnx.Linear(784, 256, kernel_init=init, rngs=flax.nnx.Rngs(0))

Layout: JAX's (..., in, out), fastinit's ``layout="keras"`` (Dense (in, out), Conv
(*k, in, out)), with its fans (a 1-D shape has none, as in JAX); other axis orders and
stacked kernels name their axes with ``in_axis`` / ``out_axis`` / ``batch_axis``, as in
``jax.nn.initializers.variance_scaling``.

Keys: a key maps to one fastinit seed, member 0 (``key_seed``): its raw uint32 words
(``jax.random.key_data``) read in pairs as 64-bit numbers p = hi << 32 | lo. The seed is the
first pair; each further pair folds in as seed = p + mix(seed - p) mod 2**64, mix splitmix64's
finalizer (a bijection of 64-bit numbers, mix(0) = 0). So a threefry key (one pair) is its
pair, and a key repeating its pair (rbg keys hold (hi, lo, hi, lo)) is that pair: distinct
such keys never share a seed (folded linearly, as seed * FOLD + p, a repeated p gave
p * (FOLD + 1) with FOLD + 1 even, one seed for p and p + 2**63; XOR-ed, 0 for all). A key
made by ``jax.random.key(s)``, threefry or rbg, holds (s >> 32, s & 0xffffffff), so for
0 <= s < 2**32 (any s < 2**64 with jax_enable_x64)::

    jax_init(scheme)(jax.random.key(s), shape) == fastinit.sample(scheme, shape, seed=s,
                                                                  layout="keras")   # bitwise

A key from ``split`` or ``fold_in`` (Flax derives one per parameter that way) is another seed,
so every layer of a Flax model draws its own stream.

Under ``jax.jit`` (Flax's ``model.init`` often is) the weights are drawn on the host through
``jax.pure_callback``: the same values as outside jit; under ``vmap`` each key draws in turn.
The scheme and its parameters are checked when ``jax_init`` is called, the shape, fans and
dtype when the initializer is called or traced; a failure only the draw sees (orthogonal of
a 1-D shape) reaches a jitted caller wrapped in JAX's runtime error, with fastinit's message.

dtype: float32 and float64 (with jax_enable_x64) draw in that precision; float16 and bfloat16
are drawn in float32 and rounded.
"""
from __future__ import annotations

import numpy as np

from .. import registry
from .._validate import check_shape
from ..fans import axis_fans, check_axes, resolve_fans
from ..sample import sample

_FUNC = "fastinit.interop.jax_init"


def _jax():
    try:
        import jax
    except ImportError:
        raise ImportError("fastinit.interop.jax_init needs JAX: pip install 'jax[cpu]' "
                          "(or pip install 'fastinit[jax]').") from None
    return jax


def _mix(z: int) -> int:
    """splitmix64's finalizer (Steele, Lea & Flood 2014; Vigna's constants): xorshifts and odd
    multiplications, so a bijection of 64-bit numbers, with mix(0) = 0."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % 2**64
    return z ^ (z >> 31)


def seed_from_words(words) -> int:
    """fastinit's seed from a key's raw uint32 words: pairs (hi, lo) as p = hi << 32 | lo; the
    first pair, then seed = p + mix(seed - p) mod 2**64 for each further one (one pair: the
    pair itself; a repeated pair: the pair itself)."""
    w = np.asarray(words)
    if w.ndim != 1 or w.size == 0 or w.size % 2 or w.dtype != np.uint32:
        raise ValueError(f"The 'key' parameter of {_FUNC}'s initializer must be one JAX PRNG "
                         f"key (an even number of uint32 words). Got key data of shape "
                         f"{w.shape} and dtype {w.dtype}.")
    pairs = [(hi << 32) | lo for hi, lo in zip(w[0::2].tolist(), w[1::2].tolist())]
    seed = pairs[0]
    for p in pairs[1:]:
        seed = (p + _mix((seed - p) % 2**64)) % 2**64
    return seed


def key_seed(key) -> int:
    """The fastinit seed a (concrete) JAX PRNG key draws with, typed (``jax.random.key``) or
    raw (``jax.random.PRNGKey``). ``key_seed(jax.random.key(s)) == s`` for 0 <= s < 2**32."""
    jax = _jax()
    return seed_from_words(np.asarray(_key_data(jax, key)))


def _key_data(jax, key):
    try:
        return jax.random.key_data(key)
    except (TypeError, ValueError):
        raise TypeError(f"The 'key' parameter of {_FUNC}'s initializer must be a JAX PRNG key "
                        f"(jax.random.key(seed) or jax.random.PRNGKey(seed)). Got "
                        f"{type(key).__name__}.") from None


def _float_dtype(jax, dtype):
    try:
        dt = np.dtype(jax.dtypes.canonicalize_dtype(dtype))
    except TypeError:
        dt = None
    if dt is None or not jax.numpy.issubdtype(dt, jax.numpy.floating):
        raise TypeError(f"The 'dtype' parameter of {_FUNC}'s initializer must be a floating "
                        f"dtype (float32, float64, float16, bfloat16). Got {dtype!r}.")
    return dt


def jax_init(scheme, *, fan_in=None, fan_out=None, in_axis=-2, out_axis=-1, batch_axis=(),
             **params):
    """A JAX initializer ``init(key, shape, dtype=jnp.float32)`` drawing ``scheme``.

    ``scheme`` and ``params`` as for ``fastinit.sample`` (a name, an alias or
    ``fastinit.spec(...)``). The fans of the shape are JAX's variance_scaling's: ``in_axis``,
    ``out_axis`` and ``batch_axis`` (each an axis or a sequence of axes, negative counting from
    the end) name the input, output and ignored axes, the rest is receptive field (fans as
    ``fastinit.fans.axis_fans``); with the defaults (-2, -1, ()) they are the keras layout's.
    A 1-D shape has no fans at the defaults: a scheme using fans raises, as JAX's do, unless
    its axes are named (``in_axis=0, out_axis=()``: fan_in = shape[0], fan_out = 1) or the
    fans it uses are given (``fan_in=`` for a bias of torch_linear_bias). An OIHW kernel takes
    ``in_axis=1, out_axis=0``, a stack of dense kernels ``batch_axis=0``. ``fan_in`` /
    ``fan_out`` override the fans of the shape. The weights equal ``fastinit.sample(scheme,
    shape, seed=key_seed(key), layout="keras", fan_in=..., fan_out=...)`` with those fans.

    >>> import jax, fastinit
    >>> init = fastinit.interop.jax_init("glorot_uniform")
    >>> init(jax.random.key(0), (3, 2)).shape
    (3, 2)
    """
    jax = _jax()
    jnp = jax.numpy
    s, resolved = registry.resolve(scheme, params, _FUNC)
    spec = registry.InitSpec(s.name, tuple(resolved.items()))
    where = f"{_FUNC}({str(spec)!r})"
    axes = {name: check_axes(a, name, _FUNC) for name, a in (
        ("in_axis", in_axis), ("out_axis", out_axis), ("batch_axis", batch_axis))}
    named = [n for n, a in axes.items() if a != {"in_axis": -2, "out_axis": -1,
                                                  "batch_axis": ()}[n]]
    said = " and ".join(repr(n) for n in named)
    if named and fan_in is not None and fan_out is not None:
        raise ValueError(f"{_FUNC}: {said} set{'s' * (len(named) == 1)} the fans of the shape, "
                         f"and fan_in and fan_out are both given: "
                         f"{'it' if len(named) == 1 else 'they'} would do nothing.")
    if named and not s.needs_fans:
        raise ValueError(f"{_FUNC}: {said} set{'s' * (len(named) == 1)} the fans of the shape, "
                         f"and scheme {s.name!r} uses none: "
                         f"{'it' if len(named) == 1 else 'they'} would do nothing.")

    def init(key, shape, dtype=jnp.float32):
        shape = check_shape(shape, "shape", where)
        dt = _float_dtype(jax, dtype)
        drawn = np.float64 if dt == np.float64 else np.float32
        fi, fo, layout = fan_in, fan_out, "keras"
        if not named and len(shape) == 1 and s.needs_fans:     # no fans, as in JAX: only the
            layout = "torch"                                    # overrides (a 1-D draw is the
            if fi is None and fo is None:                       # same in either layout)
                raise ValueError(
                    f"{where}: the 1-D shape {shape!r} has no fans at the default in_axis=-2, "
                    f"out_axis=-1 (jax.nn.initializers raise here too): name its axis as for "
                    f"JAX (in_axis=0, out_axis=() gives fan_in = {shape[0]}, fan_out = 1; "
                    f"in_axis=(), out_axis=0 the reverse), or pass fan_in= and fan_out=.")
        if named:                                   # JAX's fans; an override still wins
            fans = axis_fans(shape, *axes.values(), func=where)
            fi, fo = (fans[0] if fi is None else fi), (fans[1] if fo is None else fo)
        fi, fo = resolve_fans(shape, layout, fi, fo, func=where, scheme=s.name,
                              required=s.needs_fans)
        s.family_args(resolved, fi, fo, where)      # parameters that depend on the fans

        def host(words):
            w = sample(spec, shape, seed=seed_from_words(words), dtype=drawn, layout=layout,
                       fan_in=fi, fan_out=fo)
            return w.astype(dt, copy=False)

        words = _key_data(jax, key)
        if isinstance(words, jax.core.Tracer):      # under jit / vmap: draw on the host
            return jax.pure_callback(host, jax.ShapeDtypeStruct(shape, dt), words,
                                     vmap_method="sequential")
        return jnp.asarray(host(np.asarray(words)), dtype=dt)

    init.__name__ = init.__qualname__ = f"jax_init({spec})"
    return init
