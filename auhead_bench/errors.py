"""User-facing errors: one line that names the file (or id) at fault and the fix."""

from __future__ import annotations

import difflib
import errno
import sqlite3
from collections.abc import Iterable, Iterator
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


class UnwritableError(DiskFullError):
    """A folder the run writes to became unwritable (permissions, read-only mount). Stops
    the run like a full disk, with the same promise: finished work is kept."""


# Permission denied / read-only file system: the folder stopped taking writes.
UNWRITABLE_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
UNWRITABLE_FIX = (
    "make it writable again (chmod/chown, remount) or point --cache-dir/--out elsewhere; "
    "finished work is kept: run the same command again to resume"
)


def unwritable(exc: BaseException, folder: str | Path, writing: str) -> UnwritableError | None:
    """The one-line error if ``exc`` (or its cause) is a write refused under ``folder``."""
    for current in _chain(exc):
        if isinstance(current, UnwritableError):
            return current
        if isinstance(current, OSError) and current.errno in UNWRITABLE_ERRNOS:
            name = current.filename
            if name is None or not str(Path(name).resolve()).startswith(
                str(Path(folder).resolve())
            ):
                return None  # not a file of this folder (a method's input): not its fault
            return UnwritableError(
                f"cannot write {writing} ({current.strerror or 'permission denied'})",
                path=folder,
                fix=UNWRITABLE_FIX,
            )
    return None


# A quota is a full disk for the user who hits it: same cause, same fix.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
DISK_FULL_FIX = (
    "free space on that disk or point --cache-dir/--out elsewhere; finished work is kept: "
    "run the same command again to resume"
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the exceptions it was raised from or during, each once."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _full_errno(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc``, or an exception it was raised from, says the disk or quota is full.

    The chain is followed because a plugin may wrap the OSError of a write in its own error.
    SQLite reports a full disk as SQLITE_FULL, "database or disk is full".
    """
    for current in _chain(exc):
        if isinstance(current, DiskFullError) or _full_errno(current):
            return True
        if isinstance(current, sqlite3.Error) and (
            (getattr(current, "sqlite_errorcode", 0) or 0) & 0xFF == sqlite3.SQLITE_FULL
            or "database or disk is full" in str(current)
        ):
            return True
    return False


def disk_full(exc: BaseException, folder: str | Path, writing: str) -> DiskFullError:
    """The one-line error for a full disk met while writing ``writing`` under ``folder``."""
    if isinstance(exc, DiskFullError):
        return exc
    cause = next((c for c in _chain(exc) if _full_errno(c)), None)
    reason = cause.strerror if isinstance(cause, OSError) and cause.strerror else one_line(exc)
    return DiskFullError(
        f"out of disk space while writing {writing} ({reason})", path=folder, fix=DISK_FULL_FIX
    )


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
