"""ArcFace embeddings the way InsightFace computes them: buffalo_l's SCRFD detector (det_10g)
gives 5 keypoints, ``norm_crop`` aligns them to the ArcFace 112 px template, w600k_r50 embeds.

This is what a CSIM script built on ``insightface.app.FaceAnalysis`` does per image
(``FaceAnalysis('buffalo_l').prepare(det_size=(640, 640))``, ``app.get(bgr)[0].embedding``),
reproduced step by step from InsightFace's code (python-package/insightface, v2.1):

- detection (``model_zoo/scrfd.py SCRFD.detect``): the image letterboxed into 640x640
  (``cv2.resize`` to the largest fitting size, bilinear, zero padding right/bottom), blob
  ``(x - 127.5) / 128`` RGB, one ONNX run; per stride 8/16/32 (2 anchors a cell) the scores,
  ``distance2bbox`` boxes and ``distance2kps`` keypoints (predictions x stride from the anchor
  centres), scores >= 0.5 kept, coordinates divided by the letterbox scale.
- which face: ``faces[0]``, the highest score (NMS keeps the top candidate first, so NMS is not
  run here: only that face is used).
- alignment (``utils/face_align.py norm_crop``): the similarity transform from the 5 keypoints
  to ``ARCFACE_DST`` (scikit-image ``SimilarityTransform`` least squares), ``cv2.warpAffine``
  to 112x112, bilinear, border 0.
- embedding (``model_zoo/arcface_onnx.py ArcFaceONNX.get_feat``): blob ``(x - 127.5) / 127.5``
  RGB (InsightFace reads BGR and swaps; our frames are RGB already), one ONNX run, 512-d.

Why not import the ``insightface`` package for this: it requires ``opencv-python``, which
installs its own ``cv2`` over the suite's pinned ``opencv-contrib-python`` (measured: cv2 4.14
became 5.1 in the shared environment). So the steps above are written here over the same
libraries InsightFace calls (onnxruntime, OpenCV, scikit-image), and the parity check
(``InsightFaceCSIM``) runs InsightFace itself on the same files when it is installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from auhead_bench import Extractor, VideoView
from auhead_bench.errors import BenchError
from auhead_bench.weights import WeightsSpec, file_sha256, local_path, locate_all

# InsightFace face_align.arcface_dst: where the 5 keypoints (left eye, right eye, nose tip,
# left and right mouth corner) land in a 112x112 ArcFace crop. Data, not code.
ARCFACE_DST = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
     [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)  # fmt: skip
CROP = 112
DET_SIZE = (640, 640)  # (width, height), as FaceAnalysis.prepare(det_size=(640, 640))
DET_THRESH = 0.5
DET_MEAN, DET_STD = 127.5, 128.0  # SCRFD._init_vars
REC_MEAN, REC_STD = 127.5, 127.5  # ArcFaceONNX: graphs without a leading Sub/Mul (w600k_r50)
STRIDES = (8, 16, 32)  # det_10g: 9 outputs = scores, boxes, keypoints per stride
ANCHORS = 2
EMBED_BATCH = 16  # aligned crops per recognition run
EMBEDDING_DIM = 512

_LICENCE = "InsightFace buffalo_l models: non-commercial research purposes only"
# The buffalo_l pack is published as a zip (github.com/deepinsight/insightface/releases,
# buffalo_l.zip); the registry fetches single files, so the HF hub copy of its members
# (public-data/insightface) is the source. InsightFace publishes no per-file sha256: none is
# pinned, every result records the cached file's own (``weights()``).
DET_10G = WeightsSpec(
    name="insightface_buffalo_l_det_10g",
    filename="det_10g.onnx",
    source="hf://public-data/insightface/models/buffalo_l/det_10g.onnx",
    sha256=None,
    licence=_LICENCE,
    description="InsightFace buffalo_l SCRFD-10GF face detector with 5 keypoints (ONNX)",
)
W600K_R50 = WeightsSpec(
    name="insightface_buffalo_l_w600k_r50",
    filename="w600k_r50.onnx",
    source="hf://public-data/insightface/models/buffalo_l/w600k_r50.onnx",
    sha256=None,
    licence=_LICENCE,
    description="InsightFace buffalo_l ArcFace ResNet-50 (WebFace600K) recognition (ONNX)",
)
SPECS = (DET_10G, W600K_R50)


def estimate_norm(keypoints: np.ndarray) -> np.ndarray:
    """The 2x3 similarity (least squares, Umeyama) taking the 5 keypoints onto ARCFACE_DST."""
    from skimage.transform import SimilarityTransform

    transform = SimilarityTransform.from_estimate(keypoints, ARCFACE_DST)
    if not transform:
        raise ValueError(f"no similarity transform for keypoints {keypoints.tolist()}")
    return transform.params[0:2, :]


def norm_crop(image: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """The 112x112 ArcFace crop: InsightFace's ``face_align.norm_crop(image, keypoints)``."""
    import cv2

    matrix = estimate_norm(np.asarray(keypoints))
    return cv2.warpAffine(image, matrix, (CROP, CROP), borderValue=0.0)


def sessions(device: str) -> tuple[Any, Any]:
    """(detector, recogniser) onnxruntime sessions from the weights cache; WeightsMissing
    naming one pull command when either file is absent."""
    import onnxruntime

    files = locate_all(SPECS)
    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda") and "CUDAExecutionProvider" in \
            onnxruntime.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    return tuple(
        onnxruntime.InferenceSession(str(files[spec.name]), options, providers=providers)
        for spec in SPECS
    )


class SCRFDKeypoints:
    """The top face of SCRFD's output: box, score and 5 keypoints (see the module docstring)."""

    def __init__(self, session: Any):
        self.session = session
        self.input_name = session.get_inputs()[0].name
        outputs = session.get_outputs()
        if len(outputs) != 3 * len(STRIDES):
            raise BenchError(
                f"{DET_10G.filename} has {len(outputs)} outputs, not det_10g's 9 (scores, "
                "boxes, keypoints per stride)", path=local_path(DET_10G),
                fix=f"run `{DET_10G.pull_command()} --force`",
            )
        self.output_names = [o.name for o in outputs]
        self._centres: dict[tuple[int, int, int], np.ndarray] = {}

    def letterbox(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """The image resized into DET_SIZE (aspect kept, top-left), and its scale."""
        import cv2

        width, height = DET_SIZE
        if image.shape[0] / image.shape[1] > height / width:
            new_height = height
            new_width = int(new_height / (image.shape[0] / image.shape[1]))
        else:
            new_width = width
            new_height = int(new_width * (image.shape[0] / image.shape[1]))
        scale = new_height / image.shape[0]
        canvas = np.zeros((height, width, 3), np.uint8)
        canvas[:new_height, :new_width] = cv2.resize(image, (new_width, new_height))
        return canvas, scale

    def centres(self, height: int, width: int, stride: int) -> np.ndarray:
        key = (height, width, stride)
        if key not in self._centres:
            grid = np.stack(np.mgrid[:height, :width][::-1], axis=-1).astype(np.float32)
            grid = (grid * stride).reshape(-1, 2)
            self._centres[key] = np.repeat(grid, ANCHORS, axis=0)  # a cell's anchors in a row
        return self._centres[key]

    def detect(self, rgb: np.ndarray) -> tuple[np.ndarray, float, np.ndarray] | None:
        """(box [x0, y0, x1, y1], score, keypoints (5, 2)) of the top face, or None."""
        import cv2

        canvas, scale = self.letterbox(rgb)
        # RGB in, no channel swap: InsightFace's BGR image with swapRB=True gives this blob
        blob = cv2.dnn.blobFromImage(canvas, 1.0 / DET_STD, DET_SIZE, (DET_MEAN,) * 3,
                                     swapRB=False)
        outs = self.session.run(self.output_names, {self.input_name: blob})
        if outs[0].ndim == 3:  # a batched export: (1, N, C)
            outs = [o[0] for o in outs]
        count = len(STRIDES)
        scores, boxes, points = [], [], []
        for level, stride in enumerate(STRIDES):
            centres = self.centres(blob.shape[2] // stride, blob.shape[3] // stride, stride)
            score = outs[level]
            keep = np.where(score >= DET_THRESH)[0]
            distance = outs[level + count] * stride
            box = np.stack([centres[:, 0] - distance[:, 0], centres[:, 1] - distance[:, 1],
                            centres[:, 0] + distance[:, 2], centres[:, 1] + distance[:, 3]],
                           axis=-1)
            offsets = outs[level + 2 * count] * stride
            kps = (np.tile(centres, 5) + offsets).reshape(len(centres), 5, 2)
            scores.append(score[keep])
            boxes.append(box[keep])
            points.append(kps[keep])
        score = np.vstack(scores).ravel()
        if score.size == 0:
            return None
        best = int(np.argmax(score))  # the first of equal scores, as a stable descending sort
        box = (np.vstack(boxes) / scale).astype(np.float32)[best]
        return box, float(score[best]), (np.vstack(points) / scale)[best]


class ArcFaceBuffaloL(Extractor):
    """Per frame: the top SCRFD face, its 5 keypoints, the norm_crop-aligned w600k_r50 embedding.

    Arrays (T frames): ``embedding`` (T, 512) float32, NaN rows where no face was detected;
    ``detected`` (T,); ``boxes`` (T, 4) ``[x0, y0, x1, y1]``; ``score`` (T,); ``keypoints``
    (T, 5, 2). A video without any face is returned as such (all ``detected`` False): the
    CSIM metric says so per clip.
    """

    id = "arcface_buffalo_l"
    description = "InsightFace buffalo_l: SCRFD 5 keypoints, norm_crop 112 px, w600k_r50 512-d."
    version = "1"
    needs = ("frames",)

    def __init__(self) -> None:
        self._detector: SCRFDKeypoints | None = None
        self._recogniser: Any = None

    def params(self) -> dict[str, Any]:
        return {
            "detector": "det_10g (SCRFD-10GF), onnxruntime",
            "det_size": list(DET_SIZE),
            "det_thresh": DET_THRESH,
            "det_blob": f"(x - {DET_MEAN}) / {DET_STD}, RGB",
            "face": "highest detection score (FaceAnalysis.get()[0])",
            "alignment": "norm_crop: SimilarityTransform(5 keypoints -> arcface_dst), "
                         "cv2.warpAffine 112x112, bilinear, border 0",
            "recogniser": "w600k_r50, onnxruntime",
            "rec_blob": f"(x - {REC_MEAN}) / {REC_STD}, RGB",
        }

    def weights(self) -> dict[str, str]:
        out = {}
        for spec in SPECS:
            path = local_path(spec)
            out[spec.filename] = file_sha256(path) if path.is_file() else "missing"
        return out

    def setup(self, device: str) -> None:
        if self._detector is None:
            detector, recogniser = sessions(device)
            self._detector = SCRFDKeypoints(detector)
            self._recogniser = recogniser

    def embed_crops(self, crops: list[np.ndarray]) -> np.ndarray:
        """(N, 512) float32 embeddings of aligned RGB 112x112 crops, EMBED_BATCH per run."""
        import cv2

        name = self._recogniser.get_inputs()[0].name
        out = []
        for start in range(0, len(crops), EMBED_BATCH):
            blob = cv2.dnn.blobFromImages(crops[start:start + EMBED_BATCH], 1.0 / REC_STD,
                                          (CROP, CROP), (REC_MEAN,) * 3, swapRB=False)
            out.append(self._recogniser.run(None, {name: blob})[0].astype(np.float32))
        return np.concatenate(out) if out else np.zeros((0, EMBEDDING_DIM), np.float32)

    def extract(self, video: VideoView) -> dict[str, np.ndarray]:
        """Chunk by chunk: detect per frame, align, embed the chunk's crops in batches."""
        self.setup("cpu")
        assert self._detector is not None
        embeddings, boxes, scores, points = [], [], [], []
        for chunk in video.chunks():
            rows, crops = [], []
            embedding = np.full((len(chunk.frames), EMBEDDING_DIM), np.nan, np.float32)
            for t, frame in enumerate(chunk.frames):
                frame = np.ascontiguousarray(frame)
                face = self._detector.detect(frame)
                if face is None:
                    boxes.append(np.full(4, np.nan, np.float32))
                    scores.append(np.nan)
                    points.append(np.full((5, 2), np.nan, np.float32))
                    continue
                box, score, kps = face
                rows.append(t)
                crops.append(norm_crop(frame, kps))
                boxes.append(box)
                scores.append(score)
                points.append(kps.astype(np.float32))
            if crops:
                embedding[rows] = self.embed_crops(crops)
            embeddings.append(embedding)
        count = len(boxes)
        embedding = (np.concatenate(embeddings) if embeddings
                     else np.zeros((0, EMBEDDING_DIM), np.float32))
        return {
            "embedding": embedding,
            "detected": np.isfinite(np.asarray(scores, np.float32)),
            "boxes": np.asarray(boxes, np.float32).reshape(count, 4),
            "score": np.asarray(scores, np.float32),
            "keypoints": np.asarray(points, np.float32).reshape(count, 5, 2),
        }


def weights_paths() -> dict[str, Path]:
    """Cached buffalo_l files by spec name (WeightsMissing with the pull command)."""
    return locate_all(SPECS)
