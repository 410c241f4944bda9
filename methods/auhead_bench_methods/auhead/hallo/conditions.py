"""Hallo's inputs from a reference image and 16 kHz audio, as its preprocessing makes them.

- Audio (``hallo/datasets/audio_processor.py``, ``hallo/models/wav2vec.py``): the waveform is
  normalised (zero mean, unit variance: wav2vec2's feature extractor) and *then* padded with
  zeros to a whole number of clips; wav2vec2's convolutional features are linearly
  interpolated (align_corners) to one per 25 fps video frame *before* its transformer; the
  hidden states of all its layers but the input (``features: all``) are kept; each frame gets
  the window t-2 .. t+2 (clamped at the ends, ``process_audio_emb``).
- Region masks (``hallo/utils/util.py`` get_mask / get_face_mask / get_lip_mask /
  expand_region / blur_mask / get_union_mask; ``hallo/datasets/image_processor.py``):
  rectangles around mediapipe FaceMesh vertices: the face silhouette (forehead included) and
  the lips. At inference the face box is expanded x1.2 (``face_expand_ratio``) and the lip
  box x2.0; in training (``scripts/data_preprocess.py``) the boxes are not expanded but
  united over all frames of the clip. Each box is resized to 64 x 64, blurred (51 px face,
  31 px lip kernels) and min-max normalised to 0..255; background = 255 - face, face = face -
  lip, lip = lip; per level a PIL bilinear resize to the latent side / 2^d. The face
  locator's input is the face box itself (unblurred, frame resolution). Checked against
  Hallo's functions on the same landmarks: tests/data/check_hallo_conditions.py. Filled in:
  mediapipe's legacy FaceMesh model (shipped in its wheel) instead of Hallo's downloaded
  FaceLandmarker task (same vertex numbering); where mediapipe finds no face, the rest AU
  mesh placed by dlib-68 (or the default placement) stands in.
- Identity (``face_emb``): insightface's ArcFace embedding of the largest face (glintr100,
  512-d, not normalised); zeros where no face is found (Hallo's own fallback), and zeros when
  ``face_embedding`` is "zeros".
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from auhead_bench_methods.auhead import au_mesh
from auhead_bench_methods.auhead.au_space import AUDIO_RATE, VIDEO_FPS

FACE_EXPAND_RATIO = 1.2
AUDIO_MARGIN = 2  # frames of audio context each side (seq_len 5)


def frames_for(audio_samples: int) -> int:
    """Hallo's ``seq_len``: video frames covering the audio, rounded up."""
    return int(np.ceil(audio_samples / AUDIO_RATE * VIDEO_FPS))


@torch.no_grad()
def wav2vec2_frames(model: torch.nn.Module, audio: np.ndarray, frames: int) -> torch.Tensor:
    """(frames, layers, hidden): all transformer layers' states, one row per video frame."""
    from transformers import Wav2Vec2FeatureExtractor

    audio = np.asarray(audio, np.float32)
    values = Wav2Vec2FeatureExtractor(do_normalize=True)(
        audio, sampling_rate=AUDIO_RATE, return_tensors="pt").input_values
    # normalised first, then zero-padded by the frames missing (AudioProcessor.preprocess)
    missing = max(frames - frames_for(len(audio)), 0) * (AUDIO_RATE // VIDEO_FPS)
    values = F.pad(values, (0, max(missing, 400 - values.shape[1])))
    parameter = next(model.parameters())
    extract = model.feature_extractor(values.to(parameter.device, parameter.dtype))
    extract = F.interpolate(extract.float(), size=frames, mode="linear", align_corners=True)
    hidden, _ = model.feature_projection(extract.transpose(1, 2).to(parameter.dtype))
    states = encoder_layer_states(model.encoder, hidden)
    return torch.stack(states, dim=1)[0].transpose(0, 1).float()


def encoder_layer_states(encoder: torch.nn.Module, hidden: torch.Tensor) -> list[torch.Tensor]:
    """Each transformer layer's output (``hidden_states[1:]`` of wav2vec2's encoder), taken
    layer by layer: the post-norm wav2vec2-base encoder's own steps, without attention mask."""
    hidden = hidden + encoder.pos_conv_embed(hidden)
    hidden = encoder.layer_norm(hidden)
    states = []
    for layer in encoder.layers:
        out = layer(hidden, attention_mask=None)
        hidden = out[0] if isinstance(out, tuple) else out
        states.append(hidden)
    return states


def audio_windows(features: torch.Tensor, margin: int = AUDIO_MARGIN) -> torch.Tensor:
    """(F, ...) -> (F, 2 * margin + 1, ...): each frame's neighbours, clamped at the ends."""
    count = len(features)
    index = torch.arange(count)[:, None] + torch.arange(-margin, margin + 1)[None]
    return features[index.clamp(0, count - 1)]


# mediapipe FaceMesh vertex indices Hallo boxes (hallo/utils/util.py): the face silhouette,
# forehead included (vertex 10 is the top of the forehead), and the outer + inner lip contour
SILHOUETTE_IDS = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378,
                  400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21,
                  54, 103, 67, 109)
LIP_IDS = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 146, 91, 181, 84, 17, 314, 405, 321,
           375)
LIP_EXPAND_RATIO = 2.0  # get_lip_mask's default, used by inference's get_mask
MASK_SIDE = 64  # Hallo blurs every region mask at 64 x 64
FACE_KERNEL, LIP_KERNEL = 51, 31


@dataclass
class FaceRegions:
    """Hallo's conditioning masks of one reference (or one training clip).

    ``locator``: the face box at frame resolution, {0, 1} (the face locator's input);
    ``full``/``face``/``lip``: the 64 x 64 uint8 masks Hallo writes as PNGs (sep_background,
    sep_face, sep_lip), resized per level only in ``levels``.
    """

    locator: np.ndarray  # (H, W) float32 in {0, 1}
    full: np.ndarray  # (64, 64) uint8
    face: np.ndarray
    lip: np.ndarray
    source: str = "mediapipe"  # or "mesh": the placed AU mesh stood in for mediapipe

    def levels(self, latent: int, count: int) -> tuple[list[torch.Tensor], ...]:
        """full/face/lip at the denoiser's ``count`` levels: each (1, (latent/2^d)^2) in [0, 1].

        As Hallo's ``attn_transform_*``: torchvision's Resize of the PIL image (PIL bilinear,
        antialiased), then ToTensor (/255)."""
        from PIL import Image

        out: tuple[list[torch.Tensor], ...] = ([], [], [])
        for mask, target in zip((self.full, self.face, self.lip), out, strict=True):
            image = Image.fromarray(mask)
            for depth in range(count):
                side = max(1, latent // 2**depth)
                small = np.asarray(image.resize((side, side), Image.BILINEAR), np.float32)
                target.append(torch.from_numpy(small.reshape(1, -1) / 255.0))
        return out


def expand_region(box: tuple[float, float, float, float], width: int, height: int,
                  ratio: float) -> tuple[int, int, int, int]:
    """Hallo's ``expand_region``: (min_x, max_x, min_y, max_y) scaled about its centre by
    ``ratio``, shifted back inside the image; its floor divisions and rounding kept."""
    min_x, max_x, min_y, max_y = box
    mid_x, mid_y = (max_x + min_x) // 2, (max_y + min_y) // 2
    side_x, side_y = (max_x - min_x) * ratio, (max_y - min_y) * ratio
    min_x, max_x = mid_x - side_x // 2, mid_x + side_x // 2
    min_y, max_y = mid_y - side_y // 2, mid_y + side_y // 2
    if min_x < 0:
        max_x, min_x = max_x - min_x, 0
    if max_x > width:
        min_x, max_x = min_x - (max_x - width), width
    if min_y < 0:
        max_y, min_y = max_y - min_y, 0
    if max_y > height:
        min_y, max_y = min_y - (max_y - height), height
    return round(min_x), round(max_x), round(min_y), round(max_y)


def box_mask(points: np.ndarray, ids: tuple[int, ...], height: int, width: int,
             ratio: float) -> np.ndarray:
    """(H, W) uint8, 255 inside the box of ``points[ids]`` expanded by ``ratio`` (Hallo's
    ``get_face_mask`` / ``get_lip_mask``: rounded extremes, end-exclusive slices)."""
    chosen = np.asarray(points, np.float64)[list(ids)]
    low, high = np.round(chosen.min(axis=0)), np.round(chosen.max(axis=0))
    x0, x1, y0, y1 = expand_region((low[0], high[0], low[1], high[1]), width, height, ratio)
    mask = np.zeros((height, width), np.uint8)
    # Python slices as Hallo's: a negative start (shifted box) counts from the end
    mask[round(y0):round(y1), round(x0):round(x1)] = 255
    return mask


def union_box(masks: list[np.ndarray]) -> np.ndarray:
    """Hallo's ``get_union_mask``: the pixelwise maximum, then its bounding box filled."""
    union = np.maximum.reduce(masks)
    rows, cols = np.any(union, axis=1), np.any(union, axis=0)
    if rows.any():
        y0, y1 = np.where(rows)[0][[0, -1]]
        x0, x1 = np.where(cols)[0][[0, -1]]
        union[y0 : y1 + 1, x0 : x1 + 1] = union.max()
    return union


def blur_mask(mask: np.ndarray, kernel: int) -> np.ndarray:
    """Hallo's ``blur_mask``: resize to 64 x 64 (bilinear), Gaussian blur, min-max to 0..255."""
    small = cv2.resize(mask, (MASK_SIDE, MASK_SIDE))
    blurred = cv2.GaussianBlur(small, (kernel, kernel), 0)
    return cv2.normalize(blurred, None, 0, 255, cv2.NORM_MINMAX)


def regions_from_boxes(face_box: np.ndarray, lip_box: np.ndarray, training: bool,
                       source: str = "mediapipe") -> FaceRegions:
    """The masks Hallo derives from its face and lip boxes.

    Inference (``ImageProcessor.preprocess`` via ``get_mask``): background =
    ``uint8((1 - face/255) * 255)`` (truncation: 50 of 256 values come out one lower than
    255 - face), face = saturating face - lip. Training (``ImageProcessorForDataProcessing``):
    background = 255 - face exactly."""
    face = blur_mask(face_box, FACE_KERNEL)
    lip = blur_mask(lip_box, LIP_KERNEL)
    if training:
        full = (255 - face.astype(np.int16)).astype(np.uint8)
    else:
        full = ((1.0 - face / 255.0) * 255).astype(np.uint8)
    return FaceRegions((face_box > 0).astype(np.float32), full, cv2.subtract(face, lip), lip,
                       source)


@lru_cache(maxsize=1)
def _face_mesh() -> Any:
    """mediapipe's FaceMesh (the landmark model its wheel ships: usable offline)."""
    from mediapipe.python.solutions.face_mesh import FaceMesh

    from auhead_bench.native_logs import ignore_protobuf_deprecation, quiet_native_stderr

    ignore_protobuf_deprecation()
    mesh = FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=False)
    with quiet_native_stderr():  # its graph logs to stderr when it starts (static mode: no state)
        mesh.process(np.zeros((64, 64, 3), np.uint8))
    return mesh


def mediapipe_landmarks(image: np.ndarray) -> np.ndarray | None:
    """(468, 2) pixel points of the face in an RGB uint8 image, None without one.

    Hallo runs mediapipe's Tasks FaceLandmarker (face_landmarker_v2_with_blendshapes.task, a
    download); the wheel's FaceMesh model has the same vertex numbering [filled in: a different
    landmark network, so points can differ by a few pixels]."""
    height, width = image.shape[:2]
    result = _face_mesh().process(np.ascontiguousarray(image[..., :3]))
    if not result.multi_face_landmarks or len(result.multi_face_landmarks) != 1:
        return None
    marks = result.multi_face_landmarks[0].landmark
    return np.array([[p.x * width, p.y * height] for p in marks], np.float64)


def region_points(image: np.ndarray, placement: au_mesh.Placement) -> tuple[np.ndarray, str]:
    """mediapipe-numbered points on ``image``: mediapipe's own, else the rest AU mesh (same
    numbering) placed by ``placement`` (dlib-68, or the default placement) [fallback]."""
    points = mediapipe_landmarks(image)
    if points is not None:
        return points, "mediapipe"
    return placement.apply(au_mesh.neutral_points()), f"mesh:{placement.source}"


def reference_regions(image: np.ndarray, placement: au_mesh.Placement, size: int,
                      face_expand_ratio: float = FACE_EXPAND_RATIO) -> FaceRegions:
    """Inference masks of a ``size`` x ``size`` reference: face box x ``face_expand_ratio``,
    lip box x 2.0 (Hallo's ``get_mask``). ``placement`` is for the square image."""
    square = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    points, source = region_points(square, placement)
    return point_regions(points, size, face_expand_ratio, source)


def point_regions(points: np.ndarray, size: int, face_expand_ratio: float = FACE_EXPAND_RATIO,
                  source: str = "mediapipe") -> FaceRegions:
    """Inference masks from mediapipe-numbered points on a ``size`` x ``size`` image."""
    face = box_mask(points, SILHOUETTE_IDS, size, size, face_expand_ratio)
    lip = box_mask(points, LIP_IDS, size, size, LIP_EXPAND_RATIO)
    return regions_from_boxes(face, lip, training=False, source=source)


def clip_regions(frames: np.ndarray, placement: au_mesh.Placement) -> FaceRegions:
    """Training masks of a clip of square frames (T, S, S, 3): the union over its frames of
    the un-expanded face and lip boxes (Hallo's data_preprocess: ``get_union_face_mask`` and
    ``get_union_lip_mask`` at their default ratio 1). Frames without a face are skipped; with
    none, the placed mesh stands in."""
    found = [p for p in (mediapipe_landmarks(f) for f in frames) if p is not None]
    source = "mediapipe"
    if not found:
        found, source = [placement.apply(au_mesh.neutral_points())], f"mesh:{placement.source}"
    return union_regions(found, frames.shape[1], source)


def union_regions(points: list[np.ndarray], size: int, source: str = "mediapipe") -> FaceRegions:
    """Training masks from each frame's points: union boxes at ratio 1 (see clip_regions)."""
    face = union_box([box_mask(p, SILHOUETTE_IDS, size, size, 1.0) for p in points])
    lip = union_box([box_mask(p, LIP_IDS, size, size, 1.0) for p in points])
    return regions_from_boxes(face, lip, training=True, source=source)


# insightface's 112 x 112 ArcFace alignment template: eyes, nose tip, mouth corners
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655],
     [70.7299, 92.2041]], np.float32,
)


def five_points(landmarks68: np.ndarray) -> np.ndarray:
    """insightface's 5 keypoints from dlib's 68: eye centres, nose tip, mouth corners."""
    lm = np.asarray(landmarks68, np.float32)
    return np.stack([lm[36:42].mean(0), lm[42:48].mean(0), lm[30], lm[48], lm[54]])


class ArcFaceEmbedder:
    """Hallo's identity embedding: insightface ArcFace (glintr100.onnx) on the aligned face.

    Runs with onnxruntime (``pip install onnxruntime``), as insightface itself does. The face
    is found and aligned from dlib's landmarks (Hallo uses insightface's SCRFD detector; the
    5 keypoints are the same points) [filled in].
    """

    def __init__(self, model_path: str):
        try:
            import onnxruntime
        except ImportError:
            from auhead_bench.weights import WeightsMissing

            raise WeightsMissing(
                "the hallo_v1 backbone's face embedding needs onnxruntime: "
                "`pip install onnxruntime` (or set face_embedding: zeros)"
            ) from None
        self.session = onnxruntime.InferenceSession(model_path, providers=["CPUExecutionProvider"])

    def __call__(self, image: np.ndarray, landmarks68: np.ndarray | None) -> np.ndarray:
        """(H, W, 3) uint8 RGB -> (512,) embedding; zeros without a face, as Hallo."""
        if landmarks68 is None:
            return np.zeros(512, np.float32)
        from skimage.transform import SimilarityTransform

        transform = SimilarityTransform.from_estimate(five_points(landmarks68), ARCFACE_TEMPLATE)
        crop = cv2.warpAffine(image, np.asarray(transform.params[:2], np.float32), (112, 112))
        blob = ((crop.astype(np.float32) - 127.5) / 127.5).transpose(2, 0, 1)[None]
        name = self.session.get_inputs()[0].name
        return np.asarray(self.session.run(None, {name: blob})[0][0], np.float32)
