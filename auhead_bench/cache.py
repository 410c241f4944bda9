"""A content-addressed cache for generations, features and per-clip scores.

Every entry is a folder named by the sha256 of what produced it. An entry is built in a
private temp folder and renamed into place in one step, so a run killed at any moment leaves
either a whole entry or none; the rename is also what makes two runs sharing one cache safe.
The files are the truth; a small SQLite index records what is there (kind, label, size) for
listing and clean-up, and is repaired from the files if a kill skipped an insert.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from auhead_bench.errors import BenchError

DEFAULT_CACHE = Path(os.environ.get("AUHEAD_BENCH_CACHE", Path.home() / ".cache" / "auhead-bench"))


def content_key(**parts: Any) -> str:
    """sha256 of the canonical JSON of ``parts``: the same inputs always give the same key."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def write_json_atomic(path: Path, data: Any, sort_keys: bool = False) -> None:
    """Write JSON through a temp file and a rename: readers never see half a file.

    Keys keep their order by default (a record's metrics stay in the configured order).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=sort_keys, allow_nan=False)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Cache:
    """Entries live at ``root/<kind>/<key[:2]>/<key>/``."""

    def __init__(self, root: Path):
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            (self.root / "tmp").mkdir(exist_ok=True)
        except OSError as exc:
            raise BenchError(
                f"cannot create the cache folder ({exc.strerror})",
                path=self.root,
                fix="pass a writable --cache-dir or set AUHEAD_BENCH_CACHE",
            ) from exc
        self._db_path = self.root / "index.sqlite"
        with self._db() as db:
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
        the folder leaves the old entry whole.
        """
        final = self.path(kind, key)
        tmp = Path(tempfile.mkdtemp(prefix=f"{kind}-{key[:12]}-", dir=self.root / "tmp"))
        try:
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
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._index(kind, key, label, final)

    def remove(self, kind: str, key: str) -> bool:
        """Delete an entry; False if there was none. Readers see the whole entry or none."""
        removed = self._move_aside(self.path(kind, key))
        with self._db() as db:
            db.execute("DELETE FROM entries WHERE kind = ? AND key = ?", (kind, key))
        return removed

    def _move_aside(self, path: Path) -> bool:
        """Rename an entry into tmp/ (one step: it vanishes whole), then delete it there."""
        trash = Path(tempfile.mkdtemp(prefix="removed-", dir=self.root / "tmp"))
        try:
            os.rename(path, trash / "entry")
            return True
        except FileNotFoundError:
            return False
        finally:
            shutil.rmtree(trash, ignore_errors=True)

    def _index(self, kind: str, key: str, label: str, path: Path) -> None:
        size = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
        with self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?)",
                (kind, key, label, size, time.time()),
            )

    def read_json(self, kind: str, key: str, name: str = "value.json") -> Any | None:
        path = self.get(kind, key)
        if path is None or not (path / name).is_file():
            return None
        return json.loads((path / name).read_text())

    def write_json(self, kind: str, key: str, data: Any, label: str = "") -> None:
        with self.put(kind, key, label) as folder:
            (folder / "value.json").write_text(json.dumps(data, sort_keys=True, allow_nan=False))

    def summary(self) -> dict[str, dict[str, int]]:
        """Entries and bytes per kind, counted from the files themselves."""
        result: dict[str, dict[str, int]] = {}
        for kind_dir in sorted(p for p in self.root.iterdir() if p.is_dir() and p.name != "tmp"):
            count = size = 0
            for entry in kind_dir.glob("*/*"):
                if entry.is_dir():
                    count += 1
                    size += sum(f.stat().st_size for f in entry.iterdir() if f.is_file())
            result[kind_dir.name] = {"entries": count, "bytes": size}
        return result

    def clean_tmp(self) -> None:
        """Remove temp folders left by killed runs (safe only when no other run is active)."""
        for leftover in (self.root / "tmp").iterdir():
            shutil.rmtree(leftover, ignore_errors=True)
