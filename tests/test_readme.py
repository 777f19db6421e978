"""The README's Python examples run as written (the README is the front door: keep it true)."""
import pathlib
import re

import pytest


@pytest.mark.slow
def test_readme_python_blocks_run(tmp_path, monkeypatch):
    readme = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)          # the quick start saves nets.npz
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
