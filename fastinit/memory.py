"""Memory a request needs against the memory this process can still use: checked before the
allocation, so a request that cannot fit fails at once with fastinit's MemoryError (naming
what asked, the bytes and what to lower) instead of NumPy's, or Numba's bare "Allocation
failed" from inside a kernel."""
from __future__ import annotations

import os

import numba

from .spread import lanes


def available_memory() -> int:
    """Bytes this process can still allocate without swapping: MemAvailable on Linux, else
    the physical memory. (One read of /proc/meminfo: a file object and its lines took twice
    as long, 35 us, a tenth of a small network's fastinit.train call.)"""
    try:
        fd = os.open("/proc/meminfo", os.O_RDONLY)
        try:
            text = os.read(fd, 1 << 14)
        finally:
            os.close(fd)
        at = text.index(b"MemAvailable:")
        return int(text[at + 13:text.index(b"kB", at)]) * 1024
    except (OSError, ValueError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def check_memory(nbytes: int, what: str,
                 advice: str = "Use fewer members or smaller layers, or split the population."
                 ) -> None:
    """Raise MemoryError, naming ``what`` and the bytes, when ``nbytes`` exceeds the memory
    available: before the allocation, so a request that cannot fit fails in a moment."""
    if nbytes <= 0:                     # nothing to allocate (fastinit.train with sgd)
        return
    avail = available_memory()
    if nbytes > avail:
        raise MemoryError(f"{what} need about {nbytes / 1e9:.3g} GB but {avail / 1e9:.3g} GB "
                          f"of memory is available. {advice}")


SCRATCH_UNCHECKED = 1 << 26    # check_scratch reads the free memory (10 us) from 64 MiB up


def check_scratch(net, batches, func: str, knob: str, threads: int | None = None) -> None:
    """MemoryError naming ``func`` before any work when the scratch of ``net``'s passes
    cannot fit: ``batches`` is [(tasks, batch)], a pass's scratch over ``batch`` samples for
    each of ``tasks`` run at once on ``threads`` (default: Numba's count; spread.lanes). A
    pass whose kernel allocated it would have failed with Numba's bare "Allocation failed",
    and one through NumPy after the work before it. ``knob``: the setting that sets the
    batch."""
    T = numba.get_num_threads() if threads is None else threads
    need = sum(lanes(tasks, T) * net._scratch_size(batch)
               for tasks, batch in batches) * net.dtype.itemsize
    if need < SCRATCH_UNCHECKED:
        return
    check_memory(need, f"{func}: the scratch of {net.depth}-layer passes over batches of "
                       f"{', '.join(str(b) for _, b in batches)} samples",
                 f"Use a smaller {knob}, fewer or narrower layers, or fewer threads.")
