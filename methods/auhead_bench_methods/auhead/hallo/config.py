"""Hallo v1's network settings, as its configs state them, and a tiny variant of the same classes.

Sources (read, not copied): ``configs/inference/default.yaml`` (unet_additional_kwargs,
noise_scheduler_kwargs, n_motion_frames 2, n_sample_frames 16, 40 DDIM steps, cfg 3.5, 25 fps,
512 px), ``scripts/inference.py`` (the sub-network settings: FaceLocator(320),
ImageProjModel(768, 512, 4), AudioProjModel(5, 12, 768, 512, 768, 32)) and the SD1.5 UNet
``config.json`` that ``UNet3DConditionModel.from_pretrained_2d`` starts from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class HalloConfig:
    """Every size the networks are built from. ``real()`` is Hallo's; ``tiny()`` is for tests."""

    block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280)
    layers_per_block: int = 2
    attention_heads: int = 8  # SD1.5's `attention_head_dim: 8` is a head count in diffusers
    cross_attention_dim: int = 768
    norm_num_groups: int = 32
    norm_eps: float = 1e-5
    latent_channels: int = 4
    # AnimateDiff motion module (motion_module_kwargs)
    motion_heads: int = 8
    motion_norm_groups: int = 32  # Hallo's motion module never passes the UNet's group count
    # Whether the blocks without attention (down_blocks.3, up_blocks.0) run their motion
    # modules. Hallo's does not: its inference and training both run the UNet in training
    # mode with gradient checkpointing on, whose branch in DownBlock3D/UpBlock3D calls only
    # the resnets; their motion modules are in net.pth but never used. False reproduces it.
    plain_block_motion: bool = False
    motion_max_len: int = 32  # temporal_position_encoding_max_len
    # Hallo's audio attention (audio_attention_dim)
    audio_attention_dim: int = 768
    # AudioProjModel: window of 5 frames x 12 wav2vec2 layers x 768 channels -> 32 tokens
    audio_window: int = 5
    audio_blocks: int = 12
    audio_channels: int = 768
    audio_intermediate: int = 512
    audio_tokens: int = 32
    # ImageProjModel: a 512-d face embedding -> 4 tokens
    face_embedding_dim: int = 512
    image_tokens: int = 4
    # FaceLocator
    face_locator_channels: tuple[int, ...] = (16, 32, 64, 128)
    # sampling (configs/inference/default.yaml)
    resolution: int = 512
    n_sample_frames: int = 16
    n_motion_frames: int = 2
    steps: int = 40
    cfg_scale: float = 3.5
    scheduler: dict[str, Any] = field(
        default_factory=lambda: {
            "num_train_timesteps": 1000,
            "beta_start": 0.00085,
            "beta_end": 0.012,
            "beta_schedule": "linear",
            "clip_sample": False,
            "steps_offset": 1,
            "prediction_type": "v_prediction",
            "rescale_betas_zero_snr": True,
            "timestep_spacing": "trailing",
        }
    )

    @classmethod
    def real(cls) -> HalloConfig:
        return cls()

    @classmethod
    def tiny(cls) -> HalloConfig:
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
            face_locator_channels=(4, 8),
            resolution=32,
            n_sample_frames=4,
            n_motion_frames=2,
            steps=2,
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HalloConfig:
        tuples = ("block_out_channels", "face_locator_channels")
        return cls(**{k: tuple(v) if k in tuples else v for k, v in data.items()})
