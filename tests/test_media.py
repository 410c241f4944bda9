"""Decoding and writing: what every metric's numbers rest on."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_audio

from auhead_bench import media
from auhead_bench.errors import MediaError


def test_roundtrip_keeps_frames_audio_and_rates(video_factory):
    path = video_factory(frames=25, audio="tone")
    video = media.decode_video(path)
    assert video.frames.shape == (25, 48, 48, 3)
    assert video.fps == 25 and video.sample_rate == 16000
    assert video.has_audio and not video.silent
    # AAC priming is trimmed: the tone starts where it was written, within a few samples.
    assert abs(len(video.audio) - 16000) < 1100


def test_30fps_input_is_resampled_to_25fps(video_factory):
    path = video_factory(frames=30, fps=30)
    video = media.decode_video(path)
    assert video.source_fps == pytest.approx(30.0)
    assert len(video.frames) == 25  # one second at 25 fps


def test_writer_is_deterministic(video_factory, tmp_path):
    first = video_factory("a.mp4")
    second = video_factory("b.mp4")
    assert media.sha256_file(first) == media.sha256_file(second)


def test_silent_and_missing_audio_are_flagged(video_factory):
    assert media.decode_video(video_factory("s.mp4", audio="silent")).silent
    no_audio = media.decode_video(video_factory("n.mp4", audio=None))
    assert not no_audio.has_audio and no_audio.silent and no_audio.audio.size == 0


@pytest.mark.parametrize(
    "content, expected",
    [(None, "file not found"), (b"", "empty"), (b"\x00garbage" * 100, "cannot be read")],
)
def test_bad_files_give_one_line_errors_naming_the_file(tmp_path, content, expected):
    path = tmp_path / "bad.mp4"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(MediaError) as info:
        media.decode_video(path)
    message = str(info.value)
    assert str(path) in message and expected in message and "\n" not in message


def test_truncated_video_is_reported(video_factory):
    path = video_factory(frames=50)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(MediaError) as info:
        media.decode_video(path)
    assert str(path) in str(info.value)


def test_write_rejects_wrong_arrays(tmp_path):
    with pytest.raises(ValueError):
        media.write_video(tmp_path / "x.mp4", np.zeros((2, 8, 8), np.uint8))
    assert not list(tmp_path.iterdir())  # nothing half-written left behind


def test_odd_sizes_are_padded(tmp_path):
    path = tmp_path / "odd.mp4"
    media.write_video(path, np.full((3, 15, 17, 3), 128, np.uint8))
    assert media.decode_video(path).frames.shape == (3, 16, 18, 3)


def test_same_frames_encode_to_same_bytes_whatever_their_memory_layout(video_factory, tmp_path):
    """Cache keys and records rest on this; x264 defaults broke it one time in ten."""
    frames = media.decode_video(video_factory(frames=20, seed=5)).frames
    audio = make_audio(0.8)
    hashes = set()
    for offset in range(10):
        buffer = np.empty(frames.nbytes + 16, np.uint8)
        shifted = buffer[offset : offset + frames.nbytes].reshape(frames.shape)
        shifted[:] = frames
        out = tmp_path / f"copy{offset}.mp4"
        media.write_video(out, shifted, audio)
        hashes.add(media.sha256_file(out))
    assert len(hashes) == 1
