"""THEval's face mesh: mediapipe FaceMesh landmarks per frame, in the streams THEval's scripts run.

THEval (Newbyl/THEval) runs mediapipe's FaceMesh solution in tracking mode
(``static_image_mode=False``, ``max_num_faces=1``, confidences 0.5), but each of its four
face-dynamics scripts feeds it differently, and tracking makes every landmark depend on the
frames before it, so each distinct feed is its own stream here:

- ``rgb256``: the RGB frame resized to 256x256 (``cv2.resize``, bilinear), ``refine_landmarks``
  on: ``Naturalness/lip_dynamics.py`` and ``Synchronization/silent_lip_stability.py``;
- ``rgb``: the RGB frame at full size, refined: ``Naturalness/eyebrow_dynamics.py``;
- ``bgr``: the frame with red and blue swapped, full size, not refined:
  ``Synchronization/lip_sync.py`` reads RGB frames with decord and then converts them "BGR to
  RGB", so FaceMesh sees the channels swapped; its FaceMesh keeps the default
  ``refine_landmarks=False``.

A 256x256 video gives ``rgb`` exactly ``rgb256``'s input, so that stream is run once and
shared (the demo's clips are 256 px: one FaceMesh pass per frame for lip and eyebrow
dynamics). ``theval_facemesh`` runs the two RGB feeds, ``theval_facemesh_bgr`` lip-sync's, and
``theval_facemesh_silent`` silent-lip stability's feed of the silent frames alone: each feed is
one tracker, so splitting them runs nothing twice and a run pays only for the feeds its
metrics read. Every stream
walks the one decode pass, chunk by chunk, with its own tracker created for this video (THEval
keeps one tracker for all the videos of a list, so its first frame of a video may start from
the previous video's face: the only difference in the feed, and why the parity test runs
THEval per video).

Output, per stream ``S``: ``S_xy`` (T, K, 2) float32, the landmarks' normalised ``(x, y)`` as
mediapipe returns them, for the K indices in ``indices`` (every point any THEval metric reads);
``S_found`` (T,) bool, True where a face was found. ``frame_size`` is ``(height, width)``.
No face in any frame is not an error: THEval scores such a video (0 for the dynamics).
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import numpy as np

from auhead_bench import Extractor, VideoView, hookimpl
from auhead_bench.native_logs import ignore_protobuf_deprecation, quiet_native_stderr
from auhead_bench_metrics.theval_vad import MIN_SILENT_RUN_MS, silent_frames

# mediapipe's FACEMESH_LIPS connections, as listed in THEval's lip_dynamics.py: 40 points.
LIPS = (
    0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191,
    267, 269, 270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415,
)  # fmt: skip
# The points of FACEMESH_LEFT/RIGHT_EYEBROW and _EYE (eyebrow_dynamics.py).
LEFT_EYEBROW = (276, 282, 283, 285, 293, 295, 296, 300, 334, 336)
RIGHT_EYEBROW = (46, 52, 53, 55, 63, 65, 66, 70, 105, 107)
LEFT_EYE = (249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466)
RIGHT_EYE = (7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246)
# Inner lip rows paired upper/lower (lip_sync.py, silent_lip_stability.py); eye corners.
UPPER_LIP = (191, 80, 81, 82, 13, 312, 311, 310)
LOWER_LIP = (95, 88, 178, 87, 14, 317, 402, 318)
EYE_CORNERS = (33, 133, 362, 263)

INDICES = tuple(sorted(set(LIPS + LEFT_EYEBROW + RIGHT_EYEBROW + LEFT_EYE + RIGHT_EYE
                           + UPPER_LIP + LOWER_LIP + EYE_CORNERS)))
SIZE = 256  # lip_dynamics.py and silent_lip_stability.py resize every frame to 256x256
STREAMS: dict[str, dict[str, Any]] = {
    "rgb256": {"resize": SIZE, "swap_red_blue": False, "refine_landmarks": True},
    "rgb": {"resize": None, "swap_red_blue": False, "refine_landmarks": True},
    "bgr": {"resize": None, "swap_red_blue": True, "refine_landmarks": False},
}
CONFIDENCE = 0.5  # min_detection_confidence and min_tracking_confidence, in every script


def position(index: int) -> int:
    """Where mediapipe landmark ``index`` sits in the extractor's K axis."""
    return INDICES.index(index)


def positions(indices: tuple[int, ...]) -> np.ndarray:
    return np.array([position(i) for i in indices])


def face_mesh(refine: bool) -> Any:
    """A FaceMesh tracker in THEval's settings."""
    import mediapipe as mp

    ignore_protobuf_deprecation()
    return mp.solutions.face_mesh.FaceMesh(
        static_image_mode=False,
        max_num_faces=1,
        refine_landmarks=refine,
        min_detection_confidence=CONFIDENCE,
        min_tracking_confidence=CONFIDENCE,
    )


def landmarks(mesh: Any, image: np.ndarray) -> np.ndarray | None:
    """The first face's normalised (x, y) at ``INDICES``, or None without a face."""
    faces = mesh.process(image).multi_face_landmarks
    if not faces:
        return None
    marks = faces[0].landmark
    return np.array([(marks[i].x, marks[i].y) for i in INDICES], np.float32)


class THEvalFaceMesh(Extractor):
    """mediapipe FaceMesh landmarks in THEval's RGB feeds, ``rgb256`` and ``rgb`` (see the
    module docstring): lip dynamics, eyebrow dynamics, and the silent-lip feed's shortcut."""

    id = "theval_facemesh"
    description = (
        "mediapipe FaceMesh (tracking, 1 face, confidences 0.5) in THEval's RGB feeds: 256 px "
        "and full size, refined."
    )
    version = "1"
    streams: tuple[str, ...] = ("rgb256", "rgb")

    def params(self) -> dict[str, Any]:
        # The FaceMesh model ships inside the mediapipe wheel: its version names the weights.
        return {
            "library": f"mediapipe=={version('mediapipe')}",
            "solution": "face_mesh",
            "static_image_mode": False,
            "max_num_faces": 1,
            "min_detection_confidence": CONFIDENCE,
            "min_tracking_confidence": CONFIDENCE,
            "resize": "cv2.resize INTER_LINEAR",
            "streams": {s: STREAMS[s] for s in self.streams},
            "indices": list(INDICES),
            "tracker": "one per video and stream",
        }

    def extract(self, video: VideoView) -> dict[str, np.ndarray]:
        # mediapipe's graph threads log to file descriptor 2 (absl, C++) while a FaceMesh
        # starts, runs and closes, at times of their own: kept out of the run's output.
        with quiet_native_stderr():
            return self._extract(video)

    def _extract(self, video: VideoView) -> dict[str, np.ndarray]:
        """One walk over the chunks; each frame goes through every distinct stream."""
        import cv2

        height, width = video.frame_shape()
        # A 256x256 video: the full-size refined feed is the resized one, frame for frame.
        shared = (height, width) == (SIZE, SIZE) and {"rgb", "rgb256"} <= set(self.streams)
        run = [s for s in self.streams if not (shared and s == "rgb")]
        meshes = {s: face_mesh(STREAMS[s]["refine_landmarks"]) for s in run}
        points: dict[str, list[np.ndarray]] = {s: [] for s in run}
        found: dict[str, list[bool]] = {s: [] for s in run}
        missing = np.zeros((len(INDICES), 2), np.float32)
        try:
            for chunk in video.chunks():
                for frame in chunk.frames:
                    for s in run:
                        feed = frame
                        if STREAMS[s]["resize"]:
                            feed = cv2.resize(feed, (SIZE, SIZE))
                        if STREAMS[s]["swap_red_blue"]:
                            feed = np.ascontiguousarray(feed[..., ::-1])
                        xy = landmarks(meshes[s], feed)
                        points[s].append(missing if xy is None else xy)
                        found[s].append(xy is not None)
        finally:
            for mesh in meshes.values():
                mesh.close()
        if shared:
            points["rgb"], found["rgb"] = points["rgb256"], found["rgb256"]
        out: dict[str, np.ndarray] = {
            "indices": np.array(INDICES, np.int16),
            "frame_size": np.array([height, width], np.int32),
        }
        for s in self.streams:
            out[f"{s}_xy"] = (
                np.stack(points[s]) if points[s] else np.zeros((0, len(INDICES), 2), np.float32)
            )
            out[f"{s}_found"] = np.array(found[s], bool)
        return out


class THEvalFaceMeshBGR(THEvalFaceMesh):
    """The ``bgr`` feed (lip-sync's): its own extractor so that a run without lip-sync (the
    demo) does not pay for it; a tracker per feed either way, so nothing runs twice."""

    id = "theval_facemesh_bgr"
    description = (
        "mediapipe FaceMesh (tracking, 1 face, confidences 0.5) on red/blue-swapped full-size "
        "frames, unrefined: THEval lip-sync's feed."
    )
    streams = ("bgr",)


class THEvalSilentFaceMesh(Extractor):
    """FaceMesh on the VAD-silent frames only, as ``silent_lip_stability.py`` feeds it.

    THEval's silent-lip script seeks to each silent frame and tracks across them alone, so a
    face's landmarks after a speech gap start from the last silent frame's, not from the
    frame before; tracked over every frame instead, its value moved by up to 15% on our test
    clips. The frames come from the same decode pass (a replay; nothing is decoded again), at
    256 px, refined. When the silent frames are one run from the first frame, that feed is
    the first frames of ``theval_facemesh``'s ``rgb256`` stream, whose landmarks are reused.

    Output: ``silent`` (T,) bool (silent runs of at least 0.3 s outside speech), ``xy``
    (T, K, 2) and ``found`` (T,) as in ``theval_facemesh`` (False off the silent frames).
    """

    id = "theval_facemesh_silent"
    description = "mediapipe FaceMesh tracked over the VAD-silent frames only (THEval silent lip)."
    version = "1"
    needs = ("frames", "theval_facemesh", "theval_vad_silero_v5")

    def params(self) -> dict[str, Any]:
        return {
            "library": f"mediapipe=={version('mediapipe')}",
            "stream": STREAMS["rgb256"],
            "min_silent_run_ms": MIN_SILENT_RUN_MS,
            "confidence": CONFIDENCE,
        }

    def extract(self, video: VideoView) -> dict[str, np.ndarray]:
        # mediapipe's graph threads log to file descriptor 2 (absl, C++) while a FaceMesh
        # starts, runs and closes, at times of their own: kept out of the run's output.
        with quiet_native_stderr():
            return self._extract(video)

    def _extract(self, video: VideoView) -> dict[str, np.ndarray]:
        import cv2

        mesh = video["theval_facemesh"]
        count = len(mesh["rgb256_found"])
        silent = silent_frames(video["theval_vad_silero_v5"]["segments"], count, video.fps)
        xy = np.zeros((count, len(INDICES), 2), np.float32)
        found = np.zeros(count, bool)
        run = np.flatnonzero(silent)
        if len(run) and run[-1] == len(run) - 1:  # one run from frame 0: the same feed
            xy[run], found[run] = mesh["rgb256_xy"][run], mesh["rgb256_found"][run]
        elif len(run):
            tracker = face_mesh(STREAMS["rgb256"]["refine_landmarks"])
            try:
                for chunk in video.chunks():
                    for t in range(chunk.start, chunk.stop):
                        if silent[t]:
                            image = cv2.resize(chunk.frames[t - chunk.start], (SIZE, SIZE))
                            points = landmarks(tracker, image)
                            if points is not None:
                                xy[t], found[t] = points, True
                    if not silent[chunk.stop :].any():
                        break
            finally:
                tracker.close()
        return {"silent": silent, "xy": xy, "found": found}


@hookimpl
def register_extractors(register):
    register(THEvalFaceMesh)
    register(THEvalFaceMeshBGR)
    register(THEvalSilentFaceMesh)
