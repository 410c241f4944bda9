"""The two modules Hallo adds to each level of the SD1.5 UNet, with its parameter names.

- ``MotionModule`` is AnimateDiff's "Vanilla" temporal module (the layout of
  ``mm_sd_v15_v2.ckpt``): GroupNorm, a linear projection, one block of two temporal
  self-attentions (each with a sinusoidal position table ``pos_encoder.pe`` of 32 frames, kept
  in the state dict) and a GEGLU feed-forward, a zero-initialised output projection, residual.
  Attention runs over frames at each spatial position; Hallo prepends the reference net's
  motion-frame features as extra frames (``motion_frames``) and drops them again afterwards.
- ``AudioModule`` is Hallo's audio attention (its ``Transformer3DModel`` with
  ``use_audio_module``): GroupNorm, 1x1 projection to ``inner`` channels, self-attention, then
  three cross-attentions to the frame's audio tokens, weighted by the full/face/lip region
  masks of the level and each passed through a zero-initialised 1x1 convolution, a feed-forward,
  the projection back, residual.
"""

from __future__ import annotations

import math

import torch
from diffusers.models.attention import FeedForward
from diffusers.models.attention_processor import Attention
from torch import nn

from auhead_bench_methods.auhead.hallo.projections import zero_module


class PositionalEncoding(nn.Module):
    """The fixed sinusoidal table AnimateDiff adds to frames; a buffer in the state dict."""

    def __init__(self, dim: int, max_len: int):
        super().__init__()
        position = torch.arange(max_len).unsqueeze(1)
        div = torch.exp(torch.arange(0, dim, 2) * (-math.log(10000.0) / dim))
        pe = torch.zeros(1, max_len, dim)
        pe[0, :, 0::2] = torch.sin(position * div)
        pe[0, :, 1::2] = torch.cos(position * div)
        self.register_buffer("pe", pe)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] > self.pe.shape[1]:
            raise ValueError(f"{x.shape[1]} frames exceed the motion module's {self.pe.shape[1]}")
        return x + self.pe[:, : x.shape[1]].to(x.dtype)


class TemporalAttention(Attention):
    """Self-attention across frames, positions encoded (AnimateDiff's VersatileAttention)."""

    def __init__(self, dim: int, heads: int, max_len: int):
        super().__init__(query_dim=dim, heads=heads, dim_head=dim // heads, bias=False)
        self.pos_encoder = PositionalEncoding(dim, max_len)

    def temporal(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        """(N * frames, L, C) -> the same, each spatial position attending across frames."""
        n_f, tokens, channels = x.shape
        seq = x.reshape(n_f // frames, frames, tokens, channels).transpose(1, 2)
        seq = self.pos_encoder(seq.reshape(-1, frames, channels))
        out = super().forward(seq)
        out = out.reshape(n_f // frames, tokens, frames, channels).transpose(1, 2)
        return out.reshape(n_f, tokens, channels)


class TemporalTransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, max_len: int, n_attention: int = 2):
        super().__init__()
        self.attention_blocks = nn.ModuleList(
            TemporalAttention(dim, heads, max_len) for _ in range(n_attention)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(n_attention))
        self.ff = FeedForward(dim, activation_fn="geglu")
        self.ff_norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        for attention, norm in zip(self.attention_blocks, self.norms, strict=True):
            x = attention.temporal(norm(x), frames) + x
        return self.ff(self.ff_norm(x)) + x


class TemporalTransformer(nn.Module):
    def __init__(self, channels: int, heads: int, max_len: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, channels)
        self.transformer_blocks = nn.ModuleList(
            [TemporalTransformerBlock(channels, heads, max_len)]
        )
        self.proj_out = zero_module(nn.Linear(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, F, h, w) -> the same."""
        batch, channels, frames, height, width = x.shape
        flat = x.transpose(1, 2).reshape(batch * frames, channels, height, width)
        hidden = self.norm(flat).permute(0, 2, 3, 1).reshape(batch * frames, -1, channels)
        hidden = self.proj_in(hidden)
        for block in self.transformer_blocks:
            hidden = block(hidden, frames)
        hidden = self.proj_out(hidden).reshape(batch * frames, height, width, channels)
        out = hidden.permute(0, 3, 1, 2) + flat
        return out.reshape(batch, frames, channels, height, width).transpose(1, 2)


class MotionModule(nn.Module):
    """AnimateDiff's VanillaTemporalModule."""

    def __init__(self, channels: int, heads: int, max_len: int, groups: int):
        super().__init__()
        self.temporal_transformer = TemporalTransformer(channels, heads, max_len, groups)

    def forward(self, x: torch.Tensor, motion_frames: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, C, F, h, w); ``motion_frames`` (B, C, M, h, w) are attended to, then dropped."""
        if motion_frames is None or motion_frames.shape[2] == 0:
            return self.temporal_transformer(x)
        joined = torch.cat([motion_frames.to(x.dtype), x], dim=2)
        return self.temporal_transformer(joined)[:, :, motion_frames.shape[2]:]


class AudioTransformerBlock(nn.Module):
    """Hallo's AudioTemporalBasicTransformerBlock (the stacked full/face/lip variant)."""

    def __init__(self, dim: int, heads: int, audio_dim: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = Attention(query_dim=dim, heads=heads, dim_head=dim // heads)
        self.norm2 = nn.LayerNorm(dim)
        for i in range(3):
            self.add_module(
                f"attn2_{i}",
                Attention(query_dim=dim, cross_attention_dim=audio_dim, heads=heads,
                          dim_head=dim // heads),
            )
        self.zero_conv_full = zero_module(nn.Conv2d(dim, dim, 1))
        self.zero_conv_face = zero_module(nn.Conv2d(dim, dim, 1))
        self.zero_conv_lip = zero_module(nn.Conv2d(dim, dim, 1))
        self.ff = FeedForward(dim, activation_fn="geglu")
        self.norm3 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, audio: torch.Tensor, masks: tuple[torch.Tensor, ...],
                size: tuple[int, int], motion_scale: tuple[float, float, float]) -> torch.Tensor:
        """x (N, h*w, dim); audio (N, tokens, audio_dim); masks: full, face, lip, each (N, h*w)."""
        x = self.attn1(self.norm1(x)) + x
        normed = self.norm2(x)
        height, width = size
        convs = (self.zero_conv_full, self.zero_conv_face, self.zero_conv_lip)
        attentions = (self.attn2_0, self.attn2_1, self.attn2_2)
        parts = zip(attentions, convs, masks, motion_scale, strict=True)
        for attention, conv, mask, scale in parts:
            region = attention(normed, encoder_hidden_states=audio) * mask[:, :, None].to(x.dtype)
            region = region.reshape(-1, height, width, region.shape[-1]).permute(0, 3, 1, 2)
            region = conv(region).permute(0, 2, 3, 1).reshape(x.shape)
            x = x + scale * region
        return self.ff(self.norm3(x)) + x


class AudioModule(nn.Module):
    """Audio attention over a (B*F, C, h, w) feature map, at ``inner`` channels."""

    def __init__(self, channels: int, inner: int, heads: int, audio_dim: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels, eps=1e-6)
        self.proj_in = nn.Conv2d(channels, inner, 1)
        self.transformer_blocks = nn.ModuleList([AudioTransformerBlock(inner, heads, audio_dim)])
        self.proj_out = nn.Conv2d(inner, channels, 1)

    def forward(self, x: torch.Tensor, audio: torch.Tensor, masks: tuple[torch.Tensor, ...],
                motion_scale: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> torch.Tensor:
        n, _, height, width = x.shape
        hidden = self.proj_in(self.norm(x))
        inner = hidden.shape[1]
        hidden = hidden.permute(0, 2, 3, 1).reshape(n, height * width, inner)
        for block in self.transformer_blocks:
            hidden = block(hidden, audio, masks, (height, width), motion_scale)
        hidden = hidden.reshape(n, height, width, inner).permute(0, 3, 1, 2)
        return self.proj_out(hidden) + x
