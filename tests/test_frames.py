"""One decode pass per video, replayed to every reader: FrameSource, FrameBuffer, the chunk
walkers (rebatch, aligned_chunks) and the chunked media functions under them."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from conftest import make_audio, make_frames

from auhead_bench import media
from auhead_bench.frames import (
    DecodeError,
    FrameBuffer,
    FrameChunk,
    FrameSource,
    aligned_chunks,
    rebatch,
)
from auhead_bench.views import VideoView


@pytest.fixture
def temp_dir(tmp_path, monkeypatch) -> Path:
    """Where ``tempfile`` puts files from now on (the buffer's spill file among them)."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def spill_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("auhead-frames-*"))


def indexed_frames(count: int, offset: int = 0, size: int = 4) -> np.ndarray:
    """Frame t is filled with t + offset: which frame a block holds can be read back."""
    values = (np.arange(count) + offset).astype(np.uint8)
    return np.broadcast_to(values[:, None, None, None], (count, size, size, 3)).copy()


def chunked(frames: np.ndarray, size: int) -> list[FrameChunk]:
    return [FrameChunk(i, frames[i : i + size]) for i in range(0, len(frames), size)]


def joined(chunks) -> np.ndarray:
    return np.concatenate([c.frames for c in chunks])


# ---- FrameSource: one decode pass, any number of readers ---------------------------------------


def test_a_file_is_decoded_once_however_many_readers_replay_it(video_factory, decodes):
    path = video_factory(frames=45)
    expected = media.decode_video(path).frames
    decodes.clear()
    source = FrameSource(path, chunk_frames=8)
    assert not source.started and not decodes  # nothing decoded before a read
    readers = [list(source.chunks()) for _ in range(3)]
    assert source.frame_count() == 45
    assert decodes == [path]
    for chunks in readers:
        assert [c.start for c in chunks] == list(range(0, 45, 8))
        assert [len(c) for c in chunks] == [8] * 5 + [5]
        np.testing.assert_array_equal(joined(chunks), expected)
    assert not readers[0][0].frames.flags.writeable  # shared by every reader: read-only


def test_interleaved_readers_get_the_same_frames(video_factory, decodes):
    path = video_factory(frames=45)
    expected = media.decode_video(path).frames
    decodes.clear()
    source = FrameSource(path, chunk_frames=8)
    first, second = source.chunks(), source.chunks()
    got_first, got_second = [next(first)], []
    for a, b in zip(first, second, strict=False):  # second lags a chunk behind, then goes on
        got_first.append(a)
        got_second.append(b)
    got_second.extend(second)
    late = list(source.chunks())  # starts after everything was decoded
    assert decodes == [path]
    for chunks in (got_first, got_second, late):
        assert [c.start for c in chunks] == list(range(0, 45, 8))
        np.testing.assert_array_equal(joined(chunks), expected)


def test_frame_count_decodes_the_rest_once_and_frame_shape_decodes_nothing(
    video_factory, decodes
):
    path = video_factory(frames=20, size=48)
    view = VideoView(FrameSource(path, chunk_frames=8), "sha")
    assert view.frame_shape() == (48, 48)  # from the container header
    assert decodes == []
    assert view.frame_count() == 20 and view.frame_count() == 20
    assert len(view.all_frames()) == 20
    assert decodes == [path]


def test_a_decode_error_reaches_every_reader_without_decoding_again(tmp_path, decodes):
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"not a video at all")
    source = FrameSource(path)
    for _ in range(2):
        with pytest.raises(DecodeError, match="broken.mp4"):
            list(source.chunks())
    with pytest.raises(DecodeError):
        source.frame_count()
    assert decodes == [path]


def test_closing_drops_the_frames_and_the_next_reader_decodes_again(video_factory, decodes):
    path = video_factory(frames=20)
    source = FrameSource(path, chunk_frames=8)
    before = joined(source.chunks())
    source.close()
    np.testing.assert_array_equal(joined(source.chunks()), before)
    assert decodes == [path, path]


# ---- FrameBuffer: memory up to a budget, then a temp file ----------------------------------------


def test_a_source_over_budget_spills_to_a_temp_file_and_replays_identical_frames(
    video_factory, decodes, temp_dir
):
    path = video_factory(frames=45)
    expected = media.decode_video(path).frames
    decodes.clear()
    frame_bytes = expected[0].nbytes
    source = FrameSource(path, chunk_frames=8, buffer_bytes=10 * frame_bytes)  # one chunk fits
    first = list(source.chunks())
    (spill,) = spill_files(temp_dir)
    assert spill.stat().st_size == (45 - 8) * frame_bytes  # every chunk but the first
    replays = [list(source.chunks()) for _ in range(2)]
    assert decodes == [path]
    for chunks in (first, *replays):
        assert [c.start for c in chunks] == list(range(0, 45, 8))
        np.testing.assert_array_equal(joined(chunks), expected)
    assert not replays[0][-1].frames.flags.writeable  # read back from the file: read-only too
    source.close()
    assert spill_files(temp_dir) == []


def test_buffer_keeps_chunks_in_order_across_memory_and_file(temp_dir):
    frames = indexed_frames(20, size=6)
    buffer = FrameBuffer(budget=frames[:5].nbytes)
    for block in (frames[:5], frames[5:12], frames[12:13], frames[13:]):
        buffer.append(block)
    assert len(buffer) == 4 and buffer.frames == 20
    assert len(spill_files(temp_dir)) == 1
    chunks = [buffer.chunk(i) for i in range(len(buffer))]
    assert [(c.start, c.stop) for c in chunks] == [(0, 5), (5, 12), (12, 13), (13, 20)]
    np.testing.assert_array_equal(joined(chunks), frames)
    np.testing.assert_array_equal(buffer.chunk(1).frames, frames[5:12])  # random access
    buffer.close()
    assert spill_files(temp_dir) == []


def test_buffer_within_budget_writes_no_file(temp_dir):
    buffer = FrameBuffer(budget=1 << 20)
    buffer.append(indexed_frames(10))
    assert spill_files(temp_dir) == []
    buffer.close()


# ---- aligned_chunks and rebatch: blocks that do not depend on how videos were chunked -----------


@pytest.mark.parametrize("long_first", [True, False])
def test_aligned_chunks_pair_frame_t_with_frame_t_and_stop_at_the_shorter(long_first):
    long, short = indexed_frames(23), indexed_frames(17, offset=100)
    sides = (chunked(long, 5), chunked(short, 7))
    first, second = sides if long_first else sides[::-1]
    pairs = list(aligned_chunks(first, second))
    for a, b in pairs:
        assert len(a) == len(b) > 0
    a_side, b_side = np.concatenate([a for a, _ in pairs]), np.concatenate([b for _, b in pairs])
    assert len(a_side) == len(b_side) == 17
    indices_a = a_side[:, 0, 0, 0].astype(int) % 100
    indices_b = b_side[:, 0, 0, 0].astype(int) % 100
    np.testing.assert_array_equal(indices_a, np.arange(17))
    np.testing.assert_array_equal(indices_b, np.arange(17))


@pytest.mark.parametrize("long_first", [True, False])
def test_aligned_chunks_with_size_give_exact_blocks_but_the_last(long_first):
    long, short = indexed_frames(23), indexed_frames(17, offset=100)
    sides = (chunked(long, 5), chunked(short, 7))
    first, second = sides if long_first else sides[::-1]
    pairs = list(aligned_chunks(first, second, size=4))
    assert [len(a) for a, _ in pairs] == [4, 4, 4, 4, 1]
    assert [len(b) for _, b in pairs] == [4, 4, 4, 4, 1]
    for start, (a, b) in zip(range(0, 17, 4), pairs, strict=True):
        expected = np.arange(start, start + len(a))
        np.testing.assert_array_equal(a[:, 0, 0, 0].astype(int) % 100, expected)
        np.testing.assert_array_equal(b[:, 0, 0, 0].astype(int) % 100, expected)
    exact = list(aligned_chunks(chunked(long, 3), chunked(long, 8), size=23))
    assert len(exact) == 1 and len(exact[0][0]) == 23
    np.testing.assert_array_equal(exact[0][0], exact[0][1])


def test_aligned_chunks_of_an_empty_side_give_nothing():
    assert list(aligned_chunks([], chunked(indexed_frames(5), 2))) == []
    assert list(aligned_chunks(chunked(indexed_frames(5), 2), [], size=2)) == []


def test_rebatch_gives_blocks_of_exactly_size_but_the_last():
    frames = indexed_frames(18)
    blocks = [frames[:5], frames[5:8], frames[8:17], frames[17:]]
    out = list(rebatch(blocks, 4))
    assert [len(b) for b in out] == [4, 4, 4, 4, 2]
    np.testing.assert_array_equal(np.concatenate(out), frames)
    assert [len(b) for b in rebatch([frames[:8], frames[8:16]], 4)] == [4, 4, 4, 4]
    assert [len(b) for b in rebatch(iter([frames]), 100)] == [18]
    assert list(rebatch([], 4)) == []


def test_rebatch_max_bytes_lowers_the_size_for_large_frames():
    frames = indexed_frames(18, size=10)
    blocks = [frames[:5], frames[5:8], frames[8:]]
    per_frame = frames[0].nbytes
    out = list(rebatch(blocks, 8, max_bytes=int(2.5 * per_frame)))  # 2 frames fit
    assert [len(b) for b in out] == [2] * 9
    np.testing.assert_array_equal(np.concatenate(out), frames)
    out = list(rebatch(blocks, 8, max_bytes=per_frame // 2))  # not even one: one at a time
    assert [len(b) for b in out] == [1] * 18
    out = list(rebatch(blocks, 8, max_bytes=100 * per_frame))  # size is the lower bound
    assert [len(b) for b in out] == [8, 8, 2]


# ---- chunked decoding and writing ------------------------------------------------------------


def test_iter_frames_chunks_concatenate_to_decode_video(video_factory):
    path = video_factory(frames=45, size=48)
    expected = media.decode_video(path).frames
    chunks = list(media.iter_frames(path, chunk_frames=8))
    assert [len(c) for c in chunks] == [8] * 5 + [5]
    assert all(c.dtype == np.uint8 and c.shape[1:] == (48, 48, 3) for c in chunks)
    np.testing.assert_array_equal(np.concatenate(chunks), expected)
    small = list(media.iter_frames(path, chunk_frames=8, chunk_bytes=3 * expected[0].nbytes))
    assert [len(c) for c in small] == [3] * 15  # at most chunk_bytes per chunk
    np.testing.assert_array_equal(np.concatenate(small), expected)


def test_iter_frames_at_another_rate_matches_decode_video(video_factory):
    path = video_factory(frames=30, fps=30)
    expected = media.decode_video(path).frames
    np.testing.assert_array_equal(np.concatenate(list(media.iter_frames(path, chunk_frames=7))),
                                  expected)


@pytest.mark.parametrize("size", [48, 47])  # 47: odd, padded for yuv420p chunk by chunk
def test_write_video_from_chunks_writes_the_same_bytes(tmp_path, size):
    frames = make_frames(30, size)
    audio = make_audio(30 / 25)
    whole, parts = tmp_path / "whole.mp4", tmp_path / "parts.mp4"
    media.write_video(whole, frames, audio)
    media.write_video(parts, (frames[i : i + 7] for i in range(0, 30, 7)), audio)
    assert whole.read_bytes() == parts.read_bytes()


def test_write_video_refuses_chunks_that_do_not_match(tmp_path):
    frames = make_frames(10, 48)
    with pytest.raises(ValueError, match="does not match"):
        media.write_video(tmp_path / "x.mp4", [frames[:5], make_frames(5, 32)])
    with pytest.raises(ValueError, match="non-empty"):
        media.write_video(tmp_path / "y.mp4", iter([]))
    assert not list(tmp_path.glob("*.mp4"))  # nothing left behind
