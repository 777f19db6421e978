"""The sweep spec language: run keys as data, run ids stable across versions, grid size limits,
duplicates, lazy expansion (fastinit.sweepspec, through fastinit.sweep where a sweep runs)."""
import dataclasses
import hashlib
import json

import pytest

import fastinit
from fastinit import runkeys, sweepspec as spec_mod
from fastinit.sweepspec import RUN_KEYS, RunKey, SpecError, SweepSpec, load_spec, run_id
from fastinit.store import Store
from fastinit.sweep import run_sweep

BASE = {"grid": {"scheme": ["zeros", "he_normal"], "seed": [0, 1], "depth": [1, 2]},
        "train": {"epochs": 1, "width": 8}}


def test_run_keys_declared_once_drive_defaults_checks_and_docs():
    names = [k.name for k in RUN_KEYS]
    assert len(names) == len(set(names))
    assert {k.name for k in RUN_KEYS if k.member} == {
        "scheme", "seed", "lr", "momentum", "weight_decay", "activation_param", "bias_init",
        "dropout"}
    d = runkeys.defaults()
    assert d["scheme"] == ["he_normal", {}] and d["epochs"] == 10 and set(d) == set(names)
    text = runkeys.describe()
    assert all(f"  {n} " in text for n in names)
    with pytest.raises(SpecError, match=r"\[train\].width: width must be a positive integer. "
                                        r"Got 0."):
        SweepSpec.from_dict({"grid": {"seed": [0]}, "train": {"width": 0}})


def test_run_ids_hash_only_what_differs_from_the_defaults():
    implicit = SweepSpec.from_dict({"grid": {"seed": [3]}}).runs()[0]
    explicit = SweepSpec.from_dict({"grid": {"seed": [3]}, "train": {
        "epochs": 10, "lr": 0.01, "dataset": "digits", "loss": None}}).runs()[0]
    assert implicit.id == explicit.id == run_id({"seed": 3})
    assert run_id({**implicit.config, "epochs": 11}) != implicit.id


def test_adding_a_run_key_with_a_default_changes_no_id(monkeypatch):
    before = [r.id for r in SweepSpec.from_dict(BASE).runs()]
    extra = (RunKey("label_smoothing", 0.0, float, "label smoothing"),
             RunKey("clip", False, lambda v: bool(v), "gradient clipping on"),
             RunKey("norm", None, lambda v: v, "normalisation layer"))
    monkeypatch.setattr(runkeys, "RUN_KEYS", RUN_KEYS + extra)
    after = SweepSpec.from_dict(BASE).runs()
    assert [r.id for r in after] == before
    assert after[0].config["clip"] is False and after[0].config["label_smoothing"] == 0.0
    clipped = SweepSpec.from_dict({**BASE, "train": {**BASE["train"], "clip": True}}).runs()
    assert not {r.id for r in clipped} & set(before)


def test_a_changed_default_changes_no_id(monkeypatch):
    before = {r.id: r.config for r in SweepSpec.from_dict(BASE).runs()}
    table = tuple(dataclasses.replace(k, default=20) if k.name == "epochs" else k
                  for k in RUN_KEYS)
    monkeypatch.setattr(runkeys, "RUN_KEYS", table)
    explicit = {**BASE, "train": {"width": 8, "epochs": 1}}
    assert set(before) == {r.id for r in SweepSpec.from_dict(explicit).runs()}
    ten = SweepSpec.from_dict({"grid": {"seed": [0]}, "train": {"epochs": 10}}).runs()[0]
    twenty = SweepSpec.from_dict({"grid": {"seed": [0]}}).runs()[0]
    assert ten.id == run_id({}) != twenty.id          # each id still names its own config


def _hash_v2(config: dict) -> str:
    """A run's id as hash version 2 made it, before any value changed its meaning."""
    table = runkeys.keys()
    diff = {k: v for k, v in config.items()
            if v != (runkeys.ID_DEFAULTS[k] if k in runkeys.ID_DEFAULTS
                     else table[k].parse(table[k].default))}
    text = json.dumps(diff, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"fastinit-run-v2:{text}".encode()).hexdigest()[:20]


@pytest.mark.parametrize("train,new", [
    ({"data_init": "lsuv"}, True),                   # he_normal: it was orthogonal, now He
    ({"data_init": "lsuv", "scheme": "orthogonal"}, False),          # the same numbers
    ({"data_init": "lsuv", "scheme": "orthogonal", "residual": "rezero"}, False),
    ({"data_init": "lsuv", "scheme": "orthogonal", "residual": "fixup"}, True),
    ({"data_init": "lsuv", "scheme": "orthogonal", "bias_init": "ones"}, True),
    ({"data_init": "lsuv", "scheme": {"name": "orthogonal", "gain": 1.0}}, False),
    ({"data_init": "lsuv", "scheme": {"name": "orthogonal", "gain": 2.0}}, True),
    ({"data_init": "lsuv", "scheme": "orthogonal", "bias_init": "zeros"}, False),
    ({"data_init": "kraehenbuehl"}, False),
    ({"data_init": "kraehenbuehl", "residual": "fixup"}, False),   # no two live layers
    ({"data_init": "kraehenbuehl", "residual": "rezero"}, True),   # its step now equalises
    ({"data_init": "kraehenbuehl", "residual": "skipinit"}, True),  # stem and output layer
    ({"data_init": "kraehenbuehl", "residual": "zero", "scheme": "ZerO"}, True),
    ({"residual": "zero"}, True),                    # he_normal: it was ZerO, now He
    ({"residual": "zero", "scheme": "ZerO"}, False),
    ({"residual": "fixup"}, False),
    # edge_of_chaos takes the run's activation_param: it drew the activation's default's point
    ({"scheme": "edge_of_chaos", "activation": "leaky_relu", "activation_param": 0.2}, True),
    ({"scheme": {"name": "edge_of_chaos", "sigma_b2": 0.1}, "activation": "elu",
      "activation_param": 0.5}, True),
    ({"scheme": "edge_of_chaos", "activation": "softplus", "activation_param": 2.0}, False),
    # ^ softplus's beta moves no edge of chaos (sigma_w*^2 = 2 for every beta): same weights
    ({"scheme": "edge_of_chaos", "activation": "leaky_relu", "activation_param": 0.01}, False),
    ({"scheme": "edge_of_chaos", "activation": "leaky_relu"}, False),
    ({"scheme": "edge_of_chaos", "activation": "relu", "activation_param": 1.0}, False),
    ({"scheme": "edge_of_chaos", "activation": "tanh", "activation_param": 0.2}, False),
    ({"scheme": "he_normal", "activation": "leaky_relu", "activation_param": 0.2}, False),
    ({"scheme": {"name": "edge_of_chaos", "activation": "tanh"}, "activation": "leaky_relu",
      "activation_param": 0.2}, False),                 # tanh's point, on purpose
    ({"scheme": {"name": "edge_of_chaos", "activation_param": 0.2}, "activation": "leaky_relu",
      "activation_param": 0.5}, False),                 # the scheme's own value, kept
])
def test_a_value_whose_meaning_changed_gives_its_runs_new_ids(train, new):
    """A sweep's LSUV starts from the run's scheme (it re-drew orthonormal weights), residual
    "zero" keeps the scheme (it drew ZerO) and kraehenbuehl's between-layer step equalises the
    layers behind a zero branch's skip (it skipped such members), edge_of_chaos takes the run's
    activation_param (it drew the default's point): a database's runs of the old
    meaning must not count as finished under the new one, so those runs' ids change; a run
    whose numbers did not change keeps its id (and its stored result)."""
    run = SweepSpec.from_dict({"grid": {"seed": [1]}, "train": train}).runs()[0]
    assert (run.id != _hash_v2(run.config)) == new


@pytest.mark.parametrize("train, pinned", [
    ({"activation": "tanh"}, "c30bb5bf478f5b4e2e30"),
    ({"activation": "leaky_relu"}, "18505a68e800aee3fcb2"),
    ({"activation": "leaky_relu", "activation_param": 0.2}, "0fcb6490318abeeb0b53"),
])
def test_a_scheme_parameter_spelled_as_its_unset_default_is_the_omitted_one(train, pinned):
    """edge_of_chaos's activation_param is None unless set (None: the run's); a spec saying
    activation_param=None drew the same weights as one leaving it out, yet got another run id
    and label, so a database trained it again and a report split one setting into two."""
    omitted = SweepSpec.from_dict({"grid": {"seed": [1]}, "train": {
        **train, "scheme": "edge_of_chaos"}}).runs()[0]
    for scheme in ({"name": "edge_of_chaos", "activation_param": None},
                   ("edge_of_chaos", {"activation_param": None}),
                   fastinit.spec("edge_of_chaos", activation_param=None),
                   fastinit.InitSpec("edge_of_chaos", {"activation_param": None})):
        explicit = SweepSpec.from_dict({"grid": {"seed": [1]}, "train": {
            **train, "scheme": scheme}}).runs()[0]
        assert explicit.config == omitted.config and explicit.id == omitted.id == pinned
    assert fastinit.spec("edge_of_chaos", activation_param=None) == \
        fastinit.spec("edge_of_chaos")
    nets = [fastinit.MLP([6, 5, 2], train["activation"], init, seed=1,
                         activation_param=train.get("activation_param"))
            for init in ("edge_of_chaos", ("edge_of_chaos", {"activation_param": None}))]
    assert str(nets[0].init[0]) == str(nets[1].init[0])
    assert all((a == b).all() for a, b in zip(nets[0].weights, nets[1].weights))


def test_duplicate_and_alias_values_train_once(tmp_path):
    spec = {"grid": {"scheme": ["he_normal", "keras.he_normal", "zeros"], "seed": [0, 0]},
            "train": {"epochs": 1, "width": 8}}
    heard = []
    res = run_sweep(spec, tmp_path / "d.db", log=heard.append)
    assert (res.total, res.ran) == (2, 2)
    assert any("[grid].scheme[1] ('keras.he_normal') is the same run setting as "
               "[grid].scheme[0] ('he_normal'): it trains once" in n for n in res.notes)
    assert any("[grid].seed[1] (0) is the same run setting as [grid].seed[0]" in m
               for m in heard)
    with Store(tmp_path / "d.db") as s:
        assert s.count() == 2


@pytest.mark.parametrize("spec", [{}, {"train": {"epochs": 1}}, {"name": "x", "grid": {}}])
def test_a_spec_without_a_grid_is_refused(spec, tmp_path):
    with pytest.raises(SpecError, match=r"<spec>: no \[grid\]: a sweep needs at least one grid "
                                        r"axis, e.g. \[grid\] seed = \[0\] for one run"):
        run_sweep(spec, tmp_path / "e.db")
    assert not (tmp_path / "e.db").exists()


def test_huge_grids_are_counted_not_expanded(tmp_path, monkeypatch):
    axis = list(range(100))
    huge = {"grid": {"seed": axis, "data_seed": axis, "width": [w + 1 for w in axis],
                     "batch_size": [b + 1 for b in axis], "epochs": axis}}
    built = []

    class Counted(spec_mod.Run):
        def __init__(self, config):
            built.append(1)
            super().__init__(config)
    monkeypatch.setattr(spec_mod, "Run", Counted)
    with pytest.raises(SpecError, match=r"<spec>: \[grid\]: 10,000,000,000 runs \(100 seed x "
                                        r"100 data_seed x 100 width x 100 batch_size x 100 "
                                        r"epochs\) is more than max_runs = 1,000,000"):
        run_sweep(huge, tmp_path / "h.db")
    assert not built and not (tmp_path / "h.db").exists()
    small = {"grid": {"seed": [0, 1, 2], "depth": [1, 2]}, "train": {"epochs": 1, "width": 8}}
    with pytest.raises(SpecError, match=r"6 runs \(3 seed x 2 depth\) is more than max_runs = "
                                        r"5.*--max-runs N"):
        run_sweep(small, tmp_path / "h.db", max_runs=5)
    assert run_sweep(small, tmp_path / "h.db", max_runs=6).ran == 6
    # expansion is lazy: the first population of a billion-run grid comes at once
    sp = load_spec({**huge, "max_population": 7})
    built.clear()
    assert sp.count() == 10**10 and not built
    first = next(sp.populations())
    assert len(first) == 7 and len(built) == 7


def test_readme_sweep_specs_are_valid():
    import pathlib
    import re
    tomllib = spec_mod.tomllib                # tomli on Python 3.10
    readme = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", readme, re.S)
    assert blocks
    for block in blocks:
        sp = SweepSpec.from_dict(tomllib.loads(block), "README.md")
        assert sp.count() >= 1 and next(sp.populations())


def test_options_for_a_file_dataset_say_it_takes_none():
    # [data.npz] was "unknown dataset 'npz'", though npz:PATH is a dataset the spec may name
    with pytest.raises(SpecError, match=r"^<spec>: \[data\]\.npz: npz:PATH datasets take no "
                                        r"options: their arrays are used as saved\. Options "
                                        r"can be given for: digits, "):
        SweepSpec.from_dict({**BASE, "data": {"npz": {"n": 10}}})
