"""A content-addressed cache for generations, features and per-clip scores.

Every entry is a folder named by the sha256 of what produced it. An entry is built in a
private temp folder and renamed into place in one step, so a run killed at any moment leaves
either a whole entry or none; the rename is also what makes two runs sharing one cache safe.
The files are the truth; a small SQLite index records what is there (kind, label, size) for
listing and clean-up; ``repair_index`` rebuilds it from the files if a kill or a full disk
skipped an insert.

A full disk (ENOSPC, EDQUOT, SQLite's "database or disk is full") met while writing raises
DiskFullError, one line naming the folder: the run stops instead of failing clip after clip,
and since entries and records appear whole or not at all, the same command resumes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from auhead_bench.errors import (
    BenchError,
    DiskFullError,
    disk_full,
    is_disk_full,
    unwritable,
)

DEFAULT_CACHE = Path(os.environ.get("AUHEAD_BENCH_CACHE", Path.home() / ".cache" / "auhead-bench"))


def current_umask() -> int:
    """The process's umask, read without changing it where the OS allows (Linux /proc)."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore at once
    os.umask(mask)
    return mask


def publish_mode(path: str | Path, folder: bool = False) -> None:
    """Give a file or folder made by mkstemp/mkdtemp (always 0600/0700) the mode a plain
    ``open``/``mkdir`` would have: 0666/0777 less the umask. Records, tables and a cache
    shared on a cluster are then readable by whoever the umask lets read them."""
    os.chmod(path, (0o777 if folder else 0o666) & ~current_umask())


def content_key(**parts: Any) -> str:
    """sha256 of the canonical JSON of ``parts``: the same inputs always give the same key."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@contextmanager
def disk_full_stops(folder: Path, writing: str) -> Iterator[None]:
    """Raise a full disk met inside the block as DiskFullError naming ``folder``; any other
    error passes unchanged."""
    try:
        yield
    except DiskFullError:
        raise
    except Exception as exc:
        if is_disk_full(exc):
            raise disk_full(exc, folder, writing) from exc
        refused = unwritable(exc, folder, writing)
        if refused is not None:
            raise refused from exc
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Write text through a temp file and a rename: readers never see half a file, and a
    full disk leaves the old file (or none) and raises DiskFullError."""
    path = Path(path)
    with disk_full_stops(path.parent, path.name):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            publish_mode(tmp)
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def write_json_atomic(path: Path, data: Any, sort_keys: bool = False) -> None:
    """Write JSON through a temp file and a rename (see ``write_text_atomic``).

    Keys keep their order by default (a record's metrics stay in the configured order).
    """
    text = json.dumps(data, indent=2, sort_keys=sort_keys, allow_nan=False) + "\n"
    write_text_atomic(path, text)


# A temp folder's name says which process made it: <what>-<host>-<pid>-<random>.
TMP_NAME = re.compile(r"(?P<what>.+)-(?P<host>[^-/]+)-(?P<pid>\d+)-(?P<random>[a-z0-9_]+)")
TMP_MAX_AGE = 24 * 3600.0  # another host's temp folder is stale after a day


# Folders of the cache root that hold no entries: unfinished entries (tmp) and the
# datasets' own scratch files (crops, probe caches), which ``put`` never writes.
NOT_ENTRIES = ("tmp", "datasets")

class Cache:
    """Entries live at ``root/<kind>/<key[:2]>/<key>/``."""

    def __init__(self, root: Path):
        self.root = Path(root)
        try:
            with disk_full_stops(self.root, "the cache folder"):
                self.root.mkdir(parents=True, exist_ok=True)
                (self.root / "tmp").mkdir(exist_ok=True)
        except OSError as exc:  # not a full disk: that is a DiskFullError already
            raise BenchError(
                f"cannot create the cache folder ({exc.strerror})",
                path=self.root,
                fix="pass a writable --cache-dir or set AUHEAD_BENCH_CACHE",
            ) from exc
        self._db_path = self.root / "index.sqlite"
        with disk_full_stops(self.root, "the cache index"), self._db() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS entries (kind TEXT, key TEXT, label TEXT,"
                " bytes INTEGER, created REAL, PRIMARY KEY (kind, key))"
            )

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self._db_path, timeout=60)
        try:
            with db:
                yield db
        finally:
            db.close()

    def path(self, kind: str, key: str) -> Path:
        return self.root / kind / key[:2] / key

    def get(self, kind: str, key: str) -> Path | None:
        """The entry's folder if it is complete, else None."""
        path = self.path(kind, key)
        return path if path.is_dir() else None

    @contextmanager
    def put(self, kind: str, key: str, label: str = "", replace: bool = False) -> Iterator[Path]:
        """Yield an empty folder to fill; on success it becomes the entry, atomically.

        An existing entry is kept (same key, same content) unless ``replace``: then it is
        moved aside just before the new one is renamed into place, so a failure while filling
        the folder leaves the old entry whole. A full disk, in the caller's block too (a
        method writing its video), removes the temp folder and raises DiskFullError.
        """
        final = self.path(kind, key)
        writing = f"a {kind} cache entry"
        with disk_full_stops(self.root, writing):
            prefix = _tmp_prefix(f"{kind}-{key[:12]}")
            tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=self.root / "tmp"))
        try:
            publish_mode(tmp, folder=True)
            yield tmp
            final.parent.mkdir(parents=True, exist_ok=True)
            if replace:
                self._move_aside(final)
            try:
                os.rename(tmp, final)
            except OSError:
                if not final.is_dir():  # not "someone else finished it first"
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(exc, Exception) and not isinstance(exc, DiskFullError):
                if is_disk_full(exc):
                    raise disk_full(exc, self.root, writing) from exc
                refused = unwritable(exc, self.root, writing)
                if refused is not None:
                    raise refused from exc
            raise
        self._index(kind, key, label, final)

    def remove(self, kind: str, key: str) -> bool:
        """Delete an entry; False if there was none. Readers see the whole entry or none."""
        removed = self._move_aside(self.path(kind, key))
        with disk_full_stops(self.root, "the cache index"), self._db() as db:
            db.execute("DELETE FROM entries WHERE kind = ? AND key = ?", (kind, key))
        return removed

    def _move_aside(self, path: Path) -> bool:
        """Rename an entry into tmp/ (one step: it vanishes whole), then delete it there."""
        trash = Path(tempfile.mkdtemp(prefix=_tmp_prefix("removed"), dir=self.root / "tmp"))
        try:
            os.rename(path, trash / "entry")
            return True
        except FileNotFoundError:
            return False
        finally:
            shutil.rmtree(trash, ignore_errors=True)

    def _index(self, kind: str, key: str, label: str, path: Path) -> None:
        """Record a finished entry. On a full disk the entry itself is whole and is found by
        ``get``; only its row is missing until ``repair_index``."""
        size = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
        with disk_full_stops(self.root, "the cache index"), self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?)",
                (kind, key, label, size, time.time()),
            )

    def _on_disk(self) -> dict[tuple[str, str], Path]:
        """Every finished entry folder, by (kind, key)."""
        return {
            (kind_dir.name, entry.name): entry
            for kind_dir in self.root.iterdir()
            if kind_dir.is_dir() and kind_dir.name not in NOT_ENTRIES
            for entry in kind_dir.glob("*/*")
            if entry.is_dir()
        }

    def indexed(self) -> set[tuple[str, str]]:
        """(kind, key) of every row of the index."""
        with self._db() as db:
            return set(db.execute("SELECT kind, key FROM entries"))

    def repair_index(self) -> int:
        """Make the index match the files: add the entries a kill or a full disk left without
        a row, drop rows whose folder is gone. Returns how many rows changed. Safe while other
        runs write: rows are only added for folders that exist, removed for ones that don't."""
        rows = self.indexed()  # rows first: a row inserted after this is never dropped
        on_disk = self._on_disk()
        missing = sorted(on_disk.keys() - rows)
        stale = sorted(rows - on_disk.keys())
        with disk_full_stops(self.root, "the cache index"), self._db() as db:
            for kind, key in missing:  # IGNORE: a run's own insert (with its label) wins
                path = on_disk[(kind, key)]
                size = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
                db.execute(
                    "INSERT OR IGNORE INTO entries VALUES (?, ?, ?, ?, ?)",
                    (kind, key, "", size, path.stat().st_mtime),
                )
            for kind, key in stale:
                if not self.path(kind, key).is_dir():
                    db.execute("DELETE FROM entries WHERE kind = ? AND key = ?", (kind, key))
        return len(missing) + len(stale)

    def read_json(self, kind: str, key: str, name: str = "value.json") -> Any | None:
        path = self.get(kind, key)
        if path is None or not (path / name).is_file():
            return None
        return json.loads((path / name).read_text())

    def write_json(self, kind: str, key: str, data: Any, label: str = "") -> None:
        """A one-file entry (a per-clip score); a full disk raises DiskFullError (``put``)."""
        with self.put(kind, key, label) as folder:
            (folder / "value.json").write_text(json.dumps(data, sort_keys=True, allow_nan=False))

    def summary(self) -> dict[str, dict[str, int]]:
        """Entries and bytes per kind, counted from the files themselves."""
        result: dict[str, dict[str, int]] = {}
        kinds = (p for p in self.root.iterdir() if p.is_dir() and p.name not in NOT_ENTRIES)
        for kind_dir in sorted(kinds):
            count = size = 0
            for entry in kind_dir.glob("*/*"):
                if entry.is_dir():
                    count += 1
                    size += sum(f.stat().st_size for f in entry.iterdir() if f.is_file())
            result[kind_dir.name] = {"entries": count, "bytes": size}
        return result

    def clean_tmp(self, max_age: float = TMP_MAX_AGE) -> list[Path]:
        """Remove the temp folders of killed runs; returns those removed.

        Safe while other runs share the cache: a folder is removed only if the process that
        made it (named in the folder, with its host) is gone from this host, or, made on
        another host or by an older version, when it is older than ``max_age`` seconds. A
        live run's temp folder is never taken from under it.
        """
        removed = []
        now = time.time()
        host = _host()
        for leftover in (self.root / "tmp").iterdir():
            match = TMP_NAME.fullmatch(leftover.name)
            try:
                age = now - leftover.stat().st_mtime
            except FileNotFoundError:  # its run finished meanwhile
                continue
            if match and match["host"] == host:
                stale = not _alive(int(match["pid"]))
            else:
                stale = age > max_age
            if stale:
                shutil.rmtree(leftover, ignore_errors=True)
                removed.append(leftover)
        return removed




def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname()) or "host"


def _tmp_prefix(what: str) -> str:
    return f"{what}-{_host()}-{os.getpid()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True
