"""A clip's AU labels as the complete track a generator is conditioned on.

Reading the files is the core's ``auhead_bench.aus`` (shared with stage 1 and the AU
metrics): (T, 24) at the labels' own rate, resampled to 25 fps by ``labels_at_video_rate``
(MEAD's labels are per 30 fps source frame), NaN where a value was not measured. A generator
needs a value for every frame and AU, and exactly one row per video frame; this module
supplies both.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from auhead_bench.aus import LENGTH_SLACK as LENGTH_SLACK
from auhead_bench.aus import clip_label_rates, labels_at_video_rate
from auhead_bench.clip import Clip
from auhead_bench.errors import BenchError


def fill_missing(track: np.ndarray) -> np.ndarray:
    """NaN values linearly interpolated over time per AU (held at the ends); an AU never
    measured in the clip is 0 (at rest)."""
    track = np.array(track, np.float32)
    frames = np.arange(len(track))
    for column in range(track.shape[1]):
        known = np.isfinite(track[:, column])
        if not known.any():
            track[:, column] = 0.0
        elif not known.all():
            track[:, column] = np.interp(frames, frames[known], track[known, column])
    return track


def fit_length(track: np.ndarray, frames: int, source: str | Path = "AU track") -> np.ndarray:
    """``track`` cut or edge-padded to ``frames`` rows; a gross mismatch (wrong fps) fails."""
    track = np.asarray(track, np.float32)
    if not len(track) or abs(len(track) - frames) > LENGTH_SLACK * frames + 2:
        raise BenchError(
            f"AU track has {len(track)} frames but the clip has {frames}",
            path=source,
            fix="AU labels must be per 25 fps video frame",
        )
    if len(track) >= frames:
        return track[:frames]
    return np.concatenate([track, np.repeat(track[-1:], frames - len(track), axis=0)])


def conditioning_track(
    path: Path, frames: int, fps: float | None = None, source_fps: float | None = None
) -> np.ndarray:
    """The (frames, 24) float32 track in [0, 1] at 25 fps from the AU label file at ``path``.

    ``fps`` (the labels' rate, if known) and ``source_fps`` (their video's) decide the
    resampling when the file states no rate (``auhead_bench.aus.label_rate``).
    """
    labels, _ = labels_at_video_rate(path, frames=frames, fps=fps, source_fps=source_fps)
    return fit_length(fill_missing(labels), frames, path)


def clip_conditioning_track(clip: Clip, frames: int) -> np.ndarray:
    """``conditioning_track`` of ``clip.au_labels`` at the rates its dataset recorded."""
    if clip.au_labels is None:
        raise BenchError("clip has no AU labels", path=clip.video)
    return conditioning_track(Path(clip.au_labels), frames, **clip_label_rates(clip.meta))
