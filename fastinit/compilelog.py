"""A word while kernels compile, and a clock that keeps compiling out of reported times.

fastinit's kernels compile on first use (tens of seconds on a new machine: 30-40 s for
``fastinit demo``) and load from the on-disk cache afterwards (kernels/_config.py). Numba's
event API (``numba.core.event``, public and documented) reports both:

    "numba:compile"        a dispatcher compiling a signature found neither in memory nor in
                           the on-disk cache (nested: the helpers it compiles on the way)
    "numba:compiler_lock"  every stay in Numba's compiler lock: compiling, loading compiled
                           code from the cache, and waiting while another thread compiles

Two listeners, registered when fastinit is imported (registering compiles nothing):

- The notice. When a fastinit kernel that is not cached starts compiling, the ``fastinit``
  logger says COMPILING (INFO), once; when the call that compiled is done, COMPILED with the
  seconds. "The call" is the outermost ``announcing()`` block open in the process (a CLI
  command, ``fastinit.train``, a sweep's population) or else the compiling kernel call itself;
  a block that compiles nothing says nothing. The CLI shows INFO on stderr; as a library,
  fastinit stays quiet until the application configures logging::

      import logging; logging.basicConfig(level=logging.INFO)    # see the notice

- The clock. ``seconds()`` is the time this thread has spent in Numba's compiler lock so far;
  a timing takes the difference away to report the work alone (History.compile_time, the
  store's ``compile_s``).
"""
from __future__ import annotations

import logging
import sys
import threading
import time
from contextlib import contextmanager

from numba.core import event

from .kernels import _config

LOGGER = logging.getLogger("fastinit")
COMPILING = "compiling fastinit kernels for this machine (first run only) ..."
COMPILED = "fastinit kernels compiled in {seconds:.1f} s; cached in {where} for the next run"
NOT_CACHED = "fastinit kernels compiled in {seconds:.1f} s (no writable cache directory: " \
             "set NUMBA_CACHE_DIR to keep them for the next run)"
_KERNELS = _config.__name__.rpartition(".")[0]       # "fastinit.kernels"


class _Notice:
    """Process-wide: compiles are serialised by Numba's compiler lock, so one depth counter
    sees them all, whichever thread compiles."""

    def __init__(self):
        self.lock = threading.Lock()
        self.depth = 0          # nesting of fastinit compile events
        self.started = 0.0
        self.blocks = 0         # announcing() blocks open, in any thread
        self.announced = False  # COMPILING said, COMPILED not yet
        self.pending = 0.0      # seconds compiled since COMPILING
        self.total = 0.0        # seconds compiled in this process


_NOTICE = _Notice()


def _ours(ev) -> bool:
    dispatcher = (ev.data or {}).get("dispatcher")
    module = getattr(getattr(dispatcher, "py_func", None), "__module__", "") or ""
    return module == _KERNELS or module.startswith(_KERNELS + ".")


def _done() -> str | None:
    """COMPILED for what was compiled since COMPILING (and forget it); call under the lock."""
    n = _NOTICE
    if not n.announced:
        return None
    seconds, n.announced, n.pending = n.pending, False, 0.0
    where = _config.CACHE_DIR
    return (COMPILED if where else NOT_CACHED).format(seconds=seconds, where=where)


class _Compiles(event.Listener):
    def on_start(self, ev):
        if not _ours(ev):
            return
        n = _NOTICE
        with n.lock:
            n.depth += 1
            say = n.depth == 1 and not n.announced
            if n.depth == 1:
                n.started = time.perf_counter()
                n.announced = True
        if say:
            LOGGER.info(COMPILING)

    def on_end(self, ev):
        if not _ours(ev):
            return
        n = _NOTICE
        with n.lock:
            if n.depth == 0:      # began before this listener was registered (fastinit
                return            # imported while Numba compiled): not ours to time
            n.depth -= 1
            if n.depth:
                return
            took = time.perf_counter() - n.started
            n.pending += took
            n.total += took
            message = _done() if n.blocks == 0 else None
        if message:
            LOGGER.info(message)


class _Clock(event.Listener):
    """Per thread: seconds spent in Numba's compiler lock (outermost stays only)."""

    def __init__(self):
        self.local = threading.local()

    def on_start(self, ev):
        local = self.local
        depth = getattr(local, "depth", 0)
        if depth == 0:
            local.started = time.perf_counter()
        local.depth = depth + 1

    def on_end(self, ev):
        local = self.local
        if getattr(local, "depth", 0) == 0:     # began before the listener was registered
            return
        local.depth -= 1
        if local.depth == 0:
            local.seconds = getattr(local, "seconds", 0.0) + time.perf_counter() - local.started


_CLOCK = _Clock()
event.register("numba:compile", _Compiles())
event.register("numba:compiler_lock", _CLOCK)


def seconds() -> float:
    """Seconds this thread has spent compiling kernels or loading them from the cache so far."""
    return getattr(_CLOCK.local, "seconds", 0.0)


def compiled_seconds() -> float:
    """Seconds this process has spent compiling fastinit kernels (not loading them)."""
    with _NOTICE.lock:
        return _NOTICE.total


def flush() -> None:
    """Say COMPILED now for what was compiled so far, even inside a block: for a command whose
    compiling is over before it prints its results."""
    with _NOTICE.lock:
        message = _done()
    if message:
        LOGGER.info(message)


class Block:
    """What an ``announcing()`` block saw: ``compiled`` (seconds compiling fastinit kernels, in
    any thread) and ``ready`` (seconds this thread spent compiling or loading kernels, waiting
    included), both counted while the block is open."""

    def __init__(self):
        self._compiled0, self._ready0 = compiled_seconds(), seconds()
        self._end = None

    @property
    def compiled(self) -> float:
        return (self._end or (compiled_seconds(), seconds()))[0] - self._compiled0

    @property
    def ready(self) -> float:
        return (self._end or (compiled_seconds(), seconds()))[1] - self._ready0

    def close(self):
        self._end = (compiled_seconds(), seconds())


@contextmanager
def announcing():
    """A call that may compile: the notice's COMPILED comes when the outermost block open in
    the process closes, with every second compiled inside it. Yields a Block."""
    n = _NOTICE
    with n.lock:
        n.blocks += 1
    block = Block()
    try:
        yield block
    finally:
        block.close()
        with n.lock:
            n.blocks -= 1
            message = _done() if n.blocks == 0 else None
        if message:
            LOGGER.info(message)


class Elsewhere:
    """What an ``elsewhere()`` block took: ``seconds``, wall."""
    seconds = 0.0


@contextmanager
def elsewhere():
    """Kernels compiled for this process by others (fastinit.warmup's processes): the notice
    says COMPILING now and counts the block's wall time as compiled here, and so does this
    thread's clock (``seconds``), whatever part of it this process spent compiling or loading
    itself. Yields an Elsewhere."""
    n = _NOTICE
    with n.lock:
        say = not n.announced
        n.announced = True
    if say:
        LOGGER.info(COMPILING)
    done = Elsewhere()
    t0, compiled0, ready0 = time.perf_counter(), compiled_seconds(), seconds()
    try:
        yield done
    finally:
        done.seconds = time.perf_counter() - t0
        local = _CLOCK.local
        local.seconds = getattr(local, "seconds", 0.0) + max(
            0.0, done.seconds - (seconds() - ready0))
        with n.lock:
            extra = max(0.0, done.seconds - (n.total - compiled0))
            n.pending += extra
            n.total += extra
            message = _done() if n.blocks == 0 else None
        if message:
            LOGGER.info(message)


class _Stderr(logging.StreamHandler):
    """One plain line per notice on stderr; on a terminal, the line a progress bar was drawing
    is cleared first."""

    def emit(self, record):
        if getattr(self.stream, "isatty", lambda: False)():
            self.stream.write("\r\033[K")
        super().emit(record)


@contextmanager
def on_stderr(level: int = logging.INFO):
    """Show the fastinit logger's messages from ``level`` up on stderr while the block runs
    (the CLI's setting: the notice shown unless --quiet)."""
    handler = _Stderr(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    before = LOGGER.level
    LOGGER.addHandler(handler)
    LOGGER.setLevel(level)
    try:
        yield
    finally:
        LOGGER.removeHandler(handler)
        LOGGER.setLevel(before)
