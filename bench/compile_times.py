"""Where cold-start compile time goes: seconds per kernel and signature, with an empty cache.

    NUMBA_CACHE_DIR=$(mktemp -d) python bench/compile_times.py train    # one float32 train()
    NUMBA_CACHE_DIR=$(mktemp -d) python bench/compile_times.py demo     # fastinit demo

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
            print(f"TOP {dt:7.2f} s {name} {args[:100]} (done at {time.perf_counter() - T0:.1f} s)",
                  flush=True)


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
    else:
        raise SystemExit(f"unknown workload {what!r}: train or demo")


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
