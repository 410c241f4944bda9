"""The contract of a shared feature extractor (face tracks, Inception, SyncNet, ...)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from auhead_bench.media import DecodedVideo
from auhead_bench.options import Options
from auhead_bench.resources import Resources


class Extractor(ABC):
    """Turns one decoded video into arrays that several metrics reuse.

    The runner calls ``extract`` once per video and caches the result under a key built from
    the video's content hash, ``id``, ``version``, ``params()`` and ``weights()``: anything that
    changes the output must appear in one of them.
    """

    id: ClassVar[str]
    description: ClassVar[str]
    version: ClassVar[str] = "1"
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
    def extract(self, video: DecodedVideo) -> dict[str, np.ndarray]:
        """Arrays describing ``video``; raise MediaError when the video cannot be used."""
