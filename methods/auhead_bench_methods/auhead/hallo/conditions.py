"""Hallo's inputs from a reference image and 16 kHz audio, as its preprocessing makes them.

- Audio (``hallo/datasets/audio_processor.py``, ``hallo/models/wav2vec.py``): wav2vec2's
  convolutional features are linearly interpolated (align_corners) to one per 25 fps video
  frame *before* its transformer; the hidden states of all its layers but the input
  (``features: all``) are kept; each frame gets the window t-2 .. t+2 (clamped at the ends,
  ``process_audio_emb``). The clip is padded with silence to a whole number of windows.
- Region masks (``hallo/datasets/image_processor.py``): Hallo takes mediapipe's face and lip
  landmarks; here the same regions come from dlib's 68 landmarks of the reference, through
  the AU mesh placement (au_mesh.py) [filled in]. As Hallo: face and lip masks blurred, the
  "full" (pose) mask = 1 - face, "face" = face - lip, "lip" = lip, each resized to the
  denoiser's four levels and flattened; the face locator's input is the face's bounding box
  expanded by ``face_expand_ratio`` 1.2, filled.
- Identity (``face_emb``): insightface's ArcFace embedding of the largest face (glintr100,
  512-d, not normalised); zeros where no face is found (Hallo's own fallback), and zeros when
  ``face_embedding`` is "zeros".
"""

from __future__ import annotations

from dataclasses import dataclass

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

    samples = max(len(audio), frames * AUDIO_RATE // VIDEO_FPS, 400)
    audio = np.pad(np.asarray(audio, np.float32), (0, samples - len(audio)))
    values = Wav2Vec2FeatureExtractor(do_normalize=True)(
        audio, sampling_rate=AUDIO_RATE, return_tensors="pt").input_values
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


@dataclass
class FaceRegions:
    """The reference's masks at pixel resolution: face box (locator input), face, lip."""

    locator: np.ndarray  # (H, W) float in {0, 1}
    face: np.ndarray  # (H, W) float in [0, 1], blurred
    lip: np.ndarray

    def levels(self, latent: int, count: int) -> tuple[list[torch.Tensor], ...]:
        """full/face/lip masks at the denoiser's ``count`` levels: each (1, (latent/2^d)^2)."""
        full = 1.0 - self.face
        face = np.clip(self.face - self.lip, 0.0, 1.0)
        out: tuple[list[torch.Tensor], ...] = ([], [], [])
        for mask, target in zip((full, face, self.lip), out, strict=True):
            for depth in range(count):
                side = max(1, latent // 2**depth)
                small = cv2.resize(mask.astype(np.float32), (side, side),
                                   interpolation=cv2.INTER_AREA)
                target.append(torch.from_numpy(small.reshape(1, -1)))
        return out


def face_regions(placement: au_mesh.Placement, size: int) -> FaceRegions:
    """Masks of a ``size`` x ``size`` frame from the rest mesh placed on the reference face."""
    points = placement.apply(au_mesh.neutral_points()[au_mesh.dlib68_vertices()])
    face = np.zeros((size, size), np.float32)
    lip = np.zeros((size, size), np.float32)
    cv2.fillConvexPoly(face, cv2.convexHull(points.astype(np.int32)), 1.0)
    cv2.fillConvexPoly(lip, cv2.convexHull(points[48:68].astype(np.int32)), 1.0)
    low, high = points.min(axis=0), points.max(axis=0)
    centre, half = (low + high) / 2, (high - low) / 2 * FACE_EXPAND_RATIO
    x0, y0 = np.clip(np.floor(centre - half), 0, size - 1).astype(int)
    x1, y1 = np.clip(np.ceil(centre + half), 0, size - 1).astype(int)
    locator = np.zeros((size, size), np.float32)
    locator[y0 : y1 + 1, x0 : x1 + 1] = 1.0
    # Hallo blurs its 64x64 masks with 51 (face) and 31 (lip) pixel kernels: the same share
    # of the frame here
    def blur(mask: np.ndarray, kernel64: int) -> np.ndarray:
        k = max(3, int(round(kernel64 * size / 64)) | 1)
        return cv2.GaussianBlur(mask, (k, k), 0)

    return FaceRegions(locator, blur(face, 51), blur(lip, 31))


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
