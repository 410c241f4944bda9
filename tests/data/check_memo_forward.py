"""Check that our MEMO rebuild computes what MEMO's own classes compute.

Needs a checkout of github.com/memoavatar/memo and einops (not dependencies of auhead-bench,
hence not a test); xformers is stubbed (never called). Run from the auhead-bench repository:

    PYTHONPATH=.:methods:/path/to/einops python tests/data/check_memo_forward.py /path/to/memo

It builds MEMO's reference net, diffusion net, audio and image projections at a small config
(2 levels, 32/64 channels: its motion modules fix GroupNorm at 32 groups), fills them with
random weights, copies those into ours with ``strict=True``, and runs both on the same
inputs, as MEMO's pipeline calls its networks with one row (eval mode; the motion modules'
memory processor installed as MEMO's xformers switch installs it):

1. a first clip (``is_new_audio`` True: memory built from the past frames);
2. the same call as one of MEMO's unconditional rows (``uc_mask`` set; our ``h_on`` 0);
3. a second clip, first step (``is_new_audio`` False, ``update_past_memory`` True: the memory
   decays and takes the new past frames; our "update"), new past frames and noise;
4. its second step (both False: the memory is read; our "read");

each with ``use_inflated_groupnorm`` true and false, and prints the largest difference of
each output. Result when written (memo a5aee30, diffusers 0.42.1, torch 2.14 CPU, float32):
at most 1.9e-7 over the eight outputs (mean |output| 0.034); exit status 0 below 1e-4.
"""

from __future__ import annotations

import dataclasses
import importlib.machinery
import sys
import types


def stub_xformers() -> None:
    import diffusers  # noqa: F401  (before the stub, so its xformers probe stays clean)

    for name in ("xformers", "xformers.ops"):
        sys.modules[name] = types.ModuleType(name)
        sys.modules[name].__spec__ = importlib.machinery.ModuleSpec(name, None)
    sys.modules["xformers"].ops = sys.modules["xformers.ops"]


def run(checkout: str, inflated: bool) -> list[tuple[str, float, float]]:
    import torch

    from auhead_bench_methods.auhead.memo.blocks import MotionMemory
    from auhead_bench_methods.auhead.memo.config import MemoConfig
    from auhead_bench_methods.auhead.memo.net import MemoNet
    from auhead_bench_methods.auhead.memo.reference import reference_unet_config
    from auhead_bench_methods.auhead.memo.unet3d import MemoConditions

    sys.path.insert(0, checkout)
    from memo.models.attention_processor import MemoryLinearAttnProcessor
    from memo.models.audio_proj import AudioProjModel
    from memo.models.image_proj import ImageProjModel
    from memo.models.motion_module import MemoryLinearAttention
    from memo.models.unet_2d_condition import UNet2DConditionModel as TheirReference
    from memo.models.unet_3d import UNet3DConditionModel as TheirUNet3D

    torch.manual_seed(0)
    cfg = dataclasses.replace(MemoConfig.tiny(), block_out_channels=(32, 64), norm_num_groups=32,
                              motion_norm_groups=32, cross_attention_dim=32,
                              audio_attention_dim=32, inflated_groupnorm=inflated)
    base = reference_unet_config(cfg)
    reference = TheirReference.from_config(base).eval()
    reference.register_to_config(center_input_sample=False)  # read by its forward, not __init__
    unet3d = dict(base, down_block_types=["CrossAttnDownBlock3D", "DownBlock3D"],
                  up_block_types=["UpBlock3D", "CrossAttnUpBlock3D"],
                  mid_block_type="UNetMidBlock3DCrossAttn", audio_attention_dim=32,
                  emo_drop_rate=cfg.emotion_dropout, use_inflated_groupnorm=inflated,
                  motion_module_resolutions=[1, 2, 4, 8],
                  motion_module_kwargs={"num_attention_heads": cfg.motion_heads,
                                        "num_transformer_block": 1,
                                        "attention_block_types": ["Temporal_Self"] * 2,
                                        "temporal_position_encoding": True,
                                        "temporal_position_encoding_max_len": 32,
                                        "temporal_attention_dim_div": 1})
    denoiser = TheirUNet3D.from_config(unet3d).eval()
    denoiser.register_to_config(center_input_sample=False)
    # MEMO's inference and finetuning enable xformers, whose switch is what installs the
    # memory processor in the motion modules; the other attentions then run xformers' kernel
    # (same attention), here SDPA.
    for module in denoiser.modules():
        if isinstance(module, MemoryLinearAttention):
            module.set_processor(MemoryLinearAttnProcessor())
    audio_proj = AudioProjModel(cfg.audio_window, cfg.audio_blocks, cfg.audio_channels,
                                cfg.audio_intermediate, cfg.audio_attention_dim, cfg.audio_tokens)
    image_proj = ImageProjModel(cfg.cross_attention_dim, cfg.face_embedding_dim, cfg.image_tokens)
    with torch.no_grad():
        for module in (reference, denoiser, audio_proj, image_proj):
            for parameter in module.parameters():
                parameter.normal_(0, 0.05)
    ours = MemoNet(cfg).eval()
    for name, theirs in (("reference_net", reference), ("diffusion_net", denoiser),
                         ("audio_proj", audio_proj), ("image_proj", image_proj)):
        ours.part(name).load_state_dict(theirs.state_dict(), strict=True)

    frames, past, latent = cfg.n_sample_frames, cfg.n_past_frames, 8
    g = torch.Generator().manual_seed(1)
    embedding = torch.randn(1, cfg.face_embedding_dim, generator=g)
    features = torch.randn(1, frames, cfg.audio_window, cfg.audio_blocks, cfg.audio_channels,
                           generator=g)
    emotion = torch.tensor([3])

    def inputs() -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.randn(1, 4, frames, latent, latent, generator=g),
                torch.randn(1 + past, 4, latent, latent, generator=g))

    results = []
    memory = MotionMemory()
    steps = [("first clip", True, False, False, "reset"), ("unconditional row", True, False,
                                                            True, "reset"),
             ("next clip, step 1", False, True, False, "update"),
             ("next clip, step 2", False, False, False, "read")]
    z, refs = inputs()
    with torch.no_grad():
        for label, new_audio, update, uncond, mode in steps:
            if mode == "update":
                z, refs = inputs()
            tokens_theirs = image_proj(embedding)
            audio_theirs = audio_proj(features)
            features_theirs = reference(refs, torch.zeros(1), encoder_hidden_states=tokens_theirs
                                        .repeat(1 + past, 1, 1), return_dict=False)
            uc_mask = torch.ones(frames, dtype=torch.bool) if uncond else None
            theirs = denoiser(z, features_theirs, 500.0, encoder_hidden_states=tokens_theirs,
                              audio_embedding=audio_theirs, audio_emotion=emotion,
                              uc_mask=uc_mask, is_new_audio=new_audio,
                              update_past_memory=update).sample
            tokens = ours.image_proj(embedding)
            bank = ours.reference(refs, tokens.repeat(1 + past, 1, 1), 1 + past)
            memory.mode = mode
            cond = MemoConditions(image_tokens=tokens, audio_tokens=ours.audio_proj(features),
                                  emotion=emotion, bank=bank, memory=memory,
                                  h_on=torch.zeros(1) if uncond else None)
            mine = ours.diffusion_net(z, 500.0, cond)
            results.append((label, float((mine - theirs).abs().max()),
                            float(theirs.abs().mean())))
    return results


def main(checkout: str) -> float:
    stub_xformers()
    worst = 0.0
    for inflated in (True, False):
        for label, diff, scale in run(checkout, inflated):
            print(f"use_inflated_groupnorm={inflated!s:5} {label:20s} max |ours - MEMO's| "
                  f"{diff:.2e} (output mean |x| {scale:.3f})")
            worst = max(worst, diff)
    print(f"largest difference {worst:.2e}")
    return worst


if __name__ == "__main__":
    sys.exit(0 if main(sys.argv[1]) < 1e-4 else 1)
