"""Shared by the fake inference scripts: a real talking video from an image and an audio file.

The scripts stand in for baselines in tests: they take the real projects' arguments and write
real videos where the real tools do. Each script puts its own folder on sys.path to import this.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from auhead_bench import media


def load(reference: str, audio: str) -> tuple[np.ndarray, np.ndarray]:
    image = media.read_image(Path(reference))
    samples, _ = media.decode_audio(Path(audio))
    return image, samples


def talking(image: np.ndarray, seconds: float, fps: float) -> np.ndarray:
    """The image, its lower third brightening and darkening like a moving mouth."""
    count = max(1, int(round(seconds * fps)))
    out = np.repeat(image[None].astype(np.int16), count, axis=0)
    height = image.shape[0]
    for i in range(count):
        out[i, 2 * height // 3 :] += int(30 * np.sin(i / 2.0))
    return np.clip(out, 0, 255).astype(np.uint8)


def write(path: str | Path, frames: np.ndarray, audio: np.ndarray | None, fps: float) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    media.write_video(Path(path), frames, audio, fps=Fraction(fps).limit_denominator(1001))
