"""Elementwise activations and their exact derivatives, applied to whole blocks.

Shapes: z, a, d are flat arrays of equal length (a layer's pre-activations, activations and
derivatives for a batch). Codes (the API maps names to them):

    0 linear  1 relu  2 leaky_relu  3 elu  4 selu  5 gelu (erf)  6 gelu_tanh  7 silu
    8 tanh    9 sigmoid  10 softplus  11 softsign  12 mish

``param`` is relu's derivative at 0 (0 by default, 1 for ZerO), leaky_relu's slope, elu's
alpha and softplus's beta. The dispatch on ``code`` sits outside the loops, so each loop is a
straight elementwise pass that LLVM vectorises. float32 uses the vectorisable exp / tanh / log1p
below (Cephes polynomials, about 1 ulp) and, for GELU, a vectorisable normal CDF in float64
(correctly rounded to float32 but at halfway cases); float64 uses libm for exact checks.
"""
import math

import numpy as np

from ._config import jit, single
from .rng import _bits_f32, exp_f64, log_f32, log_f64

LINEAR, RELU, LEAKY_RELU, ELU, SELU, GELU, GELU_TANH, SILU, TANH, SIGMOID, SOFTPLUS, \
    SOFTSIGN, MISH = range(13)
SELU_LAMBDA = 1.0507009873554805
SELU_ALPHA = 1.6732632423543772
SQRT_2_OVER_PI = 0.7978845608028654
INV_SQRT_2 = 0.7071067811865476
INV_SQRT_2PI = 0.3989422804014327
F32 = np.float32


@jit(forceinline=True)
def exp_f32(x):
    """e^x for float32, vectorisable; arguments are clamped to [-87.3, 88.3] (no inf)."""
    x = min(max(x, F32(-87.3)), F32(88.3))
    n = np.floor(x * F32(1.44269504088896341) + F32(0.5))   # a float: math.floor's int64
    nd = np.float64(n)            # would not vectorise on AVX2 (no float -> int64 instruction)
    r = x - nd * F32(0.693359375) - nd * F32(-2.12194440e-4)
    p = (((((F32(1.9875691500E-4) * r + F32(1.3981999507E-3)) * r + F32(8.3334519073E-3)) * r
           + F32(4.1665795894E-2)) * r + F32(1.6666665459E-1)) * r + F32(5.0000001201E-1))
    y = p * r * r + r + F32(1.0)
    return y * _bits_f32(np.uint32(np.int32(n) + np.int32(127)) << np.uint32(23))


@jit(forceinline=True)
def tanh_f32(x):
    """tanh for float32, vectorisable (Cephes tanhf: polynomial near 0, exp beyond)."""
    ax = abs(x)
    z = x * x
    small = ((((F32(-5.70498872745E-3) * z + F32(2.06390887954E-2)) * z
               - F32(5.37397155531E-2)) * z + F32(1.33314422036E-1)) * z
             - F32(3.33332819422E-1)) * z * x + x
    large = F32(1.0) - F32(2.0) / (exp_f32(ax + ax) + F32(1.0))
    large = large if x >= 0 else -large
    return small if ax < F32(0.625) else large


@jit(forceinline=True)
def sigmoid_f32(x):
    return F32(1.0) / (F32(1.0) + exp_f32(-x))


@jit(forceinline=True)
def log1p_small_f32(t):
    """log(1 + t) for t in [0, 1] (a float32's e^-|x|), vectorisable, in float64: there 1 + t
    keeps t's digits (rounded to float32 it lost them: softplus was off by up to 8e3 ulp)."""
    td = np.float64(t)
    series = td * (1.0 - td * (0.5 - td / 3.0))       # error below t^4 / 4
    return series if td < 1e-5 else log_f64(1.0 + td)


@jit(forceinline=True)
def expm1_f32(x):
    """e^x - 1 for float32 x, vectorisable, in float64: its Taylor series to x^10 for |x| < 1/2
    (error below 3e-11 of it), where exp_f32(x) - 1 cancels (elu lost every digit near 0)."""
    xd = np.float64(x)
    series = xd * (1.0 + xd * (0.5 + xd * (1.0 / 6 + xd * (1.0 / 24 + xd * (1.0 / 120 + xd * (
        1.0 / 720 + xd * (1.0 / 5040 + xd * (1.0 / 40320 + xd * (1.0 / 362880
                                                                + xd / 3628800)))))))))
    return series if abs(xd) < 0.5 else exp_f32(x) - 1.0


@jit(forceinline=True)
def softplus_f32(x):
    """log(1 + e^x), stable, float32."""
    return max(x, F32(0.0)) + log1p_small_f32(exp_f32(-abs(x)))


@jit(forceinline=True)
def softplus_f64(x):
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


# The float32 GELU's normal CDF Phi(x) = erfc(-x / sqrt 2) / 2, vectorisable (libm's erf is a
# call), in float64. With t = |x| / sqrt 2 and s = 1 / (1 + t / 2), erfc(t) = s e^(-t^2 + g(s))
# (the form of Numerical Recipes' erfcc), g a polynomial fitted for fastinit: least squares in
# Chebyshev polynomials of degree 17 at 600 Chebyshev nodes of t in [0, 13], written in powers
# of u (s mapped onto [-1, 1]; bench/fit_erfc.py); relative error of erfc about 1e-13
# (tests/test_activations.py). Beyond t = 13 (|x| > 18.4) erfc(t) < 1e-74: 0. The tail x << 0
# is erfc itself, so relative accuracy holds there too (1 + erf(x / sqrt 2) loses it below -7).
ERFC_T_MAX = 13.0
_S_MIN = 1.0 / (1.0 + ERFC_T_MAX / 2)
_U_SCALE, _U_SHIFT = 2.0 / (1.0 - _S_MIN), -(1.0 + _S_MIN) / (1.0 - _S_MIN)
ERFC_G = (-0.5813805622919194, 0.5916626704140884, 0.020841393196858488, -0.032896261832277056,
          -0.0020957550313930283, 0.004577670074567076, -0.00016033456687579803,
          -0.0007759773211278797, 0.00016914616885733662, 0.00011597974855776106,
          -6.0585024440199624e-05, -8.60484132538038e-06, 1.4773135964537666e-05,
          -2.134804959505596e-06, -2.42828254196781e-06, 9.355261347703991e-07,
          2.0791925553835354e-07, -1.3218750144513345e-07)


@jit(forceinline=True)
def half_erfc(t):
    """erfc(t) / 2 for float64 t >= 0."""
    tc = min(t, ERFC_T_MAX)
    s = 1.0 / (1.0 + 0.5 * tc)
    u = s * _U_SCALE + _U_SHIFT            # s in [_S_MIN, 1] onto u in [-1, 1]
    c = ERFC_G                             # the polynomial in Estrin's order (short chains)
    u2 = u * u
    u4 = u2 * u2
    u8 = u4 * u4
    s0 = (c[0] + c[1] * u) + (c[2] + c[3] * u) * u2
    s1 = (c[4] + c[5] * u) + (c[6] + c[7] * u) * u2
    s2 = (c[8] + c[9] * u) + (c[10] + c[11] * u) * u2
    s3 = (c[12] + c[13] * u) + (c[14] + c[15] * u) * u2
    g = (s0 + s1 * u4) + (s2 + s3 * u4) * u8 + (c[16] + c[17] * u) * (u8 * u8)
    h = 0.5 * s * exp_f64(g - tc * tc)
    return h if t < ERFC_T_MAX else 0.0


@jit(forceinline=True)
def normal_cdf(x):
    """Phi(x) for float64 x. Near 0 its Taylor series (error below x^5 / 100): there x Phi(x)
    is close to halfway between two floats (0.5 x, x tiny) and the fit's 1e-13 would pick a
    side at random."""
    h = half_erfc(abs(x) * INV_SQRT_2)
    near0 = 0.5 + x * INV_SQRT_2PI * (1.0 - x * x / 6.0)
    return near0 if abs(x) < 1e-3 else (1.0 - h if x > 0.0 else h)


@jit(forceinline=True)
def normal_pdf(x):
    """phi(x) for float64 x (0 beyond |x| = 18.4, as normal_cdf's tail)."""
    t = min(abs(x) * INV_SQRT_2, ERFC_T_MAX)
    return INV_SQRT_2PI * exp_f64(-t * t) if t < ERFC_T_MAX else 0.0


@jit
def forward(code, param, z, a):
    """a <- phi(z) elementwise."""
    n = z.shape[0]
    f32 = single(z)
    t = z.dtype.type
    p = t(param)
    one = t(1.0)
    zero = t(0.0)
    half = t(0.5)
    if code == LINEAR:
        for i in range(n):
            a[i] = z[i]
    elif code == RELU:
        for i in range(n):
            a[i] = z[i] if z[i] > zero else zero
    elif code == LEAKY_RELU:
        for i in range(n):
            a[i] = z[i] if z[i] > zero else p * z[i]
    elif code == ELU or code == SELU:
        lam = t(SELU_LAMBDA) if code == SELU else one
        alpha = t(SELU_ALPHA) if code == SELU else p
        if f32:
            for i in range(n):
                x = z[i]
                a[i] = lam * (x if x > zero else alpha * expm1_f32(x))
        else:
            for i in range(n):
                x = z[i]
                a[i] = lam * (x if x > zero else alpha * math.expm1(x))
    elif code == GELU:
        if f32:
            for i in range(n):
                x = np.float64(z[i])
                a[i] = x * normal_cdf(x)
        else:
            for i in range(n):
                x = z[i]
                a[i] = 0.5 * x * (1.0 + math.erf(x * INV_SQRT_2))
    elif code == GELU_TANH:
        c = t(SQRT_2_OVER_PI)
        k = t(0.044715)
        if f32:
            for i in range(n):
                x = z[i]
                a[i] = half * x * (one + tanh_f32(c * (x + k * x * x * x)))
        else:
            for i in range(n):
                x = z[i]
                a[i] = 0.5 * x * (1.0 + math.tanh(c * (x + k * x * x * x)))
    elif code == SILU:
        if f32:
            for i in range(n):
                a[i] = z[i] * sigmoid_f32(z[i])
        else:
            for i in range(n):
                a[i] = z[i] / (1.0 + math.exp(-z[i]))
    elif code == TANH:
        if f32:
            for i in range(n):
                a[i] = tanh_f32(z[i])
        else:
            for i in range(n):
                a[i] = math.tanh(z[i])
    elif code == SIGMOID:
        if f32:
            for i in range(n):
                a[i] = sigmoid_f32(z[i])
        else:
            for i in range(n):
                a[i] = 1.0 / (1.0 + math.exp(-z[i]))
    elif code == SOFTPLUS:
        if f32:
            for i in range(n):
                a[i] = softplus_f32(p * z[i]) / p
        else:
            for i in range(n):
                a[i] = softplus_f64(p * z[i]) / p
    elif code == MISH:         # x tanh(softplus(x)) (Misra 2019)
        if f32:
            for i in range(n):
                a[i] = z[i] * tanh_f32(softplus_f32(z[i]))
        else:
            for i in range(n):
                a[i] = z[i] * math.tanh(softplus_f64(z[i]))
    else:  # SOFTSIGN
        for i in range(n):
            a[i] = z[i] / (one + abs(z[i]))


@jit
def backward(code, param, z, a, d):
    """d <- d * phi'(z) elementwise (d holds dL/da on entry, dL/dz on exit)."""
    n = z.shape[0]
    f32 = single(z)
    t = z.dtype.type
    p = t(param)
    one = t(1.0)
    zero = t(0.0)
    half = t(0.5)
    if code == LINEAR:
        return
    if code == RELU:
        for i in range(n):
            d[i] *= one if z[i] > zero else (p if z[i] == zero else zero)
    elif code == LEAKY_RELU:
        for i in range(n):
            d[i] *= one if z[i] > zero else p
    elif code == ELU or code == SELU:
        lam = t(SELU_LAMBDA) if code == SELU else one
        alpha = t(SELU_ALPHA) if code == SELU else p
        for i in range(n):   # phi'(z) = lam * alpha * e^z = a + lam * alpha for z <= 0
            d[i] *= lam if z[i] > zero else a[i] + lam * alpha
    elif code == GELU:
        if f32:
            for i in range(n):
                x = np.float64(z[i])
                d[i] *= normal_cdf(x) + x * normal_pdf(x)
        else:
            for i in range(n):
                x = z[i]
                d[i] *= 0.5 * (1.0 + math.erf(x * INV_SQRT_2)) + x * INV_SQRT_2PI * math.exp(
                    -0.5 * x * x)
    elif code == GELU_TANH:
        c = t(SQRT_2_OVER_PI)
        k = t(0.044715)
        k3 = t(3 * 0.044715)
        for i in range(n):
            x = z[i]
            th = tanh_f32(c * (x + k * x * x * x)) if f32 else math.tanh(c * (x + k * x * x * x))
            d[i] *= half * (one + th) + half * x * (one - th * th) * c * (one + k3 * x * x)
    elif code == SILU:
        for i in range(n):
            s = sigmoid_f32(z[i]) if f32 else 1.0 / (1.0 + math.exp(-z[i]))
            d[i] *= s * (one + z[i] * (one - s))
    elif code == TANH:
        for i in range(n):
            d[i] *= one - a[i] * a[i]
    elif code == SIGMOID:
        for i in range(n):
            d[i] *= a[i] * (one - a[i])
    elif code == SOFTPLUS:
        for i in range(n):
            d[i] *= sigmoid_f32(p * z[i]) if f32 else 1.0 / (1.0 + math.exp(-p * z[i]))
    elif code == MISH:         # t + x (1 - t^2) sigmoid(x), t = tanh(softplus(x))
        for i in range(n):
            x = z[i]
            if f32:
                th, sg = tanh_f32(softplus_f32(x)), sigmoid_f32(x)
            else:
                th, sg = math.tanh(softplus_f64(x)), 1.0 / (1.0 + math.exp(-x))
            d[i] *= th + x * (one - th * th) * sg
    else:  # SOFTSIGN
        for i in range(n):
            q = one + abs(z[i])
            d[i] *= one / (q * q)
