"""The sweep spec language: specs (grid, fixed settings, dataset options), runs, expansion.

A spec names a grid (every combination of the listed values) and the settings shared by every
run. As TOML::

    name = "init-vs-depth"
    [grid]                                   # lists: every combination is one run
    scheme = ["xavier_normal", "he_normal", {name = "kaiming_normal", nonlinearity = "relu"}]
    seed = [0, 1, 2, 3, 4]
    depth = [2, 4, 8]                        # hidden layers
    [train]                                  # one value for every run
    epochs = 10
    width = 64
    dataset = "digits"

Any run key of ``runkeys.RUN_KEYS`` may sit in [grid] (a list) or [train] (a value), not
both. A spec needs a [grid]: one axis of one value is enough to say "this one run". Runs are
identified by ``runkeys.run_id``.
"""
from __future__ import annotations

import functools
import hashlib
import itertools
import json
import math
import os
from dataclasses import dataclass, field
from typing import Callable, Iterator

from ._validate import did_you_mean
from .datasets import DATASETS, FILE_DATASETS
from . import runkeys
from .runkeys import RUN_KEYS, RunKey, describe, run_id  # noqa: F401 - names users import here

try:                                   # Python 3.11+
    import tomllib
except ImportError:                    # pragma: no cover - Python 3.10
    import tomli as tomllib


class SpecError(ValueError):
    """A sweep spec that cannot run, with where it went wrong ("file: [grid].lr[1]: ...")."""


TOP_KEYS = ("name", "grid", "train", "data", "max_population", "diagnose")


def spec_hash(body: dict) -> str:
    """A sweep version's identity: a hash of its grid, fixed settings and dataset options."""
    text = json.dumps({k: body.get(k, {}) for k in ("grid", "train", "data")}, sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Run:
    config: dict

    @functools.cached_property
    def id(self) -> str:
        return runkeys.run_id(self.config)

    def population_key(self) -> str:
        member = {k.name for k in runkeys.RUN_KEYS if k.member}
        return json.dumps({k: v for k, v in self.config.items() if k not in member},
                          sort_keys=True)


def group(runs: list[Run], max_population: int) -> list[list[Run]]:
    """Runs sharing everything but the member keys, in chunks of at most max_population."""
    by_key: dict[str, list[Run]] = {}
    for r in runs:
        by_key.setdefault(r.population_key(), []).append(r)
    return [members[i:i + max_population] for members in by_key.values()
            for i in range(0, len(members), max_population)]


def _fail(where: str, msg: str):
    raise SpecError(f"{where}: {msg}")


@dataclass
class SweepSpec:
    """A validated sweep: grid axes (lists of canonical values, duplicates removed), fixed
    settings, dataset options. ``duplicates`` says which grid values repeated another."""
    name: str = "sweep"
    grid: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    max_population: int = 256
    diagnose: bool = True
    source: str = "<spec>"
    duplicates: tuple = ()

    @classmethod
    def from_dict(cls, d: dict, source: str = "<spec>") -> "SweepSpec":
        if not isinstance(d, dict):
            _fail(source, f"a sweep spec must be a table/dict. Got {type(d).__name__}.")
        for key in d:
            if key not in TOP_KEYS:
                _fail(source, f"unknown top-level key {key!r}.{did_you_mean(key, TOP_KEYS)} "
                              f"Valid: {', '.join(TOP_KEYS)}.")
        name = d.get("name", "sweep")
        if not isinstance(name, str) or not name:
            _fail(f"{source}: name", f"must be a non-empty string. Got {name!r}.")
        table = runkeys.keys()
        grid, fixed = d.get("grid", {}), d.get("train", {})
        for section, tab in (("grid", grid), ("train", fixed)):
            if not isinstance(tab, dict):
                _fail(f"{source}: [{section}]", f"must be a table. Got {tab!r}.")
            for key in tab:
                if key not in table:
                    _fail(f"{source}: [{section}]", f"unknown key {key!r}."
                          f"{did_you_mean(key, table)} Valid keys: {', '.join(table)}.")
        both = set(grid) & set(fixed)
        if both:
            _fail(source, f"{sorted(both)} appear in both [grid] and [train]; give each once.")
        cgrid, dups = {}, []
        for key, values in grid.items():
            where = f"{source}: [grid].{key}"
            if not isinstance(values, list):
                _fail(where, f"must be a list of values (a grid axis). Got {values!r}; put a "
                             f"single value in [train].")
            if not values:
                _fail(where, "is an empty list: the grid would have no runs.")
            axis, first = [], []
            for i, v in enumerate(values):
                c = _parse(table[key], v, f"{where}[{i}]")
                if c in axis:
                    j = first[axis.index(c)]
                    dups.append(f"[grid].{key}[{i}] ({v!r}) is the same run setting as "
                                f"[grid].{key}[{j}] ({values[j]!r}): it trains once")
                else:
                    axis.append(c)
                    first.append(i)
            cgrid[key] = axis
        cfixed = {key: _parse(table[key], v, f"{source}: [train].{key}")
                  for key, v in fixed.items()}
        data = d.get("data", {})
        if not isinstance(data, dict):
            _fail(f"{source}: [data]", f"must be a table of dataset options. Got {data!r}.")
        for key, opts in data.items():
            if key in FILE_DATASETS:
                _fail(f"{source}: [data].{key}", f"{key}:PATH datasets take no options: their "
                      f"arrays are used as saved. Options can be given for: "
                      f"{', '.join(DATASETS)}.")
            if key not in DATASETS:
                _fail(f"{source}: [data]", f"unknown dataset {key!r}.{did_you_mean(key, DATASETS)}"
                      f" Options can be given for: {', '.join(DATASETS)}.")
            if not isinstance(opts, dict):
                _fail(f"{source}: [data].{key}", f"must be a table of options. Got {opts!r}.")
            if "seed" in opts:           # passed as data_seed: two values for one parameter
                _fail(f"{source}: [data].{key}", f"'seed' is the run key data_seed: set "
                      f"[train].data_seed = {opts['seed']!r} (or a [grid].data_seed list) "
                      f"instead.")
        mp = d.get("max_population", 256)
        if not runkeys.is_int(mp) or mp < 1:
            _fail(f"{source}: max_population", f"must be a positive integer. Got {mp!r}.")
        diag = d.get("diagnose", True)
        if not isinstance(diag, bool):
            _fail(f"{source}: diagnose", f"must be true or false. Got {diag!r}.")
        if "grid" not in d or not grid:
            _fail(source, "no [grid]: a sweep needs at least one grid axis, e.g. [grid] seed = "
                          "[0] for one run (every other key at its default or in [train]).")
        return cls(name, cgrid, cfixed, data, mp, diag, source, tuple(dups))

    @classmethod
    def from_toml(cls, path) -> "SweepSpec":
        path = os.fspath(path)
        try:
            with open(path, "rb") as f:
                d = tomllib.load(f)
        except FileNotFoundError:
            raise SpecError(f"{path}: no such sweep spec file.") from None
        except IsADirectoryError:
            raise SpecError(f"{path}: is a directory, not a sweep spec (TOML) file.") from None
        except UnicodeDecodeError:
            raise SpecError(f"{path}: not a text file: a sweep spec is TOML (UTF-8).") from None
        except OSError as e:
            raise SpecError(f"{path}: cannot read the sweep spec: {e.strerror or e}.") from None
        except tomllib.TOMLDecodeError as e:
            raise SpecError(f"{path}: not valid TOML: {e}") from None
        return cls.from_dict(d, path)

    # -- identity ---------------------------------------------------------------------------
    def body(self) -> dict:
        """What the store records as this sweep version's spec."""
        return {"grid": self.grid, "train": self.train, "data": self.data,
                "max_population": self.max_population, "diagnose": self.diagnose}

    def hash(self) -> str:
        return spec_hash(self.body())

    def where(self, key: str, value=None) -> str:
        """Where a run key's value is written: "[grid].loss[1]", "[train].loss" or "loss
        (default)"."""
        if key in self.grid:
            i = self.grid[key].index(value) if value in self.grid[key] else 0
            return f"[grid].{key}[{i}]"
        return f"[train].{key}" if key in self.train else f"{key} (default)"

    # -- expansion --------------------------------------------------------------------------
    def count(self) -> int:
        """Runs in the grid: the product of the axis lengths (nothing is expanded)."""
        return math.prod(len(v) for v in self.grid.values())

    def values(self, key: str) -> list:
        """Every value ``key`` takes in this sweep (canonical)."""
        if key in self.grid:
            return self.grid[key]
        return [self.train[key] if key in self.train else runkeys.defaults()[key]]

    def _config(self, base: dict, combo: dict) -> dict:
        cfg = {**base, **combo}
        cfg["data"] = self.data.get(cfg["dataset"].split(":", 1)[0], {})
        return cfg

    def populations(self, keep: Callable[[Run], bool] | None = None) -> Iterator[list[Run]]:
        """The runs (those ``keep`` accepts), lazily, as populations: runs sharing everything
        but the member keys, in chunks of at most max_population. Holds one chunk at a time."""
        member = [k.name for k in runkeys.RUN_KEYS if k.member and k.name in self.grid]
        shared = [k for k in self.grid if k not in member]
        base = {**runkeys.defaults(), **self.train}
        for outer in itertools.product(*(self.grid[k] for k in shared)):
            head = dict(zip(shared, outer))
            runs = (Run(self._config(base, {**head, **dict(zip(member, inner))}))
                    for inner in itertools.product(*(self.grid[k] for k in member)))
            if keep is not None:
                runs = filter(keep, runs)
            while chunk := list(itertools.islice(runs, self.max_population)):
                yield chunk

    def run_ids(self) -> Iterator[str]:
        for pop in self.populations():
            yield from (r.id for r in pop)

    def runs(self) -> list[Run]:
        """Every run of the grid, defaults filled in, in a fixed order (all in memory)."""
        return [r for pop in self.populations() for r in pop]


def _parse(key: runkeys.RunKey, value, where: str):
    try:
        return key.parse(value)
    except (ValueError, TypeError) as e:
        msg = str(e) if isinstance(e, runkeys.Need) else f"{key.name}: {e}"
        raise SpecError(f"{where}: {msg}") from None


def load_spec(spec) -> SweepSpec:
    """A SweepSpec from a SweepSpec, a dict or a path to a TOML file."""
    if isinstance(spec, SweepSpec):
        return spec
    if isinstance(spec, dict):
        return SweepSpec.from_dict(spec)
    if isinstance(spec, (str, os.PathLike)):
        return SweepSpec.from_toml(spec)
    raise TypeError(f"The 'spec' parameter of fastinit.sweep must be a SweepSpec, a dict or a "
                    f"path to a TOML file. Got {type(spec).__name__}.")
