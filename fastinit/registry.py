"""The scheme registry: ``Scheme`` and ``InitSpec``, and the one path from a name to parameters.

A ``Scheme`` names a family (families.py), fixes some of its arguments, exposes the rest as
parameters (``Param``, _validate.py) with defaults and constraints, and carries its formula and
reference. Declaring one validates it on the spot, so a typo fails where it is written.
``fastinit.schemes()`` lists them; ``fastinit.register_scheme`` adds a user's own. The built-in
schemes are data in builtin_schemes.py, registered when ``fastinit`` is imported.

Every caller turns a scheme (a name, an alias, an ``InitSpec`` or a (name, {params}) pair) plus
keyword parameters into a scheme and validated parameters through ``resolve``; a framework
preset's bias scheme comes from ``preset_bias``; a scheme with parameters prints as ``label``.
"""
from __future__ import annotations

import re
import types
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from ._validate import IDENTIFIER, REQUIRED, Param, check_bool, check_choice, did_you_mean
from .families import FAMILIES

RESERVED = ("scheme", "shape", "seed", "n", "start", "dtype", "layout", "fan_in", "fan_out")
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_.]*$")


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
        if not isinstance(self.name, str) or not IDENTIFIER.match(self.name):
            raise ValueError(f"The 'name' parameter of fastinit.Scheme must be an identifier "
                             f"(letters, digits, underscores). Got {self.name!r} instead.")
        check_choice(self.family, "family", where, list(FAMILIES))
        for arg, what in (("params", "fastinit.Param objects"), ("aliases", "names (str)")):
            value = getattr(self, arg)          # a str would be split into one-letter aliases
            if isinstance(value, (str, bytes, Param)) or not isinstance(value, Iterable):
                raise TypeError(f"The {arg!r} parameter of {where} must be a tuple of {what}. "
                                f"Got {value!r} of type {type(value).__name__} instead.")
        if self.derive is not None and not callable(self.derive):
            raise TypeError(f"The 'derive' parameter of {where} must be callable as derive("
                            f"params, fan_in, fan_out) or None. Got {self.derive!r} instead.")
        if self.bias is not None and not isinstance(self.bias, str):
            raise TypeError(f"The 'bias' parameter of {where} must be a scheme name (str) or "
                            f"None. Got {self.bias!r} of type {type(self.bias).__name__}.")
        check_bool(self.uses_fans, "uses_fans", where)
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
                raise TypeError(
                    f"{func} got an unknown parameter {key!r} for scheme {self.name!r}. "
                    + (f"Valid parameters: {valid}." if valid else
                       f"Scheme {self.name!r} takes no parameters.") + did_you_mean(key, valid))
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
            args = self.derive(dict(params), fan_in, fan_out)
            if not isinstance(args, Mapping):
                raise TypeError(f"Scheme {self.name!r}: its derive(params, fan_in, fan_out) "
                                f"must return a dict of its family's arguments. Got {args!r}.")
            args = dict(args)
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
    replace = check_bool(replace, "replace", "fastinit.register_scheme")
    for name in (scheme.name,) + scheme.aliases:
        owner = _REGISTRY.get(name) or (_REGISTRY[_ALIASES[name]] if name in _ALIASES else None)
        if owner is not None and owner.name != scheme.name:   # even with replace: a name of
            raise ValueError(                                 # another scheme stays its own
                f"fastinit.register_scheme: the name {name!r} is already taken by scheme "
                f"{owner.name!r}. Choose another (replace=True redefines a scheme of the "
                f"same name, not another scheme's names).")
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
    if isinstance(name, InitSpec):
        name = name.scheme
    if isinstance(name, str):
        if name in _REGISTRY:
            return _REGISTRY[name]
        if name in _ALIASES:
            return _REGISTRY[_ALIASES[name]]
    if not isinstance(name, str):
        raise TypeError(f"The {param!r} parameter of {func} must be a scheme name (str) or a "
                        f"fastinit.InitSpec. Got {name!r} of type {type(name).__name__}.")
    shown = "{" + ", ".join(repr(c) for c in _REGISTRY) + "}"
    raise ValueError(f"The {param!r} parameter of {func} must be a registered scheme, one of "
                     f"{shown}. Got {name!r} instead."
                     + did_you_mean(name, list(_REGISTRY) + list(_ALIASES))
                     + " See fastinit.schemes() for the list.")


def schemes() -> dict[str, Scheme]:
    """Every registered scheme, by name, in declaration order (a copy)."""
    return dict(_REGISTRY)


@dataclass(frozen=True)
class InitSpec:
    """A scheme with parameters, validated: ``fastinit.spec("kaiming_normal", a=0.1)``."""
    scheme: str
    params: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self):
        """Its parameters as (name, value) pairs sorted by name, from pairs or a mapping."""
        if not isinstance(self.scheme, str):
            raise TypeError(f"The 'scheme' parameter of fastinit.InitSpec must be a scheme name "
                            f"(str). Got {self.scheme!r} of type {type(self.scheme).__name__}.")
        given = self.params.items() if isinstance(self.params, Mapping) else self.params
        try:
            pairs = [] if isinstance(given, (str, bytes)) else [(k, v) for k, v in given]
        except (TypeError, ValueError):
            pairs = []
        names = [k for k, _ in pairs]
        if (given and not pairs) or not all(isinstance(k, str) for k in names) \
                or len(set(names)) < len(names):
            raise TypeError(f"The 'params' parameter of fastinit.InitSpec must be (name, value) "
                            f"pairs with distinct names, or a dict. Got {self.params!r}.")
        object.__setattr__(self, "params", tuple(sorted(pairs, key=lambda kv: kv[0])))

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.params)

    def __str__(self):
        return label(self.scheme, self.params)


def label(name: str, params: Mapping[str, Any] | Iterable[tuple[str, Any]] = ()) -> str:
    """How a scheme with parameters is shown everywhere (labels, reports, benchmarks): its name,
    then its parameters sorted by name, values as repr.

    >>> label("kaiming_normal", {"mode": "fan_out", "a": 0.1})
    "kaiming_normal(a=0.1, mode='fan_out')"
    """
    inner = ", ".join(f"{k}={v!r}" for k, v in sorted(dict(params or ()).items()))
    return f"{name}({inner})" if inner else name


def spec(scheme, **params) -> InitSpec:
    """A validated (scheme, parameters) pair, usable wherever a scheme name is. ``scheme`` may
    be a spec already: ``spec(spec("kaiming_normal", a=0.1), mode="fan_out")`` adds to it.
    A parameter given as None whose default is None ("not set", edge_of_chaos's
    activation_param) is left out, so the spec, its label and a sweep run's id are those of
    the spec that omits it; any other value given is kept, a default included."""
    base = as_spec(scheme, "fastinit.spec")
    s, resolved = resolve(base, params, "fastinit.spec")
    given = set(base.kwargs) | set(params)
    return InitSpec(s.name, _set(s, sorted((k, v) for k, v in resolved.items() if k in given)))


def _set(scheme: Scheme, pairs) -> tuple[tuple[str, Any], ...]:
    """(name, value) ``pairs`` but those giving None to a parameter whose default is None."""
    unset = {p.name for p in scheme.params if p.default is None}
    return tuple((k, v) for k, v in pairs if v is not None or k not in unset)


def as_spec(value, func: str, param: str = "scheme") -> InitSpec:
    """A scheme name, an InitSpec or a (name, {params}) pair, as an InitSpec."""
    if isinstance(value, InitSpec):   # one built by hand may hold a None "not set" too
        return value if None not in value.kwargs.values() else InitSpec(
            value.scheme, _set(get_scheme(value.scheme, func, param), value.params))
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], Mapping):
        return spec(value[0], **value[1])
    if isinstance(value, Scheme) and _REGISTRY.get(value.name) != value:   # drawn by name:
        raise ValueError(                                   # it would be the registered one
            f"The {param!r} parameter of {func} got fastinit.Scheme({value.name!r}), which is "
            f"not registered" + (" (the registered scheme of that name is another)" if
                                 value.name in _REGISTRY else "") + ": pass it to "
            f"fastinit.register_scheme first (replace=True to redefine a scheme).")
    return InitSpec(get_scheme(value, func, param).name)


def resolve(scheme, params: Mapping[str, Any], func: str,
            param: str = "scheme") -> tuple[Scheme, dict[str, Any]]:
    """The scheme and its validated parameters (defaults filled in), from a scheme name, alias,
    InitSpec or (name, {params}) pair plus keyword ``params``: the one path every public
    function (sample, MLP, theory, interop) takes from what a user wrote to what a family draws.
    A parameter both in the spec and in ``params`` is a TypeError.
    """
    s_spec = as_spec(scheme, func, param)
    s = get_scheme(s_spec.scheme, func, param)
    overlap = set(s_spec.kwargs) & set(params)
    if overlap:
        raise TypeError(f"{func} got parameter(s) {sorted(overlap)} both in the spec and as "
                        f"keyword arguments.")
    return s, s.resolve({**s_spec.kwargs, **params}, func)


def preset_bias(weight) -> InitSpec:
    """The bias scheme that goes with a weight scheme: a framework preset's ``bias`` scheme,
    given the parameters it shares with the weight's spec (edge_of_chaos passes sigma_b2), else
    zeros. ``weight`` is anything ``as_spec`` takes.

    >>> str(preset_bias(spec("edge_of_chaos", sigma_b2=0.1)))
    'edge_of_chaos_bias(sigma_b2=0.1)'
    """
    w = as_spec(weight, "fastinit.registry.preset_bias", "weight")
    bias = get_scheme(w.scheme).bias
    if bias is None:
        return InitSpec("zeros")
    accepted = {p.name for p in get_scheme(bias, f"fastinit.Scheme({w.scheme!r})", "bias").params}
    return InitSpec(bias, tuple((k, v) for k, v in w.params if k in accepted))
