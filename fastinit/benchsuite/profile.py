"""Where one training epoch's time goes, kernel by kernel, on the benchmark suite's shapes.

The method is fastinit.profile's (fastinit.profiler): the epoch is one compiled call, timed as
fastinit.train runs it; inside it the kernels' own clock times each member's network passes,
loss and optimizer in place, and the network passes are shared among their parts (the GEMM
micro-kernels forward, dW and dX, the transposes for the batch gather and A for dW, the
elementwise passes for bias, activation, their derivatives and the bias gradient) in the
proportions each part takes when replayed alone with the same network, data, steps and threads
(kernels.profile). "rest" is the real epoch minus the parts and the call: the loops' own
bookkeeping.
"""
import fastinit

from .. import profiler
from ..profile_report import LABELS, ROWS
from ..training import as_dataset
from .training import LR, _data


def epoch_profile(sizes=(64, 64, 64, 10), batch=64, n=1536, K=64, threads=1):
    """{part: seconds} for one epoch of K relu members (SGD, cross-entropy), plus "epoch"
    (the real one) and "rest"."""
    sizes = list(sizes)
    net = fastinit.MLP(sizes, activation="relu", init="kaiming_uniform", n=K, seed=0)
    options = dict(batch_size=batch, drop_last=False, optimizer="sgd", lr=LR,
                   loss="cross_entropy", momentum=0.9, betas=(0.9, 0.999), eps=1e-8,
                   weight_decay=0.0, seed=0)
    pop = profiler.measure(net, as_dataset(_data(sizes, n)), threads=[threads], repeats=5,
                           budget=10.0, eval_every=0, eval_batch_size=256, epochs=1,
                           options=options, compile={})
    labels = {**LABELS, "loss": "loss (softmax cross-entropy)", "optimizer": "optimizer (SGD)"}
    out = {labels[part]: pop.parts[threads][part] for part in ROWS
           if part not in ("rest", "normalization")}                 # no norm here
    out["epoch"] = pop.epoch[threads]
    out["rest"] = pop.parts[threads]["rest"]
    return out


def markdown(prof, label) -> str:
    total = prof["epoch"]
    lines = [f"One epoch, {label}: {total * 1e3:.1f} ms", "",
             "| part | ms | share |", "|---|---|---|"]
    for k, v in prof.items():
        if k != "epoch":
            lines.append(f"| {k} | {v * 1e3:.1f} | {100 * v / total:.0f}% |")
    return "\n".join(lines)
