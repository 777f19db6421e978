"""Keras 3 interop, on the JAX backend. Keras chooses its backend when first imported, so each
check runs in a fresh interpreter with KERAS_BACKEND=jax (this process never imports Keras)."""
import os
import subprocess
import sys
import textwrap
from importlib import metadata, util

import pytest

from fastinit import interop
from fastinit.interop import keras as keras_interop

pytest.importorskip("jax")
# asked of the package metadata: importing Keras to ask (in a fresh interpreter, for the
# backend) cost each test process 3 s at collection
if util.find_spec("keras") is None or int(metadata.version("keras").split(".")[0]) < 3:
    pytest.skip("Keras 3 is not installed", allow_module_level=True)

HEAD = """
import os, sys
os.environ["KERAS_BACKEND"] = "jax"
import numpy as np
import keras
import fastinit
from fastinit.interop import KerasInitializer
"""


def _run(body, *args):
    out = subprocess.run([sys.executable, "-c", HEAD + textwrap.dedent(body), *map(str, args)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


@pytest.mark.slow
def test_dense_kernels_are_fastinit_sample_and_a_saved_model_reloads(tmp_path):
    path = tmp_path / "model.keras"
    _run("""
        relu = fastinit.spec("kaiming_normal", nonlinearity="relu")
        model = keras.Sequential([
            keras.Input((6,)),
            keras.layers.Dense(5, kernel_initializer=KerasInitializer("orthogonal", seed=5,
                                                                      gain=2.0)),
            keras.layers.Dense(3, kernel_initializer=KerasInitializer(relu, seed=2),
                               bias_initializer=KerasInitializer("uniform", seed=1,
                                                                 low=-0.1, high=0.1)),
            keras.layers.Reshape((3, 1)),
            keras.layers.Conv1D(4, 2, kernel_initializer=KerasInitializer("he_uniform"))])
        model.build((None, 6))
        want = [fastinit.sample("orthogonal", (6, 5), seed=5, gain=2.0, layout="keras"),
                fastinit.sample(relu, (5, 3), seed=2, layout="keras"), None,
                fastinit.sample("he_uniform", (2, 1, 4), seed=0, layout="keras")]  # (k, in, out)
        for layer, w in zip(model.layers, want):
            if w is None:
                continue
            assert np.array_equal(np.asarray(layer.kernel), w)
        assert np.array_equal(np.asarray(model.layers[1].bias), fastinit.sample(
            "uniform", (3,), seed=1, low=-0.1, high=0.1, layout="keras"))
        init = model.layers[1].kernel_initializer
        assert init.get_config() == {"scheme": "kaiming_normal", "seed": 2,
                                     "params": {"nonlinearity": "relu"}}
        again = KerasInitializer.from_config(init.get_config())
        assert np.array_equal(np.asarray(again((5, 3))), want[1])
        assert np.asarray(init((5, 3), dtype="float16")).dtype == np.float16
        assert type(init.clone()) is KerasInitializer
        assert str(keras.ops.convert_to_tensor(init((4, 4), dtype="bfloat16")).dtype) \\
            == "bfloat16"
        model.save(sys.argv[1])
        print("saved")
    """, path)
    out = _run("""
        model = keras.models.load_model(sys.argv[1])
        init = model.layers[0].kernel_initializer
        assert type(init) is KerasInitializer, type(init)
        assert init.get_config() == {"scheme": "orthogonal", "seed": 5, "params": {"gain": 2.0}}
        assert np.array_equal(np.asarray(model.layers[0].kernel), fastinit.sample(
            "orthogonal", (6, 5), seed=5, gain=2.0, layout="keras"))
        print(repr(init))
    """, path)
    assert out.strip() == "KerasInitializer('orthogonal(gain=2.0)', seed=5)"


def test_keras_initializer_errors():
    _run("""
        import pytest
        with pytest.raises(ValueError, match=r"The 'scheme' parameter of "
                           r"fastinit.interop.KerasInitializer must be a registered scheme"):
            KerasInitializer("orthogonl")
        with pytest.raises(ValueError, match=r"The 'seed' parameter of "
                           r"fastinit.interop.KerasInitializer must be"):
            KerasInitializer("orthogonal", seed=-1)
        with pytest.raises(ValueError, match=r"The 'fan_in' parameter of "
                           r"fastinit.interop.KerasInitializer must be in the interval \\(0.0, inf\\). "
                           r"Got 0.0 instead"):
            KerasInitializer("he_normal", fan_in=0)
        with pytest.raises(TypeError, match=r"The 'dtype' parameter of "
                           r"fastinit.interop.KerasInitializer must be a floating dtype "
                           r"\\(float32, float64, float16, bfloat16\\). Got 'int32'"):
            KerasInitializer("he_normal")((3, 3), dtype="int32")
        assert isinstance(KerasInitializer("zeros"), keras.initializers.Initializer)
    """)


def test_without_keras_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "keras", None)
    monkeypatch.setattr(keras_interop, "_CLASS", [])
    with pytest.raises(ImportError, match=r"fastinit.interop.KerasInitializer needs Keras 3 and "
                                          r"a backend: pip install keras 'jax\[cpu\]' \(or pip "
                                          r"install 'fastinit\[keras\]'\)"):
        interop.KerasInitializer
    with pytest.raises(AttributeError, match=r"module 'fastinit.interop' has no attribute "
                                             r"'KerasInit'"):
        interop.KerasInit


@pytest.mark.parametrize("backend", ["tensorflow", "no_such_backend"])
def test_a_backend_keras_cannot_load_is_named_not_keras_itself(backend):
    """Keras installed, its backend not (KERAS_BACKEND, or ~/.keras/keras.json, says
    tensorflow): the message told the user to install keras and jax, both there."""
    if util.find_spec(backend) is not None:
        pytest.skip(f"{backend} is installed")
    out = subprocess.run([sys.executable, "-c", "import fastinit.interop as i\n"
                          "i.KerasInitializer('orthogonal', seed=0)"], capture_output=True,
                         text=True, timeout=300, env={**os.environ, "KERAS_BACKEND": backend})
    assert out.returncode == 1
    assert "Keras is installed but could not load its backend" in out.stderr
    assert "Set KERAS_BACKEND=jax" in out.stderr


def test_keras_variance_scaling_reads_normal_as_keras_does():
    """keras.initializers.VarianceScaling maps distribution="normal" to "truncated_normal";
    fastinit's keras.variance_scaling drew an untruncated normal for it (JAX's reading, whose
    alias it shared): weights up to 4.6 std where Keras stops at 2 / 0.8796 std."""
    _run("""
        from scipy import stats
        shape, std = (3, 3, 200, 300), (1.7 / (3 * 3 * 300)) ** 0.5     # fan_out
        for dist in ("normal", "truncated_normal", "untruncated_normal", "uniform"):
            theirs = np.asarray(keras.initializers.VarianceScaling(
                1.7, "fan_out", dist, seed=2)(shape), dtype=np.float64).ravel()
            ours = np.asarray(KerasInitializer("keras.variance_scaling", seed=1, scale=1.7,
                                               mode="fan_out", distribution=dist)(shape),
                              dtype=np.float64).ravel()
            assert stats.ks_2samp(ours, theirs).pvalue > 1e-3, dist
            if dist != "untruncated_normal":
                assert np.abs(ours).max() <= 2 * std / 0.87962566103423978 * (1 + 1e-6), dist
    """)
