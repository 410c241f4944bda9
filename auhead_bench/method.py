"""The contract of a generator ("method") plugin."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from auhead_bench.clip import Clip
from auhead_bench.options import Options
from auhead_bench.resources import Resources


@dataclass
class Generation:
    """What a method returns besides the mp4 it wrote: what it was conditioned on, and notes.

    ``arrays`` are saved next to the video in the cache (e.g. ``{"au_track": (T, 24) array}``);
    ``info`` is JSON-serialisable and lands in the run record.
    """

    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


class Method(ABC):
    """A talking-head generator.

    Subclasses set ``id``, ``description`` and ``Options``; bump ``version`` whenever a change
    alters outputs, since the version is part of every cache key.
    """

    id: ClassVar[str]
    description: ClassVar[str]
    version: ClassVar[str] = "1"
    Options: ClassVar[type[Options]] = Options
    resources: ClassVar[Resources] = Resources()  # per task, for the Ray executor
    # True when the output does not depend on the seed (a copy, a warp, a precomputed file):
    # the runner generates and scores such a method for the first seed only, and its record
    # says so, so that repeated seeds are never counted as independent samples.
    deterministic: ClassVar[bool] = False

    def setup(self, device: str) -> None:  # noqa: B027 - optional hook, default does nothing
        """Load weights onto ``device`` once before the first ``generate``."""

    @abstractmethod
    def generate(
        self, clip: Clip, options: Options, seed: int, out_path: Path
    ) -> Generation | None:
        """Write the talking-head video for ``clip`` to ``out_path`` (mp4, 25 fps, with audio).

        ``clip`` carries normalised media. Must be deterministic for a given seed.
        """

    @classmethod
    def is_deterministic(cls, options: Options) -> bool:
        """Whether ``options`` make the output independent of the seed (default: the class's
        ``deterministic``); a method whose seed use depends on its options overrides this."""
        return cls.deterministic

    def weights(self) -> dict[str, str]:
        """File name -> sha256 of every weight file the method loads (after ``setup``)."""
        return {}

    def fingerprint(self) -> dict[str, Any]:
        """What identifies this generator's behaviour; part of every generation's cache key.

        Must be known before ``setup`` (no weights loaded yet): the version, the weights'
        expected hashes or names, anything else that changes outputs.
        """
        return {"version": self.version}

    def clip_fingerprint(self, clip: Clip, options: Options) -> dict[str, Any]:
        """What the method receives of a clip beyond its files' content (the generation key
        holds that already): its id, labels, anything its output may depend on. A method
        whose command gets ``{clip_id}`` must return it, or two clips with the same files
        would share one cached video. Part of the clip's generation key when not empty;
        default: nothing (the key is as before)."""
        return {}

    def content_fingerprint(self, options: Options) -> dict[str, Any]:
        """What the files ``options`` point at contain, where that changes outputs: a model
        folder someone retrains in place must not reuse the old model's cached videos.

        Part of every generation's cache key (and of the record's method fingerprint) when
        not empty. Called once per work unit, before ``setup``; hash only what matters
        (``auhead_bench.weights.file_sha256`` memoises per file). Default: nothing.
        """
        return {}
