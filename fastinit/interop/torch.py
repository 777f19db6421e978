"""PyTorch interop (optional: pip install torch): fastinit weights in torch modules and back.

    fastinit.interop.init_torch(module, "he_normal", seed=0)   # Linear / Conv(Transpose)
    fastinit.interop.lsuv_torch(module, x)                     # LSUV driven through the module
    seq = fastinit.interop.to_torch(net, member=0)             # an equivalent nn.Sequential
    net = fastinit.interop.from_torch(seq)                     # and back

Layer i of a module (its i-th Linear, ConvNd or ConvTransposeNd in ``module.modules()`` order,
so a ConvTranspose before a layer moves that layer's stream on by one) draws from the
same stream as layer i of a fastinit.MLP with the same seed, so ``init_torch(model, s, seed=k)``
gives a PyTorch MLP exactly the weights of ``fastinit.MLP(..., init=s, seed=k)``.
"""
from __future__ import annotations

import warnings

import numpy as np

from .. import registry, streams
from .._validate import check_int, check_real, check_seed
from ..network import MLP, NORM_EPS, NORM_MOMENTUM
from ..sample import draw
from ._torch_activations import activation_module, activation_of, for_activation


def _torch():
    try:
        import torch
    except ImportError:
        raise ImportError("fastinit.interop needs PyTorch: pip install torch "
                          "(or pip install 'fastinit[torch]').") from None
    return torch


def _layers(module):
    """The Linear, Conv and ConvTranspose layers of ``module``, in its order."""
    torch = _torch()
    kinds = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d,
             torch.nn.ConvTranspose1d, torch.nn.ConvTranspose2d, torch.nn.ConvTranspose3d)
    return [m for m in module.modules() if isinstance(m, kinds)]


def _left(module, layers) -> list[str]:
    """'Type.name' of every weight of 2 or more dimensions init_torch has no rule for (an
    Embedding's, an RNN's, an attention's in_proj_weight): it leaves them as they were. A
    parameter a drawn layer holds (an Embedding's weight tied to a Linear's, a parametrized
    weight's originals) was drawn."""
    drawn = {id(p) for m in layers for p in m.parameters()}
    return [f"{type(m).__name__}.{name}" for m in module.modules()
            for name, w in m.named_parameters(recurse=False)
            if w.dim() >= 2 and id(w) not in drawn]


def _stored(torch, layer, name: str) -> frozenset:
    """ids of the Parameters layer.<name> is stored in: the Parameter, or a parametrized
    tensor's originals. Layers holding one (parametrized or not) share a tensor: it is tied."""
    if torch.nn.utils.parametrize.is_parametrized(layer, name):
        return frozenset(map(id, layer.parametrizations[name].parameters(recurse=False)))
    return frozenset((id(getattr(layer, name)),))


def _others(torch, module, layers) -> dict:
    """id of each Parameter a module other than ``layers`` stores a tensor in -> that module
    (the first, in module order; a parametrization's own modules are not counted)."""
    parametrize, out, skip = torch.nn.utils.parametrize, {}, {id(m) for m in layers}
    for m in module.modules():
        if id(m) not in skip and not isinstance(m, parametrize.ParametrizationList):
            for i in set(map(id, m.parameters(recurse=False))).union(*(
                    _stored(torch, m, n) for n in getattr(m, "parametrizations", ()))):
                out.setdefault(i, m)
    return out


def _store(torch, layer, name: str, value, func: str):
    """layer.<name> = value, in place. A parametrized tensor (weight_norm, spectral_norm,
    orthogonal) is assigned, so its parametrization stores it through right_inverse: copying
    into it changed only a tensor computed from the originals, and was lost."""
    if not torch.nn.utils.parametrize.is_parametrized(layer, name):
        getattr(layer, name).copy_(value)
        return
    now = getattr(layer, name)
    try:
        setattr(layer, name, value.to(device=now.device, dtype=now.dtype))
    except (RuntimeError, NotImplementedError, ValueError) as e:
        raise ValueError(f"{func}: {type(layer).__name__}.{name} is parametrized and its "
                         f"parametrization cannot be set to a value ({e}).") from None


def init_torch(module, scheme="he_normal", bias=None, *, seed: int = 0, **params):
    """Initialise every Linear, Conv and ConvTranspose layer of ``module`` in place with a
    fastinit scheme, each weight's fans from its shape as torch.nn.init takes them (a
    ConvTranspose weight is (in, out / groups, *kernel): fan_in = out / groups x kernel, as
    PyTorch's own initialisation of it). Other weights (Embedding, RNN, attention projections
    held outside a Linear) are left as they were, and a warning names them. A parametrized
    weight (weight_norm, spectral_norm, orthogonal) is assigned, so its parametrization stores
    the draw (orthogonal makes it orthogonal, as PyTorch does); a module on the meta
    device is refused (it holds no values: ``to_empty`` it first). A tensor layers share
    (tied weights: one Parameter, or parametrizations over one) is drawn once, by the first
    layer holding it; a later layer holding it draws only the tensors it does not share (its
    own bias) and keeps its place in the stream order (layer i draws from layer i's streams,
    tied or not).

    A scheme drawing for an activation (edge_of_chaos) draws, unless told, for the one the
    module's activation modules run (ReLU, LeakyReLU(0.2), ...; in a plain nn.Sequential, not
    one only after its last layer: an output's Sigmoid), as fastinit.MLP for its own; none,
    several, one fastinit has not, one whose parameter it refuses (LeakyReLU(-0.1)) or one
    without an edge of chaos (GELU, SiLU, Mish) is refused, saying it is the module's: pass
    ``activation=``. One given is drawn for with the parameter of the module's modules running
    it, if any (several differing: pass ``activation_param=``, which always wins). ``bias``: a
    scheme for the biases (default: the scheme's preset bias, else zeros), drawn with the layer
    weight's fans. Returns the module.
    """
    torch = _torch()
    func = "fastinit.interop.init_torch"
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"The 'module' parameter of {func} must be a torch.nn.Module. Got "
                        f"{type(module).__name__}.")
    seed = check_seed(seed, "seed", func)
    ws, wparams = registry.resolve(scheme, params, func)
    layers = _layers(module)
    if not layers:
        raise ValueError(f"{func}: the module has no Linear, Conv or ConvTranspose layers.")
    if "activation" in {p.name for p in ws.params}:
        ws, wparams = for_activation(torch, module, layers, scheme, params, ws.name, func)
    if bias is None:
        bias = registry.preset_bias(registry.InitSpec(ws.name, tuple(wparams.items())))
    bs, bparams = registry.resolve(bias, {}, func, "bias")
    key = np.array([seed], dtype=np.uint64)
    member = np.zeros(1, dtype=np.int64)
    lazy = [type(m).__name__ for m in layers if isinstance(
        m.weight, torch.nn.parameter.UninitializedParameter)]
    if lazy:
        raise ValueError(f"{func}: the module's {', '.join(lazy)} layers have no shape yet: "
                         f"run one batch through it first, then initialise.")
    if any(m.weight.is_meta for m in layers):     # copy_ into a meta tensor does nothing
        raise ValueError(f"{func}: the module's weights are on the meta device (shapes without "
                         f"values): call module.to_empty(device='cpu') first, then initialise.")
    drawn = set()                   # ids of the Parameters drawn into so far: tied once
    with torch.no_grad():
        for i, layer in enumerate(layers):
            w = layer.weight
            dtype = np.float64 if w.dtype == torch.float64 else np.float32
            shape = tuple(w.shape)
            if not drawn & _stored(torch, layer, "weight"):
                drawn |= _stored(torch, layer, "weight")
                new = draw(ws, wparams, shape, dtype=dtype, layout="torch", key=key,
                           members=member, tag=streams.layer_tag(i, streams.WEIGHT),
                           func=func)[0]
                _store(torch, layer, "weight", torch.from_numpy(new), func)
            if layer.bias is not None and not drawn & _stored(torch, layer, "bias"):
                drawn |= _stored(torch, layer, "bias")
                fan_in = int(np.prod(shape[1:]))
                nb = draw(bs, bparams, tuple(layer.bias.shape), dtype=dtype, layout="torch",
                          key=key, members=member, tag=streams.layer_tag(i, streams.BIAS),
                          fan_in=fan_in, fan_out=shape[0] * int(np.prod(shape[2:])),
                          func=func)[0]
                _store(torch, layer, "bias", torch.from_numpy(nb), func)
    left = _left(module, layers)
    if left:
        warnings.warn(f"{func} left these weights as they were (it draws Linear, Conv and "
                      f"ConvTranspose weights only): {', '.join(left)}.", stacklevel=2)
    return module


def lsuv_torch(module, x, *, tol: float = 0.1, max_iter: int = 10, seed: int = 0,
               orthonormal: bool = True) -> list:
    """LSUV through a torch module: orthonormal weights (from fastinit's streams for ``seed``),
    then, layer by layer from the input (in the order a pass of ``x`` first runs them, whatever
    the order of the module's attributes), the batch ``x`` is run through the whole module and
    the layer's weight divided by the std of its output (as the layer returns it, before an
    in-place activation overwrites it) until |Var - 1| < tol (at most max_iter times). Returns
    each layer's final output variance, in module order (layer i as init_torch counts them);
    a layer the pass does not run is refused.

    LSUV (Mishkin & Matas 2016) gives each layer its own weight. A tensor layers share (tied
    weights, parametrized or not, as for init_torch) is rescaled by the first of them to run
    only: rescaling it again for a later layer would undo the first one's unit variance. The
    later layer's output variance is measured as it stands and returned; when it is not within
    1 ± tol, a warning names the layer and the layer whose weight it shares. Layers after a
    tie are rescaled as usual. A weight a layer shares with another module (an Embedding's, as
    a language model's output layer does) is not rescaled at all: it would change that
    module's output too, and with it the input of the layers already rescaled. The layer is
    measured and warned about alike. A layer the module calls more than once in a forward pass
    is rescaled by its first call's output (whose variance is returned); a warning gives the
    later calls' (measured once every layer is rescaled) when they are not within 1 ± tol.

    Every pass runs the module as it is set: in training mode a BatchNorm's running statistics
    move at each pass and Dropout draws (call ``module.eval()`` first, or save them, to keep
    them). The weights are made orthonormal before the first pass, so a refused module keeps
    those."""
    torch = _torch()
    func = "fastinit.interop.lsuv_torch"
    if not isinstance(module, torch.nn.Module) or not isinstance(x, torch.Tensor):
        name, want, got = ("module", "torch.nn.Module", module) if not isinstance(
            module, torch.nn.Module) else ("x", "torch.Tensor (a batch for the module)", x)
        raise TypeError(f"The {name!r} parameter of {func} must be a {want}. Got "
                        f"{type(got).__name__}.")
    tol = check_real(tol, "tol", func, low=0.0, low_open=True)
    max_iter = check_int(max_iter, "max_iter", func, minimum=1)
    if orthonormal:
        init_torch(module, "orthogonal", "zeros", seed=seed)
    names = {id(m): name for name, m in reversed(list(module.named_modules()))}   # first name
    label = lambda m: f"{type(m).__name__} {names[id(m)]!r}"
    variances, shares, repeated, missed = {}, {}, [], []
    owner = {}                  # id of a weight's Parameter -> the first layer holding it to run
    layers = _layers(module)
    others = _others(torch, module, layers)
    with torch.no_grad():
        calls = _output_variances(module, x, layers)         # its keys: the forward order
        _all_run(func, [label(layer) for layer in layers if id(layer) not in calls], "")
        by_id = {id(layer): layer for layer in layers}
        order = [by_id[i] for i in calls]
        for layer in order:
            keys = _stored(torch, layer, "weight")
            first = next((owner[k] for k in keys if k in owner), layer)
            other = next((others[k] for k in keys if k in others), None)
            owner.update(dict.fromkeys(keys, first))
            for it in range(max_iter + 1):
                if it or layer is not order[0]:      # order[0] as it stands: the first pass's
                    calls = _output_variances(module, x, [layer])
                    _all_run(func, [] if id(layer) in calls else [label(layer)], _VARIES)
                outs = calls[id(layer)]
                var = outs[0]
                if (first is not layer or other is not None or abs(var - 1.0) < tol
                        or it == max_iter or var == 0):
                    break
                scaled = layer.weight / var ** 0.5
                _store(torch, layer, "weight", scaled, func)
                if not torch.allclose(layer.weight, scaled, rtol=1e-4, atol=0.0):
                    raise ValueError(
                        f"{func}: {type(layer).__name__}.weight's parametrization undoes "
                        f"LSUV's rescaling (spectral_norm fixes the scale): remove it "
                        f"before LSUV, or apply it after.")
            variances[id(layer)], shares[id(layer)] = var, (first, other)
            if len(outs) > 1:
                repeated.append(layer)
        # a layer run again after later layers: its later calls as they end, once all are done
        later = _output_variances(module, x, repeated) if repeated else {}
        _all_run(func, [label(layer) for layer in repeated if id(layer) not in later], _VARIES)
    for layer in order:
        var, (first, other) = variances[id(layer)], shares[id(layer)]
        if any(abs(v - 1.0) >= tol for v in later.get(id(layer), [])[1:]):
            missed.append(f"{label(layer)} runs {len(later[id(layer)])} times in one forward "
                          f"pass; LSUV rescaled it by its first call's output (variance "
                          f"{var:.3g}): the later calls' output variances are "
                          f"{', '.join(f'{v:.3g}' for v in later[id(layer)][1:])}, not all "
                          f"within 1 ± {tol:g}.")
        if other is not None and abs(var - 1.0) >= tol:
            missed.append(f"{label(layer)} shares its weight with {label(other)}, which LSUV does "
                          f"not rescale (rescaling it here would change the "
                          f"{type(other).__name__}'s output too): its output variance is "
                          f"{var:.3g}, not within 1 ± {tol:g}.")
        elif first is not layer and abs(var - 1.0) >= tol:
            missed.append(f"{label(layer)} shares its weight with {label(first)}, where LSUV "
                          f"rescaled it (LSUV gives each layer its own weight; one scale "
                          f"cannot give both unit variance): its output variance is "
                          f"{var:.3g}, not within 1 ± {tol:g}.")
    if missed:
        warnings.warn(f"{func}: " + " ".join(missed), stacklevel=2)
    return [variances[id(layer)] for layer in layers]


_VARIES = (" on every pass (the module's forward pass differs between passes: LayerDrop or "
           "another random skip in training mode? call module.eval() first)")


def _all_run(func: str, unrun: list, how: str) -> None:
    """Refuses the layers ``unrun`` (their labels), which a pass of x did not run ``how``."""
    if unrun:
        raise ValueError(f"{func}: {', '.join(unrun)} {'does' if len(unrun) == 1 else 'do'} not "
                         f"run when the module runs x{how}, so LSUV has no output to rescale it "
                         f"by. Run LSUV on a module whose forward pass runs every layer it holds.")


def _output_variances(module, x, watch) -> dict:
    """One pass of x through module: id(layer) -> the variance of its output at each call, for
    each layer watched, in the order the pass first runs them; taken as the layer returns it (an
    in-place activation after it overwrites it)."""
    calls = {}
    record = lambda m, i, o: calls.setdefault(id(m), []).append(
        float(o.double().var(unbiased=False)))
    hooks = [layer.register_forward_hook(record) for layer in watch]
    try:
        module(x)
    finally:
        for hook in hooks:
            hook.remove()
    return calls


def to_torch(net: MLP, member: int = 0):
    """member's network as a torch.nn.Sequential of Linear, norm (BatchNorm1d with its running
    statistics, LayerNorm) and activation modules (same dtype, same outputs up to summation
    order). Residual networks have no Sequential form."""
    torch = _torch()
    func = "fastinit.interop.to_torch"
    if not isinstance(net, MLP):
        raise TypeError(f"The 'net' parameter of {func} must be a fastinit.MLP. Got "
                        f"{type(net).__name__}.")
    if np.any(net.arch.skip >= 0):
        raise TypeError(f"{func} builds a torch.nn.Sequential; a residual network "
                        f"({type(net).__name__}) has no such form.")
    member = check_int(member, "member", func, minimum=0, maximum=net.n - 1)
    dtype = torch.float64 if net.dtype == np.float64 else torch.float32
    as_torch = lambda a: torch.from_numpy(np.ascontiguousarray(a[member]))
    mods = []
    for l in range(net.depth):
        lin = torch.nn.Linear(net.layer_sizes[l], net.layer_sizes[l + 1], bias=net.bias,
                              dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(as_torch(net.weights[l]))
            if net.bias:
                lin.bias.copy_(as_torch(net.biases[l]))
        mods.append(lin)
        if l < net.depth - 1 and net.norm is not None:
            width = net.layer_sizes[l + 1]
            if net.norm == "batch":
                norm = torch.nn.BatchNorm1d(width, eps=net.arch.eps, momentum=net.arch.momentum,
                                            dtype=dtype)
            else:
                norm = torch.nn.LayerNorm(width, eps=net.arch.eps, dtype=dtype)
            with torch.no_grad():
                norm.weight.copy_(as_torch(net.gammas[l]))
                norm.bias.copy_(as_torch(net.betas[l]))
                if net.norm == "batch":
                    norm.running_mean.copy_(as_torch(net.running_mean[l]))
                    norm.running_var.copy_(as_torch(net.running_var[l]))
            mods.append(norm)
        if l < net.depth - 1 and net.activation != "linear":
            mods.append(activation_module(torch, net.activation,
                                           float(net.activation_param[member])))
    return torch.nn.Sequential(*mods)


def _check_norm(m, func):
    """A torch norm layer fastinit.MLP can hold: affine, BatchNorm1d with running statistics,
    fastinit's eps (and BatchNorm momentum)."""
    cls = type(m).__name__
    if m.weight is None or m.bias is None or getattr(m, "track_running_stats", True) is False:
        raise ValueError(f"{func}: fastinit.MLP's norm layers have a gain and a shift "
                         f"(affine) and BatchNorm1d keeps running statistics; the Sequential "
                         f"has {m!r}.")
    momentum = getattr(m, "momentum", NORM_MOMENTUM)
    if m.eps != NORM_EPS or momentum != NORM_MOMENTUM:
        raise ValueError(f"{func}: fastinit.MLP's norm layers use eps={NORM_EPS}"
                         + (f", momentum={NORM_MOMENTUM}" if cls == "BatchNorm1d" else "")
                         + f" (PyTorch's defaults); the Sequential has {m!r}.")


def from_torch(module) -> MLP:
    """A one-member fastinit.MLP from a torch Sequential of Linear layers, each hidden one
    followed by an optional BatchNorm1d or LayerNorm (the same kind for every hidden layer) and
    then one activation (ReLU, Tanh, GELU, ..., the same, with the same parameters, for
    every hidden layer); the last Linear ends the Sequential. Identity modules are skipped."""
    torch = _torch()
    func = "fastinit.interop.from_torch"
    if not isinstance(module, torch.nn.Sequential):
        raise TypeError(f"The 'module' parameter of {func} must be a torch.nn.Sequential. Got "
                        f"{type(module).__name__}.")
    norm_kinds = (torch.nn.BatchNorm1d, torch.nn.LayerNorm)
    groups = []                               # [Linear, modules after it up to the next Linear]
    for m in module:
        if isinstance(m, torch.nn.Linear):
            groups.append([m])
        elif isinstance(m, torch.nn.Identity):
            continue
        elif not groups:
            raise ValueError(f"{func}: the Sequential must start with a Linear layer. Got "
                             f"{type(m).__name__} first.")
        else:
            groups[-1].append(m)
    if not groups:
        raise ValueError(f"{func}: the Sequential has no Linear layers.")
    linears = [g[0] for g in groups]
    norms = [m for g in groups for m in g[1:] if isinstance(m, norm_kinds)]
    acts = [activation_of(m, func) for g in groups for m in g[1:]
            if not isinstance(m, norm_kinds)]
    roles = [tuple("norm" if isinstance(m, norm_kinds) else "activation" for m in g[1:])
             for g in groups]
    hidden = ("norm",) * bool(norms) + ("activation",) * bool(acts)
    if roles != [hidden] * (len(groups) - 1) + [()]:
        after = [[type(m).__name__ for m in g[1:]] for g in groups]
        raise ValueError(f"{func}: fastinit.MLP has, after every hidden Linear layer, the same "
                         f"optional norm then one activation, and nothing after the last. Got, "
                         f"after each Linear layer: {after}.")
    if len(set(acts)) > 1:
        raise ValueError(f"{func}: fastinit.MLP uses one activation; the Sequential mixes "
                         f"{sorted(n if p is None else f'{n}({p})' for n, p in set(acts))}.")
    name, param = acts[0] if acts else ("linear", None)
    if len({type(m) for m in norms}) > 1:
        raise ValueError(f"{func}: fastinit.MLP normalizes every hidden layer the same way; "
                         f"the Sequential mixes {sorted({type(m).__name__ for m in norms})}.")
    for m in norms:
        _check_norm(m, func)
    sizes = [linears[0].in_features] + [lin.out_features for lin in linears]
    for l, lin in enumerate(linears[1:], 1):
        if lin.in_features != sizes[l]:
            raise ValueError(f"{func}: Linear layer {l} takes {lin.in_features} inputs but the "
                             f"layer before it gives {sizes[l]} outputs.")
    dt = np.float64 if linears[0].weight.dtype == torch.float64 else np.float32
    with_bias = [lin.bias is not None for lin in linears]
    if any(with_bias) and not all(with_bias):
        raise ValueError(f"{func}: fastinit.MLP layers all have a bias or none does; the "
                         f"Sequential mixes Linear layers with and without bias.")
    norm = None
    if norms:
        norm = "batch" if isinstance(norms[0], torch.nn.BatchNorm1d) else "layer"
    net = MLP(sizes, activation=name, init="zeros", n=1, dtype=dt, activation_param=param,
              bias=all(with_bias), norm=norm)
    numpy = lambda t: t.detach().cpu().to(torch.float64).numpy()    # any float dtype
    for l, lin in enumerate(linears):
        net.weights[l][0] = numpy(lin.weight)
        if net.bias:
            net.biases[l][0] = numpy(lin.bias)
    for l, m in enumerate(norms):
        net.gammas[l][0], net.betas[l][0] = numpy(m.weight), numpy(m.bias)
        if norm == "batch":
            net.running_mean[l][0] = numpy(m.running_mean)
            net.running_var[l][0] = numpy(m.running_var)
    return net
