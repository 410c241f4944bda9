"""Shared fixtures: small real media files written with the suite's own writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from auhead_bench import media


def make_frames(count: int = 20, size: int = 48, seed: int = 0) -> np.ndarray:
    """A moving gradient with noise: real content for codecs and metrics."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    frames = []
    for t in range(count):
        base = ((x + 2 * t) % size) * (255 // size)
        image = np.stack([base, (y * 5) % 256, np.full_like(base, 40 + t)], axis=-1)
        image = image + rng.integers(0, 20, image.shape)
        frames.append(np.clip(image, 0, 255).astype(np.uint8))
    return np.stack(frames)


def make_audio(seconds: float, freq: float = 220.0, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * media.SAMPLE_RATE)) / media.SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture
def video_factory(tmp_path: Path):
    """write(name, frames=20, fps=25, audio='tone'|'silent'|None) -> path of an mp4."""

    def write(
        name: str = "clip.mp4",
        frames: int = 20,
        fps: int = 25,
        audio: str | None = "tone",
        size: int = 48,
        seed: int = 0,
    ) -> Path:
        path = tmp_path / name
        sound = None
        if audio == "tone":
            sound = make_audio(frames / fps)
        elif audio == "silent":
            sound = np.zeros(int(frames / fps * media.SAMPLE_RATE), np.float32)
        media.write_video(path, make_frames(frames, size, seed), sound, fps=fps)
        return path

    return write


@pytest.fixture(autouse=True)
def _autograd_mode_restored():
    """py-feat's RetinaFace turns autograd off process-wide when built (a test building it
    directly left every later training test failing in reversed file order): each test starts
    with the mode the one before it started with."""
    mode = torch.is_grad_enabled()
    yield
    torch.set_grad_enabled(mode)


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def decodes(monkeypatch) -> list[Path]:
    """Every decode pass (``media.iter_frames`` call), by path."""
    calls: list[Path] = []
    real = media.iter_frames

    def counting(path, *args, **kwargs):
        calls.append(Path(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(media, "iter_frames", counting)
    return calls
