"""The scheme registry: every initialization scheme declared once, as data.

A ``Scheme`` names a family (families.py), fixes some of its arguments, exposes the rest as
parameters with defaults and constraints, and carries its formula and reference. Declaring one
validates it on the spot, so a typo fails where it is written. ``fastinit.schemes()`` lists them;
``fastinit.register_scheme`` adds a user's own.

Naming makes each framework's semantics unambiguous:

- PyTorch names have PyTorch semantics: ``xavier_*``, ``kaiming_*`` (gain, a, mode,
  nonlinearity; normal = untruncated), ``trunc_normal`` (absolute bounds, no correction).
- Keras/JAX names have Keras/JAX semantics: ``glorot_*``, ``he_*``, ``lecun_*``,
  ``variance_scaling``; their ``*_normal`` is a normal truncated at +-2 std whose variance is
  corrected (divided by 0.87962566103423978) so the final variance is exactly scale / fan.
- Prefixed aliases say where a name comes from: ``torch.xavier_normal``, ``keras.he_normal``,
  ``jax.lecun_normal``, ``flax.dense``.
"""
from __future__ import annotations

import functools
import math
import re
import types
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from . import families as fam
from ._validate import check_bool, check_choice, check_int, check_real, choice_error, closest
from .fans import MODES
from .activations import ACTIVATIONS as _ACTS
from .gain import TORCH_NAMES, calculate_gain


class _Required:
    def __repr__(self):
        return "<required>"


REQUIRED = _Required()
KINDS = ("real", "positive", "nonnegative", "fraction", "bound", "choice", "bool",
         "positive_int", "callable")
RESERVED = ("scheme", "shape", "seed", "n", "start", "dtype", "layout", "fan_in", "fan_out")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_.]*$")


@dataclass(frozen=True)
class Param:
    """A scheme or family parameter: name, default (or REQUIRED), constraint, description."""
    name: str
    default: Any = REQUIRED
    kind: str = "real"
    choices: tuple = ()
    doc: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(f"Param name must be an identifier. Got {self.name!r}.")
        check_choice(self.kind, "kind", f"fastinit.Param({self.name!r})", KINDS)
        if self.kind == "choice" and not self.choices:
            raise ValueError(f"Param {self.name!r} of kind 'choice' needs its choices.")
        if self.default is not REQUIRED:
            self.check(self.default, f"fastinit.Param({self.name!r})")

    def check(self, value, func: str):
        """The value, validated (and normalised) against this parameter's constraint."""
        k, name = self.kind, self.name
        if k == "real":
            return check_real(value, name, func)
        if k == "positive":
            return check_real(value, name, func, low=0.0, low_open=True)
        if k == "nonnegative":
            return check_real(value, name, func, low=0.0)
        if k == "fraction":
            return check_real(value, name, func, low=0.0, high=1.0, high_open=True)
        if k == "bound":
            v = check_real(value, name, func, finite=False)
            if math.isnan(v):
                raise ValueError(f"The {name!r} parameter of {func} must be a real number or "
                                 f"+-inf. Got nan instead.")
            return v
        if k == "choice":
            return check_choice(value, name, func, self.choices)
        if k == "bool":
            return check_bool(value, name, func)
        if k == "positive_int":
            return check_int(value, name, func, minimum=1)
        if not callable(value):
            raise TypeError(f"The {name!r} parameter of {func} must be callable. "
                            f"Got {value!r} instead.")
        return value


def _range_check(low: str, high: str):
    def check(args):
        if not args[low] < args[high]:
            return f"{low!r} must be less than {high!r}; got {low}={args[low]!r}, " \
                   f"{high}={args[high]!r}."
        return None
    return check


P = Param
FAMILIES: dict[str, fam.Family] = {f.name: f for f in (
    fam.Family("constant", (P("value"),), fam.draw_constant, random=False,
               description="every entry equal to value"),
    fam.Family("uniform", (P("low"), P("high")), fam.draw_uniform,
               check=_range_check("low", "high"), description="U[low, high]"),
    fam.Family("normal", (P("mean"), P("std", kind="nonnegative")), fam.draw_normal,
               description="N(mean, std^2), untruncated"),
    fam.Family("truncated_normal",
               (P("mean"), P("std", kind="positive"), P("a", kind="bound"),
                P("b", kind="bound"), P("bounds", kind="choice", choices=("absolute", "std")),
                P("correct", kind="bool")),
               fam.draw_truncated_normal,
               check=lambda a: (_range_check("a", "b")(a) or (
                   "a variance correction needs bounds in std units (bounds='std')."
                   if a["correct"] and a["bounds"] == "absolute" else None)),
               description="N(mean, std^2) truncated to [a, b]"),
    fam.Family("variance_scaling",
               (P("scale", kind="positive"), P("mode", kind="choice", choices=MODES),
                P("distribution", kind="choice", choices=fam.DISTRIBUTIONS)),
               fam.draw_variance_scaling, uses_fans=True,
               description="Var[w] = scale / fan(mode)"),
    fam.Family("orthogonal", (P("gain"),), fam.draw_orthogonal,
               description="gain * Haar-random orthogonal (rows or columns orthonormal)"),
    fam.Family("identity", (P("gain"),), fam.draw_identity, random=False,
               description="gain * I (rectangular: ones on the main diagonal)"),
    fam.Family("dirac", (P("groups", kind="positive_int"),), fam.draw_dirac, random=False,
               description="conv weight that passes its input through (per group)"),
    fam.Family("delta_orthogonal", (P("gain"),), fam.draw_delta_orthogonal,
               description="orthogonal (in x out) at the kernel centre, zero elsewhere"),
    fam.Family("sparse", (P("sparsity", kind="fraction"), P("std", kind="nonnegative")),
               fam.draw_sparse, description="N(0, std^2) with ceil(sparsity * rows) zeros "
                                            "per column"),
    fam.Family("zero", (), fam.draw_zero, random=False,
               description="ZerO: partial identity or Hadamard, no randomness"),
    fam.Family("custom", (P("transform", kind="callable"),), fam.draw_custom, uses_fans=False,
               extra_args=True, description="transform(u, fan_in, fan_out, **params)"),
)}


@dataclass(frozen=True)
class Scheme:
    """One initialization scheme, declared as data and validated when declared.

    ``family`` names the family (see ``FAMILIES``); ``fixed`` fixes some of its arguments and
    ``params`` exposes the rest with defaults. A scheme whose parameters are not the family's
    arguments gives ``derive(params, fan_in, fan_out) -> family arguments`` instead (PyTorch's
    gain/a/nonlinearity map onto variance scaling this way); ``uses_fans`` says derive needs
    the weight's fans. ``bias`` names the bias scheme of a framework preset.
    """
    name: str
    family: str
    params: tuple[Param, ...] = ()
    fixed: Mapping[str, Any] = field(default_factory=dict)
    derive: Callable[..., dict] | None = None
    uses_fans: bool = False
    formula: str = ""
    reference: str = ""
    framework: str = "fastinit"
    aliases: tuple[str, ...] = ()
    bias: str | None = None
    description: str = ""

    def __post_init__(self):
        where = f"fastinit.Scheme({self.name!r})"
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(f"The 'name' parameter of fastinit.Scheme must be an identifier "
                             f"(letters, digits, underscores). Got {self.name!r} instead.")
        check_choice(self.family, "family", where, list(FAMILIES))
        object.__setattr__(self, "params", tuple(self.params))
        object.__setattr__(self, "aliases", tuple(self.aliases))
        object.__setattr__(self, "fixed", types.MappingProxyType(dict(self.fixed)))
        for p in self.params:
            if not isinstance(p, Param):
                raise TypeError(f"The 'params' parameter of {where} must hold fastinit.Param "
                                f"objects. Got {p!r}.")
        names = [p.name for p in self.params]
        dup = {x for x in names if names.count(x) > 1}
        if dup:
            raise ValueError(f"{where} declares parameter(s) {sorted(dup)} twice.")
        clash = set(names) & set(RESERVED)
        if clash:
            raise ValueError(f"{where} uses reserved parameter name(s) {sorted(clash)}: "
                             f"these are arguments of fastinit.sample itself.")
        for a in self.aliases:
            if not isinstance(a, str) or not _ALIAS.match(a):
                raise ValueError(f"{where} has an invalid alias {a!r}.")
        family = FAMILIES[self.family]
        if self.derive is None:
            arg_names = {p.name for p in family.args}
            given = set(names) | set(self.fixed)
            missing = arg_names - given
            extra = given - arg_names if not family.extra_args else set()
            if missing or extra or set(names) & set(self.fixed):
                raise ValueError(
                    f"{where}: the parameters and fixed values of a {self.family!r} scheme "
                    f"must together name each of its arguments {sorted(arg_names)} exactly "
                    f"once. Missing {sorted(missing)}, unknown {sorted(extra)}, both "
                    f"{sorted(set(names) & set(self.fixed))}.")
        elif self.fixed:
            raise ValueError(f"{where}: give either 'fixed' or 'derive', not both.")
        if all(p.default is not REQUIRED for p in self.params):
            # prove the defaults produce valid family arguments, with stand-in fans
            self.family_args(self.defaults(), 64.0, 32.0)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params if p.default is not REQUIRED}

    def resolve(self, given: Mapping[str, Any], func: str) -> dict[str, Any]:
        """User parameters checked against this scheme: unknown names, values, required ones."""
        where = f"{func} (scheme {self.name!r})"
        by_name = {p.name: p for p in self.params}
        for key in given:
            if key not in by_name:
                valid = sorted(by_name)
                hint = fam_hint(key, valid)
                raise TypeError(
                    f"{func} got an unknown parameter {key!r} for scheme {self.name!r}. "
                    + (f"Valid parameters: {valid}." if valid else
                       f"Scheme {self.name!r} takes no parameters.") + hint)
        out = {}
        for p in self.params:
            if p.name in given:
                out[p.name] = p.check(given[p.name], where)
            elif p.default is REQUIRED:
                raise TypeError(f"{func} needs the parameter {p.name!r} for scheme "
                                f"{self.name!r} ({p.doc or p.kind}).")
            else:
                out[p.name] = p.default
        return out

    def family_args(self, params: Mapping[str, Any], fan_in, fan_out,
                    func: str = "fastinit.sample") -> dict[str, Any]:
        """The family's arguments for these (resolved) parameters, validated."""
        family = FAMILIES[self.family]
        if self.derive is not None:
            args = dict(self.derive(dict(params), fan_in, fan_out))
        else:
            args = {**self.fixed, **params}
        where = f"{func} (scheme {self.name!r})"
        for p in family.args:
            if p.name not in args:
                raise ValueError(f"Scheme {self.name!r} gives its family {self.family!r} no "
                                 f"value for {p.name!r}.")
            args[p.name] = p.check(args[p.name], where)
        if not family.extra_args:
            extra = set(args) - {p.name for p in family.args}
            if extra:
                raise ValueError(f"Scheme {self.name!r} gives its family {self.family!r} "
                                 f"unknown arguments {sorted(extra)}.")
        if family.check is not None:
            problem = family.check(args)
            if problem:
                raise ValueError(f"Scheme {self.name!r} in {func}: {problem}")
        return args

    @property
    def needs_fans(self) -> bool:
        return self.uses_fans or FAMILIES[self.family].uses_fans

    @property
    def random(self) -> bool:
        return FAMILIES[self.family].random


def fam_hint(key: str, valid) -> str:
    c = closest(key, valid)
    return f" Did you mean {c!r}?" if c else ""


_REGISTRY: dict[str, Scheme] = {}
_ALIASES: dict[str, str] = {}


def register_scheme(scheme: Scheme, *, replace: bool = False) -> Scheme:
    """Add a scheme (and its aliases) to the registry; ``replace=True`` to redefine one.

    >>> import fastinit
    >>> fastinit.register_scheme(fastinit.Scheme(
    ...     "half_he", "variance_scaling", fixed=dict(scale=1.0, mode="fan_in",
    ...     distribution="normal"), formula="std = sqrt(1 / fan_in)"), replace=True).name
    'half_he'
    """
    if not isinstance(scheme, Scheme):
        raise TypeError(f"The 'scheme' parameter of fastinit.register_scheme must be a "
                        f"fastinit.Scheme. Got {type(scheme).__name__} instead.")
    for name in (scheme.name,) + scheme.aliases:
        owner = _REGISTRY.get(name) or (_REGISTRY[_ALIASES[name]] if name in _ALIASES else None)
        if owner is not None and not replace and owner.name != scheme.name:
            raise ValueError(f"fastinit.register_scheme: the name {name!r} is already taken "
                             f"by scheme {owner.name!r}. Pass replace=True to redefine it.")
        if owner is not None and not replace:
            raise ValueError(f"fastinit.register_scheme: scheme {name!r} already exists. "
                             f"Pass replace=True to redefine it.")
    old = _REGISTRY.pop(scheme.name, None)
    if old is not None:
        for a in old.aliases:
            _ALIASES.pop(a, None)
    _REGISTRY[scheme.name] = scheme
    for a in scheme.aliases:
        _ALIASES[a] = scheme.name
    return scheme


def get_scheme(name, func: str = "fastinit.get_scheme", param: str = "scheme") -> Scheme:
    """The registered scheme called ``name`` (or one of its aliases)."""
    if isinstance(name, Scheme):
        return name
    if isinstance(name, str):
        if name in _REGISTRY:
            return _REGISTRY[name]
        if name in _ALIASES:
            return _REGISTRY[_ALIASES[name]]
    if not isinstance(name, str):
        raise TypeError(f"The {param!r} parameter of {func} must be a scheme name (str) or a "
                        f"fastinit.InitSpec. Got {name!r} of type {type(name).__name__}.")
    err = choice_error(param, func, list(_REGISTRY), name)
    hint = fam_hint(name, list(_REGISTRY) + list(_ALIASES))
    msg = str(err).split(" Did you mean")[0]
    msg = msg.replace(" must be one of", " must be a registered scheme, one of")
    raise ValueError(msg + (hint if hint else "") +
                     " See fastinit.schemes() for the list.")


def schemes() -> dict[str, Scheme]:
    """Every registered scheme, by name, in declaration order (a copy)."""
    return dict(_REGISTRY)


@dataclass(frozen=True)
class InitSpec:
    """A scheme with parameters, validated: ``fastinit.spec("kaiming_normal", a=0.1)``."""
    scheme: str
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.params)

    def __str__(self):
        inner = ", ".join(f"{k}={v!r}" for k, v in self.params)
        return f"{self.scheme}({inner})" if inner else self.scheme


def spec(scheme, **params) -> InitSpec:
    """A validated (scheme, parameters) pair, usable wherever a scheme name is."""
    s = get_scheme(scheme, "fastinit.spec")
    resolved = s.resolve(params, "fastinit.spec")
    return InitSpec(s.name, tuple(sorted((k, v) for k, v in resolved.items()
                                         if k in params)))


def as_spec(value, func: str, param: str = "scheme") -> InitSpec:
    """A scheme name, an InitSpec or a (name, {params}) pair, as an InitSpec."""
    if isinstance(value, InitSpec):
        return value
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], Mapping):
        return spec(value[0], **value[1])
    return InitSpec(get_scheme(value, func, param).name)


def resolve(scheme, params: Mapping[str, Any], func: str):
    """(Scheme, resolved parameters) for a scheme name or InitSpec plus keyword parameters."""
    s = as_spec(scheme, func)
    obj = get_scheme(s.scheme, func)
    overlap = set(s.kwargs) & set(params)
    if overlap:
        raise TypeError(f"{func} got parameter(s) {sorted(overlap)} both in the spec and "
                        f"as keyword arguments.")
    return obj, obj.resolve({**s.kwargs, **params}, func)


def preset_bias(spec: InitSpec) -> InitSpec:
    """The bias scheme that goes with a weight spec: a framework preset's own bias scheme
    (given the parameters it shares with the weight's), else zeros."""
    preset = get_scheme(spec.scheme).bias
    if preset is None:
        return InitSpec("zeros")
    accepted = {p.name for p in get_scheme(preset).params}
    return InitSpec(preset, tuple((k, v) for k, v in spec.params if k in accepted))


# -- the built-in schemes --------------------------------------------------------------------

def _torch_kaiming(distribution):
    def derive(p, fan_in, fan_out):
        g = calculate_gain(p["nonlinearity"], p["a"], method="torch")
        return dict(scale=g * g, mode=p["mode"], distribution=distribution)
    return derive


def _torch_xavier(distribution):
    def derive(p, fan_in, fan_out):
        return dict(scale=p["gain"] ** 2, mode="fan_avg", distribution=distribution)
    return derive


def _torch_linear_bias(p, fan_in, fan_out):
    if fan_in is None:
        raise ValueError("scheme 'torch_linear_bias' needs the fan_in of its layer's weight: "
                         "pass fan_in=.")
    bound = 1.0 / math.sqrt(fan_in)
    return dict(low=-bound, high=bound)


_KAIMING_PARAMS = (
    P("a", 0.0, "nonnegative", doc="negative slope of leaky_relu"),
    P("mode", "fan_in", "choice", ("fan_in", "fan_out")),
    P("nonlinearity", "leaky_relu", "choice", TORCH_NAMES),
)
_TORCH = "torch.nn.init (PyTorch 2.x)"
_MEAN_STD = (P("mean", 0.0), P("std", 1.0, "positive"))


def _keras(name, scale, mode, distribution, formula, paper):
    return Scheme(name, "variance_scaling",
                  fixed=dict(scale=scale, mode=mode, distribution=distribution),
                  formula=formula, reference=f"{paper}; keras.initializers, "
                                             f"jax.nn.initializers", framework="keras/jax",
                  aliases=(f"keras.{name}", f"jax.{name}"))


_GLOROT = "Glorot & Bengio, AISTATS 2010"
_HE = "He et al., ICCV 2015"
_LECUN = "LeCun et al., Efficient BackProp, 1998"
_TRUNC = "N(0, 1) truncated to (-2, 2), divided by 0.8796..."

BUILTIN = (
    Scheme("zeros", "constant", fixed=dict(value=0.0), formula="w = 0",
           reference="torch.nn.init.zeros_", framework="all",
           description="no symmetry breaking: hidden units get zero gradient (tanh, relu)"),
    Scheme("ones", "constant", fixed=dict(value=1.0), formula="w = 1",
           reference="torch.nn.init.ones_", framework="all"),
    Scheme("constant", "constant", params=(P("value", doc="the constant"),),
           formula="w = value", reference="torch.nn.init.constant_", framework="all",
           description="every hidden unit identical forever (rank 1)"),
    Scheme("uniform", "uniform", params=(P("low", 0.0), P("high", 1.0)),
           formula="w ~ U[low, high]", reference="torch.nn.init.uniform_ (a, b)",
           framework="pytorch", aliases=("torch.uniform",)),
    Scheme("normal", "normal", params=(P("mean", 0.0), P("std", 1.0, "nonnegative")),
           formula="w ~ N(mean, std^2)", reference="torch.nn.init.normal_",
           framework="pytorch", aliases=("torch.normal",)),
    Scheme("trunc_normal", "truncated_normal",
           params=_MEAN_STD + (P("a", -2.0, "bound", doc="absolute lower bound"),
                               P("b", 2.0, "bound", doc="absolute upper bound")),
           fixed=dict(bounds="absolute", correct=False),
           formula="w ~ N(mean, std^2) truncated to [a, b] (absolute values), no correction",
           reference="torch.nn.init.trunc_normal_", framework="pytorch",
           aliases=("torch.trunc_normal",)),
    Scheme("trunc_normal_std", "truncated_normal",
           params=_MEAN_STD + (P("a", -2.0, "bound", doc="lower bound in std units"),
                               P("b", 2.0, "bound", doc="upper bound in std units")),
           fixed=dict(bounds="std", correct=False),
           formula="w = mean + std * z, z ~ N(0, 1) truncated to [a, b], no correction",
           reference="jax.nn.initializers.truncated_normal, timm trunc_normal_tf_, "
                     "keras.initializers.TruncatedNormal (a=-2, b=2)",
           framework="keras/jax", aliases=("jax.truncated_normal", "keras.truncated_normal",
                                           "timm.trunc_normal_tf")),
    Scheme("trunc_normal_corrected", "truncated_normal",
           params=_MEAN_STD + (P("a", -2.0, "bound", doc="lower bound in units of the draw"),
                               P("b", 2.0, "bound", doc="upper bound in units of the draw")),
           fixed=dict(bounds="std", correct=True),
           formula="w = mean + std * z / sd(z), z ~ N(0, 1) truncated to [a, b]: final std "
                   "exactly std", reference="keras/jax variance_scaling truncated_normal",
           framework="keras/jax"),
    Scheme("xavier_uniform", "variance_scaling", params=(P("gain", 1.0),),
           derive=_torch_xavier("uniform"),
           formula="U[-b, b], b = gain * sqrt(6 / (fan_in + fan_out))",
           reference=f"{_GLOROT}; torch.nn.init.xavier_uniform_", framework="pytorch",
           aliases=("torch.xavier_uniform",)),
    Scheme("xavier_normal", "variance_scaling", params=(P("gain", 1.0),),
           derive=_torch_xavier("normal"),
           formula="N(0, s^2), s = gain * sqrt(2 / (fan_in + fan_out)), untruncated",
           reference=f"{_GLOROT}; torch.nn.init.xavier_normal_", framework="pytorch",
           aliases=("torch.xavier_normal",)),
    Scheme("kaiming_uniform", "variance_scaling", params=_KAIMING_PARAMS,
           derive=_torch_kaiming("uniform"),
           formula="U[-b, b], b = gain * sqrt(3 / fan_mode), gain = "
                   "calculate_gain(nonlinearity, a)",
           reference=f"{_HE}; torch.nn.init.kaiming_uniform_", framework="pytorch",
           aliases=("torch.kaiming_uniform",)),
    Scheme("kaiming_normal", "variance_scaling", params=_KAIMING_PARAMS,
           derive=_torch_kaiming("normal"),
           formula="N(0, s^2), s = gain / sqrt(fan_mode), untruncated",
           reference=f"{_HE}; torch.nn.init.kaiming_normal_", framework="pytorch",
           aliases=("torch.kaiming_normal",)),
    _keras("glorot_uniform", 1.0, "fan_avg", "uniform",
           "U[-b, b], b = sqrt(6 / (fan_in + fan_out))", _GLOROT),
    _keras("glorot_normal", 1.0, "fan_avg", "truncated_normal",
           f"sqrt(2 / (fan_in + fan_out)) * {_TRUNC}", _GLOROT),
    _keras("he_uniform", 2.0, "fan_in", "uniform", "U[-b, b], b = sqrt(6 / fan_in)", _HE),
    _keras("he_normal", 2.0, "fan_in", "truncated_normal",
           f"sqrt(2 / fan_in) * {_TRUNC}", _HE),
    _keras("lecun_uniform", 1.0, "fan_in", "uniform", "U[-b, b], b = sqrt(3 / fan_in)",
           _LECUN),
    _keras("lecun_normal", 1.0, "fan_in", "truncated_normal",
           f"sqrt(1 / fan_in) * {_TRUNC}", _LECUN + "; Klambauer et al. 2017 (SELU)"),
    Scheme("variance_scaling", "variance_scaling",
           params=(P("scale", 1.0, "positive"), P("mode", "fan_in", "choice", MODES),
                   P("distribution", "truncated_normal", "choice", fam.DISTRIBUTIONS)),
           formula="Var[w] = scale / fan(mode); truncated_normal is corrected to that variance",
           reference="keras.initializers.VarianceScaling, "
                     "jax.nn.initializers.variance_scaling", framework="keras/jax",
           aliases=("keras.variance_scaling", "jax.variance_scaling")),
    Scheme("orthogonal", "orthogonal", params=(P("gain", 1.0),),
           formula="gain * Q, Q from the QR of a Gaussian matrix with sign(diag R) = +1 "
                   "(Haar); rows orthonormal if rows <= cols, else columns",
           reference="Saxe et al., ICLR 2014; torch.nn.init.orthogonal_",
           framework="all", aliases=("torch.orthogonal", "keras.orthogonal",
                                     "jax.orthogonal")),
    Scheme("identity", "identity", params=(P("gain", 1.0),),
           formula="gain * I (2-D, ones on the main diagonal)",
           reference="torch.nn.init.eye_, keras.initializers.Identity", framework="all",
           aliases=("eye", "torch.eye", "keras.identity")),
    Scheme("dirac", "dirac", params=(P("groups", 1, "positive_int"),),
           formula="w[g*o + i, i, centre] = 1 for i < min(out/groups, in), centre = k // 2",
           reference="torch.nn.init.dirac_", framework="pytorch", aliases=("torch.dirac",)),
    Scheme("delta_orthogonal", "delta_orthogonal", params=(P("gain", 1.0),),
           formula="orthogonal (in x out) at the kernel position (k - 1) // 2, zero elsewhere; "
                   "needs out >= in",
           reference="Xiao et al., ICML 2018; jax.nn.initializers.delta_orthogonal",
           framework="jax", aliases=("jax.delta_orthogonal",)),
    Scheme("sparse", "sparse",
           params=(P("sparsity", kind="fraction", doc="fraction of each column set to zero"),
                   P("std", 0.01, "nonnegative")),
           formula="N(0, std^2), then ceil(sparsity * rows) zeros in every column, placed by a "
                   "reproducible random permutation",
           reference="Martens, ICML 2010; torch.nn.init.sparse_", framework="pytorch",
           aliases=("torch.sparse",)),
    Scheme("ZerO", "zero",
           formula="out <= in: partial identity; out > in: first rows/columns of "
                   "H_p / sqrt(p), p = 2^ceil(log2 out); conv: at the kernel centre",
           reference="Zhao, Schaefer & Anandkumar, ZerO initialization, TMLR 2022",
           framework="paper", aliases=("zer0", "zero_init"),
           description="deterministic; breaks symmetry without randomness (needs relu'(0)=1); "
                       "rows are distinct while out <= 2^ceil(log2 in), then repeat"),
    # framework presets: the exact default of a layer, weight and bias
    Scheme("torch_linear", "variance_scaling", derive=lambda p, fi, fo: dict(
               scale=calculate_gain("leaky_relu", math.sqrt(5), method="torch") ** 2,
               mode="fan_in", distribution="uniform"),
           formula="kaiming_uniform(a=sqrt(5)) = U[-1/sqrt(fan_in), 1/sqrt(fan_in)]",
           reference="torch.nn.Linear / ConvNd reset_parameters", framework="pytorch",
           aliases=("torch.linear", "torch_conv", "torch.conv"), bias="torch_linear_bias"),
    Scheme("torch_linear_bias", "uniform", derive=_torch_linear_bias, uses_fans=True,
           formula="U[-1/sqrt(fan_in), 1/sqrt(fan_in)], fan_in of the layer's weight "
                   "(pass fan_in= for a 1-D bias)",
           reference="torch.nn.Linear / ConvNd reset_parameters", framework="pytorch",
           aliases=("torch.linear_bias",)),
    Scheme("keras_dense", "variance_scaling",
           fixed=dict(scale=1.0, mode="fan_avg", distribution="uniform"),
           formula="glorot_uniform", reference="keras.layers.Dense defaults",
           framework="keras", aliases=("keras.dense",), bias="keras_dense_bias"),
    Scheme("keras_dense_bias", "constant", fixed=dict(value=0.0), formula="zeros",
           reference="keras.layers.Dense defaults", framework="keras",
           aliases=("keras.dense_bias",)),
    Scheme("flax_dense", "variance_scaling",
           fixed=dict(scale=1.0, mode="fan_in", distribution="truncated_normal"),
           formula="lecun_normal (truncated, corrected)", reference="flax.linen.Dense defaults",
           framework="flax", aliases=("flax.dense",), bias="flax_dense_bias"),
    Scheme("flax_dense_bias", "constant", fixed=dict(value=0.0), formula="zeros",
           reference="flax.linen.Dense defaults", framework="flax",
           aliases=("flax.dense_bias",)),
)



@functools.lru_cache(maxsize=256)
def _critical(activation: str, sigma_b2: float) -> float:
    from .theory import critical_sigma_w2
    return critical_sigma_w2(activation, sigma_b2)


_EOC_PARAMS = (P("activation", "tanh", "choice", tuple(_ACTS)),
               P("sigma_b2", 0.05, "nonnegative", doc="bias variance sigma_b^2"))
BUILTIN += (
    Scheme("edge_of_chaos", "variance_scaling", params=_EOC_PARAMS,
           derive=lambda p, fi, fo: dict(scale=_critical(p["activation"], p["sigma_b2"]),
                                         mode="fan_in", distribution="normal"),
           formula="N(0, sigma_w*^2 / fan_in), sigma_w*^2 the critical point chi_1 = 1 of the "
                   "mean-field map for (activation, sigma_b2); bias N(0, sigma_b2)",
           reference="Poole et al., NeurIPS 2016; Schoenholz et al., ICLR 2017",
           framework="paper", bias="edge_of_chaos_bias"),
    Scheme("edge_of_chaos_bias", "normal", params=_EOC_PARAMS,
           derive=lambda p, fi, fo: dict(mean=0.0, std=math.sqrt(p["sigma_b2"])),
           formula="N(0, sigma_b2)", reference="Poole et al., NeurIPS 2016",
           framework="paper"),
)

for _s in BUILTIN:
    register_scheme(_s)
