"""JAX / Flax interop: jax_init draws exactly fastinit.sample(..., layout="keras") for the seed its
key maps to, inside Flax modules, under jit and vmap; in distribution it is JAX's he_normal."""
import sys

import numpy as np
import pytest

import fastinit
from fastinit import interop

jax = pytest.importorskip("jax")
jnp = jax.numpy


@pytest.mark.parametrize("seed", [0, 1, 12345, 2**32 - 1])
def test_a_key_made_from_s_draws_seed_s(seed):
    init = interop.jax_init("he_normal")
    w = init(jax.random.key(seed), (7, 5))
    assert w.shape == (7, 5) and w.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(w), fastinit.sample("he_normal", (7, 5), seed=seed,
                                                                 layout="keras"))
    assert interop.key_seed(jax.random.key(seed)) == seed
    assert interop.key_seed(jax.random.PRNGKey(seed)) == seed     # raw uint32 keys too


def test_key_words_fold_to_one_seed():
    assert interop.key_seed(jax.random.key(0, impl="rbg")) == 0
    words = np.array([1, 2, 3, 4], dtype=np.uint32)
    fold = interop.jax.FOLD
    assert interop.jax.seed_from_words(words) == (((1 << 32) | 2) * fold + ((3 << 32) | 4)) % 2**64


@pytest.mark.parametrize("impl", ["rbg", "unsafe_rbg"])
def test_rbg_keys_of_different_seeds_draw_different_weights(impl):
    # an rbg key repeats its pair of words, (0, s, 0, s): XOR-ed, every seed and split was 0
    keys = [jax.random.key(s, impl=impl) for s in (1, 2)] + list(
        jax.random.split(jax.random.key(5, impl=impl), 2))
    seeds = [interop.key_seed(k) for k in keys]
    assert len(set(seeds)) == 4 and 0 not in seeds
    init = interop.jax_init("he_normal")
    assert not np.array_equal(np.asarray(init(keys[0], (3, 3))), np.asarray(init(keys[1], (3, 3))))


@pytest.mark.parametrize("key", [3, "key", None])
def test_a_key_that_is_not_a_prng_key_is_named(key):
    message = r"^The 'key' parameter of fastinit.interop.jax_init's initializer must be a JAX PRNG"
    with pytest.raises(TypeError, match=message + r".* Got (int|str|NoneType).$"):
        interop.jax_init("he_normal")(key, (3, 3))
    with pytest.raises(TypeError, match=message):
        interop.key_seed(key)


def test_jit_vmap_and_dtypes_draw_the_same_values():
    init = interop.jax_init("kaiming_uniform", a=0.1, mode="fan_out")
    key = jax.random.key(3)
    eager = np.asarray(init(key, (4, 3, 6, 5)))                     # a conv kernel (*k, in, out)
    np.testing.assert_array_equal(eager, fastinit.sample(fastinit.spec(
        "kaiming_uniform", a=0.1, mode="fan_out"), (4, 3, 6, 5), seed=3, layout="keras"))
    jitted = jax.jit(lambda k: init(k, (4, 3, 6, 5)))(key)
    np.testing.assert_array_equal(np.asarray(jitted), eager)
    keys = jax.random.split(key, 3)
    batch = jax.vmap(lambda k: init(k, (4, 3, 6, 5)))(keys)
    for i in range(3):
        np.testing.assert_array_equal(np.asarray(batch[i]), np.asarray(init(keys[i],
                                                                            (4, 3, 6, 5))))
    half = init(key, (4, 3, 6, 5), jnp.bfloat16)
    assert half.dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(half), eager.astype(jnp.bfloat16))


def _recording(init, keys):
    def record(key, shape, dtype=jnp.float32):
        keys.append(key)
        return init(key, shape, dtype)
    return record


def test_flax_linen_dense_kernel_is_fastinit_sample_bitwise():
    linen = pytest.importorskip("flax.linen")
    keys = []
    scheme = fastinit.spec("orthogonal", gain=1.5)
    model = linen.Dense(9, kernel_init=_recording(interop.jax_init(scheme), keys))
    x = jnp.ones((2, 6))
    params = model.init(jax.random.key(0), x)
    kernel = np.asarray(params["params"]["kernel"])
    assert kernel.shape == (6, 9)
    np.testing.assert_array_equal(kernel, fastinit.sample(scheme, (6, 9), layout="keras",
                                                          seed=interop.key_seed(keys[0])))
    jitted = jax.jit(model.init)(jax.random.key(0), x)             # Flax's usual way
    np.testing.assert_array_equal(np.asarray(jitted["params"]["kernel"]), kernel)
    other = model.init(jax.random.key(1), x)
    assert not np.array_equal(np.asarray(other["params"]["kernel"]), kernel)


def test_flax_nnx_linear_kernel_is_fastinit_sample_bitwise():
    nnx = pytest.importorskip("flax.nnx")
    keys = []
    layer = nnx.Linear(6, 4, kernel_init=_recording(interop.jax_init("lecun_normal"), keys),
                       rngs=nnx.Rngs(0))
    kernel = np.asarray(layer.kernel[...])
    np.testing.assert_array_equal(kernel, fastinit.sample("lecun_normal", (6, 4), layout="keras",
                                                          seed=interop.key_seed(keys[0])))


def test_he_normal_matches_jax_in_distribution():
    stats = pytest.importorskip("scipy.stats")
    shape = (256, 512)                     # fan_in 256: std sqrt(2/256), truncated at 2 std
    ours = np.asarray(interop.jax_init("he_normal")(jax.random.key(0), shape)).ravel()
    theirs = np.asarray(jax.nn.initializers.he_normal()(jax.random.key(1), shape)).ravel()
    # fixed keys: the p-value is one number, not a coin toss (here 0.95; untruncated 4e-16)
    assert stats.ks_2samp(ours, theirs).pvalue > 1e-3
    untruncated = np.asarray(jax.nn.initializers.normal(np.sqrt(2 / 256))(
        jax.random.key(1), shape)).ravel()
    assert stats.ks_2samp(ours, untruncated).pvalue < 1e-6       # the test can tell them apart


def test_jax_init_errors():
    with pytest.raises(ValueError, match=r"The 'scheme' parameter of fastinit.interop.jax_init must be a "
                                         r"registered scheme.*Got 'he_norml' instead. Did you "
                                         r"mean 'he_normal'\?"):
        interop.jax_init("he_norml")
    with pytest.raises(TypeError, match=r"fastinit.interop.jax_init got an unknown parameter "
                                        r"'gian' for scheme 'orthogonal'"):
        interop.jax_init("orthogonal", gian=2.0)
    init = interop.jax_init("he_normal")
    with pytest.raises(TypeError, match=r"The 'dtype' parameter of fastinit.interop.jax_init's "
                                        r"initializer must be a floating dtype .*Got .*int32"):
        init(jax.random.key(0), (3, 3), jnp.int32)
    with pytest.raises(ValueError, match=r"'shape' parameter of fastinit.interop.jax_init\("
                                         r"'he_normal'\) must have positive dimensions"):
        init(jax.random.key(0), (3, 0))
    with pytest.raises(ValueError, match=r"must be one JAX PRNG key \(an even number of uint32 "
                                         r"words\). Got key data of shape \(2, 2\)"):
        init(jax.random.split(jax.random.key(0)), (3, 3))
    with pytest.raises(ValueError, match=r"orthogonal weights need at least 2 dimensions"):
        interop.jax_init("orthogonal")(jax.random.key(0), (5,))


def test_without_jax_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "jax", None)
    with pytest.raises(ImportError, match=r"fastinit.interop.jax_init needs JAX: pip install "
                                          r"'jax\[cpu\]' \(or pip install 'fastinit\[jax\]'\)"):
        interop.jax_init("he_normal")
