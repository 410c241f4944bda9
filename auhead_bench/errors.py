"""User-facing errors: one line that names the file (or id) at fault and the fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path


class BenchError(Exception):
    """An error the user can fix. The CLI prints its message as one line, no traceback."""

    def __init__(self, message: str, *, path: str | Path | None = None, fix: str | None = None):
        self.path = str(path) if path is not None else None
        self.fix = fix
        self.message = message  # without the path and fix: for grouping and summaries
        parts = [f"{self.path}: {message}" if self.path else message]
        if fix:
            parts.append(f"fix: {fix}")
        super().__init__(" -- ".join(parts))


class MediaError(BenchError):
    """A video or audio file that cannot be used (missing, corrupt, empty, no face...)."""


class ConfigError(BenchError):
    """A run configuration that does not validate."""


class DiskFullError(BenchError):
    """No space left where the run writes. Stops the run: failing clip after clip would bury
    the cause. Finished cache entries and records are whole (atomic renames), so the same
    command resumes once space is freed."""


class UnknownPluginError(BenchError):
    """An id that no installed plugin registered."""

    def __init__(self, kind: str, name: str, known: Iterable[str], listing: str | None = None):
        known = sorted(known)
        # Ids name protocols ("ssim_gauss11_rgb"), so a bare family name ("ssim") should
        # suggest its members as well as near-typos.
        family = [k for k in known if name and name.lower() in k.lower()]
        close = list(
            dict.fromkeys(difflib.get_close_matches(name, known, n=3, cutoff=0.5) + family)
        )[:3]
        hint = f"did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        listing = listing or f"`auhead-bench ls {kind}s` lists the {len(known)} installed"
        super().__init__(
            f"unknown {kind} {name!r}" + (f"; {hint}" if hint else ""),
            fix=listing,
        )
        self.kind, self.name, self.suggestions = kind, name, close


def one_line(exc: BaseException) -> str:
    """Collapse an exception message to one line for terminal output and records."""
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())
