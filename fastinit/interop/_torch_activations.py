"""Torch activation modules as fastinit activations: the table both ways (to_torch builds the
modules, from_torch reads them), and the activation init_torch draws edge_of_chaos (any scheme
with an ``activation`` parameter) for, read from the module's activation modules: those between
its layers, with their parameter. Torch is passed in, never imported here
(fastinit.interop.torch imports it, when used)."""
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


def _in_order(torch, module, counted: set):
    """The modules a plain nn.Sequential runs, in order (nested plain ones opened, a module run
    twice listed twice); None when a module of ``counted`` (ids) is held by another module,
    whose forward, not its modules, says when it runs."""
    out = []
    for m in module:
        if type(m) is torch.nn.Sequential:
            inner = _in_order(torch, m, counted)
        elif id(m) in counted or counted.isdisjoint(map(id, m.modules())):
            inner = [m]
        else:
            return None
        if inner is None:
            return None
        out += inner
    return out


def _drawn_for(torch, module, layers):
    """(activation modules init_torch draws for, those it does not): elementwise ones (not
    Softmax, not attention), but in a plain nn.Sequential not one running only after its last
    layer (a discriminator's Sigmoid): it feeds no layer. Another module's order is unknown."""
    kinds = tuple(c for c in vars(torch.nn.modules.activation).values() if isinstance(c, type)
                  and c.__module__ == "torch.nn.modules.activation" and issubclass(
                      c, torch.nn.Module) and c.__name__ not in NOT_ELEMENTWISE)
    acts = [m for m in module.modules() if isinstance(m, kinds)]
    run = _in_order(torch, module, {id(m) for m in layers + acts}) if type(
        module) is torch.nn.Sequential else None
    is_layer = {id(layer) for layer in layers}.__contains__
    at = [i for i, m in enumerate(run or ()) if is_layer(id(m))]
    if not at:
        return acts, []
    after = {id(m) for m in run[at[-1] + 1:]} - {id(m) for m in run[:at[-1] + 1]}
    return [m for m in acts if id(m) not in after], [m for m in acts if id(m) in after]


def for_activation(torch, module, layers, scheme, params, name: str, func: str):
    """resolve(scheme, params) for the activation ``module``'s layers are drawn for, as
    population.for_network sets a network's: the one its activation modules run (see
    _drawn_for), unless one is given; then their parameter if they run the one given."""
    asked = {**registry.as_spec(scheme, func).kwargs, **params}
    spec = registry.InitSpec(name, asked)
    given = spec.kwargs.get("activation")
    acts, outputs = _drawn_for(torch, module, layers)
    found = {activation_of(m, func) if type(m).__name__ in TORCH_ACTS.values() else
             (type(m).__name__, None) for m in acts}
    unknown = sorted(n for n, _ in found if n not in TORCH_ACTS)      # class names
    if given is None and (len(found) != 1 or unknown):
        listed = sorted(n if p is None else f"{n}({p:g})" for n, p in found)
        out = ", ".join(type(m).__name__ for m in outputs)
        why = (f"fastinit has no activation for the module's {', '.join(unknown)}" if unknown
               else f"the module holds several: {listed} (after the last layer of a plain "
               f"nn.Sequential one is not counted: pass that Sequential if the module wraps "
               f"one)" if len(found) > 1 else "the module runs no "
               f"activation module between its layers to take it from (its {out} runs after "
               f"the last layer, on the output)" if outputs else "the module holds no "
               "activation module to take it from (a forward may call one as a function)")
        raise ValueError(f"{func}: scheme {name!r} draws for an activation, and {why}. Pass the "
                         f"one to draw for, e.g. activation='relu' (with activation_param= for "
                         f"leaky_relu, elu or softplus).")
    if given is None:
        (act, value), = found
        values = [value]
    else:                       # the parameters of the module's modules running the one given
        act, values = given, sorted({p for n, p in found if n == given})
    if given is None or values:
        act, value = activations.network_activation(act, func), None
        if values and spec.kwargs.get("activation_param") is None:    # else the one given
            cls = TORCH_ACTS[act.name]
            if len(values) > 1:
                raise ValueError(f"{func}: activation={given!r} was given, and the module's {cls} "
                                 f"modules have several {ACT_PARAMS[cls]}: {values}. Pass the one "
                                 f"to draw for as activation_param=.")
            value = _checked(act, values[0], cls, func)
        spec = population.for_network(spec, act, value, func)
    ws, wparams = registry.resolve(spec, {}, func)
    if given is None and asked.get("activation_param") is None:   # a refusal of the
        # activation taken (not of a parameter given) says where it was taken
        try:
            ws.family_args(wparams, 64, 64, func)    # what draw derives (any fans: 64 and 64)
        except ValueError as e:
            raise ValueError(f"{func} took activation {act.name!r} from the module's "
                             f"{TORCH_ACTS[act.name]}; {e} Pass activation= to draw for another "
                             f"(the one closest to the module's), e.g. activation='relu'.") \
                from None
    return ws, wparams
