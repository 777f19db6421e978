"""Where cold-start compile time goes: seconds per kernel and signature, with an empty cache.

    NUMBA_CACHE_DIR=$(mktemp -d) python bench/compile_times.py train    # one float32 train()
    NUMBA_CACHE_DIR=$(mktemp -d) python bench/compile_times.py demo     # fastinit demo
    export NUMBA_CACHE_DIR=$(mktemp -d)       # epochs of kernels compiled in this process,
    python bench/compile_times.py epoch; python bench/compile_times.py epoch   # then loaded

The ``epoch`` workload times 15 epochs (min) of 5 members [64, 64 x 6, 10], float32, 1 thread,
after compiling them: run twice on one cache, cold then warm, the two must match (kernels a
process compiled ran 1.5x slower than the same kernels loaded, when helpers skipped Numba's
module passes: kernels/_config.py).

Numba's event API reports each dispatcher compile ("numba:compile", nested for the helpers a
kernel compiles on the way). Printed: every outermost compile (TOP) and every compile of a
kernel that compiled more than once (a second specialisation: see tests/specialisations.py)
with the kernel whose compile asked for each, then seconds per kernel, exclusive (its own
typing, LLVM and code generation) and inclusive.
Run it with an empty NUMBA_CACHE_DIR, or kernels load from the cache and nothing is reported.
"""
import collections
import sys
import tempfile
import time

from numba.core import event

T0 = time.perf_counter()
stack = []
incl, excl, count = collections.defaultdict(float), collections.defaultdict(float), \
    collections.Counter()
sigs = collections.defaultdict(list)
callers = collections.defaultdict(list)       # kernel -> "args from caller", nested compiles


class _Listener(event.Listener):
    def on_start(self, ev):
        d = ev.data["dispatcher"]
        args = str(ev.data["args"])
        if stack:
            callers[d.py_func.__qualname__].append(f"{args[:60]} from {stack[-1][0]}")
        stack.append([d.py_func.__qualname__, time.perf_counter(), 0.0, args])

    def on_end(self, ev):
        name, t0, child, args = stack.pop()
        dt = time.perf_counter() - t0
        incl[name] += dt
        excl[name] += dt - child
        count[name] += 1
        sigs[name].append(args)
        if stack:
            stack[-1][2] += dt
        else:
            done = time.perf_counter() - T0
            print(f"TOP {dt:7.2f} s {name} {args[:100]} (done at {done:.1f} s)", flush=True)


def workload(what):
    import numpy as np
    import fastinit
    if what == "train":
        x = np.random.default_rng(0).standard_normal((40, 4))
        net = fastinit.MLP([4, 8, 3], n=2, seed=0, dtype=np.float32)
        fastinit.train(net, (x, np.arange(40) % 3), epochs=1, batch_size=16)
    elif what == "demo":
        from fastinit import cli
        cli.main(["demo", "--out", tempfile.mkdtemp(), "-q"])
    elif what == "epoch":
        import numba
        numba.set_num_threads(1)
        x = np.random.default_rng(0).standard_normal((2048, 64))
        net = fastinit.MLP([64] + [64] * 6 + [10], n=5, seed=0)
        data = (x, np.arange(2048) % 10)
        fastinit.train(net, data, epochs=1, batch_size=64, threads=1)
        seconds = []
        for _ in range(15):
            t0 = time.perf_counter()
            fastinit.train(net, data, epochs=1, batch_size=64, threads=1)
            seconds.append(time.perf_counter() - t0)
        print(f"epoch (train() of 1 epoch, min of 15): {min(seconds) * 1e3:.1f} ms")
    else:
        raise SystemExit(f"unknown workload {what!r}: train, demo or epoch")


if __name__ == "__main__":
    event.register("numba:compile", _Listener())
    t0 = time.perf_counter()
    workload(sys.argv[1] if len(sys.argv) > 1 else "train")
    print(f"total {time.perf_counter() - t0:.1f} s")
    for name, s in sorted(excl.items(), key=lambda kv: -kv[1])[:30]:
        print(f"{s:7.2f} s excl {incl[name]:7.2f} s incl x{count[name]:2d} {name}")
    for name, args in sigs.items():
        if len(args) > 1 and not name.startswith(("ol_", "impl", "np_")):
            print(f"compiled {len(args)}x: {name}: " + " | ".join(a[:80] for a in args))
            for line in callers[name]:
                print(f"    {line}")
