"""The shared face track: one face box and 68 dlib landmarks per frame, offline and on CPU.

Detection is dlib's HOG frontal face detector; landmarks are dlib's 68-point shape predictor
(iBUG 300-W layout), whose weights ship in the PyPI package ``face-recognition-models``.
Metrics that compare faces (LMD, face crops for identity or expression) all read this one
track, so they agree on where the face is and the runner computes it once per video.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np

from auhead_bench import Extractor, hookimpl
from auhead_bench.errors import BenchError, MediaError
from auhead_bench.media import DecodedVideo, sha256_file

PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"
_MODELS_PACKAGE = "face_recognition_models"


def predictor_path() -> Path:
    """Where ``face-recognition-models`` installed the 68-point predictor.

    Found with ``find_spec``, which locates the package without running its ``__init__``: that
    imports ``pkg_resources``, deprecated and absent from setuptools>=81. (Even
    ``importlib.resources.files(package)`` would import it.)
    """
    spec = importlib.util.find_spec(_MODELS_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = Path(location) / "models" / PREDICTOR_FILE
        if path.is_file():
            return path
    raise BenchError(
        f"dlib's 68-point landmark model {PREDICTOR_FILE} is not installed",
        fix="pip install face-recognition-models==0.3.0",
    )


@lru_cache(maxsize=4)
def _sha256(path: Path) -> str:
    """Hash the ~100 MB model once per process, however many extractor instances ask."""
    return sha256_file(path)


def _interpolate(boxes: np.ndarray, detected: np.ndarray) -> np.ndarray:
    """Fill frames without a detection: linear between detected frames, held at the ends."""
    frames = np.arange(len(boxes))
    known = np.flatnonzero(detected)
    filled = boxes.copy()
    for k in range(boxes.shape[1]):
        filled[:, k] = np.interp(frames, known, boxes[known, k])
    return filled


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
            self._detector, self._predictor = _dlib_models(str(predictor_path()))

    def extract(self, video: DecodedVideo) -> dict[str, np.ndarray]:
        self.setup("cpu")
        frames = video.frames
        count = len(frames)
        boxes = np.zeros((count, 4), np.float64)
        detected = np.zeros(count, bool)
        for t, frame in enumerate(frames):
            box = self._detect(frame)
            if box is not None:
                boxes[t], detected[t] = box, True
        if not detected.any():
            raise MediaError(
                f"no face found in any of the {count} frames",
                path=video.path,
                fix="check that the video shows a frontal face; face metrics skip this clip",
            )
        boxes = _interpolate(boxes, detected)
        landmarks = np.stack([self._landmarks(f, b) for f, b in zip(frames, boxes, strict=True)])
        return {
            "boxes": boxes.astype(np.float32),
            "detected": detected,
            "landmarks": landmarks.astype(np.float32),
        }

    def _detect(self, frame: np.ndarray) -> np.ndarray | None:
        """The largest face as ``[x0, y0, x1, y1]`` in full-frame pixels, or None."""
        height, width = frame.shape[:2]
        scale = min(1.0, self.detect_size / max(height, width))
        image = frame
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            image = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
            scale_x, scale_y = size[0] / width, size[1] / height
        else:
            scale_x = scale_y = 1.0
        faces = self._detector(np.ascontiguousarray(image), self.upsample)
        if not faces:
            return None
        face = max(faces, key=lambda r: r.width() * r.height())
        # dlib rectangles are inclusive; +1 turns right/bottom into edges before rescaling.
        return np.array(
            [
                face.left() / scale_x,
                face.top() / scale_y,
                (face.right() + 1) / scale_x,
                (face.bottom() + 1) / scale_y,
            ]
        )

    def _landmarks(self, frame: np.ndarray, box: np.ndarray) -> np.ndarray:
        import dlib

        x0, y0, x1, y1 = (round(float(v)) for v in box)
        rect = dlib.rectangle(x0, y0, max(x0, x1 - 1), max(y0, y1 - 1))
        shape = self._predictor(np.ascontiguousarray(frame), rect)
        return np.array([(p.x, p.y) for p in shape.parts()], np.float64)


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


def crop_faces(
    frames: np.ndarray, boxes: np.ndarray, size: int = 224, scale: float = 1.3
) -> np.ndarray:
    """Square face crops, (T, size, size, 3) uint8, for metrics that look at the face only.

    Each crop is centred on its box, its side ``scale`` times the box's longer side (some
    context around dlib's tight box), zero-padded where it leaves the frame, then resized to
    ``size`` with area averaging (downscale) or bilinear (upscale) interpolation.
    """
    frames = np.asarray(frames)
    boxes = np.asarray(boxes, np.float64)
    if len(frames) != len(boxes):
        raise ValueError(f"{len(frames)} frames but {len(boxes)} boxes")
    out = np.zeros((len(frames), size, size, 3), np.uint8)
    for t, (frame, (x0, y0, x1, y1)) in enumerate(zip(frames, boxes, strict=True)):
        height, width = frame.shape[:2]
        side = max(1, round(max(x1 - x0, y1 - y0) * scale))
        left = round((x0 + x1) / 2 - side / 2)
        top = round((y0 + y1) / 2 - side / 2)
        crop = np.zeros((side, side, 3), np.uint8)
        sx0, sy0 = max(left, 0), max(top, 0)
        sx1, sy1 = min(left + side, width), min(top + side, height)
        if sx1 > sx0 and sy1 > sy0:
            crop[sy0 - top : sy1 - top, sx0 - left : sx1 - left] = frame[sy0:sy1, sx0:sx1]
        interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
        out[t] = cv2.resize(crop, (size, size), interpolation=interpolation)
    return out


@hookimpl
def register_extractors(register):
    register(FaceTrack)


@lru_cache(maxsize=2)
def _dlib_models(predictor: str) -> tuple[Any, Any]:
    """dlib's HOG detector and 68-point predictor, loaded once per process: the extractor,
    the face-crop FID/FVD/HSEmotion, CSIM and au_warp each track faces (~70 MB a copy).
    Both are read-only after loading, and a run uses them one call at a time."""
    import dlib

    return dlib.get_frontal_face_detector(), dlib.shape_predictor(predictor)
