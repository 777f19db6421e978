"""Runnable examples, each under a minute on 2 cores, each writing one PNG:

    fastinit demo symmetry   zeros vs constant vs random vs ZerO: distinct units and loss
    fastinit demo depth      variance by layer at init, Xavier / He / LeCun under tanh, ReLU,
                             SELU, with the mean-field prediction drawn over it
    fastinit demo linear     deep linear networks: orthogonal vs Gaussian, learning time by depth
    fastinit demo chaos      the edge of chaos for tanh: the critical line, trainability by depth
    fastinit demo dropout    constant init stays one unit; dropout and random biases break it
    fastinit demo zero       ZerO vs partial identity on bias-free nets: rank of W - I per epoch
    fastinit demo residual   50 layers: plain vs Fixup vs batch norm, test accuracy per epoch
"""
from __future__ import annotations

import math
import os

import numpy as np

from . import datasets, theory
from .diagnose import diagnose
from .network import MLP
from .registry import spec
from .report import pyplot
from .residual import ResMLP
from .training import train


def symmetry(out: str = ".") -> str:
    """Why zero and constant init fail: every hidden unit stays identical (1 distinct unit)."""
    plt = pyplot()
    ds = datasets.digits()
    schemes = ["zeros", spec("constant", value=0.05), "he_normal", "ZerO"]
    names = ["zeros", "constant 0.05", "he_normal (random)", "ZerO (deterministic)"]
    net = MLP([64, 32, 32, 10], activation="relu", init=schemes, n=4, seed=0,
              dtype=np.float64, activation_param=1.0)   # relu'(0) = 1, as ZerO needs
    h = train(net, ds, epochs=20, batch_size=32, optimizer="momentum", lr=0.02,
              diagnose_every=1)
    distinct = h.diagnostics["distinct_units"][:, :, 0]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for k, name in enumerate(names):
        axes[0].plot(h.diagnostic_epochs, distinct[:, k], "o-", ms=3, label=name)
        axes[1].plot(h.train_loss[:, k], label=name)
    axes[0].set(xlabel="epoch", ylabel="distinct units, hidden layer 1 (of 32)", yscale="log")
    axes[1].set(xlabel="epoch", ylabel="training loss", yscale="log")
    axes[0].legend(fontsize=7)
    fig.suptitle("Symmetry: identical units get identical gradients and stay identical",
                 fontsize=10)
    fig.tight_layout()
    path = os.path.join(out, "symmetry.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print("distinct units in hidden layer 1 after 20 epochs:",
          dict(zip(names, distinct[-1].astype(int).tolist())))
    print("final test accuracy:", dict(zip(names, np.round(h.test_acc[-1], 3).tolist())))
    return path


def depth(out: str = ".") -> str:
    """Signal variance through 30 layers at init, measured vs the mean-field length map."""
    plt = pyplot()
    x = np.random.default_rng(0).standard_normal((256, 256))
    layers = 30
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for ax, act in zip(axes, ["tanh", "relu", "selu"]):
        net = MLP([256] * (layers + 1), activation=act, init=["xavier_normal",
                  spec("kaiming_normal", nonlinearity="relu"), "lecun_normal"], n=3, seed=0,
                  bias_init="zeros", dtype=np.float64)
        meas = diagnose(net, x, ranks=False).pre_sq
        for k, name in enumerate(["Xavier", "He", "LeCun"]):
            line, = ax.plot(np.arange(1, layers + 1), meas[k], "o", ms=3, label=f"{name}")
            ax.plot(np.arange(1, layers + 1), theory.predicted_q(net, x, k), "-",
                    color=line.get_color(), lw=1)
        ax.set(yscale="log", xlabel="layer", ylabel="E[z^2] of pre-activations",
               title=f"{act} (dots: measured, lines: mean-field)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = os.path.join(out, "depth.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print("He keeps ReLU signals at unit scale; Xavier and LeCun halve them every layer; "
          "LeCun keeps SELU at its fixed point.")
    return path


def linear(out: str = ".") -> str:
    """Deep linear networks (Saxe et al. 2014): orthogonal init learns in about the same time at
    any depth; Gaussian init slows down as the depth grows."""
    plt = pyplot()
    g = np.random.default_rng(1)
    d = 32
    teacher = g.standard_normal((d, d)) / math.sqrt(d)
    x = g.standard_normal((1024, d))
    y = x @ teacher.T
    depths = [1, 2, 4, 8, 16, 32]
    epochs = 60
    target = 0.1 * float(np.mean(y ** 2))
    reach = {"orthogonal": [], "lecun_normal": []}
    curves = {}
    for depth_ in depths:
        net = MLP([d] * (depth_ + 1), activation="linear", init=["orthogonal", "lecun_normal"]
                  * 3, n=6, seed=list(range(6)), bias_init="zeros", dtype=np.float64)
        h = train(net, (x, y), epochs=epochs, batch_size=64, optimizer="sgd", lr=0.05,
                  loss="mse")
        for name, cols in (("orthogonal", [0, 2, 4]), ("lecun_normal", [1, 3, 5])):
            hits = [np.flatnonzero(h.train_loss[:, k] <= target) for k in cols]
            steps = [hit[0] if hit.size else np.inf for hit in hits]
            reach[name].append(float(np.median(steps)))
            if depth_ == 16:
                curves[name] = h.train_loss[:, cols]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for name, vals in reach.items():
        vals = np.array(vals)
        shown = np.where(np.isfinite(vals), vals, np.nan)
        line, = axes[0].plot(depths, shown, "o-", label=name)
        missed = ~np.isfinite(vals)
        if missed.any():
            axes[0].plot(np.array(depths)[missed], [epochs] * int(missed.sum()), "x",
                         color=line.get_color(), label=f"{name}: not within {epochs} epochs")
        axes[1].plot(curves[name], color=line.get_color(), lw=1)
    axes[0].set(xscale="log", xlabel="depth (layers)",
                ylabel="epochs to 10% of E[y^2] (median of 3)",
                title="Deep linear networks, SGD lr 0.05")
    axes[0].legend(fontsize=7)
    axes[1].set(yscale="log", xlabel="epoch", ylabel="training loss",
                title="depth 16: orthogonal (blue) vs Gaussian (orange)")
    fig.tight_layout()
    path = os.path.join(out, "linear.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print("epochs to 10% of E[y^2] by depth", depths, {n: v for n, v in reach.items()})
    return path


def chaos(out: str = ".") -> str:
    """The order-to-chaos transition of tanh networks: the critical line sigma_w^2(sigma_b^2)
    and the test accuracy after a few epochs over (sigma_w^2, depth), with 6 xi_c drawn."""
    plt = pyplot()
    ds = datasets.digits()
    sb2 = 0.05
    crit = theory.critical_sigma_w2("tanh", sb2)
    sw2s = [0.5, 1.0, 1.4, crit, 2.5, 4.0]
    depths = [4, 8, 16, 32, 48]
    acc = np.zeros((len(depths), len(sw2s)))
    for i, depth_ in enumerate(depths):
        inits = [spec("variance_scaling", scale=s, mode="fan_in", distribution="normal")
                 for s in sw2s]
        net = MLP([64] + [64] * depth_ + [10], activation="tanh", init=inits, n=len(sw2s),
                  seed=0, bias_init=spec("normal", std=math.sqrt(sb2)))
        h = train(net, ds, epochs=6, batch_size=32, optimizer="sgd", lr=0.01)
        acc[i] = h.test_acc[-1]
    b2 = np.concatenate([[0.0], np.geomspace(1e-5, 0.3, 24)])   # steep near sigma_b = 0
    line = [theory.critical_sigma_w2("tanh", b) for b in b2]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    axes[0].plot(line, b2, "k-")
    axes[0].set(xlabel="sigma_w^2", ylabel="sigma_b^2", title="tanh: the edge of chaos")
    axes[0].text(1.1, 0.25, "ordered", fontsize=9)
    axes[0].text(line[-1] - 0.35, 0.02, "chaotic", fontsize=9)
    im = axes[1].imshow(acc, aspect="auto", origin="lower", vmin=0, vmax=1, cmap="viridis")
    axes[1].set_xticks(range(len(sw2s)), [f"{s:.2f}" for s in sw2s])
    axes[1].set_yticks(range(len(depths)), depths)
    axes[1].set(xlabel="sigma_w^2 (sigma_b^2 = 0.05)", ylabel="depth",
                title="test accuracy after 6 epochs")
    xi = [6 * theory.phase("tanh", s, sb2).xi_c for s in sw2s]
    axes[1].plot(range(len(sw2s)), np.interp(xi, depths, range(len(depths))), "w--",
                 label="6 xi_c")
    axes[1].legend(fontsize=7, loc="upper right")
    fig.colorbar(im, ax=axes[1])
    fig.tight_layout()
    path = os.path.join(out, "chaos.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"critical sigma_w^2 at sigma_b^2 = {sb2}: {crit:.4f}; deepest trainable depth grows "
          f"towards it:")
    for i, depth_ in enumerate(depths):
        print(f"  depth {depth_:>2}: " + "  ".join(f"{s:.2f}:{a:.2f}" for s, a in zip(sw2s, acc[i])))
    return path


def _save(fig, plt, out, name) -> str:
    fig.tight_layout()
    path = os.path.join(out, f"{name}.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def dropout(out: str = ".") -> str:
    """Constant init keeps every hidden unit identical (d2l 5.4); dropout (each unit its own
    mask) and random biases (each unit its own offset) break the symmetry; random weights never
    had it."""
    plt = pyplot()
    ds = datasets.digits()
    const = spec("constant", value=0.05)
    names = ["constant", "constant + dropout 0.5", "constant + random biases", "he_normal"]
    net = MLP([64, 32, 32, 10], "tanh", init=[const, const, const, "he_normal"], n=4, seed=0,
              bias_init=["zeros", "zeros", spec("normal", std=0.5), "zeros"],
              dropout=[0.0, 0.5, 0.0, 0.0], dtype=np.float64)
    h = train(net, ds, epochs=15, batch_size=32, optimizer="momentum", lr=0.02,
              diagnose_every=1)
    distinct = h.diagnostics["distinct_units"][:, :, 0]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for k, name in enumerate(names):
        axes[0].plot(h.diagnostic_epochs, distinct[:, k], "o-", ms=3, label=name)
        axes[1].plot(h.test_acc[:, k], label=name)
    axes[0].set(xlabel="epoch", ylabel="distinct units, hidden layer 1 (of 32)", yscale="log")
    axes[1].set(xlabel="epoch", ylabel="test accuracy")
    axes[0].legend(fontsize=7)
    fig.suptitle("Breaking the symmetry of constant init", fontsize=10)
    print("distinct units in hidden layer 1 after 15 epochs:",
          dict(zip(names, distinct[-1].astype(int).tolist())))
    return _save(fig, plt, out, "dropout")


def zero(out: str = ".") -> str:
    """ZerO vs the partial identity on bias-free ReLU nets that widen from 64 to 128 units
    (Zhao et al. 2022): the identity's extra rows start at zero and W - I of the square layer
    learns only a low-rank update; ZerO's Hadamard rows let the rank grow."""
    plt = pyplot()
    ds = datasets.digits()
    names = ["ZerO (Hadamard)", "partial identity"]
    net = MLP([64, 128, 128, 128, 10], "relu", init=["ZerO", "identity"], n=2, seed=0,
              bias=False, activation_param=1.0, dtype=np.float64)
    ranks = []

    def rank_of_update(epoch, hist):   # rank of W_1 - I: how far the square layer moved
        ranks.append([np.linalg.matrix_rank(net.weights[1][k] - np.eye(128), tol=1e-6)
                      for k in range(2)])
    rank_of_update(0, None)
    h = train(net, ds, epochs=15, batch_size=32, optimizer="momentum", lr=0.02,
              callback=rank_of_update)
    ranks = np.array(ranks)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for k, name in enumerate(names):
        axes[0].plot(ranks[:, k], "o-", ms=3, label=name)
        axes[1].plot(h.test_acc[:, k], label=name)
    axes[0].set(xlabel="epoch", ylabel="rank of W - I, hidden layer 2 (of 128)")
    axes[1].set(xlabel="epoch", ylabel="test accuracy")
    axes[0].legend(fontsize=7)
    fig.suptitle("Bias-free ZerO vs partial identity", fontsize=10)
    print("rank of W - I after 15 epochs:", dict(zip(names, ranks[-1].tolist())),
          "test accuracy:", dict(zip(names, np.round(h.test_acc[-1], 3).tolist())))
    return _save(fig, plt, out, "zero")


def residual(out: str = ".") -> str:
    """Fifty layers (25 residual blocks of 64 ReLU units): plain He init, Fixup and batch norm
    on the same blocks; test accuracy per epoch, 3 seeds each."""
    plt = pyplot()
    ds = datasets.digits()
    runs = [("plain", {}), ("fixup", {}), ("plain + batch norm", {"norm": "batch"})]
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    finals = {}
    for name, extra in runs:
        net = ResMLP(64, 64, 25, 10, "relu", init="he_normal", residual=name.split()[0],
                     n=3, seed=[0, 1, 2], **extra)
        h = train(net, ds, epochs=10, batch_size=64, optimizer="momentum", lr=0.01)
        line, = ax.plot(h.test_acc.mean(axis=1), label=name)
        ax.fill_between(np.arange(11), h.test_acc.min(axis=1), h.test_acc.max(axis=1),
                        color=line.get_color(), alpha=0.2, lw=0)
        finals[name] = round(float(h.test_acc[-1].mean()), 3)
    ax.set(xlabel="epoch", ylabel="test accuracy (3 seeds)", title="50 layers, residual")
    ax.legend(fontsize=7)
    print("final test accuracy, mean of 3 seeds:", finals)
    return _save(fig, plt, out, "residual")


def symmetric_verdict(rows: list[dict]) -> str:
    """The demo's closing line, read from its runs: the mean test accuracy of zeros and
    constant init at each depth, next to chance (1 / classes)."""
    accs: dict = {}
    for r in rows:
        if r["scheme"] in ("zeros", "constant") and r["final_test_acc"] is not None:
            accs.setdefault(r["scheme"], {}).setdefault(r["depth"], []).append(
                r["final_test_acc"])
    if not accs:
        return ""
    depths = sorted({d for by_depth in accs.values() for d in by_depth})
    said = [f"{name} {', '.join(f'{np.mean(by[d]):.2f}' for d in depths if d in by)}"
            for name, by in accs.items()]
    classes = rows[0]["layer_sizes"][-1]
    return (f"mean test accuracy at {', '.join(map(str, depths))} hidden layers: "
            f"{' and '.join(said)} (chance {1 / classes:.2f}): under symmetric init every "
            "hidden unit computes the same function, so each layer acts as one unit "
            "(see symmetry.png).")


EXAMPLES = {"symmetry": symmetry, "depth": depth, "linear": linear, "chaos": chaos,
            "dropout": dropout, "zero": zero, "residual": residual}
