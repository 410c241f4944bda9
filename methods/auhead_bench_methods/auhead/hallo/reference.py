"""Hallo's ReferenceNet and the reference attention that joins it to the denoiser.

The ReferenceNet is the SD1.5 UNet without its output head: Hallo's own
``UNet2DConditionModel`` copy has no ``conv_norm_out``/``conv_out`` (its state dict in
``net.pth`` is diffusers' minus those four tensors), so here it is diffusers' class with the
head removed. It runs once per window, at timestep 0, on the reference image and the
``n_motion_frames`` previous frames; every spatial self-attention records its input (the
normalised hidden states, Hallo's "write" mode) in a ``ReferenceBank``.

In the denoiser ("read" mode) each spatial self-attention attends to its own tokens and the
reference image's tokens of the same layer (the two UNets' layers pair by name). The motion
frames' tokens are not attended spatially: the layer's motion module takes them as extra
leading frames (``ReferenceBank.motion``). Where the backbone condition is dropped
(``h_on`` 0: Hallo's unconditional branch) self-attention sees its own tokens only, exactly
as Hallo's ``uc_mask`` rows do; the motion frames stay, as in Hallo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from diffusers import UNet2DConditionModel
from torch import nn


@dataclass
class ReferenceBank:
    """attn1 inputs of the ReferenceNet, per layer name: (B * S, L, C), S = 1 + motion frames."""

    features: dict[str, torch.Tensor] = field(default_factory=dict)
    images_per_sample: int = 1

    def reference(self, name: str, frames: int) -> torch.Tensor:
        """The reference image's tokens, one copy per frame: (B * frames, L, C)."""
        bank = self.features[name]
        per = bank.reshape(-1, self.images_per_sample, *bank.shape[1:])[:, 0]
        return per.repeat_interleave(frames, dim=0)

    def motion(self, name: str, height: int, width: int) -> torch.Tensor | None:
        """The motion frames' tokens as (B, C, M, h, w), for the layer's motion module."""
        if name not in self.features or self.images_per_sample < 2:
            return None
        bank = self.features[name]
        per = bank.reshape(-1, self.images_per_sample, *bank.shape[1:])[:, 1:]
        batch, count, _, channels = per.shape
        return per.reshape(batch, count, height, width, channels).permute(0, 4, 1, 2, 3)

    def repeat(self, times: int) -> ReferenceBank:
        """The bank for a batch stacked ``times`` (guidance rows share one reference pass)."""
        return ReferenceBank(
            {
                k: v.reshape(-1, self.images_per_sample * v.shape[1], v.shape[2])
                .repeat(times, 1, 1)
                .reshape(-1, v.shape[1], v.shape[2])
                for k, v in self.features.items()
            },
            self.images_per_sample,
        )


class AttentionContext:
    """What the read processors need for one denoiser call (set by the UNet's forward)."""

    def __init__(self) -> None:
        self.bank: ReferenceBank | None = None
        self.frames = 1
        self.h_on: torch.Tensor | None = None  # (B,) 1: attend to the reference


def _attention(attn: Any, hidden: torch.Tensor, context: torch.Tensor,
               mask: torch.Tensor | None = None) -> torch.Tensor:
    """diffusers' scaled-dot-product attention with an optional boolean key mask."""
    batch = hidden.shape[0]
    heads = attn.heads
    q, k, v = attn.to_q(hidden), attn.to_k(context), attn.to_v(context)
    q, k, v = (x.view(batch, -1, heads, x.shape[-1] // heads).transpose(1, 2) for x in (q, k, v))
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    out = out.transpose(1, 2).reshape(batch, -1, heads * q.shape[-1]).to(hidden.dtype)
    return attn.to_out[1](attn.to_out[0](out))


class WriteProcessor:
    """ReferenceNet self-attention: record the input, then attend as usual."""

    def __init__(self, name: str, bank: ReferenceBank):
        self.name, self.bank = name, bank

    def __call__(self, attn: Any, hidden_states: torch.Tensor,
                 encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None,
                 **_: Any) -> torch.Tensor:
        self.bank.features[self.name] = hidden_states.detach().clone()
        return _attention(attn, hidden_states, hidden_states)


class ReadProcessor:
    """Denoiser self-attention over its own tokens and (where ``h_on``) the reference's."""

    def __init__(self, name: str, context: AttentionContext):
        self.name, self.context = name, context

    def __call__(self, attn: Any, hidden_states: torch.Tensor,
                 encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None,
                 au_tokens: torch.Tensor | None = None,
                 au_mask: torch.Tensor | None = None) -> torch.Tensor:
        ctx = self.context
        if ctx.bank is None or self.name not in ctx.bank.features:
            return _attention(attn, hidden_states, hidden_states)
        reference = ctx.bank.reference(self.name, ctx.frames).to(hidden_states.dtype)
        joined = torch.cat([hidden_states, reference], dim=1)
        mask = None
        if ctx.h_on is not None and not bool((ctx.h_on > 0).all()):
            on = (ctx.h_on > 0).repeat_interleave(ctx.frames)
            own = torch.ones(hidden_states.shape[1], dtype=torch.bool, device=on.device)
            ref = on[:, None].expand(-1, reference.shape[1])
            mask = torch.cat([own.expand(len(on), -1), ref], dim=1)[:, None, None, :]
        return _attention(attn, hidden_states, joined, mask)


def self_attention_names(unet: nn.Module) -> list[str]:
    """Names of the spatial self-attentions that write/read the bank (``...attn1``)."""
    return [
        name for name, module in unet.named_modules()
        if name.endswith("transformer_blocks.0.attn1") and ".attentions." in f".{name}"
    ]


def strip_head(unet: UNet2DConditionModel) -> UNet2DConditionModel:
    """Remove SD1.5's output head (Hallo's reference_unet has none) and install the writers."""
    unet.conv_norm_out = None
    unet.conv_act = None
    unet.conv_out = nn.Identity()  # no parameters: the state dict is Hallo's
    return unet


class ReferenceWriter:
    """Runs the ReferenceNet ("write" mode) and returns what its self-attentions saw."""

    def __init__(self, unet: UNet2DConditionModel):
        self.unet = strip_head(unet)
        self.bank = ReferenceBank()
        processors = dict(unet.attn_processors)
        for name in self_attention_names(unet):
            processors[f"{name}.processor"] = WriteProcessor(name, self.bank)
        unet.set_attn_processor(processors)

    def __call__(self, latents: torch.Tensor, tokens: torch.Tensor,
                 images_per_sample: int) -> ReferenceBank:
        """(B * S, 4, h, w) latents, (B * S, n, D) face tokens, at timestep 0."""
        self.bank.features = {}
        timestep = torch.zeros(latents.shape[0], device=latents.device, dtype=torch.long)
        self.unet(latents, timestep, encoder_hidden_states=tokens, return_dict=False)
        bank = ReferenceBank(dict(self.bank.features), images_per_sample)
        self.bank.features = {}
        return bank
