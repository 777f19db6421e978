"""What a non-editable install ships: every subpackage listed for setuptools, the py.typed
marker (PEP 561) that tells type checkers fastinit is typed."""
import pathlib
from importlib import resources

try:
    import tomllib
except ImportError:                    # Python 3.10
    import tomli as tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_for_setuptools():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {".".join(("fastinit",) + p.parent.relative_to(ROOT / "fastinit").parts)
             for p in (ROOT / "fastinit").rglob("__init__.py")} | {"fastinit.kernels"}
    # a folder of data files is a (namespace) package too: setuptools warns when unlisted
    found |= {f"fastinit.{p.name}" for p in (ROOT / "fastinit").iterdir()
              if p.is_dir() and p.name != "__pycache__" and not (p / "__init__.py").exists()}
    assert found == listed, f"missing {sorted(found - listed)}, stale {sorted(listed - found)}"


def test_the_package_says_it_is_typed():
    assert resources.files("fastinit").joinpath("py.typed").is_file()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "py.typed" in config["package-data"]["fastinit"]
