"""The run keys of a sweep, declared once as data: name, default, check, meaning, per member.

``RUN_KEYS`` drives the spec's validation, its defaults, ``fastinit sweep --help`` and which
keys members of one population may differ in (those carried per member down to the kernels).
A run's id (``run_id``) hashes what the run sets that differs from the defaults of the hash
version (``ID_DEFAULTS``), tagged with that version: a key added later with a default that
keeps the old behaviour changes no existing id, and neither does a changed default.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any, Callable

from . import activations, population, registry
from ._validate import MAX_SEED, did_you_mean
from .datasets import DATASETS, FILE_DATASETS
from .network import ACTIVATIONS, LOSSES
from .residual import VARIANTS
from .training import OPTIMIZERS


class Need(ValueError):
    """Raised by a run key's check: what the value must be, and for a name the hint that ends
    the message (" Did you mean 'x'?")."""

    def __init__(self, what: str, hint: str = ""):
        super().__init__(what)
        self.hint = hint


@dataclass(frozen=True)
class RunKey:
    """One setting of a run: its name, default, check (value -> canonical value, or Need),
    what it means, and whether members of one population may differ in it."""
    name: str
    default: Any
    check: Callable[[Any], Any]
    doc: str
    member: bool = False

    def parse(self, value):
        """The canonical value; ValueError "name must be ... Got value." otherwise."""
        try:
            return self.check(value)
        except Need as e:
            raise Need(f"{self.name} must be {e}. Got {value!r}.{e.hint}") from None


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _isnum(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _integer(low, what, high=None):
    def check(v):
        if not (is_int(v) and v >= low and (high is None or v <= high)):
            raise Need(what)
        return v
    return check


def _number(what, low=0.0, low_open=False, high=math.inf, high_open=False):
    def check(v):
        ok = _isnum(v) and math.isfinite(v) and (v > low if low_open else v >= low) \
            and (v < high if high_open else v <= high)
        if not ok:
            raise Need(what)
        return float(v)
    return check


def _choice(choices, what=None, optional=False):
    def check(v):
        if optional and v is None:
            return None
        if v not in choices:
            raise Need(what or "one of " + ", ".join(choices), did_you_mean(v, choices))
        return v
    return check


def _boolean(v):
    if not isinstance(v, bool):
        raise Need("true or false")
    return v


def _optional_real(v):
    if v is None:
        return None
    if not (_isnum(v) and math.isfinite(v)):
        raise Need("a finite number")
    return float(v)


def _scheme(optional):
    def check(v):
        if optional and v is None:
            return None
        if isinstance(v, dict):
            params = dict(v)
            name = params.pop("name", None)
            if not isinstance(name, str):
                raise Need("a scheme name or a table with a 'name' key")
            s = registry.spec(name, **params)
        else:
            s = registry.as_spec(v, "fastinit.sweep", "scheme")
        return [s.scheme, dict(s.params)]
    return check


def _dataset(v):
    if not isinstance(v, str):
        raise Need("a dataset name")
    base, colon, path = v.partition(":")
    if base in FILE_DATASETS:
        if not (colon and path):
            raise Need(f"'{base}:PATH'")
    elif v not in DATASETS:
        raise Need("one of " + ", ".join(DATASETS) + " or npz:PATH, mnist:PATH, "
                   "fashion_mnist:PATH", did_you_mean(v, DATASETS))
    return v


_SEED = "an integer in [0, 2**64 - 1]"
RUN_KEYS: tuple[RunKey, ...] = (
    RunKey("scheme", "he_normal", _scheme(False), "weight init: a scheme name or "
           "{name = ..., param = ...}", member=True),
    RunKey("seed", 0, _integer(0, _SEED, MAX_SEED), "the weights' seed", member=True),
    RunKey("depth", 2, _integer(0, "a non-negative integer (hidden layers)"),
           "hidden layers (residual: blocks, at least 1)"),
    RunKey("width", 64, _integer(1, "a positive integer"), "units per hidden layer"),
    RunKey("activation", "relu", _choice(ACTIVATIONS), "hidden-layer activation"),
    RunKey("activation_param", None, _optional_real, "relu'(0), leaky slope, elu alpha, "
           "softplus beta (default: the activation's; relu'(0) = 1 for ZerO)", member=True),
    RunKey("bias_init", None, _scheme(True), "bias init (default: zeros or the preset's)",
           member=True),
    RunKey("bias", True, _boolean, "false: layers without bias parameters"),
    RunKey("norm", None, _choice(("batch", "layer"), "'batch' or 'layer'", optional=True),
           "normalize every hidden layer: batch or layer norm"),
    RunKey("dropout", 0.0, _number("a number in [0, 1)", high=1.0, high_open=True),
           "inverted dropout of the hidden activations while training", member=True),
    RunKey("lr", 0.01, _number("a positive number", low_open=True), "learning rate",
           member=True),
    RunKey("dataset", "digits", _dataset, "digits, two_spirals, blobs, teacher_student, "
           "npz:PATH, mnist:PATH, fashion_mnist:PATH"),
    RunKey("optimizer", "sgd", _choice(OPTIMIZERS), "sgd, momentum, nesterov, adam, adamw"),
    RunKey("batch_size", 32, _integer(1, "a positive integer"), "minibatch size"),
    RunKey("drop_last", False, _boolean, "drop each epoch's last batch when it is short"),
    RunKey("epochs", 10, _integer(0, "a non-negative integer"), "training epochs"),
    RunKey("momentum", 0.9, _number("a number in [0, 1)", high=1.0, high_open=True),
           "momentum / nesterov coefficient", member=True),
    RunKey("weight_decay", 0.0, _number("a finite non-negative number"), "L2 / decoupled decay",
           member=True),
    RunKey("loss", None, _choice(LOSSES, optional=True), "default: the dataset's"),
    RunKey("data_seed", 0, _integer(0, _SEED, MAX_SEED), "dataset, split and data order seed"),
    RunKey("dtype", "float32", _choice(("float32", "float64"), "'float32' or 'float64'"),
           "float32 or float64"),
    RunKey("residual", None, _choice(VARIANTS, "one of " + ", ".join(VARIANTS) + " (a ResMLP "
           "with depth residual blocks)", optional=True),
           "a ResMLP variant (" + ", ".join(VARIANTS) + ") on the scheme's weights"),
    RunKey("data_init", None, _choice(("lsuv", "kraehenbuehl"), "'lsuv' or 'kraehenbuehl'",
           optional=True), "lsuv or kraehenbuehl on the scheme's weights, 256 training samples"),
)

# The defaults of run-id hash version 2, frozen: ids compare against these, never against the
# table (a changed default must not make two configs share an id). A key added after version 2
# compares against its own default in RUN_KEYS.
ID_VERSION = 2
ID_DEFAULTS = {
    "scheme": ["he_normal", {}], "seed": 0, "depth": 2, "width": 64, "activation": "relu",
    "activation_param": None, "bias_init": None, "lr": 0.01, "dataset": "digits",
    "optimizer": "sgd", "batch_size": 32, "epochs": 10, "momentum": 0.9, "weight_decay": 0.0,
    "loss": None, "data_seed": 0, "dtype": "float32", "residual": None, "data_init": None,
    "data": {},
}


def keys() -> dict[str, RunKey]:
    return {k.name: k for k in RUN_KEYS}


def defaults() -> dict[str, Any]:
    """Every run key's canonical default."""
    return {k.name: k.parse(k.default) for k in RUN_KEYS}


def describe() -> str:
    """The run keys as a text table (``fastinit sweep --help``)."""
    return "\n".join(f"  {k.name:<17}{json.dumps(k.default):<13}{k.doc}"
                     + (" [per member]" if k.member else "") for k in RUN_KEYS)


def _revised(config: dict) -> dict:
    """What a run's id adds where a value's meaning changed after hash version 2 and the run's
    numbers with it, so a database's runs of the old meaning re-run instead of counting as
    finished. A sweep's LSUV starts from the run's scheme: it re-drew gain-1 orthogonal
    weights and zero biases over every layer, the zero ones of fixup and "zero" included.
    Residual "zero" keeps the scheme: it drew ZerO whatever the scheme. Kraehenbuehl's
    between-layer step equalises the layers that have a gradient: it skipped every member of
    a skipinit, rezero or zero network (fixup's has one such layer: skipped still). A scheme
    with an ``activation_param`` left unset (edge_of_chaos) takes the run's activation_param:
    it drew the critical variance of the activation's default parameter (leaky_relu slope
    0.01, not the run's 0.2); runs at the default, or whose activation's parameter does not
    shape it (relu'(0)), drew the same. Other runs keep their ids."""
    out = {}
    scheme, residual, bias = config.get("scheme"), config.get("residual"), config.get("bias_init")
    unit = scheme is not None and scheme[0] == "orthogonal" and set(scheme[1]) <= {"gain"} \
        and scheme[1].get("gain", 1.0) == 1.0
    zero = bias is None or bias == ["zeros", {}] or bias == ["constant", {"value": 0.0}]
    if config.get("data_init") == "lsuv" and not (unit and zero and residual not in (
            "fixup", "zero")):
        out["~lsuv_start"] = "scheme"
    if residual == "zero" and scheme != ["ZerO", {}]:
        out["~zero_init"] = "scheme"
    if config.get("data_init") == "kraehenbuehl" and residual in ("skipinit", "rezero", "zero"):
        out["~kraehenbuehl"] = "live layers"
    if scheme is not None and _takes_activation_param(scheme, config):
        out["~scheme_activation_param"] = "run's"
    return out


def _takes_activation_param(scheme: list, config: dict) -> bool:
    """Whether the network's for_network sets this run's scheme's activation_param from the
    run's (the one rule, population.for_network, asked rather than restated)."""
    value = config.get("activation_param")
    act = activations.TABLE.get(config.get("activation", ID_DEFAULTS["activation"]))
    if value is None or act is None:
        return False
    spec = registry.spec(scheme[0], **scheme[1])
    after = population.for_network(spec, act, value, "fastinit.sweep")
    return after.kwargs.get("activation_param") != spec.kwargs.get("activation_param")


def run_id(config: dict, *, revised: bool = True) -> str:
    """A run's identity: a hash of what it sets that differs from the hash version's defaults
    and, with ``revised``, of a value's changed meaning (``_revised``; without: the id of a run
    stored before the change, which had the old meaning)."""
    table = keys()
    diff = _revised(config) if revised else {}
    for k, v in config.items():
        base = ID_DEFAULTS[k] if k in ID_DEFAULTS else (table[k].parse(table[k].default)
                                                        if k in table else None)
        if v != base:
            diff[k] = v
    text = json.dumps(diff, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"fastinit-run-v{ID_VERSION}:{text}".encode()).hexdigest()[:20]
