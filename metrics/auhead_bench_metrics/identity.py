"""CSIM: identity preservation, as the cosine similarity of face embeddings between the clip's
reference (source) image and each generated frame, averaged over frames.

Two embedders, two ids, never mixed in one table:

- ``csim_arcface_r50_pyfeat``: py-feat's ArcFace ResNet-50 (InsightFace buffalo_l weights,
  ``py-feat/arcface_r50``) on py-feat's own RetinaFace face crops, through ``Detectorv1``. The
  field's usual embedder; its weights must be pulled.
- ``csim_arcface_insightface_buffalo_l``: the exact InsightFace pipeline (buffalo_l's SCRFD
  det_10g keypoints, ``norm_crop`` alignment to the ArcFace template, w600k_r50), as
  ``FaceAnalysis`` users compute CSIM; steps in ``arcface_aligned.py``, checked against
  InsightFace itself by the ``insightface-csim`` parity check.
- ``csim_dlib_resnet``: dlib's 128-d face descriptor (``dlib_face_recognition_resnet_model_v1``,
  shipped offline by ``face-recognition-models``) on chips aligned from the shared face track's
  68 landmarks. Runs anywhere; its numbers are not comparable with ArcFace CSIM.

The reference image is embedded with the same pipeline as the frames (once per image
content): it reaches the metric as a one-frame video (``reference_needs``), face-tracked and
cached like any video. The py-feat and dlib embeddings are computed inside the metric; the
InsightFace ones come from the ``arcface_buffalo_l`` extractor (cached per video).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from auhead_bench import (
    ClipScore,
    ClipSkipped,
    ClipView,
    Options,
    PerClipMetric,
    VideoView,
    hookimpl,
)
from auhead_bench.faces import DESCRIPTOR_FILE, descriptor_path
from auhead_bench.frames import rebatch
from auhead_bench.media import sha256_file
from auhead_bench.parity import ParityCheck, ParityInputs
from auhead_bench_metrics import arcface_aligned, pyfeat

BLOCK = 32  # strided frames per py-feat call (4 of its batches of 8)


@lru_cache(maxsize=4)
def _sha256(path: Path) -> str:
    return sha256_file(path)


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
        self._references: dict[str, np.ndarray] = {}  # by image content

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
    def embed_reference(self, image: VideoView) -> np.ndarray | None:
        """The reference face's embedding (a one-frame view), or None when no face is found."""

    @abstractmethod
    def embed_frames(self, video: VideoView) -> np.ndarray:
        """(N, D) embeddings of every ``frame_stride``-th frame that shows a face."""

    def reference_embedding(self, image: VideoView) -> np.ndarray:
        if image.content_sha256 not in self._references:
            embedding = self.embed_reference(image)
            if embedding is None:
                raise ClipSkipped(f"no face found in the reference image {image.path.name}")
            self._references[image.content_sha256] = embedding
        return self._references[image.content_sha256]

    def score(self, view: ClipView) -> ClipScore:
        if view.reference is None:
            raise ClipSkipped("clip has no reference image")
        reference = self.reference_embedding(view.reference)
        frames = self.embed_frames(view.generated)
        if len(frames) == 0:
            raise ClipSkipped("no face in the generated video")
        similarity = cosine(reference, frames)
        return ClipScore(
            float(similarity.mean()), {"frames": len(similarity), "min": float(similarity.min())}
        )


def strided_frames(video: VideoView, stride: int) -> Iterator[tuple[int, np.ndarray]]:
    """(index, frame) of every ``stride``-th frame, walking the chunks."""
    for chunk in video.chunks():
        first = -(-chunk.start // stride) * stride
        for t in range(first, chunk.stop, stride):
            yield t, chunk.frames[t - chunk.start]


class DlibCSIM(_CSIM):
    """dlib ResNet 128-d descriptors; faces and landmarks from the shared ``face_track``.

    Each face is aligned by dlib (``get_face_chip``: 150x150, padding 0.25) from the track's 68
    landmarks; ``num_jitters`` 0. Only frames where the tracker itself found a face are used
    (interpolated boxes are skipped). The reference image gets the same detector and predictor.
    """

    id = "csim_dlib_resnet"
    description = "CSIM: cosine of dlib ResNet face descriptors, reference image vs each frame."
    needs = ("frames", "face_track")
    reference_needs = ("frames", "face_track")
    embedder = "dlib_face_recognition_resnet_model_v1 (128-d), chips from face_track landmarks"

    def __init__(self, options: Options | None = None):
        super().__init__(options)
        self._model: Any = None

    def protocol(self) -> dict[str, Any]:
        return {**super().protocol(), "chip_size": 150, "padding": 0.25, "num_jitters": 0}

    def weights(self) -> dict[str, str]:
        return {DESCRIPTOR_FILE: _sha256(descriptor_path())}

    def setup(self, device: str) -> None:
        """dlib runs on the CPU whatever ``device`` says."""
        if self._model is None:
            import dlib

            self._model = dlib.face_recognition_model_v1(str(descriptor_path()))

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

    def embed_reference(self, image: VideoView) -> np.ndarray | None:
        self.setup("cpu")
        track = image["face_track"]  # no face: the scorer reports it before we are called
        frame = next(iter(image.chunks())).frames[0]
        return self.descriptor(frame, track["boxes"][0], track["landmarks"][0])

    def embed_frames(self, video: VideoView) -> np.ndarray:
        self.setup("cpu")
        track = video["face_track"]
        detected = np.asarray(track["detected"], bool)
        rows = [
            self.descriptor(frame, track["boxes"][t], track["landmarks"][t])
            for t, frame in strided_frames(video, self.options.frame_stride)
            if detected[t]
        ]
        return np.stack(rows) if rows else np.zeros((0, 128))


class ArcFaceCSIM(_CSIM):
    """py-feat's ArcFace R50 embeddings through ``Detectorv1`` (faces: RetinaFace, best one per
    frame; crops as py-feat makes them: 112x112 from the box, no landmark alignment)."""

    id = "csim_arcface_r50_pyfeat"
    description = "CSIM: cosine of ArcFace R50 embeddings (py-feat), reference image vs each frame."
    needs = ("frames",)
    reference_needs = ("frames",)
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

    def embed_reference(self, image: VideoView) -> np.ndarray | None:
        embedding = self._embed(next(iter(image.chunks())).frames[:1])[0]
        return embedding if np.isfinite(embedding).all() else None

    def embed_frames(self, video: VideoView) -> np.ndarray:
        """py-feat runs on blocks of ``BLOCK`` strided frames (a multiple of its batch size,
        so its batches are those of one call over every frame)."""
        frames = (frame[None] for _, frame in strided_frames(video, self.options.frame_stride))
        embedded = [self._embed(block) for block in rebatch(frames, BLOCK)]
        if not embedded:
            return np.zeros((0, 512))
        embeddings = np.concatenate(embedded)
        return embeddings[np.isfinite(embeddings).all(axis=1)]


class InsightFaceCSIM(_CSIM):
    """ArcFace CSIM exactly as InsightFace's ``FaceAnalysis`` computes it: buffalo_l's SCRFD
    keypoints, ``norm_crop`` to the 112 px ArcFace template, w600k_r50 (``arcface_aligned``).
    Frames where SCRFD finds no face (score >= 0.5) are left out, as scripts skip them."""

    id = "csim_arcface_insightface_buffalo_l"
    description = ("CSIM: cosine of InsightFace buffalo_l ArcFace embeddings of norm_crop-aligned "
                   "faces, reference image vs each frame.")
    needs = (arcface_aligned.ArcFaceBuffaloL.id,)
    reference_needs = (arcface_aligned.ArcFaceBuffaloL.id,)
    embedder = "InsightFace buffalo_l: det_10g 5 keypoints -> norm_crop 112 -> w600k_r50 (512-d)"

    def protocol(self) -> dict[str, Any]:
        return {**super().protocol(), **arcface_aligned.ArcFaceBuffaloL().params()}

    def setup(self, device: str) -> None:
        """Missing buffalo_l files make the metric not computed (naming the pull command)
        before any video is decoded for its extractor."""
        arcface_aligned.weights_paths()

    def embed_reference(self, image: VideoView) -> np.ndarray | None:
        faces = image[arcface_aligned.ArcFaceBuffaloL.id]
        return faces["embedding"][0] if faces["detected"][0] else None

    def embed_frames(self, video: VideoView) -> np.ndarray:
        faces = video[arcface_aligned.ArcFaceBuffaloL.id]
        keep = np.zeros(len(faces["detected"]), bool)
        keep[:: self.options.frame_stride] = True
        return faces["embedding"][keep & faces["detected"]].astype(np.float64)


class InsightFaceParity(ParityCheck):
    """``csim_arcface_insightface_buffalo_l`` against InsightFace run as its users run it:
    ``FaceAnalysis`` over the same two ONNX files, ``get`` on ``cv2.imread`` of the reference
    image and on each ``cv2.VideoCapture`` frame, ``faces[0].embedding``, cosine, mean over the
    frames with a face (every ``frame_stride``-th, as our metric ran)."""

    id = "insightface-csim"
    metric = InsightFaceCSIM.id
    reference = ("insightface.app.FaceAnalysis(buffalo_l det_10g + w600k_r50, det_size 640)"
                 ".get(bgr)[0].embedding, cosine, mean over frames")
    # insightface pulls in opencv-python, whose cv2 replaces the pinned opencv-contrib-python:
    # install it with --no-deps (onnxruntime is ours, onnx is in the test and bench extras,
    # its others are installed with the suite).
    requires = {"insightface": "--no-deps insightface==2.1"}
    metric_options = {"frame_stride": 1}

    def reference_values(self, inputs: ParityInputs) -> dict[str, float | None]:
        import cv2

        app = face_analysis(inputs.workdir, inputs.device)
        stride = int(inputs.metric_options.get("frame_stride", 1))
        values: dict[str, float | None] = {}
        for clip in inputs.clips:
            faces = app.get(cv2.imread(str(clip.reference_image))) \
                if clip.reference_image else []
            if not faces:
                values[clip.clip_id] = None
                continue
            reference = faces[0].embedding
            capture = cv2.VideoCapture(str(clip.generated))
            similarities, index = [], 0
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                found = app.get(frame) if index % stride == 0 else []
                index += 1
                if found:
                    embedding = found[0].embedding
                    similarities.append(float(np.dot(reference, embedding) / (
                        np.linalg.norm(reference) * np.linalg.norm(embedding))))
            capture.release()
            values[clip.clip_id] = float(np.mean(similarities)) if similarities else None
        return values


def face_analysis(workdir: Path, device: str) -> Any:
    """InsightFace's ``FaceAnalysis`` on a folder holding our cached buffalo_l files (it loads
    every ``*.onnx`` of a model folder and routes each by its inputs and outputs)."""
    from insightface.app import FaceAnalysis

    folder = workdir / "buffalo_l"
    folder.mkdir(parents=True, exist_ok=True)
    for spec in arcface_aligned.SPECS:
        link = folder / spec.filename
        if not link.exists():
            link.symlink_to(arcface_aligned.weights_paths()[spec.name].resolve())
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device == "cuda" \
        else ["CPUExecutionProvider"]
    app = FaceAnalysis(name=str(folder), allowed_modules=["detection", "recognition"],
                       providers=providers)
    app.prepare(ctx_id=0 if device == "cuda" else -1, det_thresh=arcface_aligned.DET_THRESH,
                det_size=arcface_aligned.DET_SIZE)
    return app


@hookimpl
def register_weights(register):
    for spec in arcface_aligned.SPECS:
        register(spec)


@hookimpl
def register_extractors(register):
    register(arcface_aligned.ArcFaceBuffaloL)


@hookimpl
def register_metrics(register):
    register(DlibCSIM)
    register(ArcFaceCSIM)
    register(InsightFaceCSIM)


@hookimpl
def register_parity_checks(register):
    register(InsightFaceParity)
