"""MEMO's reference net and the features it hands the diffusion net.

MEMO's reference net is SD1.5's UNet without its head and, in the last layer of the last up
block, without anything after the first LayerNorm of the transformer (no attentions, feed-
forward or output projection: MEMO reads that layer's ``norm1`` output and never its result).
Here it is diffusers' ``UNet2DConditionModel`` with that layer replaced by ``_FinalLayer``
(``norm``, ``proj_in``, ``transformer_blocks.0.norm1``: MEMO's names) and the head removed, so
its state dict is MEMO's ``reference_net`` file, key for key.

One pass per clip, at timestep 0, over the reference image and the ``n_past_frames`` past
frames (MEMO's ``ref_features``). What each layer hands on, by the name of the diffusion-net
layer that reads it:

- every spatial transformer: its self-attention input (``norm1`` output), (B * S, L, C), S =
  1 + past frames; the diffusion net's self-attention reads the reference image's tokens
  (hallo/reference.py's ReadProcessor: MEMO reads them the same way), its motion module the
  past frames' tokens;
- every resnet of the blocks without attention: its output, (B * S, C, h, w); the motion
  module of the same diffusion-net layer reads the past frames.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import UNet2DConditionModel
from torch import nn

from auhead_bench_methods.auhead.hallo.reference import (
    ReferenceBank,
    WriteProcessor,
    self_attention_names,
    strip_head,
)
from auhead_bench_methods.auhead.memo.config import MemoConfig


def reference_unet_config(cfg: MemoConfig) -> dict[str, Any]:
    """SD1.5's UNet config.json at ``cfg``'s sizes ([gap]: MEMO's own was not readable)."""
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


class _Norm1Only(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)


class _FinalLayer(nn.Module):
    """The last transformer of MEMO's reference net: records ``norm1``'s output, nothing more."""

    def __init__(self, channels: int, groups: int, bank: ReferenceBank, name: str):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels, eps=1e-6)
        self.proj_in = nn.Conv2d(channels, channels, 1)
        self.transformer_blocks = nn.ModuleList([_Norm1Only(channels)])
        self.bank, self.name = bank, name

    def forward(self, hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> tuple[Any]:
        n, c, h, w = hidden_states.shape
        tokens = self.proj_in(self.norm(hidden_states)).permute(0, 2, 3, 1).reshape(n, h * w, c)
        self.bank.features[self.name] = self.transformer_blocks[0].norm1(tokens).detach()
        return (hidden_states,)


def plain_resnet_names(unet: nn.Module) -> list[str]:
    """The resnets of the blocks without attention (their outputs feed motion modules)."""
    names = []
    for prefix in ("down_blocks", "up_blocks"):
        for i, block in enumerate(getattr(unet, prefix)):
            if not hasattr(block, "attentions"):
                names += [f"{prefix}.{i}.resnets.{j}" for j in range(len(block.resnets))]
    return names


class MemoReferenceNet(nn.Module):
    """``net.unet`` holds MEMO's ``reference_net`` parameters; calling it fills a bank."""

    def __init__(self, cfg: MemoConfig):
        super().__init__()
        self.unet = UNet2DConditionModel.from_config(reference_unet_config(cfg))
        strip_head(self.unet)
        self.bank = ReferenceBank()
        last_block = self.unet.up_blocks[-1]
        index = len(last_block.attentions) - 1
        name = f"up_blocks.{len(self.unet.up_blocks) - 1}.attentions.{index}" \
            ".transformer_blocks.0.attn1"
        last_block.attentions[index] = _FinalLayer(cfg.block_out_channels[0],
                                                   cfg.norm_num_groups, self.bank, name)
        processors = dict(self.unet.attn_processors)
        for attn in self_attention_names(self.unet):
            processors[f"{attn}.processor"] = WriteProcessor(attn, self.bank)
        self.unet.set_attn_processor(processors)
        for resnet in plain_resnet_names(self.unet):
            self.unet.get_submodule(resnet).register_forward_hook(self._recorder(resnet))

    def _recorder(self, name: str) -> Any:
        def hook(module: nn.Module, args: Any, output: torch.Tensor) -> None:
            self.bank.features[name] = output.detach()
        return hook

    def forward(self, latents: torch.Tensor, tokens: torch.Tensor,
                images_per_sample: int) -> ReferenceBank:
        """(B * S, 4, h, w) latents, (B * S, n, D) face tokens -> the features, at t = 0."""
        self.bank.features = {}
        timestep = torch.zeros(latents.shape[0], device=latents.device)
        self.unet(latents, timestep, encoder_hidden_states=tokens, return_dict=False)
        bank = ReferenceBank(dict(self.bank.features), images_per_sample)
        self.bank.features = {}
        return bank
