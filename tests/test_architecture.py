"""Guards that keep the house as its design says: one-way dependencies, no import circles, Numba
options in one place, nothing recompiled on a second call, one concept per module."""
import ast
import importlib
import pathlib

import numba
import numpy as np
import pytest

import fastinit
from fastinit import kernels

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "fastinit"
KERNELS = ROOT / "kernels"
OPTIONAL = {"tqdm", "matplotlib", "torch", "distributed", "dask", "jax", "threadpoolctl",
            "scipy", "pandas", "pyarrow", "tomli", "keras", "plotly"}   # extras: imported lazily
MAX_LINES = 430            # "about 400": one concept per module


def _sources(folder):
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def _module_name(path):
    rel = path.relative_to(ROOT)
    parts = list(rel.with_suffix("").parts)
    if parts[0] == "kernels":
        parts = ["fastinit", "kernels"] + parts[1:]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path):
    """(module imported, lazy?) for every import of path, relative ones resolved."""
    tree = ast.parse(path.read_text())
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    top = {id(n) for n in tree.body}
    top |= {id(n) for node in tree.body if isinstance(node, ast.Try) for n in
            node.body + [h for x in node.handlers for h in x.body]}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, id(node) not in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            if node.module is None or node.level and not node.module:
                out += [(f"{mod}.{a.name}", id(node) not in top) for a in node.names]
            else:
                out.append((mod, id(node) not in top))
    return out


def test_kernels_never_import_fastinit():
    for path in _sources(KERNELS):
        for mod, _ in _imports(path):
            assert not (mod.startswith("fastinit") and not mod.startswith("fastinit.kernels")), \
                f"{path.name} imports {mod}"


def test_numba_options_live_in_one_place():
    for path in _sources(PACKAGE) + _sources(KERNELS):
        if path.name == "_config.py":
            continue
        text = path.read_text()
        for word in ("njit", "fastmath", "numba.jit", "from numba import jit"):
            assert word not in text, f"{path.relative_to(ROOT)} uses {word!r}"


def _graph():
    graph = {}
    for path in _sources(PACKAGE) + _sources(KERNELS):
        name = _module_name(path)
        deps = set()
        for mod, _ in _imports(path):
            while mod and mod not in {_module_name(p) for p in _sources(PACKAGE)
                                      + _sources(KERNELS)}:
                mod = mod.rpartition(".")[0]        # a name imported from a module
            if mod and mod != name and mod.startswith("fastinit"):
                deps.add(mod)
        graph[name] = deps
    return graph


def test_import_graph_has_no_circle():
    graph = _graph()
    # a package's __init__ imports its modules: an edge from a module to its package is the
    # package's own import, not a circle
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for dep in graph.get(node, ()):
            if node.startswith(dep + "."):
                continue
            if state.get(dep) == "open":
                cycle = stack[stack.index(dep):] + [dep]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep, stack + [dep])
        state[node] = "done"

    for node in graph:
        if node not in state:
            visit(node, [node])


def test_only_optional_extras_are_imported_lazily():
    for path in _sources(PACKAGE):
        for mod, lazy in _imports(path):
            if lazy:
                assert mod.split(".")[0] in OPTIONAL, \
                    f"{path.relative_to(ROOT)} imports {mod} inside a function"


@pytest.mark.parametrize("path", _sources(PACKAGE) + _sources(KERNELS),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_each_module_says_its_concept_and_stays_small(path):
    text = path.read_text()
    doc = ast.get_docstring(ast.parse(text))
    assert doc and doc.strip(), f"{path.name} has no module docstring"
    assert len(text.splitlines()) <= MAX_LINES, f"{path.name}: {len(text.splitlines())} lines"


def _dispatchers():
    found = {}
    for mod_name in dir(kernels):
        mod = getattr(kernels, mod_name)
        for attr in dir(mod):
            obj = getattr(mod, attr)
            if isinstance(obj, numba.core.registry.CPUDispatcher):
                found[f"{mod_name}.{attr}"] = obj
    return found


def _every_entry_point():
    x = np.random.default_rng(0).standard_normal((40, 6))
    y = np.arange(40) % 3
    for dt in (np.float32, np.float64):
        for scheme, kw in (("he_normal", {}), ("uniform", {}), ("normal", {}),
                           ("trunc_normal", {}), ("orthogonal", {}), ("sparse",
                                                                      {"sparsity": 0.5})):
            fastinit.sample(scheme, (5, 6), seed=0, n=3, dtype=dt, **kw)
        for optimizer in ("sgd", "adam"):
            net = fastinit.MLP([6, 8, 3], n=2, seed=[0, 1], dtype=dt)
            fastinit.train(net, (x, y), epochs=1, batch_size=16, optimizer=optimizer)
        net.forward(x)
        net.gradients(x, y)
        fastinit.diagnose(net, x, y)
        res = fastinit.ResMLP(6, 8, 2, 3, residual="rezero", dtype=dt)
        fastinit.train(res, (x, y), epochs=1, batch_size=16)
        fastinit.lsuv(net, x)


def test_second_call_compiles_nothing():
    _every_entry_point()
    before = {k: len(d.signatures) for k, d in _dispatchers().items()}
    _every_entry_point()
    after = {k: len(d.signatures) for k, d in _dispatchers().items()}
    grown = {k: (before[k], after[k]) for k in after if after[k] != before.get(k)}
    assert not grown, f"new compiled signatures on a second call: {grown}"


def test_kernel_cache_is_keyed_by_every_kernel_source(tmp_path):
    """Numba reuses a kernel's compiled code while its own file is unchanged, even when a helper
    it calls in another module changed: the cache directory is named after all kernel sources."""
    from fastinit.kernels import _config
    copy = tmp_path / "kernels"
    copy.mkdir()
    for path in KERNELS.glob("*.py"):
        (copy / path.name).write_text(path.read_text())
    before = _config.source_digest(copy)
    assert before == _config.source_digest(KERNELS)
    helper = copy / "activations.py"
    helper.write_text(helper.read_text() + "\n# a helper changed\n")
    assert _config.source_digest(copy) != before
    assert _config.CACHE_DIR.endswith(f"fastinit-{before}")
    assert kernels.train.train_epoch._cache._cache_path.startswith(_config.CACHE_DIR)


def test_old_kernel_caches_are_pruned(tmp_path):
    import os
    import time
    from fastinit.kernels import _config
    current = tmp_path / "fastinit-current"
    current.mkdir()
    for i in range(6):
        old = tmp_path / f"fastinit-old{i}"
        old.mkdir()
        os.utime(old, (time.time() - 1000 * (i + 1),) * 2)
    (tmp_path / "unrelated").mkdir()
    _config.prune(str(current), keep=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "fastinit-current", "fastinit-old0", "fastinit-old1", "unrelated"]


def test_the_session_guard_sees_a_kernel_compiled_twice_for_one_type():
    from specialisations import duplicates

    @numba.njit
    def callee(a, b):
        return a + b

    @numba.njit(parallel=True)
    def caller(x):
        for i in numba.prange(x.shape[0]):
            x[i] = callee(i, 0) + callee(np.int64(i), np.int64(0))     # literal, unsigned
        return x

    caller(np.zeros(3, dtype=np.int64))
    assert len(duplicates("callee", callee)) >= 2
    assert duplicates("dense.forward", kernels.dense.forward) == []


def _dotted(node):
    """['a', 'b', 'c'] for the expression a.b.c, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return [node.id] + parts[::-1] if isinstance(node, ast.Name) else None


def test_python_calls_only_entry_kernels():
    """A helper (kernels/_config.py ``jit``) has no Python entry point: every kernel the package
    names outside the kernels (kernels.train.evaluate, replay.triad after ``from .kernels import
    profile as replay``, padded after ``from .kernels.gemm import padded``) is a ``kernel``."""
    helpers = []
    for path in _sources(PACKAGE):
        if path.name == "__main__.py":      # importing it runs the CLI
            continue
        module = importlib.import_module(_module_name(path))
        for node in ast.walk(ast.parse(path.read_text())):
            chain = _dotted(node)
            obj = vars(module).get(chain[0]) if chain else None
            for part in (chain or [])[1:]:
                obj = getattr(obj, part, None)
            if isinstance(obj, kernels._config.Helper):
                helpers.append(f"{path.name}:{node.lineno} {'.'.join(chain)}")
    assert helpers == []
