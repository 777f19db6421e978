"""The runnable examples finish and write their PNG (each under a minute on 2 cores): the first
through `python -m fastinit demo` in a process of its own, the others through the same command
line in this process (what a process adds is the same for all)."""
import subprocess
import sys

import numba
import pytest

from fastinit import cli

pytest.importorskip("matplotlib")


def _is_png(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_example_writes_png_in_a_process_of_its_own(tmp_path):
    res = subprocess.run([sys.executable, "-m", "fastinit", "demo", "symmetry", "--out",
                          str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert _is_png(tmp_path / "symmetry.png")


@pytest.mark.parametrize("name", ["depth", "linear", "chaos", "dropout", "zero", "residual"])
@pytest.mark.slow
def test_example_writes_png(name, tmp_path):
    assert cli.main(["demo", name, "--out", str(tmp_path), "-q"]) == 0
    assert _is_png(tmp_path / f"{name}.png")


def test_a_named_example_is_quiet_with_q_and_refuses_interactive(tmp_path, capsys):
    """`fastinit demo dropout -q` printed its lines anyway, and `--interactive` (the sweep
    demo's report) was dropped without a word: now -q prints nothing and --interactive with
    an example is one line on stderr and status 2, before anything trains."""
    assert cli.main(["demo", "dropout", "--out", str(tmp_path), "-q"]) == 0
    assert _is_png(tmp_path / "dropout.png")
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    assert cli.main(["demo", "dropout", "--out", str(tmp_path / "i"), "--interactive"]) == 2
    err = capsys.readouterr().err
    assert err == "fastinit demo: --interactive is the sweep demo's: dropout writes a PNG " \
                  "only.\n"
    assert not (tmp_path / "i").exists()


def test_a_named_example_leaves_the_thread_count_as_it_was(tmp_path):
    """`cli.main(["demo", NAME, "--threads", "1"])` set Numba's thread count for the rest of
    the process (a notebook, the test session); the sweep demo did not."""
    before = numba.get_num_threads()
    assert cli.main(["demo", "dropout", "--out", str(tmp_path), "-q", "--threads", "1"]) == 0
    assert numba.get_num_threads() == before
