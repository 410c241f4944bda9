"""Issue 14, hostile input and first use: each bad input or surrounding is one line naming
the file (or folder) and the fix, or a flag in the record; nothing is silently wrong."""

from __future__ import annotations

import os
import stat
from pathlib import Path

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


def test_a_run_removes_killed_runs_temp_folders_but_not_a_live_ones(tmp_path, video_factory):
    """Cache.clean_tmp had no caller: every killed run left its temp folders for ever."""
    import subprocess
    import time

    from auhead_bench.cache import _tmp_prefix
    from auhead_bench.config import RunConfig
    from auhead_bench.runner import Runner

    cache = Cache(tmp_path / "cache")
    tmp = cache.root / "tmp"
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = _tmp_prefix("x").split("-")[1]
    killed = tmp / f"generations-0123456789ab-{host}-{dead.pid}-abc_12"
    live = tmp / f"generations-0123456789ab-{host}-{os.getpid()}-def_34"
    elsewhere_new = tmp / "scores-0123456789ab-otherhost-1-ghi56"
    elsewhere_old = tmp / "scores-0123456789ab-otherhost-2-jkl78"
    old_style = tmp / "clips-0123456789ab-mn90"  # named before folders carried a pid
    for folder in (killed, live, elsewhere_new, elsewhere_old, old_style):
        folder.mkdir()
        (folder / "video.mp4").write_bytes(b"half")
    two_days = time.time() - 2 * 24 * 3600
    os.utime(elsewhere_old, (two_days, two_days))
    os.utime(old_style, (two_days, two_days))

    video_factory("data/a.mp4")
    config = RunConfig(
        methods=["ground_truth"],
        datasets=[{"id": "folder", "options": {"root": str(tmp_path / "data")}}],
        metrics=["psnr_rgb"],
        device="cpu",
        cache_dir=cache.root,
    )
    Runner(config, tmp_path / "out").run()
    assert sorted(p.name for p in tmp.iterdir()) == sorted([live.name, elsewhere_new.name])


def write_bomb(path: Path, side: int = 20000) -> Path:
    """A PNG of side x side pixels, all black: a few KB on disk, 1.2 GB once decoded."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\0" + b"\0" * side  # filter byte + one grey byte per pixel
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # 8-bit greyscale
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )
    return path


def folder_config(tmp_path: Path, labels: Path | None = None, dataset=None, **extra):
    from auhead_bench.config import RunConfig

    options = {"root": str(tmp_path / "data"), **(dataset or {})}
    if labels is not None:
        options["labels"] = str(labels)
    return RunConfig(
        methods=["ground_truth"],
        datasets=[{"id": "folder", "options": options}],
        metrics=["psnr_rgb"],
        device="cpu",
        cache_dir=tmp_path / "cache",
        **extra,
    )


def test_a_decompression_bomb_reference_is_a_media_error(tmp_path, video_factory):
    from auhead_bench.errors import BenchError, MediaError
    from auhead_bench.runner import Runner

    bomb = write_bomb(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 2_000_000
    with pytest.raises(MediaError) as info:
        media.read_image(bomb)
    assert str(info.value).startswith(f"{bomb}: image too large to decode")

    video_factory("data/a.mp4", seed=0)
    video_factory("data/b.mp4", seed=1)
    labels = tmp_path / "labels.csv"
    labels.write_text(f"clip_id,reference\na,{bomb}\nb,\n")
    with pytest.raises(BenchError) as stop:  # skip_bad_clips: false stops with one line
        Runner(folder_config(tmp_path, labels), tmp_path / "out").run()
    assert f"{bomb}: image too large" in str(stop.value) and "clip 'a'" in str(stop.value)

    config = folder_config(tmp_path, labels, skip_bad_clips=True)
    (record,) = Runner(config, tmp_path / "out2").run()
    assert record.clip_ids == ["b"]
    # the record names the file without this machine's path (auhead_bench.private_paths)
    assert "bomb.png: image too large to decode" in record.skipped_clips["a"]
    assert str(tmp_path) not in record.skipped_clips["a"]


def test_a_labels_csv_with_a_misspelt_column_is_an_error(tmp_path, video_factory):
    """`emotoin` used to drop every emotion label without a word."""
    from auhead_bench.errors import BenchError
    from auhead_bench_datasets.folder import Folder, FolderOptions

    video_factory("data/a.mp4")
    labels = tmp_path / "labels.csv"
    labels.write_text("clip_id,emotoin,intensity\na,happy,1\n")
    dataset = Folder(FolderOptions(root=tmp_path / "data", labels=labels), tmp_path / "c")
    with pytest.raises(BenchError) as info:
        dataset.clips()
    message = str(info.value)
    assert message.startswith(f"{labels}: labels CSV has unknown column(s) ['emotoin']")
    assert "'emotoin' -> 'emotion'" in message and "identity, emotion, intensity" in message


def test_an_unknown_emotion_label_is_an_error(tmp_path, video_factory):
    """`angyr` used to become neutral: in the folder dataset and in au_warp."""
    from auhead_bench.clip import Clip
    from auhead_bench.errors import BenchError
    from auhead_bench_datasets.folder import Folder, FolderOptions
    from auhead_bench_methods.au_warp import AUWarp, AUWarpOptions

    video_factory("data/a.mp4")
    labels = tmp_path / "labels.csv"
    labels.write_text("clip_id,emotion\na,angyr\n")
    dataset = Folder(FolderOptions(root=tmp_path / "data", labels=labels), tmp_path / "c")
    with pytest.raises(BenchError) as info:
        dataset.clips()
    message = str(info.value)
    assert message.startswith(f"{labels}: unknown emotion 'angyr' of clip 'a'")
    assert "angry, contempt, disgusted" in message
    labels.write_text("clip_id,emotion\na, Anger\n")  # a known alias is fine, and canonical
    assert dataset.clips()[0].emotion == "angry"

    clip = Clip(id="a", video=tmp_path / "data" / "a.mp4", emotion="angyr")
    with pytest.raises(BenchError) as info:
        AUWarp().generate(clip, AUWarpOptions(), 0, tmp_path / "out.mp4")
    message = str(info.value)
    assert "unknown emotion label 'angyr' of clip 'a'" in message and "happy" in message
    assert not (tmp_path / "out.mp4").exists()


def test_a_one_frame_clip_is_not_scored(tmp_path, video_factory):
    """static_frame scored PSNR 100 on a 1-frame clip: now below the folder dataset's
    min_frames it is excluded, and below the global minimum (2) it is a skipped clip."""
    from auhead_bench.errors import BenchError
    from auhead_bench.runner import Runner
    from auhead_bench_datasets.folder import Folder, FolderOptions

    video_factory("data/a.mp4", frames=20)
    video_factory("data/b.mp4", frames=1, audio=None)
    dataset = Folder(FolderOptions(root=tmp_path / "data", min_frames=16), tmp_path / "c")
    assert [c.id for c in dataset.clips()] == ["a"]
    assert dataset.fingerprint()["excluded"] == {"b": "1 frames at 25 fps < min_frames 16"}
    video_factory("data/c.mp4", frames=10)
    assert [c.id for c in dataset.clips()] == ["a"]  # 10 < 16 too

    (record,) = Runner(folder_config(tmp_path), tmp_path / "out").run()
    assert record.clip_ids == ["a", "c"]  # folder's min_frames defaults to the global 2

    # A dataset that lets it through (min_frames 1): the runner refuses to score it.
    config = folder_config(tmp_path, dataset={"min_frames": 1})
    with pytest.raises(BenchError) as info:
        Runner(config, tmp_path / "out").run()
    assert "clip has 1 frame(s) at 25 fps; at least 2 are needed" in str(info.value)
    assert "clip 'b'" in str(info.value)
    config = folder_config(tmp_path, dataset={"min_frames": 1}, skip_bad_clips=True)
    (record,) = Runner(config, tmp_path / "out").run()
    assert record.clip_ids == ["a", "c"]
    assert "at least 2 are needed" in record.skipped_clips["b"]


def test_audio_much_longer_than_the_video_is_flagged(tmp_path, cache_dir):
    """4 s of audio on a 1.2 s video used to pass unremarked."""
    from auhead_bench.clip import Clip
    from auhead_bench.prepare import prepare_clip

    media.write_video(tmp_path / "v.mp4", make_frames(30, 32), make_audio(1.2))
    media.write_wav(tmp_path / "long.wav", make_audio(4.0))
    media.write_wav(tmp_path / "close.wav", make_audio(1.3))  # within the 0.2 s tolerance
    cache = Cache(cache_dir)
    long = prepare_clip(Clip(id="l", video=tmp_path / "v.mp4", audio=tmp_path / "long.wav"), cache)
    assert "audio_video_mismatch" in long.flags
    close = Clip(id="c", video=tmp_path / "v.mp4", audio=tmp_path / "close.wav")
    assert prepare_clip(close, cache).flags == []
    assert prepare_clip(Clip(id="v", video=tmp_path / "v.mp4"), cache).flags == []


COPY_AND_LOG = (
    "import shutil, sys; shutil.copyfile(sys.argv[1], sys.argv[2]); "
    "open(sys.argv[4], 'a').write(sys.argv[3] + '\\n')"
)


def test_a_command_receiving_the_clip_id_gets_its_own_generation(tmp_path, video_factory):
    """Two clips with the same files: a command given {clip_id} was served the first clip's
    cached video for the second. What a method receives is now in its generation key."""
    import shutil
    import sys

    from auhead_bench.clip import Clip
    from auhead_bench.config import RunConfig
    from auhead_bench.runner import Runner
    from auhead_bench_methods.external import External, ExternalOptions

    first = video_factory("data/a.mp4")
    shutil.copyfile(first, tmp_path / "data" / "b.mp4")
    log = tmp_path / "calls.log"
    command = [sys.executable, "-c", COPY_AND_LOG, "{video}", "{out}", "{clip_id}", str(log)]
    config = RunConfig(
        methods=[{"id": "external", "options": {"command": command}}, "ground_truth"],
        datasets=[{"id": "folder", "options": {"root": str(tmp_path / "data")}}],
        metrics=["psnr_rgb"],
        device="cpu",
        cache_dir=tmp_path / "cache",
    )
    external, truth = Runner(config, tmp_path / "out").run()
    assert sorted(log.read_text().split()) == ["a", "b"]  # each clip its own call
    keys = {g.clip_id: g.key for g in external.generations}
    assert keys["a"] != keys["b"]
    # Methods that receive nothing beyond the files keep the keys they had.
    truth_keys = {g.clip_id: g.key for g in truth.generations}
    assert truth_keys["a"] == truth_keys["b"]
    plain = ExternalOptions(command=[sys.executable, "x.py", "{video}", "{out}"])
    assert External().clip_fingerprint(Clip(id="a", video=first), plain) == {}


def test_a_cache_that_becomes_unwritable_mid_run_stops_with_one_line(
    tmp_path, video_factory, monkeypatch
):
    """A traceback at cache.py before. Tests run as root, where chmod stops no write, so the
    folder turning read-only is simulated: after the first entries, renames into it fail
    with EACCES, as they would."""
    import errno

    from auhead_bench.errors import BenchError
    from auhead_bench.runner import Runner

    video_factory("data/a.mp4", seed=0)
    video_factory("data/b.mp4", seed=1)
    cache_root = tmp_path / "cache"
    real_rename = os.rename
    done = []

    def rename(src, dst):
        if len(done) >= 3 and str(dst).startswith(str(cache_root)):
            raise PermissionError(errno.EACCES, "Permission denied", str(src), None, str(dst))
        done.append(dst)
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(BenchError) as info:
        Runner(folder_config(tmp_path), tmp_path / "out").run()
    message = str(info.value)
    assert message.startswith(f"{cache_root}: cannot write a ") and "Permission denied" in message
    assert "make it writable again" in message and "finished work is kept" in message
    assert "\n" not in message
    kept = [d for d in done if Path(d).is_dir()]
    assert len(kept) == 3  # finished entries stay
    assert not list((cache_root / "tmp").iterdir())  # the refused one's temp folder is gone

    monkeypatch.setattr(os, "rename", real_rename)  # writable again: the same run finishes
    (record,) = Runner(folder_config(tmp_path), tmp_path / "out").run()
    assert record.clip_ids == ["a", "b"]


def test_records_folder_that_becomes_unwritable_is_one_line(tmp_path, monkeypatch):
    import errno

    from auhead_bench import cache as cache_module
    from auhead_bench.errors import BenchError

    def refuse(src, dst):
        raise PermissionError(errno.EACCES, "Permission denied", str(src), None, str(dst))

    monkeypatch.setattr(cache_module.os, "replace", refuse)
    with pytest.raises(BenchError) as info:
        write_json_atomic(tmp_path / "records" / "r.json", {})
    assert str(info.value).startswith(f"{tmp_path / 'records'}: cannot write r.json (Permission")
    assert not list((tmp_path / "records").iterdir())


def _with_display_rotation(path: Path, out: Path) -> Path:
    """``path`` with its track header's display matrix turned a quarter (as phones write it:
    frames stored sideways, the rotation beside them)."""
    import struct

    data = bytearray(path.read_bytes())
    box = data.find(b"tkhd")
    version = data[box + 4]
    matrix = box + 8 + (32 if version == 1 else 20) + 8 + 8
    turn = (0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)
    data[matrix : matrix + 36] = b"".join(struct.pack(">i", v) for v in turn)
    out.write_bytes(data)
    return out


def test_rotation_metadata_is_honoured(tmp_path):
    """A phone video (frames stored sideways plus a display matrix) was decoded sideways, so
    face metrics found no face; frames now come out as players show them."""
    import numpy as np

    from auhead_bench import media

    frames = np.zeros((6, 32, 64, 3), np.uint8)
    frames[:, :, :12] = 255  # a white band down the stored frame's left edge
    media.write_video(tmp_path / "stored.mp4", frames)
    phone = _with_display_rotation(tmp_path / "stored.mp4", tmp_path / "phone.mp4")
    upright = np.concatenate(list(media.iter_frames(phone)))
    assert upright.shape == (6, 64, 32, 3)  # shown portrait: the matrix turns it clockwise
    assert upright[:, :8].mean() > 200 and upright[:, -8:].mean() < 30  # band now on top
    info = media.probe_video(phone)
    assert (info.width, info.height) == (32, 64)
    # the stored file itself is untouched by the fix
    assert np.concatenate(list(media.iter_frames(tmp_path / "stored.mp4"))).shape[1:3] == (32, 64)
