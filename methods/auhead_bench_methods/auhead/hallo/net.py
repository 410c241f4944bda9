"""Hallo's ``Net``: the five networks its released ``net.pth`` holds, under its names.

``scripts/inference.py`` builds ``Net(reference_unet, denoising_unet, face_locator, imageproj,
audioproj)`` and loads ``net.pth`` into it, asserting no missing and no unexpected keys; the
same file loads here with ``strict=True``. The motion-module file (AnimateDiff's
``mm_sd_v15_v2.ckpt``) holds exactly the ``motion_modules`` tensors of the denoiser: Hallo
starts its stage-2 training from it; ``net.pth`` already contains the trained ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from diffusers import UNet2DConditionModel
from torch import nn

from auhead_bench.errors import BenchError
from auhead_bench.weights import load_state_dict
from auhead_bench_methods.auhead.hallo.config import HalloConfig
from auhead_bench_methods.auhead.hallo.projections import (
    AudioProjModel,
    FaceLocator,
    ImageProjModel,
)
from auhead_bench_methods.auhead.hallo.reference import ReferenceWriter
from auhead_bench_methods.auhead.hallo.unet3d import DenoisingUNet3D

NET_PARTS = ("reference_unet", "denoising_unet", "face_locator", "imageproj", "audioproj")


def sd15_unet_config(cfg: HalloConfig) -> dict[str, Any]:
    """The SD1.5 UNet config.json the reference net is built from, at ``cfg``'s sizes."""
    n = len(cfg.block_out_channels)
    return {
        "sample_size": cfg.resolution // 8,
        "in_channels": cfg.latent_channels,
        "out_channels": cfg.latent_channels,
        "block_out_channels": list(cfg.block_out_channels),
        "layers_per_block": cfg.layers_per_block,
        "down_block_types": ["CrossAttnDownBlock2D"] * (n - 1) + ["DownBlock2D"],
        "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * (n - 1),
        "attention_head_dim": cfg.attention_heads,
        "cross_attention_dim": cfg.cross_attention_dim,
        "norm_num_groups": cfg.norm_num_groups,
        "norm_eps": cfg.norm_eps,
        "flip_sin_to_cos": True,
        "freq_shift": 0,
        "downsample_padding": 1,
        "act_fn": "silu",
    }


class HalloNet(nn.Module):
    """reference_unet, denoising_unet, face_locator, imageproj, audioproj."""

    def __init__(self, cfg: HalloConfig):
        super().__init__()
        self.cfg = cfg
        self.reference_unet = UNet2DConditionModel.from_config(sd15_unet_config(cfg))
        self.writer = ReferenceWriter(self.reference_unet)  # strips the head: Hallo's layout
        self.denoising_unet = DenoisingUNet3D(cfg)
        self.face_locator = FaceLocator(cfg.block_out_channels[0],
                                        block_out_channels=cfg.face_locator_channels)
        self.imageproj = ImageProjModel(cfg.cross_attention_dim, cfg.face_embedding_dim,
                                        cfg.image_tokens)
        self.audioproj = AudioProjModel(cfg.audio_window, cfg.audio_blocks, cfg.audio_channels,
                                        cfg.audio_intermediate, cfg.audio_attention_dim,
                                        cfg.audio_tokens)

    def load_net(self, path: Path) -> None:
        """Hallo's ``net.pth`` (or a file in its layout), every tensor accounted for."""
        state = load_state_dict(Path(path))
        try:
            self.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            summary = str(exc).split("\n")[0:2]
            raise BenchError(
                f"not Hallo's net.pth layout ({' '.join(s.strip() for s in summary)[:300]})",
                path=path, fix="pull it with `auhead-bench weights pull hallo-net`",
            ) from None

    def load_motion_modules(self, path: Path) -> None:
        """AnimateDiff's motion-module file into the denoiser; it must hold exactly them."""
        state = load_state_dict(Path(path))
        expected = {k for k in self.denoising_unet.state_dict() if ".motion_modules." in k}
        missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
        if missing or unexpected:
            raise BenchError(
                f"not an AnimateDiff mm_sd_v15_v2 motion module ({len(missing)} missing, "
                f"{len(unexpected)} unexpected, e.g. {(missing + unexpected)[0]})",
                path=path, fix="pull it with `auhead-bench weights pull hallo-motion-module`",
            )
        self.denoising_unet.load_state_dict(state, strict=False)

    @property
    def device(self) -> torch.device:
        return self.face_locator.conv_in.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.face_locator.conv_in.weight.dtype
