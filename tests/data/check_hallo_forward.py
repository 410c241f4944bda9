"""Check that our Hallo v1 rebuild computes what Hallo's own classes compute.

Needs a checkout of github.com/fudan-generative-vision/hallo and einops + omegaconf (not
dependencies of auhead-bench, hence not a test); run from the auhead-bench repository:

    PYTHONPATH=.:methods python tests/data/check_hallo_forward.py /path/to/hallo

It builds both at a small config (2 levels, 32/64 channels), copies our random weights into
Hallo's ReferenceNet and UNet3D with ``strict=True``, runs Hallo's reference "write"/"read"
(``ReferenceAttentionControl``, fusion "full") and denoiser as its inference runs it (training
mode, gradient checkpointing on, no classifier-free guidance), then ours, on the same latents,
face tokens, audio tokens, region masks and face-locator features, and prints the largest
difference. Result when written (commit 8fd7c572a3d4): 5e-8 at an output scale of 0.13.
"""

from __future__ import annotations

import dataclasses
import importlib.machinery
import sys
import types


def main(checkout: str) -> float:
    import diffusers  # noqa: F401  (before the stub, so its xformers probe stays clean)
    import torch

    for name in ("xformers", "xformers.ops"):
        sys.modules[name] = types.ModuleType(name)
        sys.modules[name].__spec__ = importlib.machinery.ModuleSpec(name, None)
    sys.modules["xformers"].ops = sys.modules["xformers.ops"]
    sys.path.insert(0, checkout)
    from hallo.models.mutual_self_attention import ReferenceAttentionControl
    from hallo.models.unet_2d_condition import UNet2DConditionModel as TheirReference
    from hallo.models.unet_3d import UNet3DConditionModel as TheirUNet3D

    from auhead_bench_methods.auhead.hallo.config import HalloConfig
    from auhead_bench_methods.auhead.hallo.net import HalloNet, sd15_unet_config
    from auhead_bench_methods.auhead.hallo.unet3d import Conditions, RegionMasks

    torch.manual_seed(0)
    cfg = dataclasses.replace(HalloConfig.tiny(), block_out_channels=(32, 64), norm_num_groups=8,
                              motion_norm_groups=32, face_locator_channels=(8, 16))
    ours = HalloNet(cfg).eval()
    with torch.no_grad():
        for parameter in ours.parameters():
            parameter.normal_(0, 0.05)
    base = dict(sd15_unet_config(cfg), center_input_sample=False)
    reference = TheirReference.from_config(base).eval()
    unet3d = dict(base, down_block_types=["CrossAttnDownBlock3D", "DownBlock3D"],
                  up_block_types=["UpBlock3D", "CrossAttnUpBlock3D"],
                  mid_block_type="UNetMidBlock3DCrossAttn")
    motion = {"num_attention_heads": cfg.motion_heads, "num_transformer_block": 1,
              "attention_block_types": ["Temporal_Self", "Temporal_Self"],
              "temporal_position_encoding": True, "temporal_position_encoding_max_len": 32,
              "temporal_attention_dim_div": 1}
    denoiser = TheirUNet3D.from_config(
        unet3d, use_inflated_groupnorm=True, unet_use_cross_frame_attention=False,
        unet_use_temporal_attention=False, use_motion_module=True, use_audio_module=True,
        motion_module_resolutions=[1, 2, 4, 8], motion_module_mid_block=True,
        motion_module_decoder_only=False, motion_module_type="Vanilla",
        motion_module_kwargs=motion, audio_attention_dim=cfg.audio_attention_dim,
        stack_enable_blocks_name=["up", "down", "mid"], stack_enable_blocks_depth=[0, 1, 2, 3])
    state = ours.state_dict()
    for prefix, module in (("reference_unet.", reference), ("denoising_unet.", denoiser)):
        module.load_state_dict({k[len(prefix):]: v for k, v in state.items()
                                if k.startswith(prefix)}, strict=True)
    denoiser.train()  # as scripts/inference.py leaves it
    for module in denoiser.modules():
        if hasattr(module, "gradient_checkpointing"):
            module.gradient_checkpointing = True  # enable_gradient_checkpointing()

    frames, images = 3, 1 + cfg.n_motion_frames
    g = torch.Generator().manual_seed(1)
    z = torch.randn(1, 4, frames, 16, 16, generator=g)
    refs = torch.randn(images, 4, 16, 16, generator=g)
    with torch.no_grad():
        tokens = ours.imageproj(torch.randn(1, cfg.face_embedding_dim, generator=g))
        audio = ours.audioproj(torch.randn(1, frames, 5, cfg.audio_blocks, cfg.audio_channels,
                                           generator=g))
        locator = ours.face_locator(torch.rand(1, 3, 32, 32, generator=g))
        locator = locator[:, :, None].repeat(1, 1, frames, 1, 1)
        levels = [[torch.rand(1, (16 // 2**d) ** 2, generator=g) for d in range(2)]
                  for _ in range(3)]
        # Hallo indexes masks by a depth hard-coded for 4 levels (mid 3, up block i 3 - i)
        theirs_masks = [[m.repeat(frames, 1) for m in level * 2] for level in levels]
        writer = ReferenceAttentionControl(reference, mode="write", fusion_blocks="full")
        reader = ReferenceAttentionControl(denoiser, mode="read", fusion_blocks="full")
        reference(refs, torch.zeros(images, dtype=torch.long), encoder_hidden_states=tokens,
                  return_dict=False)
        reader.update(writer, dtype=torch.float32)
        theirs = denoiser(z, torch.tensor([400]), encoder_hidden_states=tokens,
                          audio_embedding=audio, mask_cond_fea=locator,
                          full_mask=theirs_masks[0], face_mask=theirs_masks[1],
                          lip_mask=theirs_masks[2], motion_scale=[1.0, 1.0, 1.0]).sample
        bank = ours.writer(refs, tokens.repeat(images, 1, 1), images)
        mine = ours.denoising_unet(z, torch.tensor([400]), Conditions(
            image_tokens=tokens, audio_tokens=audio, masks=RegionMasks(*levels),
            mask_features=locator, bank=bank))
    difference = (theirs - mine).abs().max().item()
    print(f"max |Hallo - ours| = {difference:.3g} (output scale {theirs.abs().max().item():.3g})")
    return difference


if __name__ == "__main__":
    main(sys.argv[1])
