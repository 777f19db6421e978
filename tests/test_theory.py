"""Mean-field theory: known critical points, quadrature against Monte Carlo, predictions."""
import math
import re

import numpy as np
import pytest

import fastinit
from fastinit import theory


def test_relu_critical_point_is_he():
    assert theory.critical_sigma_w2("relu", 0.0) == pytest.approx(2.0, abs=1e-9)
    assert theory.chi_1("relu", 2.0, 0.0) == pytest.approx(1.0, abs=1e-12)
    assert theory.chi_1("relu", 1.0, 0.0) == pytest.approx(0.5, abs=1e-12)


def test_tanh_critical_point_at_sigma_b2_005():
    s = theory.critical_sigma_w2("tanh", 0.05)
    assert round(s, 3) == 1.761
    assert theory.q_star("tanh", s, 0.05) == pytest.approx(0.570, abs=5e-4)
    assert theory.phase("tanh", s, 0.05).phase == "critical"
    assert theory.phase("tanh", 1.2, 0.05).phase == "ordered"
    assert theory.phase("tanh", 3.0, 0.05).phase == "chaotic"


# The edge of chaos sigma_w^2(sigma_b^2), chi_1 = 1, from an independent computation:
# scipy.integrate.quad (breakpoint at 0) for E[phi^2] and E[phi'^2], scipy.optimize.brentq for
# q* and for sigma_w^2. Known points: tanh 1.7610 at 0.05 (Schoenholz et al. 2017); tanh and
# elu at 0 exactly 1 (q* = 0, phi'(0) = 1); leaky relu 2 / (1 + a^2) for every sigma_b^2
# (chi_1 = sigma_w^2 (1 + a^2) / 2 whatever q*). fastinit agreed to 3e-13 relative, except
# where q* -> 0 at the edge (tanh, elu at sigma_b^2 = 0: 5e-9 and 3.4e-8, the bisection's
# excess is flat there): rel 1e-7.
CRITICAL = [("tanh", None, 0.0, 1.0), ("tanh", None, 0.05, 1.760954639606738),
            ("tanh", None, 0.5, 2.843167459724081), ("tanh", None, 1.0, 3.4432109122654553),
            ("selu", None, 0.05, 0.9017658917663333), ("elu", None, 0.0, 1.0),
            ("elu", 0.5, 0.1, 1.9295694996621802), ("softsign", None, 0.05, 3.1412472360438266),
            ("leaky_relu", 0.2, 0.0, 2 / 1.04), ("leaky_relu", 0.2, 0.1, 2 / 1.04),
            ("softplus", None, 0.0, 2.0)]


@pytest.mark.parametrize("activation, param, sigma_b2, want", CRITICAL)
def test_critical_line_against_scipy(activation, param, sigma_b2, want):
    assert theory.critical_sigma_w2(activation, sigma_b2, param) == pytest.approx(want, rel=1e-7)


def test_depth_scale_diverges_at_the_edge():
    s = theory.critical_sigma_w2("tanh", 0.05)
    near = theory.phase("tanh", s * 1.001, 0.05).xi_c
    far = theory.phase("tanh", 1.2, 0.05).xi_c
    assert near > 50 * far


def _correlation_map(phi, sigma_w2, sigma_b2, q, c, nodes=160):
    """M(c) by Gauss-Hermite (probabilists') in two dimensions: an independent quadrature."""
    z, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / math.sqrt(2 * math.pi)
    u1 = math.sqrt(q) * z[:, None]
    u2 = math.sqrt(q) * (c * z[:, None] + math.sqrt(max(0.0, 1 - c * c)) * z[None, :])
    return (sigma_w2 * float(np.sum(w[:, None] * w[None, :] * phi(u1) * phi(u2))) + sigma_b2) / q


def test_correlation_fixed_point_at_and_near_the_edge():
    """c* solves the correlation map however slowly iterating it converges: at the edge of
    chaos c* = 1 and xi_c is infinite; just past it c* sits a hair below 1 (2,000 iterations of
    the map from 0.5 left it 1e-3 away and xi_c short by a factor of 3)."""
    s = theory.critical_sigma_w2("tanh", 0.05)
    edge = theory.phase("tanh", s, 0.05)
    assert edge.c_star == 1.0 and edge.xi_c == math.inf
    ordered = theory.phase("tanh", 1.2, 0.05)
    assert ordered.c_star == 1.0 and ordered.chi_c == ordered.chi_1
    for sw2 in (s * 1.001, 2.5, 4.0):
        p = theory.phase("tanh", sw2, 0.05)
        assert p.chi_1 > 1 and 0 < p.c_star < 1
        assert _correlation_map(np.tanh, sw2, 0.05, p.q_star, p.c_star) == \
            pytest.approx(p.c_star, abs=1e-11)
        assert p.xi_c == pytest.approx(-1 / math.log(p.chi_c))
    assert theory.phase("tanh", 2.0, 0.0).c_star == 0.0       # odd, no bias: c* = 0


def _exp_step_kernel(lam, alpha, q, c):
    """E[g(u1) g(u2)], (u1, u2) ~ N(0, q [[1, c], [c, 1]]), for g(u) = lam (u > 0) and
    lam alpha e^u (u <= 0): the derivative of selu (and of elu, lam = 1). Independent of
    fastinit's 2-D quadrature: given u1, u2 ~ N(c u1, q (1 - c^2)), so E[g(u2) | u1] has a
    closed form (a normal CDF and a lognormal tilt); scipy.integrate.quad does the outer
    integral with a breakpoint at the step."""
    from scipy import integrate, special
    sd = math.sqrt(q * (1 - c * c))

    def inner(u1):
        m = c * u1
        up = special.ndtr(m / sd)
        down = math.exp(m + 0.5 * sd * sd + special.log_ndtr(-(m + sd * sd) / sd))
        return lam * (up + alpha * down)

    def outer(u1):
        g = lam if u1 > 0 else lam * alpha * math.exp(u1)
        return g * inner(u1) * math.exp(-0.5 * u1 * u1 / q) / math.sqrt(2 * math.pi * q)

    lim = 40 * math.sqrt(q)
    return sum(integrate.quad(outer, a, b, epsabs=1e-14, epsrel=1e-13, limit=200)[0]
               for a, b in ((-lim, 0.0), (0.0, lim)))


@pytest.mark.parametrize("activation, sigma_w2, sigma_b2, param, lam, alpha", [
    ("selu", 1.7, 0.0, None, 1.0507009873554805, 1.6732632423543772),
    ("selu", 1.5, 0.05, None, 1.0507009873554805, 1.6732632423543772),
    ("elu", 1.97, 0.1, 0.5, 1.0, 0.5)])
def test_chi_c_of_a_stepped_derivative_against_a_closed_form_inner_integral(
        activation, sigma_w2, sigma_b2, param, lam, alpha):
    """chi_c = sigma_w^2 E[phi'(u1) phi'(u2)] at c* (Schoenholz et al. 2017, eq. 9). selu' and
    elu' (alpha != 1) step at 0; the 2-D grid put the step inside its panels: chi_c of selu at
    sigma_w^2 = 1.7 was 0.933150 (xi_c 14.45) where it is 0.932200 (xi_c 14.24; a Monte Carlo
    of 4e7 pairs gave 0.93227 +- 0.00014). With the step on panel edges the two agree to
    quadrature precision; 1e-9 leaves room for scipy's quad (its error estimate ~1e-13)."""
    p = theory.phase(activation, sigma_w2, sigma_b2, param)
    assert p.chi_1 > 1 and 0 < p.c_star < 1                 # chaotic: c* < 1 is computed
    want = sigma_w2 * _exp_step_kernel(lam, alpha, p.q_star, p.c_star)
    assert p.chi_c == pytest.approx(want, abs=1e-9)
    assert p.xi_c == pytest.approx(-1 / math.log(want), rel=1e-8)


@pytest.mark.parametrize("c", [-0.7, 0.0, 0.3, 0.9, 0.999, 1 - 1e-5, 1 - 1e-10])
def test_two_dimensional_expectation_against_the_arc_cosine_kernels(c):
    """Cho & Saul (2009): for (u1, u2) ~ N(0, q [[1, c], [c, 1]]) and theta = arccos c,
    E[step(u1) step(u2)] = (pi - theta) / (2 pi) and E[relu(u1) relu(u2)] = q (sin theta +
    (pi - theta) c) / (2 pi). The step was off by up to 4.4e-4 (c = 1 - 1e-5) on the fixed
    tensor grid; near c = 1 the kinks of u1 and u2 nearly meet, which the outer panels now
    resolve. 1e-11: the quadrature is exact to rounding on piecewise-polynomial pieces."""
    from fastinit.meanfield import _expect2
    q, theta = 2.0, math.acos(c)
    step = lambda u: (u > 0).astype(float)
    relu = lambda u: np.maximum(u, 0.0)
    assert _expect2(step, step, q, c) == pytest.approx((math.pi - theta) / (2 * math.pi),
                                                       abs=1e-11)
    assert _expect2(relu, relu, q, c) == pytest.approx(
        q * (math.sin(theta) + (math.pi - theta) * c) / (2 * math.pi), abs=1e-11)


def test_q_star_closed_forms():
    # relu, sigma_b > 0, sigma_w^2 < 2: q* = sigma_b^2 / (1 - sigma_w^2 / 2)
    assert theory.q_star("relu", 1.5, 0.1) == pytest.approx(0.1 / (1 - 0.75), rel=1e-10)
    # linear: q* = sigma_b^2 / (1 - sigma_w^2)
    assert theory.q_star("linear", 0.5, 0.2) == pytest.approx(0.4, rel=1e-10)
    assert theory.q_star("relu", 2.5, 0.0) == math.inf
    assert theory.q_star("tanh", 0.5, 0.0) == 0.0


@pytest.mark.parametrize("activation", ["tanh", "relu", "gelu", "selu", "softplus"])
def test_quadrature_against_monte_carlo(activation):
    z = np.random.default_rng(1).standard_normal(4_000_000)
    from fastinit import activations
    phi = activations.resolve(activation, func="test")
    q = 0.7
    mc = 1.3 * np.mean(phi(math.sqrt(q) * z) ** 2) + 0.1
    se = 1.3 * np.std(phi(math.sqrt(q) * z) ** 2) / math.sqrt(z.size)
    assert abs(theory.length_map(activation, 1.3, 0.1, q) - mc) < 5 * se
    d = activations.resolve_derivative(activation, func="test")
    chi = theory.chi_1(activation, 1.3, 0.1)
    qs = theory.q_star(activation, 1.3, 0.1)
    mc_chi = 1.3 * np.mean(d(math.sqrt(qs) * z) ** 2)
    assert chi == pytest.approx(mc_chi, rel=5e-3)


def test_callable_activation():
    assert theory.critical_sigma_w2(lambda x: np.maximum(x, 0), 0.0) == pytest.approx(2.0, abs=1e-4)


def test_prediction_matches_measurement_in_a_wide_net():
    """Variance-preserving schemes: the measured second moments follow the length map, up to
    finite-width fluctuations (relative spread about sqrt(depth * 5 / width) for relu), which
    averaging over 16 members shrinks."""
    g = np.random.default_rng(0)
    x = g.standard_normal((128, 512))
    for act, scheme in [("relu", "kaiming_normal"), ("tanh", "xavier_normal"),
                        ("selu", "lecun_normal")]:
        net = fastinit.MLP([512] * 5 + [10], activation=act, init=scheme, bias_init="zeros",
                           n=16, seed=0, dtype=np.float64)
        r = theory.compare(net, x)
        log_ratio = np.log(r["measured"][:, :4] / r["predicted"][:, :4]).mean(axis=0)
        assert np.all(np.abs(log_ratio) < 0.1), (act, log_ratio)


def test_prediction_follows_residual_skips_norms_and_rescaled_weights():
    """predicted_q ran every layer as a plain MLP layer with its scheme's formula: a plain relu
    ResMLP (He) was predicted 2.0 at every layer where the residual stream grows to 6.3 by the
    second block; fixup's zeroed W2 and output layers 2.0 where they are 0; layer-normed
    layers 2.0 where phi sees 1.0; and after lsuv 0.39, 0.24 where the layers measure 1.0.
    Now it follows skips (m_skip + alpha^2 q), norms (gamma, beta) and the weights as they
    are. Tolerances: 8 members of width 256 (relu hidden layers, log ratio within 0.06 over 6
    seeds; the output layer's 10 units are left out as too noisy); layer norm is exact to
    eps; lsuv's layers sit within its tol of the prediction (same weights, same data)."""
    x = np.random.default_rng(0).standard_normal((128, 256))
    plain = fastinit.ResMLP(256, 256, 2, 10, "relu", init="he_normal", bias_init="zeros",
                            n=8, seed=0, dtype=np.float64)
    r = theory.compare(plain, x)
    assert r["predicted"][0, 3] > 2.5 * r["predicted"][0, 0]            # the stream grows
    log_ratio = np.log(r["measured"][:, :5] / r["predicted"][:, :5]).mean(axis=0)
    assert np.all(np.abs(log_ratio) < 0.15), log_ratio
    fixup = fastinit.ResMLP(256, 256, 2, 10, "relu", init="he_normal", residual="fixup",
                            n=2, seed=0, dtype=np.float64)
    r = theory.compare(fixup, x)
    zero = [2, 4, 5]                                  # each branch's W2 and the output layer
    assert np.all(r["predicted"][:, zero] == 0) and np.all(r["measured"][:, zero] == 0)
    assert np.all(r["ratio"][:, zero] == 1)           # exact, not 0 / 0
    np.testing.assert_allclose(r["predicted"][:, [0, 1, 3]], r["measured"][:, [0, 1, 3]],
                               rtol=0.1)
    normed = fastinit.MLP([256, 256, 256, 10], "relu", norm="layer", init="he_normal", n=2,
                          seed=0, dtype=np.float64)
    r = theory.compare(normed, x)
    np.testing.assert_allclose(r["predicted"][:, :2], r["measured"][:, :2], rtol=1e-4)
    lsuv = fastinit.MLP([256, 256, 256, 10], "tanh", init="orthogonal", n=2, seed=0,
                        dtype=np.float64)
    fastinit.lsuv(lsuv, x)
    r = theory.compare(lsuv, x)
    np.testing.assert_allclose(r["predicted"], r["measured"], rtol=0.1)


def test_orthogonal_prediction_with_biases_and_rectangular_layers():
    """Orthogonal weights (Saxe et al. 2014) keep |W x| exactly for columns-orthonormal W, and
    on average for rows-orthonormal: the length map with E[w^2] = 1 / max(fan_in, fan_out)
    holds through tanh layers of unequal widths with N(0, 0.3^2) biases. Observed log ratios
    within 0.016 over 6 seeds for the hidden layers; 0.05 bounds them."""
    x = np.random.default_rng(0).standard_normal((128, 256))
    net = fastinit.MLP([256, 400, 300, 300, 10], "tanh", init="orthogonal", n=4, seed=0,
                       bias_init=fastinit.spec("normal", std=0.3), dtype=np.float64)
    r = theory.compare(net, x)
    log_ratio = np.log(r["measured"][:, :3] / r["predicted"][:, :3]).mean(axis=0)
    assert np.all(np.abs(log_ratio) < 0.05), log_ratio


def test_predicted_q_checks_its_member_and_network():
    net = fastinit.MLP([4, 5, 3], n=2, seed=0)
    with pytest.raises(ValueError, match=r"'member' parameter of fastinit.theory.predicted_q "
                                         r"must be an integer <= 1. Got 2"):
        theory.predicted_q(net, np.ones((3, 4)), member=2)
    with pytest.raises(TypeError, match=r"'net' parameter of fastinit.theory.compare must be "
                                        r"a fastinit.MLP"):
        theory.compare([4, 5, 3], np.ones((3, 4)))


def test_second_moments_of_schemes():
    assert theory.second_moment("he_normal", (64, 100)) == pytest.approx(2 / 100)
    assert theory.second_moment("xavier_uniform", (64, 100), gain=2.0) == \
        pytest.approx(4 * 2 / 164)
    assert theory.second_moment("uniform", (3, 3), low=-1.0, high=1.0) == pytest.approx(1 / 3)
    assert theory.second_moment("orthogonal", (64, 100)) == pytest.approx(1 / 100)
    assert theory.second_moment("trunc_normal", (3, 3)) == pytest.approx(0.7737413, rel=1e-6)
    w = fastinit.sample("trunc_normal_corrected", (400, 400), seed=0, dtype=np.float64, std=0.3)
    assert theory.second_moment("trunc_normal_corrected", (400, 400), std=0.3) == \
        pytest.approx(np.mean(w ** 2), rel=0.01)


def test_second_moment_takes_the_fans_its_error_tells_a_bias_to_pass():
    """A 1-D bias has no fans: the error says to pass its weight's fan_in=, which
    second_moment takes (as fastinit.sample does) and then agrees with a draw."""
    with pytest.raises(ValueError, match="fan_in= of its layer's weight"):
        theory.second_moment("torch_linear_bias", (5,))
    assert theory.second_moment("torch_linear_bias", (5,), fan_in=30) == pytest.approx(1 / 90)
    b = fastinit.sample("torch_linear_bias", (200_000,), fan_in=30, seed=0, dtype=np.float64)
    assert np.mean(b ** 2) == pytest.approx(1 / 90, rel=0.01)
    assert theory.second_moment("he_normal", (64, 100), fan_in=50) == pytest.approx(2 / 50)
    assert theory.second_moment("xavier_normal", (7,), fan_in=3, fan_out=5) == \
        pytest.approx(2 / 8)
    with pytest.raises(ValueError, match="'fan_in' parameter of fastinit.theory.second_moment"):
        theory.second_moment("he_normal", (64, 100), fan_in=-1)


def test_edge_of_chaos_in_a_network_takes_the_networks_activation():
    """A relu network's edge_of_chaos members drew tanh's critical variance (the scheme's
    default activation, 1.761 / fan_in for sigma_b2 = 0.05); unless given, the scheme's
    activation is now the network's. An explicit one is kept; a tanh network is unchanged."""
    relu = fastinit.MLP([400, 400, 10], activation="relu", init="edge_of_chaos", seed=0,
                        dtype=np.float64)
    assert str(relu.init[0]) == "edge_of_chaos(activation='relu')"
    soft = fastinit.MLP([8, 8, 2], "softplus", "edge_of_chaos", activation_param=2.0)
    assert str(soft.init[0]) == "edge_of_chaos(activation='softplus')"   # beta moves nothing
    assert all(np.array_equal(a, b) for a, b in zip(soft.weights, fastinit.MLP(
        [8, 8, 2], "softplus", "edge_of_chaos").weights))
    assert np.var(relu.weights[0][0]) * 400 == pytest.approx(
        theory.critical_sigma_w2("relu", 0.05), rel=0.03)
    assert theory.critical_sigma_w2("relu", 0.05) == pytest.approx(2.0, rel=1e-6)
    on_purpose = fastinit.MLP([400, 400, 10], activation="relu", seed=0, dtype=np.float64,
                              init=fastinit.spec("edge_of_chaos", activation="tanh"))
    assert np.var(on_purpose.weights[0][0]) * 400 == pytest.approx(
        theory.critical_sigma_w2("tanh", 0.05), rel=0.03)
    tanh = fastinit.MLP([400, 400, 10], activation="tanh", init="edge_of_chaos", seed=0,
                        dtype=np.float64)
    assert str(tanh.init[0]) == "edge_of_chaos"
    np.testing.assert_array_equal(tanh.params, on_purpose.params)
    with pytest.raises(ValueError, match="'gelu'.*has no edge of chaos"):
        fastinit.MLP([8, 8, 2], activation="gelu", init="edge_of_chaos")


def test_edge_of_chaos_in_a_network_takes_each_members_activation_parameter():
    """A leaky_relu network of slope 0.2 drew the critical variance of the default slope 0.01
    (2 / (1 + 0.01^2) = 1.9998 / fan_in, not 2 / 1.04 = 1.923 / fan_in), an elu of alpha 0.5
    that of alpha 1. Unless given, the scheme's activation_param is now each member's own; a
    member at the default keeps its label and bits; an explicit value is kept."""
    fan_in, slopes = 400, [0.2, None, 0.5]
    leaky = fastinit.MLP([fan_in, 400, 10], "leaky_relu", "edge_of_chaos", n=3, seed=[0] * 3,
                         activation_param=slopes, dtype=np.float64)
    assert [str(s) for s in leaky.init] == [
        "edge_of_chaos(activation='leaky_relu', activation_param=0.2)",
        "edge_of_chaos(activation='leaky_relu')",
        "edge_of_chaos(activation='leaky_relu', activation_param=0.5)"]
    assert theory.critical_sigma_w2("leaky_relu", 0.05, 0.2) == pytest.approx(2 / 1.04, 1e-9)
    for k, a in enumerate([0.2, 0.01, 0.5]):
        exact = theory.second_moment(leaky.init[k], (400, fan_in))
        assert exact * fan_in == pytest.approx(2 / (1 + a * a), rel=1e-9)
        assert np.var(leaky.weights[0][k]) * fan_in == pytest.approx(2 / (1 + a * a),
                                                                    rel=0.02)
    elu = fastinit.MLP([fan_in, 400, 10], "elu", "edge_of_chaos", seed=0, activation_param=0.5,
                       dtype=np.float64)
    s = theory.critical_sigma_w2("elu", 0.05, 0.5)
    assert s != pytest.approx(theory.critical_sigma_w2("elu", 0.05), rel=1e-3)
    assert theory.second_moment(elu.init[0], (400, fan_in)) * fan_in == pytest.approx(s, 1e-12)
    assert np.var(elu.weights[0][0]) * fan_in == pytest.approx(s, rel=0.02)
    default = fastinit.MLP([fan_in, 400, 10], "leaky_relu", "edge_of_chaos", seed=0,
                           dtype=np.float64)
    np.testing.assert_array_equal(default.params[0], leaky.params[1])
    given = fastinit.spec("edge_of_chaos", activation_param=0.5)
    kept = fastinit.MLP([fan_in, 400, 10], "leaky_relu", given, seed=0, activation_param=0.2,
                        dtype=np.float64)
    assert str(kept.init[0]) == "edge_of_chaos(activation='leaky_relu', activation_param=0.5)"
    assert np.var(kept.weights[0][0]) * fan_in == pytest.approx(2 / 1.25, rel=0.02)
    tanh_point = fastinit.spec("edge_of_chaos", activation="tanh")   # tanh's, on purpose
    assert fastinit.MLP([8, 8, 2], "leaky_relu", tanh_point, activation_param=0.2).init == \
        [tanh_point]
    relu = fastinit.MLP([8, 8, 2], "relu", "edge_of_chaos", activation_param=1.0)  # relu'(0)
    assert str(relu.init[0]) == "edge_of_chaos(activation='relu')"
    soft = fastinit.MLP([8, 8, 2], "softplus", "edge_of_chaos", activation_param=2.0)
    assert str(soft.init[0]) == "edge_of_chaos(activation='softplus')"   # beta moves nothing
    assert all(np.array_equal(a, b) for a, b in zip(soft.weights, fastinit.MLP(
        [8, 8, 2], "softplus", "edge_of_chaos").weights))


def test_edge_of_chaos_activation_param_errors_name_the_scheme():
    with pytest.raises(TypeError, match=r"The 'activation_param' parameter of fastinit.spec "
                                        r"\(scheme 'edge_of_chaos'\) must be a real number or "
                                        r"None. Got 'big' of type str instead."):
        fastinit.spec("edge_of_chaos", activation_param="big")
    with pytest.raises(ValueError, match=r"'activation_param' parameter of fastinit.spec "
                                         r"\(scheme 'edge_of_chaos'\) must be a finite real"):
        fastinit.spec("edge_of_chaos", activation_param=math.inf)
    with pytest.raises(ValueError, match=r"scheme 'edge_of_chaos': activation_param=0.2 was "
                                         r"given, but the 'tanh' activation takes no "
                                         r"parameter; only \['elu', 'leaky_relu', "
                                         r"'softplus'\] take one.$"):
        fastinit.sample("edge_of_chaos", (4, 3), seed=0, activation_param=0.2)
    with pytest.raises(ValueError, match=r"The 'activation_param' parameter of scheme "
                                         r"'edge_of_chaos_bias' \(leaky_relu negative slope\) "
                                         r"must be >= 0. Got -0.5 instead."):
        fastinit.sample("edge_of_chaos_bias", (4,), seed=0, activation="leaky_relu",
                        activation_param=-0.5)


def test_edge_of_chaos_scheme():
    s = theory.critical_sigma_w2("tanh", 0.05)
    w = fastinit.sample("edge_of_chaos", (300, 200), seed=0, dtype=np.float64,
                        activation="tanh", sigma_b2=0.05)
    assert np.var(w) * 200 == pytest.approx(s, rel=0.02)
    net = fastinit.MLP([200, 200, 10], activation="tanh",
                       init=fastinit.spec("edge_of_chaos", activation="tanh", sigma_b2=0.05),
                       seed=0, dtype=np.float64)
    assert np.var(net.biases[0]) == pytest.approx(0.05, rel=0.3)   # the matching bias scheme


def test_theory_errors():
    with pytest.raises(ValueError, match="'activation' parameter of fastinit.theory.chi_1.*Did "
                                         "you mean 'tanh'"):
        theory.chi_1("tahn", 1.0)
    with pytest.raises(ValueError, match="'sigma_w2' parameter.*\\(0.0, inf\\)"):
        theory.q_star("tanh", 0.0)
    with pytest.raises(ValueError, match="'sigma_b2' parameter.*\\[0.0, inf\\)"):
        theory.phase("tanh", 1.0, -0.1)


# One scheme per family, with shapes (PyTorch layout; the Keras one is the same weight as
# (*kernel, in, out)): the family's closed-form E[w^2] (theory.second_moment ->
# families.moment_*) against the mean square of what sample draws.
MOMENT_CASES = [
    ("constant", dict(value=-0.3), [(3, 4), (2, 3, 5)]),
    ("uniform", dict(low=-0.2, high=0.7), [(64, 33), (7,)]),
    ("normal", dict(mean=0.3, std=0.5), [(64, 33)]),
    ("trunc_normal", dict(mean=0.2, std=1.5, a=-1.0, b=3.0), [(64, 33)]),
    ("trunc_normal_std", dict(mean=1.0, std=0.5, a=-1.0, b=2.0), [(64, 33)]),
    ("trunc_normal_corrected", dict(std=0.3), [(64, 33)]),
    ("he_normal", {}, [(64, 33), (16, 8, 3, 3)]),
    ("kaiming_uniform", dict(a=0.2, mode="fan_out"), [(64, 33), (16, 8, 3)]),
    ("glorot_uniform", {}, [(33, 64)]),
    ("xavier_normal", dict(gain=1.7), [(33, 64)]),
    ("edge_of_chaos", dict(activation="tanh", sigma_b2=0.05), [(64, 33)]),
    ("orthogonal", dict(gain=1.5), [(12, 7), (7, 12), (4, 3, 3, 3)]),
    ("identity", dict(gain=2.0), [(3, 5), (5, 3)]),
    ("dirac", dict(groups=2), [(6, 2, 3, 3), (4, 8, 3)]),
    ("delta_orthogonal", dict(gain=1.3), [(6, 4, 3), (5, 5, 3, 3)]),
    ("sparse", dict(sparsity=0.3, std=0.2), [(9, 14), (14, 9)]),
    ("ZerO", {}, [(3, 5), (12, 7), (8, 4, 3, 3), (3, 6, 3)]),
]
EXACT = {"constant", "identity", "dirac", "zero", "orthogonal", "delta_orthogonal"}


@pytest.mark.parametrize("layout", ["torch", "keras"])
@pytest.mark.parametrize("scheme,params,shapes", MOMENT_CASES, ids=[c[0] for c in MOMENT_CASES])
def test_every_family_moment_matches_sampled_mean_square(scheme, params, shapes, layout):
    family = fastinit.get_scheme(scheme).family
    for shape in shapes:
        if layout == "keras" and len(shape) >= 2:
            shape = shape[2:] + (shape[1], shape[0])
        if len(shape) == 1 and layout == "torch" and fastinit.get_scheme(scheme).needs_fans:
            continue
        m = theory.second_moment(scheme, shape, layout=layout, **params)
        n = max(1, 200_000 // int(np.prod(shape)))
        w = fastinit.sample(scheme, shape, seed=11, n=n, layout=layout, dtype=np.float64,
                            **params)
        w2 = w.ravel() ** 2
        if family in EXACT:   # deterministic, or orthogonal: a fixed Frobenius norm
            assert m == pytest.approx(w2.mean(), rel=1e-10, abs=1e-15), (shape, layout)
        else:
            se = w2.std() / math.sqrt(w2.size)
            assert abs(m - w2.mean()) < 5 * se, (shape, layout, m, w2.mean(), se)


def test_moments_cover_every_family():
    from fastinit.families import FAMILIES
    covered = {fastinit.get_scheme(c[0]).family for c in MOMENT_CASES}
    assert covered == set(FAMILIES) - {"custom"}


def test_moment_is_none_without_a_closed_form_or_for_undrawable_shapes():
    fastinit.register_scheme(fastinit.Scheme(
        "test_moment_custom", "custom", fixed=dict(transform=lambda u, fi, fo: u - 0.5)),
        replace=True)
    assert theory.second_moment("test_moment_custom", (4, 4)) is None
    assert theory.second_moment("orthogonal", (5,)) is None
    assert theory.second_moment("identity", (3, 3, 3)) is None
    assert theory.second_moment("sparse", (3, 3, 3), sparsity=0.1) is None
    assert theory.second_moment("dirac", (5, 5)) is None
    assert theory.second_moment("dirac", (5, 4, 3), groups=2) is None
    assert theory.second_moment("delta_orthogonal", (3, 5, 3)) is None
    assert theory.second_moment("trunc_normal", (3, 3), a=60.0, b=70.0) is None


def test_second_moment_takes_a_spec_and_refuses_a_parameter_twice():
    s = fastinit.spec("xavier_uniform", gain=2.0)
    assert theory.second_moment(s, (64, 100)) == pytest.approx(4 * 2 / 164)
    with pytest.raises(TypeError, match=r"fastinit.theory.second_moment got parameter\(s\) "
                                        r"\['gain'\] both in the spec and as keyword"):
        theory.second_moment(s, (64, 100), gain=3.0)


def _nan_activation(z):
    return z * np.nan


def _nan_below_zero(z):
    return np.where(z > 0, z, np.nan)


@pytest.mark.parametrize("call", [
    lambda f: theory.critical_sigma_w2(f, 0.0),
    lambda f: theory.critical_sigma_w2(f, 0.05),
    lambda f: theory.q_star(f, 1.0, 0.1),
    lambda f: theory.chi_1(f, 1.0),
    lambda f: theory.phase(f, 1.5, 0.05),
    lambda f: theory.length_map(f, 1.0, 0.0, 1.0),
], ids=["critical", "critical_b", "q_star", "chi_1", "phase", "length_map"])
@pytest.mark.parametrize("activation", [_nan_activation, _nan_below_zero])
def test_an_activation_returning_nan_raises_instead_of_returning_a_bound(call, activation):
    """A NaN comparison is False, so a bisection on it walks to a bound: critical_sigma_w2
    returned 999.9999 (its upper search bound) and q_star 0 for lambda z: z * nan."""
    with pytest.raises(ValueError, match=r"The 'activation' parameter of fastinit\.theory\."
                                         r"\w+ returned NaN on Gaussian inputs.*Got <function"):
        call(activation)


@pytest.mark.parametrize("activation, sigma_b2", [("gelu", 0.05), ("silu", 0.05),
                                                  ("mish", 0.0), ("silu", 0.5)])
def test_no_edge_of_chaos_where_chi_1_jumps_past_one(activation, sigma_b2):
    """gelu, silu and mish lose their fixed point q* (reached from q0 = 1) before chi_1
    reaches 1: chi_1 jumps from about 0.73 to inf. critical_sigma_w2("gelu", 0.05) returned
    2.2341, where theory.chi_1 is 0.734 (the unstable fixed point crossing q0 = 1), and the
    edge_of_chaos scheme drew weights of that variance."""
    with pytest.raises(ValueError, match=r"fastinit\.theory\.critical_sigma_w2: chi_1 jumps "
                                         r"from 0\.\d+ to \S+ at sigma_w\^2 = \d\.\d+"):
        theory.critical_sigma_w2(activation, sigma_b2)
    with pytest.raises(ValueError, match=r"chi_1 jumps"):
        fastinit.sample("edge_of_chaos", (4, 3), seed=0, activation=activation,
                        sigma_b2=sigma_b2)


@pytest.mark.parametrize("activation, sigma_b2", [("relu", 0.0), ("tanh", 0.05),
                                                  ("elu", 0.0), ("gelu", 0.5),
                                                  ("sigmoid", 0.05), ("selu", 0.05)])
def test_chi_1_is_one_at_the_edge_of_chaos(activation, sigma_b2):
    s = theory.critical_sigma_w2(activation, sigma_b2)
    assert theory.chi_1(activation, s * (1 - 1e-9), sigma_b2) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("call, match", [
    (lambda: theory.q_star("tanh", 1.5, 0.05, q0=0.0), r"'q0' .* interval \(0\.0, inf\)"),
    (lambda: theory.q_star("tanh", 1.5, 0.05, q0=-1.0), r"'q0' .* interval \(0\.0, inf\)"),
    (lambda: theory.q_star("tanh", 1.5, 0.05, q0="a"), r"'q0' .* real number"),
    (lambda: theory.q_star("tanh", 1.5, 0.05, tol=0.0), r"'tol' .* interval \(0\.0, inf\)"),
    (lambda: theory.q_star("tanh", 1.5, 0.05, max_iter=0), r"'max_iter' .* integer >= 1"),
    (lambda: theory.length_map("tanh", 1.5, 0.05, -1.0), r"'q' .* interval \[0\.0, inf\)"),
    (lambda: theory.length_map("tanh", 1.5, 0.05, math.nan), r"'q' .* finite"),
    (lambda: theory.length_map("tanh", 1.5, 0.05, None), r"'q' .* real number"),
    (lambda: theory.critical_sigma_w2("tanh", 0.05, tol=0.0), r"'tol' .* \(0\.0, inf\)"),
    (lambda: theory.critical_sigma_w2("tanh", 0.05, low=-1.0), r"'low' .* \(0\.0, inf\)"),
    (lambda: theory.critical_sigma_w2("tanh", 0.05, low="a"), r"'low' .* real number"),
    (lambda: theory.critical_sigma_w2("tanh", 0.05, high=math.nan), r"'high' .* finite"),
    (lambda: theory.critical_sigma_w2("tanh", 0.05, low=10.0, high=1.0),
     r"'high' .* interval \(10\.0, inf\)"),
], ids=["q0_zero_hung", "q0_negative_gave_inf", "q0_str", "tol_zero", "max_iter_zero",
        "q_negative_read_as_0", "q_nan_blamed_tanh", "q_none", "critical_tol_zero_hung",
        "low_negative", "low_str", "high_nan_gave_nan", "low_above_high"])
def test_numeric_options_are_checked(call, match):
    """q_star(q0=0) and critical_sigma_w2(tol=0) looped forever; q0 < 0 returned inf, q < 0
    was read as 0, a NaN q blamed the activation, a str raised Python's TypeError."""
    with pytest.raises((TypeError, ValueError), match=match):
        call()


def test_second_moment_checks_its_shape():
    """second_moment('he_normal', 5) raised Python's "object of type 'int' has no len()", and
    (5,) "mode 'fan_in' needs fan_in; this shape has no fans", naming no function."""
    for shape in (5, (5,)):
        with pytest.raises(ValueError, match=r"The 'shape' parameter of fastinit\.theory\."
                                             r"second_moment must have at least 2 dimensions"):
            theory.second_moment("he_normal", shape)
    with pytest.raises(TypeError, match=r"The 'shape' parameter of fastinit\.theory\."
                                        r"second_moment must be"):
        theory.second_moment("he_normal", "5")
    assert theory.second_moment("he_normal", (5,), layout="keras") == pytest.approx(2 / 5)
    assert theory.second_moment("normal", (5,), std=2.0) == pytest.approx(4.0)


def test_a_tolerance_below_float64_spacing_stops_at_the_closest_float():
    """tol=1e-17 looped forever: the bracket cannot shrink below one float64 step."""
    s = theory.critical_sigma_w2("tanh", 0.05, tol=1e-17)
    assert s == pytest.approx(theory.critical_sigma_w2("tanh", 0.05), rel=1e-12)


@pytest.mark.parametrize("activation, value, match", [
    ("softplus", 0.0, r"\(softplus beta\) must be > 0. Got 0.0 instead."),
    ("softplus", -1.0, r"\(softplus beta\) must be > 0. Got -1.0 instead."),
    ("softplus", math.nan, r"must be a finite real number. Got nan instead."),
    ("softplus", math.inf, r"must be a finite real number. Got inf instead."),
    ("elu", 0.0, r"\(elu alpha\) must be > 0. Got 0.0 instead."),
    ("elu", -0.5, r"\(elu alpha\) must be > 0. Got -0.5 instead."),
    ("elu", -math.inf, r"must be a finite real number. Got -inf instead."),
    ("leaky_relu", -0.5, r"\(leaky_relu negative slope\) must be >= 0. Got -0.5 instead."),
], ids=["softplus_beta_0_gave_inf", "softplus_beta_negative", "softplus_beta_nan",
        "softplus_beta_inf", "elu_alpha_0", "elu_alpha_negative", "elu_alpha_inf",
        "leaky_slope_negative"])
def test_theory_refuses_the_activation_params_networks_refuse(activation, value, match):
    """The theory functions took any elu alpha and any softplus beta: beta=0 gave chi_1 = inf
    and a gain of 'no finite gain' blaming the activation, a negative one an answer for a
    network fastinit cannot build. They check the parameter as MLP does, with its message."""
    calls = {"fastinit.calculate_gain": lambda: fastinit.calculate_gain(
                 activation, value, method="second_moment"),
             "fastinit.theory.chi_1": lambda: theory.chi_1(activation, 1.0, 0.0, value),
             "fastinit.theory.q_star": lambda: theory.q_star(activation, 1.0, 0.1, value),
             "fastinit.theory.phase": lambda: theory.phase(activation, 1.0, 0.1, value),
             "fastinit.theory.critical_sigma_w2": lambda: theory.critical_sigma_w2(
                 activation, 0.0, value),
             "fastinit.theory.length_map": lambda: theory.length_map(
                 activation, 1.0, 0.0, 1.0, value)}
    for func, call in calls.items():
        with pytest.raises(ValueError, match=rf"^The 'param' parameter of {re.escape(func)} "
                                             rf"(\(\w+ [\w ]+\) )?{match}$"):
            call()
    with pytest.raises(ValueError, match=match):
        fastinit.MLP([3, 4, 2], activation, activation_param=value)


@pytest.mark.parametrize("activation, value", [
    ("softplus", 0.5), ("softplus", 3.0), ("elu", 0.5), ("elu", 2.0), ("leaky_relu", 0.0),
    ("leaky_relu", 0.2)])
def test_theory_takes_the_activation_params_networks_take(activation, value):
    fastinit.MLP([3, 4, 2], activation, activation_param=value)
    assert math.isfinite(theory.chi_1(activation, 1.0, 0.0, value))
    assert math.isfinite(fastinit.calculate_gain(activation, value, method="second_moment"))
