"""The contract of a shared feature extractor (face tracks, Inception, SyncNet, ...)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from auhead_bench.options import Options
from auhead_bench.resources import Resources

if TYPE_CHECKING:
    from auhead_bench.views import VideoView


class Extractor(ABC):
    """Turns one video into arrays that several metrics (or other extractors) reuse.

    ``needs`` names what ``extract`` reads: ``"frames"`` and ``"audio"`` come from decoding,
    anything else is another extractor's id, whose arrays are then in ``video[id]``. The
    feature store runs every extractor once per video content, upstream first, and caches
    its arrays under a key built from the content hash, ``id``, ``version``, ``params()``,
    ``weights()`` and the same of everything upstream: anything that changes the output must
    appear in one of them. When an upstream extractor found nothing usable (no face), this
    one is not run and the upstream reason is reported for it.
    """

    id: ClassVar[str]
    description: ClassVar[str]
    version: ClassVar[str] = "1"
    needs: ClassVar[tuple[str, ...]] = ("frames",)
    Options: ClassVar[type[Options]] = Options  # none yet: extractors are built with defaults
    resources: ClassVar[Resources] = Resources()  # per task, for the Ray executor

    def setup(self, device: str) -> None:  # noqa: B027 - optional hook, default does nothing
        """Load models onto ``device`` once."""

    def params(self) -> dict[str, Any]:
        """Preprocessing parameters (sizes, thresholds) recorded with every result."""
        return {}

    def weights(self) -> dict[str, str]:
        """File name -> sha256 of every weight file the extractor loads."""
        return {}

    @abstractmethod
    def extract(self, video: VideoView) -> dict[str, np.ndarray]:
        """Arrays describing ``video``; raise MediaError when the video cannot be used.

        Read frames with ``for chunk in video.chunks()`` (chunk by chunk: memory must not grow
        with the clip's length; carry what a temporal window needs across chunks), audio with
        ``video.audio``, upstream features with ``video[extractor_id]``.
        """
