"""Every error at the API boundary: a clear message, never a Numba traceback."""
import re

import numpy as np
import pytest

import fastinit


def S(*args, **kw):
    kw.setdefault("seed", 0)
    return fastinit.sample(*args, **kw)


def test_unknown_scheme_names_closest():
    with pytest.raises(ValueError, match=r"registered scheme.*Got 'kaiming_normall'.*Did you "
                                         r"mean 'kaiming_normal'\?"):
        S("kaiming_normall", (4, 4))
    with pytest.raises(ValueError, match="Did you mean 'xavier_uniform'"):
        S("xavier_unform", (4, 4))
    with pytest.raises(ValueError, match="Did you mean 'zeros'"):
        S("zero", (4, 4))
    with pytest.raises(TypeError, match="must be a scheme name"):
        S(3, (4, 4))


def test_a_name_in_other_case_is_matched_by_its_letters():
    # "Relu" was told "Did you mean 'elu'?", "AdamW" 'adam', "HeNormal" 'normal'
    net = fastinit.MLP([4, 3], seed=0)
    x, y = np.ones((6, 4)), np.zeros(6, dtype=int)
    for call, meant in [(lambda: fastinit.MLP([4, 3], activation="Relu"), "relu"),
                        (lambda: fastinit.calculate_gain("Relu"), "relu"),
                        (lambda: S("kaiming_normal", (4, 4), nonlinearity="Relu"), "relu"),
                        (lambda: fastinit.train(net, (x, y), epochs=1, optimizer="AdamW"),
                         "adamw"),
                        (lambda: S("HeNormal", (4, 4)), "he_normal"),
                        (lambda: S("GlorotUniform", (4, 4)), "glorot_uniform"),
                        (lambda: fastinit.MLP([4, 3], activation="LeakyReLU"), "leaky_relu"),
                        (lambda: S("Zero", (4, 4)), "ZerO"), (lambda: S("zero", (4, 4)), "zeros")]:
        with pytest.raises(ValueError, match=rf"Did you mean '{meant}'\?"):
            call()


def test_other_libraries_names_for_a_loss_or_optimizer_point_to_fastinits():
    # loss="ce" was told "Did you mean 'bce'?" and "binary_cross_entropy" 'cross_entropy'
    net = fastinit.MLP([4, 3], seed=0)
    x, y = np.ones((6, 4)), np.zeros(6, dtype=int)
    for param, got, meant in [("loss", "ce", "cross_entropy"), ("loss", "CE", "cross_entropy"),
                              ("loss", "nll", "cross_entropy"),
                              ("loss", "binary_cross_entropy", "bce"), ("loss", "l2", "mse"),
                              ("optimizer", "nag", "nesterov")]:
        with pytest.raises(ValueError, match=rf"The '{param}' parameter of fastinit.train must "
                           rf"be one of .* Got '{got}' instead. Did you mean '{meant}'\?$"):
            fastinit.train(net, (x, y), epochs=1, **{param: got})


@pytest.mark.parametrize("shape,match", [
    ((4, 0), r"positive dimensions.*dimension 0"), ((-2, 3), r"positive dimensions.*-2"),
    ((), "at least one dimension"), ((2.5, 3), r"2.5 is not an integer"),
    ("4x4", "tuple of positive integers"),
])
def test_bad_shapes(shape, match):
    with pytest.raises((ValueError, TypeError), match=match):
        S("normal", shape)


def test_a_shape_given_as_an_integer_array_is_that_shape():
    """fastinit.MLP takes its sizes as a NumPy array; fastinit.sample took no array shape
    ("must be a tuple of positive integers ... Got array([4, 4])"). A 1-D integer array is the
    tuple it holds; a float or 2-D array is still refused."""
    np.testing.assert_array_equal(S("he_normal", np.array([4, 6])), S("he_normal", (4, 6)))
    with pytest.raises(TypeError, match=r"tuple of positive integers.*array\(\[4\., 6\.\]\)"):
        S("he_normal", np.array([4.0, 6.0]))
    with pytest.raises(TypeError, match="tuple of positive integers"):
        S("he_normal", np.ones((2, 2), dtype=int))


def test_ndim_too_small_for_fan_based_scheme():
    with pytest.raises(ValueError, match=r"at least 2 dimensions for the fan-based scheme "
                                         r"'he_normal'.*Got \(5,\).*fan_in="):
        S("he_normal", (5,))
    # fine with an explicit fan or in the Keras layout
    assert S("he_normal", (5,), fan_in=5).shape == (5,)
    assert S("he_normal", (5,), layout="keras").shape == (5,)
    with pytest.raises(ValueError, match="orthogonal weights need at least 2 dimensions"):
        S("orthogonal", (5,))
    with pytest.raises(ValueError, match="3-, 4- or 5-D convolution weight"):
        S("dirac", (5, 5))


@pytest.mark.parametrize("dtype", ["int32", np.int64, "float16", "banana", complex])
def test_bad_dtype(dtype):
    with pytest.raises(ValueError, match=r"'dtype' parameter of fastinit.sample must be one of "
                                         r"\{'float32', 'float64'\}"):
        S("normal", (3, 3), dtype=dtype)


@pytest.mark.parametrize("dtype", [">f4", ">f8", np.dtype(np.float32).newbyteorder()])
def test_non_native_byte_order_dtype(dtype):
    """'>f4' is named float32: it reached the sampling kernel as a Numba TypingError."""
    with pytest.raises(ValueError, match=r"'dtype' parameter of fastinit.sample must be "
                                         r"float32 or float64 in this machine's byte order"):
        S("normal", (3, 3), dtype=dtype)
    with pytest.raises(ValueError, match=r"'dtype' parameter of fastinit.MLP .*byte order"):
        fastinit.MLP([3, 2], dtype=dtype)


def test_dtype_none_is_the_default_float32():
    # NumPy reads np.dtype(None) as float64; fastinit's None is its default, as PyTorch's is
    assert S("normal", (3, 3), dtype=None).dtype == np.float32
    assert fastinit.MLP([3, 2], dtype=None).dtype == np.float32
    assert fastinit.ResMLP(3, 4, 1, 2, dtype=None).params.dtype == np.float32


@pytest.mark.parametrize("scheme,params,name", [
    ("constant", dict(value=1e300), "value=1e+300"), ("constant", dict(value=-1e39), "value"),
    ("identity", dict(gain=1e39), "gain=1e+39"), ("uniform", dict(low=-1e300), "low"),
    ("uniform", dict(high=4e38), "high=4e+38"),
])
def test_weight_value_beyond_the_dtypes_range(scheme, params, name):
    with pytest.raises(ValueError, match=rf"Scheme '{scheme}' in fastinit.sample: "
                                         rf"{re.escape(name)}.* is beyond float32's range "
                                         rf"\(largest finite 3.403e\+38\)"):
        S(scheme, (3, 3), **params)
    with pytest.raises(ValueError, match=r"Scheme 'constant' in fastinit.MLP: value=1e\+300"):
        fastinit.MLP([3, 2], bias_init=fastinit.spec("constant", value=1e300))
    assert np.isfinite(S(scheme, (3, 3), dtype=np.float64, **params)).all()


@pytest.mark.parametrize("scheme, params, dtype, shown", [
    ("normal", dict(std=1e300), np.float32, "8e+300"),
    ("normal", dict(mean=1e300), np.float32, "1e+300"),
    ("normal", dict(std=1e38), np.float32, "8e+38"),
    ("variance_scaling", dict(scale=1e300, distribution="uniform"), np.float32, "4.619e+150"),
    ("sparse", dict(sparsity=0.5, std=1e200), np.float32, "1e154 or more")])
def test_weights_whose_scale_overflows_the_dtype(scheme, params, dtype, shown):
    """A scale, not a value, beyond the dtype: normal(std=1e300) in float32 gave inf weights
    and variance_scaling(scale=1e300) NaN ones, silently."""
    with pytest.raises(ValueError, match=rf"Scheme '{scheme}' in fastinit.sample: its weights "
                                         rf"would reach about {re.escape(shown)} \(8 standard "
                                         rf"deviations\), beyond float32's largest finite"):
        S(scheme, (3, 3), dtype=dtype, **params)


def test_scales_that_fit_the_dtype_are_drawn():
    """The check refuses only what overflows: float64 takes std=1e300 (its square, beyond
    float64, is no reason to refuse), float32 std=1e37."""
    assert np.isfinite(S("normal", (3, 3), dtype=np.float64, std=1e300)).all()
    assert np.isfinite(S("normal", (3, 3), dtype=np.float32, std=1e37)).all()
    assert np.isfinite(S("sparse", (3, 3), dtype=np.float64, sparsity=0.5, std=1e200)).all()
    for scheme, params in [("constant", dict(value=1e38)), ("orthogonal", dict(gain=1e38)),
                           ("normal", dict(mean=1e38, std=0.0)),    # exact values, no tails
                           ("trunc_normal", dict(a=10.0, b=12.0))]:  # far tail: no moment
        assert np.isfinite(S(scheme, (3, 3), dtype=np.float32, **params)).all()
    with pytest.raises(ValueError, match=r"^Scheme 'xavier_uniform' in fastinit.sample: mode "
                                         r"'fan_avg' needs fan_in and fan_out"):
        S("xavier_uniform", (5,), fan_in=3)                  # the draw's error, its scheme named
    with pytest.raises(ValueError, match=r"Scheme 'uniform' in fastinit.sample: high - low = "
                                         r"inf is beyond float64's range"):
        S("uniform", (3, 3), dtype=np.float64, low=-1e308, high=1e308)


@pytest.mark.parametrize("sparsity", [-0.1, 1.0, 1.5])
def test_sparsity_outside_unit_interval(sparsity):
    with pytest.raises(ValueError, match=r"'sparsity' parameter .*interval \[0.0, 1.0\)"):
        S("sparse", (4, 4), sparsity=sparsity)


def test_sparse_needs_sparsity():
    with pytest.raises(TypeError, match="needs the parameter 'sparsity'"):
        S("sparse", (4, 4))


@pytest.mark.parametrize("seed,exc,match", [
    (-1, ValueError, r"non-negative integer.*Got -1"), (1.0, TypeError, "of type float"),
    ("7", TypeError, "of type str"), (True, TypeError, "of type bool"),
    (2**64, ValueError, "2\\*\\*64 - 1"), (None, TypeError, "of type NoneType"),
])
def test_bad_seed(seed, exc, match):
    with pytest.raises(exc, match=r"'seed' parameter of fastinit.sample.*" + match):
        S("normal", (3,), seed=seed)


def test_numpy_integer_seed_accepted():
    a = S("normal", (3,), seed=np.uint64(5))
    np.testing.assert_array_equal(a, S("normal", (3,), seed=5))


def test_unknown_parameter_lists_valid_ones():
    with pytest.raises(TypeError, match=r"unknown parameter 'nonlinarity' for scheme "
                                        r"'kaiming_normal'. Valid parameters: \['a', 'mode', "
                                        r"'nonlinearity'\]. Did you mean 'nonlinearity'\?"):
        S("kaiming_normal", (3, 3), nonlinarity="relu")
    with pytest.raises(TypeError, match="takes no parameters"):
        S("he_normal", (3, 3), gain=2.0)


def test_bad_parameter_values():
    with pytest.raises(ValueError, match=r"'mode' parameter of fastinit.sample \(scheme "
                                         r"'kaiming_normal'\) must be one of \{'fan_in', "
                                         r"'fan_out'\}. Got 'fan_inn' instead. Did you mean "
                                         r"'fan_in'\?"):
        S("kaiming_normal", (3, 3), mode="fan_inn")
    with pytest.raises(ValueError, match="'nonlinearity' parameter.*Did you mean 'relu'"):
        S("kaiming_normal", (3, 3), nonlinearity="rleu")
    with pytest.raises(ValueError, match=r"'std' parameter.*\[0.0, inf\)"):
        S("normal", (3,), std=-1.0)
    with pytest.raises(ValueError, match="'low' must be less than 'high'"):
        S("uniform", (3,), low=1.0, high=0.0)
    with pytest.raises(ValueError, match="'a' must be less than 'b'"):
        S("trunc_normal", (3,), a=1.0, b=-1.0)
    with pytest.raises(ValueError, match="no probability mass"):
        S("trunc_normal", (3,), a=60.0, b=70.0)
    with pytest.raises(TypeError, match="'gain' parameter.*real number"):
        S("orthogonal", (3, 3), gain="2")
    with pytest.raises(ValueError, match="finite"):
        S("orthogonal", (3, 3), gain=float("nan"))
    with pytest.raises(ValueError, match="divisible by groups"):
        S("dirac", (5, 4, 3), groups=2)
    with pytest.raises(ValueError, match="at least as many output channels"):
        S("delta_orthogonal", (3, 5, 3))


def test_bad_population_arguments():
    with pytest.raises(ValueError, match="'n' parameter of fastinit.sample must be an integer "
                                         ">= 1. Got 0"):
        S("normal", (3,), n=0)
    with pytest.raises(TypeError, match="'n' parameter.*must be an integer"):
        S("normal", (3,), n=2.0)
    with pytest.raises(ValueError, match="'start' parameter.*>= 0"):
        S("normal", (3,), start=-1)
    with pytest.raises(ValueError, match="'layout' parameter.*Did you mean 'keras'"):
        S("normal", (3,), layout="kears")
    with pytest.raises(ValueError, match="'fan_in' parameter.*\\(0.0, inf\\)"):
        S("he_normal", (3, 3), fan_in=0)


def test_too_many_members_blame_n_and_start_as_they_should():
    """n beyond the 2**32 member streams is n's fault, not start's; n + start beyond them
    names both."""
    with pytest.raises(ValueError, match=r"'n' parameter of fastinit.sample must be an integer "
                                         r"<= 4294967296. Got 1180591620717411303424 instead"):
        S("he_normal", (4, 4), n=2**70)
    with pytest.raises(ValueError, match=r"'n' and 'start' parameters of fastinit.sample must "
                                         r"satisfy n \+ start <= 2\*\*32.*Got n=2, "
                                         r"start=4294967295 instead"):
        S("he_normal", (4, 4), n=2, start=2**32 - 1)
    with pytest.raises(ValueError, match=r"'start' parameter of fastinit.sample must be an "
                                         r"integer <= 4294967295. Got 4294967296"):
        S("he_normal", (4, 4), start=2**32)
    last = S("normal", (3,), start=2**32 - 1, dtype=np.float64)   # the last member is valid
    assert np.all(np.isfinite(last))


def test_spec_validates_where_written():
    with pytest.raises(ValueError, match="'mode' parameter of fastinit.spec"):
        fastinit.spec("kaiming_uniform", mode="fan_avg")
    with pytest.raises(TypeError, match="both in the spec and as keyword"):
        S(fastinit.spec("kaiming_uniform", a=1.0), (3, 3), a=2.0)


def test_gain_errors():
    with pytest.raises(ValueError, match="'nonlinearity' parameter of fastinit.calculate_gain "
                                         "must be one of.*Did you mean 'tanh'"):
        fastinit.calculate_gain("tnah")
    with pytest.raises(ValueError, match="method='torch'.*PyTorch defines no gain.*"
                                         "second_moment"):
        fastinit.calculate_gain("gelu", method="torch")
    with pytest.raises(ValueError, match="'method' parameter.*Did you mean 'variance'"):
        fastinit.calculate_gain("relu", method="varaince")
    with pytest.raises(ValueError, match="not used by the 'tanh' activation"):
        fastinit.calculate_gain("tanh", 0.1, method="second_moment")
    with pytest.raises(TypeError, match="'param' parameter.*real number"):
        fastinit.calculate_gain("leaky_relu", "0.1")
    with pytest.raises(ValueError, match="no finite gain"):
        fastinit.calculate_gain(lambda z: 0 * z)
    with pytest.raises(ValueError, match="same shape"):
        fastinit.calculate_gain(lambda z: 1.0)


def test_compute_fans_errors_and_values():
    assert fastinit.compute_fans((64, 32, 3, 3)) == (288, 576)
    assert fastinit.compute_fans((3, 3, 32, 64), layout="keras") == (288, 576)
    assert fastinit.compute_fans((7,), layout="keras") == (7, 7)
    assert fastinit.compute_fans((7,)) is None
    with pytest.raises(ValueError, match="'layout' parameter of fastinit.compute_fans"):
        fastinit.compute_fans((3, 3), layout="jax")


def test_labels_out_of_range_are_reported_as_given():
    """The range in the message is the labels' own, not what they became in int64 (uint64
    above 2**63 and huge float labels used to wrap to -9223372036854775803)."""
    net = fastinit.MLP([4, 5, 3], seed=0)
    x = np.zeros((2, 4))
    for y, shown in (([0, 2], None), ([1, 3], "[1, 3]"), ([-1, 0], "[-1, 0]"),
                     (np.array([0, 2**63 + 5], dtype=np.uint64), f"[0, {2**63 + 5}]"),
                     (np.array([0.0, 1e30]), f"[0, {int(1e30)}]")):
        if shown is None:
            assert net.loss(x, y).shape == (1,)
            continue
        with pytest.raises(ValueError, match=rf"^The 'y' parameter of fastinit.MLP.loss holds "
                                             rf"labels in {re.escape(shown)} but the network has "
                                             rf"3 outputs: labels must be in \[0, 2\].$"):
            net.loss(x, y)


def test_a_bias_without_fans_is_told_to_pass_its_weights_fan_in():
    """A bias (1-D) in the PyTorch layout has no fans: the advice was layout='keras', which
    takes the bias's own length as fan_in, a silently wrong bound for torch_linear_bias."""
    with pytest.raises(ValueError, match=r"for a bias: fan_in= of its layer's weight\), or "
                                         r"layout='keras' for a 1-D weight"):
        fastinit.sample("torch_linear_bias", (5,), seed=0)
    b = fastinit.sample("torch_linear_bias", (5,), seed=0, fan_in=16)
    assert b.shape == (5,) and abs(b).max() <= 0.25


@pytest.mark.parametrize("scheme", ["xavier_uniform", "xavier_normal"])
def test_a_gain_whose_square_overflows_is_named(scheme):
    """gain ** 2 raised Python's bare OverflowError (34, 'Numerical result out of range')."""
    with pytest.raises(ValueError, match=rf"scheme '{scheme}': gain=1e\+200 squared is beyond "
                                         r"float64's range"):
        fastinit.sample(scheme, (3, 4), seed=0, gain=1e200)
