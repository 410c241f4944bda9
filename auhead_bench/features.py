"""What metrics receive for one video: the decoded media plus every extractor's output."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from auhead_bench.media import DecodedVideo, decode_video


class LazyVideo:
    """A video decoded on first use. When every feature a pass needs is cached (a resumed
    run, or the gathering pass after a Ray run), the video is never decoded at all."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._decoded: DecodedVideo | None = None

    def decoded(self) -> DecodedVideo:
        """The decoded video (decoding now if not yet); raises MediaError if it cannot be."""
        if self._decoded is None:
            self._decoded = decode_video(self.path)
        return self._decoded

    def __getattr__(self, name: str) -> Any:  # frames, audio, fps, silent, ...: decode first
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.decoded(), name)


@dataclass
class VideoFeatures:
    """One video, decoded once, with the shared features metrics asked for.

    ``features[extractor_id]`` is that extractor's dict of arrays, e.g.
    ``features["face_track"]["boxes"]``.
    """

    video: DecodedVideo | LazyVideo
    content_sha256: str
    features: Mapping[str, dict[str, np.ndarray]] = field(default_factory=dict)
    # For a generated video: what the method returned besides it (Generation.arrays/.info),
    # e.g. arrays["au_track"], the AU track it was conditioned on. Empty for ground truth.
    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)
    info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def frames(self) -> np.ndarray:
        return self.video.frames

    @property
    def audio(self) -> np.ndarray:
        return self.video.audio

    def __getitem__(self, extractor_id: str) -> dict[str, np.ndarray]:
        try:
            return self.features[extractor_id]
        except KeyError:
            raise KeyError(
                f"feature {extractor_id!r} was not extracted: list it in the metric's `needs`"
            ) from None
