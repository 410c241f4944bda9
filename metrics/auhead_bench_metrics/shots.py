"""Shot cuts as joonson/syncnet_python's ``run_pipeline.py`` finds them: PySceneDetect 0.5.1.

joonson's requirements pin ``scenedetect==0.5.1``; the version pip resolves today (0.6.x)
cuts differently: threshold 27 instead of 30, a flash filter instead of 0.5.1's "at least
``min_scene_len`` frames after the last cut", and a linear resize to ~256 px instead of
0.5.1's integer subsampling (``frame[::n, ::n]``, n from the width). A content step between 27
and 30 then splits a shot only under 0.6.x, and a piece of 100 frames or fewer loses its track.

0.5.1 itself does not run beside our OpenCV: its ``ContentDetector`` assigns into the
result of ``cv2.split``, a tuple in OpenCV 4.5.5 and later (a list in 4.5.1), so it raises
TypeError with the OpenCV installed here (4.14, checked). Its semantics are
restated here with NumPy/OpenCV (no maintained library has them) and tested against 0.5.1's own
code run in an isolated Python 3.8 / OpenCV 4.5.1 environment (tests/data/scenedetect_051.json,
written by tests/scripts/scenedetect051_reference.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from auhead_bench.errors import BenchError

THRESHOLD = 30.0  # ContentDetector(threshold=30.0) in 0.5.1 (27.0 in 0.6.x)
MIN_SCENE_LEN = 15  # frames after the last cut before another may be placed
# video_manager.DEFAULT_DOWNSCALE_FACTORS: the first width the frame reaches, widest first
DOWNSCALE_FACTORS = ((3200, 12), (2100, 8), (1700, 6), (1200, 5), (900, 4), (600, 3), (400, 2))


def downscale_factor(width: int) -> int:
    """0.5.1's ``compute_downscale_factor``: the subsampling step for a frame ``width`` wide."""
    for edge, factor in DOWNSCALE_FACTORS:
        if width >= edge:
            return factor
    return 1


def hsv_planes(frame: np.ndarray) -> list[np.ndarray]:
    """H, S and V of a BGR frame as int32 planes (0.5.1 widens them before subtracting)."""
    return [plane.astype(np.int32) for plane in cv2.split(cv2.cvtColor(frame, cv2.COLOR_BGR2HSV))]


def content_score(last: list[np.ndarray], current: list[np.ndarray]) -> float:
    """``content_val``: the mean |difference| of H, S and V, averaged over the three, summed in
    the order 0.5.1 sums them (so the float is the same, bit for bit)."""
    deltas = [float(np.sum(np.abs(c - p))) / float(c.shape[0] * c.shape[1])
              for c, p in zip(current, last, strict=True)]
    return sum(deltas) / 3.0


@dataclass
class ShotCuts:
    """What 0.5.1's SceneManager + ContentDetector leave after a pass over the frames."""

    cuts: list[int]  # frames that start a new scene
    scores: dict[int, float]  # content_val per frame (from frame 1)
    frames: int  # frames read

    def scenes(self) -> list[tuple[int, int]]:
        """``get_scenes_from_cuts``: contiguous [start, end) scenes covering every frame."""
        edges = [0, *self.cuts, self.frames]
        return list(zip(edges[:-1], edges[1:], strict=True))


def detect_cuts(frames: Iterable[np.ndarray], factor: int) -> ShotCuts:
    """0.5.1's ``ContentDetector(threshold=30, min_scene_len=15)`` over BGR ``frames``, each
    first subsampled as its ``VideoManager.read`` does (``frame[::factor, ::factor, :]``)."""
    cuts: list[int] = []
    scores: dict[int, float] = {}
    last: list[np.ndarray] | None = None
    count = 0
    for number, frame in enumerate(frames):
        count = number + 1
        if factor > 1:
            frame = frame[::factor, ::factor, :]
        current = hsv_planes(frame)
        if last is not None:
            score = scores[number] = content_score(last, current)
            if score >= THRESHOLD and (not cuts or number - cuts[-1] >= MIN_SCENE_LEN):
                cuts.append(number)
        last = current
    return ShotCuts(cuts, scores, count)


def read_frames(capture: cv2.VideoCapture) -> Iterable[np.ndarray]:
    while True:
        ok, frame = capture.read()
        if not ok:
            return
        yield frame


def scene_bounds(video: Path) -> list[tuple[int, int]]:
    """run_pipeline.py ``scene_detect`` under 0.5.1: the file decoded by OpenCV (as 0.5.1's
    VideoManager does), subsampled by ``downscale_factor(width)``; one scene when no cut."""
    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        raise BenchError("OpenCV cannot open the video for shot detection", path=video,
                         fix="check that the file plays with `ffprobe`")
    try:
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        return detect_cuts(read_frames(capture), downscale_factor(width)).scenes()
    finally:
        capture.release()
