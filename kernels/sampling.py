"""Batched initializer sampling: fill a population of weights from Philox streams.

Shapes (one row per population member):
    out     (N, M)      N members, M values each (a weight flattened in C order)
    key     (N,)        uint64 seed of each member
    stream  (N,)        uint64 stream of each member
    a, b    (N,)        float64 distribution parameters of each member

Value p of member m depends only on (key[m], stream[m], p): rows are cut into chunks of CHUNK
values, task t being chunk t % nch of member t // nch; every fill takes ``lo, hi`` first and
runs tasks lo..hi-1 (``tasks(out)`` of them in all; permutations' tasks are members,
sparse_zero's columns; orthogonal matrices: orthogonal.py), and fastinit.spread runs runs of
tasks on each thread, so the result is the same on any number of threads.
float32 rows use one Philox word per value, float64 rows two. Inner loops over whole Philox
blocks carry no branches, so LLVM vectorises them (Philox and Box-Muller in SIMD lanes).
"""
import numpy as np
from ._config import jit, kernel, single
from .rng import (INV_2_32, INV_2_53, SHIFT32, _f32_bits, box_muller_f32, box_muller_f64, ndtr,
                  ndtri, normal2_f64, normal4_f32, philox_block, top53, u32_to_unit_f32,
                  u64_to_unit_f64)

CHUNK = 8192      # values per parallel task: a multiple of 4, large enough to amortise scheduling
MAX_RETRY = 64    # rejection retries before a truncated normal falls back to the inverse CDF
MIN_ACCEPT = 0.25  # below this acceptance rate a truncated normal uses the inverse CDF directly
INT0 = np.int64(0)   # 0 as an int64 value (a first try, a position): a literal 0 compiles twice


def tasks(out) -> int:
    """How many tasks a chunked fill of ``out`` (N, M) has: N * ceil(M / CHUNK)."""
    N, M = out.shape
    return N * -(-M // CHUNK)


@jit(forceinline=True)
def _task(t, nch, n_values):
    """Member, first and end value of parallel task t (chunks of CHUNK values per member)."""
    m = t // nch
    p0 = (t - m * nch) * CHUNK
    return m, p0, min(n_values, p0 + CHUNK)


@kernel
def uniform_fill(lo, hi, out, key, stream, low, high):
    """out[m] <- U[low[m], high[m]] (closed at both ends after rounding); tasks lo..hi-1."""
    N, M = out.shape
    nch = (M + CHUNK - 1) // CHUNK
    for t in range(lo, hi):
        m, p0, p1 = _task(t, nch, M)
        k, s = key[m], stream[m]
        sub = out[m, p0:p1]   # indexed from 0: LLVM then proves indices non-negative
        if single(out):
            lo = np.float32(low[m])
            width = np.float32(np.float32(high[m]) - lo)
            b0, nfull = p0 // 4, (p1 - p0) // 4
            for i in range(nfull):
                w0, w1, w2, w3 = philox_block(np.uint64(b0 + i), s, k)
                sub[4 * i] = lo + width * u32_to_unit_f32(w0)
                sub[4 * i + 1] = lo + width * u32_to_unit_f32(w1)
                sub[4 * i + 2] = lo + width * u32_to_unit_f32(w2)
                sub[4 * i + 3] = lo + width * u32_to_unit_f32(w3)
            words = philox_block(np.uint64(b0 + nfull), s, k)
            for j in range(4 * nfull, p1 - p0):
                sub[j] = lo + width * u32_to_unit_f32(words[j - 4 * nfull])
        else:
            lo = low[m]
            width = high[m] - lo
            b0, nfull = p0 // 2, (p1 - p0) // 2
            for i in range(nfull):
                w0, w1, w2, w3 = philox_block(np.uint64(b0 + i), s, k)
                sub[2 * i] = lo + width * u64_to_unit_f64(w0, w1)
                sub[2 * i + 1] = lo + width * u64_to_unit_f64(w2, w3)
            if 2 * nfull < p1 - p0:
                w0, w1, w2, w3 = philox_block(np.uint64(b0 + nfull), s, k)
                sub[2 * nfull] = lo + width * u64_to_unit_f64(w0, w1)
    return out


TILE = 256        # Philox blocks per tile of a float32 fill: 4 KB of words, made then transformed


@jit(forceinline=True)
def _normals(sub, p0, s, k, mean, std):
    """sub[:] <- mean + std * (normals p0, p0+1, ... of stream s); p0 on a block edge.

    float32 in two passes per tile of TILE blocks: the Philox words into the tile itself, then
    Box-Muller on each pair of them, in place. One loop doing both spilled registers and
    rebuilt its constants every iteration (504 instructions per 64 values on AVX-512); the two
    loops vectorise apart, and the values are the same bits (4096^2 values: 28 -> 20 ms).
    """
    n = sub.shape[0]
    mu = sub.dtype.type(mean)
    sd = sub.dtype.type(std)
    if single(sub):
        b0, nfull = p0 // 4, n // 4
        words = sub.view(np.uint32)
        for t0 in range(0, nfull, TILE):
            tile = words[4 * t0:4 * min(nfull, t0 + TILE)]
            for i in range(tile.shape[0] // 4):     # the Philox words, in place
                w0, w1, w2, w3 = philox_block(np.uint64(b0 + t0 + i), s, k)
                tile[4 * i] = np.uint32(w0)
                tile[4 * i + 1] = np.uint32(w1)
                tile[4 * i + 2] = np.uint32(w2)
                tile[4 * i + 3] = np.uint32(w3)
            for j in range(tile.shape[0] // 2):     # each pair of words -> its two normals
                z0, z1 = box_muller_f32(np.uint64(tile[2 * j]), np.uint64(tile[2 * j + 1]))
                tile[2 * j] = _f32_bits(mu + sd * z0)
                tile[2 * j + 1] = _f32_bits(mu + sd * z1)
        if 4 * nfull < n:
            zs = normal4_f32(np.uint64(b0 + nfull), s, k)
            for j in range(4 * nfull, n):
                sub[j] = mu + sd * zs[j - 4 * nfull]
    else:
        b0, nfull = p0 // 2, n // 2
        for i in range(nfull):
            z0, z1 = normal2_f64(np.uint64(b0 + i), s, k)
            sub[2 * i] = mu + sd * z0
            sub[2 * i + 1] = mu + sd * z1
        if 2 * nfull < n:
            z0, z1 = normal2_f64(np.uint64(b0 + nfull), s, k)
            sub[2 * nfull] = mu + sd * z0


@kernel
def normal_fill(lo, hi, out, key, stream, mean, std):
    """out[m] <- N(mean[m], std[m]^2) by Box-Muller; tasks lo..hi-1."""
    N, M = out.shape
    nch = (M + CHUNK - 1) // CHUNK
    for t in range(lo, hi):
        m, p0, p1 = _task(t, nch, M)
        _normals(out[m, p0:p1], p0, stream[m], key[m], mean[m], std[m])
    return out


@jit(forceinline=True)
def _retry_normal(p, attempt, s, k, f32):
    """Retry ``attempt`` (>= 1) of value p: a fresh standard normal from block p//4 (or p//2)
    with the attempt number in the high half of the block counter."""
    if f32:
        words = philox_block(np.uint64(p // 4) | (np.uint64(attempt) << SHIFT32), s, k)
        j = p % 4
        z0, z1 = box_muller_f32(words[j & 2], words[(j & 2) + 1])
        return np.float64(z0 if j % 2 == 0 else z1)
    w0, w1, w2, w3 = philox_block(np.uint64(p // 2) | (np.uint64(attempt) << SHIFT32), s, k)
    z0, z1 = box_muller_f64(w0, w1, w2, w3)
    return z0 if p % 2 == 0 else z1


@jit(forceinline=True)
def _inverse_cdf_truncnorm(p, attempt, s, k, f32, lo_cdf, width_cdf, sign):
    """Value p of N(0, 1) truncated by inverse-CDF sampling from one uniform."""
    if f32:
        words = philox_block(np.uint64(p // 4) | (np.uint64(attempt) << SHIFT32), s, k)
        u = (np.float64(words[p % 4]) + 0.5) * INV_2_32
    else:
        w0, w1, w2, w3 = philox_block(np.uint64(p // 2) | (np.uint64(attempt) << SHIFT32), s, k)
        hi, lo = (w0, w1) if p % 2 == 0 else (w2, w3)
        u = (np.float64(top53(hi, lo)) + 0.5) * INV_2_53
    return sign * ndtri(lo_cdf + u * width_cdf)


@kernel
def truncnorm_fill(lo, hi, out, key, stream, mean, std, alpha, beta):
    """out[m] <- mean + std * Z, Z ~ N(0, 1) truncated to [alpha[m], beta[m]]; tasks lo..hi-1.

    Where the interval holds at least MIN_ACCEPT of the mass: Box-Muller normals, each value
    outside the interval redrawn from its own retry counter (so still a pure function of its
    position), falling back to the inverse CDF after MAX_RETRY tries. Narrower or far-tail
    intervals: inverse-CDF sampling, in float64 on the side of zero where the CDF is accurate.
    Results are clipped to the bounds after rounding.
    """
    N, M = out.shape
    nch = (M + CHUNK - 1) // CHUNK
    f32 = single(out)
    for t in range(lo, hi):
        m, p0, p1 = _task(t, nch, M)
        k, s = key[m], stream[m]
        sub = out[m, p0:p1]
        a, b = alpha[m], beta[m]
        sign = 1.0
        fa, fb = a, b
        if a > 0.0:  # both bounds in the upper tail: sample the mirror image in the lower tail
            fa, fb, sign = -b, -a, -1.0
        lo_cdf = ndtr(fa)
        width_cdf = ndtr(fb) - lo_cdf
        if width_cdf >= MIN_ACCEPT:
            _normals(sub, p0, s, k, 0.0, 1.0)
            for i in range(p1 - p0):
                z = np.float64(sub[i])
                attempt = 0
                while not (a <= z <= b):
                    attempt += 1
                    if attempt > MAX_RETRY:
                        z = _inverse_cdf_truncnorm(p0 + i, attempt, s, k, f32, lo_cdf,
                                                   width_cdf, sign)
                        break
                    z = _retry_normal(p0 + i, attempt, s, k, f32)
                sub[i] = z
        else:
            for i in range(p1 - p0):
                sub[i] = _inverse_cdf_truncnorm(p0 + i, INT0, s, k, f32, lo_cdf, width_cdf, sign)
        mu, sd = mean[m], std[m]
        lo = sub.dtype.type(mu + sd * a)
        hi = sub.dtype.type(mu + sd * b)
        mu_t = sub.dtype.type(mu)
        sd_t = sub.dtype.type(sd)
        for i in range(p1 - p0):
            sub[i] = min(max(mu_t + sd_t * sub[i], lo), hi)
    return out


@kernel
def sparse_zero(lo, hi, out, key, stream, n_zero):
    """In every column of out[m] (N, R, C), set exactly n_zero entries to zero, chosen uniformly;
    tasks lo..hi-1 of the N * C columns.

    Partial Fisher-Yates per column; swap t of column c uses word (c * R + t) of the stream.
    """
    N, R, C = out.shape
    for t in range(lo, hi):
        m = t // C
        c = t - m * C
        k, s = key[m], stream[m]
        idx = np.arange(R)
        for i in range(n_zero):
            pos = c * R + i
            words = philox_block(np.uint64(pos // 4), s, k)
            w = words[pos % 4]
            j = i + np.int64((w * np.uint64(R - i)) >> SHIFT32)
            idx[i], idx[j] = idx[j], idx[i]
            out[m, idx[i], c] = 0.0
    return out


@kernel
def permutations(lo, hi, out, key, stream):
    """out[m] <- np.argsort(u, kind="stable") for rows lo..hi-1, u the float64 uniforms
    uniform_fill makes for (key[m], stream[m]) on [0, 1): a permutation of range(n), a pure
    function of the pair. u = q 2^-53 for the 53-bit integers q (rng.top53), so their order
    is q's."""
    n = out.shape[1]
    bits = 1
    while (1 << bits) < n and bits < 22:   # about a bucket per value, at most 2^22 (32 MB)
        bits += 1
    q = np.empty(n, dtype=np.uint64)
    count = np.empty((1 << bits) + 1, dtype=np.int64)
    for m in range(lo, hi):
        k, s = key[m], stream[m]
        for i in range(n // 2):                 # two words a value, as uniform_fill's rows
            w0, w1, w2, w3 = philox_block(np.uint64(i), s, k)
            q[2 * i] = top53(w0, w1)
            q[2 * i + 1] = top53(w2, w3)
        if n % 2:
            w0, w1, w2, w3 = philox_block(np.uint64(n // 2), s, k)
            q[n - 1] = top53(w0, w1)
        stable_order(q, out[m], count, np.uint64(53 - bits))


@jit
def stable_order(q, row, count, shift):
    """row <- range(n) sorted by q (uint64 < 2^53), ties in index order (a stable argsort):
    a counting sort on each q's top bits (q >> shift; count has 2^(53 - shift) + 1 slots),
    which keeps index order within a bucket, then insertion sort, which moves a value only
    past greater ones in its bucket: O(n) for uniform q, as many buckets as values."""
    n = q.shape[0]
    count[:] = 0
    for i in range(n):
        count[(q[i] >> shift) + np.uint64(1)] += 1
    for b in range(1, count.shape[0]):
        count[b] += count[b - 1]
    for i in range(n):
        b = q[i] >> shift
        row[count[b]] = i
        count[b] += 1
    for j in range(1, n):
        v = row[j]
        qv = q[v]
        i = j - 1
        while i >= 0 and q[row[i]] > qv:
            row[i + 1] = row[i]
            i -= 1
        row[i + 1] = v
