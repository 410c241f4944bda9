"""`au_warp`: a fast CPU method that animates the reference image by warping it with AUs.

The AU track comes from the clip's AU labels when it has them, otherwise from the audio: a
jaw-opening curve from the audio's energy plus a constant expression per emotion label
(EMOTION_PROTOTYPES). py-feat's AU->mesh model turns each frame's AUs into face-mesh
displacements (auhead/au_mesh.py), which move the reference's dlib 68 landmarks; a
piecewise-affine warp (scikit-image) carries the image along, and the inside of a mouth that
opens beyond the reference's is darkened. ``strength`` scales the AUs: 0 holds the reference.

It needs no downloads and no GPU, so a benchmark can draw a real trade-off curve (expression
strength against image fidelity) anywhere. It models no head motion, blinks or teeth.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from pydantic import Field

from auhead_bench import Clip, Generation, Method, Options, hookimpl, media
from auhead_bench.emotions import EMOTIONS
from auhead_bench.errors import BenchError, MediaError
from auhead_bench_methods.auhead import au_mesh
from auhead_bench_methods.auhead.au_labels import clip_conditioning_track
from auhead_bench_methods.auhead.au_space import AU_NAMES, N_AUS, VIDEO_FPS
from auhead_bench_methods.auhead.prompts import canonical_emotion

# Constant expression per emotion, FEAFA+ AU name -> intensity. EMFACS prototypes (Ekman &
# Friesen; happy AU6+12, sad AU1+4+15, surprise AU1+2+5+26, fear AU1+2+4+5+20+26, anger
# AU4+5+7+23, disgust AU9+10, contempt unilateral AU12) restated in the FEAFA+ set, which has
# no lip-corner depressor (AU15), lid tightener (AU7) or lip tightener (AU23): those are left
# out, and AU6's narrowing of the eyes is a slight eye closure. Intensities are our choice,
# moderate so the warp stays plausible; the audio's jaw curve is added on top. One entry per
# emotion of the suite's vocabulary (prompts.EMOTIONS, MEAD's eight).
EMOTION_PROTOTYPES: dict[str, dict[str, float]] = {
    "neutral": {},
    "happy": {
        "left_lip_corner_raise": 0.6, "right_lip_corner_raise": 0.6,
        "left_eye_closure": 0.15, "right_eye_closure": 0.15,
    },
    "sad": {
        "left_brow_raise": 0.3, "right_brow_raise": 0.3,
        "left_brow_lower": 0.3, "right_brow_lower": 0.3, "chin_raise": 0.3,
    },
    "surprised": {
        "left_brow_raise": 0.6, "right_brow_raise": 0.6,
        "left_lid_raise": 0.5, "right_lid_raise": 0.5, "jaw_drop_mouth_open": 0.2,
    },
    "fear": {
        "left_brow_raise": 0.4, "right_brow_raise": 0.4,
        "left_brow_lower": 0.2, "right_brow_lower": 0.2,
        "left_lid_raise": 0.5, "right_lid_raise": 0.5,
        "left_lip_corner_stretch": 0.4, "right_lip_corner_stretch": 0.4,
        "jaw_drop_mouth_open": 0.1,
    },
    "angry": {
        "left_brow_lower": 0.6, "right_brow_lower": 0.6,
        "left_lid_raise": 0.3, "right_lid_raise": 0.3, "chin_raise": 0.2,
    },
    "disgusted": {
        "nose_wrinkle": 0.5, "upper_lip_raise": 0.4,
        "left_brow_lower": 0.2, "right_brow_lower": 0.2,
    },
    "contempt": {"left_lip_corner_raise": 0.4},
}  # fmt: skip
# Audio energy -> jaw opening (FEAFA AU 8): frame RMS in dBFS mapped linearly from
# SILENCE_DB (closed) to LOUD_DB (JAW_MAX open), then smoothed over 3 frames.
SILENCE_DB = -45.0
LOUD_DB = -12.0
JAW_MAX = 0.7
JAW = AU_NAMES.index("jaw_drop_mouth_open")
FACE_RING = 1.8  # fixed control points on a box this many times the landmarks' extent
MAP_STEP = 2  # the warp's displacement field is evaluated every MAP_STEP pixels, then resized
MOUTH_COLOUR = np.array([40, 18, 20], np.float32)  # RGB of an open mouth's inside
MOUTH_FULL_DARK = 0.06  # extra lip gap (fraction of face height) at which it is fully dark


def emotion_key(label: str | None, clip_id: str | None = None) -> str:
    """A clip's emotion label (any spelling stage 1 knows) as a key of EMOTION_PROTOTYPES;
    no label is neutral, an unknown one a BenchError (it used to become neutral silently)."""
    if label is None or not str(label).strip():
        return "neutral"
    emotion = canonical_emotion(label)
    if emotion is None:
        raise BenchError(
            f"unknown emotion label {label!r}" + (f" of clip {clip_id!r}" if clip_id else ""),
            fix=f"label clips with one of {', '.join(EMOTIONS)}",
        )
    return emotion


def prototype(emotion: str | None) -> np.ndarray:
    """The (24,) AU vector of an emotion label."""
    vector = np.zeros(N_AUS, np.float32)
    for name, value in EMOTION_PROTOTYPES[emotion_key(emotion)].items():
        vector[AU_NAMES.index(name)] = value
    return vector


def jaw_curve(audio: np.ndarray, frames: int) -> np.ndarray:
    """(frames,) jaw opening in [0, JAW_MAX] from the energy of each 40 ms video frame."""
    hop = media.SAMPLE_RATE // VIDEO_FPS
    padded = np.zeros(frames * hop, np.float32)
    padded[: min(len(audio), len(padded))] = audio[: len(padded)]
    rms = np.sqrt(np.mean(np.square(padded.reshape(frames, hop), dtype=np.float64), axis=1))
    level = 20 * np.log10(rms + 1e-10)
    opening = np.clip((level - SILENCE_DB) / (LOUD_DB - SILENCE_DB), 0.0, 1.0) * JAW_MAX
    smoothed = np.convolve(np.pad(opening, 1, mode="edge"), [0.25, 0.5, 0.25], mode="valid")
    return smoothed.astype(np.float32)


def audio_au_track(audio: np.ndarray, frames: int, emotion: str | None) -> np.ndarray:
    """(frames, 24): the emotion's prototype with the audio's jaw curve added to AU 8."""
    track = np.repeat(prototype(emotion)[None], frames, axis=0)
    track[:, JAW] += jaw_curve(audio, frames)
    return np.clip(track, 0.0, 1.0)


class FaceWarper:
    """Moves a reference image's 68 landmarks by AU-driven mesh displacements."""

    def __init__(self, image: np.ndarray, landmarks: np.ndarray):
        self.image = np.asarray(image, np.uint8)
        self.landmarks = np.asarray(landmarks, np.float64)
        self.placement = au_mesh.fit_placement(self.landmarks)
        self.vertices = au_mesh.dlib68_vertices()
        self.rest = au_mesh.neutral_points()[self.vertices]
        height, width = self.image.shape[:2]
        self.fixed = _fixed_points(self.landmarks, height, width)
        low, high = self.landmarks.min(axis=0), self.landmarks.max(axis=0)
        self.face_height = float(high[1] - low[1])
        rows, cols = np.mgrid[0:height:MAP_STEP, 0:width:MAP_STEP]
        self.grid = np.stack([cols.ravel(), rows.ravel()], axis=1).astype(np.float64)
        self.grid_shape = rows.shape

    def moved_landmarks(self, aus: np.ndarray) -> np.ndarray:
        """(T, 68, 2): the reference landmarks displaced as the mesh moves from rest to ``aus``."""
        points = au_mesh.mesh_points(aus)[:, self.vertices]
        return self.landmarks + self.placement.apply_vectors(points - self.rest)

    def frames(self, aus: np.ndarray) -> np.ndarray:
        """(T, H, W, 3) uint8 frames, one per AU row.

        BLAS runs single-threaded here: each frame's Delaunay (scipy) solves ~100 tiny 3x3
        systems through OpenBLAS, whose idle worker then spins on the other core between
        frames (4.5x the CPU time for the same result, measured; the spin also slows the run's
        other threads).
        """
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            return np.stack([self.warp(target) for target in self.moved_landmarks(aus)])

    def warp(self, target: np.ndarray) -> np.ndarray:
        if np.abs(target - self.landmarks).max() < 1e-3:
            return self.image.copy()
        height, width = self.image.shape[:2]
        shift = self.sampling_shift(target).reshape(*self.grid_shape, 2)
        shift = cv2.resize(
            shift.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR
        )
        rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
        out = cv2.remap(
            self.image, cols + shift[..., 0], rows + shift[..., 1], cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        return self._darken_mouth(out, target)

    def sampling_shift(self, target: np.ndarray) -> np.ndarray:
        """Per grid point: offset from an output pixel to where it samples the reference.

        The piecewise-affine warp of scikit-image's PiecewiseAffineTransform (target points
        triangulated by Delaunay, one affine map per triangle), computed as scipy's linear
        interpolation over the same Delaunay triangles, which is the same map: estimating
        two affines per triangle with scikit-image took ~0.13 s a frame here, this ~5 ms.
        """
        from scipy.interpolate import LinearNDInterpolator

        targets = np.concatenate([target, self.fixed])
        sources = np.concatenate([self.landmarks, self.fixed])
        shift = LinearNDInterpolator(targets, sources - targets, fill_value=0.0)(self.grid)
        return np.asarray(shift, np.float64)

    def _darken_mouth(self, image: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Shade the inner-lip polygon by how much wider it opened than in the reference."""
        extra = _lip_gap(target) - _lip_gap(self.landmarks)
        alpha = np.clip(extra / (MOUTH_FULL_DARK * self.face_height), 0.0, 1.0) * 0.85
        if alpha <= 0:
            return image
        mask = np.zeros(image.shape[:2], np.float32)
        cv2.fillPoly(mask, [np.round(target[60:68] * 16).astype(np.int32)], 1.0, cv2.LINE_AA, 4)
        mask = cv2.GaussianBlur(mask, (3, 3), 0)[..., None] * alpha
        return np.round(image * (1 - mask) + MOUTH_COLOUR * mask).astype(np.uint8)


def _lip_gap(landmarks: np.ndarray) -> float:
    """Mean vertical distance between the inner upper (61-63) and lower (65-67) lip points."""
    return float(np.mean(landmarks[[67, 66, 65], 1] - landmarks[[61, 62, 63], 1]))


def _fixed_points(landmarks: np.ndarray, height: int, width: int) -> np.ndarray:
    """Anchors that do not move: a ring around the face and the image's border."""
    low, high = landmarks.min(axis=0), landmarks.max(axis=0)
    centre, half = (low + high) / 2, (high - low) / 2 * FACE_RING
    ring = centre + half * np.array(
        [[-1, -1], [0, -1], [1, -1], [1, 0], [1, 1], [0, 1], [-1, 1], [-1, 0]], np.float64
    )
    ring = np.clip(ring, [2, 2], [width - 3, height - 3])
    w, h = width - 1, height - 1
    border = np.array(
        [[0, 0], [w / 2, 0], [w, 0], [w, h / 2], [w, h], [w / 2, h], [0, h], [0, h / 2]]
    )
    return np.unique(np.round(np.concatenate([ring, border]), 2), axis=0)


class AUWarpOptions(Options):
    """``strength`` scales every AU (0: the reference held); ``au_source`` picks the track."""

    strength: float = Field(1.0, ge=0.0, le=3.0)
    # auto: the clip's AU labels when it has them, else audio energy + emotion prototype
    au_source: Literal["auto", "labels", "audio"] = "auto"


class AUWarp(Method):
    id = "au_warp"
    description = (
        "CPU baseline: AU track (labels, or audio energy + emotion prototype) -> py-feat "
        "AU->mesh -> piecewise-affine warp of the reference image."
    )
    version = "1"
    deterministic = True  # no sampling: the seed is not used
    Options = AUWarpOptions

    def fingerprint(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "au_to_mesh": f"py-feat au_to_mesh_pls_{au_mesh.MESH_MODEL_VERSION}",
            "landmarks": "dlib_shape_predictor_68",
        }

    def clip_fingerprint(self, clip: Clip, options: AUWarpOptions) -> dict[str, Any]:
        """The emotion label picks the AU prototype (and is recorded): two clips with the same
        files and different labels must not share a cached video."""
        return {"emotion": clip.emotion}

    def weights(self) -> dict[str, str]:
        from auhead_bench.faces import PREDICTOR_FILE, predictor_path
        from auhead_bench.weights import file_sha256

        return {
            f"au_to_mesh_pls_{au_mesh.MESH_MODEL_VERSION}.npz": au_mesh.mesh_weights_sha256(),
            PREDICTOR_FILE: file_sha256(predictor_path()),
        }

    def generate(
        self, clip: Clip, options: AUWarpOptions, seed: int, out_path: Path
    ) -> Generation:
        emotion = emotion_key(clip.emotion, clip.id)  # an unknown label fails before any work
        frames = media.count_frames(clip.video)
        audio, _ = media.decode_audio(clip.audio)
        reference = media.read_image(clip.reference)
        use_labels = clip.au_labels is not None and options.au_source != "audio"
        if options.au_source == "labels" and clip.au_labels is None:
            raise MediaError(
                "clip has no AU labels", path=clip.video, fix="use au_source: auto or audio"
            )
        if use_labels:
            aus = clip_conditioning_track(clip, frames)
        else:
            aus = audio_au_track(audio, frames, emotion)
        aus = np.clip(aus * options.strength, 0.0, 1.0).astype(np.float32)
        landmarks = au_mesh.reference_landmarks(reference, clip.reference)
        if landmarks is None:
            raise MediaError(
                "no face found in the reference image", path=clip.reference,
                fix="au_warp needs a frontal face in the reference",
            )
        video = FaceWarper(reference, landmarks).frames(aus)
        media.write_video(out_path, video, audio)
        return Generation(
            arrays={"au_track": aus},
            info={
                "au_source": "labels" if use_labels else "audio+emotion",
                "emotion": emotion,
            },
        )


@hookimpl
def register_methods(register):
    register(AUWarp)
