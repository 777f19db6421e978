"""A population's members, one by one: each member's schemes, Philox key and stream, activation
parameter and per-member numbers, resolved and checked for that member alone.

This is the per-member half of the invariance contract: nothing here looks at the other
members, so member k's settings are the same alone or in any population. A setting is given
once (every member) or as a list of n (one each).
"""
from __future__ import annotations

import numpy as np

from . import activations, registry
from ._validate import check_real, check_seed

CONSTRUCTORS = ("fastinit.MLP", "fastinit.ResMLP")   # the functions that take n


def _n_hint(given: int, func: str) -> str:
    """A constructor's list of another length than n: most often n left at 1."""
    return f" Did you mean n={given}?" if given and func in CONSTRUCTORS else ""


def per_member(value, count: int, param: str, func: str, what: str = "values") -> list:
    """One value per member from a single value or a list of n of them (a (name, {params})
    pair counts as a single scheme)."""
    if isinstance(value, (list, tuple, np.ndarray)) and not (
            len(value) == 2 and isinstance(value, tuple) and isinstance(value[1], dict)):
        if len(value) != count:
            raise ValueError(f"The {param!r} parameter of {func} must be one {what[:-1]} or a "
                             f"list of n={count} {what} (one per member). Got a list of "
                             f"{len(value)}.{_n_hint(len(value), func)}")
        return list(value)
    return [value] * count


def reals(value, count: int, param: str, func: str, **bounds) -> np.ndarray:
    """A number given once or once per member, as (n,) float64, each value checked (check_real's
    bounds; a list's values are named param[k] in errors)."""
    if isinstance(value, (list, tuple, np.ndarray)):
        given = np.asarray(value, dtype=object)
        if given.ndim > 1:                       # [[0.1], [0.5]] is not two members' numbers
            raise TypeError(f"The {param!r} parameter of {func} must be one number or a flat "
                            f"list of n={count} numbers (one per member). Got a nested "
                            f"{type(value).__name__} of shape {given.shape}.")
        values = per_member(list(np.ravel(given)), count, param, func, "numbers")
        return np.array([check_real(v, f"{param}[{k}]", func, **bounds)
                         for k, v in enumerate(values)], dtype=np.float64)
    return np.full(count, check_real(value, param, func, **bounds))


def schemes(init, bias_init, count: int, func: str, activation: str | None = None):
    """(weight InitSpecs, bias InitSpecs), one per member; a member without a bias scheme gets
    its weight scheme's preset bias (zeros for most). With the network's ``activation``, a
    scheme's own ``activation`` parameter left unset follows it (for_network)."""
    inits = [for_network(registry.as_spec(v, func, "init"), activation, func)
             for v in per_member(init, count, "init", func, "schemes")]
    given = per_member(bias_init, count, "bias_init", func, "schemes")
    biases = [registry.preset_bias(w) if b is None else registry.as_spec(b, func, "bias_init")
              for w, b in zip(inits, given)]
    return inits, biases


def for_network(spec, activation: str | None, func: str):
    """``spec`` with its scheme's ``activation`` parameter, when it has one and it was not
    given, set to the network's activation where that differs from the default: edge_of_chaos
    on a relu network drew tanh's critical variance (1.761 / fan_in for sigma_b2 = 0.05, not
    relu's 2 / fan_in). An explicit value is kept (tanh's point on a relu net, on purpose)."""
    scheme = registry.get_scheme(spec.scheme, func, "init")
    param = next((p for p in scheme.params if p.name == "activation"), None)
    if activation is None or param is None or "activation" in spec.kwargs \
            or param.default == activation or activation not in (param.choices or ()):
        return spec
    return registry.spec(spec, activation=activation)


def streams(seed, count: int, func: str):
    """(keys uint64 (n,), members int64 (n,)): one seed gives member k stream k of it; a list
    gives member k stream 0 of seed[k], the same as a population of one with that seed."""
    if isinstance(seed, (list, tuple, np.ndarray)):
        if len(seed) != count:
            raise ValueError(f"The 'seed' parameter of {func} must be one integer or a list of "
                             f"n={count} integers. Got a list of {len(seed)}."
                             + _n_hint(len(seed), func))
        return (np.array([check_seed(s, "seed", func) for s in seed], dtype=np.uint64),
                np.zeros(count, dtype=np.int64))
    return (np.full(count, check_seed(seed, "seed", func), dtype=np.uint64),
            np.arange(count, dtype=np.int64))


def activation_params(act: activations.Activation, given, inits, func: str) -> np.ndarray:
    """Each member's activation parameter: its own value, else the activation's default, except
    relu'(0) = 1 for a ZerO member (the scheme needs it; no other member is affected)."""
    out = np.empty(len(inits))
    for k, (value, spec) in enumerate(zip(per_member(given, len(inits), "activation_param",
                                                     func, "numbers"), inits)):
        if value is None and act.name == "relu" and \
                registry.get_scheme(spec.scheme).family == "zero":
            value = 1.0
        out[k] = activations.check_param(act, value, func)
    return out
