"""Frame-level FID with pytorch-fid's TF-ported Inception (pool3, 2048-d), the field's reference.

Protocol (pytorch-fid, as Wav2Lip, Hallo2 and DisCo name it): RGB frames scaled to [0, 1],
bilinearly resized to 299x299 (``align_corners=False``) and mapped to [-1, 1] inside
pytorch-fid's own ``InceptionV3``; pool3 features; every frame of every scored clip pooled
per side; unbiased covariances (``np.cov``); Fréchet distance. The crop policy names the
metric: ``full`` frames, or ``face`` crops (the shared dlib face track, ``crop_faces`` at
299x299, 1.3x the box) so background and framing do not count.

Two kinds of ids:
- ``fid_inception_pool3_full`` / ``_face``: the decoded frames in memory; fewer than 2049
  frames per side is refused unless the options say how to treat singular covariances.
- exact modes, pytorch-fid's ``python -m pytorch_fid DIR1 DIR2`` on frame dumps of the mp4
  files, with its singular-product rule (``singular="pytorch_fid_offset"``):
  ``fid_inception_pool3_full_png`` (PNG: lossless, so the features are those of the decoded
  frames, shared with ``inception_pool3_full``) and ``fid_inception_pool3_full_jpeg95``
  (JPEG quality 95, 4:2:0, libjpeg-turbo: what ``cv2.imwrite`` writes by default, and
  Pillow at ``quality=95``, byte for byte).

Features come from a shared extractor (cached per video, so the ground truth is embedded
once per run, however many methods and seeds are scored); the metric keeps only running
sums per side.
"""

from __future__ import annotations

import importlib.util
import io
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
from auhead_bench.parity import ParityCheck, ParityInputs
from auhead_bench.resources import Resources
from auhead_bench.weights import WeightsSpec, file_sha256, load_state_dict, local_path, locate
from auhead_bench_metrics.frechet import PYTORCH_FID_EPS, FrechetMetric

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


JPEG_QUALITY = 95  # cv2.imwrite's default (IMWRITE_JPEG_QUALITY), as evaluation scripts dump


def jpeg_round_trip(frames: np.ndarray, quality: int = JPEG_QUALITY) -> np.ndarray:
    """(n, H, W, 3) uint8 frames as a JPEG file of ``quality`` decodes them with Pillow.

    Pillow and OpenCV both encode with libjpeg-turbo (4:2:0, baseline, islow DCT): their
    files were byte-identical at qualities 75-100 on the demo frames, and decode to the same
    pixels (tested); pytorch-fid reads files with Pillow, so this is exactly what it embeds
    from ``cv2.imwrite`` dumps."""
    from PIL import Image

    out = np.empty_like(frames)
    for index, frame in enumerate(frames):
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        out[index] = np.asarray(Image.open(buffer).convert("RGB"))
    return out


class InceptionPool3Jpeg(InceptionPool3):
    """As ``inception_pool3_full``, on the frames after a JPEG round trip at quality 95."""

    id = "inception_pool3_full_jpeg95"
    description = "pytorch-fid Inception-v3 pool3 features of full frames read back from JPEG q95."

    def params(self) -> dict[str, Any]:
        from PIL import features

        return {
            **super().params(),
            "frame_files": f"JPEG quality {JPEG_QUALITY}, 4:2:0, read back with Pillow",
            "libjpeg": f"{features.version('jpg')} (turbo: {features.check('libjpeg_turbo')})",
        }

    def frame_chunks(self, video: VideoView) -> Iterator[np.ndarray]:
        return (jpeg_round_trip(chunk.frames) for chunk in video.chunks())


class FIDOptions(Options):
    """How singular covariances are treated (fewer than 2049 frames per side).

    ``singular``: ``refuse`` (an error naming the fix) or ``pytorch_fid_offset``
    (pytorch-fid's ``calculate_frechet_distance``: never refuses; only when
    ``scipy.linalg.sqrtm`` of the covariance product is not finite, ``offset_eps * I`` is
    added to both covariances inside the square root; traces untouched).
    ``diagonal_eps`` (``refuse`` only): a ridge, ``eps * I`` added to both covariances
    always, traces included; allows fewer frames, biases the value; not pytorch-fid's rule.
    """

    singular: Literal["refuse", "pytorch_fid_offset"] = "refuse"
    offset_eps: float = Field(PYTORCH_FID_EPS, gt=0.0)
    diagonal_eps: float = Field(0.0, ge=0.0)


class FIDExactOptions(FIDOptions):
    """The exact modes follow pytorch-fid's rule by default."""

    singular: Literal["refuse", "pytorch_fid_offset"] = "pytorch_fid_offset"


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
    frames: ClassVar[str] = "decoded frames in memory (FFmpeg, RGB24)"

    def setup(self, device: str) -> None:
        require_pytorch_fid()
        locate(INCEPTION)

    def protocol(self) -> dict[str, Any]:
        return {
            **super().protocol(),
            "reference": "pytorch-fid 0.3.0 (InceptionV3 pool3, calculate_frechet_distance)",
            "features": self.extractor.id,
            "crop": self.extractor.crop,
            "frames": self.frames,
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


class FIDFullPNG(FIDFull):
    """pytorch-fid on PNG dumps of every frame. PNG is lossless and pytorch-fid's
    ``ToTensor`` is our ``/ 255``, so the features are the decoded frames' (shared)."""

    id = "fid_inception_pool3_full_png"
    description = ("FID as pytorch-fid computes it on PNG dumps of every full frame "
                   "(its singular-product offset rule).")
    Options = FIDExactOptions
    frames = "PNG files of the decoded frames, read by pytorch-fid's ImagePathDataset " \
        "(lossless: identical to the decoded frames)"

    def protocol(self) -> dict[str, Any]:
        return {**super().protocol(), "reference": "pytorch-fid 0.3.0 "
                "fid_score.calculate_fid_given_paths (python -m pytorch_fid DIR1 DIR2)"}


class FIDFullJPEG(FIDFullPNG):
    id = "fid_inception_pool3_full_jpeg95"
    description = ("FID as pytorch-fid computes it on JPEG quality-95 dumps of every full "
                   "frame (cv2.imwrite's default; its singular-product offset rule).")
    needs = ("inception_pool3_full_jpeg95",)
    extractor = InceptionPool3Jpeg
    frames = f"JPEG files (quality {JPEG_QUALITY}, 4:2:0, libjpeg-turbo; cv2.imwrite's " \
        "default) of the decoded frames, read by pytorch-fid's ImagePathDataset"


class PytorchFidOnDumps(ParityCheck):
    """pytorch-fid's own ``calculate_fid_given_paths`` on frame dumps of the scored mp4s.

    The frames are read with ``cv2.VideoCapture`` and written with ``cv2.imwrite`` into one
    folder per side (every clip's frames pooled), as evaluation scripts dump them; pytorch-fid
    then reads, embeds and compares them with its own code, offset rule included. Its
    Inception loads our sha256-checked weights file from a torch.hub cache folder of its
    own (no download); nothing of ours touches its inputs.
    """

    id = "pytorch-fid"
    metric = FIDFullPNG.id
    reference = "pytorch_fid.fid_score.calculate_fid_given_paths on cv2.imwrite PNG dumps"
    requires = {"pytorch_fid": "pytorch-fid==0.3.0", "cv2": "opencv-python"}
    extension = "png"
    batch_size = 50  # pytorch-fid's CLI default

    def imwrite_params(self) -> list[int]:
        return []

    def reference_values(self, inputs: ParityInputs) -> float:
        import cv2
        import torch
        from pytorch_fid.fid_score import calculate_fid_given_paths

        from auhead_bench_metrics.pixel import cv2_frames

        folders = {side: inputs.workdir / side for side in ("generated", "ground_truth")}
        for clip in inputs.clips:
            for side, folder in folders.items():
                folder.mkdir(parents=True, exist_ok=True)
                for t, frame in enumerate(cv2_frames(getattr(clip, side))):
                    name = folder / f"{clip.clip_id}_{t:06d}.{self.extension}"
                    cv2.imwrite(str(name), frame, self.imwrite_params())
        hub = inputs.workdir / "torch_hub"
        (hub / "checkpoints").mkdir(parents=True)
        (hub / "checkpoints" / INCEPTION.filename).symlink_to(locate(INCEPTION).resolve())
        with mock.patch.object(torch.hub, "get_dir", lambda: str(hub)):
            return float(calculate_fid_given_paths(
                [str(folders["generated"]), str(folders["ground_truth"])],
                self.batch_size, inputs.device, POOL3_DIM, num_workers=0,
            ))


class PytorchFidOnJpegDumps(PytorchFidOnDumps):
    id = "pytorch-fid-jpeg95"
    metric = FIDFullJPEG.id
    reference = ("pytorch_fid.fid_score.calculate_fid_given_paths on cv2.imwrite JPEG "
                 "(quality 95) dumps")
    extension = "jpg"

    def imwrite_params(self) -> list[int]:
        import cv2

        return [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]


@hookimpl
def register_weights(register):
    register(INCEPTION)


@hookimpl
def register_extractors(register):
    register(InceptionPool3)
    register(InceptionPool3Face)
    register(InceptionPool3Jpeg)


@hookimpl
def register_metrics(register):
    register(FIDFull)
    register(FIDFace)
    register(FIDFullPNG)
    register(FIDFullJPEG)


@hookimpl
def register_parity_checks(register):
    register(PytorchFidOnDumps)
    register(PytorchFidOnJpegDumps)
