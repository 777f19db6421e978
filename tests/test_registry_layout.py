"""The scheme side of fastinit as one path: resolve, preset_bias, label; and its import layout."""
import ast
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import fastinit
from fastinit import registry, theory
from fastinit.builtin_schemes import BUILTIN

PKG = pathlib.Path(fastinit.__file__).parent
SCHEME_MODULES = ["_validate", "fans", "gain", "families", "meanfield", "registry",
                  "builtin_schemes", "sample", "theory"]


# -- resolve: one path from what a user wrote to what a family draws ---------------------------

def test_resolve_fills_defaults_and_merges_spec_with_keywords():
    s, p = registry.resolve("torch.kaiming_normal", {"a": 0.1}, "f")
    assert s is fastinit.get_scheme("kaiming_normal")
    assert p == {"a": 0.1, "mode": "fan_in", "nonlinearity": "leaky_relu"}
    s, p = registry.resolve(fastinit.spec("kaiming_normal", a=0.1), {"mode": "fan_out"}, "f")
    assert p == {"a": 0.1, "mode": "fan_out", "nonlinearity": "leaky_relu"}
    s, p = registry.resolve(("uniform", {"low": -1.0}), {}, "f")
    assert p == {"low": -1.0, "high": 1.0}


def test_resolve_errors_name_the_caller():
    with pytest.raises(TypeError, match=r"^my.func got parameter\(s\) \['a'\] both in the spec "
                                        r"and as keyword arguments.$"):
        registry.resolve(fastinit.spec("kaiming_normal", a=0.1), {"a": 0.2}, "my.func")
    with pytest.raises(ValueError, match=r"The 'bias' parameter of my.func must be a registered "
                                         r"scheme.*Did you mean 'zeros'\?"):
        registry.resolve("zeroes", {}, "my.func", "bias")
    with pytest.raises(TypeError, match=r"my.func got an unknown parameter 'gian' for scheme "
                                        r"'orthogonal'.*Did you mean 'gain'\?"):
        registry.resolve("orthogonal", {"gian": 2.0}, "my.func")


def test_alias_hints_come_from_the_one_did_you_mean_helper():
    with pytest.raises(ValueError, match=r"Got 'keras.he_normall' instead. Did you mean "
                                         r"'keras.he_normal'\? See fastinit.schemes\(\)"):
        fastinit.get_scheme("keras.he_normall")


def test_init_torch_refuses_a_parameter_given_twice():
    torch = pytest.importorskip("torch")
    m = torch.nn.Linear(4, 3)
    with pytest.raises(TypeError, match=r"fastinit.interop.init_torch got parameter\(s\) \['a'\] "
                                        r"both in the spec and as keyword arguments"):
        fastinit.interop.init_torch(m, fastinit.spec("kaiming_normal", a=1.0), seed=0, a=2.0)


# -- preset_bias: the one place a preset's bias scheme is derived ------------------------------

def test_preset_bias():
    assert registry.preset_bias("he_normal") == registry.InitSpec("zeros")
    assert registry.preset_bias("torch.linear") == registry.InitSpec("torch_linear_bias")
    assert registry.preset_bias(fastinit.spec("keras_dense")) == \
        registry.InitSpec("keras_dense_bias")
    eoc = fastinit.spec("edge_of_chaos", activation="relu", sigma_b2=0.1)
    assert registry.preset_bias(eoc) == registry.InitSpec("edge_of_chaos_bias",
                                                          (("activation", "relu"),
                                                           ("sigma_b2", 0.1)))
    net = fastinit.MLP([5, 4, 3], "relu", init=["torch_linear", eoc, "he_normal"], n=3)
    assert net.bias_init == [registry.preset_bias(s) for s in net.init]


def test_init_torch_and_mlp_share_the_preset_bias():
    """Layer l of a torch module and of an MLP draw from the same streams: with the preset
    bias derived in one place, edge_of_chaos's bias (std sqrt(sigma_b2)) agrees too."""
    torch = pytest.importorskip("torch")
    eoc = fastinit.spec("edge_of_chaos", activation="tanh", sigma_b2=0.3)
    net = fastinit.MLP([6, 5, 4], "tanh", init=eoc, seed=7, dtype=np.float64)
    seq = torch.nn.Sequential(torch.nn.Linear(6, 5, dtype=torch.float64), torch.nn.Tanh(),
                              torch.nn.Linear(5, 4, dtype=torch.float64))
    fastinit.interop.init_torch(seq, eoc, seed=7)
    for l, lin in enumerate([seq[0], seq[2]]):
        np.testing.assert_array_equal(lin.weight.detach().numpy(), net.weights[l][0])
        np.testing.assert_array_equal(lin.bias.detach().numpy(), net.biases[l][0])


# -- label: one way to show a scheme with parameters --------------------------------------------

def test_label():
    assert registry.label("kaiming_normal", {"mode": "fan_out", "a": 0.1}) == \
        "kaiming_normal(a=0.1, mode='fan_out')"
    assert registry.label("he_normal", {}) == "he_normal"
    assert registry.label("uniform", (("low", -1.0), ("high", 2.0))) == \
        "uniform(high=2.0, low=-1.0)"
    assert str(fastinit.spec("kaiming_normal", a=0.1)) == "kaiming_normal(a=0.1)"
    assert str(registry.InitSpec("x", (("b", 1), ("a", 2)))) == "x(a=2, b=1)"


# -- the import layout --------------------------------------------------------------------------

def _imports(module: str):
    """(fastinit modules imported at module level, imports inside functions) of a module."""
    tree = ast.parse((PKG / f"{module}.py").read_text())
    top, nested = set(), []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if node in tree.body:
                if isinstance(node, ast.ImportFrom) and node.level == 1:
                    top.update([node.module] if node.module else
                               [a.name for a in node.names])
            else:
                nested.append(ast.unparse(node))
    return top, nested


@pytest.mark.parametrize("module", SCHEME_MODULES)
def test_no_hidden_imports_and_a_modest_size(module):
    """The import graph is the real one (no import inside a function) and each module stays
    about 400 lines."""
    _, nested = _imports(module)
    assert nested == [], nested
    assert len((PKG / f"{module}.py").read_text().splitlines()) <= 410


def test_mean_field_needs_only_the_activations_and_the_registry_no_schemes():
    assert _imports("meanfield")[0] <= {"activations", "_validate"}
    assert _imports("registry")[0] <= {"_validate", "families"}
    # spread: the kernels' thread blocks, itself importing nothing of fastinit but the kernels
    assert _imports("families")[0] <= {"kernels", "streams", "_validate", "fans", "spread"}
    assert _imports("spread")[0] <= {"kernels"}


def test_the_scheme_modules_import_no_circle():
    graph = {m: _imports(m)[0] & set(SCHEME_MODULES) for m in SCHEME_MODULES}
    done, active = set(), []

    def visit(m):
        assert m not in active, " -> ".join(active + [m])
        if m in done:
            return
        active.append(m)
        for n in graph[m]:
            visit(n)
        active.pop()
        done.add(m)
    for m in graph:
        visit(m)


def test_importing_the_registry_registers_every_builtin_scheme():
    code = ("import fastinit.registry as r, fastinit.builtin_schemes as b; "
            "print(sorted(r.schemes()) == sorted(s.name for s in b.BUILTIN), len(r.schemes()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["True", str(len(BUILTIN))]


def test_theory_reexports_the_mean_field_maps():
    from fastinit import meanfield
    for name in ("length_map", "q_star", "chi_1", "critical_sigma_w2", "phase", "Phase"):
        assert getattr(theory, name) is getattr(meanfield, name)
    assert fastinit.Param is registry.Param
