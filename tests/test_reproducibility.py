"""Contract 2: a weight is a pure function of (seed, member, position)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastinit

RANDOM_CASES = [
    ("uniform", (37, 11), {}), ("normal", (5, 129), {}), ("trunc_normal", (64, 3), {}),
    ("he_normal", (33, 17), {}), ("kaiming_uniform", (8, 8, 3, 3), {}),
    ("orthogonal", (12, 7), {}), ("sparse", (9, 14), dict(sparsity=0.3)),
    ("delta_orthogonal", (6, 4, 3), {}),
]


@pytest.mark.parametrize("scheme,shape,params", RANDOM_CASES, ids=[c[0] for c in RANDOM_CASES])
def test_member_k_of_population_equals_member_alone(scheme, shape, params, dtype):
    pop = fastinit.sample(scheme, shape, seed=77, n=6, start=3, dtype=dtype, **params)
    for k in range(6):
        alone = fastinit.sample(scheme, shape, seed=77, n=1, start=3 + k, dtype=dtype, **params)
        np.testing.assert_array_equal(pop[k], alone[0])
    single = fastinit.sample(scheme, shape, seed=77, start=5, dtype=dtype, **params)
    np.testing.assert_array_equal(pop[2], single)


def test_large_rows_cross_chunk_boundaries(dtype):
    """Rows longer than one parallel chunk, odd lengths: still a pure function of position."""
    big = fastinit.sample("normal", (3, 8191 * 3 + 5), seed=1, n=2, dtype=dtype)
    small = fastinit.sample("normal", (1, 7), seed=1, n=2, dtype=dtype)
    np.testing.assert_array_equal(big[:, 0, :7], small[:, 0, :])


def test_prefix_property(dtype):
    """Drawing more values extends a stream: the first values do not depend on the shape."""
    a = fastinit.sample("trunc_normal_std", (1000,), seed=3, dtype=dtype).ravel()
    b = fastinit.sample("trunc_normal_std", (10, 3), seed=3, dtype=dtype).ravel()
    np.testing.assert_array_equal(a[:30], b)


def test_spec_equals_keywords():
    a = fastinit.sample(fastinit.spec("kaiming_normal", a=0.3), (8, 9), seed=2)
    b = fastinit.sample("kaiming_normal", (8, 9), seed=2, a=0.3)
    np.testing.assert_array_equal(a, b)


_SCRIPT = """
import hashlib, json, numpy as np, numba, fastinit
out = {"threads": numba.get_num_threads()}
for scheme, shape, params in %r:
    for dt in (np.float32, np.float64):
        w = fastinit.sample(scheme, shape, seed=12345, n=40, dtype=dt, **params)
        out[scheme + str(dt.__name__)] = hashlib.sha256(w.tobytes()).hexdigest()
big = fastinit.sample("normal", (300, 700), seed=1, n=3)
out["big"] = hashlib.sha256(big.tobytes()).hexdigest()
print(json.dumps(out))
"""


def _run(threads):
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
    res = subprocess.run([sys.executable, "-c", _SCRIPT % (RANDOM_CASES,)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_bitwise_identical_on_one_and_two_threads():
    one, two = _run(1), _run(2)
    assert one.pop("threads") == 1 and two.pop("threads") == 2
    assert one == two


def test_out_parameter_fills_in_place(dtype):
    buf = np.empty((4, 6, 5), dtype=dtype)
    res = fastinit.sample("he_normal", (6, 5), seed=3, n=4, dtype=dtype, out=buf)
    assert res is buf
    np.testing.assert_array_equal(buf, fastinit.sample("he_normal", (6, 5), seed=3, n=4,
                                                       dtype=dtype))
    for shape, layout in (((6, 5), "torch"), ((5, 6), "torch"), ((3, 2, 3, 3), "torch"),
                          ((6, 5), "keras"), ((3, 3, 4, 8), "keras")):
        one = np.empty((2,) + shape, dtype=dtype)        # rows <= cols: written in place
        assert fastinit.sample("orthogonal", shape, seed=3, n=2, dtype=dtype, out=one,
                               layout=layout) is one
        np.testing.assert_array_equal(one, fastinit.sample("orthogonal", shape, seed=3, n=2,
                                                           dtype=dtype, layout=layout))
    with pytest.raises(ValueError, match=r"'out' parameter.*shape \(4, 6, 5\).*Got shape"):
        fastinit.sample("he_normal", (6, 5), seed=3, n=4, out=np.empty((4, 5, 6), np.float32))
    with pytest.raises(ValueError, match="'out' parameter.*dtype float32"):
        fastinit.sample("he_normal", (6, 5), seed=3, out=np.empty((6, 5), np.float64))


from hypothesis import given, settings, strategies as st


@settings(max_examples=60, deadline=None)
@given(shape=st.lists(st.integers(1, 9), min_size=2, max_size=4).map(tuple),
       n=st.integers(1, 5), start=st.integers(0, 2**20), seed=st.integers(0, 2**64 - 1),
       scheme=st.sampled_from(["uniform", "normal", "he_normal", "orthogonal", "lecun_uniform"]),
       f64=st.booleans())
def test_member_slicing_any_shape(shape, n, start, seed, scheme, f64):
    dt = np.float64 if f64 else np.float32
    pop = fastinit.sample(scheme, shape, seed=seed, n=n, start=start, dtype=dt)
    k = n - 1
    alone = fastinit.sample(scheme, shape, seed=seed, start=start + k, dtype=dt)
    assert pop.shape == (n,) + shape
    np.testing.assert_array_equal(pop[k], alone)
    assert np.all(np.isfinite(pop))
