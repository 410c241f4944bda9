"""Small fake dataset trees that follow each dataset's real naming, for fast tests.

Videos are real H.264/AAC files (32x32, a moving square over a gradient, a sine tone with a
little noise) written through ``auhead_bench.media``; MEAD's audio is a real AAC ``.m4a`` and
CREMA-D's videos real FLV files, as the datasets ship them.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from auhead_bench import media

SIZE = 32


def tone(seconds: float, seed: int = 0, rate: int = media.SAMPLE_RATE) -> np.ndarray:
    """A sine (pitch from ``seed``) plus a little noise, float32 in [-1, 1]."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.3 * np.sin(2 * np.pi * (220 + 40 * seed) * t) + 0.02 * rng.standard_normal(t.size)
    return wave.astype(np.float32)


def frames(count: int, seed: int = 0, size: int = SIZE) -> np.ndarray:
    """A gradient background with a square moving across it: distinct, compressible frames."""
    rng = np.random.default_rng(seed)
    base = np.linspace(40, 200, size, dtype=np.float32)
    image = np.stack(np.broadcast_arrays(base[None, :], base[:, None], rng.uniform(60, 180)), -1)
    out = np.repeat(image[None], count, axis=0).astype(np.uint8)
    side = max(4, size // 4)
    for i in range(count):
        x = (i * 2 + seed * 3) % (size - side)
        out[i, size // 3 : size // 3 + side, x : x + side] = (250, 40, 40)
    return out


def write_clip(
    path: Path,
    count: int = 20,
    fps: int | Fraction = 25,
    audio: bool = True,
    seed: int = 0,
    size: int = SIZE,
) -> Path:
    """An mp4 with ``count`` frames at ``fps`` and (optionally) a tone of the same length."""
    seconds = count / float(fps)
    media.write_video(
        path, frames(count, seed, size), tone(seconds, seed) if audio else None, fps=fps
    )
    return path


def write_m4a(path: Path, seconds: float, seed: int = 0) -> Path:
    """AAC audio in an MP4 (.m4a) container, like MEAD's audio files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = tone(seconds, seed).reshape(1, -1)
    with av.open(str(path), mode="w", format="ipod") as container:
        stream = container.add_stream("aac", rate=media.SAMPLE_RATE, layout="mono")
        step = stream.codec_context.frame_size or 1024
        for start in range(0, samples.shape[1], step):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(samples[:, start : start + step]), format="flt",
                layout="mono",
            )
            frame.sample_rate = media.SAMPLE_RATE
            frame.pts = start
            frame.time_base = Fraction(1, media.SAMPLE_RATE)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def write_flv(path: Path, count: int = 30, fps: int = 30, audio: bool = True, seed: int = 0):
    """A Flash video (Sorenson H.263 + AAC), as CREMA-D's VideoFlash files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    images = frames(count, seed)
    with av.open(str(path), mode="w", format="flv") as container:
        video = container.add_stream("flv", rate=fps)
        video.width, video.height, video.pix_fmt = SIZE, SIZE, "yuv420p"
        sound = None
        if audio:
            sound = container.add_stream("aac", rate=media.SAMPLE_RATE, layout="mono")
        for image in images:
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        if sound is not None:
            samples = tone(count / fps, seed).reshape(1, -1)
            step = sound.codec_context.frame_size or 1024
            for start in range(0, samples.shape[1], step):
                frame = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(samples[:, start : start + step]), format="flt",
                    layout="mono",
                )
                frame.sample_rate = media.SAMPLE_RATE
                frame.pts = start
                frame.time_base = Fraction(1, media.SAMPLE_RATE)
                for packet in sound.encode(frame):
                    container.mux(packet)
            for packet in sound.encode(None):
                container.mux(packet)
    return path


def mead_clip(
    root: Path,
    identity: str,
    emotion: str,
    level: int,
    number: int,
    count: int = 20,
    audio: str = "m4a",  # "m4a": separate file; "embedded": only the video track; "none"
    seed: int | None = None,
    camera: str = "front",
) -> Path:
    """One MEAD clip at its real place in the tree (audio beside it, as MEAD ships it)."""
    seed = number if seed is None else seed
    video = root / identity / "video" / camera / emotion / f"level_{level}" / f"{number:03d}.mp4"
    write_clip(video, count=count, audio=audio == "embedded", seed=seed)
    if audio == "m4a":
        write_m4a(
            root / identity / "audio" / emotion / f"level_{level}" / f"{number:03d}.m4a",
            count / 25,
            seed,
        )
    return video


def make_mead(
    root: Path,
    identities: tuple[str, ...] = ("M003", "W009"),
    emotions: tuple[str, ...] = ("angry", "happy"),
    levels: tuple[int, ...] = (1, 3),
    count: int = 20,
) -> Path:
    """A MEAD tree with one clip per identity x emotion x level."""
    number = 1
    for identity in identities:
        for emotion in emotions:
            for level in levels:
                mead_clip(root, identity, emotion, level, number, count=count)
                number += 1
    return root


def make_crema(root: Path, names: tuple[str, ...], wav: bool = True, count: int = 30) -> Path:
    """CREMA-D's VideoFlash/NAME.flv (+ AudioWAV/NAME.wav when ``wav``)."""
    for seed, name in enumerate(names):
        write_flv(root / "VideoFlash" / f"{name}.flv", count=count, audio=not wav, seed=seed)
        if wav:
            media.write_wav(root / "AudioWAV" / f"{name}.wav", tone(count / 30, seed))
    return root


def make_hdtf(root: Path, names: tuple[str, ...], count: int = 20) -> Path:
    for seed, name in enumerate(names):
        write_clip(root / name, count=count, seed=seed)
    return root
