"""The huge-pages restart of scoring commands (auhead_bench.malloc.with_huge_pages)."""

from __future__ import annotations

import platform
import sys

import numpy as np
import pytest

from auhead_bench import malloc

glibc = pytest.mark.skipif(
    sys.platform != "linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")


@glibc
def test_restarts_once_with_the_tunable_added(monkeypatch):
    calls = []
    monkeypatch.setattr(malloc.os, "execve", lambda *args: calls.append(args))
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")
    monkeypatch.delenv("AUHEAD_BENCH_HUGE_PAGES", raising=False)
    malloc.with_huge_pages(["run", "--out", "x"])
    (path, argv, env), = calls
    assert path == sys.executable
    assert argv == [sys.executable, "-m", "auhead_bench.cli", "run", "--out", "x"]
    assert env["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"


@pytest.mark.parametrize("env", [{"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"},
                                 {"AUHEAD_BENCH_HUGE_PAGES": "0"}])
def test_no_restart_when_set_or_turned_off(monkeypatch, env):
    monkeypatch.setattr(malloc.os, "execve", lambda *args: pytest.fail("restarted"))
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    malloc.with_huge_pages(["run"])  # returns: the command runs in this process


def test_only_a_long_video_fixes_the_mmap_threshold(tmp_path, monkeypatch):
    """Short clips keep glibc's reuse of freed blocks (the fixed threshold's page faults
    cost the cold demo ~15%); a video past LONG_VIDEO_BYTES of decoded frames switches the
    process to mapped large blocks, before its next chunk is read."""
    from auhead_bench import media

    calls = []
    monkeypatch.setattr(media, "map_large_blocks", lambda: calls.append(1))
    frames = np.zeros((20, 16, 16, 3), np.uint8)
    path = tmp_path / "v.mp4"
    media.write_video(path, frames)
    monkeypatch.setattr(media, "LONG_VIDEO_BYTES", 10 * frames[0].nbytes)
    chunks = media.iter_frames(path, chunk_frames=4)
    for _ in range(2):  # 8 frames decoded: short so far
        next(chunks)
    assert not calls
    next(chunks)  # 12 frames: long
    assert calls
    list(chunks)

    calls.clear()
    monkeypatch.setattr(media, "LONG_VIDEO_BYTES", 20 * frames[0].nbytes)
    assert sum(len(c) for c in media.iter_frames(path, chunk_frames=4)) == 20
    assert not calls  # exactly the limit is not over it


@pytest.mark.parametrize(("command", "given", "expected"), [
    ("run", None, "PASSIVE"), ("parity", None, "PASSIVE"),
    ("run", "ACTIVE", "ACTIVE"),  # the user's setting wins
    ("ls", None, None),  # not a scoring command: the environment is left alone
])
def test_scoring_commands_let_idle_openmp_workers_sleep(monkeypatch, command, given, expected):
    from auhead_bench import cli

    environ = {} if given is None else {"OMP_WAIT_POLICY": given}
    monkeypatch.setattr(cli.os, "environ", environ)
    monkeypatch.setattr(cli.sys, "argv", ["auhead-bench", command])
    monkeypatch.setattr(malloc, "with_huge_pages", lambda argv: None)
    monkeypatch.setattr(cli, "main", lambda: None)
    cli.entry()
    assert environ.get("OMP_WAIT_POLICY") == expected


def test_a_large_frame_or_image_fixes_the_mmap_threshold_at_once(tmp_path, monkeypatch):
    """A 4K clip of 1 s peaked at 12.1 GB before the long-video limit was reached."""
    from PIL import Image

    from auhead_bench import media

    calls = []
    monkeypatch.setattr(media, "map_large_blocks", lambda: calls.append(1))
    frames = np.zeros((8, 16, 16, 3), np.uint8)
    media.write_video(tmp_path / "v.mp4", frames)
    Image.fromarray(frames[0]).save(tmp_path / "r.png")
    media.read_image(tmp_path / "r.png")
    next(media.iter_frames(tmp_path / "v.mp4", chunk_frames=4))
    assert not calls  # small frames, short video
    monkeypatch.setattr(media, "LARGE_FRAME_BYTES", frames[0].nbytes)
    media.read_image(tmp_path / "r.png")
    assert calls == [1]
    next(media.iter_frames(tmp_path / "v.mp4", chunk_frames=4))
    assert calls == [1, 1]
