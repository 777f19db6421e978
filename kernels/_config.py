"""Numba options for every fastinit kernel, chosen in one place, and where compiled code is cached.

``kernel`` is for the entry points Python calls (a population's members, or a fill's chunks,
are spread over threads by fastinit.spread, serial calls on runs of them); ``jit`` for the helpers
only other kernels call. ``pjit`` (a helper) and ``pkernel`` (an entry point) split loops over
Numba threads with ``prange`` (one member's products by rows). All cache compiled code on disk,
so a second process starts warm.

A helper is compiled without the two wrappers a call from Python needs (unboxing every argument,
an ``Arch`` record's 18 arrays among them, and a C entry point): every helper's own library and
every kernel it is linked into carried them (a cold float32 train() compiled in 41-45 s without
them, median 43.6, and in 46-50 s, median 48.5, with them: ``bench/compile_times.py train``).
A helper called from Python raises TypeError (it has no code to run from there, and Numba would
jump to address 0); a test calls one through a compiled shim (tests/reference.py ``call``).
A helper also runs without Numba's reference counting (``_nrt=False``): its arrays are its
caller's, and counting every view it takes (an ``Arch`` record passed on counts 18) was IR
to generate and then optimise away; a cold float32 train() took 28.7 / 31.7 s of CPU with it
off, 31.5 / 36.9 s with it on (two runs each, interleaved). So a helper may not return an
array, or a record holding one (its caller would free what the helper never counted): that
is refused when it compiles (``Helper.compile``). Nor may a helper call a NumPy function or
method that Numba compiles as a function of its own and that returns an array (``reshape``,
``ravel``, ``np.empty``: allocation fails to compile anyway): Numba keeps one compiled
overload per argument types, with or without counting, so a kernel's call could run the
helper's uncounted build. Slices and ``.view`` are emitted in place, counted or not as the
function they are in.

How a kernel's library is linked and optimised (each helper's machine code made once, in
its own library; inlined helpers optimised only where inlined) is kernels/_linking.py.

No fastmath anywhere: a weight must be the same bits on every machine and thread count, and
reassociation or contraction would let the compiler change them.

The cache lives in a directory named after a digest of every kernel source (``CACHE_DIR``):
Numba checks only a function's own file before reusing its compiled code, so a kernel whose
helper in another module changed would otherwise run the old helper. The directory is
``$NUMBA_CACHE_DIR/fastinit-<digest>`` when NUMBA_CACHE_DIR is set (a shared filesystem on a
cluster: each kernel compiles once), else ``__pycache__/fastinit-<digest>`` next to these
sources, else (read-only site-packages) the user cache directory
(``$XDG_CACHE_HOME`` or ``~/.cache``) ``/fastinit/fastinit-<digest>``. Only the newest few of
these directories are kept (``prune``).

Processes may share one cache (Dask workers on a shared filesystem, parallel runs): Numba saves
a kernel by reading its index, adding a signature and writing the index back, so two processes
saving two signatures of one kernel at once would lose one or map it to the other's code. Every
fastinit kernel's save holds a lock on ``CACHE_DIR/.lock`` (POSIX lockf, which NFS honours).
And two processes needing the same signature at once would each compile it: a process compiles
a signature holding a lock of its own (``compiling``), and the other waits and loads it.
"""
import contextlib
import fcntl
import hashlib
import os
import pathlib
import shutil
import tempfile
import time

import numpy as np
from numba import config, njit, types
from numba.core import event, sigutils
from numba.core.registry import CPUDispatcher
from numba.extending import overload

from . import _linking

_HERE = pathlib.Path(__file__).resolve().parent


def source_digest(folder=_HERE) -> str:
    """A digest of every kernel module's source: changes whenever any kernel changes."""
    h = hashlib.sha256()
    for path in sorted(pathlib.Path(folder).glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _writable(path: str) -> bool:
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path):
            return True
    except OSError:
        return False


def cache_dir() -> str | None:
    """Where compiled kernels go (see the module docstring); None when nowhere is writable
    (Numba then compiles in every process)."""
    tag = f"fastinit-{source_digest()}"
    if os.environ.get("NUMBA_CACHE_DIR"):
        bases = [os.environ["NUMBA_CACHE_DIR"]]
    else:
        user = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"),
                                                                 ".cache")
        bases = [str(_HERE / "__pycache__"), os.path.join(user, "fastinit")]
    for base in bases:
        if _writable(os.path.join(base, tag)):
            return os.path.join(base, tag)
    return None


KEEP = 4    # cache directories kept per location: this version's and the 3 newest others


def prune(path, keep: int = KEEP) -> None:
    """Delete all but the ``keep`` most recently used fastinit-* cache directories beside path
    (each version of the kernels leaves one; a process still using a deleted one recompiles)."""
    if path is None:
        return
    here = pathlib.Path(path)
    try:
        others = sorted((p for p in here.parent.glob("fastinit-*") if p.is_dir() and p != here),
                        key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return
    for old in others[keep - 1:]:
        shutil.rmtree(old, ignore_errors=True)


CACHE_DIR = cache_dir()
prune(CACHE_DIR)


@contextlib.contextmanager
def _cache_lock():
    """Held while a kernel's compiled code is written into CACHE_DIR (see the docstring)."""
    with open(os.path.join(CACHE_DIR, ".lock"), "a") as f:
        fcntl.lockf(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.lockf(f, fcntl.LOCK_UN)


def _serialise_saves(dispatcher):
    """The dispatcher's cache saves, one process at a time."""
    cache = getattr(dispatcher, "_cache", None)
    save = getattr(cache, "save_overload", None)
    if CACHE_DIR is None or save is None:
        return dispatcher

    def save_overload(sig, data):
        with _cache_lock():
            save(sig, data)

    cache.save_overload = save_overload
    return dispatcher


WAIT = 900.0    # seconds a process waits for another compiling the same signature


@contextlib.contextmanager
def compiling(dispatcher, args):
    """Held while this process compiles (or loads) the signature ``args`` (a tuple of Numba
    types) of ``dispatcher``: a process that finds it held waits, then loads what the holder
    saved instead of compiling it again (a POSIX lock on a file in CACHE_DIR/.compiling; the
    system drops it when its process dies). After WAIT seconds it compiles anyway."""
    key = hashlib.sha256(f"{dispatcher.py_func.__module__}.{dispatcher.py_func.__qualname__}"
                         f"{args}".encode()).hexdigest()[:20]
    folder = os.path.join(CACHE_DIR, ".compiling")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, key), "a") as f:
        deadline, held = time.monotonic() + WAIT, False
        while not held and time.monotonic() < deadline:
            try:
                fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = True
            except OSError:
                time.sleep(0.05)
        try:
            yield
        finally:
            if held:
                fcntl.lockf(f, fcntl.LOCK_UN)


def _one_compile_per_signature(dispatcher):
    """The dispatcher compiles a signature in one process at a time (``compiling``): two
    processes sharing the cache (tests in two processes, fastinit.warmup's, Dask workers on one
    filesystem) compile each kernel once between them, not once each."""
    if CACHE_DIR is None:
        return dispatcher
    compile_ = dispatcher.compile

    def compile(sig):
        args = sigutils.normalize_signature(sig)[0]
        if tuple(args) in dispatcher.overloads:
            return compile_(sig)
        with event.trigger_event("numba:compiler_lock"), compiling(dispatcher, tuple(args)):
            return compile_(sig)

    dispatcher.compile = compile
    return dispatcher


class Helper(CPUDispatcher):
    """A kernel only other kernels call: compiled without Python's wrappers and without
    reference counting (the docstring)."""

    def compile(self, sig):
        entry = super().compile(sig)
        cres = self.overloads.get(tuple(sigutils.normalize_signature(sig)[0]))
        returned = cres.signature.return_type if cres is not None else types.none
        if self.targetctx.data_model_manager[returned].contains_nrt_meminfo():
            raise TypeError(f"{self.py_func.__module__}.{self.py_func.__qualname__} returns "
                            f"{returned}: a helper runs without reference counting, so it may "
                            "not return an array (or anything holding one); write into an "
                            "array its caller passes, or make it a kernel")
        return entry

    def __call__(self, *args, **kwargs):
        raise TypeError(f"{self.py_func.__module__}.{self.py_func.__qualname__} is a helper of "
                        "fastinit's kernels, compiled to be called from other kernels only; "
                        "call it from a function compiled with numba.njit")


def _decorator(helper: bool, **options):
    """njit with ``options``, caching into CACHE_DIR; for a ``helper`` without the wrappers a
    call from Python needs. Usable as @jit and @jit(...)."""
    if helper:
        options = dict(options, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False)

    def decorate(fn=None, **more):
        if fn is None:
            return lambda f: decorate(f, **more)
        previous = config.CACHE_DIR
        config.CACHE_DIR = CACHE_DIR or previous   # read once, when the cache is set up
        try:
            dispatcher = njit(fn, **options, **more)
        finally:
            config.CACHE_DIR = previous
        if helper:
            dispatcher.__class__ = Helper
        dispatcher = _one_compile_per_signature(_serialise_saves(dispatcher))
        return _linking.track(_linking.cache_needs(dispatcher))
    return decorate


def single(a) -> bool:
    """True when array ``a`` holds float32. In a kernel a constant of the compiled signature:
    ``if single(z):`` compiles only the branch that signature runs (``z.itemsize == 4`` is read
    at run time, so a float32 kernel would carry its float64 code too, and the other way)."""
    return a.dtype == np.float32


@overload(single, inline="always")
def _single(a):
    value = isinstance(a, types.Array) and a.dtype == types.float32
    return lambda a: np.bool_(value)      # a bool, not a literal: passed on, one specialisation


# _nrt=True said, not inherited: Numba compiles a function first called from a compile under
# way with that compile's reference counting, so a kernel first called from a helper would be
# compiled (and cached) without it
kernel = _decorator(False, cache=True, nogil=True, error_model="numpy", _nrt=True)
pkernel = _decorator(False, cache=True, nogil=True, parallel=True, error_model="numpy",
                     _nrt=True)
jit = _decorator(True, cache=True, nogil=True, error_model="numpy")
pjit = _decorator(True, cache=True, nogil=True, parallel=True, error_model="numpy")
