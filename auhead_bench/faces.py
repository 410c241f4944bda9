"""dlib faces, offline and on CPU: model files, the shared models, per-frame detection.

Detection is dlib's HOG frontal face detector; landmarks are dlib's 68-point shape predictor
(iBUG 300-W layout), whose weights ship in the PyPI package ``face-recognition-models``. The
face-track extractor (metrics), the AU-warp baseline (methods) and the datasets' face crops
all find faces here, so they agree on where a face is and load each model once per process.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from auhead_bench.errors import BenchError

if TYPE_CHECKING:
    from auhead_bench.views import VideoView

PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"
DESCRIPTOR_FILE = "dlib_face_recognition_resnet_model_v1.dat"
MODELS_PACKAGE = "face_recognition_models"
DETECT_SIZE = 320  # the face-track extractor's defaults, also used for single images
UPSAMPLE = 0


# ---- model files ------------------------------------------------------------------------------


def _model_file(filename: str, what: str) -> Path:
    """Where ``face-recognition-models`` installed ``filename``.

    Found with ``find_spec``, which locates the package without running its ``__init__``: that
    imports ``pkg_resources``, deprecated and absent from setuptools>=81. (Even
    ``importlib.resources.files(package)`` would import it.)
    """
    spec = importlib.util.find_spec(MODELS_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = Path(location) / "models" / filename
        if path.is_file():
            return path
    raise BenchError(
        f"dlib's {what} {filename} is not installed",
        fix="pip install face-recognition-models==0.3.0",
    )


def predictor_path() -> Path:
    """dlib's 68-point landmark predictor file."""
    return _model_file(PREDICTOR_FILE, "68-point landmark model")


def descriptor_path() -> Path:
    """dlib's face descriptor network file (128-d ResNet embeddings)."""
    return _model_file(DESCRIPTOR_FILE, "face descriptor model")


# ---- the shared models ------------------------------------------------------------------------


@lru_cache(maxsize=1)
def hog_detector() -> Any:
    """dlib's HOG frontal face detector, built once per process (read-only after that)."""
    import dlib

    return dlib.get_frontal_face_detector()


@lru_cache(maxsize=1)
def dlib_models() -> tuple[Any, Any]:
    """The HOG detector and the 68-point predictor, loaded once per process: the face track,
    the face-crop FID/FVD/HSEmotion, CSIM and au_warp each track faces (~70 MB a copy).
    Both are read-only after loading, and a run uses them one call at a time."""
    import dlib

    return hog_detector(), dlib.shape_predictor(str(predictor_path()))


# ---- per frame --------------------------------------------------------------------------------


def largest_face(
    frame: np.ndarray,
    detector: Any = None,
    detect_size: int = DETECT_SIZE,
    upsample: int = UPSAMPLE,
) -> np.ndarray | None:
    """The largest HOG face as ``[x0, y0, x1, y1]`` in full-frame pixels (x1, y1 exclusive
    edges), or None.

    Detection runs on a copy whose long side is at most ``detect_size`` (area-averaged; speed,
    talking-head faces are large) with ``upsample`` pyramid up-samplings. ``detector``: the
    shared HOG detector when None.
    """
    detector = hog_detector() if detector is None else detector
    height, width = frame.shape[:2]
    scale = min(1.0, detect_size / max(height, width))
    image = frame
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        scale_x, scale_y = size[0] / width, size[1] / height
    else:
        scale_x = scale_y = 1.0
    faces = detector(np.ascontiguousarray(image), upsample)
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


def box_landmarks(frame: np.ndarray, box: np.ndarray, predictor: Any = None) -> np.ndarray:
    """dlib's 68 landmarks (68, 2) float64 ``(x, y)`` predicted in ``box`` (edges, as
    ``largest_face`` gives). ``predictor``: the shared one when None."""
    import dlib

    predictor = dlib_models()[1] if predictor is None else predictor
    x0, y0, x1, y1 = (round(float(v)) for v in box)
    rect = dlib.rectangle(x0, y0, max(x0, x1 - 1), max(y0, y1 - 1))
    shape = predictor(np.ascontiguousarray(frame), rect)
    return np.array([(p.x, p.y) for p in shape.parts()], np.float64)


def interpolate_boxes(boxes: np.ndarray, detected: np.ndarray) -> np.ndarray:
    """Fill frames without a detection: linear between detected frames, held at the ends."""
    frames = np.arange(len(boxes))
    known = np.flatnonzero(detected)
    filled = boxes.copy()
    for k in range(boxes.shape[1]):
        filled[:, k] = np.interp(frames, known, boxes[known, k])
    return filled


def image_landmarks(image: np.ndarray) -> np.ndarray | None:
    """dlib's 68 landmarks (68, 2) float64 on one still image, None without a face.

    Same detector, defaults and predictor as the face-track extractor, so a reference image
    and the frames of a video are measured alike.
    """
    detector, predictor = dlib_models()
    frame = np.asarray(image, np.uint8)
    box = largest_face(frame, detector, DETECT_SIZE, UPSAMPLE)
    if box is None:
        return None
    return box_landmarks(frame, box, predictor)


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


def face_crop_chunks(video: VideoView, size: int, scale: float) -> Iterator[np.ndarray]:
    """``crop_faces`` of every frame of ``video`` around the shared ``face_track`` boxes, a
    chunk at a time: for extractors with ``needs = ("frames", "face_track")``."""
    boxes = video["face_track"]["boxes"]
    for chunk in video.chunks():
        yield crop_faces(chunk.frames, boxes[chunk.start : chunk.stop], size=size, scale=scale)
