"""The layers MEMO adds to SD1.5's UNet, with its parameter names (memo/models/attention.py,
motion_module.py, attention_processor.py, resnet.py: read, not copied).

- ``ResnetBlock``: SD1.5's resnet over a clip folded as (B * F, C, h, w); its GroupNorms run
  per frame (``inflated``) or across the clip's frames (MEMO's class default).
- ``EmoAdaLayerNorm``: LayerNorm without affine, shifted and scaled by an embedding of the
  audio's emotion class (9 classes + a "no emotion" row for classifier-free guidance, which
  training picks with probability ``emo_drop_rate`` per call and per sample).
- ``AudioModule``: MEMO's joint audio-video block. Video tokens of a frame and that frame's
  audio tokens each get emotion-modulated self-attention, then ONE joint attention over both
  (SD3-style: separate q/k/v projections per stream), then feed-forwards. The audio tokens come
  out updated and are passed on to the next audio module; the module adds the incoming audio
  tokens once more on the way out (``audio_output = block_output + input``, as MEMO's
  Transformer3DModel does). The last audio module of the UNet has no audio output layers.
- ``MotionModule``: MEMO's memory-guided temporal module. Two temporal attentions (positions
  encoded, 32-frame table) of *linear* attention (softmax over features for queries, over
  frames for keys), each reading, besides the clip's frames, a memory of the past frames'
  keys and values, decayed by 0.9 per frame (key and value each carry the decay, so a frame
  k frames back weighs 0.9^(2k) in the K^T V memory and 0.9^k in the normaliser). The memory is
  a ``MotionMemory``, carried explicitly across the denoiser calls of a long video:
  ``reset`` rebuilds it from the current past frames (MEMO's first clip and every training
  step), ``update`` decays it by 0.9^M and adds the current past frames (MEMO's first step of
  every later clip), ``read`` uses it as it is (every other step).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from diffusers.models.attention import FeedForward
from torch import nn

from auhead_bench_methods.auhead.hallo.projections import zero_module


def frame_group_norm(norm: nn.GroupNorm, x: torch.Tensor, frames: int,
                     inflated: bool) -> torch.Tensor:
    """GroupNorm of a folded clip (B * F, C, h, w): per frame, or across the clip's frames."""
    if inflated:
        return norm(x)
    n, c, h, w = x.shape
    video = x.reshape(n // frames, frames, c, h, w).transpose(1, 2)
    out = F.group_norm(video, norm.num_groups, norm.weight, norm.bias, norm.eps)
    return out.transpose(1, 2).reshape(n, c, h, w)


class ResnetBlock(nn.Module):
    """SD1.5's resnet (diffusers ResnetBlock2D's names) over a folded clip."""

    def __init__(self, in_channels: int, out_channels: int, temb: int, groups: int, eps: float,
                 inflated: bool):
        super().__init__()
        self.inflated = inflated
        self.norm1 = nn.GroupNorm(groups, in_channels, eps=eps)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb, out_channels)
        self.norm2 = nn.GroupNorm(groups, out_channels, eps=eps)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.conv_shortcut = (nn.Conv2d(in_channels, out_channels, 1)
                              if in_channels != out_channels else None)

    def forward(self, x: torch.Tensor, temb: torch.Tensor, frames: int) -> torch.Tensor:
        """x (B * F, C, h, w); temb (B * F, temb)."""
        h = F.silu(frame_group_norm(self.norm1, x, frames, self.inflated))
        h = self.conv1(h) + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = F.silu(frame_group_norm(self.norm2, h, frames, self.inflated))
        h = self.conv2(h)
        return (self.conv_shortcut(x) if self.conv_shortcut is not None else x) + h


class _LabelEmbedding(nn.Module):
    def __init__(self, classes: int, dim: int, dropout: float):
        super().__init__()
        self.embedding_table = nn.Embedding(classes + int(dropout > 0), dim)
        self.classes, self.dropout = classes, dropout

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        if self.training and self.dropout > 0:
            drop = torch.rand(labels.shape[0], device=labels.device) < self.dropout
            labels = torch.where(drop, torch.full_like(labels, self.classes), labels)
        return self.embedding_table(labels)


class EmoAdaLayerNorm(nn.Module):
    """LayerNorm(x) * (1 + scale) + shift, (shift, scale) from the emotion class."""

    def __init__(self, dim: int, classes: int, dropout: float):
        super().__init__()
        self.class_embedder = _LabelEmbedding(classes, dim, dropout)
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-5)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))  # noqa: N815

    def forward(self, x: torch.Tensor, emotion: torch.Tensor) -> torch.Tensor:
        """x (B * F, L, dim); emotion (B,) class indices."""
        shift, scale = self.adaLN_modulation(self.class_embedder(emotion)).chunk(2, dim=1)
        rows = x.shape[0] // shift.shape[0]
        shift = shift.repeat_interleave(rows, 0)[:, None]
        scale = scale.repeat_interleave(rows, 0)[:, None]
        return self.norm(x) * (1 + scale) + shift


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    return x.view(x.shape[0], -1, heads, x.shape[-1] // heads).transpose(1, 2)


def _merge(x: torch.Tensor) -> torch.Tensor:
    return x.transpose(1, 2).reshape(x.shape[0], -1, x.shape[1] * x.shape[-1])


class SelfAttention(nn.Module):
    """diffusers' Attention layout (to_q/k/v without bias, to_out.0 with), plain SDPA."""

    def __init__(self, query_dim: int, heads: int, head_dim: int):
        super().__init__()
        inner = heads * head_dim
        self.heads = heads
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_k = nn.Linear(query_dim, inner, bias=False)
        self.to_v = nn.Linear(query_dim, inner, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(inner, query_dim), nn.Dropout(0.0)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (_heads(p(x), self.heads) for p in (self.to_q, self.to_k, self.to_v))
        return self.to_out[0](_merge(F.scaled_dot_product_attention(q, k, v)))


class JointAttention(nn.Module):
    """One attention over video tokens and audio tokens together (MEMO's JointAttnProcessor):
    both streams' queries, keys and values, split again afterwards."""

    def __init__(self, dim: int, heads: int, audio_dim: int, audio_out: bool):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(dim, dim, bias=False)
        self.to_v = nn.Linear(dim, dim, bias=False)
        self.add_k_proj = nn.Linear(audio_dim, dim)
        self.add_v_proj = nn.Linear(audio_dim, dim)
        self.add_q_proj = nn.Linear(audio_dim, dim)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim), nn.Dropout(0.0)])
        self.to_add_out = nn.Linear(dim, audio_dim) if audio_out else None

    def forward(self, video: torch.Tensor, audio: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        q = torch.cat([self.to_q(video), self.add_q_proj(audio)], dim=1)
        k = torch.cat([self.to_k(video), self.add_k_proj(audio)], dim=1)
        v = torch.cat([self.to_v(video), self.add_v_proj(audio)], dim=1)
        out = _merge(F.scaled_dot_product_attention(
            _heads(q, self.heads), _heads(k, self.heads), _heads(v, self.heads)))
        length = video.shape[1]
        video_out = self.to_out[0](out[:, :length])
        audio_out = self.to_add_out(out[:, length:]) if self.to_add_out is not None else None
        return video_out, audio_out


class JointAudioBlock(nn.Module):
    """MEMO's JointAudioTemporalBasicTransformerBlock (use_ada_layer_norm)."""

    def __init__(self, dim: int, heads: int, audio_dim: int, classes: int, dropout: float,
                 final: bool):
        super().__init__()
        head_dim = dim // heads
        self.final = final
        self.norm1 = EmoAdaLayerNorm(dim, classes, dropout)
        self.attn1 = SelfAttention(dim, heads, head_dim)
        self.audio_norm1 = EmoAdaLayerNorm(audio_dim, classes, dropout)
        self.audio_attn1 = SelfAttention(audio_dim, heads, head_dim)
        self.norm2 = EmoAdaLayerNorm(dim, classes, dropout)
        self.audio_norm2 = EmoAdaLayerNorm(audio_dim, classes, dropout)
        self.attn2 = JointAttention(dim, heads, audio_dim, audio_out=not final)
        self.ff = FeedForward(dim, activation_fn="geglu")
        self.norm3 = nn.LayerNorm(dim)
        if not final:
            self.audio_ff = FeedForward(audio_dim, activation_fn="geglu")
            self.audio_norm3 = nn.LayerNorm(audio_dim)

    def forward(self, x: torch.Tensor, audio: torch.Tensor, emotion: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = self.attn1(self.norm1(x, emotion)) + x
        audio = self.audio_attn1(self.audio_norm1(audio, emotion)) + audio
        joint_x, joint_audio = self.attn2(self.norm2(x, emotion), self.audio_norm2(audio, emotion))
        x = joint_x + x
        x = self.ff(self.norm3(x)) + x
        if self.final:
            return x, None
        audio = joint_audio + audio
        return x, self.audio_ff(self.audio_norm3(audio)) + audio


class AudioModule(nn.Module):
    """Audio attention over a folded clip (B * F, C, h, w), at ``inner`` channels."""

    def __init__(self, channels: int, inner: int, heads: int, audio_dim: int, groups: int,
                 classes: int, dropout: float, final: bool):
        super().__init__()
        self.final = final
        self.norm = nn.GroupNorm(groups, channels, eps=1e-6)
        self.proj_in = nn.Conv2d(channels, inner, 1)
        self.transformer_blocks = nn.ModuleList(
            [JointAudioBlock(inner, heads, audio_dim, classes, dropout, final)])
        self.proj_out = nn.Conv2d(inner, channels, 1)

    def forward(self, x: torch.Tensor, audio: torch.Tensor, emotion: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B * F, C, h, w); audio (B * F, T, audio_dim); emotion (B,)."""
        n, _, height, width = x.shape
        hidden = self.proj_in(self.norm(x))
        inner = hidden.shape[1]
        hidden = hidden.permute(0, 2, 3, 1).reshape(n, height * width, inner)
        updated: torch.Tensor | None = audio
        for block in self.transformer_blocks:
            hidden, updated = block(hidden, updated, emotion)
        hidden = hidden.reshape(n, height, width, inner).permute(0, 3, 1, 2)
        out_audio = None if self.final or updated is None else updated + audio
        return self.proj_out(hidden) + x, out_audio


# ---- memory-guided linear temporal attention ------------------------------------------------


@dataclass
class MotionMemory:
    """Per temporal attention (by module name): the decayed K^T V and key-sum memories."""

    state: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    mode: str = "reset"  # "reset", "update" or "read" for the next denoiser call

    def repeat(self, times: int) -> MotionMemory:
        """The memory for a batch stacked ``times`` (rows of one sample stay together)."""
        return MotionMemory({k: (kv.repeat(times, 1, 1), z.repeat(times, 1, 1))
                             for k, (kv, z) in self.state.items()}, self.mode)


class PositionalEncoding(nn.Module):
    """The fixed sinusoidal frame table (a persistent buffer, as in MEMO's state dict)."""

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


class MemoryAttention(nn.Module):
    """One temporal linear attention with past-frame memory (MemoryLinearAttention)."""

    def __init__(self, dim: int, heads: int, max_len: int, decay: float):
        super().__init__()
        self.heads, self.decay = heads, decay
        self.scale = (dim // heads) ** -0.5
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(dim, dim, bias=False)
        self.to_v = nn.Linear(dim, dim, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim), nn.Dropout(0.0)])
        self.pos_encoder = PositionalEncoding(dim, max_len)
        self.name = ""  # set by the UNet: the memory's key

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        """(N, L, C) -> (N * heads, L, C / heads), diffusers' head_to_batch_dim order."""
        n, length, channels = x.shape
        return x.reshape(n, length, self.heads, channels // self.heads).permute(0, 2, 1, 3) \
            .reshape(n * self.heads, length, channels // self.heads)

    def _memory(self, past: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """K^T V and key sums of the past frames (N * heads, M, d), decayed by age."""
        with torch.no_grad():
            key = torch.softmax(self._split(self.to_k(past)), dim=-2)
            value = self._split(self.to_v(past))
            count = key.shape[1]
            decay = self.decay ** torch.arange(count - 1, -1, -1, device=key.device,
                                               dtype=key.dtype)
            key, value = key * decay.view(1, -1, 1), value * decay.view(1, -1, 1)
            return torch.einsum("bij,bik->bjk", key, value), key.sum(dim=1)[:, None]

    def forward(self, x: torch.Tensor, past: torch.Tensor, frames: int, past_frames: int,
                memory: MotionMemory) -> torch.Tensor:
        """x (B * F, L, C) normed tokens, past (B * M, L, C): attention across frames."""
        n, length, channels = x.shape
        seq = x.reshape(n // frames, frames, length, channels).transpose(1, 2)
        seq = self.pos_encoder(seq.reshape(-1, frames, channels))
        with torch.no_grad():
            old = past.reshape(-1, past_frames, length, channels).transpose(1, 2)
            old = old.reshape(-1, past_frames, channels)
        q = torch.softmax(self._split(self.to_q(seq)), dim=-1) * self.scale
        k = torch.softmax(self._split(self.to_k(seq)), dim=-2)
        v = self._split(self.to_v(seq))
        stored = memory.state.get(self.name)
        if memory.mode in ("reset", "update") or stored is None:
            kv, z = self._memory(old)
            if memory.mode == "update" and stored is not None:
                factor = self.decay ** past_frames
                kv, z = stored[0] * factor + kv, stored[1] * factor + z
            memory.state[self.name] = (kv, z)
            stored = (kv, z)
        kv = self.decay * stored[0] + torch.einsum("bnd,bne->bde", k, v)
        z = self.decay * stored[1] + k.sum(dim=-2, keepdim=True)
        out = torch.einsum("bnd,bde->bne", q, kv) / torch.einsum(
            "bnd,bod->bno", q, z).clamp(min=1e-10)
        heads = self.heads
        out = out.reshape(-1, heads, frames, channels // heads).permute(0, 2, 1, 3)
        out = self.to_out[0](out.reshape(-1, frames, channels))
        out = out.reshape(n // frames, length, frames, channels).transpose(1, 2)
        return out.reshape(n, length, channels)


class MemoryTransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, max_len: int, decay: float):
        super().__init__()
        self.attention_blocks = nn.ModuleList(
            MemoryAttention(dim, heads, max_len, decay) for _ in range(2))
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(2))
        self.ff = FeedForward(dim, activation_fn="geglu")
        self.ff_norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, past: torch.Tensor, frames: int, past_frames: int,
                memory: MotionMemory) -> torch.Tensor:
        for attention, norm in zip(self.attention_blocks, self.norms, strict=True):
            with torch.no_grad():
                normed_past = norm(past)
            x = attention(norm(x), normed_past, frames, past_frames, memory) + x
        return self.ff(self.ff_norm(x)) + x


class _TemporalTransformer(nn.Module):
    def __init__(self, channels: int, heads: int, max_len: int, groups: int, decay: float):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, channels)
        self.transformer_blocks = nn.ModuleList(
            [MemoryTransformerBlock(channels, heads, max_len, decay)])
        self.proj_out = zero_module(nn.Linear(channels, channels))

    def _tokens(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return self.proj_in(self.norm(x).permute(0, 2, 3, 1).reshape(n, h * w, c))

    def forward(self, x: torch.Tensor, past: torch.Tensor, frames: int,
                memory: MotionMemory) -> torch.Tensor:
        """x (B * F, C, h, w), past (B * M, C, h, w) -> the same as x."""
        n, c, h, w = x.shape
        hidden = self._tokens(x)
        with torch.no_grad():
            past_tokens = self._tokens(past)
        past_frames = past.shape[0] // (n // frames)
        for block in self.transformer_blocks:
            hidden = block(hidden, past_tokens, frames, past_frames, memory)
        hidden = self.proj_out(hidden).reshape(n, h, w, c).permute(0, 3, 1, 2)
        return hidden + x


class MotionModule(nn.Module):
    """MEMO's MemoryLinearAttnTemporalModule."""

    def __init__(self, channels: int, heads: int, max_len: int, groups: int, decay: float):
        super().__init__()
        self.temporal_transformer = _TemporalTransformer(channels, heads, max_len, groups, decay)

    def forward(self, x: torch.Tensor, past: torch.Tensor, frames: int,
                memory: MotionMemory) -> torch.Tensor:
        return self.temporal_transformer(x, past.to(x.dtype), frames, memory)
