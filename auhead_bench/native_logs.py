"""Silences what native libraries print straight to the process's stderr.

mediapipe's graph (absl logging in C++) writes INFO/WARNING lines to file descriptor 2 the
first time a FaceMesh processes a frame, and protobuf warns about a deprecated call; neither
can be turned off by an environment variable or Python's logging, and they filled a run's
output. Python exceptions are unaffected: errors still raise.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the block (and ignore protobuf's
    deprecation warning), then restore it."""
    try:
        sys.stderr.flush()
    except (AttributeError, ValueError):
        pass
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"SymbolDatabase\.GetPrototype")
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def ignore_protobuf_deprecation() -> None:
    """mediapipe 0.10.14 calls protobuf's deprecated ``GetPrototype`` on every result: a
    warning per video that says nothing to a user (process-wide, this one message only)."""
    warnings.filterwarnings("ignore", message=r"SymbolDatabase\.GetPrototype", category=UserWarning)
