"""fastinit.profile: where a population's training epoch goes, part by part, at every thread
count of this machine, and what a sweep of such populations will take.

An epoch is one compiled call (kernels.train.train_epoch, or train_epoch_split when a
population has fewer members than threads and large steps). It is timed as fastinit.train runs
a run's second epoch (the first maps the run's scratch memory), and inside it, with a clock
read in compiled code (kernels.clock), each member's phases are timed in place: the network
passes (batch gather, forward, backward), the loss and the optimizer. The network passes are
split into their parts (the GEMMs forward, dW and dX, the transposes, the elementwise passes,
batch or layer normalization) in the proportions those parts take when each is replayed alone
with the same network, members, batch and threads (kernels.profile); the loss and the
optimizer are their in-place times. So the parts are what they cost inside the real epoch,
caches shared and evicted as training shares and evicts them, on any CPU; what each part costs
alone is kept too (``alone``). ``call`` is what one compiled call costs with no step at all
(threads started and joined, gradients zeroed), and ``rest`` is the real epoch minus the parts
and the call: the loops' bookkeeping and, on several threads, threads waiting for the slowest.
An epoch longer than ``budget`` seconds is timed on its first steps and scaled to all of them.
Every time is the median of ``repeats`` taken in rounds (epoch, then each part, then the
evaluation, of enough batches to spread over the threads as all would), so a busy spell
slows them alike. Compiling and loading kernels (compilelog) is left out and reported apart.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field

import numba
import numpy as np

from . import compilelog, jsonable, kernels, population, profile_report, roofline, streams
from ._validate import check_int, check_real, check_targets, check_x
from .datasets import permutation
from .kernels import profile as replay
from .network import LOSSES, MLP, check_net, evaluate as evaluate_net
from .spread import over_members, splits, workspace
from .training import OPTIMIZERS, STATES, as_dataset, evaluations, numba_threads, train

_FUNC = "fastinit.profile"
PARALLEL, SPLIT = "population-parallel", "row-split"
PART_CODES = {"gemm_forward": replay.GEMM_FORWARD, "gemm_dw": replay.GEMM_DW,
              "gemm_dx": replay.GEMM_DX, "transposes": replay.TRANSPOSES,
              "elementwise": replay.ELEMENTWISE, "normalization": replay.NORMALIZATION,
              "loss": replay.LOSS, "optimizer": replay.OPTIMIZER, "call": replay.CALL}
NETWORK_PARTS = ("gemm_forward", "gemm_dw", "gemm_dx", "transposes", "elementwise",
                 "normalization")
_NO_CLOCK = np.zeros((0, kernels.clock.PHASES), dtype=np.int64)


@dataclass
class PopulationProfile:
    """One population's epoch, measured. Times in seconds for a whole epoch, per thread count:
    ``epoch`` the real compiled epoch, ``parts`` each part inside it, ``call`` (what a
    compiled call costs with no step) and ``rest``; ``phases`` the network passes, loss and
    optimizer as timed in place; ``alone`` each part replayed alone (module docstring);
    ``evaluation`` one pass over the training and test sets (a sweep evaluates after every
    epoch). ``work``: {part: (flops, bytes)} of an epoch. ``populations``, ``runs``,
    ``epochs`` (summed over the populations) and ``evaluations`` say how many of them a sweep
    trains; ``setup``: seconds per population to build it, init it from data and diagnose it."""
    label: str
    config: dict
    steps: int
    measured_steps: int
    modes: dict = field(default_factory=dict)
    epoch: dict = field(default_factory=dict)
    evaluation: dict = field(default_factory=dict)
    parts: dict = field(default_factory=dict)
    phases: dict = field(default_factory=dict)
    alone: dict = field(default_factory=dict)
    work: dict = field(default_factory=dict)
    working_set: int = 0
    populations: int = 1
    runs: int = 1
    epochs: int = 1
    evaluations: int = 2
    setup: float = 0.0
    notes: list = field(default_factory=list)

    def seconds(self, threads: int) -> float:
        """Compute time of all these populations, one after another, on ``threads``."""
        return (self.populations * self.setup + self.epochs * self.epoch[threads]
                + self.evaluations * self.evaluation[threads])

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class Profile:
    """What fastinit.profile and profile_sweep measured: the machine, the thread counts, each
    population shape, and the first call's compile (or disk-cache load) time, which no
    per-epoch figure includes. ``table()``, ``markdown()``, ``plot(path)``, ``write(dir)``,
    ``to_json()`` present it; ``recommendation()`` says how to run it."""
    name: str
    machine: roofline.Machine
    threads: list
    populations: list
    compile: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    def speedup(self, threads: int) -> float:
        """How much faster every population's epochs run on ``threads`` than on the fewest."""
        t0 = self.threads[0]
        return sum(p.seconds(t0) for p in self.populations) / sum(
            p.seconds(threads) for p in self.populations)

    def wall(self, threads: int, in_flight: int = 1) -> float:
        """Expected wall time: every population's compute at ``threads`` (setup, epochs x
        (epoch + evaluation)) over the populations in flight, plus the first call's compile."""
        total = sum(p.seconds(threads) for p in self.populations)
        longest = max(p.seconds(threads) / p.populations for p in self.populations)
        return self.compile.get("seconds", 0.0) + max(total / in_flight, longest)

    def recommendation(self) -> dict:
        return profile_report.recommend(self)

    def to_dict(self) -> dict:
        return jsonable.clean({
            "name": self.name, "machine": self.machine.to_dict(), "threads": self.threads,
            "compile": self.compile, "notes": self.notes,
            "populations": [p.to_dict() for p in self.populations],
            "speedup": {t: self.speedup(t) for t in self.threads},
            "recommendation": self.recommendation()})

    def to_json(self) -> str:
        return jsonable.dumps(self.to_dict(), indent=1)

    def table(self) -> str:
        return profile_report.text(self)

    def markdown(self) -> str:
        return profile_report.markdown(self)

    def plot(self, path) -> str:
        return profile_report.plot(self, path)

    def write(self, out) -> dict:
        """profile.md, profile.png and profile.json in directory ``out``; their paths."""
        return profile_report.write(self, out)


def thread_counts(threads=None, func: str = _FUNC) -> list[int]:
    """1, 2, 4, ... up to every core this process may use (and Numba allows), or the given
    counts, sorted."""
    most = min(roofline.cores(), numba.config.NUMBA_NUM_THREADS)
    if threads is None:
        out = [1]
        while out[-1] * 2 < most:
            out.append(out[-1] * 2)
        return sorted(set(out + [most]))
    if isinstance(threads, (int, np.integer)) and not isinstance(threads, bool):
        threads = [threads]
    if not isinstance(threads, (list, tuple)) or not threads:
        raise TypeError(f"The 'threads' parameter of {func} must be a thread count or a list "
                        f"of them. Got {threads!r}.")
    return sorted({check_int(t, "threads", func, minimum=1,
                             maximum=numba.config.NUMBA_NUM_THREADS) for t in threads})


def mode(net: MLP, batch: int, threads: int) -> str:
    """How fastinit.train spreads this population over ``threads``: its members over the
    threads, or each member's products split by rows (fastinit.spread.splits)."""
    return SPLIT if splits(net, batch, threads) else PARALLEL


class _Inputs:
    """The arrays one epoch (and each replay) takes, as fastinit.train builds them."""

    def __init__(self, net, ds, batch_size, drop_last, optimizer, lr, loss, momentum, betas,
                 eps, weight_decay, seed):
        K, dt = net.n, net.dtype
        self.net = net
        self.x = check_x(ds.x_train, net.layer_sizes[0], dt, _FUNC, "data (X_train)")
        self.y, self.t = check_targets(ds.y_train, len(self.x), net.layer_sizes[-1], loss, dt,
                                       _FUNC, "data (y_train)")
        n = len(self.x)
        self.batch = min(batch_size, n)
        self.steps = n // self.batch if drop_last else -(-n // self.batch)
        self.order = permutation(n, seed, streams.ORDER + 1)[None, :]
        self.loss = LOSSES.index(loss)
        each = lambda v, name: population.reals(v, K, name, _FUNC)
        self.opt = kernels.optim.Optim(OPTIMIZERS.index(optimizer), each(lr, "lr"),
                                       each(momentum, "momentum"), betas[0], betas[1], eps,
                                       each(weight_decay, "weight_decay"))
        P = net.params.shape[1]
        self.states = tuple(np.zeros((K, P if STATES[optimizer] > i else 0), dtype=dt)
                            for i in range(2))
        self.plan = lambda s: kernels.train.Plan(self.batch, s, 0, 0, np.zeros((0, K)),
                                                 np.zeros((0, K, net.depth)), _NO_CLOCK,
                                                 time.CLOCK_MONOTONIC)
        lay = kernels.dense.layout(net.arch, kernels.gemm.padded(self.batch))
        self.total, self.grads = int(lay.total), (int(lay.dz), int(lay.xt))   # dz, da
        self.bare = net.params.copy()           # biases zero: adding them leaves Z as it is
        a = net.arch
        for l in range(net.depth):
            if a.boff[l] >= 0:
                self.bare[:, a.boff[l]:a.boff[l] + net.layer_sizes[l + 1]] = 0

        # a member's scratch starts as this: a real step's values, its gradient blocks zero
        # (the elementwise and normalization passes multiply them in place)
        self.template = np.zeros(self.total, dtype=net.dtype)
        replay.snapshot(net.params, self.x, self.y, self.t, self.order, self.arch(),
                        self.loss, self.batch, self.template)
        for lo, hi in (self.grads, (int(lay.sk), int(lay.pre))):
            self.template[lo:hi] = 0
        # a scratch and a gradient per thread, touched here: the replays reuse them as a
        # training run's epochs reuse their memory after the first
        self.work = workspace(net, self.batch, numba.config.NUMBA_NUM_THREADS)
        self.work[:] = 0
        self.grad = np.zeros((len(self.work), net.params.shape[1]), dtype=net.dtype)

    def arch(self):
        """The network's record with its own batch-norm statistics (a replay updates them)."""
        return self.net.arch._replace(state=self.net.norm_state.copy())

    def replay(self, part, threads, how, steps) -> float:
        """Seconds ``part`` of ``steps`` steps of every member takes on ``threads``."""
        params = self.net.params.copy() if part == "optimizer" else self.bare
        s1, s2 = (a.copy() for a in self.states)
        args = (PART_CODES[part], params, s1, s2, self.x, self.y, self.t, self.order,
                self.arch(), self.loss, self.opt, self.plan(steps), self.template)
        with numba_threads(threads):
            t0 = time.perf_counter()
            if how == PARALLEL:
                over_members(replay.replay, self.net.n, *args, each=(self.work, self.grad))
            else:
                replay.replay_split(*args, self.work[0], self.grad[0], threads)
            return time.perf_counter() - t0


def _label(net: MLP, batch: int, optimizer: str, loss: str) -> str:
    sizes = net.layer_sizes
    shape = (f"ResMLP {net.residual} {sizes[0]}-{sizes[1]}x{net.blocks}-{sizes[-1]}"
             if hasattr(net, "residual") else str(sizes))
    extra = ("" if net.bias else ", no bias") + (f", {net.norm} norm" if net.norm else "")
    if np.any(net.dropout > 0):
        extra += f", dropout ({int(np.sum(net.dropout > 0))} members)"
    return (f"{net.n} x {shape} {net.activation}, {optimizer}, {loss}, batch {batch}, "
            f"{net.dtype.name}{extra}")


def _compiled(compile: dict, block, key: str = "seconds") -> None:
    """Add what an announcing() block spent compiling or loading kernels to compile[key], and
    say how the sweep's kernels came: compiled, loaded from the disk cache, or already here."""
    compile[key] = compile.get(key, 0.0) + block.ready
    if key == "seconds":
        how = ("compiled" if block.compiled > 0 else "loaded from the disk cache"
               if block.ready > 0 else "already compiled in this process")
        compile.setdefault("how", how)


def _in_place(seconds, threads: int) -> dict:
    """The in-place phases of an epoch (kernels.clock: thread-seconds summed over members) as
    wall seconds: members spread over ``threads`` (1 when each member's products are split)."""
    c = kernels.clock
    return {name: float(seconds[i]) / threads
            for name, i in (("network", c.NETWORK), ("loss", c.LOSS), ("optimizer", c.OPTIMIZER))}


def _parts(alone: dict, phases: dict) -> dict:
    """Each part's seconds inside the real epoch: the network passes' in-place time shared
    among their parts as the parts alone share it; the loss and the optimizer as timed in
    place."""
    net = sum(alone[p] for p in NETWORK_PARTS)
    parts = {p: phases["network"] * alone[p] / net if net > 0 else 0.0 for p in NETWORK_PARTS}
    parts.update(loss=phases["loss"], optimizer=phases["optimizer"])
    return {p: parts[p] for p in roofline.PARTS}


def measure(net: MLP, ds, *, threads: list, repeats: int, budget: float, eval_every: int,
            eval_batch_size: int, epochs: int, options: dict, compile: dict) -> \
        PopulationProfile:
    """One population's PopulationProfile (fastinit.profile's measurement, checked inputs);
    the seconds its kernels took to compile or load are added to ``compile``: "seconds" for
    what a sweep needs, "replays" for the profiler's own."""
    loss = options["loss"]
    start = net.copy()
    start.diverged[:] = False
    diverged: set = set()

    def real(T, steps, clock=None):
        """A warm epoch of ``steps`` steps: the second of two on the first steps x batch
        samples (a run's first epoch maps its scratch memory, about a millisecond for 4 MB;
        the replays start from the initial parameters). ``clock``: the second's phases."""
        rows = min(n, steps * batch)
        some = dataclasses.replace(ds, x_train=ds.x_train[:rows], y_train=ds.y_train[:rows],
                                   x_test=ds.x_test[:0], y_test=ds.y_test[:0])
        h = train(start.copy(), some, epochs=2, eval_every=0, threads=T, _clock=clock,
                  _adaptive=False, **options)
        if h.diverged.any():
            diverged.add(int(h.diverged.sum()))
        return float(h.epoch_time[2])

    with compilelog.announcing() as block:
        try:
            train(start.copy(), ds, steps=1, eval_every=0, threads=threads[0], _adaptive=False,
                  **options)
        except (TypeError, ValueError) as e:      # train's checks, named for this function
            raise type(e)(str(e).replace("fastinit.train", _FUNC)) from None
        inputs = _Inputs(net, ds, loss=loss, **{k: options[k] for k in (
            "batch_size", "drop_last", "optimizer", "lr", "momentum", "betas", "eps",
            "weight_decay", "seed")})
        n, batch, steps = len(inputs.x), inputs.batch, inputs.steps
        xs = [(inputs.x, inputs.y, inputs.t)]
        if len(ds.x_test):
            xt = check_x(ds.x_test, net.layer_sizes[0], net.dtype, _FUNC, "data (X_test)")
            xs.append((xt, *check_targets(ds.y_test, len(xt), net.layer_sizes[-1], loss,
                                          net.dtype, _FUNC, "data (y_test)")))
        if eval_every:
            evaluate_net(net, *xs[0], loss, batch=eval_batch_size)
    _compiled(compile, block)
    one = real(threads[0], 1)
    measured = max(1, min(steps, math.ceil(budget / max(one, 1e-6))))
    frac = measured / steps
    subsets, least = [], (net.n < max(threads)) * 4 * max(threads) * eval_batch_size
    for x, y, tg in xs:
        m = min(len(x), max(math.ceil(frac * len(x)), least))
        subsets.append((x[:m], y[:m] if loss == "cross_entropy" else y,
                        tg if loss == "cross_entropy" else tg[:m], len(x) / m))

    def evaluation(T):          # on scratch mapped before, as a run's evaluations after its first
        work = workspace(net, min(eval_batch_size, max(len(v[0]) for v in xs)), T, evaluation=True)
        total, work[:] = 0.0, 0
        with numba_threads(T):
            for x, y, tg, scale in subsets:
                t0 = time.perf_counter()
                evaluate_net(net, x, y, tg, loss, batch=eval_batch_size, work=work)
                total += (time.perf_counter() - t0) * scale
        return total

    pop = PopulationProfile(_label(net, batch, options["optimizer"], loss), {
        "layer_sizes": list(net.layer_sizes), "members": net.n, "activation": net.activation,
        "residual": getattr(net, "residual", None), "norm": net.norm,
        "optimizer": options["optimizer"], "loss": loss, "batch_size": batch, "samples": n,
        "test_samples": len(ds.x_test), "dtype": net.dtype.name, "bias": net.bias,
        "dropout_members": int(np.sum(net.dropout > 0))}, steps, measured)
    pop.epochs, pop.runs = epochs, net.n
    pop.evaluations = evaluations(epochs, eval_every)
    scale = steps / measured
    parts = tuple(p for p in profile_report.parts_of(pop) if p in roofline.PARTS)
    for T in threads:
        how = pop.modes[T] = mode(net, batch, T)
        with compilelog.announcing() as block:   # this T's kernels; the thread pool awake
            real(T, 1)
        _compiled(compile, block)
        with compilelog.announcing() as block:
            for part in parts:
                inputs.replay(part, T, how, 1)
        _compiled(compile, block, "replays")
        runs = {k: [] for k in ("epoch", "evaluation", "call", "setup", *parts)}
        inside = []                            # each round's in-place phases, summed members
        for _ in range(repeats):               # interleaved: a busy spell slows them alike
            clock = np.zeros((net.n, kernels.clock.PHASES), dtype=np.int64)
            runs["epoch"].append(real(T, measured, clock))
            inside.append(clock.sum(axis=0) * 1e-9)
            runs["call"].append(inputs.replay("call", T, how, 0))
            runs["setup"].append(inputs.replay("loss", T, how, 0))   # and the scratch set
            for part in parts:
                runs[part].append(inputs.replay(part, T, how, measured))
            if eval_every:
                runs["evaluation"].append(evaluation(T))
        mid = {k: float(np.median(v)) if v else 0.0 for k, v in runs.items()}
        # a call's own cost comes once per epoch, not in each replay: only the steps scale.
        # A replay also sets each group's scratch from the template ("setup"); epochs do not
        call, setup = min(mid["call"], mid["epoch"]), max(mid["setup"], mid["call"])
        pop.epoch[T] = (mid["epoch"] - call) * scale + call
        pop.evaluation[T] = mid["evaluation"]
        pop.alone[T] = {part: max(0.0, mid[part] - setup) * scale if part in mid else 0.0
                        for part in roofline.PARTS}
        pop.phases[T] = _in_place(np.median(inside, axis=0) * scale,
                                  1 if how == SPLIT else min(T, net.n))
        pop.parts[T] = _parts(pop.alone[T], pop.phases[T])
        pop.parts[T]["call"] = call
        pop.parts[T]["rest"] = pop.epoch[T] - sum(pop.parts[T].values())
    P = net.params.shape[1]
    pop.work = roofline.work(net.arch, batch, n, steps, net.dtype.itemsize, loss,
                             options["optimizer"], P, net.dropout)
    pop.working_set = (inputs.total + (2 + STATES[options["optimizer"]]) * P) * \
        net.dtype.itemsize
    if diverged:
        pop.notes.append(f"up to {max(diverged)} member(s) diverged while being timed: a "
                         f"member stops computing when it diverges, so these epochs are "
                         f"cheaper than a healthy population's.")
    if measured < steps:
        pop.notes.append(f"timed on the first {measured} of {steps} steps per epoch, scaled "
                         f"to all of them.")
    return pop


def profile(net: MLP, data, *, batch_size: int = 32, drop_last: bool = False,
            optimizer: str = "sgd", lr=0.01,
            loss: str | None = None, momentum=0.9, betas=(0.9, 0.999), eps: float = 1e-8,
            weight_decay=0.0, seed: int = 0, epochs: int = 1, eval_every: int = 1,
            eval_batch_size: int = 256, threads=None, repeats: int = 3, budget: float = 0.25,
            machine: roofline.Machine | None = None) -> Profile:
    """Where ``net``'s training epoch on ``data`` goes, at every thread count.

    The epoch is fastinit.train's, with these keywords (same meaning, same checks); it is
    timed as one compiled call and split into parts replayed alone (see the module
    docstring), at each of ``threads`` (default 1, 2, 4, ... up to every core this process
    may use). ``epochs`` and ``eval_every``: the training the wall-time estimate is for.
    ``repeats``: the median of this many; ``budget``: seconds one timed epoch may take (longer
    epochs are timed on their first steps, then scaled). ``machine``: a roofline.Machine
    already measured (default: measured here, a second or two). Returns a Profile:
    ``print(p.table())``, ``p.write("profile-out")``, ``p.to_json()``.

    >>> import fastinit
    >>> net = fastinit.MLP([64, 64, 10], n=16)
    >>> p = fastinit.profile(net, fastinit.datasets.digits(), threads=1)  # doctest: +SKIP
    """
    check_net(net, _FUNC)
    ds = as_dataset(data, _FUNC)
    threads = thread_counts(threads)
    repeats = check_int(repeats, "repeats", _FUNC, minimum=1)
    budget = check_real(budget, "budget", _FUNC, low=0.0, low_open=True)
    epochs = check_int(epochs, "epochs", _FUNC, minimum=1)
    eval_every = check_int(eval_every, "eval_every", _FUNC, minimum=0)
    eval_batch_size = check_int(eval_batch_size, "eval_batch_size", _FUNC, minimum=1)
    options = dict(batch_size=batch_size, drop_last=drop_last, optimizer=optimizer, lr=lr,
                   loss=ds.loss if loss is None else loss, momentum=momentum, betas=betas,
                   eps=eps, weight_decay=weight_decay, seed=seed)
    compile: dict = {}
    pop = measure(net, ds, threads=threads, repeats=repeats, budget=budget,
                  eval_every=eval_every, eval_batch_size=eval_batch_size, epochs=epochs,
                  options=options, compile=compile)
    machine = machine or roofline.measure(threads, [net.dtype.name])
    return Profile(ds.name, machine, threads, [pop], compile)
