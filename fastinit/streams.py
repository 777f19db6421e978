"""Every Philox stream tag fastinit uses: which stream each random number comes from.

A random value is a pure function of (seed, stream, position). The 64-bit stream number is
``(member << 32) | tag``: the member index (0-based, across the whole population, so member k
is the same whether drawn alone with ``start=k`` or among N) and a 32-bit tag naming the tensor
or the purpose. Every tag is declared here and nowhere else:

    0                          values of fastinit.sample (MASK_OFFSET later: a sparse mask)
    16 + 8 * layer + kind      a network's tensors (kind: 0 weight, 1 weight mask, 2 bias,
                               3 bias mask)
    DROPOUT + layer            a member's dropout masks of a hidden layer (the step and the
                               unit's position are the counter: see kernels.dense.dropout)
    KRAEHENBUEHL + i           Kraehenbuehl's random top gradients, iteration i
    ORDER + epoch              the training order of an epoch
    DATA + purpose             the synthetic datasets and splits (purposes below)
"""
from __future__ import annotations

import numpy as np

SAMPLE_VALUES = 0
MASK_OFFSET = 1  # the mask of a tensor uses the tag after its values'
WEIGHT, BIAS = 0, 2
DROPOUT = 0x7FFC0000
KRAEHENBUEHL = 0x7FFD0000
ORDER = 0x7FFE0000
DATA = 0x7FFF0000
# DATA + purpose: what each synthetic draw is for
(PERMUTATION, SPLIT, TEACHER_X, TEACHER_NOISE, TEACHER_SPLIT, SPIRAL_ANGLE, SPIRAL_NOISE,
 BLOB_CENTRES, BLOB_POINTS) = range(9)


def layer_tag(layer: int, kind: int) -> int:
    """Tag of layer ``layer``'s weight (kind=WEIGHT) or bias (kind=BIAS) values."""
    return 16 + 8 * layer + kind


def data_tag(purpose: int) -> int:
    """Tag of one synthetic-data draw (``purpose`` one of the DATA purposes above)."""
    return DATA + purpose


def stream_ids(members, tag: int) -> np.ndarray:
    """uint64 stream numbers of these members (ints) for one tag."""
    members = np.asarray(members, dtype=np.uint64)
    return (members << np.uint64(32)) | np.uint64(tag)
