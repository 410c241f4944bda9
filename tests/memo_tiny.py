"""Tiny networks of the real memo classes (MemoNet at MemoConfig.tiny(), a 2-level VAE, a
2-layer wav2vec2) and conditions for them."""

from __future__ import annotations

import torch

from auhead_bench_methods.auhead.memo.blocks import MotionMemory
from auhead_bench_methods.auhead.memo.config import MemoConfig
from auhead_bench_methods.auhead.memo.net import MemoNet
from auhead_bench_methods.auhead.memo.unet3d import MemoConditions


def tiny_net(seed: int = 0, cfg: MemoConfig | None = None) -> MemoNet:
    torch.manual_seed(seed)
    net = MemoNet(cfg or MemoConfig.tiny())
    with torch.no_grad():  # trained weights are not zero: wake the zero-initialised layers
        for name, p in net.named_parameters():
            if "proj_out" in name or "conv_out" in name:
                p.normal_(0, 0.2)
    return net.eval()


def conditions(net: MemoNet, batch: int, frames: int, seed: int = 0, audio: bool = False,
               emotion: bool = False, reference: bool = False,
               past: bool = False) -> MemoConditions:
    """Conditions from fixed random inputs; each flag changes that one input."""
    cfg = net.cfg
    g = torch.Generator().manual_seed(seed)
    latent = cfg.resolution // 2  # the tiny VAE downsamples by 2
    images = 1 + cfg.n_past_frames
    refs = torch.randn(batch * images, 4, latent, latent, generator=g)
    if reference:
        refs[0] = refs[0] + 1.0
    if past:
        refs[1:] = refs[1:] - 1.0
    embedding = torch.randn(batch, cfg.face_embedding_dim, generator=g)
    features = torch.randn(batch, frames, cfg.audio_window, cfg.audio_blocks, cfg.audio_channels,
                           generator=g)
    if audio:
        features = features * 2
    tokens = net.image_proj(embedding)
    bank = net.reference(refs, tokens.repeat_interleave(images, 0), images)
    return MemoConditions(
        image_tokens=tokens, audio_tokens=net.audio_proj(features),
        emotion=torch.full((batch,), 5 if emotion else 2), bank=bank, memory=MotionMemory(),
    )


def tiny_backbone(seed: int = 0):
    """MemoBackbone at MemoConfig.tiny(), a 2-level VAE, a 2-layer wav2vec2."""
    from diffusers import AutoencoderKL
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    from auhead_bench_methods.auhead.memo.backbone import MemoBackbone

    net = tiny_net(seed)
    cfg = net.cfg
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
    return MemoBackbone(net, vae, wav2vec2, {})
