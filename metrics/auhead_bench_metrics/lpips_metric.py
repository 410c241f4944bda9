"""LPIPS (AlexNet, v0.1) per frame against the frame-aligned ground truth.

The network is the ``lpips`` package's own ``LPIPS(net='alex', version='0.1')``: its linear
heads ship inside the package; its AlexNet trunk is torchvision's ImageNet AlexNet, which
``lpips`` would download on first use. Here that file is a declared weight
(``auhead-bench weights pull torchvision_alexnet``), checked against the hash prefix that
torchvision publishes in its file name and copied into the trunk; it is missing -> not computed.

Frames: RGB, mapped from 0..255 to [-1, 1] (``lpips.im2tensor``'s convention), full frames,
truncated to the shorter video; a generated video of another size is resized to the ground
truth's (bilinear, antialiased), as for PSNR/SSIM.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from auhead_bench import ClipScore, ClipView, PerClipMetric, hookimpl
from auhead_bench.media import sha256_file
from auhead_bench.parity import ParityCheck, ParityInputs
from auhead_bench.weights import WeightsMissing, WeightsSpec, file_sha256, load_state_dict, locate
from auhead_bench_metrics.pixel import AlignedOptions, aligned_batches

# torchvision checks downloads against the sha256 prefix in the file name; no full hash is
# published, so the registry entry has none and this prefix is checked here.
ALEXNET_SHA256_PREFIX = "7be5be79"
ALEXNET = WeightsSpec(
    name="torchvision_alexnet",
    filename=f"alexnet-owt-{ALEXNET_SHA256_PREFIX}.pth",
    source=f"https://download.pytorch.org/models/alexnet-owt-{ALEXNET_SHA256_PREFIX}.pth",
    sha256=None,
    licence="BSD-3-Clause (torchvision)",
    description="torchvision ImageNet AlexNet (AlexNet_Weights.IMAGENET1K_V1), the LPIPS trunk",
)


def heads_path() -> Path:
    """The v0.1 AlexNet linear heads that ship inside the ``lpips`` package."""
    import lpips

    return Path(lpips.__file__).parent / "weights" / "v0.1" / "alex.pth"


@lru_cache(maxsize=4)
def _sha256(path: Path) -> str:
    return sha256_file(path)


def alexnet_path() -> Path:
    """The cached trunk file, its hash prefix checked; WeightsMissing with the fix otherwise."""
    path = locate(ALEXNET)
    if not file_sha256(path).startswith(ALEXNET_SHA256_PREFIX):
        raise WeightsMissing(
            f"weights {ALEXNET.name} at {path} do not match torchvision's published hash prefix "
            f"{ALEXNET_SHA256_PREFIX}; run `{ALEXNET.pull_command()} --force`"
        )
    return path


def build_lpips(trunk: Path) -> torch.nn.Module:
    """``lpips.LPIPS(net='alex', version='0.1')`` with its trunk loaded from ``trunk``.

    The package is built with a random trunk (no download), then each of its five slices,
    which hold the modules of torchvision's ``alexnet().features``, takes the weights of the
    same-numbered module of an AlexNet loaded (strictly) from the file.
    """
    import lpips
    from torchvision.models import alexnet

    source = alexnet()
    source.load_state_dict(load_state_dict(trunk))
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # torchvision's deprecated `pretrained=` inside lpips
        model = lpips.LPIPS(net="alex", version="0.1", pretrained=True, pnet_rand=True)
    for part in (model.net.slice1, model.net.slice2, model.net.slice3, model.net.slice4,
                 model.net.slice5):  # fmt: skip
        for index, module in part.named_children():
            module.load_state_dict(source.features[int(index)].state_dict())
    return model.eval()


class LPIPS(PerClipMetric):
    id = "lpips_alex_v01"
    description = "LPIPS (AlexNet, v0.1) per frame vs the frame-aligned ground truth, in [-1, 1]."
    higher_is_better = False
    Options = AlignedOptions

    def __init__(self, options: AlignedOptions | None = None):
        super().__init__(options)
        self._model: torch.nn.Module | None = None
        self._device = "cpu"

    def protocol(self) -> dict[str, Any]:
        return {
            **super().protocol(),
            "implementation": "lpips package, LPIPS(net='alex', version='0.1')",
            "input": "RGB full frames, x / 127.5 - 1",
            "reduction": "mean over frames, then clips",
        }

    def weights(self) -> dict[str, str]:
        heads = {"lpips_v0.1_alex.pth": _sha256(heads_path())}
        try:
            return {ALEXNET.filename: file_sha256(alexnet_path()), **heads}
        except WeightsMissing:
            return {ALEXNET.filename: "missing", **heads}

    def setup(self, device: str) -> None:
        if self._model is None:
            self._model = build_lpips(alexnet_path()).to(device)
            self._device = device

    @torch.inference_mode()
    def score(self, view: ClipView) -> ClipScore:
        self.setup(self._device)
        assert self._model is not None
        values = []
        for gen, gt in aligned_batches(view):
            gen = (gen / 127.5 - 1).to(self._device)
            gt = (gt / 127.5 - 1).to(self._device)
            values.append(self._model(gen, gt).flatten().cpu())
        frames = torch.cat(values)
        return ClipScore(float(frames.mean()), {"frames": len(frames)})


@hookimpl
def register_weights(register):
    register(ALEXNET)


@hookimpl
def register_metrics(register):
    register(LPIPS)


class LPIPSPackage(ParityCheck):
    """``lpips_alex_v01`` against the ``lpips`` package as its README runs it: ``LPIPS(net=
    'alex')`` fetching torchvision's AlexNet through torch.hub (answered from our cached file
    via ``TORCH_HOME``), frames read with OpenCV, ``im2tensor`` per frame, mean over frames.
    Same-size videos only (a resize would be ours on both sides)."""

    id = "lpips-package"
    metric = "lpips_alex_v01"
    reference = "lpips.LPIPS(net='alex')(im2tensor(gen), im2tensor(gt)) per cv2-read frame"
    requires = {"lpips": "lpips", "cv2": "opencv-python"}

    def reference_values(self, inputs: ParityInputs) -> dict[str, float | None]:
        import os
        from unittest import mock

        import cv2
        import lpips

        hub = inputs.workdir / "torch_home" / "hub" / "checkpoints"
        hub.mkdir(parents=True, exist_ok=True)
        link = hub / ALEXNET.filename
        if not link.exists():
            link.symlink_to(alexnet_path())
        with mock.patch.dict(os.environ, {"TORCH_HOME": str(inputs.workdir / "torch_home")}), \
                warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            model = lpips.LPIPS(net="alex", version="0.1").eval()

        def frames(path: Path) -> list:
            capture, out = cv2.VideoCapture(str(path)), []
            while True:
                ok, frame = capture.read()
                if not ok:
                    return out
                out.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))

        values: dict[str, float | None] = {}
        for clip in inputs.clips:
            gen, gt = frames(clip.generated), frames(clip.ground_truth)
            count = min(len(gen), len(gt))
            if not count or gen[0].shape != gt[0].shape:
                values[clip.clip_id] = None
                continue
            with torch.no_grad():
                scores = [float(model(lpips.im2tensor(a), lpips.im2tensor(b)))
                          for a, b in zip(gen[:count], gt[:count], strict=True)]
            values[clip.clip_id] = sum(scores) / count
        return values


@hookimpl
def register_parity_checks(register):
    register(LPIPSPackage)
