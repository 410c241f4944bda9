"""Hallo's denoising UNet: SD1.5's 2D UNet applied frame by frame, plus per layer an audio
module and an AnimateDiff motion module; parameter names as Hallo's ``UNet3DConditionModel``.

Hallo's 3D blocks ("inflated" convolutions and group norms, a 3D transformer wrapper) apply
2D layers to every frame, so diffusers' 2D ``ResnetBlock2D``, ``Transformer2DModel``,
``Downsample2D`` and ``Upsample2D`` hold exactly its parameters; frames travel folded into the
batch (B * F, C, h, w). Order inside each layer of a cross-attention block (Hallo's
``CrossAttnDownBlock3D`` etc.): resnet, spatial transformer (self-attention reads the
ReferenceNet, cross-attention to the face-identity tokens), audio module (at mask level
``depth``: down block i -> i, mid -> last, up block i -> last - i), motion module (with the
reference's motion-frame features as leading frames). Blocks without attention: resnet only
(see ``HalloConfig.plain_block_motion``). The face locator's features are added after
``conv_in``.

Note: Hallo's inference runs its UNet in training mode with gradient checkpointing on (it
never calls ``eval()`` on a model built with ``from_config``), which takes the branch of its
blocks that prepends the motion frames in every cross-attention block and skips the motion
modules of the blocks without attention; that branch is the one built here, for training and
sampling alike. With the same weights, Hallo's classes and ours give the same output (max
difference 5e-8 at an output scale of 0.13, small config: tests/data/check_hallo_forward.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from diffusers.models.attention_processor import Attention
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.resnet import Downsample2D, ResnetBlock2D, Upsample2D
from diffusers.models.transformers.transformer_2d import Transformer2DModel
from torch import nn

from auhead_bench_methods.auhead.hallo.blocks import AudioModule, MotionModule
from auhead_bench_methods.auhead.hallo.config import HalloConfig
from auhead_bench_methods.auhead.hallo.reference import (
    AttentionContext,
    ReadProcessor,
    ReferenceBank,
    self_attention_names,
)


@dataclass
class RegionMasks:
    """Hallo's full/face/lip masks, one (B, h*w) tensor per level (finest first)."""

    full: list[torch.Tensor]
    face: list[torch.Tensor]
    lip: list[torch.Tensor]

    def level(self, depth: int, frames: int) -> tuple[torch.Tensor, ...]:
        levels = (self.full, self.face, self.lip)
        return tuple(m[depth].repeat_interleave(frames, 0) for m in levels)


@dataclass
class Conditions:
    """Everything one denoiser call is conditioned on (rows stacked for guidance)."""

    image_tokens: torch.Tensor  # (B, n, D) ImageProjModel output
    audio_tokens: torch.Tensor  # (B, F, T, Da) AudioProjModel output
    masks: RegionMasks
    mask_features: torch.Tensor | None = None  # (B, C0, F, h, w): face locator (+ AU landmarks)
    bank: ReferenceBank | None = None
    h_on: torch.Tensor | None = None  # (B,): 0 drops the reference attention
    cross_attention_kwargs: dict[str, Any] | None = None  # the AU adapter's
    motion_scale: tuple[float, float, float] = (1.0, 1.0, 1.0)
    # Without a bank (training with the ReferenceNet skipped) Hallo's cross-attention blocks
    # give the motion module this many all-zero motion frames (a literal 4 in its blocks)
    empty_bank_motion_frames: int = 0


EMPTY_BANK_MOTION_FRAMES = 4


class _Block(nn.Module):
    """One down/mid/up level: resnets, and per layer attention, audio and motion modules."""

    def __init__(self, cfg: HalloConfig, resnet_io: list[tuple[int, int]], channels: int,
                 audio_inner: list[int], cross: bool, temb: int):
        super().__init__()
        self.use_motion = cross or cfg.plain_block_motion
        heads, groups = cfg.attention_heads, cfg.norm_num_groups
        self.resnets = nn.ModuleList(
            ResnetBlock2D(in_channels=i, out_channels=o, temb_channels=temb, eps=cfg.norm_eps,
                          groups=groups)
            for i, o in resnet_io
        )
        layers = len(audio_inner)
        if cross:
            self.attentions = nn.ModuleList(
                Transformer2DModel(heads, channels // heads, in_channels=channels,
                                   cross_attention_dim=cfg.cross_attention_dim,
                                   norm_num_groups=groups)
                for _ in range(layers)
            )
            self.audio_modules = nn.ModuleList(
                AudioModule(channels, inner, heads, cfg.audio_attention_dim, groups)
                for inner in audio_inner
            )
        self.motion_modules = nn.ModuleList(
            MotionModule(channels, cfg.motion_heads, cfg.motion_max_len, cfg.motion_norm_groups)
            for _ in range(layers)
        )
        self.cross = cross

    def layer(self, i: int, x: torch.Tensor, frames: int, cond: Conditions, depth: int,
              prefix: str) -> torch.Tensor:
        """Attention, audio and motion modules of layer i on (B * F, C, h, w)."""
        height, width = x.shape[-2:]
        motion = None
        if self.cross:
            tokens = cond.image_tokens.repeat_interleave(frames, 0)
            x = self.attentions[i](x, encoder_hidden_states=tokens,
                                   cross_attention_kwargs=cond.cross_attention_kwargs,
                                   return_dict=False)[0]
            audio = cond.audio_tokens.flatten(0, 1)
            x = self.audio_modules[i](x, audio, cond.masks.level(depth, frames), cond.motion_scale)
            if cond.bank is not None:
                name = f"{prefix}.attentions.{i}.transformer_blocks.0.attn1"
                motion = cond.bank.motion(name, height, width)
            elif cond.empty_bank_motion_frames:
                motion = x.new_zeros(len(x) // frames, x.shape[1], cond.empty_bank_motion_frames,
                                     height, width)
        if not self.use_motion:
            return x
        video = x.reshape(-1, frames, *x.shape[1:]).transpose(1, 2)
        video = self.motion_modules[i](video, motion)
        return video.transpose(1, 2).reshape(x.shape)


class DenoisingUNet3D(nn.Module):
    """e(z_t, t, conditions) for a (B, 4, F, h, w) clip of latents."""

    def __init__(self, cfg: HalloConfig):
        super().__init__()
        channels = list(cfg.block_out_channels)
        n, layers = len(channels), cfg.layers_per_block
        temb = channels[0] * 4
        self.conv_in = nn.Conv2d(cfg.latent_channels, channels[0], 3, padding=1)
        self.time_proj = Timesteps(channels[0], flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embedding = TimestepEmbedding(channels[0], temb)
        self.down_blocks = nn.ModuleList()
        previous = channels[0]
        for i, out in enumerate(channels):
            ins = [previous] + [out] * (layers - 1)
            block = _Block(cfg, [(c, out) for c in ins], out, ins, i < n - 1, temb)
            if i < n - 1:
                block.downsamplers = nn.ModuleList(
                    [Downsample2D(out, use_conv=True, out_channels=out, padding=1, name="op")]
                )
            self.down_blocks.append(block)
            previous = out
        top = channels[-1]
        self.mid_block = _Block(cfg, [(top, top)] * 2, top, [top], True, temb)
        reversed_channels = channels[::-1]
        self.up_blocks = nn.ModuleList()
        previous = top
        for i, out in enumerate(reversed_channels):
            skip_in = reversed_channels[min(i + 1, n - 1)]
            io = [
                ((previous if j == 0 else out) + (skip_in if j == layers else out), out)
                for j in range(layers + 1)
            ]
            block = _Block(cfg, io, out, [skip_in] * (layers + 1), i > 0, temb)
            if i < n - 1:
                block.upsamplers = nn.ModuleList([Upsample2D(out, use_conv=True, out_channels=out)])
            self.up_blocks.append(block)
            previous = out
        self.conv_norm_out = nn.GroupNorm(cfg.norm_num_groups, channels[0], eps=cfg.norm_eps)
        self.conv_act = nn.SiLU()
        self.conv_out = nn.Conv2d(channels[0], cfg.latent_channels, 3, padding=1)
        self.context = AttentionContext()
        # Hallo trains with it on: each resnet and layer recomputed in the backward pass
        self.gradient_checkpointing = False
        for name in self_attention_names(self):
            self.get_submodule(name).set_processor(ReadProcessor(name, self.context))

    # diffusers-style processor access, so the AU adapter attaches as to any diffusers UNet
    @property
    def attn_processors(self) -> dict[str, Any]:
        return {f"{name}.processor": module.processor for name, module in self.named_modules()
                if isinstance(module, Attention)}

    def set_attn_processor(self, processors: dict[str, Any]) -> None:
        for key, processor in processors.items():
            self.get_submodule(key.removesuffix(".processor")).set_processor(processor)

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor | int,
                cond: Conditions) -> torch.Tensor:
        batch, _, frames, height, width = sample.shape
        timesteps = torch.as_tensor(timestep, device=sample.device).reshape(-1).expand(batch)
        emb = self.time_embedding(self.time_proj(timesteps).to(sample.dtype))
        emb = emb.repeat_interleave(frames, 0)
        x = self.conv_in(sample.transpose(1, 2).reshape(batch * frames, -1, height, width))
        if cond.mask_features is not None:
            x = x + cond.mask_features.transpose(1, 2).reshape(x.shape).to(x.dtype)
        # Kept after the call (until the next): a checkpointed backward pass recomputes the
        # self-attentions, which read the reference bank from here.
        self.context.bank, self.context.frames, self.context.h_on = cond.bank, frames, cond.h_on
        x = self._unet(x, emb, frames, cond)
        x = self.conv_out(self.conv_act(self.conv_norm_out(x)))
        return x.reshape(batch, frames, -1, height, width).transpose(1, 2)

    def _run(self, function: Any, *args: Any) -> torch.Tensor:
        if self.gradient_checkpointing and torch.is_grad_enabled():
            from torch.utils.checkpoint import checkpoint

            return checkpoint(function, *args, use_reentrant=False)
        return function(*args)

    def _unet(self, x: torch.Tensor, emb: torch.Tensor, frames: int,
              cond: Conditions) -> torch.Tensor:
        last = len(self.down_blocks) - 1
        skips = [x]
        for i, block in enumerate(self.down_blocks):
            for j, resnet in enumerate(block.resnets):
                x = self._run(resnet, x, emb)
                x = self._run(block.layer, j, x, frames, cond, i, f"down_blocks.{i}")
                skips.append(x)
            if hasattr(block, "downsamplers"):
                x = block.downsamplers[0](x)
                skips.append(x)
        mid = self.mid_block
        x = self._run(mid.resnets[0], x, emb)
        x = self._run(mid.layer, 0, x, frames, cond, last, "mid_block")
        x = self._run(mid.resnets[1], x, emb)
        for i, block in enumerate(self.up_blocks):
            for j, resnet in enumerate(block.resnets):
                x = self._run(resnet, torch.cat([x, skips.pop()], dim=1), emb)
                x = self._run(block.layer, j, x, frames, cond, last - i, f"up_blocks.{i}")
            if hasattr(block, "upsamplers"):
                x = block.upsamplers[0](x, output_size=skips[-1].shape[-2:])
        return x
