"""Large buffers go back to the OS when freed (glibc), so peak memory stays flat on long clips.

Scoring allocates and frees frame chunks and float batches of 1-50 MB thousands of times.
glibc raises its mmap threshold to the size of each such block freed (up to 32 MB), after
which these blocks come from the heap, which fragments: measured on one 40 s 512 px clip,
peak RSS 2.80 GB against 2.03 GB with the threshold fixed at 2 MB (bench/bench_memory.py).
Fixing the threshold (``mallopt(M_MMAP_THRESHOLD)``, also what the ``MALLOC_MMAP_THRESHOLD_``
environment variable does) keeps such blocks in their own mappings. Written by hand: no
library exposes mallopt; elsewhere than glibc this does nothing.

Each fresh mapping is then faulted in and zeroed page by page, which costs time on every
clip: the cold demo (clips of 2 s) ran ~15% slower with the threshold fixed from the start
(bench/README.md). So the threshold is fixed only once a video longer than
``LONG_VIDEO_BYTES`` of decoded frames, or a frame or image over ``LARGE_FRAME_BYTES``
(4K: a 1 s clip peaked at 12.1 GB otherwise, 1.96 GB with it), is met (``media.iter_frames``
and ``media.read_image`` call ``map_large_blocks``): short clips of small frames keep
glibc's reuse of freed blocks, long or large ones (whose fragmentation grows with their
length) get the mappings, for the rest of the process.
``glibc.malloc.hugetlb=1`` has glibc ask for transparent huge pages for those mappings (fewer
faults), but glibc reads tunables only when a process starts, so ``with_huge_pages`` restarts
the command once with it set.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import sys

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
THRESHOLD = 2 << 20  # blocks from 2 MB up: a few frames, every chunk and batch
LONG_VIDEO_BYTES = 128 << 20  # decoded frames of one video (10 s at 512 px is 197 MB)
LARGE_FRAME_BYTES = 8 << 20  # one frame (1920x1080 is 6.2 MB, 3840x2160 24.9 MB)

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


HUGE_PAGES = "glibc.malloc.hugetlb=1"


def with_huge_pages(argv: list[str]) -> None:
    """Restart this process as ``python -m auhead_bench.cli ARGV`` with glibc's transparent
    huge pages for malloc (``GLIBC_TUNABLES``), once; returns where that does not apply (not
    Linux/glibc, already set, or ``AUHEAD_BENCH_HUGE_PAGES=0``)."""
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    if (sys.platform != "linux" or platform.libc_ver()[0] != "glibc"
            or "glibc.malloc.hugetlb" in tunables
            or os.environ.get("AUHEAD_BENCH_HUGE_PAGES") == "0"):
        return
    env = dict(os.environ, GLIBC_TUNABLES=":".join(filter(None, [tunables, HUGE_PAGES])))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "auhead_bench.cli", *argv], env)
