"""A benchmark clip: what a method is conditioned on and what its output is compared with."""

from __future__ import annotations

import re
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


# Ids reach path templates ({clip_id}.mp4 under a folder): "/" may nest folders (MEAD's
# M003/angry/level_3/001), but no part may climb out, be empty or be absolute.
_BAD_ID_CHARS = re.compile(r"[\x00-\x1f\x7f\\]")


def clip_id_problem(clip_id: str) -> str | None:
    """Why ``clip_id`` cannot be used as a relative path inside a folder, or None."""
    if not clip_id:
        return "is empty"
    if _BAD_ID_CHARS.search(clip_id):
        return "holds a backslash or a control character"
    if clip_id.startswith("/"):
        return "is absolute"
    parts = clip_id.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "has an empty, '.' or '..' part"
    return None


def check_clip_ids(dataset_id: str, clips: list[Clip]) -> None:
    """A one-line BenchError for an id that is not a safe relative path, or for two clips
    with one id (naming both files)."""
    from auhead_bench.errors import BenchError

    first: dict[str, Clip] = {}
    for clip in clips:
        problem = clip_id_problem(clip.id)
        if problem is not None:
            raise BenchError(
                f"dataset {dataset_id!r}: clip id {clip.id!r} {problem}; ids must stay "
                "relative paths under a folder",
                path=clip.video,
                fix="fix the dataset's pattern, labels or files",
            )
        other = first.setdefault(clip.id, clip)
        if other is not clip:
            raise BenchError(
                f"dataset {dataset_id!r}: duplicate clip id {clip.id!r}: {other.video} and "
                f"{clip.video}",
                path=clip.video,
                fix="keep one file per clip (e.g. remove converted copies)",
            )
