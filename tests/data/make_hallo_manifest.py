"""Write hallo_v1_manifest.json.gz: every parameter name and shape of Hallo v1's networks,
produced by Hallo's own classes, for tests/test_hallo_backbone.py to compare ours against.

Rerun with a checkout of github.com/fudan-generative-vision/hallo (any Python with torch,
diffusers, einops, omegaconf; xformers is not needed: it is stubbed, nothing runs attention):

    python tests/data/make_hallo_manifest.py /path/to/hallo tests/data/hallo_v1_manifest.json.gz

It builds their ``UNet2DConditionModel`` (reference_unet), ``UNet3DConditionModel``
(denoising_unet, with ``unet_additional_kwargs`` of configs/inference/default.yaml and the
block types ``from_pretrained_2d`` sets), ``FaceLocator``, ``ImageProjModel`` and
``AudioProjModel`` with the arguments of scripts/inference.py, on the meta device (no memory,
no weights), under the names of its ``Net``: that is ``net.pth``'s layout. The motion-module
section (``mm_sd_v15_v2.ckpt``) is the ``motion_modules`` subset of the denoiser, the tensors
``from_pretrained_2d`` merges from that file (their names, without the ``denoising_unet.``
prefix); it is derived from their code, not read from the file.
"""

from __future__ import annotations

import gzip
import importlib.machinery
import json
import sys
import types

# stable-diffusion-v1-5 unet/config.json, the config from_pretrained_2d starts from
SD15_UNET = {
    "act_fn": "silu", "attention_head_dim": 8, "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False, "cross_attention_dim": 768,
    "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"], "downsample_padding": 1,
    "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2,
    "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32, "out_channels": 4,
    "sample_size": 64, "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
}


def main(checkout: str, out: str) -> None:
    import diffusers  # noqa: F401  (before the stub, so its xformers probe stays clean)
    import torch

    for name in ("xformers", "xformers.ops"):
        sys.modules[name] = types.ModuleType(name)
        sys.modules[name].__spec__ = importlib.machinery.ModuleSpec(name, None)
    sys.modules["xformers"].ops = sys.modules["xformers.ops"]
    sys.path.insert(0, checkout)
    from hallo.models.audio_proj import AudioProjModel
    from hallo.models.face_locator import FaceLocator
    from hallo.models.image_proj import ImageProjModel
    from hallo.models.unet_2d_condition import UNet2DConditionModel
    from hallo.models.unet_3d import UNet3DConditionModel
    from omegaconf import OmegaConf

    config = OmegaConf.load(f"{checkout}/configs/inference/default.yaml")
    kwargs = OmegaConf.to_container(config.unet_additional_kwargs)
    unet3d = dict(SD15_UNET, down_block_types=["CrossAttnDownBlock3D"] * 3 + ["DownBlock3D"],
                  up_block_types=["UpBlock3D"] + ["CrossAttnUpBlock3D"] * 3,
                  mid_block_type="UNetMidBlock3DCrossAttn")
    net = torch.nn.Module()
    with torch.device("meta"):
        net.add_module("reference_unet", UNet2DConditionModel.from_config(SD15_UNET))
        net.add_module("denoising_unet", UNet3DConditionModel.from_config(unet3d, **kwargs))
        net.add_module("face_locator", FaceLocator(conditioning_embedding_channels=320))
        net.add_module("imageproj", ImageProjModel(cross_attention_dim=768,
                                                   clip_embeddings_dim=512,
                                                   clip_extra_context_tokens=4))
        net.add_module("audioproj", AudioProjModel(seq_len=5, blocks=12, channels=768,
                                                   intermediate_dim=512, output_dim=768,
                                                   context_tokens=32))
    shapes = {k: list(v.shape) for k, v in net.state_dict().items()}
    prefix = "denoising_unet."
    motion = {k[len(prefix):]: v for k, v in shapes.items()
              if k.startswith(prefix) and ".motion_modules." in k}
    manifest = {"source": "fudan-generative-vision/hallo, built by make_hallo_manifest.py",
                "net.pth": shapes, "mm_sd_v15_v2.ckpt": motion}
    with gzip.open(out, "wt") as f:
        json.dump(manifest, f, sort_keys=True, separators=(",", ":"))
    print(f"{len(shapes)} tensors in net.pth, {len(motion)} in the motion module -> {out}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
