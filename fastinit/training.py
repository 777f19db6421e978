"""fastinit.train: minibatch training of a population, one compiled call per epoch."""
from __future__ import annotations

import functools
import time
from contextlib import contextmanager

import numba
import numpy as np

from . import compilelog, kernels, population, streams
from ._validate import as_array, check_bool, check_callable, check_choice, check_int, \
    check_real, check_seed, check_targets, check_x
from .datasets import Dataset, from_arrays, inferred_task, permutation, permutations
from .diagnose import FIELDS as DIAGNOSTIC_FIELDS, diagnose
from .history import History
from .memory import check_memory, check_scratch
from .network import LOSSES, MLP, check_net, evaluate as evaluate_net
from .spread import SplitChoice, for_shape, over_members, splits, workspace
from .spread import split_worthwhile  # noqa: F401 - fastinit.training.split_worthwhile, as before

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw")
STATES = {"sgd": 0, "momentum": 1, "nesterov": 1, "adam": 2, "adamw": 2}   # (K, P) arrays each
SHUFFLES = ("shared", "per_member")
_FUNC = "fastinit.train"


@contextmanager
def numba_threads(n):
    """Run with n Numba threads (None: leave as is)."""
    if n is None:
        yield
        return
    prev = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        yield
    finally:
        numba.set_num_threads(prev)


def as_dataset(data, func: str = _FUNC, checked: bool = True) -> Dataset:
    """A Dataset, an (X, y) pair or an (X_train, y_train, X_test, y_test) tuple. ``checked``
    False: a tuple's arrays as they are, its task from y's dtype, for a caller that checks them
    against the network itself (train: check_x, check_targets), without from_arrays' passes."""
    if isinstance(data, Dataset):
        return data
    if isinstance(data, (tuple, list)) and len(data) in (2, 4):
        if checked:
            return from_arrays(*data)
        return _arrays(data, func)
    raise TypeError(f"The 'data' parameter of {func} must be a fastinit.datasets.Dataset, "
                    f"(X, y) or (X_train, y_train, X_test, y_test). Got "
                    f"{type(data).__name__}.")


def _arrays(data, func: str) -> Dataset:
    """as_dataset's unchecked tuple: X 2-D with a y entry per sample, X_test None for no test
    set (as from_arrays), the values left to the caller's checks."""
    def pair(xa, ya, xn, yn):
        xa, ya = as_array(xa, f"data ({xn})", func), as_array(ya, f"data ({yn})", func)
        if xa.ndim != 2:
            raise ValueError(f"The 'data ({xn})' parameter of {func} must be 2-D (samples, "
                             f"features). Got shape {xa.shape}.")
        if ya.shape[:1] != xa.shape[:1]:
            raise ValueError(f"The 'data ({yn})' parameter of {func} must have one entry per "
                             f"sample of {xn} ({len(xa)}). Got shape {ya.shape}.")
        return xa, ya
    x, y = pair(data[0], data[1], "X_train", "y_train")
    if len(data) == 2 or data[2] is None:
        xt, yt = x[:0], y[:0]
    elif data[3] is None:
        raise ValueError(f"The 'data' parameter of {func} gives X_test but y_test is None: give "
                         f"both, or neither (None, None) for no test set.")
    else:
        xt, yt = pair(data[2], data[3], "X_test", "y_test")
    return Dataset("arrays", x, y, xt, yt, inferred_task(y))


def _nans(shape) -> np.ndarray:
    """np.full(shape, np.nan) in a third of its time (train() makes several a call)."""
    out = np.empty(shape)
    out.fill(np.nan)
    return out


@functools.lru_cache(maxsize=None)
def dtype_name(dtype: np.dtype) -> str:
    """``dtype.name``, once per dtype: NumPy computes it in Python, about 2 us a call."""
    return dtype.name


def evaluations(epochs: int, every: int) -> int:
    """Evaluation passes of a training run: at init, every ``every`` epochs and after the last
    (fastinit.train's eval_every; 0: none)."""
    if every == 0:
        return 0
    return 1 + epochs // every + (1 if epochs % every else 0)


def _progress_bar(enabled, total, desc):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        raise ImportError("progress=True needs tqdm: pip install tqdm "
                          "(or pip install 'fastinit[dev]').") from None
    return tqdm(total=total, desc=desc, unit="epoch")


def _postfix(name: str, shown, diverged) -> str:
    """The progress bar's postfix after an epoch: the mean of ``shown`` (each member's metric)
    over the members that trained and have a finite value, and how many diverged. A diverged
    member's metric is of its weights from before the bad step (its loss usually not finite),
    so it is counted, not averaged in, as fastinit report's summary counts it. "" after an
    epoch not evaluated (eval_every), so the bar keeps what it said last."""
    n = int(np.sum(diverged))
    if np.all(np.isnan(shown)) and not n:      # not evaluated (a diverged loss is NaN too)
        return ""
    vals = shown[~diverged]
    vals = vals[np.isfinite(vals)]
    said = [f"{name}={vals.mean():.4g}"] if vals.size else []
    return ", ".join(said + [f"{n} diverged"] * bool(n))


def train(net: MLP, data, *, epochs: int | None = None, steps: int | None = None,
          batch_size: int = 32, drop_last: bool = False, optimizer: str = "sgd",
          lr=0.01, loss: str | None = None, seed: int = 0, momentum: float = 0.9,
          betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
          shuffle: str = "shared", eval_every: int = 1, eval_batch_size: int = 256,
          diagnose_every: int = 0, diagnose_samples: int = 256, threads: int | None = None,
          record_every_steps: int = 0, progress: bool = False, callback=None,
          _clock: np.ndarray | None = None, _adaptive: bool = True) -> History:
    """Train every member of ``net`` in place; return its History.

    Parameters
    ----------
    net : fastinit.MLP
    data : Dataset, (X, y) or (X_train, y_train, X_test, y_test)
    epochs : int -- passes over the training data; or
    steps : int -- exactly this many minibatch steps (the last epoch stops part way); give one
    batch_size : int -- a batch larger than the training set is the whole set
    drop_last : drop each epoch's last batch when it is smaller than batch_size
    optimizer : "sgd", "momentum", "nesterov", "adam" or "adamw" (PyTorch's formulas; a fresh
        optimizer state for each call)
    lr : float or K of them -- one learning rate per member (momentum and weight_decay too)
    loss : "cross_entropy", "mse", "bce" or "mse_sum"; default from the data's task (integer
        labels: cross_entropy; float targets, one-hot floats included: mse). mse is
        PyTorch's MSELoss: the mean over outputs and samples of (z - t)^2; mse_sum is the
        papers' 1/2 ||z - t||^2 per sample, averaged over samples (so their lr carries over)
    seed : int -- the data order: a pure function of (seed, epoch); with shuffle="shared" (the
        default) every member sees the same batches, a fair comparison between schemes;
        "per_member" gives each member its own order (from seed and its own seed and stream)
    momentum : for "momentum" / "nesterov";  betas, eps : for Adam;  weight_decay : L2 added to
        the gradient (sgd, momentum, adam) or decoupled (adamw); never to a residual network's
        branch scales that are not trained (train_alpha=False: constants, as PyTorch buffers)
    eval_every : evaluate train and test sets at initialisation, every ``eval_every`` epochs and
        after the last (0: never; rows not evaluated stay NaN)
    diagnose_every : record fastinit.diagnose on the first ``diagnose_samples`` training
        samples at initialisation, every ``diagnose_every`` epochs and after the last (0: never)
    threads : Numba threads for this call (default: Numba's current setting). With fewer
        members than threads and a big step, an epoch splits each member's products over the
        threads or not, whichever is faster here (SplitChoice; the same bits either way)
    record_every_steps : k > 0 records, inside the compiled epoch, every k-th step's minibatch
        loss and per-layer gradient norm (History.steps, step_loss, step_grad_norm)
    progress : a tqdm progress bar with ETA and, after each epoch, the mean test accuracy (or
        training loss) of the members that trained and how many diverged (_postfix)
    callback : called as callback(epoch, history)
    _clock : fastinit.profile's: a (K, 3) int64 array the last epoch adds each member's
        nanoseconds by phase into, timed inside the compiled epoch (kernels/clock.py);
    _adaptive : False splits whenever a split may pay (``splits``), as fastinit.profile does
        to time one way

    A member whose minibatch loss or gradient turns NaN or infinite, or that starts an epoch
    with a NaN or infinite parameter, stops being updated (its parameters and batch norm's
    running statistics stay as they were before that step) and is flagged; the others go on.
    Flags persist on ``net.diverged``.
    """
    check_net(net, _FUNC)
    ds = as_dataset(data, checked=False)
    K = net.n
    if (epochs is None) == (steps is None):
        raise TypeError(f"{_FUNC} needs exactly one of 'epochs' and 'steps'. Got "
                        f"epochs={epochs!r}, steps={steps!r}.")
    batch_size = check_int(batch_size, "batch_size", _FUNC, minimum=1)
    drop_last = check_bool(drop_last, "drop_last", _FUNC)
    progress = check_bool(progress, "progress", _FUNC)
    check_callable(callback, "callback", _FUNC, "callback(epoch, history)")
    every = check_int(record_every_steps, "record_every_steps", _FUNC, minimum=0)
    check_choice(optimizer, "optimizer", _FUNC, OPTIMIZERS)
    why = "" if loss is not None or isinstance(data, Dataset) or ds.task == "classification" \
        else (f" The loss {ds.loss} was inferred from y_train's dtype, {ds.y_train.dtype}: for "
              f"classification give integer labels, or loss='cross_entropy'.")
    loss = ds.loss if loss is None else loss
    check_choice(loss, "loss", _FUNC, LOSSES)
    seed = check_seed(seed, "seed", _FUNC)
    lrs = population.reals(lr, K, "lr", _FUNC, low=0.0, low_open=True)
    momenta = population.reals(momentum, K, "momentum", _FUNC, low=0.0, high=1.0,
                               high_open=True)
    if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
        raise TypeError(f"The 'betas' parameter of {_FUNC} must be a pair (beta1, beta2). "
                        f"Got {betas!r}.")
    beta1 = check_real(betas[0], "betas", _FUNC, low=0.0, high=1.0, high_open=True)
    beta2 = check_real(betas[1], "betas", _FUNC, low=0.0, high=1.0, high_open=True)
    eps = check_real(eps, "eps", _FUNC, low=0.0, low_open=True)
    decays = population.reals(weight_decay, K, "weight_decay", _FUNC, low=0.0)
    check_choice(shuffle, "shuffle", _FUNC, SHUFFLES)
    eval_every = check_int(eval_every, "eval_every", _FUNC, minimum=0)
    eval_batch_size = check_int(eval_batch_size, "eval_batch_size", _FUNC, minimum=1)
    diagnose_every = check_int(diagnose_every, "diagnose_every", _FUNC, minimum=0)
    diagnose_samples = check_int(diagnose_samples, "diagnose_samples", _FUNC, minimum=1)
    if threads is not None:
        threads = check_int(threads, "threads", _FUNC, minimum=1,
                            maximum=numba.config.NUMBA_NUM_THREADS)
    width, outputs, dt = net.layer_sizes[0], net.layer_sizes[-1], net.dtype
    x_train = check_x(ds.x_train, width, dt, _FUNC, "data (X_train)")
    y_lab, y_tgt = check_targets(ds.y_train, len(x_train), outputs, loss, dt, _FUNC,
                                 "data (y_train)", why)
    has_test = len(ds.x_test) > 0
    if has_test:
        x_test = check_x(ds.x_test, width, dt, _FUNC, "data (X_test)")
        t_lab, t_tgt = check_targets(ds.y_test, len(x_test), outputs, loss, dt, _FUNC,
                                     "data (y_test)", why)
    n = len(x_train)
    batch = min(batch_size, n)          # a batch larger than the data is the whole data
    steps_per_epoch = n // batch if drop_last else -(-n // batch)
    if drop_last and batch_size > n:
        raise ValueError(f"The 'batch_size' parameter of {_FUNC} is {batch_size} with "
                         f"drop_last=True but the training set has {n} samples: every batch "
                         f"would be dropped.")
    if steps is None:
        epochs = check_int(epochs, "epochs", _FUNC, minimum=0)
        total_steps = epochs * steps_per_epoch
    else:
        total_steps = check_int(steps, "steps", _FUNC, minimum=0)
        epochs = -(-total_steps // steps_per_epoch)
    classify = loss not in ("mse", "mse_sum")
    states = STATES[optimizer]
    P = net.params.shape[1]
    check_memory(states * K * P * dt.itemsize, f"{_FUNC}: the {optimizer} state of {K} "
                 f"members of {P} parameters")
    T = numba.get_num_threads() if threads is None else threads     # evaluations: a row each
    check_scratch(net, [(K, batch)] + [(T, min(eval_batch_size, max(n, len(ds.x_test))))] * (
        eval_every > 0), _FUNC, "batch_size or eval_batch_size", T)

    shape = (epochs + 1, K)
    diverged_step = np.empty(K, dtype=np.int64)
    diverged_step.fill(-1)
    hist = History(_nans(shape), _nans(shape), _nans(shape), _nans(shape),
                   np.zeros(epochs + 1), np.zeros(epochs + 1),
                   net.diverged, diverged_step, net.labels,
                   {"layer_sizes": net.layer_sizes, "activation": net.activation,
                    "epochs": epochs, "steps": total_steps, "batch_size": batch_size,
                    "drop_last": drop_last, "optimizer": optimizer,
                    "lr": lrs.tolist(), "loss": loss, "seed": seed,
                    "momentum": momenta.tolist(), "betas": [beta1, beta2], "eps": eps,
                    "weight_decay": decays.tolist(),
                    "shuffle": shuffle, "dataset": ds.name, "dtype": dtype_name(net.dtype)})
    hist.compile_time = np.zeros(epochs + 1)

    def evaluate(e):
        if eval_every == 0 or (e % eval_every and e != epochs):
            return
        t0, ready = time.perf_counter(), compilelog.seconds()
        ls, cs, _ = evaluate_net(net, x_train, y_lab, y_tgt, loss, batch=eval_batch_size,
                                 work=ework)
        hist.train_loss[e] = ls / n
        if classify:
            hist.train_acc[e] = cs / n
        if has_test:
            ls, cs, _ = evaluate_net(net, x_test, t_lab, t_tgt, loss, batch=eval_batch_size,
                                     work=ework)
            hist.test_loss[e] = ls / len(x_test)
            if classify:
                hist.test_acc[e] = cs / len(x_test)
        ready = compilelog.seconds() - ready
        hist.compile_time[e] += ready
        hist.eval_time[e] = time.perf_counter() - t0 - ready

    def record(e):
        if diagnose_every == 0 or (e % diagnose_every and e != epochs):
            return
        m = min(diagnose_samples, n)
        ready = compilelog.seconds()
        d = diagnose(net, x_train[:m], ds.y_train[:m], loss)
        hist.compile_time[e] += compilelog.seconds() - ready
        hist.diagnostic_epochs.append(e)
        for f in DIAGNOSTIC_FIELDS:
            hist.diagnostics.setdefault(f, []).append(getattr(d, f))

    untimed = np.zeros((0, kernels.clock.PHASES), dtype=np.int64)
    clock = untimed if _clock is None else _clock
    s1 = np.zeros((K, P if states >= 1 else 0), dtype=net.dtype)
    s2 = np.zeros((K, P if states >= 2 else 0), dtype=net.dtype)
    loss_sum = np.zeros(K)
    correct = np.zeros(K)
    records = np.arange(0, total_steps, every) if every else np.zeros(0, dtype=np.int64)
    hist.steps = records
    hist.step_loss = _nans((len(records), K))
    hist.step_grad_norm = _nans((len(records), K, net.depth))
    opt = kernels.optim.Optim(OPTIMIZERS.index(optimizer), lrs, momenta, beta1, beta2, eps,
                              decays)
    if shuffle == "per_member":
        mix = np.array([(int(k) * 0x9E3779B97F4A7C15 + seed) % 2**64 for k in net.keys],
                       dtype=np.uint64)
    bar = _progress_bar(progress, epochs, f"training {K} network{'s' * (K > 1)}")
    with numba_threads(threads), compilelog.announcing():
        nthreads = numba.get_num_threads()
        choice = for_shape(net, batch, nthreads) if _adaptive else \
            SplitChoice(splits(net, batch, nthreads), adaptive=False)
        # a scratch and a gradient per thread, and the evaluations' scratch, for every
        # epoch: only the first maps their memory. Rows for as many threads as Numba
        # allows (a callback may raise the count); rows never used are never mapped
        most = numba.config.NUMBA_NUM_THREADS
        work = workspace(net, batch, most)
        grad = np.empty((len(work), P), dtype=net.dtype)
        ework = workspace(net, min(eval_batch_size, max(n, len(ds.x_test))), most,
                          evaluation=True) if eval_every else None
        evaluate(0)
        record(0)
        for e in range(1, epochs + 1):
            if shuffle == "shared":
                order = permutation(n, seed, streams.ORDER + e)[None, :]
            else:
                order = permutations(n, mix, np.array([(int(m) << 32) | (streams.ORDER + e)
                                                       for m in net.members], np.uint64))
            step0 = (e - 1) * steps_per_epoch
            taken = min(steps_per_epoch, total_steps - step0)
            if every:                                  # this epoch's records
                mine = (records >= step0) & (records < step0 + taken)
                kept = hist.step_loss[mine], hist.step_grad_norm[mine]
            else:
                kept = hist.step_loss, hist.step_grad_norm     # none: (0, K), (0, K, L)
            plan = kernels.train.Plan(batch, taken, step0, every, *kept,
                                      clock if e == epochs else untimed, time.CLOCK_MONOTONIC)
            t0, ready = time.perf_counter(), compilelog.seconds()
            args = (net.params, s1, s2, x_train, y_lab, y_tgt, order, net.arch,
                    LOSSES.index(loss), opt, plan, net.diverged, loss_sum, correct,
                    diverged_step)
            split = choice.split()
            if split:                          # few members: split each one's products
                kernels.train.train_epoch_split(*args, work[0], grad[0], nthreads)
            else:
                over_members(kernels.train.train_epoch, K, *args, each=(work, grad))
            ready = compilelog.seconds() - ready
            hist.compile_time[e] += ready
            hist.epoch_time[e] = time.perf_counter() - t0 - ready
            choice.took(split, hist.epoch_time[e])
            if every:
                hist.step_loss[mine], hist.step_grad_norm[mine] = plan.loss, plan.grad_norm
            evaluate(e)
            record(e)
            if bar is not None:
                bar.update(1)
                name = "test_acc" if has_test and classify else "train_loss"
                said = _postfix(name, getattr(hist, name)[e], net.diverged)
                if said:
                    bar.set_postfix_str(said)
            if callback is not None:
                callback(e, hist)
    if bar is not None:
        bar.close()
    hist.diagnostics = {k: np.stack(v) for k, v in hist.diagnostics.items()}
    hist.diverged = net.diverged.copy()
    return hist
