"""fastinit's Numba kernels: arrays and numbers in, arrays out.

Installed as ``fastinit.kernels``. Imports numpy and numba only, never fastinit; no validation,
no strings, no I/O. Numba options live in ``_config``. Modules:

    rng          Philox4x32-10 and its uniform, normal and inverse-CDF transforms
    sampling     batched initializer sampling over a population axis
    orthogonal   Haar orthogonal matrices: products of Householder reflectors, in runs of rows
    gemm         register-blocked matrix multiply micro-kernels (LLVM vector IR)
    activations  elementwise activations and derivatives
    losses       cross-entropy, MSE, BCE with their gradients
    optim        fused SGD / momentum / Nesterov / Adam / AdamW updates; Optim, their record
    dense        one member's forward and backward pass; Arch, the architecture record
    split        the same passes with each product's rows split over threads
    clock        a monotonic clock in compiled code: the real epoch's phases, timed in place
    train        population drivers: an epoch, an evaluation, a gradient, in one call each
    stats        diagnostic statistics: layer moments, dead units, unit symmetry
    profile      an epoch's parts replayed one by one (fastinit.profile), a STREAM triad

Helpers shared across modules are imported from their home module. Compiled code is cached in a
directory named after a digest of every kernel source (``_config.CACHE_DIR``), so editing a
helper never leaves a caller running its old code. Defining kernels compiles nothing:
compilation happens on first call, then comes from the cache.
"""
from . import (activations, clock, dense, gemm, losses, optim, orthogonal, rng,  # noqa: F401
               sampling, split, stats, train)
