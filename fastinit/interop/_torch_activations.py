"""Torch activation modules as fastinit activations: the table both ways (to_torch builds the
modules, from_torch reads them) and the activation init_torch draws a scheme drawing for one
(edge_of_chaos) for, taken from the module's activation modules. Torch is passed in, never
imported here (fastinit.interop.torch imports it, when used)."""
from __future__ import annotations

from .. import activations, population, registry

TORCH_ACTS = {"relu": "ReLU", "leaky_relu": "LeakyReLU", "elu": "ELU", "selu": "SELU",
              "gelu": "GELU", "gelu_tanh": "GELU", "silu": "SiLU", "tanh": "Tanh",
              "sigmoid": "Sigmoid", "softplus": "Softplus", "softsign": "Softsign",
              "mish": "Mish", "linear": "Identity"}


def activation_module(torch, name, param):
    """The torch module of fastinit activation ``name`` with parameter ``param``."""
    nn = torch.nn
    if name == "leaky_relu":
        return nn.LeakyReLU(param)
    if name == "elu":
        return nn.ELU(param)
    if name == "gelu_tanh":
        return nn.GELU(approximate="tanh")
    if name == "softplus":
        return nn.Softplus(beta=param, threshold=1e9)   # fastinit's softplus has no threshold
    return getattr(nn, TORCH_ACTS[name])()


ACT_PARAMS = {"LeakyReLU": "negative_slope", "ELU": "alpha", "Softplus": "beta"}
NOT_ELEMENTWISE = ("MultiheadAttention", "Softmax", "Softmin", "Softmax2d", "LogSoftmax", "GLU")


def activation_of(a, func):
    """(fastinit name, parameter) of a torch activation module."""
    cls = type(a).__name__
    lookup = {v: k for k, v in TORCH_ACTS.items() if k not in ("gelu_tanh",)}
    if cls not in lookup:
        raise ValueError(f"{func}: activation {cls} has no fastinit equivalent "
                         f"({sorted(set(TORCH_ACTS.values()))}).")
    if cls == "GELU" and a.approximate == "tanh":
        return "gelu_tanh", None
    return lookup[cls], getattr(a, ACT_PARAMS.get(cls, ""), None)


def _checked(act, value, cls: str, func: str) -> float:
    """The parameter of the module's ``cls`` for fastinit activation ``act``, checked; refused
    as the module's (check_param's message would blame an activation_param never passed)."""
    try:
        return activations.check_param(act, value, func)
    except (TypeError, ValueError):
        raise ValueError(f"{func}: the module's {cls} has {ACT_PARAMS[cls]} {value!r}; fastinit's "
                         f"{act.name} needs a finite {act.param_doc} "
                         f"{activations.PARAM_RULES[act.name]}. Pass the activation to draw for: "
                         f"activation={act.name!r} with an activation_param= it takes, or another "
                         f"activation=.") from None


def for_activation(torch, module, scheme, params, name: str, func: str):
    """resolve(scheme, params) for the activation ``module`` holds, as population.for_network
    sets a network's: its activation modules (elementwise: not Softmax, not attention)."""
    spec = registry.InitSpec(name, {**registry.as_spec(scheme, func).kwargs, **params})
    kinds = tuple(c for c in vars(torch.nn.modules.activation).values() if isinstance(c, type)
                  and c.__module__ == "torch.nn.modules.activation" and issubclass(
                      c, torch.nn.Module) and c.__name__ not in NOT_ELEMENTWISE)
    found = {activation_of(m, func) if type(m).__name__ in TORCH_ACTS.values() else
             (type(m).__name__, None) for m in module.modules() if isinstance(m, kinds)}
    unknown = sorted(n for n, _ in found if n not in TORCH_ACTS)      # class names
    if len(found) == 1 and not unknown:
        (act, value), = found
        if spec.kwargs.get("activation", act) == act:     # another given: the module's unread
            act = activations.network_activation(act, func)
            if spec.kwargs.get("activation_param") is None:   # else the one given is drawn
                value = _checked(act, value, TORCH_ACTS[act.name], func)
            spec = population.for_network(spec, act, value, func)
    elif "activation" not in spec.kwargs:
        listed = sorted(n if p is None else f"{n}({p:g})" for n, p in found)
        why = (f"fastinit has no activation for the module's {', '.join(unknown)}" if unknown
               else f"the module holds several: {listed}" if found else "the module holds no "
               "activation module to take it from (a forward may call one as a function)")
        raise ValueError(f"{func}: scheme {name!r} draws for an activation, and {why}. Pass the "
                         f"one to draw for, e.g. activation='relu' (with activation_param= for "
                         f"leaky_relu, elu or softplus).")
    return registry.resolve(spec, {}, func)
