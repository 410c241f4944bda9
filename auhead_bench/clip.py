"""A benchmark clip: what a method is conditioned on and what its output is compared with."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Clip:
    """One test item of a dataset.

    Datasets return clips pointing at their source files. Before any method sees a clip the
    runner normalises it (25 fps video, 16 kHz mono audio, reference image written out) and
    hands methods and metrics a copy whose paths point at the normalised files.
    """

    id: str
    video: Path  # ground-truth talking video (with its audio track unless `audio` is given)
    identity: str | None = None
    emotion: str | None = None
    intensity: int | None = None
    audio: Path | None = None  # driving audio; None: the video's own track
    reference: Path | None = None  # reference (source) image; None: the video's first frame
    au_labels: Path | None = None  # optional per-frame AU labels (CSV or .npy)
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def labels(self) -> dict[str, Any]:
        """Labels recorded with each per-clip value, for breakdowns by emotion or identity."""
        return {"identity": self.identity, "emotion": self.emotion, "intensity": self.intensity}
