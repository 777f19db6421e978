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


def schemes(init, bias_init, count: int, func: str, act: activations.Activation,
            activation_param=None):
    """(weight InitSpecs, bias InitSpecs, activation parameters (n,)), one each per member; a
    member without a bias scheme gets its weight scheme's preset bias (zeros for most). A
    scheme's own ``activation`` and ``activation_param`` left unset follow the network's
    activation ``act`` and the member's own parameter (for_network)."""
    specs = [registry.as_spec(v, func, "init")
             for v in per_member(init, count, "init", func, "schemes")]
    params = activation_params(act, activation_param, specs, func)
    inits = [for_network(s, act, p, func) for s, p in zip(specs, params)]
    given = per_member(bias_init, count, "bias_init", func, "schemes")
    biases = [registry.preset_bias(w) if b is None else registry.as_spec(b, func, "bias_init")
              for w, b in zip(inits, given)]
    return inits, biases, params


def for_network(spec, act: activations.Activation | None, value: float, func: str):
    """``spec`` for one member of a network with activation ``act`` and activation parameter
    ``value``: its scheme's ``activation`` parameter, when it has one and it was not given,
    set to the network's activation where that differs from the default (edge_of_chaos on a
    relu network drew tanh's critical variance, 1.761 / fan_in for sigma_b2 = 0.05, not relu's
    2 / fan_in); then its ``activation_param``, when it has one left unset (None) and the
    scheme's activation is the network's, set to the member's where it differs from the
    activation's default and changes what the scheme draws (a leaky_relu slope 0.2 member
    drew slope 0.01's 1.9998 / fan_in, not 2 / 1.04 / fan_in; softplus's beta changes
    nothing). An explicit value is kept (tanh's point on a relu net, on purpose); a member
    whose value changes nothing keeps its label and its bits."""
    scheme = registry.get_scheme(spec.scheme, func, "init")
    by_name = {p.name: p for p in scheme.params}
    given, extra = spec.kwargs, {}
    own = by_name.get("activation")
    if act is None or own is None:
        return spec
    if "activation" not in given and own.default != act.name and act.name in own.choices:
        extra["activation"] = act.name
    if "activation_param" in by_name and given.get("activation_param") is None \
            and {**given, **extra}.get("activation", own.default) == act.name \
            and act.name in activations.PARAMETERS and value != act.default \
            and _draws(scheme, {**given, **extra, "activation_param": float(value)}, func) \
            != _draws(scheme, {**given, **extra}, func):
        extra["activation_param"] = float(value)
    return registry.spec(spec.scheme, **{**given, **extra}) if extra else spec


def _draws(scheme, params: dict, func: str) -> dict:
    """What ``scheme`` with ``params`` gives its family to draw from (its fans, 64 and 64,
    stand for any): for_network sets a member's activation_param only where it changes that
    (softplus's beta moves no edge of chaos: its critical sigma_w^2 is 2 for every beta)."""
    return scheme.family_args(scheme.resolve(params, func), 64, 64, func)


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
