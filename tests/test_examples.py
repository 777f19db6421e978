"""The runnable examples finish and write their PNG (each under a minute on 2 cores)."""
import subprocess
import sys

import pytest

pytest.importorskip("matplotlib")


@pytest.mark.parametrize("name", ["symmetry", "depth", "linear", "chaos", "dropout", "zero",
                                  "residual"])
def test_example_writes_png(name, tmp_path):
    res = subprocess.run([sys.executable, "-m", "fastinit", "demo", name, "--out",
                          str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    with open(tmp_path / f"{name}.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
