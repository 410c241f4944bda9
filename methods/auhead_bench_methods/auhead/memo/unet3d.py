"""MEMO's diffusion net: SD1.5's UNet applied frame by frame, plus per layer MEMO's joint
audio module and its memory-guided motion module; parameter names as MEMO's
``UNet3DConditionModel`` (memo/models/unet_3d.py, unet_3d_blocks.py: read, not copied).

Frames travel folded into the batch (B * F, C, h, w). Order inside each layer of a
cross-attention block: resnet, spatial transformer (self-attention over the frame's tokens and
the reference image's tokens of the same layer; cross-attention to the face-identity tokens),
audio module (the audio tokens flow from one audio module to the next, updated), motion
module (temporal attention with the past frames' memory). Blocks without attention: resnet,
motion module. Every level has motion modules (``motion_module_resolutions`` 1, 2, 4, 8).
``mask_features`` (MEMO's ``mask_cond_fea``, unused by MEMO itself) are added after
``conv_in``: the AU adapter's landmark features enter there.

c_H = 0 rows (``h_on`` 0) are MEMO's unconditional rows (``uc_mask``): self-attention over
the frame's own tokens only; the caller zeroes the audio tokens and gives the "no emotion"
class and the zero-embedding face tokens, as MEMO's pipeline does. Past frames and the memory
stay.

Differences from MEMO, deliberate: MEMO's pipeline pairs rows by ``repeat`` (tiling) twice:
its reference net's 2 x 17 images get the face tokens of rows u, c, u, c, ... in turn, and
its diffusion net's frames the reference tokens of rows u, c, u, c, ...; so with its two
guidance rows half of each row's inputs come from the other row. Here each row's images and
frames use that row's own (sampler.py: c_H = 0 rows the zero-embedding tokens throughout).
With one row (training, and every check) they agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.resnet import Downsample2D, Upsample2D
from diffusers.models.transformers.transformer_2d import Transformer2DModel
from torch import nn

from auhead_bench_methods.auhead.hallo.reference import (
    AttentionContext,
    ReadProcessor,
    ReferenceBank,
    self_attention_names,
)
from auhead_bench_methods.auhead.memo.blocks import (
    AudioModule,
    MemoryAttention,
    MotionMemory,
    MotionModule,
    ResnetBlock,
    frame_group_norm,
)
from auhead_bench_methods.auhead.memo.config import MemoConfig


@dataclass
class MemoConditions:
    """Everything one diffusion-net call is conditioned on (rows stacked for guidance)."""

    image_tokens: torch.Tensor  # (B, n, D) ImageProjModel output
    audio_tokens: torch.Tensor  # (B, F, T, Da) AudioProjModel output
    emotion: torch.Tensor  # (B,) class index; ``emotion_classes`` is "no emotion"
    bank: ReferenceBank  # the reference net's features, 1 + M images per row
    memory: MotionMemory
    h_on: torch.Tensor | None = None  # (B,): 0 drops the reference image (MEMO's uc rows)
    mask_features: torch.Tensor | None = None  # (B, C0, F, h, w), added after conv_in
    cross_attention_kwargs: dict[str, Any] | None = None  # the AU adapter's


def past_frames(bank: ReferenceBank, name: str, height: int, width: int) -> torch.Tensor:
    """The past frames' features of layer ``name``, folded: (B * M, C, h, w)."""
    feature = bank.features[name]
    per = bank.images_per_sample
    if feature.ndim == 4:  # a resnet output
        return feature.reshape(-1, per, *feature.shape[1:])[:, 1:].flatten(0, 1)
    _, length, channels = feature.shape
    grid = feature.reshape(-1, per, length, channels)[:, 1:].flatten(0, 1)
    return grid.reshape(-1, height, width, channels).permute(0, 3, 1, 2)


class _Block(nn.Module):
    """One down/mid/up level: resnets, and per layer attention, audio and motion modules."""

    def __init__(self, cfg: MemoConfig, resnet_io: list[tuple[int, int]], channels: int,
                 audio_inner: list[int], cross: bool, temb: int, final: bool = False):
        super().__init__()
        heads, groups, eps = cfg.attention_heads, cfg.norm_num_groups, cfg.norm_eps
        self.resnets = nn.ModuleList(
            ResnetBlock(i, o, temb, groups, eps, cfg.inflated_groupnorm) for i, o in resnet_io)
        layers = len(audio_inner)
        if cross:
            self.attentions = nn.ModuleList(
                Transformer2DModel(heads, channels // heads, in_channels=channels,
                                   cross_attention_dim=cfg.cross_attention_dim,
                                   norm_num_groups=groups)
                for _ in range(layers))
            self.audio_modules = nn.ModuleList(
                AudioModule(channels, inner, heads, cfg.audio_attention_dim, groups,
                            cfg.emotion_classes, cfg.emotion_dropout,
                            final and j == layers - 1)
                for j, inner in enumerate(audio_inner))
        self.motion_modules = nn.ModuleList(
            MotionModule(channels, cfg.motion_heads, cfg.motion_max_len, cfg.motion_norm_groups,
                         cfg.memory_decay)
            for _ in range(layers))
        self.cross = cross

    def layer(self, i: int, x: torch.Tensor, audio: torch.Tensor | None, frames: int,
              cond: MemoConditions, prefix: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attention, audio and motion modules of layer i on (B * F, C, h, w)."""
        if self.cross:
            name = f"{prefix}.attentions.{i}.transformer_blocks.0.attn1"
            tokens = cond.image_tokens.repeat_interleave(frames, 0)
            x = self.attentions[i](x, encoder_hidden_states=tokens,
                                   cross_attention_kwargs=cond.cross_attention_kwargs,
                                   return_dict=False)[0]
            x, audio = self.audio_modules[i](x, audio, cond.emotion)
        else:
            name = f"{prefix}.resnets.{i}"
        past = past_frames(cond.bank, name, *x.shape[-2:])
        return self.motion_modules[i](x, past, frames, cond.memory), audio


class DiffusionNet3D(nn.Module):
    """e(z_t, t, conditions) for a (B, 4, F, h, w) clip of latents (MEMO's output is x0-
    parametrised flow: the sampler and the loss treat it as MEMO's code does)."""

    def __init__(self, cfg: MemoConfig):
        super().__init__()
        self.cfg = cfg
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
                    [Downsample2D(out, use_conv=True, out_channels=out, padding=1, name="op")])
            self.down_blocks.append(block)
            previous = out
        top = channels[-1]
        self.mid_block = _Block(cfg, [(top, top)] * 2, top, [top], True, temb)
        reversed_channels = channels[::-1]
        self.up_blocks = nn.ModuleList()
        previous = top
        for i, out in enumerate(reversed_channels):
            skip_in = reversed_channels[min(i + 1, n - 1)]
            io = [((previous if j == 0 else out) + (skip_in if j == layers else out), out)
                  for j in range(layers + 1)]
            block = _Block(cfg, io, out, [skip_in] * (layers + 1), i > 0, temb, i == n - 1)
            if i < n - 1:
                block.upsamplers = nn.ModuleList([Upsample2D(out, use_conv=True, out_channels=out)])
            self.up_blocks.append(block)
            previous = out
        self.conv_norm_out = nn.GroupNorm(cfg.norm_num_groups, channels[0], eps=cfg.norm_eps)
        self.conv_out = nn.Conv2d(channels[0], cfg.latent_channels, 3, padding=1)
        self.context = AttentionContext()
        self.gradient_checkpointing = False
        for name in self_attention_names(self):
            self.get_submodule(name).set_processor(ReadProcessor(name, self.context))
        for name, module in self.named_modules():
            if isinstance(module, MemoryAttention):
                module.name = name

    # diffusers-style processor access, so the AU adapter attaches as to any diffusers UNet
    @property
    def attn_processors(self) -> dict[str, Any]:
        return {f"{name}.processor": module.processor for name, module in self.named_modules()
                if isinstance(module, Attention)}

    def set_attn_processor(self, processors: dict[str, Any]) -> None:
        for key, processor in processors.items():
            self.get_submodule(key.removesuffix(".processor")).set_processor(processor)

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor | float,
                cond: MemoConditions) -> torch.Tensor:
        batch, _, frames, height, width = sample.shape
        timesteps = torch.as_tensor(timestep, device=sample.device).reshape(-1).expand(batch)
        emb = self.time_embedding(self.time_proj(timesteps).to(sample.dtype))
        emb = emb.repeat_interleave(frames, 0)
        x = self.conv_in(sample.transpose(1, 2).reshape(batch * frames, -1, height, width))
        if cond.mask_features is not None:
            x = x + cond.mask_features.transpose(1, 2).reshape(x.shape).to(x.dtype)
        self.context.bank, self.context.frames, self.context.h_on = cond.bank, frames, cond.h_on
        x = self._unet(x, emb, frames, cond)
        x = frame_group_norm(self.conv_norm_out, x, frames, self.cfg.inflated_groupnorm)
        x = self.conv_out(F.silu(x))
        # the memory is built (reset) or advanced (update): later calls of the clip read it
        cond.memory.mode = "read"
        return x.reshape(batch, frames, -1, height, width).transpose(1, 2)

    def _run(self, function: Any, *args: Any) -> Any:
        if self.gradient_checkpointing and torch.is_grad_enabled():
            from torch.utils.checkpoint import checkpoint

            return checkpoint(function, *args, use_reentrant=False)
        return function(*args)

    def _unet(self, x: torch.Tensor, emb: torch.Tensor, frames: int,
              cond: MemoConditions) -> torch.Tensor:
        audio: torch.Tensor | None = cond.audio_tokens.flatten(0, 1)
        skips = [x]
        for i, block in enumerate(self.down_blocks):
            for j, resnet in enumerate(block.resnets):
                x = self._run(resnet, x, emb, frames)
                x, audio = self._run(block.layer, j, x, audio, frames, cond, f"down_blocks.{i}")
                skips.append(x)
            if hasattr(block, "downsamplers"):
                x = block.downsamplers[0](x)
                skips.append(x)
        mid = self.mid_block
        x = self._run(mid.resnets[0], x, emb, frames)
        x, audio = self._run(mid.layer, 0, x, audio, frames, cond, "mid_block")
        x = self._run(mid.resnets[1], x, emb, frames)
        for i, block in enumerate(self.up_blocks):
            for j, resnet in enumerate(block.resnets):
                x = self._run(resnet, torch.cat([x, skips.pop()], dim=1), emb, frames)
                x, audio = self._run(block.layer, j, x, audio, frames, cond, f"up_blocks.{i}")
            if hasattr(block, "upsamplers"):
                x = block.upsamplers[0](x, output_size=skips[-1].shape[-2:])
        return x
