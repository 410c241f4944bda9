"""Frame-level FID with pytorch-fid's TF-ported Inception (pool3, 2048-d), the field's reference.

Protocol (pytorch-fid, as Wav2Lip, Hallo2 and DisCo name it): RGB frames scaled to [0, 1],
bilinearly resized to 299x299 (``align_corners=False``) and mapped to [-1, 1] inside
pytorch-fid's own ``InceptionV3``; pool3 features; every frame of every scored clip pooled
per side; unbiased covariances (``np.cov``); Fréchet distance. The crop policy names the
metric: ``full`` frames, or ``face`` crops (the shared dlib face track, ``crop_faces`` at
299x299, 1.3x the box) so background and framing do not count.

Features come from a shared extractor (cached per video, so the ground truth is embedded
once per run, however many methods and seeds are scored); the metric keeps only running
sums per side.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal
from unittest import mock

import numpy as np
from pydantic import Field

from auhead_bench import ClipSkipped, ClipView, Extractor, Options, VideoView, hookimpl
from auhead_bench.errors import BenchError
from auhead_bench.faces import face_crop_chunks
from auhead_bench.frames import rebatch, writable
from auhead_bench.metric import NotComputed
from auhead_bench.resources import Resources
from auhead_bench.weights import WeightsSpec, file_sha256, load_state_dict, local_path, locate
from auhead_bench_metrics.frechet import FrechetMetric

# The sha256 is not printed on pytorch-fid's release page; the file name carries its first
# 8 hex digits (torch.hub's convention, `6726825d`), and the full digest below is the one
# independent users record for this file and for torch-fidelity's identical copy.
INCEPTION = WeightsSpec(
    name="pytorch_fid_inception",
    filename="pt_inception-2015-12-05-6726825d.pth",
    source="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
    "pt_inception-2015-12-05-6726825d.pth",
    sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
    licence="Apache-2.0 (TensorFlow's inception-2015-12-05, ported by pytorch-fid)",
    description="FID Inception-v3, TF-ported (pytorch-fid)",
)
POOL3_DIM = 2048
FACE_CROP_SIZE = 299  # crops at Inception's input size: its own resize is then the identity
FACE_CROP_SCALE = 1.3
BATCH = 32  # frames per forward pass
BATCH_BYTES = 256 << 20  # ...fewer when frames are large (a 4K frame is 25 MB)


def require_pytorch_fid() -> None:
    """NotComputed with the install command when the reference package is absent."""
    if importlib.util.find_spec("pytorch_fid") is None:
        raise NotComputed("pytorch-fid is not installed; run `pip install pytorch-fid==0.3.0`")


def load_inception(path: Path, device: str) -> Any:
    """pytorch-fid's own ``InceptionV3`` up to pool3, its weights read from ``path``.

    pytorch-fid builds the network only through ``fid_inception_v3()``, which fetches the
    weights from its URL with ``load_state_dict_from_url``. That one call is answered with the
    sha256-checked file from our cache (loaded without unpickling code), so the architecture
    and the forward pass, resize and scaling included, are the reference's own code.
    """
    import torch
    from pytorch_fid import inception as reference

    state = load_state_dict(path)

    def from_cache(url: str, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        return state

    try:
        with mock.patch.object(reference, "load_state_dict_from_url", from_cache):
            model = reference.InceptionV3([reference.InceptionV3.BLOCK_INDEX_BY_DIM[POOL3_DIM]])
    except RuntimeError as exc:  # wrong keys or shapes: not the FID Inception
        raise BenchError(
            f"not pytorch-fid's Inception weights ({str(exc).splitlines()[0]})",
            path=path,
            fix=f"run `{INCEPTION.pull_command()} --force`",
        ) from None
    return model.eval().to(torch.device(device))


class InceptionPool3(Extractor):
    """Per frame: pytorch-fid's Inception pool3 features of the whole frame, ``pool3`` (T, 2048)."""

    id = "inception_pool3_full"
    description = "pytorch-fid Inception-v3 pool3 features (2048-d) of every full frame."
    resources = Resources(gpus=0.25)  # ~100 MB of weights: four tasks share a GPU
    version = "1"
    crop: ClassVar[Literal["full", "face"]] = "full"

    def __init__(self) -> None:
        self._model: Any = None
        self._device = "cpu"

    def params(self) -> dict[str, Any]:
        return {
            "network": "pytorch_fid.inception.InceptionV3, block 3 (pool3)",
            "input": "RGB uint8 / 255",
            "resize": "bilinear to 299x299, align_corners=False (pytorch-fid)",
            "scale": "[0, 1] -> [-1, 1]",
            "crop": self.crop,
        }

    def weights(self) -> dict[str, str]:
        path = local_path(INCEPTION)
        return {INCEPTION.filename: file_sha256(path)} if path.is_file() else {}

    def setup(self, device: str) -> None:
        if self._model is None:
            require_pytorch_fid()
            self._model = load_inception(locate(INCEPTION), device)
            self._device = device

    def extract(self, video: VideoView) -> dict[str, np.ndarray]:
        batches = rebatch(self.frame_chunks(video), BATCH, BATCH_BYTES)
        pooled = [self.embed(frames) for frames in batches]
        return {"pool3": np.concatenate(pooled) if pooled else np.zeros((0, POOL3_DIM), np.float32)}

    def frame_chunks(self, video: VideoView) -> Iterator[np.ndarray]:
        """The (n, H, W, 3) uint8 images that are embedded, chunk by chunk."""
        return (chunk.frames for chunk in video.chunks())

    def embed(self, frames: np.ndarray) -> np.ndarray:
        """(T, H, W, 3) uint8 -> (T, 2048) float32, in batches, on the set-up device."""
        import torch

        self.setup(self._device)
        out = np.zeros((len(frames), POOL3_DIM), np.float32)
        with torch.no_grad():
            for start in range(0, len(frames), BATCH):
                batch = torch.from_numpy(writable(frames[start : start + BATCH]))
                batch = batch.to(self._device).permute(0, 3, 1, 2).float().div(255)
                pooled = self._model(batch)[0]  # (B, 2048, 1, 1)
                out[start : start + len(batch)] = pooled.flatten(1).cpu().numpy()
        return out


class InceptionPool3Face(InceptionPool3):
    """As ``inception_pool3_full``, on 299x299 crops of the shared dlib ``face_track``."""

    id = "inception_pool3_face"
    description = "pytorch-fid Inception-v3 pool3 features of 299x299 face crops (dlib track)."
    needs = ("frames", "face_track")
    crop = "face"

    def params(self) -> dict[str, Any]:
        return {**super().params(), "crop_size": FACE_CROP_SIZE, "crop_scale": FACE_CROP_SCALE}

    def frame_chunks(self, video: VideoView) -> Iterator[np.ndarray]:
        return face_crop_chunks(video, FACE_CROP_SIZE, FACE_CROP_SCALE)


class FIDOptions(Options):
    """``diagonal_eps``: added to both covariances' diagonals; > 0 allows fewer than 2049
    frames per side, at the price of a biased value (comparable only at equal N and eps)."""

    diagonal_eps: float = Field(0.0, ge=0.0)


class FIDFull(FrechetMetric):
    """FID over all frames of all clips, generated vs ground truth."""

    id = "fid_inception_pool3_full"
    description = "FID (pytorch-fid Inception pool3), all frames pooled per side, full frames."
    higher_is_better = False
    needs = ("inception_pool3_full",)
    Options = FIDOptions
    extractor: ClassVar[type[InceptionPool3]] = InceptionPool3
    dim, unit, ddof = POOL3_DIM, "frames", 1
    videos_key, samples_key = "clips", "frames"

    def setup(self, device: str) -> None:
        require_pytorch_fid()
        locate(INCEPTION)

    def protocol(self) -> dict[str, Any]:
        return {
            **super().protocol(),
            "reference": "pytorch-fid 0.3.0 (InceptionV3 pool3, calculate_frechet_distance)",
            "features": self.extractor.id,
            "crop": self.extractor.crop,
            "samples": "every frame of every scored clip, pooled per side",
            "covariance": "unbiased (N - 1), as numpy.cov in pytorch-fid",
        }

    def update(self, view: ClipView) -> None:
        if view.ground_truth is None:
            raise ClipSkipped("no ground-truth video")
        key = self.extractor.id
        self.fold(view.generated[key]["pool3"], view.ground_truth[key]["pool3"], view.clip.id)


class FIDFace(FIDFull):
    id = "fid_inception_pool3_face"
    description = "FID (pytorch-fid Inception pool3), all frames pooled per side, face crops."
    needs = ("inception_pool3_face",)
    extractor = InceptionPool3Face


@hookimpl
def register_weights(register):
    register(INCEPTION)


@hookimpl
def register_extractors(register):
    register(InceptionPool3)
    register(InceptionPool3Face)


@hookimpl
def register_metrics(register):
    register(FIDFull)
    register(FIDFace)
