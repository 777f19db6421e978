"""fastinit.train's result: what happened to every member, epoch by epoch (History)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import jsonable, tabular


@dataclass(repr=False)
class History:
    """What happened to every member, epoch by epoch.

    Arrays indexed [epoch, member]: row 0 is at initialisation, row e after epoch e. Losses and
    accuracies are full passes over the training and test sets (accuracy is NaN for mse).
    ``epoch_time[e]`` is the wall time of epoch e's training (row 0: 0) and ``eval_time[e]``
    of its evaluation, both without compiling: ``compile_time[e]`` is the time row e spent
    compiling kernels or loading them from the cache (training, evaluation and diagnostics;
    tens of seconds on a machine's first run, then milliseconds). A member whose loss went NaN
    or infinite is frozen from that step on: ``diverged`` flags it and ``diverged_step`` gives
    the step (-1 otherwise).
    With ``diagnose_every``, ``diagnostics[field]`` holds fastinit.diagnose records (records,
    K, L) taken at the epochs listed in ``diagnostic_epochs``. With ``record_every_steps=k``,
    ``steps`` lists the global steps 0, k, 2k, ... that were recorded, ``step_loss`` (records,
    K) their minibatch losses and ``step_grad_norm`` (records, K, L) each layer's ||dL/dW||
    (NaN once a member has diverged).
    """
    train_loss: np.ndarray
    train_acc: np.ndarray
    test_loss: np.ndarray
    test_acc: np.ndarray
    epoch_time: np.ndarray
    eval_time: np.ndarray
    diverged: np.ndarray
    diverged_step: np.ndarray
    labels: list
    config: dict = field(default_factory=dict)
    diagnostic_epochs: list = field(default_factory=list)
    diagnostics: dict = field(default_factory=dict)   # field -> array (records, K, L)
    steps: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    step_loss: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    step_grad_norm: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)))
    compile_time: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def epochs(self) -> int:
        return self.train_loss.shape[0] - 1

    @property
    def final_test_acc(self) -> np.ndarray:
        return self.test_acc[-1]

    def to_dict(self) -> dict:
        """Every field as JSON-ready Python (NaN and infinities as None)."""
        return jsonable.clean({
            "train_loss": self.train_loss, "train_acc": self.train_acc,
            "test_loss": self.test_loss, "test_acc": self.test_acc,
            "epoch_time": self.epoch_time, "eval_time": self.eval_time,
            "diverged": self.diverged, "diverged_step": self.diverged_step,
            "labels": list(self.labels), "config": self.config,
            "diagnostic_epochs": list(self.diagnostic_epochs),
            "diagnostics": dict(self.diagnostics), "steps": self.steps,
            "step_loss": self.step_loss, "step_grad_norm": self.step_grad_norm,
            "compile_time": self.compile_time})

    def to_json(self) -> str:
        return jsonable.dumps(self.to_dict())

    def summary(self) -> str:
        """A table: one line per member, final losses and accuracies; the member column as
        wide as its longest label (cut, two members of one scheme differing in seed or a late
        parameter read the same)."""
        w = max([len("member")] + [len(label) for label in self.labels])
        lines = [f"{'member':<{w}} {'train loss':>10} {'test loss':>10} {'test acc':>9}"]
        for k, label in enumerate(self.labels):
            flag = "  DIVERGED" if self.diverged[k] else ""
            lines.append(f"{label:<{w}} {self.train_loss[-1, k]:>10.4f} "
                         f"{self.test_loss[-1, k]:>10.4f} {self.test_acc[-1, k]:>9.4f}{flag}")
        return "\n".join(lines)

    def to_pandas(self):
        """A tidy pandas DataFrame, one row per (member, epoch): member, label, epoch, the
        losses and accuracies, epoch_time, eval_time, diverged, diverged_step (needs pandas:
        the ``frames`` extra). ``df.melt(id_vars=["member", "label", "epoch"])`` gives the long
        form of ``fastinit.load_curves``."""
        return tabular.history_frame(self)

    def __repr__(self):
        """A few lines, not every array: members, epochs, final metrics (summary() tables them)."""
        K = len(self.labels)
        show = lambda a: np.array2string(np.asarray(a), precision=4, threshold=8, edgeitems=3)
        acc = bool(np.isfinite(self.test_acc[-1]).any())
        name, last = ("test_acc", self.test_acc[-1]) if acc else ("train_loss",
                                                                   self.train_loss[-1])
        return (f"History({K} member{'s' * (K != 1)}, {self.epochs} epoch"
                f"{'s' * (self.epochs != 1)}, final {name}={show(last)}, diverged="
                f"{int(np.sum(self.diverged))}; .summary(), .to_pandas() for the rest)")

    def _repr_html_(self) -> str:
        return tabular.history_html(self)
