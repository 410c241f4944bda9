"""Frames of one video, decoded once and read in chunks by every extractor and metric.

A ``FrameSource`` runs one decode pass over a file. The first reader drives the decoder;
each chunk is also kept in a ``FrameBuffer`` (memory up to a budget, then a temporary file),
so that later readers, and readers that go over the video twice (SyncNet: detect, then crop),
replay the same frames without decoding again. Memory holds one chunk per reader plus the
budget, whatever the clip's length.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from auhead_bench import media

DEFAULT_CHUNK_FRAMES = 32  # frames per chunk: Inception's batch, two I3D windows
DEFAULT_CHUNK_BYTES = 64 << 20  # and at most this much per chunk (4K: 2 frames)
DEFAULT_BUFFER_BYTES = 128 << 20  # decoded frames kept in memory per video; the rest on disk


class DecodeError(media.MediaError):
    """The video itself cannot be decoded (not a property of one extractor's output)."""


@dataclass(frozen=True)
class FrameChunk:
    """Frames ``[start, start + len(frames))`` of a video, (n, H, W, 3) uint8 RGB, read-only."""

    start: int
    frames: np.ndarray

    @property
    def stop(self) -> int:
        return self.start + len(self.frames)

    def __len__(self) -> int:
        return len(self.frames)


class FrameBuffer:
    """Decoded chunks in order: in memory up to ``budget`` bytes, then appended to a temp file.

    Read back with plain file reads (not a memory map), so replayed frames do not count
    towards the process's resident memory.
    """

    def __init__(self, budget: int = DEFAULT_BUFFER_BYTES):
        self.budget = budget
        self._chunks: list[tuple[int, np.ndarray | tuple[int, tuple[int, ...]]]] = []
        self._memory = 0
        self._file: Path | None = None
        self.frames = 0

    def append(self, frames: np.ndarray) -> None:
        if self._memory + frames.nbytes <= self.budget:
            self._chunks.append((self.frames, frames))
            self._memory += frames.nbytes
        else:
            if self._file is None:
                fd, name = tempfile.mkstemp(prefix="auhead-frames-", suffix=".raw")
                os.close(fd)
                self._file = Path(name)
            with open(self._file, "ab") as handle:
                offset = handle.tell()
                handle.write(np.ascontiguousarray(frames).tobytes())
            self._chunks.append((self.frames, (offset, frames.shape)))
        self.frames += len(frames)

    def __len__(self) -> int:
        return len(self._chunks)

    def chunk(self, index: int) -> FrameChunk:
        start, stored = self._chunks[index]
        if isinstance(stored, np.ndarray):
            return FrameChunk(start, stored)
        offset, shape = stored
        assert self._file is not None
        count = int(np.prod(shape))
        frames = np.fromfile(self._file, np.uint8, count=count, offset=offset).reshape(shape)
        frames.flags.writeable = False
        return FrameChunk(start, frames)

    def close(self) -> None:
        self._chunks.clear()
        self._memory = 0
        if self._file is not None:
            self._file.unlink(missing_ok=True)
            self._file = None

    def __del__(self) -> None:
        self.close()


class FrameSource:
    """One decode pass of a video (or one image), replayable by any number of readers.

    ``decode`` yields the file's frame chunks; it is started on the first read and run at
    most once. Each ``chunks()`` call walks the buffered chunks, then pulls new ones from
    the decoder (keeping them for the next reader). A MediaError from the decoder reaches
    the reader that hit it, and every later reader.
    """

    def __init__(
        self,
        path: Path,
        decode: Callable[[], Iterator[np.ndarray]] | None = None,
        buffer_bytes: int = DEFAULT_BUFFER_BYTES,
        chunk_frames: int = DEFAULT_CHUNK_FRAMES,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    ):
        self.path = Path(path)
        self.chunk_frames = chunk_frames
        self.is_file = decode is None  # a video file: its header can be probed
        self._decode = decode or (
            lambda: media.iter_frames(self.path, chunk_frames=chunk_frames, chunk_bytes=chunk_bytes)
        )
        self._decoder: Iterator[np.ndarray] | None = None
        self._buffer = FrameBuffer(buffer_bytes)
        self._done = False
        self._error: Exception | None = None

    @classmethod
    def image(cls, path: Path) -> FrameSource:
        """A one-frame source of an image file (a clip's reference image)."""
        return cls(path, lambda: iter([media.read_image(path)[None]]))

    @classmethod
    def from_array(
        cls, frames: np.ndarray, path: Path = Path("<memory>"),
        chunk_frames: int = DEFAULT_CHUNK_FRAMES,
    ) -> FrameSource:
        """A source over frames already in memory, chunked as a file would be (for tests and
        tools that make frames themselves)."""
        frames = np.asarray(frames, np.uint8)
        if frames.ndim != 4 or not len(frames):
            raise ValueError(f"frames must be a non-empty (T, H, W, 3) array, got {frames.shape}")
        return cls(
            path,
            lambda: (frames[i : i + chunk_frames] for i in range(0, len(frames), chunk_frames)),
            chunk_frames=chunk_frames,
        )

    @property
    def started(self) -> bool:
        """True once a frame has been decoded (or decoding failed)."""
        return self._decoder is not None

    @property
    def decoded(self) -> bool:
        """True once every frame has been decoded (the frame count is then known)."""
        return self._done

    def chunks(self) -> Iterator[FrameChunk]:
        index = 0
        while True:
            if index < len(self._buffer):
                yield self._buffer.chunk(index)
                index += 1
                continue
            if not self._next():
                return

    def frame_count(self) -> int:
        """Frames in the video (decodes the rest of it, once, if not yet done)."""
        while self._next():
            pass
        return self._buffer.frames

    def _next(self) -> bool:
        """Decode one more chunk into the buffer; False at the end."""
        if self._error is not None:
            raise self._error
        if self._done:
            return False
        if self._decoder is None:
            self._decoder = self._decode()
        try:
            frames = next(self._decoder)
        except StopIteration:
            self._done = True
            return False
        except media.MediaError as exc:
            self._error = DecodeError(exc.message, path=exc.path, fix=exc.fix)
            raise self._error from None
        frames = np.ascontiguousarray(frames, dtype=np.uint8)
        frames.flags.writeable = False
        self._buffer.append(frames)
        return True

    def close(self) -> None:
        """Drop buffered frames and their temp file (readers after this decode again)."""
        self._buffer.close()
        self._buffer = FrameBuffer(self._buffer.budget)
        self._decoder = None
        self._done = False
        self._error = None


def writable(frames: np.ndarray) -> np.ndarray:
    """``frames`` as a C-contiguous array torch may wrap (``torch.from_numpy`` warns on
    read-only memory): chunks are read-only because every reader shares them, so this copies
    only those (a batch, not the video)."""
    return np.require(frames, requirements=["C_CONTIGUOUS", "WRITEABLE"])


def rebatch(
    chunks: Iterable[np.ndarray], size: int, max_bytes: int | None = None
) -> Iterator[np.ndarray]:
    """Frame blocks of any lengths as blocks of exactly ``size`` frames (the last may be
    shorter): batches then do not depend on how the video was chunked. ``max_bytes`` lowers
    ``size`` for large frames (a batch of 32 4K frames would hold 800 MB)."""
    pending: list[np.ndarray] = []
    count = 0
    for block in chunks:
        if max_bytes is not None and len(block) and count == 0 and not pending:
            size = max(1, min(size, max_bytes // max(1, block[0].nbytes)))
            max_bytes = None
        while len(block):
            take = min(size - count, len(block))
            pending.append(block[:take])
            count += take
            block = block[take:]
            if count == size:
                yield pending[0] if len(pending) == 1 else np.concatenate(pending)
                pending, count = [], 0
    if count:
        yield pending[0] if len(pending) == 1 else np.concatenate(pending)


def aligned_chunks(
    first: Iterable[FrameChunk], second: Iterable[FrameChunk], size: int | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Two videos walked in lockstep: pairs of equal-length frame blocks, frame t with
    frame t, until the shorter one ends. With ``size``, every block but the last has
    exactly ``size`` frames (whatever the two videos' chunk sizes)."""
    def pairs() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        carry_a = carry_b = np.zeros((0,), np.uint8)
        iter_a, iter_b = iter(first), iter(second)
        while True:
            if not len(carry_a):
                chunk = next(iter_a, None)
                if chunk is None:
                    return
                carry_a = chunk.frames
            if not len(carry_b):
                chunk = next(iter_b, None)
                if chunk is None:
                    return
                carry_b = chunk.frames
            count = min(len(carry_a), len(carry_b))
            yield carry_a[:count], carry_b[:count]
            carry_a, carry_b = carry_a[count:], carry_b[count:]

    if size is None:
        yield from pairs()
        return
    pending_a: list[np.ndarray] = []
    pending_b: list[np.ndarray] = []
    count = 0
    for block_a, block_b in pairs():
        while len(block_a):
            take = min(size - count, len(block_a))
            pending_a.append(block_a[:take])
            pending_b.append(block_b[:take])
            count += take
            block_a, block_b = block_a[take:], block_b[take:]
            if count == size:
                yield np.concatenate(pending_a), np.concatenate(pending_b)
                pending_a, pending_b, count = [], [], 0
    if count:
        yield np.concatenate(pending_a), np.concatenate(pending_b)
