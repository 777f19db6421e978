"""Training, evaluation and gradient drivers: one compiled call per epoch for a population.

Population shapes (K members, same layer sizes; see dense.py for one member's layout and the
architecture record ``arch``):
    params    (K, P)     flat parameters          s1, s2 (K, P) or (K, 0) optimizer state
    x         (n, d0)    inputs                   y (n,) int64 labels (cross-entropy)
    t         (n, dL)    targets (mse, bce)       order (S, n) sample order, S = 1 or K
    opt       optim.Optim: the optimizer code and its per-member hyper-parameters
    plan      Plan: this epoch's batch size, number of steps, first global step, and the
              per-step records (every ``every`` global steps: the minibatch loss and each
              layer's ||dW||, into loss (R, K) and grad_norm (R, K, L); R records this epoch),
              and where the time goes: with ``clock`` (K, clock.PHASES) int64, each member's
              nanoseconds by phase are added to it (clock.py; read with ``clock_id``); with
              clock (0, PHASES), nothing is timed
    frozen    (K,) bool  members that diverged: never updated again
    work, grad (total,), (P,) one block's scratch (dense.layout's total at the batch) and
              gradient: the caller allocates them once for every epoch of a run, so an epoch
              after the first maps no fresh memory (about a millisecond for 4 MB)
Outputs per member: loss_sum, correct (K,) float64 over the epoch's batches; diverged_step (K,).

train_epoch, evaluate and gradients take ``lo, hi`` first and run members lo..hi-1 (evaluate:
tasks, each a member on a run of batches): fastinit.spread has each thread claim such runs
(no prange: see spread.py for what a parallel loop around a whole forward and backward pass
costs to compile). train_epoch runs members that share the data order in groups, step by
step, so each step's batch is gathered once for the group (group_size: as many members as
keep their parameters and optimizer state in a core's L2), and evaluate batch by batch
likewise; gradients runs them one after another. A member's arithmetic never depends on the
others, the thread count or the thread that runs it, so its trajectory is the same alone or
in any population. A member diverges at the first step whose loss or gradient is not
finite, or when it starts an epoch with a parameter that is not (a NaN a relu hides from the
loss): it is frozen with the parameters, and batch norm's running statistics, it had before
that step.
"""
import math
from collections import namedtuple

import numpy as np

from ._config import jit, kernel
from . import clock, dense, losses, optim, split
from .gemm import padded

Plan = namedtuple("Plan", ("batch", "steps", "step0", "every", "loss", "grad_norm", "clock",
                           "clock_id"))


@jit
def batch_loss(loss_code, scratch, lay, L, dl, bp, nb, y, t, rows, ybuf):
    """(loss sum, correct) of a batch whose logits are layer L-1's Z; dL/dz at lay.dz."""
    z = scratch[lay.zoff[L - 1]:lay.zoff[L - 1] + dl * bp]
    d = scratch[lay.dz:lay.dz + dl * bp]
    tgt, work = lay.tgt, lay.work
    if loss_code == losses.CROSS_ENTROPY:
        for b in range(nb):
            ybuf[b] = y[rows[b]]
        return losses.cross_entropy(z, bp, dl, nb, ybuf, d, scratch[work:work + losses.WORK * bp])
    tg = scratch[tgt:tgt + dl * bp]
    for b in range(nb):
        r = rows[b]
        for c in range(dl):
            tg[c * bp + b] = t[r, c]
    if loss_code == losses.MSE or loss_code == losses.MSE_SUM:
        return losses.mse(z, bp, dl, nb, tg, d, loss_code == losses.MSE_SUM)
    return losses.bce(z, bp, dl, nb, tg, d)


@jit
def _record(plan, m, t, lsum, nb, g, arch):
    """Global step t's minibatch loss and per-layer ||dW|| into the plan's records."""
    r = t // plan.every - (plan.step0 + plan.every - 1) // plan.every
    plan.loss[r, m] = lsum / nb
    for l in range(arch.dims.shape[0] - 1):
        w = g[arch.woff[l]:arch.woff[l] + arch.dims[l + 1] * arch.ld[l]]
        acc = 0.0
        for i in range(w.shape[0]):
            acc += np.float64(w[i]) * np.float64(w[i])
        plan.grad_norm[r, m, l] = math.sqrt(acc)


# Members stepped together share each step's batch gather: as many as keep their parameters
# and optimizer state within this many bytes (a Zen 4 core's L2; Zen 3 has half: speed only,
# never bits), at least one
GROUP_BYTES = 1024 * 1024


@jit
def group_size(params, s1, s2, order):
    """Members run step by step together (``_epoch``): those sharing the data order whose
    parameters and optimizer state fit GROUP_BYTES; one when each member has its own order."""
    if order.shape[0] > 1:
        return 1
    return members_in((params.shape[1] + s1.shape[1] + s2.shape[1]) * params.itemsize)


@jit
def members_in(member_bytes):
    """How many members of ``member_bytes`` each fit GROUP_BYTES (at least one)."""
    return max(1, GROUP_BYTES // member_bytes)


@jit
def gather_batch(x, rows, nb, scratch, lay, ld, bp, parts):
    """The batch's input rows and A_0^T into scratch, over ``parts`` threads unless None."""
    if parts is not None:
        split.gather_split(x, rows, nb, scratch, lay.aoff[0], lay.x0, ld[0], bp, parts)
    else:
        dense.gather(x, rows, nb, scratch, lay.aoff[0], lay.x0, ld[0], bp)


@jit
def start_members(m0, m1, params, frozen, loss_sum, correct, diverged_step, step0):
    """Zero members m0..m1-1's epoch sums and freeze those starting with a parameter that is
    not finite (a NaN or inf put in between epochs); how many are not frozen."""
    live = 0
    for m in range(m0, m1):
        loss_sum[m] = 0.0
        correct[m] = 0.0
        if not frozen[m] and not optim.all_finite(params[m]):
            frozen[m] = True
            diverged_step[m] = step0
        live += 0 if frozen[m] else 1
    return live


@jit
def hold_alphas(arch, p, held):
    """A residual network's branch scales that are not trained (not arch.alpha_train) are
    constants of the architecture, not parameters: copied into ``held`` before an update and
    back after it (restore_alphas), so weight decay never shrinks them."""
    if not arch.alpha_train:
        for l in range(arch.alpha_idx.shape[0]):
            if arch.alpha_idx[l] >= 0:
                held[l] = p[arch.alpha_idx[l]]


@jit
def restore_alphas(arch, p, held):
    """The branch scales hold_alphas copied, back into p."""
    if not arch.alpha_train:
        for l in range(arch.alpha_idx.shape[0]):
            if arch.alpha_idx[l] >= 0:
                p[arch.alpha_idx[l]] = held[l]


@jit
def copy_stats(src, dst):
    """A member's batch-norm running statistics (arch.state[m], (S,)) from src into dst: held
    before a step's forward pass updates them and put back when the step diverges, so a
    frozen member keeps the statistics it had before that step, as it keeps its parameters."""
    for i in range(src.shape[0]):
        dst[i] = src[i]


@jit(inline="always")
def _epoch(lo, hi, parts, params, s1, s2, x, y, t, order, arch, loss_code, opt, plan,
           frozen, loss_sum, correct, diverged_step, scratch, g):
    """One epoch of members lo..hi-1 on the caller's ``scratch`` (dense.layout's total) and
    gradient ``g`` (P,); their products split over ``parts`` threads unless parts is None (a
    None parts prunes the split calls before typing, so train_epoch never compiles them).
    Members sharing the data order run in groups (group_size), step by step: each step's batch
    is gathered once for the group, then each member takes that step. A member's arithmetic
    is the same whatever its group. Inlined into its two callers (Numba IR), so its calls
    compile once per caller, not once more on their own."""
    dims = arch.dims
    n = x.shape[0]
    batch, step0 = plan.batch, plan.step0
    bp = padded(batch)
    lay = dense.layout(arch, bp)
    L = dims.shape[0] - 1
    dl = dims[L]
    ybuf = np.empty(bp, dtype=np.int64)
    held = np.empty(L, dtype=params.dtype)
    stats = np.empty(arch.state.shape[1], dtype=arch.state.dtype)
    timed = plan.clock.shape[0] > 0
    shared = order.shape[0] == 1
    group = group_size(params, s1, s2, order)
    c0 = c1 = c2 = c3 = np.int64(0)
    for m0 in range(lo, hi, group):
        m1 = min(hi, m0 + group)
        live = start_members(m0, m1, params, frozen, loss_sum, correct, diverged_step, step0)
        g[:] = 0
        for s in range(plan.steps):
            if live == 0:       # every member of the group frozen: no step left to take
                break
            start = s * batch
            nb = min(batch, n - start)
            if shared:
                if timed:
                    c0 = clock.now(plan.clock_id, s)
                gather_batch(x, order[0][start:start + nb], nb, scratch, lay, arch.ld, bp,
                             parts)
                if timed:       # the gather's time, shared among the members taking the step
                    share = (clock.now(plan.clock_id, s) - c0) // live
                    for m in range(m0, m1):
                        plan.clock[m, clock.NETWORK] += 0 if frozen[m] else share
            for m in range(m0, m1):
                if frozen[m]:
                    continue
                rows = order[0 if shared else m][start:start + nb]
                p = params[m]
                copy_stats(arch.state[m], stats)
                if timed:
                    c0 = clock.now(plan.clock_id, s)
                if not shared:
                    gather_batch(x, rows, nb, scratch, lay, arch.ld, bp, parts)
                if parts is not None:
                    split.forward_split(p, arch, m, scratch, lay, bp, nb, parts, step0 + s)
                else:
                    dense.forward(p, arch, m, scratch, lay, bp, nb, step0 + s)
                if timed:
                    c1 = clock.now(plan.clock_id, s)
                lsum, corr = batch_loss(loss_code, scratch, lay, L, dl, bp, nb, y, t, rows,
                                        ybuf)
                if not math.isfinite(lsum):
                    frozen[m] = True
                    copy_stats(stats, arch.state[m])
                    diverged_step[m] = step0 + s
                    live -= 1
                    continue
                if timed:
                    c2 = clock.now(plan.clock_id, s)
                if parts is not None:
                    split.backward_split(p, g, arch, m, scratch, lay, bp, nb, parts, step0 + s)
                else:
                    dense.backward(p, g, arch, m, scratch, lay, bp, nb, step0 + s)
                if timed:
                    c3 = clock.now(plan.clock_id, s)
                if not optim.all_finite(g):  # a NaN weight a relu hides from the loss shows here
                    frozen[m] = True
                    copy_stats(stats, arch.state[m])
                    diverged_step[m] = step0 + s
                    live -= 1
                    continue
                loss_sum[m] += lsum
                correct[m] += corr
                if plan.every > 0 and (step0 + s) % plan.every == 0:
                    _record(plan, m, step0 + s, lsum, nb, g, arch)
                lr, mu, wd = opt.lr[m], opt.momentum[m], opt.weight_decay[m]
                hold_alphas(arch, p, held)
                if parts is not None:
                    split.update_split(arch, opt.code, p, g, s1[m], s2[m], lr, mu, opt.beta1,
                                       opt.beta2, opt.eps, wd, step0 + s + 1, parts)
                else:
                    optim.update(opt.code, p, g, s1[m], s2[m], lr, mu, opt.beta1, opt.beta2,
                                 opt.eps, wd, step0 + s + 1)
                restore_alphas(arch, p, held)
                if timed:
                    plan.clock[m, clock.NETWORK] += (c1 - c0) + (c3 - c2)
                    plan.clock[m, clock.LOSS] += c2 - c1
                    plan.clock[m, clock.OPTIMIZER] += clock.now(plan.clock_id, s) - c3


@kernel
def train_epoch(lo, hi, params, s1, s2, x, y, t, order, arch, loss_code, opt, plan, frozen,
                loss_sum, correct, diverged_step, work, grad):
    """One epoch of minibatch training for members lo..hi-1 that are not frozen (_epoch), on
    this thread's scratch ``work`` and gradient ``grad`` (fastinit.spread runs runs of
    members on each thread, each thread on memory of its own)."""
    _epoch(lo, hi, None, params, s1, s2, x, y, t, order, arch, loss_code, opt, plan, frozen,
           loss_sum, correct, diverged_step, work, grad)
    return loss_sum


@kernel
def train_epoch_split(params, s1, s2, x, y, t, order, arch, loss_code, opt, plan, frozen,
                      loss_sum, correct, diverged_step, work, grad, parts):
    """train_epoch for populations smaller than the thread count: every member on ``work``
    and ``grad``, each member's products split over ``parts`` threads. Same bits as
    train_epoch. Plain (non-residual) networks only."""
    _epoch(dense.ROW0, params.shape[0], parts, params, s1, s2, x, y, t, order, arch,
           loss_code, opt, plan, frozen, loss_sum, correct, diverged_step, work, grad)
    return loss_sum


@kernel
def evaluate(lo, hi, params, x, y, t, batch, chunks, arch, loss_code, sums, out, write_out,
             scratch):
    """Tasks lo..hi-1 of K members x ``chunks`` runs of batches (task r K + m: member m on
    run r, the batches nbatch r / chunks .. nbatch (r + 1) / chunks - 1, so fewer members
    than threads still fill every thread): each batch's loss sum and correct count into
    sums[0, m, s + 1] and sums[1, m, s + 1] (column 0 is the caller's: the sums in batch order
    start from it, as alone), logits into out (K, n, dL) when write_out; on this thread's
    ``scratch`` (at least dense.layout's total at the batch). A run's members go in groups
    (group_size, by their parameters), batch by batch: each batch gathered once for the
    group."""
    dims, ld = arch.dims, arch.ld
    K = params.shape[0]
    n = x.shape[0]
    nbatch = (n + batch - 1) // batch
    bp = padded(batch)
    L = dims.shape[0] - 1
    dl = dims[L]
    rows_all = np.arange(n)
    lay = dense.layout(arch, bp)
    ybuf = np.empty(bp, dtype=np.int64)
    group = members_in(params.shape[1] * params.itemsize)
    for r in range(lo // K, (hi - 1) // K + 1):
        first, last = max(lo, r * K) - r * K, min(hi, (r + 1) * K) - r * K
        for m0 in range(first, last, group):
            m1 = min(last, m0 + group)
            for s in range(nbatch * r // chunks, nbatch * (r + 1) // chunks):
                start = s * batch
                nb = min(batch, n - start)
                rows = rows_all[start:start + nb]
                dense.gather(x, rows, nb, scratch, lay.aoff[0], lay.x0, ld[0], bp)
                for m in range(m0, m1):
                    dense.forward(params[m], arch, m, scratch, lay, bp, nb, dense.EVAL_STEP)
                    lsum, corr = batch_loss(loss_code, scratch, lay, L, dl, bp, nb, y, t, rows,
                                            ybuf)
                    sums[0, m, s + 1] = lsum
                    sums[1, m, s + 1] = corr
                    if write_out:
                        zl = lay.zoff[L - 1]
                        for b in range(nb):
                            for c in range(dl):
                                out[m, start + b, c] = scratch[zl + c * bp + b]
    return sums


@kernel
def gradients(lo, hi, params, x, y, t, arch, loss_code, grads, loss_sum):
    """Gradient of the mean loss over all of x (one batch) for members lo..hi-1, into grads;
    labels y (S, n) and targets t (S, n, dL): S = 1 (shared) or K (one per member)."""
    dims, ld = arch.dims, arch.ld
    n = x.shape[0]
    bp = padded(n)
    L = dims.shape[0] - 1
    dl = dims[L]
    rows = np.arange(n)
    lay = dense.layout(arch, bp)
    for m in range(lo, hi):
        scratch = np.empty(lay.total, dtype=params.dtype)
        ybuf = np.empty(bp, dtype=np.int64)
        p = params[m]
        dense.gather(x, rows, n, scratch, lay.aoff[0], lay.x0, ld[0], bp)
        dense.forward(p, arch, m, scratch, lay, bp, n, dense.PROBE_STEP)
        own = m % y.shape[0]                       # the member's labels, or the shared ones
        lsum, corr = batch_loss(loss_code, scratch, lay, L, dl, bp, n, y[own],
                                t[own % t.shape[0]], rows, ybuf)
        loss_sum[m] = lsum
        dense.backward(p, grads[m], arch, m, scratch, lay, bp, n, dense.PROBE_STEP)
    return loss_sum
