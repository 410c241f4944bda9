"""What extractors and metrics are handed: read-only views of a video and of a scored clip.

``VideoView``: one video (or the clip's reference image, a one-frame video): its frames in
chunks from the one decode pass, its audio, and the features extracted from it so far.
``ClipView``: everything a metric may read about one scored clip.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from auhead_bench import media
from auhead_bench.clip import Clip
from auhead_bench.frames import DEFAULT_CHUNK_FRAMES, FrameChunk, FrameSource


def read_only(arrays: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray]:
    """A read-only mapping of read-only arrays (views; nothing is copied)."""
    frozen = {}
    for name, value in arrays.items():
        value = np.asarray(value).view()
        value.flags.writeable = False
        frozen[name] = value
    return MappingProxyType(frozen)


class VideoView:
    """One video as extractors and metrics see it.

    - ``chunks()``: the frames, (n, H, W, 3) uint8 RGB at 25 fps, as ``FrameChunk`` s; every
      call replays the same decode pass (the video is decoded once, however many read it);
    - ``audio`` (16 kHz mono float32), ``has_audio``, ``silent``: decoded on first use;
    - ``view[extractor_id]``: that extractor's arrays, for the ids this reader declared in
      ``needs`` (KeyError naming the fix otherwise).
    """

    def __init__(
        self,
        source: FrameSource,
        content_sha256: str,
        features: Mapping[str, Mapping[str, np.ndarray]] | None = None,
        is_image: bool = False,
    ):
        self._source = source
        self.content_sha256 = content_sha256
        self.features: Mapping[str, Mapping[str, np.ndarray]] = MappingProxyType(
            dict(features or {})
        )
        self.is_image = is_image
        self._audio: tuple[np.ndarray, bool] | None = None

    @classmethod
    def from_arrays(
        cls,
        frames: np.ndarray,
        audio: np.ndarray | None = None,
        features: Mapping[str, Mapping[str, np.ndarray]] | None = None,
        *,
        path: Path = Path("<memory>"),
        content_sha256: str = "memory",
        chunk_frames: int = DEFAULT_CHUNK_FRAMES,
        is_image: bool = False,
    ) -> VideoView:
        """A view of frames (and audio) already in memory: for testing an extractor or a
        metric without writing a file. ``audio`` None: the video has no audio track."""
        view = cls(
            FrameSource.from_array(frames, Path(path), chunk_frames),
            content_sha256,
            features,
            is_image,
        )
        view._audio = (
            (np.zeros(0, np.float32), False) if audio is None
            else (np.asarray(audio, np.float32), True)
        )
        return view

    @property
    def path(self) -> Path:
        return self._source.path

    fps = float(media.FPS)
    sample_rate = media.SAMPLE_RATE

    def chunks(self) -> Iterator[FrameChunk]:
        """The frames in order, a chunk at a time (``FrameChunk.start`` is the first index)."""
        return self._source.chunks()

    def frame_count(self) -> int:
        return self._source.frame_count()

    def frame_shape(self) -> tuple[int, int]:
        """(height, width) of the frames: from the container header when nothing is decoded
        yet (so asking decodes nothing), else from the first frame."""
        if self._source.is_file and not self._source.started:
            info = media.probe_video(self.path)
            return info.height, info.width
        first = next(iter(self.chunks()))
        return int(first.frames.shape[1]), int(first.frames.shape[2])

    def all_frames(self) -> np.ndarray:
        """Every frame in one (T, H, W, 3) array: memory grows with the clip, so extractors
        and metrics should walk ``chunks()`` instead; for tests and small tools."""
        return np.concatenate([c.frames for c in self.chunks()])

    def _decoded_audio(self) -> tuple[np.ndarray, bool]:
        if self._audio is None:
            if self.is_image:
                self._audio = (np.zeros(0, np.float32), False)
            else:
                self._audio = media.decode_audio(self.path)
        return self._audio

    @property
    def audio(self) -> np.ndarray:
        return self._decoded_audio()[0]

    @property
    def has_audio(self) -> bool:
        return self._decoded_audio()[1]

    @property
    def silent(self) -> bool:
        """No audio track, or a (near) silent one."""
        return not self.has_audio or media.audio_rms(self.audio) < media.SILENCE_RMS

    def __getitem__(self, extractor_id: str) -> Mapping[str, np.ndarray]:
        try:
            return self.features[extractor_id]
        except KeyError:
            raise KeyError(
                f"feature {extractor_id!r} was not extracted: list it in `needs`"
            ) from None

    def with_features(self, features: Mapping[str, Mapping[str, np.ndarray]]) -> VideoView:
        """The same video (same decode pass) with another set of features."""
        view = VideoView(self._source, self.content_sha256, features, self.is_image)
        view._audio = self._audio
        return view


@dataclass(frozen=True)
class ClipView:
    """One scored clip, as a metric sees it.

    ``generated``: the method's video; ``ground_truth``: the clip's normalised video (None
    for metrics with ``needs_ground_truth = False``); ``reference``: the clip's reference
    image as a one-frame video (None unless the metric sets ``reference_needs``); ``arrays``
    and ``info``: what the method returned besides its video (e.g. ``arrays["au_track"]``).
    """

    clip: Clip
    generated: VideoView
    ground_truth: VideoView | None = None
    reference: VideoView | None = None
    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)
    info: Mapping[str, Any] = field(default_factory=dict)
