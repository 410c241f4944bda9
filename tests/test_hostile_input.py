"""Issue 14, hostile input and first use: each bad input or surrounding is one line naming
the file (or folder) and the fix, or a flag in the record; nothing is silently wrong."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
from conftest import make_audio, make_frames

from auhead_bench import media
from auhead_bench.cache import Cache, write_json_atomic


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask():
    """Set a umask for the test; the old one comes back after."""
    old = os.umask(0o022)
    os.umask(old)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    yield set_mask
    os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o002])
def test_written_files_and_entries_follow_the_umask(tmp_path, umask, mask):
    """Records, tables, cache entries and videos were 0600/0700 whatever the umask."""
    from auhead_bench.table import write_tables

    umask(mask)
    write_json_atomic(tmp_path / "out" / "records" / "r.json", {"a": 1})
    assert mode(tmp_path / "out" / "records" / "r.json") == 0o666 & ~mask
    cache = Cache(tmp_path / "cache")
    with cache.put("scores", "ab" * 32) as folder:
        (folder / "value.json").write_text("1")
    entry = cache.get("scores", "ab" * 32)
    assert mode(entry) == 0o777 & ~mask
    assert mode(entry / "value.json") == 0o666 & ~mask
    media.write_video(tmp_path / "v.mp4", make_frames(3, 16), make_audio(0.12))
    assert mode(tmp_path / "v.mp4") == 0o666 & ~mask
    write_tables([], tmp_path / "out")
    assert mode(tmp_path / "out" / "table.md") == 0o666 & ~mask
