"""The scheme registry: declared as data, validated when declared, extensible."""
import math

import numpy as np
import pytest

import fastinit
from fastinit import Param, Scheme

REQUIRED = ["zeros", "ones", "constant", "uniform", "normal", "trunc_normal", "trunc_normal_std",
            "trunc_normal_corrected", "xavier_uniform", "xavier_normal", "glorot_uniform",
            "glorot_normal", "kaiming_uniform", "kaiming_normal", "he_uniform", "he_normal",
            "lecun_uniform", "lecun_normal", "variance_scaling", "orthogonal", "identity",
            "dirac", "delta_orthogonal", "sparse", "ZerO", "torch_linear", "torch_linear_bias",
            "keras_dense", "keras_dense_bias", "flax_dense", "flax_dense_bias"]


def test_every_required_scheme_is_listed_with_formula_and_reference():
    listed = fastinit.schemes()
    for name in REQUIRED:
        s = listed[name]
        assert s.formula and s.reference, name


def test_framework_semantics_in_names():
    """PyTorch names are untruncated; Keras/JAX names are truncated and corrected."""
    args = lambda n: fastinit.get_scheme(n).family_args(
        fastinit.get_scheme(n).defaults(), 10.0, 10.0)
    assert args("xavier_normal")["distribution"] == "normal"
    assert args("kaiming_normal")["distribution"] == "normal"
    for n in ("glorot_normal", "he_normal", "lecun_normal", "flax_dense"):
        assert args(n)["distribution"] == "truncated_normal"
    assert fastinit.get_scheme("torch.xavier_normal").name == "xavier_normal"
    assert fastinit.get_scheme("keras.glorot_normal").name == "glorot_normal"
    assert fastinit.get_scheme("jax.he_normal").name == "he_normal"


def test_presets():
    assert fastinit.get_scheme("torch_linear").bias == "torch_linear_bias"
    assert fastinit.get_scheme("keras_dense").bias == "keras_dense_bias"
    a = fastinit.get_scheme("torch_linear")
    args = a.family_args({}, 50.0, 7.0)
    # Var = 1 / (3 fan_in): U(+-1/sqrt(fan_in))
    assert math.isclose(math.sqrt(3 * args["scale"] / 50.0), 1 / math.sqrt(50.0), rel_tol=1e-14)
    k = fastinit.sample("keras_dense", (30, 20), seed=0, layout="keras", dtype=np.float64)
    g = fastinit.sample("glorot_uniform", (30, 20), seed=0, layout="keras", dtype=np.float64)
    np.testing.assert_array_equal(k, g)


def test_user_scheme_registration_and_use():
    s = Scheme("test_half_he", "variance_scaling", params=(Param("scale", 1.0, "positive"),),
               fixed=dict(mode="fan_in", distribution="normal"),
               formula="std = sqrt(scale / fan_in)", reference="test")
    fastinit.register_scheme(s, replace=True)
    assert "test_half_he" in fastinit.schemes()
    w = fastinit.sample("test_half_he", (400, 100), seed=1, dtype=np.float64, scale=4.0)
    assert abs(w.std() - 0.2) < 0.005
    with pytest.raises(ValueError, match="already exists. Pass replace=True"):
        fastinit.register_scheme(s)
    with pytest.raises(ValueError, match="already taken by scheme 'he_normal'"):
        fastinit.register_scheme(Scheme("test_x", "constant", fixed=dict(value=1.0),
                                        aliases=("keras.he_normal",)))


def test_custom_inverse_cdf_scheme():
    """A user family from uniforms: Laplace by inverse CDF, scaled by fan_in."""
    def laplace(u, fan_in, fan_out, b):
        return -b / math.sqrt(fan_in) * np.sign(u - 0.5) * np.log1p(-2 * np.abs(u - 0.5))
    fastinit.register_scheme(Scheme("test_laplace", "custom", params=(Param("b", 1.0, "positive"),),
                                    fixed=dict(transform=laplace)), replace=True)
    w = fastinit.sample("test_laplace", (200, 100), seed=3, n=2, dtype=np.float64, b=2.0)
    from scipy import stats
    assert stats.kstest(w[0].ravel(), stats.laplace(scale=0.2).cdf).pvalue > 1e-3
    np.testing.assert_array_equal(w[1], fastinit.sample("test_laplace", (200, 100), seed=3,
                                                        start=1, dtype=np.float64, b=2.0))


@pytest.mark.parametrize("transform, dtype, match", [
    (lambda u, fi, fo: u * 1e300, np.float32, r"returned NaN or infinite values, or values "
                                              r"beyond float32's range \(use float64\)"),
    (lambda u, fi, fo: u / 0.0, np.float64, "returned NaN or infinite values"),
    (lambda u, fi, fo: u + 1j, np.float64, r"returned shape \(1, 3, 4\), dtype complex128; "
                                           r"it must return real numbers in the shape of its "
                                           r"input u, \(1, 3, 4\)"),
    (lambda u, fi, fo: np.full(u.shape, "a"), np.float32, r"returned .*dtype <U1; it must return"),
    (lambda u, fi, fo: u[0], np.float32, r"returned shape \(3, 4\), dtype float64; it must"),
])
def test_custom_transform_output_is_checked(transform, dtype, match):
    """Finite float64 values past float32's range came back as inf weights (a RuntimeWarning
    at most), complex ones lost their imaginary part, strings met NumPy's isfinite."""
    fastinit.register_scheme(Scheme("test_bad_transform", "custom",
                                    fixed=dict(transform=transform)), replace=True)
    with pytest.raises(ValueError, match=r"Scheme 'test_bad_transform' in fastinit.sample: "
                                         r"the custom transform " + match):
        with np.errstate(divide="ignore", invalid="ignore"):
            fastinit.sample("test_bad_transform", (3, 4), seed=0, dtype=dtype)


def test_declaration_is_validated():
    with pytest.raises(ValueError, match="'family' parameter.*Did you mean 'uniform'"):
        Scheme("bad", "unifrom")
    with pytest.raises(ValueError, match=r"Missing \['high'\]"):
        Scheme("bad", "uniform", fixed=dict(low=0.0))
    with pytest.raises(ValueError, match=r"unknown \['hi'\]"):
        Scheme("bad", "uniform", fixed=dict(low=0.0, high=1.0, hi=2.0))
    with pytest.raises(ValueError, match="'low' must be less than 'high'"):
        Scheme("bad", "uniform", fixed=dict(low=1.0, high=0.0))
    with pytest.raises(ValueError, match="'mode' parameter.*Did you mean 'fan_in'"):
        Scheme("bad", "variance_scaling", fixed=dict(scale=1.0, mode="fanin",
                                                      distribution="normal"))
    with pytest.raises(ValueError, match="reserved parameter"):
        Scheme("bad", "constant", params=(Param("seed", 1.0),), fixed={})
    with pytest.raises(ValueError, match="identifier"):
        Scheme("bad name", "constant", fixed=dict(value=0.0))
    with pytest.raises(ValueError, match="'kind' parameter.*Did you mean 'positive'"):
        Param("x", 1.0, "postive")
    with pytest.raises(ValueError, match=r"interval \(0.0, inf\)"):
        Param("x", -1.0, "positive")
    with pytest.raises(TypeError, match="must be a fastinit.Scheme"):
        fastinit.register_scheme("he_normal")


def test_the_scheme_table_lists_every_builtin_scheme():
    import pathlib
    root = pathlib.Path(__file__).parents[1]
    table = (root / "docs" / "schemes.md").read_text()      # the README links it
    assert "(docs/schemes.md)" in (root / "README.md").read_text()
    from fastinit.builtin_schemes import BUILTIN
    for s in BUILTIN:
        assert f"| `{s.name}" in table, s.name


def test_malformed_declaration_fields_fail_where_written():
    """aliases="myalias" was split into the one-letter aliases ('m', 'y', 'a', ...); params=
    Param(...), derive=3 and a derive returning no dict were bare Python errors; bias=3 and
    uses_fans="yes" passed; an unregistered bias named fastinit.get_scheme when an MLP drew."""
    one = dict(fixed=dict(value=1.0))
    with pytest.raises(TypeError, match=r"'aliases' parameter of fastinit.Scheme\('t'\) must "
                                        r"be a tuple of names \(str\). Got 'myalias'"):
        Scheme("t", "constant", aliases="myalias", **one)
    with pytest.raises(TypeError, match=r"'params' parameter of fastinit.Scheme\('t'\) must be "
                                        r"a tuple of fastinit.Param objects"):
        Scheme("t", "constant", params=Param("value", 1.0))
    with pytest.raises(TypeError, match=r"'derive' parameter of fastinit.Scheme\('t'\) must be "
                                        r"callable as derive\(params, fan_in, fan_out\)"):
        Scheme("t", "constant", derive=3)
    with pytest.raises(TypeError, match=r"Scheme 't': its derive\(params, fan_in, fan_out\) "
                                        r"must return a dict of its family's arguments. Got 5"):
        Scheme("t", "constant", derive=lambda p, fi, fo: 5)
    with pytest.raises(TypeError, match=r"'bias' parameter of fastinit.Scheme\('t'\) must be a "
                                        r"scheme name \(str\) or None. Got 3"):
        Scheme("t", "constant", bias=3, **one)
    with pytest.raises(TypeError, match=r"'uses_fans' parameter of fastinit.Scheme\('t'\)"):
        Scheme("t", "constant", uses_fans="yes", **one)
    assert Scheme("t", "constant", aliases=["t.a"], **one).aliases == ("t.a",)
    fastinit.register_scheme(Scheme("test_bias_typo", "constant", bias="zeroes", **one),
                             replace=True)
    with pytest.raises(ValueError, match=r"'bias' parameter of fastinit.Scheme\("
                                         r"'test_bias_typo'\) must be a registered scheme.*"
                                         r"Got 'zeroes' instead. Did you mean 'zeros'\?"):
        fastinit.MLP([3, 2], init="test_bias_typo")


def test_replace_does_not_take_another_schemes_names():
    """replace=True let an alias "he_normal" be registered that never resolved (the scheme
    he_normal wins the lookup), and let a scheme take the alias "eye" from identity, which
    still listed it and lost it for good when the new scheme was replaced again."""
    for new, taken, owner in ((Scheme("test_steal", "constant", fixed=dict(value=2.0),
                                      aliases=("he_normal",)), "he_normal", "he_normal"),
                              (Scheme("eye", "constant", fixed=dict(value=2.0)), "eye",
                               "identity")):
        with pytest.raises(ValueError, match=rf"the name '{taken}' is already taken by scheme "
                                             rf"'{owner}'. Choose another \(replace=True "
                                             rf"redefines a scheme of the same name"):
            fastinit.register_scheme(new, replace=True)
    assert fastinit.get_scheme("eye").name == "identity"
    assert fastinit.get_scheme("he_normal").family == "variance_scaling"
    assert "test_steal" not in fastinit.schemes()
    with pytest.raises(TypeError, match="'replace' parameter of fastinit.register_scheme"):
        fastinit.register_scheme(Scheme("test_r", "constant", fixed=dict(value=1.0)),
                                 replace="yes")


def test_spec_of_a_spec_adds_to_it():
    """fastinit.spec(fastinit.spec(...), ...) was refused with "must be a scheme name (str) or
    a fastinit.InitSpec. Got InitSpec(...)", as was fastinit.get_scheme(a spec)."""
    base = fastinit.spec("kaiming_normal", a=0.2)
    assert fastinit.spec(base, mode="fan_out") == fastinit.spec("kaiming_normal", a=0.2,
                                                                mode="fan_out")
    assert fastinit.spec(base) == base
    assert fastinit.spec(("kaiming_normal", {"a": 0.2})) == base
    with pytest.raises(TypeError, match=r"fastinit.spec got parameter\(s\) \['a'\] both in the "
                                        r"spec and as keyword arguments"):
        fastinit.spec(base, a=0.3)
    with pytest.raises(ValueError, match=r"'mode' parameter of fastinit.spec.*Got 'fan_avg'"):
        fastinit.spec(base, mode="fan_avg")
    assert fastinit.get_scheme(base).name == "kaiming_normal"


def test_initspec_built_directly_checks_its_parts():
    """InitSpec("kaiming_normal", (0.1,)) met dict()'s "cannot convert dictionary update
    sequence element #0", a str of params dict()'s ValueError; a dict of params made an
    unhashable spec, and pairs in another order an unequal one."""
    for params in ((0.1,), "ab", ((1, 0.1),), (("a", 0.1), ("a", 0.2))):
        with pytest.raises(TypeError, match=r"'params' parameter of fastinit.InitSpec must be "
                                            r"\(name, value\) pairs with distinct names"):
            fastinit.InitSpec("kaiming_normal", params)
    with pytest.raises(TypeError, match=r"'scheme' parameter of fastinit.InitSpec must be a "
                                        r"scheme name \(str\). Got 3"):
        fastinit.InitSpec(3)
    given = fastinit.InitSpec("kaiming_normal", {"mode": "fan_out", "a": 0.1})
    assert given == fastinit.spec("kaiming_normal", a=0.1, mode="fan_out") and hash(given)
    assert fastinit.InitSpec("kaiming_normal", (("mode", "fan_out"), ("a", 0.1))) == given


def test_numpy_string_parameters_are_plain_strings():
    """mode=np.str_("fan_out") (a name read from an array) stayed an np.str_, and a member's
    label read "kaiming_normal(mode=np.str_('fan_out')) seed=0"."""
    s = fastinit.spec("kaiming_normal", mode=np.str_("fan_out"))
    assert str(s) == "kaiming_normal(mode='fan_out')" and type(s.kwargs["mode"]) is str
    net = fastinit.MLP([3, 4, 2], init=s)
    assert net.labels == ["kaiming_normal(mode='fan_out') seed=0"]


def test_param_choices_are_names():
    """Param("k", 1, "choice", (1, 2)) failed as "must be one of {1, 2}. Got 1 instead" and
    without a default could never be given; choices="abc" became the choices 'a', 'b', 'c';
    choices on a 'real' parameter were ignored."""
    for choices in ((1, 2), "abc", ()):
        with pytest.raises(ValueError, match=r"Param 'k' of kind 'choice' needs its choices, a "
                                             r"tuple of names \(str\)"):
            Param("k", kind="choice", choices=choices)
    with pytest.raises(ValueError, match=r"Param 'k': choices are for kind 'choice'; its kind "
                                         r"is 'real'"):
        Param("k", 1.0, choices=("a",))
    p = Param("k", "a", "choice", ["a", "b"])
    assert p.choices == ("a", "b") and hash(p)


def test_an_unregistered_scheme_object_is_refused():
    """sample(Scheme("he_normal", "constant", ...)) drew the registered he_normal (random
    weights, not the constant asked for), as schemes travel by name; an unregistered
    Scheme("mine") said only that 'mine' is not one of the registered names."""
    mine = Scheme("he_normal", "constant", fixed=dict(value=2.0))
    with pytest.raises(ValueError, match=r"'scheme' parameter of fastinit.sample got fastinit."
                                         r"Scheme\('he_normal'\), which is not registered \(the "
                                         r"registered scheme of that name is another\): pass it "
                                         r"to fastinit.register_scheme first"):
        fastinit.sample(mine, (2, 2), seed=0)
    with pytest.raises(ValueError, match=r"'init' parameter of fastinit.MLP got fastinit.Scheme"
                                         r"\('test_unregistered'\), which is not registered: "):
        fastinit.MLP([2, 2], init=Scheme("test_unregistered", "constant",
                                         fixed=dict(value=2.0)))
    registered = fastinit.get_scheme("he_normal")
    assert fastinit.sample(registered, (2, 2), seed=0).shape == (2, 2)


def test_optional_real_param_kind():
    """A real parameter whose None means "not set" (edge_of_chaos's activation_param: the
    network's); a spec that does not give it keeps its label and its bias's."""
    p = Param("k", None, "optional_real")
    assert p.check(None, "f") is None and p.check(2, "f") == 2.0
    with pytest.raises(TypeError, match=r"The 'k' parameter of fastinit.Param\('k'\) must be a "
                                        r"real number or None. Got True of type bool instead."):
        Param("k", True, "optional_real")
    with pytest.raises(ValueError, match=r"The 'k' parameter of f must be a finite real number. "
                                         r"Got nan instead."):
        p.check(float("nan"), "f")
    assert str(fastinit.spec("edge_of_chaos", sigma_b2=0.1)) == "edge_of_chaos(sigma_b2=0.1)"
    assert str(fastinit.registry.preset_bias(fastinit.spec("edge_of_chaos",
                                                           activation_param=0.2))) == \
        "edge_of_chaos_bias(activation_param=0.2)"
