"""Mean-field maps of signal propagation (Poole et al. 2016; Schoenholz et al. 2017): length map,
q*, chi_1, the edge of chaos, depth scales, for any activation (a name or a callable).

A wide network with W_ij ~ (0, sigma_w^2 / fan_in) and b_i ~ (0, sigma_b^2) maps the second
moment q of its pre-activations layer to layer by the length map

    q' = V(q) = sigma_w^2 E[phi(sqrt(q) z)^2] + sigma_b^2,          z ~ N(0, 1)

whose fixed point q* is where signals settle. Two inputs with correlation c follow the
correlation map c' = (sigma_w^2 E[phi(u1) phi(u2)] + sigma_b^2) / q*, u ~ N(0, q* [[1, c],[c, 1]]).
The slope chi_1 = sigma_w^2 E[phi'(sqrt(q*) z)^2] decides the phase: ordered (chi_1 < 1,
inputs collapse together), chaotic (chi_1 > 1, they decorrelate), critical (chi_1 = 1, the edge
of chaos, where gradients neither vanish nor explode and depth scales diverge). Depth scales:
xi_q = -1 / ln(V'(q*)) and xi_c = -1 / ln(chi_c), chi_c the slope of the correlation map at its
fixed point c*. Signals train through about 6 xi_c layers.

Known points: ReLU, sigma_b = 0: critical at sigma_w^2 = 2 (He). tanh, sigma_b^2 = 0.05:
critical sigma_w^2 = 1.7610, q* = 0.570.

Expectations use composite Gauss-Legendre quadrature (activations.gaussian_expectation); the
two-dimensional ones nest it, with panel edges where u1 and u2 cross 0 (_expect2). An
activation that returns NaN on Gaussian inputs makes every expectation NaN: that raises a
ValueError (a bisection would silently return one of its bounds). Public as
``fastinit.theory.<name>``; this module needs only the activations.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import activations
from ._validate import check_int, check_real

_F = "fastinit.theory"


def _phi(activation, param, func):
    f = activations.resolve(activation, param, func=func, argname="activation")
    return _no_nan(f, activation, func, "")


def _dphi(activation, param, func):
    f = activations.resolve_derivative(activation, param, func=func, argname="activation")
    return _no_nan(f, activation, func, " (its derivative; for a callable, a central difference)")


def _no_nan(f, activation, func, what):
    """f, raising where it returns NaN: every expectation would be NaN, and a bisection on a
    NaN comparison silently walks to one of its bounds."""
    def checked(x):
        y = f(x)
        if np.isnan(y).any():
            raise ValueError(f"The 'activation' parameter of {func}{what} returned NaN on "
                             f"Gaussian inputs, so its mean-field expectations are not finite. "
                             f"An activation must map every real number to a real number. "
                             f"Got {activation!r}.")
        return y
    return checked


def _check_sigmas(sigma_w2, sigma_b2, func):
    return (check_real(sigma_w2, "sigma_w2", func, low=0.0, low_open=True),
            check_real(sigma_b2, "sigma_b2", func, low=0.0))


def length_map(activation, sigma_w2: float, sigma_b2: float, q: float, param=None) -> float:
    """V(q) = sigma_w^2 E[phi(sqrt(q) z)^2] + sigma_b^2."""
    func = f"{_F}.length_map"
    sigma_w2, sigma_b2 = _check_sigmas(sigma_w2, sigma_b2, func)
    q = check_real(q, "q", func, low=0.0)
    phi = _phi(activation, param, func)
    return _length(phi, sigma_w2, sigma_b2, q)


def _length(phi, sigma_w2, sigma_b2, q):
    return sigma_w2 * activations.gaussian_expectation(lambda z: phi(z) ** 2,
                                                       math.sqrt(max(q, 0.0))) + sigma_b2


def q_star(activation, sigma_w2: float, sigma_b2: float = 0.0, param=None, *, q0: float = 1.0,
           tol: float = 1e-13, max_iter: int = 100_000) -> float:
    """The fixed point of the length map reached from q0 (inf when q grows without bound).

    The fixed point that the dynamics of depth, q <- V(q), approach from q0: found by
    bracketing and bisection. For a neutral map (ReLU at sigma_w^2 = 2, sigma_b = 0, every q
    is fixed) it returns q0; 0 and inf when signals die out or blow up.
    """
    func = f"{_F}.q_star"
    sigma_w2, sigma_b2 = _check_sigmas(sigma_w2, sigma_b2, func)
    q0 = check_real(q0, "q0", func, low=0.0, low_open=True)   # 0 doubles to 0 forever
    tol = check_real(tol, "tol", func, low=0.0, low_open=True)
    max_iter = check_int(max_iter, "max_iter", func, minimum=1)
    phi = _phi(activation, param, func)
    return _q_star(phi, sigma_w2, sigma_b2, q0, tol, max_iter)


def _q_star(phi, sigma_w2, sigma_b2, q0=1.0, tol=1e-13, max_iter=100_000):
    """The root of g(q) = V(q) - q that iterating q <- V(q) from q0 approaches: bracketed by
    doubling (or halving) from q0 in the direction of g's sign, then found by Brent's method
    to a relative tol."""
    g = lambda q: _length(phi, sigma_w2, sigma_b2, q) - q
    g0 = g(q0)
    if g0 == 0 or abs(g0) <= tol * q0:
        return q0                       # q0 is fixed (or the map is neutral, ReLU at 2)
    lo = hi = q0
    if g0 > 0:                          # q grows: find the first q with g <= 0 above q0
        while True:
            lo, hi = hi, hi * 2.0
            if hi > 1e15:
                return math.inf
            gh = g(hi)
            if not math.isfinite(gh):
                return math.inf
            if gh <= 0:
                break
    else:                               # q shrinks: find the first q with g >= 0 below q0
        while True:
            lo, hi = lo * 0.5, lo
            if lo < 1e-30:
                return 0.0
            if g(lo) >= 0:
                break
    return _brent(g, lo, hi, tol * hi, max_iter)     # g(lo) >= 0 >= g(hi)


def _brent(f, a, b, xtol, max_iter=200):
    """A root of f between a and b, where f changes sign (or is 0), to within xtol: Brent's
    method, inverse quadratic interpolation or the secant step while they stay inside the
    bracket and shrink it fast enough, a bisection step otherwise (Brent 1973, ch. 4). A few
    evaluations where bisection takes one per bit."""
    fa, fb = f(a), f(b)
    c, fc, d, e = a, fa, b - a, b - a
    for _ in range(max_iter):
        if (fb > 0) == (fc > 0):        # keep the root between b and c
            c, fc, d, e = a, fa, b - a, b - a
        if abs(fc) < abs(fb):           # b the best estimate so far
            a, b, c, fa, fb, fc = b, c, b, fb, fc, fb
        step_tol = 4e-16 * abs(b) + 0.5 * xtol
        m = 0.5 * (c - b)
        if abs(m) <= step_tol or fb == 0:
            return b
        if abs(e) >= step_tol and abs(fa) > abs(fb):
            s = fb / fa
            if a == c:                  # secant
                p, q = 2 * m * s, 1 - s
            else:                       # inverse quadratic interpolation
                q, r = fa / fc, fb / fc
                p = s * (2 * m * q * (q - r) - (b - a) * (r - 1))
                q = (q - 1) * (r - 1) * (s - 1)
            if p > 0:
                q = -q
            p = abs(p)
            if 2 * p < min(3 * m * q - abs(step_tol * q), abs(e * q)):
                e, d = d, p / q
            else:
                d = e = m
        else:
            d = e = m
        a, fa = b, fb
        b += d if abs(d) > step_tol else math.copysign(step_tol, m)
        fb = f(b)
    return b


def chi_1(activation, sigma_w2: float, sigma_b2: float = 0.0, param=None) -> float:
    """chi_1 = sigma_w^2 E[phi'(sqrt(q*) z)^2]: < 1 ordered, > 1 chaotic, = 1 critical."""
    func = f"{_F}.chi_1"
    sigma_w2, sigma_b2 = _check_sigmas(sigma_w2, sigma_b2, func)
    phi, dphi = _phi(activation, param, func), _dphi(activation, param, func)
    q = _q_star(phi, sigma_w2, sigma_b2)
    if not math.isfinite(q):
        return math.inf
    return sigma_w2 * _slope(dphi, q)


JUMP = 1e-3      # |chi_1 - 1| either side of the bisection's bracket beyond this: a jump
_Q_MIN = 1e-200   # at q* = 0 the slope is its limit q -> 0+ (both sides of a kink at 0)


def _slope(dphi, q):
    """E[phi'(sqrt(q) z)^2], at least at q = _Q_MIN."""
    return activations.gaussian_expectation(lambda z: dphi(z) ** 2, math.sqrt(max(q, _Q_MIN)))


def critical_sigma_w2(activation, sigma_b2: float = 0.0, param=None, *, low: float = 1e-3,
                      high: float = 1e3, tol: float = 1e-12) -> float:
    """The sigma_w^2 at which chi_1 = 1 for this sigma_b^2: the edge of chaos (bisection).

    chi_1 is taken at the fixed point q* reached from q = 1. Where that fixed point vanishes
    before chi_1 reaches 1 (gelu, silu, mish at small sigma_b^2: q* jumps to another branch or
    to inf), chi_1 jumps past 1 and no edge of chaos exists: ValueError.
    """
    func = f"{_F}.critical_sigma_w2"
    sigma_b2 = check_real(sigma_b2, "sigma_b2", func, low=0.0)
    low = check_real(low, "low", func, low=0.0, low_open=True)
    high = check_real(high, "high", func, low=low, low_open=True)
    tol = check_real(tol, "tol", func, low=0.0, low_open=True)
    phi, dphi = _phi(activation, param, func), _dphi(activation, param, func)

    def excess(s):
        q = _q_star(phi, s, sigma_b2)
        if not math.isfinite(q):
            return math.inf
        return s * _slope(dphi, q) - 1

    lo, hi = low, high
    if excess(lo) > 0 or excess(hi) < 0:
        raise ValueError(f"{func}: chi_1 - 1 does not change sign for sigma_w^2 in "
                         f"[{low}, {high}] (activation {activation!r}, sigma_b^2 {sigma_b2}); "
                         f"this activation may have no edge of chaos there.")
    while hi - lo > tol * max(1.0, lo):
        mid = 0.5 * (lo + hi)
        if not lo < mid < hi:                 # a tol below float64's spacing: as close as it gets
            break
        if excess(mid) > 0:
            hi = mid
        else:
            lo = mid
    below, above = excess(lo), excess(hi)     # inf above: q* = inf, as ReLU's past 2
    if below < -JUMP or (math.isfinite(above) and above > JUMP):
        raise ValueError(f"{func}: chi_1 jumps from {below + 1:.4g} to {above + 1:.4g} at "
                         f"sigma_w^2 = {lo:.6g} (activation {activation!r}, sigma_b^2 "
                         f"{sigma_b2}): the fixed point q* vanishes there, so chi_1 = 1 is "
                         f"never reached and this activation has no edge of chaos.")
    return 0.5 * (lo + hi)


_EDGES2 = np.linspace(-10.0, 10.0, 49)        # outer panels (z1): 0 is an edge
_X8, _W8 = np.polynomial.legendre.leggauss(8)
_P2 = 24                                           # inner panels (z2) on each side of the kink
_T2 = ((np.arange(_P2)[:, None] + 0.5 * (_X8 + 1)[None, :]) / _P2).ravel()   # nodes in (0, 1)
_V2 = np.tile(_W8, _P2) / (2 * _P2)                                          # their weights


def _expect2(f1, f2, q, c):
    """E[f1(u1) f2(u2)], (u1, u2) ~ N(0, q [[1, c], [c, 1]]): composite Gauss-Legendre with
    every kink of f1, f2 at 0 on a panel edge.

    u1 = s z1, u2 = s (c z1 + r z2), s = sqrt(q), r = sqrt(1 - c^2). The outer integral over z1
    has an edge at 0 (u1's kink); for each z1 the inner one over z2 is split at u2's kink,
    z2 = -c z1 / r, into _P2 panels either side. The inner integral, as a function of z1, bends
    over a width r / |c| around 0 (c near 1: the two kinks nearly meet), so the outer panels
    are refined geometrically there. A fixed tensor grid put relu' and selu' steps inside its
    panels: E[step(u1) step(u2)] off by up to 4e-4 against the arc-cosine kernel, and chi_c of
    selu (sigma_w^2 1.7) 0.93315 where it is 0.93220.
    """
    s, r = math.sqrt(q), math.sqrt(max(0.0, 1.0 - c * c))
    width = _EDGES2[1] - _EDGES2[0]
    edges = _EDGES2
    if r > 0 and abs(c) * width > r:
        k = r / abs(c) * 2.0 ** np.arange(-3, math.ceil(math.log2(abs(c) * width / r)) + 1)
        k = k[k < width]
        edges = np.union1d(_EDGES2, np.concatenate([-k, k]))
    z1, w1 = activations.gaussian_nodes(edges, 8)
    lim = _EDGES2[-1]
    kink = np.clip(-c * z1 / r, -lim, lim) if r > 0 else np.full_like(z1, lim)
    left, right = (kink + lim)[:, None], (lim - kink)[:, None]        # (N1, 1) panel spans
    z2 = np.concatenate([-lim + left * _T2, kink[:, None] + right * _T2], axis=1)   # (N1, N2)
    w2 = np.concatenate([left * _V2, right * _V2], axis=1) * np.exp(-0.5 * z2 * z2) / \
        math.sqrt(2 * math.pi)
    u1 = s * z1[:, None]
    u2 = s * (c * z1[:, None] + r * z2)
    return float(np.sum(w1[:, None] * w2 * f1(u1) * f2(u2)))


def _c_star(phi, sigma_w2, sigma_b2, q, c1, tol=1e-13):
    """The fixed point of the correlation map M(c) = (sigma_w^2 E[phi(u1) phi(u2)] + sigma_b^2)
    / q* that every correlation c in [0, 1) approaches.

    M(1) = V(q*) / q* = 1, M'(1) = chi_1, and M is convex and increasing on [0, 1] (its
    derivatives are sigma_w^2 q^k E[phi^(k)(u1) phi^(k)(u2)] >= 0, Price's theorem). So with
    chi_1 <= 1 the map lies above the diagonal and every c climbs to 1; with chi_1 > 1, c = 1
    repels and h(c) = M(c) - c, >= 0 at 0 and < 0 just below 1, has one root there (_brent).
    Iterating the map instead takes about xi_c steps, unbounded near the edge of chaos.
    """
    if c1 <= 1.0 + 1e-10:
        return 1.0
    h = lambda c: (sigma_w2 * _expect2(phi, phi, q, c) + sigma_b2) / q - c
    lo, hi = 0.0, None
    if h(lo) <= tol:
        return 0.0                      # M(0) = 0 (to rounding): odd activation, sigma_b = 0
    for k in range(1, 48):              # h(1 - d) ~ -(chi_1 - 1) d for small d
        if h(1.0 - 2.0 ** -k) < 0:
            hi = 1.0 - 2.0 ** -k
            break
        lo = 1.0 - 2.0 ** -k
    if hi is None:                      # chi_1 - 1 below what the quadrature resolves
        return 1.0
    return _brent(h, lo, hi, tol)       # h(lo) >= 0 > h(hi)


@dataclass(frozen=True)
class Phase:
    """Mean-field summary of one (activation, sigma_w^2, sigma_b^2)."""
    q_star: float
    chi_1: float
    c_star: float
    chi_c: float
    xi_q: float
    xi_c: float

    @property
    def phase(self) -> str:
        if abs(self.chi_1 - 1) < 1e-6:
            return "critical"
        return "ordered" if self.chi_1 < 1 else "chaotic"


def phase(activation, sigma_w2: float, sigma_b2: float = 0.0, param=None) -> Phase:
    """q*, chi_1, the correlation fixed point c* and its slope chi_c, and the depth scales."""
    func = f"{_F}.phase"
    sigma_w2, sigma_b2 = _check_sigmas(sigma_w2, sigma_b2, func)
    phi, dphi = _phi(activation, param, func), _dphi(activation, param, func)
    q = _q_star(phi, sigma_w2, sigma_b2)
    if not math.isfinite(q):
        return Phase(math.inf, math.inf, math.nan, math.nan, math.nan, math.nan)
    c1 = sigma_w2 * _slope(dphi, q)
    h = 1e-4 * max(q, 1e-8)
    chi_q = (_length(phi, sigma_w2, sigma_b2, q + h)
             - _length(phi, sigma_w2, sigma_b2, max(q - h, 0.0))) / (q + h - max(q - h, 0.0))
    if q <= 1e-12:   # the zero fixed point (odd activation, sigma_b = 0): c is undefined
        c, chi_c = 1.0, c1
    else:
        c = _c_star(phi, sigma_w2, sigma_b2, q, c1)
        chi_c = c1 if c == 1.0 else sigma_w2 * _expect2(dphi, dphi, q, c)
    xi = lambda chi: math.inf if chi >= 1 or chi <= 0 else -1.0 / math.log(chi)
    return Phase(q, c1, c, chi_c, xi(chi_q), xi(chi_c))


