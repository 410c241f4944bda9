"""CSIM: identity preservation, as the cosine similarity of face embeddings between the clip's
reference (source) image and each generated frame, averaged over frames.

Two embedders, two ids, never mixed in one table:

- ``csim_arcface_r50_pyfeat``: py-feat's ArcFace ResNet-50 (InsightFace buffalo_l weights,
  ``py-feat/arcface_r50``) on py-feat's own RetinaFace face crops, through ``Detectorv1``. The
  field's usual embedder; its weights must be pulled.
- ``csim_dlib_resnet``: dlib's 128-d face descriptor (``dlib_face_recognition_resnet_model_v1``,
  shipped offline by ``face-recognition-models``) on chips aligned from the shared face track's
  68 landmarks. Runs anywhere; its numbers are not comparable with ArcFace CSIM.

The reference image is embedded with the same pipeline as the frames (once per file).
Embeddings are computed inside the metric, not as a shared extractor: no other metric reads
them, and an extractor cannot consume the face track's output.
"""

from __future__ import annotations

from abc import abstractmethod
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from auhead_bench import Clip, ClipScore, ClipSkipped, Options, PerClipMetric, hookimpl
from auhead_bench.errors import MediaError
from auhead_bench.faces import DESCRIPTOR_FILE, descriptor_path
from auhead_bench.features import VideoFeatures
from auhead_bench.media import DecodedVideo, read_image, sha256_file
from auhead_bench_metrics import pyfeat
from auhead_bench_metrics.face_track import FaceTrack


@lru_cache(maxsize=4)
def _sha256(path: Path) -> str:
    return sha256_file(path)


def image_as_video(image: np.ndarray, path: Path) -> DecodedVideo:
    """A one-frame video, so an image goes through the same extractors as frames do."""
    return DecodedVideo(
        path=path, frames=image[None], fps=25.0, audio=np.zeros(0, np.float32),
        sample_rate=16000, source_fps=25.0, has_audio=False,
    )  # fmt: skip


def cosine(reference: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Cosine similarity of one embedding with each row of ``frames``."""
    reference = np.asarray(reference, np.float64)
    frames = np.asarray(frames, np.float64)
    norms = np.linalg.norm(frames, axis=1) * np.linalg.norm(reference)
    return frames @ reference / np.maximum(norms, 1e-12)


class CSIMOptions(Options):
    """``frame_stride``: embed every k-th generated frame (1: all); frames without a face are
    then left out."""

    frame_stride: int = Field(1, ge=1)


class _CSIM(PerClipMetric):
    """Shared scoring: reference embedding (cached per file) vs each generated frame's."""

    higher_is_better = True
    needs_ground_truth = False
    Options = CSIMOptions
    embedder: ClassVar[str]

    def __init__(self, options: Options | None = None):
        super().__init__(options)
        self._references: dict[tuple[str, int, int], np.ndarray] = {}

    def protocol(self) -> dict[str, Any]:
        return {
            **super().protocol(),
            "embedder": self.embedder,
            "similarity": "cosine",
            "reference": "clip.reference image, same face pipeline as the frames",
            "frames": "every frame_stride-th generated frame, those with a face",
            "reduction": "mean over frames, then over clips",
        }

    @abstractmethod
    def embed_reference(self, image: np.ndarray, path: Path) -> np.ndarray | None:
        """The reference face's embedding, or None when no face is found."""

    @abstractmethod
    def embed_frames(self, video: VideoFeatures) -> np.ndarray:
        """(N, D) embeddings of every ``frame_stride``-th frame that shows a face."""

    def reference_embedding(self, path: Path) -> np.ndarray:
        if not path.is_file():
            raise ClipSkipped(f"reference image {path} not found")
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        if key not in self._references:
            embedding = self.embed_reference(read_image(path), path)
            if embedding is None:
                raise ClipSkipped(f"no face found in the reference image {path.name}")
            self._references[key] = embedding
        return self._references[key]

    def score(
        self, generated: VideoFeatures, ground_truth: VideoFeatures | None, clip: Clip
    ) -> ClipScore:
        if clip.reference is None:
            raise ClipSkipped("clip has no reference image")
        reference = self.reference_embedding(Path(clip.reference))
        frames = self.embed_frames(generated)
        if len(frames) == 0:
            raise ClipSkipped("no face in the generated video")
        similarity = cosine(reference, frames)
        return ClipScore(
            float(similarity.mean()), {"frames": len(similarity), "min": float(similarity.min())}
        )


class DlibCSIM(_CSIM):
    """dlib ResNet 128-d descriptors; faces and landmarks from the shared ``face_track``.

    Each face is aligned by dlib (``get_face_chip``: 150x150, padding 0.25) from the track's 68
    landmarks; ``num_jitters`` 0. Only frames where the tracker itself found a face are used
    (interpolated boxes are skipped). The reference image gets the same detector and predictor.
    """

    id = "csim_dlib_resnet"
    description = "CSIM: cosine of dlib ResNet face descriptors, reference image vs each frame."
    needs = ("frames", "face_track")
    embedder = "dlib_face_recognition_resnet_model_v1 (128-d), chips from face_track landmarks"

    def __init__(self, options: Options | None = None):
        super().__init__(options)
        self._model: Any = None
        self._track: FaceTrack | None = None

    def protocol(self) -> dict[str, Any]:
        return {**super().protocol(), "chip_size": 150, "padding": 0.25, "num_jitters": 0}

    def weights(self) -> dict[str, str]:
        return {DESCRIPTOR_FILE: _sha256(descriptor_path())}

    def setup(self, device: str) -> None:
        """dlib runs on the CPU whatever ``device`` says."""
        if self._model is None:
            import dlib

            self._model = dlib.face_recognition_model_v1(str(descriptor_path()))
            self._track = FaceTrack()
            self._track.setup("cpu")

    def descriptor(self, frame: np.ndarray, box: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        import dlib

        x0, y0, x1, y1 = (round(float(v)) for v in box)
        rect = dlib.rectangle(x0, y0, max(x0, x1 - 1), max(y0, y1 - 1))
        points = dlib.points([dlib.point(round(float(x)), round(float(y))) for x, y in landmarks])
        shape = dlib.full_object_detection(rect, points)
        chip_descriptor = self._model.compute_face_descriptor(
            np.ascontiguousarray(frame), shape, num_jitters=0, padding=0.25
        )
        return np.asarray(chip_descriptor, np.float64)

    def embed_reference(self, image: np.ndarray, path: Path) -> np.ndarray | None:
        self.setup("cpu")
        assert self._track is not None
        try:
            track = self._track.extract(image_as_video(image, path))
        except MediaError:
            return None
        return self.descriptor(image, track["boxes"][0], track["landmarks"][0])

    def embed_frames(self, video: VideoFeatures) -> np.ndarray:
        self.setup("cpu")
        track = video["face_track"]
        frames = np.arange(0, len(video.frames), self.options.frame_stride)
        frames = frames[np.asarray(track["detected"], bool)[frames]]
        rows = [
            self.descriptor(video.frames[t], track["boxes"][t], track["landmarks"][t])
            for t in frames
        ]
        return np.stack(rows) if rows else np.zeros((0, 128))


class ArcFaceCSIM(_CSIM):
    """py-feat's ArcFace R50 embeddings through ``Detectorv1`` (faces: RetinaFace, best one per
    frame; crops as py-feat makes them: 112x112 from the box, no landmark alignment)."""

    id = "csim_arcface_r50_pyfeat"
    description = "CSIM: cosine of ArcFace R50 embeddings (py-feat), reference image vs each frame."
    needs = ("frames",)
    embedder = "py-feat Detectorv1 identity_model='arcface' (ArcFace R50, 512-d)"
    specs: ClassVar[tuple] = (pyfeat.RETINAFACE, pyfeat.ARCFACE_R50)
    models: ClassVar[dict[str, Any]] = {
        "face_model": "retinaface",
        "landmark_model": None,
        "au_model": None,
        "emotion_model": None,
        "identity_model": "arcface",
        "gaze_model": None,
    }
    batch_size = 8
    threshold = 0.5
    columns = [f"Identity_{i}" for i in range(1, 513)]

    def __init__(self, options: Options | None = None):
        super().__init__(options)
        self._detector: Any = None
        self._files: dict = {}

    def protocol(self) -> dict[str, Any]:
        return {
            **super().protocol(),
            "models": self.models,
            "face_detection_threshold": self.threshold,
            "faces_per_frame": "1 (RetinaFace keep_top_k=1: highest score)",
        }

    def weights(self) -> dict[str, str]:
        return pyfeat.weights_record(self.specs)

    def setup(self, device: str) -> None:
        if self._detector is None:
            self._files = pyfeat.find_pyfeat_files(self.specs)
            self._detector = pyfeat.build_detector(self.models, self._files, device)

    def _embed(self, frames: np.ndarray) -> np.ndarray:
        """(T, 512) embeddings, NaN rows where no face was found."""
        self.setup("cpu")
        fex = pyfeat.detect_frames(
            self._detector, frames, self._files, self.batch_size, self.threshold
        )
        out = np.full((len(frames), 512), np.nan)
        out[fex["frame"].to_numpy().astype(int)] = fex[self.columns].to_numpy(dtype=np.float64)
        return out

    def embed_reference(self, image: np.ndarray, path: Path) -> np.ndarray | None:
        embedding = self._embed(image[None])[0]
        return embedding if np.isfinite(embedding).all() else None

    def embed_frames(self, video: VideoFeatures) -> np.ndarray:
        embeddings = self._embed(video.frames[:: self.options.frame_stride])
        return embeddings[np.isfinite(embeddings).all(axis=1)]


@hookimpl
def register_metrics(register):
    register(DlibCSIM)
    register(ArcFaceCSIM)
