"""Counter-based random numbers: Philox4x32-10 and the transforms built on it.

Every random number in fastinit is a pure function of (key, counter):

    key     = seed                       64 bits -> (k0, k1)
    counter = (block, stream)            block: 64 bits -> (c0, c1); stream: 64 bits -> (c2, c3)

One Philox call turns a counter into four 32-bit words. Value ``p`` of a float32 stream lives in
block ``p // 4``, word ``p % 4``; a float64 stream uses two words per value, so block ``p // 2``.
No state is carried from one value to the next, so any slice of any stream can be drawn by any
thread in any order and gives the same bits. Values are indexed below 2^34, so the top 30 bits
of the block counter are free: a rejection sampler's retry j of value p draws block
``p // 4 + (j << 32)``, still a pure function of (seed, stream, position).

Philox4x32-10: Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as 1, 2, 3",
SC 2011; checked against the Random123 known-answer vectors in tests/test_rng.py.

Everything here is uint64 arithmetic masked to 32 bits: Numba would otherwise promote mixed
unsigned/signed integers to float64.
"""
import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ._config import jit

MASK32 = np.uint64(0xFFFFFFFF)
PHILOX_M0 = np.uint64(0xD2511F53)
PHILOX_M1 = np.uint64(0xCD9E8D57)
PHILOX_W0 = np.uint64(0x9E3779B9)
PHILOX_W1 = np.uint64(0xBB67AE85)
SHIFT32 = np.uint64(32)
INV_2_24 = np.float32(1.0 / 16777216.0)   # 2^-24
INV_2_32 = 1.0 / 4294967296.0             # 2^-32
INV_2_53 = 1.0 / 9007199254740992.0       # 2^-53


@jit(forceinline=True)
def philox4x32(c0, c1, c2, c3, k0, k1):
    """Philox4x32 with 10 rounds. All arguments uint64 holding 32-bit values; returns 4 words."""
    for _ in range(10):
        p0 = PHILOX_M0 * c0
        p1 = PHILOX_M1 * c2
        c0, c1, c2, c3 = (((p1 >> SHIFT32) ^ c1 ^ k0) & MASK32, p1 & MASK32,
                          ((p0 >> SHIFT32) ^ c3 ^ k1) & MASK32, p0 & MASK32)
        k0 = (k0 + PHILOX_W0) & MASK32
        k1 = (k1 + PHILOX_W1) & MASK32
    return c0, c1, c2, c3


@jit(forceinline=True)
def philox_block(block, stream, key):
    """The four words of block ``block`` (uint64) of stream ``stream`` under key ``key``."""
    return philox4x32(block & MASK32, block >> SHIFT32, stream & MASK32, stream >> SHIFT32,
                      key & MASK32, key >> SHIFT32)


@jit(forceinline=True)
def u32_to_unit_f32(x):
    """Word -> float32 in [0, 1): the top 24 bits, times 2^-24."""
    return np.float32(x >> np.uint64(8)) * INV_2_24


@jit(forceinline=True)
def u32_to_open_unit_f32(x):
    """Word -> float32 in (0, 1]: safe as the argument of log."""
    return np.float32((x >> np.uint64(8)) + np.uint64(1)) * INV_2_24


@jit(forceinline=True)
def top53(hi, lo):
    """Two words -> the top 53 of their 64 bits, an integer below 2^53."""
    return ((hi << SHIFT32) | lo) >> np.uint64(11)


@jit(forceinline=True)
def u64_to_unit_f64(hi, lo):
    """Two words -> float64 in [0, 1): top53 times 2^-53."""
    return np.float64(top53(hi, lo)) * INV_2_53


@jit(forceinline=True)
def u64_to_open_unit_f64(hi, lo):
    """Two words -> float64 in (0, 1]."""
    return np.float64(top53(hi, lo) + np.uint64(1)) * INV_2_53


# -- vectorisable float math --------------------------------------------------------------------
# libm calls stop LLVM from vectorising a loop, so the transforms use their own polynomials
# (Cephes, S. L. Moshier): plain multiplies and adds, the same bits on every x86-64 machine,
# within about 1 ulp of the correctly rounded result (tests/test_rng.py measures it).

def _bitcast(source, target, llvm_target):
    """An intrinsic reinterpreting a value's bits as another type of the same width."""
    @intrinsic
    def cast(typingctx, x):
        def codegen(context, builder, sig, args):
            return builder.bitcast(args[0], llvm_target)
        return target(source), codegen
    return cast


_f32_bits = _bitcast(types.float32, types.uint32, ir.IntType(32))
_bits_f32 = _bitcast(types.uint32, types.float32, ir.FloatType())
_f64_bits = _bitcast(types.float64, types.uint64, ir.IntType(64))
_bits_f64 = _bitcast(types.uint64, types.float64, ir.DoubleType())


F32 = np.float32
SQRT_HALF_F32 = F32(0.70710678118654752440)
SQRT_HALF = 0.70710678118654752440
HALF_PI_F32 = F32(math.pi / 2)
HALF_PI = math.pi / 2


@jit(forceinline=True)
def log_f32(x):
    """Natural log of a positive normal float32 (Cephes logf)."""
    b = _f32_bits(x)
    # the exponent kept int32: Numba widens int32 arithmetic to int64, and a vector of int64s
    # converts to float32 in two halves
    e = np.int32(np.int32((b >> np.uint32(23)) & np.uint32(0xFF)) - np.int32(126))
    m = _bits_f32((b & np.uint32(0x007FFFFF)) | np.uint32(0x3F000000))  # [0.5, 1)
    small = m < SQRT_HALF_F32
    e = np.int32(e - np.int32(1)) if small else e
    m = (m + m - F32(1.0)) if small else (m - F32(1.0))
    z = m * m
    y = ((((((((F32(7.0376836292E-2) * m - F32(1.1514610310E-1)) * m + F32(1.1676998740E-1)) * m
              - F32(1.2420140846E-1)) * m + F32(1.4249322787E-1)) * m - F32(1.6668057665E-1)) * m
           + F32(2.0000714765E-1)) * m - F32(2.4999993993E-1)) * m + F32(3.3333331174E-1))
    fe = F32(e)
    y = y * m * z + F32(-2.12194440e-4) * fe - F32(0.5) * z
    return m + y + F32(0.693359375) * fe


@jit(forceinline=True)
def log_f64(x):
    """Natural log of a positive normal float64 (Cephes log)."""
    b = _f64_bits(x)
    e = np.int64((b >> np.uint64(52)) & np.uint64(0x7FF)) - 1022
    m = _bits_f64((b & np.uint64(0x000FFFFFFFFFFFFF)) | np.uint64(0x3FE0000000000000))
    small = m < SQRT_HALF
    e = e - 1 if small else e
    m = (m + m - 1.0) if small else (m - 1.0)
    z = m * m
    p = (((((1.01875663804580931796E-4 * m + 4.97494994976747001425E-1) * m
            + 4.70579119878881725854E0) * m + 1.44989225341610930846E1) * m
          + 1.79368678507819816313E1) * m + 7.70838733755885391666E0)
    q = (((((m + 1.12873587189167450590E1) * m + 4.52279145837532221105E1) * m
           + 8.29875266912776603211E1) * m + 7.11544750618563894466E1) * m
         + 2.31251620126765340583E1)
    fe = np.float64(e)
    y = m * (z * p / q) - 2.121944400546905827679e-4 * fe - 0.5 * z
    return m + y + 0.693359375 * fe


LOG2E = 1.4426950408889634
LN2_HI = 0.693145751953125                 # 726817 / 2^20: n * LN2_HI is exact for |n| < 2^33
LN2_LO = 1.428606820309417232e-6           # ln 2 - LN2_HI
ROUNDER = 6755399441055744.0               # 2^52 + 2^51: adding it puts an integer in the low bits


@jit(forceinline=True)
def exp_f64(y):
    """e^y for float64 y in [-708, 709], vectorisable (libm's exp is a call): y = n ln 2 + r,
    |r| <= ln 2 / 2, e^r by its Taylor series to r^12 (truncation below 2e-16 of it), 2^n put
    into the exponent bits (no float -> int64 instruction on AVX2: the ROUNDER's low bits hold n).
    Within 3 ulp of libm's (tests/test_activations.py)."""
    n = np.floor(y * LOG2E + 0.5)
    r = (y - n * LN2_HI) - n * LN2_LO
    r2 = r * r                             # sum of r^k / k!, k <= 12, in Estrin's order:
    r4 = r2 * r2                           # a short dependency chain, not Horner's 24 steps
    q0 = (1.0 + r) + (0.5 + 1.6666666666666666e-01 * r) * r2
    q1 = ((4.1666666666666664e-02 + 8.333333333333333e-03 * r)
          + (1.388888888888889e-03 + 1.984126984126984e-04 * r) * r2)
    q2 = ((2.48015873015873e-05 + 2.7557319223985893e-06 * r)
          + (2.755731922398589e-07 + 2.505210838544172e-08 * r) * r2)
    p = q0 + (q1 + (q2 + 2.08767569878681e-09 * r4) * r4) * r4
    scale = (_f64_bits(n + ROUNDER) - _f64_bits(ROUNDER) + np.uint64(1023)) << np.uint64(52)
    return p * _bits_f64(scale)


@jit(forceinline=True)
def sincos_f32(x):
    """(sin x, cos x) for float32 x in [-pi/4, pi/4] (Cephes sinf/cosf polynomials)."""
    z = x * x
    s = x + x * z * (F32(-1.6666654611E-1) + z * (F32(8.3321608736E-3)
                                                  + z * F32(-1.9515295891E-4)))
    c = (F32(1.0) - F32(0.5) * z + z * z * (F32(4.166664568298827E-2) + z * (
        F32(-1.388731625493765E-3) + z * F32(2.443315711809948E-5))))
    return s, c


@jit(forceinline=True)
def sincos_f64(x):
    """(sin x, cos x) for float64 x in [-pi/4, pi/4] (Cephes sin/cos polynomials)."""
    z = x * x
    s = x + x * z * (((((1.58962301576546568060E-10 * z - 2.50507477628578072866E-8) * z
                        + 2.75573136213857245213E-6) * z - 1.98412698295895385996E-4) * z
                      + 8.33333333332211858878E-3) * z - 1.66666666666666307295E-1)
    c = 1.0 - 0.5 * z + z * z * (((((-1.13585365213876817300E-11 * z
                                     + 2.08757008419747316778E-9) * z
                                    - 2.75573141792967388112E-7) * z
                                   + 2.48015872888517045348E-5) * z
                                  - 1.38888888888730564116E-3) * z + 4.16666666666665929218E-2)
    return s, c


@jit(forceinline=True)
def _turn(s0, c0, quadrant, sqrt_half):
    """(cos, sin) of phi + pi/4 + quadrant * pi/2 from (sin phi, cos phi), without branches."""
    c1 = (c0 - s0) * sqrt_half
    s1 = (s0 + c0) * sqrt_half
    odd = (quadrant & np.uint64(1)) == np.uint64(1)
    c = -s1 if odd else c1
    s = c1 if odd else s1
    neg = quadrant >= np.uint64(2)
    return (-c if neg else c), (-s if neg else s)


@jit(forceinline=True)
def box_muller_f32(w0, w1):
    """Two words -> two independent standard normals (float32), Box-Muller.

    Radius from the top 24 bits of w0 as u in (0, 1]; angle from w1: its top 2 bits pick the
    quadrant, the next 22 an offset phi uniform in [-pi/4, pi/4): theta = phi + pi/4 + q pi/2
    is uniform on the circle, and sin/cos need no range reduction.
    """
    r = F32(math.sqrt(F32(-2.0) * log_f32(u32_to_open_unit_f32(w0))))
    quadrant = (w1 >> np.uint64(30)) & np.uint64(3)
    phi = (F32(np.int32((w1 >> np.uint64(8)) & np.uint64(0x3FFFFF))) * F32(2.0 ** -22)
           - F32(0.5)) * HALF_PI_F32     # via int32: one conversion of 16 lanes, not two of 8
    s0, c0 = sincos_f32(phi)
    c, s = _turn(s0, c0, quadrant, SQRT_HALF_F32)
    return r * c, r * s


@jit(forceinline=True)
def box_muller_f64(w0, w1, w2, w3):
    """Four words -> two independent standard normals (float64), Box-Muller.

    Radius from the top 53 bits of (w0, w1) as u in (0, 1]; angle from (w2, w3): 2 bits of
    quadrant and 51 bits of offset, as in box_muller_f32.
    """
    r = math.sqrt(-2.0 * log_f64(u64_to_open_unit_f64(w0, w1)))
    bits = (w2 << SHIFT32) | w3
    quadrant = bits >> np.uint64(62)
    phi = (np.float64((bits >> np.uint64(11)) & np.uint64(0x7FFFFFFFFFFFF)) * 2.0 ** -51
           - 0.5) * HALF_PI
    s0, c0 = sincos_f64(phi)
    c, s = _turn(s0, c0, quadrant, SQRT_HALF)
    return r * c, r * s


@jit(forceinline=True)
def normal4_f32(block, stream, key):
    """Four float32 standard normals: values 4*block .. 4*block+3 of a stream."""
    w0, w1, w2, w3 = philox_block(block, stream, key)
    z0, z1 = box_muller_f32(w0, w1)
    z2, z3 = box_muller_f32(w2, w3)
    return z0, z1, z2, z3


@jit(forceinline=True)
def normal2_f64(block, stream, key):
    """Two float64 standard normals: values 2*block, 2*block+1 of a stream."""
    w0, w1, w2, w3 = philox_block(block, stream, key)
    return box_muller_f64(w0, w1, w2, w3)


@jit(forceinline=True)
def ndtri(p):
    """Inverse of the standard normal CDF for p in (0, 1), float64.

    Wichura, "Algorithm AS 241: The percentage points of the normal distribution",
    Applied Statistics 37 (1988); PPND16, relative error about 1e-16.
    """
    q = p - 0.5
    if abs(q) <= 0.425:
        r = 0.180625 - q * q
        num = (((((((2509.0809287301226727 * r + 33430.575583588128105) * r
                    + 67265.770927008700853) * r + 45921.953931549871457) * r
                  + 13731.693765509461125) * r + 1971.5909503065514427) * r
                + 133.14166789178437745) * r + 3.387132872796366608)
        den = (((((((5226.495278852545925 * r + 28729.085735721942674) * r
                    + 39307.89580009271061) * r + 21213.794301586595867) * r
                  + 5394.1960214247511077) * r + 687.1870074920579083) * r
                + 42.313330701600911252) * r + 1.0)
        return q * num / den
    r = p if q < 0.0 else 1.0 - p
    r = math.sqrt(-math.log(r))
    if r <= 5.0:
        r -= 1.6
        num = (((((((7.7454501427834140764e-4 * r + 0.0227238449892691845833) * r
                    + 0.24178072517745061177) * r + 1.27045825245236838258) * r
                  + 3.64784832476320460504) * r + 5.7694972214606914055) * r
                + 4.6303378461565452959) * r + 1.42343711074968357734)
        den = (((((((1.05075007164441684324e-9 * r + 5.475938084995344946e-4) * r
                    + 0.0151986665636164571966) * r + 0.14810397642748007459) * r
                  + 0.68976733498510000455) * r + 1.6763848301838038494) * r
                + 2.05319162663775882187) * r + 1.0)
    else:
        r -= 5.0
        num = (((((((2.01033439929228813265e-7 * r + 2.71155556874348757815e-5) * r
                    + 0.0012426609473880784386) * r + 0.026532189526576123093) * r
                  + 0.29656057182850489123) * r + 1.7848265399172913358) * r
                + 5.4637849111641143699) * r + 6.6579046435011037772)
        den = (((((((2.04426310338993978564e-15 * r + 1.4215117583164458887e-7) * r
                    + 1.8463183175100546818e-5) * r + 7.868691311456132591e-4) * r
                  + 0.0148753612908506148525) * r + 0.13692988092273580531) * r
                + 0.59983220655588793769) * r + 1.0)
    x = num / den
    return -x if q < 0.0 else x


@jit(forceinline=True)
def ndtr(x):
    """Standard normal CDF, float64, accurate in the lower tail."""
    return 0.5 * math.erfc(-x * 0.7071067811865476)
