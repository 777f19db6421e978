"""Command-line overrides of a sweep spec: ``fastinit sweep spec.toml grid.lr=[0.1,0.01]
train.epochs=5``.

An override is ``PATH=VALUE``: PATH a dotted key of the spec (``grid.KEY``, ``train.KEY``,
``data.DATASET.OPTION``, ``name``, ``max_population``, ``diagnose``), VALUE written as in TOML
(``5``, ``0.1``, ``"digits"``, ``[0.1, 0.01]``, ``{name = "orthogonal", gain = 2.0}``; a bare
word that is no TOML value, such as ``digits``, is taken as that string). Overrides apply in
order to the file's table before it is checked, so the checks, the run ids and the sweep's
version (its spec hash) all see the overridden spec. A run key set in one of [grid] and
[train] leaves the other: ``grid.lr=[0.1,0.01]`` over a file with ``[train] lr = 0.05`` makes
lr a grid axis. A mistake in an override raises SpecError naming it.
"""
from __future__ import annotations

import os
import re

from ._validate import did_you_mean
from .sweepspec import TOP_KEYS, SpecError, SweepSpec, load_spec, tomllib

_SECTIONS = ("grid", "train", "data")


def parse_value(text: str, override: str):
    """An override's value, read as TOML (a bare word that is no TOML value: a string)."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError as e:
        if text and all(c.isalnum() or c in "_-.:/" for c in text) and not text[0].isdigit():
            return text
        raise SpecError(f"override {override!r}: {text!r} is not a TOML value ({e}); write "
                        f"strings in quotes, lists as [1, 2], tables as {{name = \"x\"}}.") \
            from None


def apply(body: dict, overrides) -> dict:
    """A copy of the spec table ``body`` with each ``PATH=VALUE`` of ``overrides`` applied."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in body.items()}
    for override in overrides:
        path, eq, text = str(override).partition("=")
        keys = path.strip().split(".")
        if not eq or not all(keys):
            raise SpecError(f"override {override!r}: an override is PATH=VALUE, e.g. "
                            f"train.epochs=5 or grid.lr=[0.1,0.01].")
        if keys[0] not in TOP_KEYS:
            raise SpecError(f"override {override!r}: unknown spec key {keys[0]!r}."
                            f"{did_you_mean(keys[0], TOP_KEYS)} Valid: {', '.join(TOP_KEYS)}.")
        if (keys[0] in _SECTIONS) != (len(keys) > 1):
            want = f"{keys[0]}.KEY=VALUE" if keys[0] in _SECTIONS else f"{keys[0]}=VALUE"
            raise SpecError(f"override {override!r}: write {want}.")
        value = parse_value(text.strip(), override)
        table = out
        for depth, key in enumerate(keys[:-1]):
            inner = table.get(key, {})
            if not isinstance(inner, dict):
                raise SpecError(f"override {override!r}: {'.'.join(keys[:depth + 1])} is not "
                                f"a table in the spec.")
            table[key] = inner = dict(inner)
            table = inner
        table[keys[-1]] = value
        if len(keys) == 2 and keys[0] in ("grid", "train"):     # a key is a grid axis or fixed
            other = "train" if keys[0] == "grid" else "grid"
            if isinstance(out.get(other), dict) and keys[1] in out[other]:
                out[other] = {k: v for k, v in out[other].items() if k != keys[1]}
    return out


def load(path, overrides=()) -> SweepSpec:
    """The spec in the TOML file ``path`` with ``overrides`` applied, then checked. A spec
    error in an overridden key says which override set it."""
    if not overrides:
        return load_spec(path)
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            body = tomllib.load(f)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return load_spec(path)       # the file's own error, as the spec loader words it
    body = apply(body, overrides)           # its errors name their override
    try:
        return SweepSpec.from_dict(body, path)
    except SpecError as e:
        raise SpecError(blame(str(e), overrides)) from None


def blame(msg: str, overrides) -> str:
    """A spec error's message ``msg`` (from loading the spec or from checking its runs, as
    fastinit.preflight does) with the overrides that set the key it names, if any, once."""
    if "(set by the override" in msg:
        return msg
    blamed = [o for o in overrides if _mentions(msg, str(o).partition("=")[0].strip())]
    return msg + (f" (set by the override {', '.join(map(repr, blamed))})" if blamed else "")


def _mentions(msg: str, path: str) -> bool:
    keys = path.split(".")
    if keys[0] in ("grid", "train") and len(keys) == 2:   # [train].bias is not [train].bias_init
        return re.search(rf"\[{keys[0]}\]\.{re.escape(keys[1])}\b", msg) is not None \
            or f"[{keys[0]}]: unknown key {keys[1]!r}" in msg
    if keys[0] == "data":
        return "[data]" in msg
    return f": {keys[0]}:" in msg
