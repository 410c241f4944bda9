"""FVD with StyleGAN-V's I3D TorchScript: its ``fvd2048_16f`` protocol, and an all-windows mode.

What StyleGAN-V does (``src/metrics/frechet_video_distance.py`` and ``metric_utils.py``):
clips of 16 consecutive frames as uint8 tensors (N, 3, 16, H, W) go into the TorchScript port
of the TF-Hub I3D with ``rescale=True, resize=True, return_features=True``: the model maps
[0, 255] to [-1, 1] and resizes to 224x224 itself, and returns the 400-d Kinetics logits
before the softmax (the TF-Hub graph's ``RGB/inception_i3d/Mean``). Statistics are the
running sums of ``FeatureStats`` with the biased (1/N) covariance, then the Fréchet distance.
We call the model exactly so, so its own preprocessing applies.

StyleGAN-V takes ONE 16-frame clip per video: generated videos from frame 0, real videos
from a random start, uniform over every start that fits (``random.randint(0, T - 16)`` in its
``VideoFramesFolderDataset``, unseeded). Two families of ids:
- ``fvd_i3d_16f_stylegan_v_full`` / ``_face``: that protocol. The real side's start is drawn
  from a recorded seed and the video's sha256 (``seeded_start``), so it is reproducible;
  every start is recorded in the result. Singular covariances (fewer than 401 videos) are
  used as they are, as StyleGAN-V does (``singular="unregularised"``).
- ``fvd_i3d_16f_allwin_full`` / ``_face``: NOT fvd2048_16f. Each video gives all its complete
  16-frame windows from frame 0 with stride 16 (``clips="all"``), or only window 0
  (``clips="first"``: frame 0 on BOTH sides, where fvd2048_16f starts the real side at
  random). Videos of a clip are cut to the shorter one (``align="truncate"``). More samples
  per video, so a small test set can reach a full-rank covariance; windows of one video are
  correlated. ``fvd_i3d_16f_full`` / ``_face`` are deprecated aliases of these.
"""

from __future__ import annotations

import os
import random
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from auhead_bench import ClipSkipped, ClipView, Extractor, Options, VideoView, hookimpl
from auhead_bench.errors import BenchError
from auhead_bench.faces import face_crop_chunks
from auhead_bench.frames import rebatch
from auhead_bench.parity import ParityCheck, ParityInputs
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
START_SEED = 0  # seeds the real side's start (StyleGAN-V's own draw is unseeded)
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


def seeded_start(frame_count: int, content_sha256: str, seed: int = START_SEED) -> int:
    """The real video's clip start: uniform over ``[0, T - 16]`` like StyleGAN-V's
    ``random.randint``, drawn from ``random.Random`` seeded with the seed and the video's
    sha256 (a str seed is hashed with SHA-512: the same on every platform and Python 3), so
    the start depends on neither the order nor the worker that scores the video."""
    if frame_count < CLIP_FRAMES:
        raise ValueError(f"{frame_count} frames are fewer than {CLIP_FRAMES}")
    return random.Random(f"{seed}:{content_sha256}").randint(0, frame_count - CLIP_FRAMES)


class I3DLogitsStyleGANV(I3DLogits):
    """The two clips StyleGAN-V's ``fvd2048_16f`` can take from a video: frames ``[0, 16)``
    (a generated video's) and ``[s, s + 16)`` at ``seeded_start`` (a real video's).

    Outputs ``first`` and ``seeded`` (1, 400) float32 logits, ``seeded_start`` and
    ``frame_count`` (1,) int64; (0, 400) and start -1 for a video shorter than 16 frames.
    Extractors do not know the side, so both clips are embedded for every video (one
    forward pass when ``s == 0``): at most one I3D pass more per video than needed.
    """

    id = "i3d_logits_16f_stylegan_v_full"
    description = ("StyleGAN-V I3D logits of frames 0-15 and of 16 frames at a seeded random "
                   "start, full frames.")
    version = "1"

    def params(self) -> dict[str, Any]:
        params = {key: value for key, value in super().params().items()
                  if key not in ("stride", "first_frame")}
        return {**params, "clips": "frames [0, 16) and [s, s + 16)",
                "start": "random.Random(f'{seed}:{sha256 of the video}').randint(0, T - 16)",
                "start_seed": START_SEED}

    def extract(self, video: VideoView) -> dict[str, np.ndarray]:
        count = video.frame_count()
        if count < CLIP_FRAMES:
            empty = np.zeros((0, LOGITS_DIM), np.float32)
            return {"first": empty, "seeded": empty, "seeded_start": np.array([-1]),
                    "frame_count": np.array([count])}
        start = seeded_start(count, video.content_sha256)
        first, seeded = self.clips_at(video, (0, start))
        windows = [first] if start == 0 else [first, seeded]
        logits = self.embed_windows(windows)
        return {"first": logits[:1], "seeded": logits[-1:],
                "seeded_start": np.array([start]), "frame_count": np.array([count])}

    def clips_at(self, video: VideoView, starts: tuple[int, ...]) -> list[np.ndarray]:
        """The 16-frame clips beginning at ``starts``; only their frames are kept."""
        parts: list[list[np.ndarray]] = [[] for _ in starts]
        position = 0
        for frames in self.frame_chunks(video):
            end = position + len(frames)
            for part, start in zip(parts, starts, strict=True):
                lo, hi = max(start, position), min(start + CLIP_FRAMES, end)
                if lo < hi:
                    part.append(frames[lo - position : hi - position])
            position = end
        return [np.concatenate(part) for part in parts]


class I3DLogitsStyleGANVFace(I3DLogitsStyleGANV):
    """As ``i3d_logits_16f_stylegan_v_full``, on 224x224 crops of the shared dlib track."""

    id = "i3d_logits_16f_stylegan_v_face"
    description = ("StyleGAN-V I3D logits of frames 0-15 and of 16 frames at a seeded random "
                   "start, 224x224 face crops.")
    needs = ("frames", "face_track")
    crop = "face"

    def params(self) -> dict[str, Any]:
        return {**super().params(), "crop_size": FACE_CROP_SIZE, "crop_scale": FACE_CROP_SCALE}

    def frame_chunks(self, video: VideoView) -> Iterator[np.ndarray]:
        return face_crop_chunks(video, FACE_CROP_SIZE, FACE_CROP_SCALE)


class SingularOptions(Options):
    """How singular covariances (fewer than 401 clips per side) are treated.

    ``singular``: ``refuse`` (an error naming the fix) or ``unregularised`` (StyleGAN-V's
    ``compute_fvd``: the distance of the rank-deficient covariances as they are).
    ``diagonal_eps`` (``refuse`` only): a ridge, ``eps * I`` added to both covariances,
    traces included; allows fewer clips, biases the value (comparable only at equal N, eps).
    """

    singular: Literal["refuse", "unregularised"] = "refuse"
    diagonal_eps: float = Field(0.0, ge=0.0)


class FVDOptions(SingularOptions):
    """Which windows count and how lengths are matched (all-windows ids).

    ``clips``: ``all`` complete 16-frame windows of each video (stride 16 from frame 0), or
    only the ``first`` (frames 0-15 of both videos; not fvd2048_16f, whose real side starts
    at random). ``align``: ``truncate`` cuts both videos of a clip to the shorter one.
    """

    clips: Literal["all", "first"] = "all"
    align: Literal["truncate"] = "truncate"


class StyleGANVOptions(SingularOptions):
    """fvd2048_16f uses whatever covariances its videos give, singular or not."""

    singular: Literal["refuse", "unregularised"] = "unregularised"


class FVDFull(FrechetMetric):
    """FVD over all complete 16-frame windows (stride 16), generated vs ground truth."""

    id = "fvd_i3d_16f_allwin_full"
    description = ("FVD (StyleGAN-V I3D TorchScript), every 16-frame window (stride 16) of "
                   "each video, full frames; not fvd2048_16f.")
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
            "reference": "StyleGAN-V's I3D call and statistics "
            "(src/metrics/frechet_video_distance.py); NOT its fvd2048_16f sampling",
            "features": self.extractor.id,
            "crop": self.extractor.crop,
            "clip_frames": CLIP_FRAMES,
            "stride": STRIDE,
            "first_frame": 0,
            "samples": "every complete window of both videos (clips=all) or window 0 of both "
            "(clips=first), after truncation to the shorter video; pooled per side",
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
    id = "fvd_i3d_16f_allwin_face"
    description = ("FVD (StyleGAN-V I3D TorchScript), every 16-frame window (stride 16) of "
                   "each video, 224x224 face crops; not fvd2048_16f.")
    needs = ("i3d_logits_16f_face",)
    extractor = I3DLogitsFace


class FVDFullRenamed(FVDFull):
    id = "fvd_i3d_16f_full"
    description = "Deprecated alias of fvd_i3d_16f_allwin_full (renamed: not fvd2048_16f)."


class FVDFaceRenamed(FVDFace):
    id = "fvd_i3d_16f_face"
    description = "Deprecated alias of fvd_i3d_16f_allwin_face (renamed: not fvd2048_16f)."


def merge_starts(mine: dict[str, int], theirs: dict[str, int]) -> dict[str, int]:
    return {**mine, **theirs}


class FVDStyleGANVFull(FrechetMetric):
    """StyleGAN-V's ``fvd2048_16f``: one clip per video, generated from frame 0, ground truth
    from its seeded random start; 1/N covariances; singular ones used as they are."""

    id = "fvd_i3d_16f_stylegan_v_full"
    description = ("FVD as StyleGAN-V's fvd2048_16f: one 16-frame clip per video (generated "
                   "at 0, ground truth at a seeded random start), full frames.")
    higher_is_better = False
    needs = ("i3d_logits_16f_stylegan_v_full",)
    Options = StyleGANVOptions
    extractor: ClassVar[type[I3DLogitsStyleGANV]] = I3DLogitsStyleGANV
    dim, unit, ddof = LOGITS_DIM, "videos", 0
    videos_key, samples_key = "videos", "clips"
    starts: dict[str, int]

    def __init__(self, options: Options | None = None):
        super().__init__(options)
        self.add_state("starts", {}, merge=merge_starts)

    def setup(self, device: str) -> None:
        locate(I3D)

    def protocol(self) -> dict[str, Any]:
        return {
            **super().protocol(),
            "reference": "StyleGAN-V fvd2048_16f (src/metrics/frechet_video_distance.py "
            "compute_fvd, metric_utils.FeatureStats)",
            "features": self.extractor.id,
            "crop": self.extractor.crop,
            "clip_frames": CLIP_FRAMES,
            "clips_per_video": 1,
            "generated_start": 0,
            "ground_truth_start": "uniform in [0, T - 16]: random.Random(f'{seed}:{sha256 "
            "of the video file}').randint (StyleGAN-V: unseeded random.randint)",
            "start_seed": START_SEED,
            "short_videos": "a clip with either video under 16 frames is skipped",
            "samples": "one clip per scored video, pooled per side (StyleGAN-V: 2048 videos)",
            "covariance": "biased (1 / N), as StyleGAN-V's FeatureStats.get_mean_cov",
        }

    def update(self, view: ClipView) -> None:
        if view.ground_truth is None:
            raise ClipSkipped("no ground-truth video")
        key = self.extractor.id
        gen, ref = view.generated[key], view.ground_truth[key]
        if len(gen["first"]) == 0 or len(ref["seeded"]) == 0:
            counts = int(gen["frame_count"][0]), int(ref["frame_count"][0])
            raise ClipSkipped(f"shorter than {CLIP_FRAMES} frames (generated {counts[0]}, "
                              f"ground truth {counts[1]})")
        self.fold(gen["first"], ref["seeded"], view.clip.id)
        self.starts[view.clip.id] = int(ref["seeded_start"][0])

    def summary(self) -> dict[str, Any]:
        """Counts, and the start of every ground-truth clip (the generated ones start at 0)."""
        return {**super().summary(), "start_seed": START_SEED, "generated_start": 0,
                "ground_truth_starts": dict(sorted(self.starts.items()))}


class FVDStyleGANVFace(FVDStyleGANVFull):
    id = "fvd_i3d_16f_stylegan_v_face"
    description = ("FVD as StyleGAN-V's fvd2048_16f: one 16-frame clip per video (generated "
                   "at 0, ground truth at a seeded random start), 224x224 face crops.")
    needs = ("i3d_logits_16f_stylegan_v_face",)
    extractor = I3DLogitsStyleGANVFace


def stylegan_v_mean_cov(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """StyleGAN-V's ``FeatureStats``, restated: float32 rows summed in float64,
    ``cov = raw_cov / n - outer(mean, mean)``."""
    x64 = np.asarray(features, np.float32).astype(np.float64)
    mean = x64.sum(axis=0) / len(x64)
    return mean, (x64.T @ x64) / len(x64) - np.outer(mean, mean)


class StyleGANVFVD(ParityCheck):
    """StyleGAN-V's fvd2048_16f. With ``AUHEAD_STYLEGAN_V`` naming a checkout, StyleGAN-V's
    own ``compute_fvd`` runs (``stylegan_v_compute_fvd``); otherwise it is restated from its
    code (there is no StyleGAN-V package):
    the TorchScript loaded with ``torch.jit.load`` and called as ``compute_fvd`` calls it,
    ``FeatureStats`` statistics and ``scipy.linalg.sqrtm`` as in ``compute_fvd``, on frames
    read independently with ``cv2.VideoCapture`` and the start re-drawn from the file's own
    sha256 (``hashlib``) and frame count.

    Tolerance 1e-4 relative (the default), measured: with fewer than 401 videos the
    covariances are singular and scipy's ``sqrtm`` meets our eigenvalue form only up to its
    own accuracy; on 2 demo clips (rank-1 covariances, random I3D) |delta| was 2.0e-7
    relative (tests/test_parity_fid_fvd.py), 500 times inside the tolerance.
    """

    id = "stylegan-v-fvd"
    metric = FVDStyleGANVFull.id
    reference = ("StyleGAN-V compute_fvd restated (FeatureStats 1/N, scipy.linalg.sqrtm) on "
                 "cv2-read frames, its I3D TorchScript call")
    requires = {"cv2": "opencv-python", "scipy": "scipy"}

    def reference_values(self, inputs: ParityInputs) -> float:
        import hashlib

        import scipy.linalg
        import torch

        from auhead_bench_metrics.pixel import cv2_frames

        detector = torch.jit.load(str(locate(I3D)), map_location=inputs.device).eval()

        def features(path: Any, real: bool) -> np.ndarray:
            frames = [f[..., ::-1] for f in cv2_frames(path)]  # BGR -> RGB
            start = 0
            if real:
                sha = hashlib.sha256(path.read_bytes()).hexdigest()
                start = random.Random(f"{START_SEED}:{sha}").randint(0, len(frames) - 16)
            clip = torch.from_numpy(np.stack(frames[start : start + 16]))  # [t, h, w, c]
            images = clip.permute(0, 3, 1, 2)[None]  # the dataset's [batch, t, c, h, w]
            images = images.permute(0, 2, 1, 3, 4).contiguous()  # [batch, c, t, h, w]
            with torch.no_grad():
                out = detector(images.to(inputs.device), rescale=True, resize=True,
                               return_features=True)
            return out.cpu().numpy()

        # Every clip of the record comes in; as StyleGAN-V's loader discards videos under 16
        # frames (discard_short_videos), a clip with either video that short is left out here
        # by this side's own count (ours skips by its decoder's count: a difference fails).
        kept = [c for c in inputs.clips
                if min(len(cv2_frames(c.generated)), len(cv2_frames(c.ground_truth))) >= 16]
        if not kept:
            raise BenchError("no clip has 16 frames on both sides: StyleGAN-V's FVD has "
                             "nothing to compare", fix="use clips of 16 frames or more")
        checkout = os.environ.get(STYLEGAN_V_ENV)
        if checkout:
            return stylegan_v_compute_fvd(Path(checkout), kept, inputs)
        gen = np.concatenate([features(c.generated, real=False) for c in kept])
        real = np.concatenate([features(c.ground_truth, real=True) for c in kept])
        mu_gen, sigma_gen = stylegan_v_mean_cov(gen)
        mu_real, sigma_real = stylegan_v_mean_cov(real)
        m = np.square(mu_gen - mu_real).sum()
        s = scipy.linalg.sqrtm(np.dot(sigma_gen, sigma_real))
        return float(np.real(m + np.trace(sigma_gen + sigma_real - s * 2)))


STYLEGAN_V_ENV = "AUHEAD_STYLEGAN_V"  # a checkout of universome/stylegan-v (holds src/)
STYLEGAN_V_DETECTOR_URL = "https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1"


def stylegan_v_compute_fvd(checkout: Path, clips: list[Any], inputs: ParityInputs) -> float:
    """StyleGAN-V's own ``frechet_video_distance.compute_fvd``, executed from ``checkout``
    (StyleGAN-V is no package), on PNG folders of the cv2-read frames: generated frames
    [0, 16), ground truth [s, s + 16) with s drawn from the file's sha256 as our metric draws
    it (StyleGAN-V's own draw is an unseeded ``random.randint``: given exactly 16 frames it
    can only start at 0). Its detector is our cached ``i3d_torchscript.pt``, found by its own
    ``open_url`` in a dnnlib download cache under the URL ``compute_fvd`` names."""
    import hashlib
    import shutil
    import sys

    import cv2
    import torch

    from auhead_bench_metrics.pixel import cv2_frames

    if not (checkout / "src" / "metrics" / "frechet_video_distance.py").is_file():
        raise BenchError(f"{STYLEGAN_V_ENV} is not a StyleGAN-V checkout", path=checkout,
                         fix="git clone https://github.com/universome/stylegan-v and point "
                         f"{STYLEGAN_V_ENV} at it")
    try:
        from omegaconf import OmegaConf
    except ImportError:
        raise BenchError("StyleGAN-V's dataset code imports omegaconf",
                         fix="`pip install omegaconf`") from None
    if str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))  # its modules import each other as `src.*`
    from src import dnnlib  # type: ignore[import-not-found]
    from src.metrics import frechet_video_distance, metric_utils  # type: ignore

    work = inputs.workdir / "stylegan-v"
    downloads = work / "dnnlib" / "downloads"
    downloads.mkdir(parents=True)
    md5 = hashlib.md5(STYLEGAN_V_DETECTOR_URL.encode()).hexdigest()
    shutil.copyfile(locate(I3D), downloads / f"{md5}_i3d_torchscript.pt")
    for side in ("real", "fake"):
        for k, clip in enumerate(clips):
            path = clip.ground_truth if side == "real" else clip.generated
            frames = cv2_frames(path)
            start = 0
            if side == "real":
                sha = hashlib.sha256(path.read_bytes()).hexdigest()
                start = random.Random(f"{START_SEED}:{sha}").randint(0, len(frames) - 16)
            folder = work / side / f"video{k:05d}"
            folder.mkdir(parents=True)
            for t, frame in enumerate(frames[start : start + 16]):
                cv2.imwrite(str(folder / f"{t:06d}.png"), frame)

    def dataset(side: str) -> Any:
        return dnnlib.EasyDict(class_name="src.training.dataset.VideoFramesFolderDataset",
                               path=str(work / side), cfg=OmegaConf.create({"max_num_frames": 16}),
                               resolution=256, use_labels=False, xflip=False)

    previous = dnnlib.util._dnnlib_cache_dir
    dnnlib.util.set_cache_dir(str(work / "dnnlib"))
    try:
        opts = metric_utils.MetricOptions(
            dataset_kwargs=dataset("real"), gen_dataset_kwargs=dataset("fake"),
            generator_as_dataset=True, device=torch.device(inputs.device), cache=False)
        return float(frechet_video_distance.compute_fvd(opts, max_real=2048, num_gen=2048,
                                                        num_frames=16))
    finally:
        dnnlib.util.set_cache_dir(previous)


@hookimpl
def register_weights(register):
    register(I3D)


@hookimpl
def register_extractors(register):
    register(I3DLogits)
    register(I3DLogitsFace)
    register(I3DLogitsStyleGANV)
    register(I3DLogitsStyleGANVFace)


@hookimpl
def register_metrics(register):
    register(FVDFull)
    register(FVDFace)
    register(FVDFullRenamed)
    register(FVDFaceRenamed)
    register(FVDStyleGANVFull)
    register(FVDStyleGANVFace)


@hookimpl
def register_parity_checks(register):
    register(StyleGANVFVD)
