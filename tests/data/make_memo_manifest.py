"""Write memo_manifest.json.gz: every parameter (and persistent buffer) name and shape of
MEMO's networks, produced by MEMO's own classes, for tests/test_memo_backbone.py.

Rerun with a checkout of github.com/memoavatar/memo (Apache-2.0) on any Python with torch and
diffusers (0.42 works: MEMO pins 0.31 but its model code imports and builds unchanged) plus
einops; xformers is stubbed (nothing runs attention, everything is on the meta device):

    python tests/data/make_memo_manifest.py /path/to/memo tests/data/memo_manifest.json.gz

Configs: the diffusion net's is the published hub ``memoavatar/memo/diffusion_net/config.json``
as far as it could be read (block types and sizes, ``cross_attention_dim`` 768,
``audio_attention_dim`` 768, ``emo_drop_rate`` 0.05, ``motion_module_kwargs``, motion modules
at resolutions 1, 2, 4, 8); ``use_inflated_groupnorm`` changes no parameter. The reference
net's config was not found: it is SD1.5's UNet config (cross-attention 768), the one MEMO's
UNet2DConditionModel defaults and its finetune/inference code agree with, and the parameter
count it gives matches the published file size (see below). ``audio_proj``, ``image_proj``
and ``misc/audio_emotion_classifier`` configs hold class names only: their code defaults.

Sizes at fp32 from this manifest: reference_net 857,066,560 values = 3.43 GB, diffusion_net
1,678,033,540 = 6.71 GB, the sizes the hub lists for the two safetensors files.
"""

from __future__ import annotations

import gzip
import importlib.machinery
import json
import sys
import types

SD15_UNET = {
    "act_fn": "silu", "attention_head_dim": 8, "block_out_channels": [320, 640, 1280, 1280],
    "cross_attention_dim": 768, "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
    "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4,
    "layers_per_block": 2, "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32,
    "sample_size": 64, "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
}
DIFFUSION_NET = dict(
    SD15_UNET, out_channels=4,
    down_block_types=["CrossAttnDownBlock3D"] * 3 + ["DownBlock3D"],
    up_block_types=["UpBlock3D"] + ["CrossAttnUpBlock3D"] * 3,
    mid_block_type="UNetMidBlock3DCrossAttn", audio_attention_dim=768, emo_drop_rate=0.05,
    use_inflated_groupnorm=True, motion_module_resolutions=[1, 2, 4, 8],
    motion_module_kwargs={
        "num_attention_heads": 8, "num_transformer_block": 1,
        "attention_block_types": ["Temporal_Self", "Temporal_Self"],
        "temporal_position_encoding": True, "temporal_position_encoding_max_len": 32,
        "temporal_attention_dim_div": 1,
    },
)


def stub_xformers() -> None:
    import diffusers  # noqa: F401  (before the stub, so its xformers probe stays clean)

    for name in ("xformers", "xformers.ops"):
        sys.modules[name] = types.ModuleType(name)
        sys.modules[name].__spec__ = importlib.machinery.ModuleSpec(name, None)
    sys.modules["xformers"].ops = sys.modules["xformers.ops"]


def main(checkout: str, out: str) -> None:
    import torch

    stub_xformers()
    sys.path.insert(0, checkout)
    from memo.models.audio_proj import AudioProjModel
    from memo.models.emotion_classifier import AudioEmotionClassifierModel
    from memo.models.image_proj import ImageProjModel
    from memo.models.unet_2d_condition import UNet2DConditionModel
    from memo.models.unet_3d import UNet3DConditionModel

    with torch.device("meta"):
        parts = {
            "reference_net": UNet2DConditionModel.from_config(SD15_UNET),
            "diffusion_net": UNet3DConditionModel.from_config(DIFFUSION_NET),
            "audio_proj": AudioProjModel(),
            "image_proj": ImageProjModel(),
            "audio_emotion_classifier": AudioEmotionClassifierModel(),
        }
    manifest = {"source": "memoavatar/memo, built by tests/data/make_memo_manifest.py"}
    for name, module in parts.items():
        manifest[name] = {k: list(v.shape) for k, v in module.state_dict().items()}
        count = sum(v.numel() for v in module.state_dict().values())
        print(f"{name}: {len(manifest[name])} tensors, {count:,} values")
    with gzip.open(out, "wt") as f:
        json.dump(manifest, f, sort_keys=True, separators=(",", ":"))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
