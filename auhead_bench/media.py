"""Decode, normalise and write talking-head videos with PyAV (FFmpeg), once per file.

Every video entering the suite is normalised to 25 fps and 16 kHz mono: the rates the
field's metrics assume (SyncNet pairs one frame with four 100 Hz MFCC columns). Frame-rate
conversion uses FFmpeg's own ``fps`` filter, audio conversion its resampler.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from auhead_bench.cache import publish_mode
from auhead_bench.errors import MediaError, one_line
from auhead_bench.malloc import LARGE_FRAME_BYTES, LONG_VIDEO_BYTES, map_large_blocks

FPS = 25
SAMPLE_RATE = 16000
SILENCE_RMS = 1e-4  # below this (full scale 1.0) an audio track is flagged as silent
VIDEO_CRF = 18  # x264 quality: visually lossless, keeps re-encoding drift small
# Identical frames must give identical files (cache keys and records depend on it). One
# thread, and no lookahead, macroblock tree or adaptive B-frames: with those on, valgrind
# showed x264 (as bundled with PyAV) reading uninitialised memory on small frames, and the
# same frames encoded to different bytes about one time in ten.
X264_OPTIONS = {
    "crf": str(VIDEO_CRF),
    "preset": "medium",
    "threads": "1",
    "x264-params": "rc-lookahead=0:mbtree=0:b-adapt=0",
}
# The lossless alternative (``write_video(lossless=True)``): FFV1 (RFC 9043) on 8-bit packed
# RGB (bgr0, its only 8-bit RGB format), intra only, with per-slice CRCs (level 3), and FLAC
# audio, in the same mp4 container. The decoded RGB frames are the frames that went in, byte
# for byte; chosen over x264 qp 0 on RGB and PNG by bench/bench_intermediate.py (bench/README).
FFV1_OPTIONS = {"level": "3", "g": "1", "threads": "1"}


@dataclass
class DecodedVideo:
    """A video decoded once: RGB frames at ``fps`` and mono float audio at ``sample_rate``."""

    path: Path
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    fps: float
    audio: np.ndarray  # (N,) float32 in [-1, 1]; empty when the file has no audio track
    sample_rate: int
    source_fps: float
    has_audio: bool

    @property
    def silent(self) -> bool:
        """True when there is no audio track or it is (near) silent: allowed, but flagged."""
        return not self.has_audio or audio_rms(self.audio) < SILENCE_RMS

    @property
    def duration(self) -> float:
        return len(self.frames) / self.fps


def audio_rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def check_file(path: Path) -> None:
    if not path.exists():
        raise MediaError("file not found", path=path, fix="check the dataset root or clip list")
    if path.is_dir():
        raise MediaError("is a directory, not a media file", path=path)
    if path.stat().st_size == 0:
        raise MediaError("file is empty (0 bytes)", path=path, fix="re-export or re-download it")


def _open(path: Path) -> av.container.InputContainer:
    check_file(path)
    try:
        return av.open(str(path))
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise MediaError(
            f"cannot be read as media ({type(exc).__name__}: {exc})",
            path=path,
            fix="re-encode it, e.g. `ffmpeg -i IN -c:v libx264 -c:a aac OUT.mp4`",
        ) from exc


def decode_video(path: Path, fps: int = FPS, sample_rate: int = SAMPLE_RATE) -> DecodedVideo:
    """Decode all frames (converted to ``fps``) and the audio track, into memory.

    For methods and tools that need a whole clip at once; extractors and metrics read frames
    in chunks (``iter_frames`` through ``auhead_bench.frames.FrameSource``) instead.
    """
    path = Path(path)
    chunks = list(iter_frames(path, fps))
    audio, has_audio = decode_audio(path, sample_rate)
    return DecodedVideo(
        path=path,
        frames=np.concatenate(chunks) if len(chunks) > 1 else chunks[0],
        fps=float(fps),
        audio=audio,
        sample_rate=sample_rate,
        source_fps=probe_video(path).source_fps,
        has_audio=has_audio,
    )


@dataclass(frozen=True)
class VideoInfo:
    """What a video's header says, without decoding a frame."""

    width: int
    height: int
    source_fps: float
    has_audio: bool


def probe_video(path: Path, fps: int = FPS) -> VideoInfo:
    """Size, frame rate and whether there is an audio stream, from the container header."""
    path = Path(path)
    with _open(path) as container:
        if not container.streams.video:
            raise MediaError("has no video stream", path=path, fix="pass a video file")
        stream = container.streams.video[0]
        source_fps = float(stream.average_rate or stream.guessed_rate or 0) or float(fps)
        context = stream.codec_context
        width, height = int(context.width), int(context.height)
        try:  # a phone video's display matrix turns it a quarter: the upright size is swapped
            first = next(container.decode(stream))
        except (StopIteration, av.FFmpegError):
            first = None
        if first is not None and upright_turns(first) % 2:
            width, height = height, width
        return VideoInfo(width, height, source_fps, bool(container.streams.audio))


def upright_turns(frame: av.VideoFrame) -> int:
    """Counter-clockwise quarter turns (for ``np.rot90``) that show ``frame`` as its display
    matrix says (phone videos store frames sideways and a rotation beside them); what FFmpeg's
    own players do (autorotate). 0 for a frame without one."""
    return round(float(getattr(frame, "rotation", 0) or 0) / 90) % 4


def iter_frames(
    path: Path, fps: int = FPS, chunk_frames: int = 32, chunk_bytes: int = 64 << 20
) -> Iterator[np.ndarray]:
    """RGB frames converted to ``fps`` by FFmpeg's fps filter, in (n, H, W, 3) uint8 chunks.

    One pass over the file; a chunk holds at most ``chunk_frames`` frames and (for large
    frames) at most ``chunk_bytes``, so memory does not grow with the clip's length. Raises
    MediaError for a file without a video stream, a corrupt stream, or no decodable frame.
    """
    path = Path(path)
    with _open(path) as container:
        if not container.streams.video:
            raise MediaError("has no video stream", path=path, fix="pass a video file")
        stream = container.streams.video[0]
        graph = av.filter.Graph()
        source = graph.add_buffer(template=stream)
        rate = graph.add("fps", f"fps={fps}:round=near")
        rgb = graph.add("format", "rgb24")
        sink = graph.add("buffersink")
        source.link_to(rate)
        rate.link_to(rgb)
        rgb.link_to(sink)
        graph.configure()
        pending: list[np.ndarray] = []
        limit = max(1, chunk_frames)
        seen = 0

        turns: list[int] = []  # quarter turns that make the frames upright (display matrix)

        def drain() -> None:
            while True:
                try:
                    image = sink.pull().to_ndarray()
                except (av.BlockingIOError, av.EOFError):
                    return
                pending.append(np.ascontiguousarray(np.rot90(image, turns[0])) if turns[0]
                               else image)

        try:
            for frame in container.decode(stream):
                if not turns:
                    turns.append(upright_turns(frame))
                source.push(frame)
                drain()
                if pending:
                    limit = min(max(1, chunk_frames), max(1, chunk_bytes // pending[0].nbytes))
                while len(pending) >= limit:
                    chunk, pending[:] = np.stack(pending[:limit]), pending[limit:]
                    seen += len(chunk)
                    if (seen * chunk[0].nbytes > LONG_VIDEO_BYTES
                            or chunk[0].nbytes >= LARGE_FRAME_BYTES):
                        map_large_blocks()  # a long or large video: keep the heap unfragmented
                    yield chunk
            source.push(None)
            drain()
        except av.FFmpegError as exc:
            raise MediaError(
                f"video stream is corrupt ({exc})", path=path, fix="re-encode or replace the file"
            ) from exc
        while pending:
            chunk, pending[:] = np.stack(pending[:limit]), pending[limit:]
            seen += len(chunk)
            yield chunk
    if not seen:
        raise MediaError("video has no decodable frames", path=path, fix="replace the file")


def count_frames(path: Path) -> int:
    """Frames in the first video stream, from the container header (decodes if it has none)."""
    with _open(Path(path)) as container:
        if not container.streams.video:
            raise MediaError("has no video stream", path=path, fix="write a video file")
        stream = container.streams.video[0]
        if stream.frames:
            return int(stream.frames)
        return sum(1 for _ in container.decode(stream))


def decode_audio(path: Path, sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, bool]:
    """Mono float32 audio at ``sample_rate`` from any media file; (empty, False) if it has none."""
    path = Path(path)
    with _open(path) as container:
        if not container.streams.audio:
            return np.zeros(0, np.float32), False
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        chunks: list[np.ndarray] = []
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except av.FFmpegError as exc:
            raise MediaError(
                f"audio stream is corrupt ({exc})", path=path, fix="re-encode or replace the file"
            ) from exc
    audio = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    return audio, True


def write_video(
    path: Path,
    frames: np.ndarray | Iterable[np.ndarray],
    audio: np.ndarray | None = None,
    fps: int | Fraction = FPS,
    sample_rate: int = SAMPLE_RATE,
    *,
    lossless: bool = False,
) -> None:
    """Write an H.264/AAC mp4 atomically (temp file in the same folder, then rename).

    ``frames`` is a (T, H, W, 3) uint8 RGB array, or an iterable of such chunks (written as
    they come, so a long clip never sits in memory whole); odd sizes are padded by one pixel
    for yuv420p. ``lossless``: FFV1 RGB and FLAC (16-bit) instead, frames kept at their size:
    every reader here decodes exactly the frames (and 16-bit samples) written.
    """
    path = Path(path)
    chunks = iter([frames] if isinstance(frames, np.ndarray) else frames)
    first = np.asarray(next(chunks, np.zeros((0, 0, 0, 3), np.uint8)))
    if first.ndim != 4 or first.shape[-1] != 3 or first.dtype != np.uint8 or not len(first):
        raise ValueError(f"frames must be a non-empty (T, H, W, 3) uint8 array, got {first.shape}")
    height, width = first.shape[1:3]
    pad_h, pad_w = (0, 0) if lossless else (height % 2, width % 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".mp4", dir=path.parent)
    os.close(fd)
    try:
        publish_mode(tmp_name)
        with av.open(tmp_name, mode="w", format="mp4") as container:
            video = container.add_stream("ffv1" if lossless else "libx264", rate=fps)
            video.width, video.height = width + pad_w, height + pad_h
            video.pix_fmt = "bgr0" if lossless else "yuv420p"
            video.options = FFV1_OPTIONS if lossless else X264_OPTIONS
            audio_stream = None
            if audio is not None and len(audio):
                audio_stream = container.add_stream(
                    "flac" if lossless else "aac", rate=sample_rate, layout="mono"
                )
                if lossless:
                    audio_stream.format = "s16"
            for chunk in itertools.chain([first], chunks):
                chunk = np.asarray(chunk)
                if chunk.shape[1:] != first.shape[1:] or chunk.dtype != np.uint8:
                    raise ValueError(f"frame chunk {chunk.shape} does not match {first.shape}")
                if pad_h or pad_w:
                    chunk = np.pad(chunk, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
                for image in chunk:
                    frame = _bgr0_frame(image) if lossless else _yuv_frame(rgb_to_yuv420p(image))
                    for packet in video.encode(frame):
                        container.mux(packet)
            for packet in video.encode(None):
                container.mux(packet)
            if audio_stream is not None:
                _encode_audio(
                    container, audio_stream, np.asarray(audio, np.float32), sample_rate, lossless
                )
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def rgb_to_yuv420p(image: np.ndarray) -> np.ndarray:
    """RGB (H, W, 3) uint8 -> yuv420p planes packed as PyAV expects ((H * 3 // 2, W) uint8).

    Written here rather than left to FFmpeg's swscale: its SIMD path gave different bytes for
    the same frame depending on memory alignment, and a cached generation must be a pure
    function of its inputs. Integer BT.601 limited range (the matrix FFmpeg assumes when it
    decodes an untagged stream); chroma is the rounded mean of each 2x2 block.
    """
    height, width = image.shape[:2]
    r, g, b = (image[..., i].astype(np.int32) for i in range(3))
    luma = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16
    u = ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128
    v = ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128

    def subsample(plane: np.ndarray) -> np.ndarray:
        blocks = plane.reshape(height // 2, 2, width // 2, 2).sum(axis=(1, 3))
        return ((blocks + 2) >> 2).astype(np.uint8)

    return np.concatenate(
        [luma.astype(np.uint8).reshape(-1), subsample(u).reshape(-1), subsample(v).reshape(-1)]
    ).reshape(height * 3 // 2, width)


def _yuv_frame(packed: np.ndarray) -> av.VideoFrame:
    """A yuv420p frame whose every byte, row padding included, is set.

    The encoder can read the padding past each row's end; left uninitialised it made
    identical inputs encode to different bytes now and then.
    """
    height, width = packed.shape[0] * 2 // 3, packed.shape[1]
    frame = av.VideoFrame(width, height, "yuv420p")
    flat = packed.reshape(-1)
    offset = 0
    for plane, (h, w) in zip(
        frame.planes,
        ((height, width), (height // 2, width // 2), (height // 2, width // 2)),
        strict=True,
    ):
        rows = np.zeros((h, plane.line_size), np.uint8)
        rows[:, :w] = flat[offset : offset + h * w].reshape(h, w)
        rows[:, w:] = rows[:, w - 1 : w]  # repeat the edge pixel, as codecs pad
        plane.update(rows.tobytes())
        offset += h * w
    return frame


def _bgr0_frame(image: np.ndarray) -> av.VideoFrame:
    """RGB (H, W, 3) uint8 as a packed bgr0 frame, every byte (row padding too) set, as in
    ``_yuv_frame``: a channel shuffle by hand, so no converter touches the pixels."""
    height, width = image.shape[:2]
    frame = av.VideoFrame(width, height, "bgr0")
    rows = np.zeros((height, frame.planes[0].line_size), np.uint8)
    pixels = rows[:, : width * 4].reshape(height, width, 4)
    pixels[..., :3] = image[..., ::-1]
    frame.planes[0].update(rows.tobytes())
    return frame


def _encode_audio(
    container, stream, audio: np.ndarray, sample_rate: int, pcm16: bool = False
) -> None:
    samples = np.clip(audio, -1.0, 1.0).reshape(1, -1)
    sample_format = "flt"
    if pcm16:  # lossless: quantised here, as FFmpeg reads 16 bits back (x / 32768)
        samples = np.clip(np.round(samples * 32768), -32768, 32767).astype(np.int16)
        sample_format = "s16"
    frame_size = stream.codec_context.frame_size or 1024
    pts = 0
    for start in range(0, samples.shape[1], frame_size):
        chunk = np.ascontiguousarray(samples[:, start : start + frame_size])
        frame = av.AudioFrame.from_ndarray(chunk, format=sample_format, layout="mono")
        frame.sample_rate = sample_rate
        frame.pts = pts
        frame.time_base = Fraction(1, sample_rate)
        pts += chunk.shape[1]
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)


def normalise(src: Path, dst: Path) -> DecodedVideo:
    """Re-encode ``src`` to ``dst`` at 25 fps / 16 kHz mono; returns the decoded source."""
    decoded = decode_video(src)
    write_video(dst, decoded.frames, decoded.audio if decoded.has_audio else None)
    return decoded


def read_image(path: Path) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB.

    An image over PIL's pixel limit (``Image.MAX_IMAGE_PIXELS``, about 89 Mpx: a few KB of
    PNG can claim 20000x20000) is refused before its pixels are decoded: a MediaError, not
    gigabytes of memory or a traceback.
    """
    path = Path(path)
    check_file(path)
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                rgb = np.asarray(image.convert("RGB"))
                if rgb.nbytes >= LARGE_FRAME_BYTES:
                    map_large_blocks()  # e.g. a 4K reference: its batches fragment the heap
                return rgb
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaError(
            f"image too large to decode ({one_line(exc)})",
            path=path,
            fix="use a reference image of at most a few megapixels",
        ) from None
    except (UnidentifiedImageError, OSError) as exc:
        raise MediaError(f"cannot be read as an image ({exc})", path=path) from exc


def write_image(path: Path, image: np.ndarray) -> None:
    """Write a PNG atomically."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    Image.fromarray(np.asarray(image, np.uint8)).save(tmp, format="PNG")
    os.replace(tmp, path)


def write_wav(path: Path, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write 16-bit PCM WAV atomically."""
    import soundfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    soundfile.write(tmp, np.asarray(audio, np.float32), sample_rate, subtype="PCM_16", format="WAV")
    os.replace(tmp, path)
