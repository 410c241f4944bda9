"""A clip's AU labels as the complete track a generator is conditioned on.

Reading the files is tokens.load_au_labels (shared with stage 1 and the AU metrics): (T, 24)
at 25 fps in AU_NAMES order, NaN where a value was not measured. A generator needs a value
for every frame and AU, and exactly one row per video frame; this module supplies both.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from auhead_bench.errors import BenchError
from auhead_bench_methods.auhead.tokens import load_au_labels

LENGTH_SLACK = 0.1  # a track may differ from the video by this fraction of frames (+2)


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


def conditioning_track(path: Path, frames: int) -> np.ndarray:
    """The (frames, 24) float32 track in [0, 1] read from the AU label file at ``path``."""
    return fit_length(fill_missing(load_au_labels(path)), frames, path)
