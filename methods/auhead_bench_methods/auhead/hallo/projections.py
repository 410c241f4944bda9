"""Hallo's three small condition networks, with its parameter names.

- ``AudioProjModel``: each frame's window of wav2vec2 hidden states (window x layers x
  channels, flattened) -> ``context_tokens`` audio tokens (three linear layers, ReLU, LayerNorm).
- ``ImageProjModel``: the reference face's identity embedding -> image tokens, the
  cross-attention context of every spatial transformer (Hallo has no text prompt).
- ``FaceLocator``: the face-region mask image -> a feature map added to the denoiser's first
  features (strided 3x3 convolutions, SiLU, the last convolution zero-initialised). Hallo's
  ``InflatedConv3d`` is a 2D convolution applied frame by frame, so ``nn.Conv2d`` holds the
  same parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def zero_module(module: nn.Module) -> nn.Module:
    """Zero a module's parameters: its output starts at exactly zero."""
    for parameter in module.parameters():
        nn.init.zeros_(parameter)
    return module


class AudioProjModel(nn.Module):
    """(B, F, window, blocks, channels) -> (B, F, context_tokens, output_dim)."""

    def __init__(self, seq_len: int, blocks: int, channels: int, intermediate_dim: int,
                 output_dim: int, context_tokens: int):
        super().__init__()
        self.context_tokens, self.output_dim = context_tokens, output_dim
        self.proj1 = nn.Linear(seq_len * blocks * channels, intermediate_dim)
        self.proj2 = nn.Linear(intermediate_dim, intermediate_dim)
        self.proj3 = nn.Linear(intermediate_dim, context_tokens * output_dim)
        self.norm = nn.LayerNorm(output_dim)

    def forward(self, audio_embeds: torch.Tensor) -> torch.Tensor:
        batch, frames = audio_embeds.shape[:2]
        x = audio_embeds.reshape(batch * frames, -1)
        x = torch.relu(self.proj2(torch.relu(self.proj1(x))))
        tokens = self.norm(self.proj3(x).reshape(-1, self.context_tokens, self.output_dim))
        return tokens.reshape(batch, frames, self.context_tokens, self.output_dim)


class ImageProjModel(nn.Module):
    """(B, clip_embeddings_dim) -> (B, clip_extra_context_tokens, cross_attention_dim)."""

    def __init__(self, cross_attention_dim: int, clip_embeddings_dim: int,
                 clip_extra_context_tokens: int):
        super().__init__()
        self.cross_attention_dim = cross_attention_dim
        self.tokens = clip_extra_context_tokens
        self.proj = nn.Linear(clip_embeddings_dim, clip_extra_context_tokens * cross_attention_dim)
        self.norm = nn.LayerNorm(cross_attention_dim)

    def forward(self, image_embeds: torch.Tensor) -> torch.Tensor:
        tokens = self.proj(image_embeds).reshape(-1, self.tokens, self.cross_attention_dim)
        return self.norm(tokens)


class FaceLocator(nn.Module):
    """(N, 3, H, W) mask image -> (N, embedding_channels, H / 2^(levels-1), ...)."""

    def __init__(self, conditioning_embedding_channels: int, conditioning_channels: int = 3,
                 block_out_channels: tuple[int, ...] = (16, 32, 64, 128)):
        super().__init__()
        self.conv_in = nn.Conv2d(conditioning_channels, block_out_channels[0], 3, padding=1)
        self.blocks = nn.ModuleList()
        pairs = zip(block_out_channels, block_out_channels[1:], strict=False)
        for channel_in, channel_out in pairs:
            self.blocks.append(nn.Conv2d(channel_in, channel_in, 3, padding=1))
            self.blocks.append(nn.Conv2d(channel_in, channel_out, 3, padding=1, stride=2))
        self.conv_out = zero_module(
            nn.Conv2d(block_out_channels[-1], conditioning_embedding_channels, 3, padding=1)
        )

    def forward(self, conditioning: torch.Tensor) -> torch.Tensor:
        x = F.silu(self.conv_in(conditioning))
        for block in self.blocks:
            x = F.silu(block(x))
        return self.conv_out(x)
