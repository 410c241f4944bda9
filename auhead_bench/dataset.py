"""The contract of a dataset plugin."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from auhead_bench.clip import Clip
from auhead_bench.config import DEFAULT_INTERMEDIATE
from auhead_bench.options import Options


class DatasetOptions(Options):
    """Options every dataset accepts."""

    max_clips: int | None = Field(None, ge=1)  # None: every clip; 0 or -1 are refused


class Dataset(ABC):
    """A source of clips. ``clips()`` must return them in a stable order with unique ids."""

    id: ClassVar[str]
    description: ClassVar[str]
    version: ClassVar[str] = "1"
    Options: ClassVar[type[DatasetOptions]] = DatasetOptions

    # How the run encodes prepared clips (RunConfig.intermediate), set by the runner before
    # ``clips()``: a dataset that writes videos of its own (a face crop) writes them alike
    # (``media.write_video(lossless=self.lossless)``), so "lossless" adds no lossy step.
    intermediate: str = DEFAULT_INTERMEDIATE

    def __init__(self, options: DatasetOptions, cache_dir: Path):
        self.options = options
        self.cache_dir = cache_dir

    @property
    def lossless(self) -> bool:
        return self.intermediate == "lossless"

    @abstractmethod
    def clips(self) -> list[Clip]:
        """The clips of the selected split, in a stable order."""

    def fingerprint(self) -> dict[str, Any]:
        """What identifies the clips' content (version, source hashes), recorded per run."""
        return {"version": self.version}

    def preparation(self) -> dict[str, Any]:
        """How the clips' frames are framed before the runner prepares them, for the record:
        ``{"framing": "native"}`` (the files' own framing) unless a dataset crops."""
        return {"framing": "native"}
