"""FVD with StyleGAN-V's I3D TorchScript, the protocol of its ``fvd2048_16f``.

What StyleGAN-V does (``src/metrics/frechet_video_distance.py`` and ``metric_utils.py``):
clips of 16 consecutive frames as uint8 tensors (N, 3, 16, H, W) go into the TorchScript port
of the TF-Hub I3D with ``rescale=True, resize=True, return_features=True``: the model maps
[0, 255] to [-1, 1] and resizes to 224x224 itself, and returns the 400-d Kinetics logits
before the softmax (the TF-Hub graph's ``RGB/inception_i3d/Mean``). Statistics are the
running sums of ``FeatureStats`` with the biased (1/N) covariance, then the Fréchet distance.
We call the model exactly so, so its own preprocessing applies.

Where we differ, by necessity, and say so in the protocol: StyleGAN-V draws one clip per
video (a random offset for real videos) from 2048 videos. A talking-head test set has far
fewer videos, so each video here gives its complete 16-frame windows from frame 0 with
stride 16 (``clips="all"``), or only the first (``clips="first"``, StyleGAN-V's choice with
offset 0). Generated and ground-truth videos of different lengths are cut to the shorter one
(``align="truncate"``), so both sides contribute the same windows.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from auhead_bench import ClipSkipped, ClipView, Extractor, Options, VideoView, hookimpl
from auhead_bench.errors import BenchError
from auhead_bench.faces import face_crop_chunks
from auhead_bench.frames import rebatch
from auhead_bench.resources import Resources
from auhead_bench.weights import WeightsSpec, file_sha256, local_path, locate
from auhead_bench_metrics.frechet import FrechetMetric

# StyleGAN-V publishes no hash for this file: sha256 stays None and the cached file's own
# sha256 is recorded with every result (extractor weights), so a result names its file.
# The Dropbox link is not versioned. A hub copy with a fixed revision exists
# (hf://ByteDance/LatentSync-1.6/auxiliary/i3d_torchscript.pt@c42c7e6c8e9c213626389fa7d9a3c444b8536353,
# per a third-party listing); that it is byte-identical is unverified, so the source stays
# StyleGAN-V's own.
I3D = WeightsSpec(
    name="stylegan_v_i3d",
    filename="i3d_torchscript.pt",
    source="https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1",
    sha256=None,
    licence="unstated by StyleGAN-V; a port of DeepMind's TF-Hub i3d-kinetics-400 (Apache-2.0)",
    description="FVD I3D Kinetics-400 TorchScript (StyleGAN-V)",
)
LOGITS_DIM = 400
CLIP_FRAMES = 16
STRIDE = 16
DETECTOR_KWARGS = {"rescale": True, "resize": True, "return_features": True}  # StyleGAN-V's
FACE_CROP_SIZE = 224  # the I3D input size: the model's own resize is then the identity
FACE_CROP_SCALE = 1.3
BATCH = 4  # clips per forward pass
BATCH_BYTES = 256 << 20  # ...fewer when the frames are large (4K: one 16-frame clip)


def load_i3d(device: str) -> Any:
    """The TorchScript from the weights cache, on ``device``, as StyleGAN-V loads it."""
    import torch

    path = locate(I3D)
    with warnings.catch_warnings():  # deprecated in favour of torch.export; the file is TorchScript
        warnings.filterwarnings("ignore", "`torch.jit.load` is deprecated", FutureWarning)
        try:
            return torch.jit.load(str(path), map_location=torch.device(device)).eval()
        except RuntimeError as exc:
            raise BenchError(
                f"not a TorchScript archive ({str(exc).splitlines()[0]})",
                path=path,
                fix=f"run `{I3D.pull_command()} --force`",
            ) from None


class I3DLogits(Extractor):
    """Per complete 16-frame window of the video (from frame 0, stride 16): I3D logits.

    Output ``logits`` (K, 400) float32 with ``K = T // 16``; window k covers frames
    ``[16k, 16k + 16)``. A video shorter than 16 frames gives K = 0.
    """

    id = "i3d_logits_16f_full"
    description = "StyleGAN-V I3D TorchScript logits (400-d) of each 16-frame window, full frames."
    resources = Resources(gpus=0.25)  # a small network: four tasks share a GPU
    version = "1"
    crop: ClassVar[Literal["full", "face"]] = "full"

    def __init__(self) -> None:
        self._model: Any = None
        self._device = "cpu"

    def params(self) -> dict[str, Any]:
        return {
            "network": "StyleGAN-V i3d_torchscript.pt (TF-Hub i3d-kinetics-400 port)",
            "output": "400-d logits before the softmax",
            "clip_frames": CLIP_FRAMES,
            "stride": STRIDE,
            "first_frame": 0,
            "input": "uint8 RGB (N, 3, 16, H, W)",
            "detector_kwargs": DETECTOR_KWARGS,
            "crop": self.crop,
        }

    def weights(self) -> dict[str, str]:
        path = local_path(I3D)
        return {I3D.filename: file_sha256(path)} if path.is_file() else {}

    def setup(self, device: str) -> None:
        if self._model is None:
            self._model = load_i3d(device)
            self._device = device

    def extract(self, video: VideoView) -> dict[str, np.ndarray]:
        return {"logits": self.embed_windows(self.windows(video))}

    def frame_chunks(self, video: VideoView) -> Iterator[np.ndarray]:
        """The (n, H, W, 3) uint8 images that are embedded, chunk by chunk."""
        return (chunk.frames for chunk in video.chunks())

    def windows(self, video: VideoView) -> Iterator[np.ndarray]:
        """Complete 16-frame windows from frame 0, stride 16 (the last partial one dropped);
        only the current window's frames are held across chunks."""
        for window in rebatch(self.frame_chunks(video), CLIP_FRAMES):
            if len(window) == CLIP_FRAMES:
                yield window

    def embed(self, frames: np.ndarray) -> np.ndarray:
        """(T, H, W, 3) uint8 -> (T // 16, 400) float32 logits, in batches of windows."""
        count = len(frames) // CLIP_FRAMES
        return self.embed_windows(frames[i * CLIP_FRAMES : (i + 1) * CLIP_FRAMES]
                                  for i in range(count))

    def embed_windows(self, windows: Iterable[np.ndarray]) -> np.ndarray:
        """16-frame windows -> (K, 400) float32 logits, ``BATCH`` windows per forward pass
        (fewer for very large frames, so a batch stays under ``BATCH_BYTES``)."""
        out: list[np.ndarray] = []
        batch: list[np.ndarray] = []
        for window in windows:
            batch.append(np.ascontiguousarray(window, dtype=np.uint8))
            size = max(1, min(BATCH, BATCH_BYTES // batch[0].nbytes))
            if len(batch) >= size:
                out.append(self._forward(batch))
                batch = []
        if batch:
            out.append(self._forward(batch))
        return np.concatenate(out) if out else np.zeros((0, LOGITS_DIM), np.float32)

    def _forward(self, windows: list[np.ndarray]) -> np.ndarray:
        import torch

        self.setup(self._device)
        with torch.no_grad():
            clips = torch.from_numpy(np.stack(windows)).to(self._device)
            clips = clips.permute(0, 4, 1, 2, 3).contiguous()  # (N, 3, 16, H, W)
            logits = self._model(clips, **DETECTOR_KWARGS)
            return logits.float().cpu().numpy().astype(np.float32)


class I3DLogitsFace(I3DLogits):
    """As ``i3d_logits_16f_full``, on 224x224 crops of the shared dlib ``face_track``."""

    id = "i3d_logits_16f_face"
    description = "StyleGAN-V I3D TorchScript logits of each 16-frame window of 224x224 face crops."
    needs = ("frames", "face_track")
    crop = "face"

    def params(self) -> dict[str, Any]:
        return {**super().params(), "crop_size": FACE_CROP_SIZE, "crop_scale": FACE_CROP_SCALE}

    def frame_chunks(self, video: VideoView) -> Iterator[np.ndarray]:
        return face_crop_chunks(video, FACE_CROP_SIZE, FACE_CROP_SCALE)


class FVDOptions(Options):
    """Which windows count, how lengths are matched, and the optional covariance regulariser.

    ``clips``: ``all`` complete 16-frame windows of each video, or only the ``first``.
    ``align``: ``truncate`` cuts both videos of a clip to the shorter one's length.
    ``diagonal_eps``: added to both covariances' diagonals; > 0 allows fewer than 401 clips
    per side, at the price of a biased value (comparable only at equal N and eps).
    """

    clips: Literal["all", "first"] = "all"
    align: Literal["truncate"] = "truncate"
    diagonal_eps: float = Field(0.0, ge=0.0)


class FVDFull(FrechetMetric):
    """FVD over 16-frame windows, generated vs ground truth."""

    id = "fvd_i3d_16f_full"
    description = "FVD (StyleGAN-V I3D TorchScript, 16-frame windows), full frames."
    higher_is_better = False
    needs = ("i3d_logits_16f_full",)
    Options = FVDOptions
    extractor: ClassVar[type[I3DLogits]] = I3DLogits
    dim, unit, ddof = LOGITS_DIM, "16-frame clips", 0
    videos_key, samples_key = "videos", "clips"

    def setup(self, device: str) -> None:
        locate(I3D)

    def protocol(self) -> dict[str, Any]:
        return {
            **super().protocol(),
            "reference": "StyleGAN-V fvd2048_16f (src/metrics/frechet_video_distance.py)",
            "features": self.extractor.id,
            "crop": self.extractor.crop,
            "clip_frames": CLIP_FRAMES,
            "stride": STRIDE,
            "first_frame": 0,
            "samples": "windows of every scored clip, pooled per side (StyleGAN-V: one clip "
            "per video, 2048 videos)",
            "covariance": "biased (1 / N), as StyleGAN-V's FeatureStats.get_mean_cov",
        }

    def update(self, view: ClipView) -> None:
        if view.ground_truth is None:
            raise ClipSkipped("no ground-truth video")
        key = self.extractor.id
        gen, ref = view.generated[key]["logits"], view.ground_truth[key]["logits"]
        count = min(len(gen), len(ref))  # truncate: floor(min(T_gen, T_gt) / 16) windows
        if count == 0:
            frames = min(view.generated.frame_count(), view.ground_truth.frame_count())
            raise ClipSkipped(f"shorter than {CLIP_FRAMES} frames ({frames} after alignment)")
        if self.options.clips == "first":
            count = 1
        self.fold(gen[:count], ref[:count], view.clip.id)


class FVDFace(FVDFull):
    id = "fvd_i3d_16f_face"
    description = "FVD (StyleGAN-V I3D TorchScript, 16-frame windows), 224x224 face crops."
    needs = ("i3d_logits_16f_face",)
    extractor = I3DLogitsFace


@hookimpl
def register_weights(register):
    register(I3D)


@hookimpl
def register_extractors(register):
    register(I3DLogits)
    register(I3DLogitsFace)


@hookimpl
def register_metrics(register):
    register(FVDFull)
    register(FVDFace)
