"""Training cases: fastinit vs PyTorch eager, bmm, torch.func.vmap and JAX (one table drives
pytest and `fastinit bench`)."""
import contextlib
import copy
import subprocess
import sys
import time

import numpy as np

import fastinit

from . import harness
from .peak import PeakUnverified, sgemm_peak

SMALL = [64, 64, 64, 10]
MEDIUM = [784, 256, 256, 10]
LR = 0.01


def _data(sizes, n, seed=0):
    g = np.random.default_rng(seed)
    return (g.standard_normal((n, sizes[0])).astype(np.float32),
            g.integers(0, sizes[-1], n).astype(np.int64))


def train_flops(sizes, samples):
    """Multiply-adds x 2 of forward, dW and dX (no dX for the input layer)."""
    macs = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
    return 2 * samples * (2 * sum(macs) + sum(macs[1:]))


def forward_flops(sizes, samples):
    """Multiply-adds x 2 of the forward pass (an evaluation)."""
    return 2 * samples * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def case_flops(c) -> float:
    """A case's floating-point operations per epoch: its settings' ``flops`` (default
    train_flops)."""
    return c.get("flops", train_flops)(c["sizes"], c["n"] * c["K"])


def epochs_of(c) -> int:
    """Epochs one timed call of a case runs (its settings' ``epochs``, default 1)."""
    return c.get("epochs", 1)


# -- implementations: each returns a zero-argument function that runs ``epochs`` epochs ------

def fastinit_epoch(sizes, x, y, batch, K=1, epochs=1):
    """fastinit.train over ``epochs`` epochs in one call: its set-up (checking the data and
    settings, the History) once per call, as in a user's run."""
    net = fastinit.MLP(sizes, activation="relu", init="kaiming_uniform", n=K, seed=0)
    return lambda: fastinit.train(net, (x, y), epochs=epochs, batch_size=batch, lr=LR,
                                  eval_every=0)


def fastinit_evaluation(sizes, x, y, batch, K=1):
    """One evaluation of the training set (loss and accuracy), as fastinit.train runs at
    every epoch by default, in batches of ``batch`` (train's eval_batch_size)."""
    net = fastinit.MLP(sizes, activation="relu", init="kaiming_uniform", n=K, seed=0)
    return lambda: fastinit.train(net, (x, y), epochs=0, eval_batch_size=batch)


def _torch_mlp(torch, sizes):
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


def torch_loop_epoch(sizes, x, y, batch, K=1, epochs=1):
    torch = harness.torch_or_none()
    if torch is None:
        return None
    F = torch.nn.functional
    nets = [_torch_mlp(torch, sizes) for _ in range(K)]
    opts = [torch.optim.SGD(net.parameters(), lr=LR) for net in nets]
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    batches = [(xt[s:s + batch], yt[s:s + batch]) for s in range(0, len(x), batch)]

    def run():
        for net, opt in zip(nets, opts):
            for xb, yb in batches * epochs:
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(net(xb), yb).backward()
                opt.step()
    return run


def torch_evaluation(sizes, x, y, batch, K=1):
    """PyTorch's evaluation loop: no_grad, batches of ``batch``, loss sum and correct count."""
    torch = harness.torch_or_none()
    if torch is None:
        return None
    F = torch.nn.functional
    net = _torch_mlp(torch, sizes).eval()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    batches = [(xt[s:s + batch], yt[s:s + batch]) for s in range(0, len(x), batch)]

    def run():
        loss, correct = 0.0, 0
        with torch.no_grad():
            for xb, yb in batches:
                z = net(xb)
                loss += F.cross_entropy(z, yb, reduction="sum").item()
                correct += int((z.argmax(1) == yb).sum())
        return loss, correct
    return run


def torch_bmm_epoch(sizes, x, y, batch, K):
    """All K networks as stacked weights: baddbmm forward, autograd backward, one SGD update."""
    torch = harness.torch_or_none()
    if torch is None:
        return None
    F = torch.nn.functional
    ws = [(torch.randn(K, b, a) / a ** 0.5).requires_grad_() for a, b in zip(sizes[:-1], sizes[1:])]
    bs = [torch.zeros(K, 1, b).requires_grad_() for b in sizes[1:]]
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    batches = [(xt[s:s + batch], yt[s:s + batch]) for s in range(0, len(x), batch)]

    def run():
        for xb, yb in batches:
            a = xb.expand(K, *xb.shape)
            for l, (w, b) in enumerate(zip(ws, bs)):
                a = torch.baddbmm(b, a, w.transpose(1, 2))
                if l < len(ws) - 1:
                    a = torch.relu(a)
            loss = F.cross_entropy(a.reshape(-1, a.shape[-1]), yb.repeat(K)) * K
            loss.backward()
            with torch.no_grad():
                for p in ws + bs:
                    p -= LR * p.grad
                    p.grad = None
    return run


def torch_vmap_epoch(sizes, x, y, batch, K):
    """torch.func: vmap(grad(functional_call)) over stacked parameters."""
    torch = harness.torch_or_none()
    if torch is None:
        return None
    from torch.func import functional_call, grad, stack_module_state, vmap
    F = torch.nn.functional
    models = [_torch_mlp(torch, sizes) for _ in range(K)]
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")

    def loss_fn(p, b, xb, yb):
        return F.cross_entropy(functional_call(base, (p, b), (xb,)), yb)

    step = vmap(grad(loss_fn), in_dims=(0, 0, None, None))
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    batches = [(xt[s:s + batch], yt[s:s + batch]) for s in range(0, len(x), batch)]

    def run():
        for xb, yb in batches:
            grads = step(params, buffers, xb, yb)
            with torch.no_grad():
                for name, g in grads.items():
                    params[name] -= LR * g
    return run


def jax_vmap_epoch(sizes, x, y, batch, K):
    jax = harness.jax_or_none()
    if jax is None:
        return None
    import jax.numpy as jnp
    key = jax.random.PRNGKey(0)
    params = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        key, sub = jax.random.split(key)
        params.append((jax.random.normal(sub, (K, b, a)) / a ** 0.5, jnp.zeros((K, b))))

    def loss_fn(p, xb, yb):
        a = xb
        for l, (w, b) in enumerate(p):
            a = a @ w.T + b
            if l < len(p) - 1:
                a = jax.nn.relu(a)
        logp = jax.nn.log_softmax(a)
        return -jnp.mean(jnp.take_along_axis(logp, yb[:, None], axis=1))

    @jax.jit
    def step(p, xb, yb):
        g = jax.vmap(jax.grad(loss_fn), in_axes=(0, None, None))(p, xb, yb)
        return jax.tree_util.tree_map(lambda q, d: q - LR * d, p, g)

    batches = [(jnp.asarray(x[s:s + batch]), jnp.asarray(y[s:s + batch]))
               for s in range(0, len(x), batch)]
    state = {"p": params}

    def run():
        p = state["p"]
        for xb, yb in batches:
            p = step(p, xb, yb)
        jax.block_until_ready(p)
        state["p"] = p
    return run


def cases(quick: bool = False):
    """{case: (settings, {implementation: factory(sizes, x, y, batch, K[, epochs])})}: a
    case with ``epochs`` times that many epochs a call (small_b32_run: an epoch of a
    10-epoch run, fastinit.train's per-call set-up shared by its epochs; small_b32 pays it
    every epoch, as a loop of one-epoch train() calls does)."""
    n = 512 if quick else None
    small = dict(sizes=SMALL, n=n or 1536, batch=32, K=1)
    run = dict(small, epochs=10)
    medium = dict(sizes=MEDIUM, n=n or 2048, batch=128, K=1)
    pop = dict(sizes=SMALL, n=n or 1536, batch=64, K=16 if quick else 64)
    evaluation = dict(sizes=MEDIUM, n=n or 4096, batch=256, K=1, flops=forward_flops)
    return {
        "small_b32": (small, {"fastinit": fastinit_epoch, "torch": torch_loop_epoch}),
        "small_b32_run": (run, {"fastinit": fastinit_epoch, "torch": torch_loop_epoch}),
        "medium_b128": (medium, {"fastinit": fastinit_epoch, "torch": torch_loop_epoch}),
        "medium_eval256": (evaluation, {"fastinit": fastinit_evaluation,
                                        "torch": torch_evaluation}),
        f"population{pop['K']}": (pop, {"fastinit": fastinit_epoch,
                                        "torch_loop": torch_loop_epoch,
                                        "torch_bmm": torch_bmm_epoch,
                                        "torch_vmap": torch_vmap_epoch,
                                        "jax_vmap": jax_vmap_epoch}),
    }


def make(table, case, impl):
    c, impls = table[case]
    x, y = _data(c["sizes"], c["n"])
    more = {"epochs": c["epochs"]} if "epochs" in c else {}
    return impls[impl](c["sizes"], x, y, c["batch"], c["K"], **more)


def scaling(threads, quick=False):
    """Seconds per epoch of fastinit as K, depth and width grow: {axis: [(value, s)]}."""
    harness.set_threads(threads)
    x, y = _data([64, 10], 512 if quick else 1536)
    out = {"population": [], "depth": [], "width": []}
    reps = 2 if quick else 3
    for K in ((1, 4, 16, 64) if quick else (1, 4, 16, 64, 256)):
        out["population"].append((K, harness.median_time(fastinit_epoch(SMALL, x, y, 64, K),
                                                         repeats=reps)))
    for depth in ((2, 4, 8) if quick else (2, 4, 8, 16, 32)):
        sizes = [64] + [64] * (depth - 1) + [10]
        out["depth"].append((depth, harness.median_time(fastinit_epoch(sizes, x, y, 64, 16),
                                                        repeats=reps)))
    for w in ((32, 64, 128) if quick else (32, 64, 128, 256, 512)):
        out["width"].append((w, harness.median_time(fastinit_epoch([64, w, w, 10], x, y, 64,
                                                                   16), repeats=reps)))
    return out


@contextlib.contextmanager
def busy_core():
    """Another process spinning on a core while the block runs."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)                       # let it start and take its core
        yield
    finally:
        spinner.kill()
        spinner.wait()


def busy(quick=False, repeats: int | None = None, min_seconds: float | None = None) -> dict:
    """fastinit's time per call (an epoch, an evaluation) on 2 threads over 1 thread, both
    cores free and with another process busy on one core: {case: (free, busy)} (below 1: two
    threads are faster). fastinit keeps splitting a member only while splitting is faster
    (fastinit.spread.SplitChoice), so a busy core should cost two threads no more than one.
    ``repeats``, ``min_seconds``: each timing's (default: 3 and 0.3 s quick, else 7 and 1 s)."""
    table, out = cases(quick), {}
    reps = repeats or (3 if quick else 7)
    least = min_seconds if min_seconds is not None else 0.3 if quick else 1.0
    for case in table:
        ratio = []
        for load in (contextlib.nullcontext, busy_core):
            with load():
                sec = {}
                for t in (1, 2):
                    harness.set_threads(t)
                    sec[t] = harness.median_time(make(table, case, "fastinit"), repeats=reps,
                                                 min_seconds=least)
            ratio.append(sec[2] / sec[1])
        out[case] = tuple(ratio)
    return out


def busy_markdown(data) -> str:
    lines = ["fastinit, time per epoch (medium_eval256: per evaluation) on 2 threads / 1 thread "
             "(below 1: 2 threads are faster), with both cores free and with another process "
             "busy on one core:", "",
             "| case | cores free | one core busy |", "|---|---|---|"]
    lines += [f"| {case} | {free:.2f} | {busy_:.2f} |" for case, (free, busy_) in data.items()]
    return "\n".join(lines)


def scaling_markdown(data, threads, n):
    lines = [f"Time per epoch (ms), {threads} thread(s), n={n}, batch 64, SGD, relu:"]
    for axis, label in (("population", "population K (width 64, depth 3)"),
                        ("depth", "depth (K 16, width 64)"), ("width", "width (K 16, depth 3)")):
        vals = data[axis]
        lines += ["", f"| {label} | " + " | ".join(str(v) for v, _ in vals) + " |",
                  "|---|" + "---|" * len(vals),
                  "| ms | " + " | ".join(f"{t * 1e3:.1f}" for _, t in vals) + " |"]
    return "\n".join(lines)


def peak_line(peak, reason: str = "", readings=()) -> str:
    """The bench's sentence on the peak: its value, or why it was not measured; with
    ``readings`` (before, after the training cases) that differ by more than 10%, both."""
    if peak:
        line = (f"Single-thread sgemm peak (best of NumPy BLAS and PyTorch, 1024^3, BLAS limited "
                f"to one thread by threadpoolctl, checked): {peak:.1f} GFLOP/s")
        if len(readings) == 2 and max(readings) > 1.1 * min(readings):
            line += (f", the higher of {readings[0]:.1f} before the training cases and "
                     f"{readings[1]:.1f} after them (this machine's speed varied: a shared or "
                     f"throttled machine; ratios taken side by side still hold)")
        return line
    return f"Single-thread sgemm peak: not measured{': ' + reason if reason else ''}"


def remeasured(first):
    """(peak, its sentence) for the "% of peak" column: the higher of ``first``, measured
    before the training cases, and a second reading after them. One reading on a shared
    machine can come out low and make every case look faster than the machine can go."""
    if not first:
        return first, peak_line(first)
    try:
        again = sgemm_peak()
    except PeakUnverified:
        return first, peak_line(first)
    return max(first, again), peak_line(max(first, again), readings=(first, again))


def main(threads=None, quick=False, peak=None):
    """Markdown tables (ratios, GFLOP/s vs the sgemm peak, thread scaling, growth with K,
    depth and width). Returns (text, results) for `fastinit bench`."""
    threads = threads or harness.THREADS
    if peak is None:            # a verified peak, or None: no "% of peak" column then
        try:
            peak = sgemm_peak()
        except PeakUnverified:
            peak = None
    table = cases(quick)
    rows, ours, rates = [], {}, []
    # each implementation at every thread count back to back, and a case's peers in the
    # same minutes: on a shared machine a ratio of times taken minutes apart (all of one
    # thread count first) measured the machine's drift as much as the threads
    for case, (c, impls) in table.items():
        for impl in impls:
            fn = make(table, case, impl)
            if fn is None:
                continue
            for t in threads:
                harness.set_threads(t)
                sec = harness.median_time(fn, repeats=3 if quick else 5,
                                          min_seconds=0.3 if quick else 1.0) / epochs_of(c)
                rows.append((f"{case} threads={t}", f"[{impl}]", sec))
                rates.append((case, t, impl, c["n"] * c["K"] / sec,
                              case_flops(c) / sec / 1e9))
                if impl == "fastinit":
                    ours[(case, t)] = sec
    order = {case: i for i, case in enumerate(table)}
    rates.sort(key=lambda r: (threads.index(r[1]), order[r[0]]))   # stable: peers in order
    peak, line = remeasured(peak)
    extra = ["| case | threads | implementation | samples/s | GFLOP/s | % of sgemm peak |",
             "|---|---|---|---|---|---|"]
    extra += [f"| {case} | {t} | {impl} | {rate:,.0f} | {gflops:.1f} | "
              + (f"{100 * gflops / peak:.0f}%" if peak else "not measured") + " |"
              for case, t, impl, rate, gflops in rates]
    text = [line, "", harness.ratio_table(rows), "", "\n".join(extra)]
    if len(threads) > 1:
        text += ["", "| case | fastinit 2 threads vs 1 |", "|---|---|"]
        text += [f"| {case} | {ours[(case, threads[0])] / ours[(case, threads[-1])]:.2f}x |"
                 for case in table if (case, threads[0]) in ours]
    if len(threads) > 1 and max(threads) >= 2:
        text += ["", busy_markdown(busy(quick))]
    growth = {}
    for t in threads:
        growth[t] = scaling(t, quick)
        text += ["", scaling_markdown(growth[t], t, 512 if quick else 1536)]
    return "\n".join(text), {"rows": rows, "ours": ours, "growth": growth, "peak": peak}
