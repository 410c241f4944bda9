"""Full-reference pixel metrics: PSNR and SSIM against the frame-aligned ground truth.

Both come from torchmetrics, per frame, averaged over the frames of a clip and then over
clips. Alignment is named and recorded: the two videos are truncated to the shorter one,
and a generated video of another size is resized to the ground truth's (bilinear,
antialiased) before comparison. torchmetrics is imported on the first score, not at plugin
registration: it imports torchvision and transformers (over a second), and every CLI command
and Ray worker registers the plugins.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from auhead_bench import ClipScore, ClipSkipped, ClipView, Options, PerClipMetric, hookimpl
from auhead_bench.frames import aligned_chunks, writable
from auhead_bench.parity import ParityCheck, ParityInputs

BATCH = 16  # frames per torchmetrics call: bounds memory on long clips
BATCH_BYTES = 4 << 20  # ...and fewer for large frames: SSIM holds ~15 float32 copies of a
# batch (16 frames of 512 px: 1.4 GB). Batches of 2 or more give bit-identical values.
PSNR_CAP_DB = 100.0  # identical frames give infinite PSNR; capped so means stay finite


class AlignedOptions(Options):
    align: Literal["truncate"] = "truncate"  # frames compared: the first min(T_gen, T_gt)
    resize: Literal["bilinear_to_ground_truth"] = "bilinear_to_ground_truth"


def aligned_batches(view: ClipView):
    """Yield (generated, ground truth) float tensors (B, 3, H, W) in 0..255, frame-aligned.

    The two videos are walked in lockstep, chunk by chunk (memory does not grow with the
    clip), in batches of ``BATCH`` frames.
    """
    if view.ground_truth is None:
        raise ClipSkipped("no ground-truth video")
    count = 0
    height, width = view.ground_truth.frame_shape()
    batch = max(1, min(BATCH, BATCH_BYTES // (height * width * 3)))  # 4K: one frame a batch
    pairs = aligned_chunks(view.generated.chunks(), view.ground_truth.chunks(), batch)
    for gen, gt in pairs:
        count += len(gen)
        a = torch.from_numpy(writable(gen)).permute(0, 3, 1, 2).float()
        b = torch.from_numpy(writable(gt)).permute(0, 3, 1, 2).float()
        if a.shape[-2:] != b.shape[-2:]:
            a = F.interpolate(
                a, size=tuple(b.shape[-2:]), mode="bilinear", antialias=True, align_corners=False
            ).clamp(0, 255)
        yield a, b
    if count == 0:
        raise ClipSkipped("a video has no frames")


class PSNR(PerClipMetric):
    id = "psnr_rgb"
    description = "PSNR (dB) per RGB frame vs ground truth, data range 255, capped at 100 dB."
    higher_is_better = True
    Options = AlignedOptions

    def protocol(self) -> dict:
        return {
            **super().protocol(),
            "data_range": 255,
            "cap_db": PSNR_CAP_DB,
            "reduction": "mean over frames, then clips",
        }

    def score(self, view: ClipView) -> ClipScore:
        from torchmetrics.functional.image import peak_signal_noise_ratio

        values = []
        for a, b in aligned_batches(view):
            psnr = peak_signal_noise_ratio(a, b, data_range=255.0, reduction="none", dim=(1, 2, 3))
            values.append(torch.nan_to_num(psnr, posinf=PSNR_CAP_DB).clamp(max=PSNR_CAP_DB))
        frames = torch.cat(values)
        return ClipScore(float(frames.mean()), {"frames": len(frames)})


class SSIM(PerClipMetric):
    id = "ssim_gauss11_rgb"
    description = "SSIM, Gaussian 11x11 window (sigma 1.5), on RGB frames vs ground truth."
    higher_is_better = True
    Options = AlignedOptions

    def protocol(self) -> dict:
        return {
            **super().protocol(),
            "kernel": "gaussian",
            "kernel_size": 11,
            "sigma": 1.5,
            "k1": 0.01,
            "k2": 0.03,
            "data_range": 255,
            "channels": "RGB, averaged",
        }

    def score(self, view: ClipView) -> ClipScore:
        values = [ssim_frames(a, b) for a, b in aligned_batches(view)]
        frames = torch.cat(values)
        return ClipScore(float(frames.mean()), {"frames": len(frames)})


SSIM_ARGS = dict(
    gaussian_kernel=True, sigma=1.5, kernel_size=11, data_range=255.0, k1=0.01, k2=0.03
)
HALO = 5  # rows each side an 11x11 window reaches
STRIP_PIXELS = 1 << 20  # frames above 2 Mpx (4K: 8.3 Mpx) are scored a strip at a time


def ssim_frames(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """torchmetrics' SSIM per frame of (B, 3, H, W) batches. Frames over ``2 * STRIP_PIXELS``
    are scored in horizontal strips: torchmetrics holds ~15 float copies of its input (one
    4K frame: ~10 GB), a strip of ~1 Mpx a few hundred MB.

    Each strip is handed over with ``HALO`` real rows above and below, so every kept pixel's
    11x11 window sees the frame's own rows and torchmetrics' reflect padding applies only at
    the frame's true top and bottom: the SSIM map is the whole frame's (tested); only the
    mean's summation order differs (float64 here)."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    height, width = a.shape[-2:]
    if height * width <= 2 * STRIP_PIXELS:
        return structural_similarity_index_measure(a, b, reduction="none", **SSIM_ARGS)
    rows = max(1, STRIP_PIXELS // width)
    totals = torch.zeros(len(a), dtype=torch.float64)
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        start, stop = max(0, top - HALO), min(height, bottom + HALO)
        _, full = structural_similarity_index_measure(
            a[..., start:stop, :], b[..., start:stop, :], reduction="none",
            return_full_image=True, **SSIM_ARGS,
        )
        kept = full[..., top - start : top - start + bottom - top, :]
        totals += kept.double().sum(dim=(1, 2, 3))
    return (totals / (a.shape[1] * height * width)).float()


@hookimpl
def register_metrics(register):
    register(PSNR)
    register(SSIM)


def cv2_frames(path: Path) -> list[np.ndarray]:
    """Every frame as ``cv2.VideoCapture`` reads it (BGR), as evaluation scripts do."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


class PSNRSkimage(ParityCheck):
    """``psnr_rgb`` against scikit-image on frames read by OpenCV (EAT's evaluation reads its
    videos with ``cv2.VideoCapture`` and scores frame pairs one at a time). Same size videos
    only: a resize would be ours on both sides and prove nothing."""

    id = "skimage-psnr"
    metric = "psnr_rgb"
    reference = "skimage.metrics.peak_signal_noise_ratio per cv2.VideoCapture frame pair"
    requires = {"skimage": "scikit-image", "cv2": "opencv-python"}

    def reference_values(self, inputs: ParityInputs) -> dict[str, float | None]:
        from skimage.metrics import peak_signal_noise_ratio

        values: dict[str, float | None] = {}
        for clip in inputs.clips:
            generated, truth = cv2_frames(clip.generated), cv2_frames(clip.ground_truth)
            count = min(len(generated), len(truth))
            if not count or generated[0].shape != truth[0].shape:
                values[clip.clip_id] = None
                continue
            with np.errstate(divide="ignore"):
                psnr = [min(PSNR_CAP_DB, float(peak_signal_noise_ratio(t, g, data_range=255)))
                        for g, t in zip(generated[:count], truth[:count], strict=True)]
            values[clip.clip_id] = float(np.mean(psnr))
        return values


@hookimpl
def register_parity_checks(register):
    register(PSNRSkimage)
