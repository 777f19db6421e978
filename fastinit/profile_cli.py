"""`fastinit profile`: a sweep spec's (or one network's) epochs timed part by part on every
thread count of this machine, its expected wall time and the threads to run it on.

    fastinit profile sweep.toml [PATH=VALUE ...] [--threads 1,2,4] [--out DIR] [--json]
    fastinit profile --sizes 784,256,256,10 --population 64 --batch 128 --optimizer adam

A spec is checked exactly as `fastinit sweep` checks it: a bad one prints the same message and
exits with the same status (2). ``--sizes`` profiles one population of that MLP (or, with
``--residual``, a ResMLP IN -> WIDTH x blocks -> OUT) on random data of ``--samples`` rows.
"""
from __future__ import annotations

import argparse
import math
import sys

import numba
import numpy as np

from . import overrides
from .datasets import from_arrays
from .network import ACTIVATIONS, LOSSES, MLP
from .profiler import profile
from .residual import VARIANTS, ResMLP
from .sweep import MAX_RUNS
from .sweepprofile import profile_sweep
from .sweepspec import SpecError
from .training import OPTIMIZERS


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"must be positive integers separated by commas, "
                                         f"e.g. 784,256,10. Got {text!r}.")
    return values


def _threads(text: str) -> list[int]:
    values = _ints(text)
    most = numba.config.NUMBA_NUM_THREADS
    if max(values) > most:
        raise argparse.ArgumentTypeError(f"must be thread counts of at most {most} (Numba's "
                                         f"NUMBA_NUM_THREADS). Got {text!r}.")
    return values


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds. Got {text!r}.")
    return value


# what --sizes profiles; a spec sets these itself
_SIZES_ONLY = ("population", "batch", "activation", "optimizer", "loss", "dtype", "dropout",
               "no_bias", "norm", "residual", "blocks", "samples", "epochs")


def add_parser(sub, positive) -> None:
    """The `profile` subcommand on the CLI's subparsers; ``positive``: its int type."""
    p = sub.add_parser(
        "profile", help="where a sweep's (or a network's) epoch time goes, its thread "
        "scaling, wall time and recommended threads", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", nargs="?", default=None, help="a sweep spec (TOML); or --sizes")
    p.add_argument("overrides", nargs="*", metavar="PATH=VALUE", help="change the spec before "
                   "it is checked, as for `fastinit sweep`")
    p.add_argument("--sizes", type=_ints, default=None, metavar="D0,D1,...",
                   help="layer sizes of one population, e.g. 784,256,256,10 (instead of a spec)")
    p.add_argument("--population", type=positive, default=1, metavar="K", help="members (1)")
    p.add_argument("--batch", type=positive, default=32, help="batch size (32)")
    p.add_argument("--activation", default="relu", choices=ACTIVATIONS)
    p.add_argument("--optimizer", default="sgd", choices=OPTIMIZERS)
    p.add_argument("--loss", default="cross_entropy", choices=LOSSES)
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    p.add_argument("--dropout", type=float, default=0.0, help="dropout rate of every member")
    p.add_argument("--no-bias", action="store_true", help="layers without bias")
    p.add_argument("--norm", default=None, choices=("batch", "layer"),
                   help="batch or layer normalization of the hidden layers")
    p.add_argument("--residual", default=None, choices=VARIANTS, help="a ResMLP: --sizes "
                   "IN,WIDTH,OUT with --blocks residual blocks")
    p.add_argument("--blocks", type=positive, default=2, help="residual blocks (2)")
    p.add_argument("--samples", type=positive, default=2048, help="training samples (2048)")
    p.add_argument("--epochs", type=positive, default=10, help="epochs, for the wall time")
    p.add_argument("--threads", type=_threads, default=None, metavar="T1,T2,...",
                   help="thread counts (default: 1, 2, 4, ... up to every core)")
    p.add_argument("--repeats", type=positive, default=3, help="the median of this many (3)")
    p.add_argument("--budget", type=_seconds, default=0.25, metavar="SECONDS",
                   help="longest timed epoch; longer ones are timed on their first steps")
    p.add_argument("--max-runs", type=positive, default=MAX_RUNS, metavar="N",
                   help=f"refuse a grid of more than N runs, as the sweep does ({MAX_RUNS:,})")
    p.add_argument("--out", default=None, metavar="DIR", help="write profile.md, profile.png "
                   "and profile.json here")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
    p.set_defaults(func=cmd_profile, sizes_only={d: p.get_default(d) for d in _SIZES_ONLY})


def _network(args):
    """The --sizes population and random data shaped for it and its loss."""
    sizes = args.sizes
    kw = dict(activation=args.activation, n=args.population, dtype=np.dtype(args.dtype),
              bias=not args.no_bias, dropout=args.dropout, norm=args.norm)
    if args.residual:
        if len(sizes) != 3:
            raise ValueError(f"--residual takes --sizes IN,WIDTH,OUT (and --blocks N). Got "
                             f"--sizes {','.join(map(str, sizes))}.")
        net = ResMLP(sizes[0], sizes[1], args.blocks, sizes[2], residual=args.residual, **kw)
    else:
        net = MLP(sizes, **kw)
    g = np.random.default_rng(0)
    n, out = args.samples + args.samples // 4, sizes[-1]
    x = g.standard_normal((n, sizes[0]))
    if args.loss == "cross_entropy":
        y = g.integers(0, out, n)
    elif args.loss == "bce":
        y = (g.random((n, out)) < 0.5).astype(float)
    else:
        y = g.standard_normal((n, out))
    task = {"cross_entropy": "classification", "bce": "binary"}.get(args.loss, "regression")
    cut = args.samples
    return net, from_arrays(x[:cut], y[:cut], x[cut:], y[cut:], task, name="random data")


def cmd_profile(args) -> int:
    def log(msg):
        print(f"fastinit profile: {msg}", file=sys.stderr, flush=True)

    say = (lambda msg: None) if args.quiet else log
    if (args.spec is None) == (args.sizes is None):
        log("give a sweep spec (fastinit profile sweep.toml) or --sizes D0,D1,... (not both)")
        return 2
    given = [d for d, default in args.sizes_only.items() if getattr(args, d) != default]
    if args.spec is not None and given:
        flags = [f"--{d.replace('_', '-')}" for d in given]
        got = [f + ("" if isinstance(getattr(args, d), bool) else f" {getattr(args, d)}")
               for f, d in zip(flags, given)]
        log(f"{', '.join(flags)} {'is' if len(flags) == 1 else 'are'} for --sizes only: a sweep "
            f"spec sets its own (in the file, or as PATH=VALUE overrides such as "
            f"train.batch_size=64). Got {', '.join(got)} with {args.spec}.")
        return 2
    if args.blocks != args.sizes_only["blocks"] and not args.residual and args.spec is None:
        log(f"--blocks is for --residual networks (a ResMLP of --blocks residual blocks). Got "
            f"--blocks {args.blocks} without --residual.")
        return 2
    try:
        if args.spec is not None:
            spec = overrides.load(args.spec, args.overrides)
            say(f"checking and timing {spec.source} ...")
            prof = profile_sweep(spec, threads=args.threads, repeats=args.repeats,
                                 budget=args.budget, max_runs=args.max_runs, log=say)
        else:
            net, data = _network(args)
            say(f"timing {net!r} ...")
            prof = profile(net, data, batch_size=args.batch, optimizer=args.optimizer,
                           loss=args.loss, epochs=args.epochs, threads=args.threads,
                           repeats=args.repeats, budget=args.budget)
        files = prof.write(args.out) if args.out else {}
    except (SpecError, ValueError, TypeError, MemoryError, ImportError) as e:
        log(overrides.blame(str(e), args.overrides) if isinstance(e, SpecError) else str(e))
        return 2
    if not args.quiet:
        print(prof.to_json() if args.json else prof.table())
        if files:
            say("wrote " + ", ".join(files.values()))
    return 0
