"""The contract of a dataset plugin."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from auhead_bench.clip import Clip
from auhead_bench.options import Options


class DatasetOptions(Options):
    """Options every dataset accepts."""

    max_clips: int | None = None


class Dataset(ABC):
    """A source of clips. ``clips()`` must return them in a stable order with unique ids."""

    id: ClassVar[str]
    description: ClassVar[str]
    version: ClassVar[str] = "1"
    Options: ClassVar[type[DatasetOptions]] = DatasetOptions

    def __init__(self, options: DatasetOptions, cache_dir: Path):
        self.options = options
        self.cache_dir = cache_dir

    @abstractmethod
    def clips(self) -> list[Clip]:
        """The clips of the selected split, in a stable order."""

    def fingerprint(self) -> dict[str, Any]:
        """What identifies the clips' content (version, source hashes), recorded per run."""
        return {"version": self.version}
