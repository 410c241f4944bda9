"""Large buffers go back to the OS when freed (glibc), so peak memory stays flat on long clips.

Scoring allocates and frees frame chunks and float batches of 1-50 MB thousands of times.
glibc raises its mmap threshold to the size of each such block freed (up to 32 MB), after
which these blocks come from the heap, which fragments: measured on one 40 s 512 px clip,
peak RSS 2.80 GB against 2.03 GB with the threshold fixed at 2 MB (bench/bench_memory.py).
Fixing the threshold (``mallopt(M_MMAP_THRESHOLD)``, also what the ``MALLOC_MMAP_THRESHOLD_``
environment variable does) keeps such blocks in their own mappings. Written by hand: no
library exposes mallopt; elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
THRESHOLD = 2 << 20  # blocks from 2 MB up: a few frames, every chunk and batch

_done = False


def map_large_blocks() -> bool:
    """Fix glibc's mmap threshold (once per process); False where it cannot be (not glibc,
    or the user set MALLOC_MMAP_THRESHOLD_ themselves, which wins)."""
    global _done
    if _done or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return _done
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        _done = bool(libc.mallopt(M_MMAP_THRESHOLD, THRESHOLD))
    except (OSError, AttributeError):
        _done = False
    return _done
