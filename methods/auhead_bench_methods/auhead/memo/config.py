"""MEMO's network and sampling settings, as its configs and code state them, and a tiny
variant of the same classes for tests.

Sources (read, not copied), github memoavatar/memo at a5aee30 and the hub memoavatar/memo:
``configs/inference.yaml`` (512 px, 16 frames per clip, 16 past frames, 30 fps, 20 steps,
cfg 3.5), ``diffusion_net/config.json`` on the hub (UNet3DConditionModel: SD1.5's blocks,
cross-attention 768, audio attention 768, ``emo_drop_rate`` 0.05, motion modules at every
level: 8 heads, one block of two temporal self-attentions, position table of 32), the code
defaults of ``AudioProjModel`` (5 x 12 x 768 -> 32 tokens of 768 through 512),
``ImageProjModel`` (512 -> 4 tokens of 768), ``AudioEmotionClassifierModel`` (1024 -> 9
classes, 5 layers of 2048) and ``MemoryLinearAttnProcessor`` (decay 0.9), and
``FlowMatchEulerDiscreteScheduler()`` at its defaults (inference.py, finetune.py).

[gap] The reference net's config.json could not be read: SD1.5's UNet config is used (MEMO's
reference net is SD1.5's UNet minus its head; the parameter count this gives equals the
published 3.43 GB file). [gap] Whether the diffusion net's ``use_inflated_groupnorm`` is true
(GroupNorm per frame, as Hallo, whose code MEMO's follows) or false (GroupNorm across the
clip's frames, the class default) changes no parameter and was not readable: true here,
``inflated_groupnorm`` switches it (tests/data/check_memo_forward.py checks both against
MEMO's classes).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

EMOTION_CLASSES = 9  # MEMO's classifier; the embedding tables hold one more row: "no emotion"


@dataclass(frozen=True)
class MemoConfig:
    """Every size the networks are built from. ``real()`` is MEMO's; ``tiny()`` is for tests."""

    block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280)
    layers_per_block: int = 2
    attention_heads: int = 8  # `attention_head_dim: 8` is a head count in these classes
    cross_attention_dim: int = 768
    norm_num_groups: int = 32
    norm_eps: float = 1e-5
    latent_channels: int = 4
    inflated_groupnorm: bool = True  # [gap], see the module docstring
    # motion modules (MemoryLinearAttnTemporalModule); their GroupNorm is fixed at 32 groups
    motion_heads: int = 8
    motion_norm_groups: int = 32
    motion_max_len: int = 32
    memory_decay: float = 0.9
    # audio modules (joint audio-video attention, emotion-modulated LayerNorms)
    audio_attention_dim: int = 768
    emotion_classes: int = EMOTION_CLASSES
    emotion_dropout: float = 0.05  # emo_drop_rate: per norm, per sample, in training only
    # AudioProjModel
    audio_window: int = 5
    audio_blocks: int = 12
    audio_channels: int = 768
    audio_intermediate: int = 512
    audio_tokens: int = 32
    # ImageProjModel
    face_embedding_dim: int = 512
    image_tokens: int = 4
    # AudioEmotionClassifierModel over emotion2vec_plus_large's 1024-d utterance features
    emotion_feature_dim: int = 1024
    classifier_layers: int = 5
    classifier_channels: int = 2048
    # the AU adapter's landmark encoder (ours, not MEMO's): downsamples by the VAE's factor
    landmark_channels: tuple[int, ...] = (16, 32, 64, 128)
    # sampling (configs/inference.yaml)
    resolution: int = 512
    n_sample_frames: int = 16
    n_past_frames: int = 16
    fps: int = 30
    steps: int = 20
    cfg_scale: float = 3.5
    scheduler: dict[str, Any] = field(
        default_factory=lambda: {"num_train_timesteps": 1000, "shift": 1.0}
    )

    @classmethod
    def real(cls) -> MemoConfig:
        return cls()

    @classmethod
    def tiny(cls) -> MemoConfig:
        """The same classes at a few thousand weights: 2 levels, 1 layer each, 32 px frames."""
        return replace(
            cls(),
            block_out_channels=(8, 16),
            layers_per_block=1,
            attention_heads=2,
            cross_attention_dim=16,
            norm_num_groups=4,
            motion_heads=2,
            motion_norm_groups=4,
            audio_attention_dim=16,
            audio_blocks=2,
            audio_channels=8,
            audio_intermediate=16,
            audio_tokens=4,
            face_embedding_dim=8,
            image_tokens=2,
            emotion_feature_dim=8,
            classifier_layers=2,
            classifier_channels=16,
            landmark_channels=(4, 8),
            resolution=32,
            n_sample_frames=4,
            n_past_frames=2,
            steps=2,
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MemoConfig:
        tuples = ("block_out_channels", "landmark_channels")
        return cls(**{k: tuple(v) if k in tuples else v for k, v in data.items()})
