"""Preflight: everything about a sweep's runs that can fail before training, checked up front.

Each check runs once per distinct value, not once per run: a dataset is opened once per (name,
options, data_seed), an architecture is built once per (activation, parameter, residual,
dtype), a scheme is drawn once. The checks are the API's own: a tiny ``fastinit.MLP`` or
``ResMLP`` builds the architecture and draws the schemes; a 0-epoch ``fastinit.train`` on a
network with the dataset's input and output widths checks the data against the loss. A spec
that passes starts every run; a failure is a SpecError naming the file, the key and the reason.
"""
from __future__ import annotations

import itertools
import math

import numba
import numpy as np

from . import registry
from ._validate import check_int
from .datasets import DATASETS, load_dataset
from .memory import available_memory
from .network import MLP
from .residual import ResMLP
from .sweepspec import RUN_KEYS, SpecError, SweepSpec
from .training import STATES, train


def check_threads(threads, func: str = "fastinit.sweep.run_sweep"):
    """None (Numba's setting) or a thread count in [1, NUMBA_NUM_THREADS]."""
    if threads is None:
        return None
    return check_int(threads, "threads", func, minimum=1,
                     maximum=numba.config.NUMBA_NUM_THREADS)


def _label(scheme) -> str:
    return str(registry.InitSpec(scheme[0], tuple(sorted(scheme[1].items()))))


def check_runs(sp: SweepSpec, ready=None, local: bool = False) -> None:
    """Raise SpecError for the first value of ``sp`` that would make a run fail to start.
    ``ready()``, when given, is called before the first check that trains (a 0-epoch train:
    the network kernels), e.g. to wait for them compiling elsewhere (fastinit.warmup.ahead).
    ``local``: the runs train here, so the largest population must fit in this machine's
    memory (a cluster's workers may have more)."""
    def fail(key, value, msg):
        raise SpecError(f"{sp.source}: {sp.where(key, value)}: {msg}")

    dtype0 = sp.values("dtype")[0]
    for key in ("scheme", "bias_init"):          # drawable on a dense (out, in) weight
        for v in sp.values(key):
            if v is None:
                continue
            s = registry.InitSpec(v[0], tuple(sorted(v[1].items())))
            try:
                MLP([3, 4, 2], init=s if key == "scheme" else "he_normal",
                    bias_init=s if key == "bias_init" else None, dtype=dtype0)
            except (ValueError, TypeError) as e:
                fail(key, v, f"{key} {_label(v)} cannot initialise a dense layer: {e}")

    residuals = [r for r in sp.values("residual") if r is not None]
    if residuals and 0 in sp.values("depth"):
        fail("depth", 0, f"depth must be >= 1 with residual = {residuals[0]!r} (depth counts "
                         f"residual blocks). Got 0.")
    for act, param, res, dtype, bias, norm in itertools.product(*(sp.values(k) for k in (
            "activation", "activation_param", "residual", "dtype", "bias", "norm"))):
        try:
            if res is None:
                MLP([3, 4, 2], act, activation_param=param, dtype=dtype, bias=bias, norm=norm)
            else:
                ResMLP(3, 4, 1, 2, act, residual=res, activation_param=param, dtype=dtype,
                       bias=bias, norm=norm)
        except (ValueError, TypeError) as e:
            fail("activation_param" if param is not None else "activation",
                 param if param is not None else act, f"{act} cannot be built: {e}")

    for name in sp.values("dataset"):
        base = name.split(":", 1)[0]
        opts = sp.data.get(base, {})
        seeds = sp.values("data_seed") if base in DATASETS else [0]
        for seed in seeds:
            try:
                d = load_dataset(name, opts, seed)
            except (OSError, ValueError, TypeError) as e:
                given = f" with [data].{base} options {opts}" if opts else ""
                fail("dataset", name, f"cannot load {name!r}{given}: {e}")
            if True in sp.values("drop_last") and max(sp.values("batch_size")) > len(d.x_train):
                fail("batch_size", max(sp.values("batch_size")),
                     f"batch_size {max(sp.values('batch_size'))} with drop_last = true drops "
                     f"every batch of dataset {name!r} ({len(d.x_train)} training samples).")
            if local:
                _check_memory(sp, d, fail)
            for loss, dtype in itertools.product(sp.values("loss"), sp.values("dtype")):
                if ready is not None:
                    ready()
                _check_loss(d, name, loss, dtype, lambda msg: fail(
                    "loss" if loss is not None else "dataset",
                    loss if loss is not None else name, msg))


def _check_memory(sp: SweepSpec, d, fail) -> None:
    """The largest population on dataset ``d`` against the memory available, counting only
    what it certainly holds at once, so a spec that fits is never refused: its parameters and
    then its optimizer state (training) or the diagnostics' gradient (diagnose = true, before
    and after training), and its History's four curves."""
    K = min(sp.max_population, math.prod(len(sp.values(k.name)) for k in RUN_KEYS if k.member))
    width, depth, epochs = (max(sp.values(k)) for k in ("width", "depth", "epochs"))
    hidden = 2 * depth + 1 if any(sp.values("residual")) else depth
    sizes = [d.n_features] + [width] * hidden + [d.n_outputs]
    P = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    itemsize = max(np.dtype(t).itemsize for t in sp.values("dtype"))
    optimizer = max(sp.values("optimizer"), key=STATES.get)
    copies = 1 + max(STATES[optimizer], int(sp.diagnose))
    params, history = K * P * itemsize * copies, K * (epochs + 1) * 8 * 4
    need, avail = params + history, available_memory()
    if need <= avail:
        return
    shown = "[" + ", ".join(map(str, sizes if len(sizes) <= 6 else
                                sizes[:3] + ["..."] + sizes[-2:])) + "]"
    if history > params:
        key, lower = "epochs", "epochs"
        what = f"a population of {K} runs over {epochs} epochs needs at least " \
               f"{need / 1e9:.3g} GB (its History)"
    else:
        key, lower = "width", "width, depth"
        what = f"a population of {K} runs of {shown} needs at least {need / 1e9:.3g} GB " \
               f"(parameters and {optimizer} state or diagnostics)"
    fail(key, max(sp.values(key)), f"{what} but {avail / 1e9:.3g} GB of memory is available: "
                                   f"lower {lower} or max_population.")


def _check_loss(d, name, loss, dtype, fail):
    used = loss or d.loss
    if d.task == "classification" and used != "cross_entropy":
        fail(f"loss {used!r} needs float targets, but dataset {name!r} holds class labels "
             f"({d.n_outputs} classes): use loss = \"cross_entropy\" (its default).")
    if d.task != "classification" and used == "cross_entropy":
        fail(f"loss 'cross_entropy' needs class labels, but dataset {name!r} is a {d.task} "
             f"task: use loss = {d.loss!r} (its default).")
    try:
        train(MLP([d.n_features, d.n_outputs], dtype=dtype), d, epochs=0, loss=used)
    except (ValueError, TypeError) as e:
        fail(f"dataset {name!r} cannot train with loss {used!r}: {e}")
