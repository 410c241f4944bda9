"""Tiny networks of the real hallo_v1 classes (Hallo's Net at HalloConfig.tiny(), a 2-level
VAE, a 2-layer wav2vec2), saved in the backbone-folder layout the loader reads."""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import AutoencoderKL
from transformers import Wav2Vec2Config, Wav2Vec2Model

from auhead_bench_methods.auhead.hallo.backbone import HalloBackbone
from auhead_bench_methods.auhead.hallo.config import HalloConfig
from auhead_bench_methods.auhead.hallo.net import HalloNet


def tiny_backbone(seed: int = 0) -> HalloBackbone:
    torch.manual_seed(seed)
    cfg = HalloConfig.tiny()
    net = HalloNet(cfg)
    with torch.no_grad():  # a trained backbone's zero-initialised layers are not zero
        for name, p in net.named_parameters():
            if "zero_conv" in name or "proj_out" in name or "conv_out" in name:
                p.normal_(0, 0.2)
    vae = AutoencoderKL(
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"), block_out_channels=(8, 16),
        latent_channels=4, norm_num_groups=4, sample_size=cfg.resolution,
    )
    wav2vec2 = Wav2Vec2Model(Wav2Vec2Config(
        hidden_size=cfg.audio_channels, num_hidden_layers=cfg.audio_blocks,
        num_attention_heads=2, intermediate_size=16, conv_dim=(8, 8), conv_stride=(5, 4),
        conv_kernel=(10, 4), num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2,
        num_feat_extract_layers=2,
    ))
    return HalloBackbone(net, vae, wav2vec2, {})


def save_tiny_backbone(folder: Path, seed: int = 0) -> Path:
    tiny_backbone(seed).save_folder(folder)
    return folder
