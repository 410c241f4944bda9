"""The AU adapter: AU context tokens and zero-initialised cross-attention at every UNet level.

AUHead plugs an AU adapter into a frozen audio-driven portrait backbone (docs/auhead.md). Here:

- ``AUContextEncoder`` turns the AU condition of frame t into tokens: c_t = Conv_AU over the
  5-frame window [au_{t-2} .. au_{t+2}] (edge-padded at the clip's ends; the paper's form),
  plus tokens from the structured 2D face representation (the landmark image of au_mesh.py),
  encoded by a small strided CNN pooled to a grid. How the paper fuses the two is not public
  ([gap]); giving both to the same cross-attention is our choice.
- ``AUAdapter`` owns one decoupled cross-attention branch per cross-attention layer of the
  UNet (so every resolution it attends at), IP-Adapter style: the backbone's own query, new
  key/value projections of the AU tokens, and an output projection initialised to zero. At
  initialisation the branch adds exactly zero, so the backbone's output is unchanged.
- ``attach`` installs the branches as diffusers attention processors. The processors are
  plain objects holding references to the adapter's modules, so the UNet's parameters and
  state dict are untouched; ``detach`` restores the original processors.

The AU condition reaches the processors through ``cross_attention_kwargs``: ``au_tokens``
(B, K, D) and ``au_mask`` (B,), 1 where a sample is AU-conditioned and 0 where its AU
condition is dropped (c_AU = 0: the branch adds nothing for that sample).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from auhead_bench_methods.auhead.au_space import N_AUS

AU_WINDOW = 5  # frames t-2 .. t+2


def au_windows(track: np.ndarray, window: int = AU_WINDOW) -> np.ndarray:
    """(T, 24) AU track -> (T, window, 24): each frame's centred window, edge-padded."""
    track = np.asarray(track, np.float32)
    half = window // 2
    padded = np.concatenate([np.repeat(track[:1], half, 0), track, np.repeat(track[-1:], half, 0)])
    return np.stack([padded[t : t + window] for t in range(len(track))])


class AUContextEncoder(nn.Module):
    """AU window (B, 5, 24) + landmark image (B, 3, H, W) -> tokens (B, 5 + grid^2, token_dim)."""

    def __init__(
        self,
        token_dim: int,
        hidden_dim: int,
        n_aus: int = N_AUS,
        window: int = AU_WINDOW,
        landmark_channels: tuple[int, ...] = (16, 32, 64, 128),
        landmark_grid: int = 4,
    ):
        super().__init__()
        self.au_conv = nn.Conv1d(n_aus, hidden_dim, kernel_size=3, padding=1)  # Conv_AU
        self.au_proj = nn.Linear(hidden_dim, token_dim)
        self.au_position = nn.Parameter(torch.zeros(window, token_dim))
        layers: list[nn.Module] = []
        channels = 3
        for width in landmark_channels:
            layers += [nn.Conv2d(channels, width, 3, stride=2, padding=1), nn.SiLU()]
            channels = width
        layers.append(nn.AdaptiveAvgPool2d(landmark_grid))
        self.landmark_net = nn.Sequential(*layers)
        self.landmark_proj = nn.Linear(channels, token_dim)
        self.landmark_position = nn.Parameter(torch.zeros(landmark_grid**2, token_dim))
        self.norm = nn.LayerNorm(token_dim)
        nn.init.normal_(self.au_position, std=0.02)
        nn.init.normal_(self.landmark_position, std=0.02)

    def forward(self, au_window: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        au = F.gelu(self.au_conv(au_window.transpose(1, 2))).transpose(1, 2)
        au_tokens = self.au_proj(au) + self.au_position
        grid = self.landmark_net(landmarks).flatten(2).transpose(1, 2)
        landmark_tokens = self.landmark_proj(grid) + self.landmark_position
        return self.norm(torch.cat([au_tokens, landmark_tokens], dim=1))


class AUCrossAttention(nn.Module):
    """One decoupled cross-attention branch: backbone query, AU keys/values, zero output."""

    def __init__(self, query_dim: int, heads: int, head_dim: int, token_dim: int):
        super().__init__()
        inner = heads * head_dim
        self.heads = heads
        self.to_k = nn.Linear(token_dim, inner, bias=False)
        self.to_v = nn.Linear(token_dim, inner, bias=False)
        self.to_out = nn.Linear(inner, query_dim)
        nn.init.zeros_(self.to_out.weight)  # zero at initialisation: the backbone is unchanged
        nn.init.zeros_(self.to_out.bias)

    def forward(self, query: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        batch = query.shape[0]
        key, value = self.to_k(tokens), self.to_v(tokens)
        q, k, v = (
            x.view(batch, -1, self.heads, x.shape[-1] // self.heads).transpose(1, 2)
            for x in (query, key, value)
        )
        out = F.scaled_dot_product_attention(q, k, v)
        return self.to_out(out.transpose(1, 2).reshape(batch, -1, q.shape[1] * q.shape[-1]))


def cross_attention_layers(unet: nn.Module) -> list[dict[str, Any]]:
    """Every cross-attention layer of a diffusers UNet: processor name and dimensions."""
    layers = []
    for name, module in unet.named_modules():
        if getattr(module, "is_cross_attention", False) and hasattr(module, "to_q"):
            heads = int(module.heads)
            layers.append(
                {
                    "name": f"{name}.processor",
                    "query_dim": int(module.to_q.in_features),
                    "heads": heads,
                    "head_dim": int(module.to_q.out_features) // heads,
                }
            )
    return layers


def _key(processor_name: str) -> str:
    return processor_name.replace(".", "__")


class AUAdapter(ModelMixin, ConfigMixin):
    """The trainable part of stage 2: AU context encoder + one branch per cross-attention."""

    config_name = "config.json"

    @register_to_config
    def __init__(
        self,
        layers: list[dict[str, Any]],
        token_dim: int = 768,
        hidden_dim: int = 256,
        landmark_channels: tuple[int, ...] = (16, 32, 64, 128),
        landmark_grid: int = 4,
    ):
        super().__init__()
        self.encoder = AUContextEncoder(
            token_dim, hidden_dim, landmark_channels=tuple(landmark_channels),
            landmark_grid=landmark_grid,
        )
        self.branches = nn.ModuleDict(
            {
                _key(layer["name"]): AUCrossAttention(
                    layer["query_dim"], layer["heads"], layer["head_dim"], token_dim
                )
                for layer in layers
            }
        )

    @classmethod
    def for_unet(cls, unet: nn.Module, **kwargs: Any) -> AUAdapter:
        """A fresh adapter with a branch for each of ``unet``'s cross-attention layers."""
        return cls(layers=cross_attention_layers(unet), **kwargs)

    def tokens(self, au_window: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        """AU condition tokens; ``landmarks`` are images scaled to [-1, 1], (B, 3, H, W)."""
        return self.encoder(au_window, landmarks)

    def branch(self, processor_name: str) -> AUCrossAttention:
        return self.branches[_key(processor_name)]


class _PassThrough:
    """Self-attention processors: accept (and ignore) the AU arguments, so diffusers passes
    them along without warning."""

    def __init__(self, base: Any):
        self.base = base

    def __call__(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        au_tokens: torch.Tensor | None = None,
        au_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self.base(attn, hidden_states, encoder_hidden_states, attention_mask, temb)


class _AUProcessor(_PassThrough):
    """The backbone's cross-attention plus the AU branch, masked per sample."""

    def __init__(self, base: Any, branch: AUCrossAttention):
        super().__init__(base)
        self.branch = branch

    def __call__(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        au_tokens: torch.Tensor | None = None,
        au_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        out = self.base(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        if au_tokens is None:
            return out
        if hidden_states.ndim != 3:
            raise ValueError("the AU adapter expects (batch, tokens, channels) hidden states")
        added = self.branch(attn.to_q(hidden_states), au_tokens.to(hidden_states.dtype))
        if au_mask is not None:
            added = added * au_mask.to(added.dtype).view(-1, 1, 1)
        return out + added / attn.rescale_output_factor


class Attachment:
    """The adapter installed in a UNet; ``detach()`` puts the original processors back."""

    def __init__(self, unet: nn.Module, adapter: AUAdapter):
        self.unet = unet
        self.original = dict(unet.attn_processors)
        names = {layer["name"] for layer in adapter.config.layers}
        missing = names - set(self.original)
        if missing:
            raise ValueError(f"adapter does not fit this UNet: no layers {sorted(missing)[:3]}")
        unet.set_attn_processor(
            {
                name: _AUProcessor(base, adapter.branch(name))
                if name in names
                else _PassThrough(base)
                for name, base in self.original.items()
            }
        )

    def detach(self) -> None:
        self.unet.set_attn_processor(self.original)


def attach(unet: nn.Module, adapter: AUAdapter) -> Attachment:
    """Install ``adapter`` in ``unet`` without changing any of the UNet's parameters."""
    return Attachment(unet, adapter)


# ---- the adapter on a released backbone (Hallo v1) ---------------------------------------------


class AUWindowEncoder(nn.Module):
    """c_t = Conv_AU([au_{t-2} .. au_{t+2}]): (N, 5, 24) -> (N, 5, token_dim) tokens."""

    def __init__(self, token_dim: int, hidden_dim: int, n_aus: int = N_AUS,
                 window: int = AU_WINDOW):
        super().__init__()
        self.au_conv = nn.Conv1d(n_aus, hidden_dim, kernel_size=3, padding=1)  # Conv_AU
        self.au_proj = nn.Linear(hidden_dim, token_dim)
        self.au_position = nn.Parameter(torch.randn(window, token_dim) * 0.02)
        self.norm = nn.LayerNorm(token_dim)

    def forward(self, au_window: torch.Tensor) -> torch.Tensor:
        hidden = F.gelu(self.au_conv(au_window.transpose(1, 2))).transpose(1, 2)
        return self.norm(self.au_proj(hidden) + self.au_position)


def spatial_cross_attention_layers(unet: nn.Module) -> list[dict[str, Any]]:
    """The UNet's spatial cross-attentions (``...transformer_blocks.0.attn2``), not Hallo's
    audio attentions (``attn2_0..2``), which the audio modules own."""
    return [layer for layer in cross_attention_layers(unet)
            if layer["name"].endswith(".attn2.processor")]


class SpatialAUAdapter(ModelMixin, ConfigMixin):
    """AUHead's adapter on a frozen backbone, the only part of stage 2 that trains:

    - AU tokens: Conv_AU over each frame's 5-frame AU window;
    - one zero-initialised AU cross-attention beside every spatial cross-attention layer of
      the denoiser (at every resolution), masked per sample by ``au_mask``;
    - the AU landmark image injected spatially as the backbone's face locator injects its
      mask: a strided convolution encoder whose zero-initialised output is added to the
      denoiser's first features (``landmark_features``), not pooled to tokens.

    At initialisation both paths add exactly zero: the backbone's output is unchanged.
    """

    config_name = "config.json"

    @register_to_config
    def __init__(
        self,
        layers: list[dict[str, Any]],
        feature_channels: int = 320,
        token_dim: int = 768,
        hidden_dim: int = 256,
        landmark_channels: tuple[int, ...] = (16, 32, 64, 128),
    ):
        super().__init__()
        from auhead_bench_methods.auhead.hallo.projections import FaceLocator

        self.encoder = AUWindowEncoder(token_dim, hidden_dim)
        self.landmarks = FaceLocator(feature_channels, block_out_channels=tuple(landmark_channels))
        self.branches = nn.ModuleDict(
            {
                _key(layer["name"]): AUCrossAttention(
                    layer["query_dim"], layer["heads"], layer["head_dim"], token_dim
                )
                for layer in layers
            }
        )

    @classmethod
    def for_unet(cls, unet: nn.Module, feature_channels: int, **kwargs: Any) -> SpatialAUAdapter:
        return cls(layers=spatial_cross_attention_layers(unet),
                   feature_channels=feature_channels, **kwargs)

    def tokens(self, au_window: torch.Tensor) -> torch.Tensor:
        return self.encoder(au_window)

    def landmark_features(self, landmarks: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) landmark images in [-1, 1] -> (N, feature_channels, h, w)."""
        return self.landmarks(landmarks)

    def branch(self, processor_name: str) -> AUCrossAttention:
        return self.branches[_key(processor_name)]
