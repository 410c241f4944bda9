"""Weight files are hashed once per file version, across processes, and again when they change."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from auhead_bench import weights


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A fresh cache root and an empty in-process memo; counts the real hashing calls."""
    monkeypatch.setenv("AUHEAD_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(weights, "_HASHES", {})
    calls = []
    real = weights.sha256_file
    monkeypatch.setattr(weights, "sha256_file", lambda p: calls.append(p) or real(p))
    return calls


def big_file(path, fill: bytes = b"a"):
    path.write_bytes(fill * weights.PERSIST_MIN_BYTES)
    return path


def new_process() -> None:
    weights._HASHES.clear()


def test_a_file_version_is_hashed_once_across_processes(tmp_path, store):
    path = big_file(tmp_path / "w.pt")
    first = weights.file_sha256(path)
    new_process()
    assert weights.file_sha256(path) == first
    assert len(store) == 1
    assert weights.hash_store().is_file()


def test_a_rewritten_file_is_hashed_again(tmp_path, store):
    path = big_file(tmp_path / "w.pt")
    first = weights.file_sha256(path)
    stat = path.stat()
    with open(path, "r+b") as handle:  # same size, same inode, new bytes
        handle.write(b"b")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    new_process()
    assert weights.file_sha256(path) != first
    assert len(store) == 2


def test_a_replaced_file_with_the_old_size_and_mtime_is_hashed_again(tmp_path, store):
    """A pull replaces the file (os.replace: a new inode); even if size and mtime match the old
    version's (a copy that keeps timestamps), the inode tells the versions apart."""
    path = big_file(tmp_path / "w.pt")
    first = weights.file_sha256(path)
    stat = path.stat()
    staged = big_file(tmp_path / "staged", b"c")
    os.utime(staged, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(staged, path)
    assert path.stat().st_ino != stat.st_ino
    new_process()
    assert weights.file_sha256(path) != first
    assert len(store) == 2


def test_an_unwritable_store_only_costs_the_hashing(tmp_path, store, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("AUHEAD_BENCH_CACHE", str(blocker))
    path = big_file(tmp_path / "w.pt")
    digest = weights.file_sha256(path)
    new_process()
    assert weights.file_sha256(path) == digest
    assert len(store) == 2


def test_small_files_are_not_persisted(tmp_path, store):
    path = tmp_path / "image.png"
    path.write_bytes(b"tiny")
    weights.file_sha256(path)
    assert not weights.hash_store().exists()


def test_another_process_reuses_the_hash(tmp_path, store):
    """Really another interpreter: it finds the stored hash and never reads the file."""
    path = big_file(tmp_path / "w.pt")
    digest = weights.file_sha256(path)
    code = ("import sys; from pathlib import Path; from auhead_bench import weights\n"
            "weights.sha256_file = lambda p: sys.exit('hashed again')\n"
            "print(weights.file_sha256(Path(sys.argv[1])))")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                          text=True, env=os.environ.copy())
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == digest
