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
    """Pairs p1, p2 fold as p2 + mix(p1 - p2), mix splitmix64's finalizer: with p2 = 0 and
    p1 = 0x9E3779B97F4A7C15 (splitmix64's increment) the seed is splitmix64's published first
    output from state 0, and its second from p1 = 2 * 0x9E3779B97F4A7C15."""
    for s in (0, 1, 2**32 - 1):          # an rbg key(s) repeats its pair: seed s, as threefry
        assert interop.key_seed(jax.random.key(s, impl="rbg")) == s
    seed = interop.jax.seed_from_words
    assert seed(np.array([0x9E3779B9, 0x7F4A7C15, 0, 0], dtype=np.uint32)) == 0xE220A8397B1DCDAF
    assert seed(np.array([0x3C6EF372, 0xFE94F82A, 0, 0], dtype=np.uint32)) == 0x6E789E6AA1B965F4
    assert seed(np.array([1, 2, 3, 4], dtype=np.uint32)) == 11946184274458876032


@pytest.mark.parametrize("impl", ["rbg", "unsafe_rbg"])
def test_rbg_keys_of_different_seeds_draw_different_weights(impl):
    # an rbg key repeats its pair of words, (0, s, 0, s): XOR-ed, every seed and split was 0
    keys = [jax.random.key(s, impl=impl) for s in (1, 2)] + list(
        jax.random.split(jax.random.key(5, impl=impl), 2))
    seeds = [interop.key_seed(k) for k in keys]
    assert len(set(seeds)) == 4 and 0 not in seeds
    init = interop.jax_init("he_normal")
    assert not np.array_equal(np.asarray(init(keys[0], (3, 3))), np.asarray(init(keys[1], (3, 3))))


@pytest.mark.parametrize("impl", ["rbg", "unsafe_rbg"])
def test_rbg_keys_whose_pairs_differ_in_the_top_bit_draw_different_weights(impl):
    """An rbg key of the form (hi, lo, hi, lo) repeats its pair p = hi << 32 | lo; folded as
    seed * FOLD + pair it gave p * (FOLD + 1) mod 2**64 with FOLD + 1 even, so p and p + 2**63
    (hi and hi + 2**31) had one seed and drew the same weights."""
    keys = [jax.random.wrap_key_data(np.array([hi, 5, hi, 5], dtype=np.uint32), impl=impl)
            for hi in (0, 2**31)]
    assert interop.key_seed(keys[0]) != interop.key_seed(keys[1])
    init = interop.jax_init("he_normal")
    assert not np.array_equal(np.asarray(init(keys[0], (3, 3))), np.asarray(init(keys[1], (3, 3))))
    rng = np.random.default_rng(0)
    pairs = [int(p) for p in rng.integers(0, 2**64, 500, dtype=np.uint64)]
    pairs += [p ^ (1 << b) for p in pairs[:20] for b in range(64)] + [0, 2**63, 2**64 - 1]
    words = [np.array([p >> 32, p & 0xFFFFFFFF] * 2, dtype=np.uint32) for p in set(pairs)]
    assert len({interop.jax.seed_from_words(w) for w in words}) == len(set(pairs))


def test_threefry_keys_keep_their_seeds():
    """A threefry key's one pair is its seed, hi << 32 | lo, split keys (hi != 0) included."""
    key = jax.random.split(jax.random.key(7))[0]
    hi, lo = (int(w) for w in np.asarray(jax.random.key_data(key)))
    assert (hi, lo) == (3625411723, 1954958720)
    assert interop.key_seed(key) == (hi << 32) | lo == 15571024786774969728


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


AXES_CASES = [     # shape, axes: each as jax.nn.initializers.variance_scaling takes them
    ((3, 3, 16, 32), dict(in_axis=-2, out_axis=-1)),                 # HWIO, said out loud
    ((3, 3, 16, 32), dict(in_axis=(0, 1, 2), out_axis=-1)),          # HWIO, whole patch in
    ((32, 16, 3, 3), dict(in_axis=1, out_axis=0)),                   # OIHW (PyTorch's order)
    ((8, 64, 32), dict(batch_axis=-3)),                               # 8 stacked dense kernels
    ((8, 64, 32), dict(in_axis=1, out_axis=2, batch_axis=(0,)))]


@pytest.mark.parametrize("shape, axes", AXES_CASES)
@pytest.mark.parametrize("scheme, theirs", [("he_normal", "he_normal"),
                                            ("glorot_uniform", "glorot_uniform")])
def test_axes_give_jax_fans_and_jax_distribution(shape, axes, scheme, theirs):
    """jax_init had no in_axis / out_axis / batch_axis (variance_scaling's): a conv kernel in
    another axis order or a stack of kernels was drawn with the keras fans of its last two
    axes. The fans are now JAX's, and the draw is JAX's in distribution."""
    stats = pytest.importorskip("scipy.stats")
    from jax._src.nn.initializers import _compute_fans
    fan_in, fan_out = _compute_fans(shape, **axes)
    ours = np.asarray(interop.jax_init(scheme, **axes)(jax.random.key(2), shape))
    jaxs = np.asarray(getattr(jax.nn.initializers, theirs)(**axes)(jax.random.key(3), shape))
    assert ours.shape == jaxs.shape == shape and ours.dtype == jaxs.dtype
    np.testing.assert_array_equal(ours, fastinit.sample(scheme, shape, seed=2, layout="keras",
                                                        fan_in=fan_in, fan_out=fan_out))
    assert stats.ks_2samp(ours.ravel(), jaxs.ravel()).pvalue > 1e-3     # fixed keys
    np.testing.assert_allclose(ours.std(), jaxs.std(), rtol=0.05)


def test_default_axes_keep_the_keras_fans():
    init = interop.jax_init("he_normal", in_axis=-2, out_axis=-1, batch_axis=())
    np.testing.assert_array_equal(np.asarray(init(jax.random.key(4), (3, 3, 16, 32))),
                                  fastinit.sample("he_normal", (3, 3, 16, 32), seed=4,
                                                  layout="keras"))
    jitted = jax.jit(lambda k: interop.jax_init("he_normal", batch_axis=0)(k, (4, 6, 5)))
    np.testing.assert_array_equal(np.asarray(jitted(jax.random.key(4))), fastinit.sample(
        "he_normal", (4, 6, 5), seed=4, layout="keras", fan_in=6, fan_out=5))


def test_jax_init_axis_errors():
    where = r"fastinit.interop.jax_init\('he_normal'\)"
    with pytest.raises(TypeError, match=r"^The 'in_axis' parameter of fastinit.interop.jax_init "
                                        r"must be an integer or a sequence of integers \(axes of "
                                        r"the weight\). Got 'x' of type str instead.$"):
        interop.jax_init("he_normal", in_axis="x")
    with pytest.raises(TypeError, match=r"^The 'batch_axis' parameter .* Got \(0, 1.5\) of type "
                                        r"tuple instead.$"):
        interop.jax_init("he_normal", batch_axis=(0, 1.5))
    with pytest.raises(ValueError, match=r"^The 'out_axis' parameter of " + where + r" must name "
                                         r"axes of the 3-D shape \(4, 6, 5\), -3 to 2. Got 3 "
                                         r"instead.$"):
        interop.jax_init("he_normal", out_axis=3)(jax.random.key(0), (4, 6, 5))
    with pytest.raises(ValueError, match=r"^The 'batch_axis' parameter of " + where + r" names "
                                         r"axis 1 of the shape \(4, 6, 5\), which 'in_axis' "
                                         r"already names: an axis counts once. Got -2.$"):
        interop.jax_init("he_normal", in_axis=1, batch_axis=-2)(jax.random.key(0), (4, 6, 5))
    with pytest.raises(ValueError, match=r"^The 'in_axis' parameter of " + where + r" must name "
                                         r"axes of the 1-D shape \(5,\), -1 to 0. Got -2 "
                                         r"instead.$"):
        interop.jax_init("he_normal", in_axis=-2, out_axis=0)(jax.random.key(0), (5,))
    with pytest.raises(ValueError, match=r"^fastinit.interop.jax_init: 'in_axis' sets the fans "
                                         r"of the shape, and fan_in and fan_out are both given: "
                                         r"it would do nothing.$"):
        interop.jax_init("he_normal", fan_in=3, fan_out=4, in_axis=0)
    with pytest.raises(ValueError, match=r"^fastinit.interop.jax_init: 'out_axis' and "
                                         r"'batch_axis' set the fans of the shape, and scheme "
                                         r"'orthogonal' uses none: they would do nothing.$"):
        interop.jax_init("orthogonal", out_axis=0, batch_axis=1)


@pytest.mark.parametrize("scheme", ["he_normal", "glorot_normal", "lecun_uniform"])
def test_a_1d_shape_has_no_fans_at_the_default_axes_as_in_jax(scheme):
    """jax.nn.initializers raise for a 1-D shape at the default in_axis=-2; jax_init drew it
    with fan_in = fan_out = shape[0] (Keras's fans), so the same code gave weights under
    fastinit and an error under JAX. Now it raises too, saying how to draw one: name the axes
    (the fans are then JAX's) or give the fans."""
    with pytest.raises(ValueError, match=r"1-dimensional weights tensor with default in_axis"):
        getattr(jax.nn.initializers, scheme)()(jax.random.key(0), (5,))
    message = (r"^fastinit.interop.jax_init\('" + scheme + r"'\): the 1-D shape \(5,\) has no "
               r"fans at the default in_axis=-2, out_axis=-1 \(jax.nn.initializers raise "
               r"here too\): name its axis as for JAX \(in_axis=0, out_axis=\(\) gives "
               r"fan_in = 5, fan_out = 1; in_axis=\(\), out_axis=0 the reverse\), or pass "
               r"fan_in= and fan_out=\.")
    for init in (interop.jax_init(scheme), interop.jax_init(scheme, in_axis=-2, out_axis=-1)):
        with pytest.raises(ValueError, match=message + "$"):
            init(jax.random.key(0), (5,))
        with pytest.raises(ValueError, match=message):     # traced: the same error (JAX adds a
            jax.jit(lambda k: init(k, (5,)))(jax.random.key(0))     # note on its traceback)
    from jax._src.nn.initializers import _compute_fans
    for axes in (dict(in_axis=0, out_axis=()), dict(in_axis=(), out_axis=0)):
        fan_in, fan_out = _compute_fans((5,), **axes)
        jax.nn.initializers.variance_scaling(1.0, "fan_in", "normal", **axes)(
            jax.random.key(0), (5,))                                   # JAX draws it too
        np.testing.assert_array_equal(
            np.asarray(interop.jax_init(scheme, **axes)(jax.random.key(1), (5,))),
            fastinit.sample(scheme, (5,), seed=1, layout="keras", fan_in=fan_in,
                            fan_out=fan_out))
    np.testing.assert_array_equal(                                     # both fans: no shape's
        np.asarray(interop.jax_init(scheme, fan_in=3, fan_out=4)(jax.random.key(1), (5,))),
        fastinit.sample(scheme, (5,), seed=1, layout="keras", fan_in=3, fan_out=4))
    w = jax.nn.initializers.normal()(jax.random.key(0), (5,))        # no fans, no error
    assert w.shape == interop.jax_init("normal")(jax.random.key(0), (5,)).shape == (5,)


def test_a_1d_shape_takes_the_one_fan_its_scheme_uses():
    """At the default axes a 1-D shape's fans are the ones given: fan_in= alone serves a
    scheme that uses fan_in only (a PyTorch Linear's bias, he_normal); a scheme that needs
    fan_out too is refused (glorot_normal took fan_out = shape[0] without a word)."""
    bias = interop.jax_init("torch_linear_bias", fan_in=784)(jax.random.key(2), (256,))
    np.testing.assert_array_equal(np.asarray(bias), fastinit.sample(
        "torch_linear_bias", (256,), seed=2, layout="keras", fan_in=784))
    np.testing.assert_array_equal(
        np.asarray(interop.jax_init("he_normal", fan_in=7)(jax.random.key(2), (5,))),
        fastinit.sample("he_normal", (5,), seed=2, layout="keras", fan_in=7, fan_out=1))
    with pytest.raises(ValueError, match=r"mode 'fan_avg' needs fan_in and fan_out; this shape "
                                         r"has no fans, so pass them explicitly"):
        interop.jax_init("glorot_normal", fan_in=7)(jax.random.key(2), (5,))
