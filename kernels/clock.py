"""A monotonic clock inside compiled code: where the real epoch's time goes, timed in place.

``now(clock_id, index)`` is clock_gettime(clock_id) in integer nanoseconds, called from compiled
code (about 35 ns through the vDSO on Linux); the caller passes Python's
``time.CLOCK_MONOTONIC``, so the constant is the platform's own. ``index`` is the loop index
the reading belongs to and is otherwise unused: it keeps a reading inside its loop.
train._epoch adds each step's phases into ``Plan.clock`` only when that array has rows
(fastinit.profile asks for it; training alone never reads the clock). Rows are members,
columns the phases below, values nanoseconds summed over the epoch's steps:

    NETWORK   the batch gather, the forward pass and the backward pass
    LOSS      the batch's loss and dL/dZ
    OPTIMIZER the gradient's finiteness check, the per-step record, the update
"""
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

NETWORK, LOSS, OPTIMIZER = range(3)
PHASES = 3


@intrinsic
def now(typingctx, clock_id, index):
    """clock_gettime(clock_id) in nanoseconds (int64); ``index`` only ties it to its loop."""
    sig = types.int64(types.int64, types.int64)

    def codegen(context, builder, signature, args):
        i32, i64 = ir.IntType(32), ir.IntType(64)
        timespec = ir.LiteralStructType([i64, i64])
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(i32, [i32, timespec.as_pointer()]), "clock_gettime")
        ts = cgutils.alloca_once(builder, timespec)
        builder.call(fn, [builder.trunc(args[0], i32), ts])
        sec = builder.load(cgutils.gep_inbounds(builder, ts, 0, 0))
        nsec = builder.load(cgutils.gep_inbounds(builder, ts, 0, 1))
        return builder.add(builder.mul(sec, ir.Constant(i64, 1_000_000_000)), nsec)
    return sig, codegen
