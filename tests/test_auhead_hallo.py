"""AUHead's stage 2 on the hallo_v1 backbone, with tiny networks of the real classes: the
adapter leaves the backbone alone until trained, guidance by its properties, long clips."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hallo_tiny import tiny_backbone

from auhead_bench_methods.auhead.adapter import attach
from auhead_bench_methods.auhead.au_space import N_AUS
from auhead_bench_methods.auhead.declarations import Stage2Options
from auhead_bench_methods.auhead.guidance import guided_noise
from auhead_bench_methods.auhead.hallo.sampler import HalloStage2Model, new_adapter
from auhead_bench_methods.auhead.hallo.unet3d import Conditions, RegionMasks

OPTIONS = {"steps": 2, "face_embedding": "zeros"}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def wake(adapter) -> None:
    """A trained adapter is no longer zero at its outputs."""
    torch.manual_seed(7)
    with torch.no_grad():
        for branch in adapter.branches.values():
            branch.to_out.weight.normal_(0, 0.5)
        adapter.landmarks.conv_out.weight.normal_(0, 0.5)


@pytest.fixture(scope="module")
def model() -> HalloStage2Model:
    backbone = tiny_backbone()
    adapter = new_adapter(backbone, hidden_dim=16)
    wake(adapter)
    return HalloStage2Model(backbone, adapter, {})


def clip_inputs(frames: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    reference = rng.integers(0, 255, (40, 40, 3), np.uint8)
    aus = rng.random((frames, N_AUS)).astype(np.float32)
    audio = rng.standard_normal(frames * 640).astype(np.float32) * 0.1
    return reference, audio, aus


def denoiser_inputs(backbone, rows: int, frames: int = 2):
    net, cfg = backbone.net, backbone.cfg
    g = torch.Generator().manual_seed(0)
    levels = [torch.rand(rows, (16 // 2**d) ** 2, generator=g) for d in range(2)]
    cond = Conditions(
        image_tokens=net.imageproj(torch.randn(rows, cfg.face_embedding_dim, generator=g)),
        audio_tokens=net.audioproj(torch.randn(rows, frames, cfg.audio_window, cfg.audio_blocks,
                                               cfg.audio_channels, generator=g)),
        masks=RegionMasks(levels, levels, levels),
    )
    return torch.randn(rows, 4, frames, 16, 16, generator=g), cond


@torch.no_grad()
def test_adapter_starts_at_zero_and_masked_rows_stay_the_backbones():
    backbone = tiny_backbone()
    unet = backbone.net.denoising_unet
    z, cond = denoiser_inputs(backbone, 2)
    plain = unet(z, 300, cond)
    adapter = new_adapter(backbone, hidden_dim=16)
    names = [layer["name"] for layer in adapter.config.layers]
    # the tiny UNet's spatial cross-attentions (down 0, mid, up 1 x 2), not the audio ones
    assert len(names) == 4 and all(n.endswith("transformer_blocks.0.attn2.processor")
                                   for n in names)
    attachment = attach(unet, adapter)
    window = torch.rand(4, 5, N_AUS)  # rows x frames
    tokens = adapter.tokens(window)
    features = adapter.landmark_features(torch.rand(4, 3, 32, 32) * 2 - 1)
    on = torch.ones(4)
    cond.cross_attention_kwargs = {"au_tokens": tokens, "au_mask": on}
    cond.mask_features = features.reshape(2, 2, *features.shape[1:]).transpose(1, 2)
    torch.testing.assert_close(unet(z, 300, cond), plain)  # zero-initialised: no change
    wake(adapter)
    cond.mask_features = adapter.landmark_features(torch.rand(4, 3, 32, 32) * 2 - 1)
    cond.mask_features = cond.mask_features.reshape(2, 2, -1, 16, 16).transpose(1, 2)
    moved = unet(z, 300, cond)
    assert not torch.allclose(moved, plain, atol=1e-4)
    cond.mask_features = cond.mask_features * torch.tensor([1.0, 0.0]).view(-1, 1, 1, 1, 1)
    cond.cross_attention_kwargs["au_mask"] = torch.tensor([1.0, 1.0, 0.0, 0.0])  # sample 2 off
    mixed = unet(z, 300, cond)
    assert torch.equal(mixed[1], plain[1])
    assert not torch.allclose(mixed[0], plain[0], atol=1e-4)
    attachment.detach()


def test_guidance_runs_one_batched_call_per_step_three_rows(model):
    calls = []
    hook = model.backbone.net.denoising_unet.register_forward_pre_hook(
        lambda module, args: calls.append(len(args[0])))
    try:
        reference, audio, aus = clip_inputs(6)
        video, info = model.generate(reference, audio, aus, Stage2Options(**OPTIONS), seed=0)
        assert calls == [3, 3, 3, 3]  # 2 windows x 2 steps, rows (0,0), (H,0), (H,AU)
        calls.clear()
        model.generate(reference, audio, aus,
                       Stage2Options(**OPTIONS, guidance_form="as_written"), seed=0)
        assert calls == [4, 4, 4, 4]
    finally:
        hook.remove()
    assert video.shape == (6, 40, 40, 3)  # 2 windows of 4 frames, cut to the 6 AU rows
    assert info["windows"] == 2 and info["motion_frames"] == 2


def test_unit_scales_give_the_fully_conditioned_prediction(model):
    reference, audio, aus = clip_inputs(4)
    guided, _ = model.generate(reference, audio, aus,
                               Stage2Options(**OPTIONS, s_h=1.0, s_au=1.0), seed=3)
    plain, _ = model.generate(reference, audio, aus,
                              Stage2Options(**OPTIONS, guidance=False), seed=3)
    assert np.abs(guided.astype(int) - plain.astype(int)).max() <= 1  # equal up to rounding


def test_zero_au_scale_removes_every_au_effect(model):
    reference, audio, aus = clip_inputs(4)
    other = np.random.default_rng(9).random(aus.shape).astype(np.float32)
    options = Stage2Options(**OPTIONS, s_au=0.0)
    a, _ = model.generate(reference, audio, aus, options, seed=1)
    b, _ = model.generate(reference, audio, other, options, seed=1)
    assert np.array_equal(a, b)
    c, _ = model.generate(reference, audio, other, Stage2Options(**OPTIONS), seed=1)
    assert not np.array_equal(a, c)  # s_AU = 3.5: the AUs matter
    # the as-written form starts from e(0, c_AU): AUs still act at s_AU = 0
    written = Stage2Options(**OPTIONS, s_au=0.0, guidance_form="as_written")
    d, _ = model.generate(reference, audio, aus, written, seed=1)
    e, _ = model.generate(reference, audio, other, written, seed=1)
    assert not np.array_equal(d, e)


def test_same_seed_same_video(model):
    reference, audio, aus = clip_inputs(4)
    a, _ = model.generate(reference, audio, aus, Stage2Options(**OPTIONS), seed=5)
    b, _ = model.generate(reference, audio, aus, Stage2Options(**OPTIONS), seed=5)
    c, _ = model.generate(reference, audio, aus, Stage2Options(**OPTIONS), seed=6)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_guided_noise_rejects_unknown_forms():
    with pytest.raises(ValueError, match="unknown guidance form"):
        guided_noise(lambda z, h, a: z, torch.zeros(1, 2), 1.0, 1.0, "other")


# ---- training ---------------------------------------------------------------------------------


def test_train_stage2_trains_only_the_adapter_and_resumes_after_a_stop(tmp_path, video_factory):
    import json

    from click.testing import CliRunner
    from hallo_tiny import save_tiny_backbone
    from safetensors.torch import load_file

    from auhead_bench_methods.auhead.train_stage2 import command

    video_factory("train/a.mp4", frames=8, size=40)
    np.save(tmp_path / "train" / "a.npy",
            np.random.default_rng(0).random((8, N_AUS)).astype(np.float32))
    backbone_dir = save_tiny_backbone(tmp_path / "backbone")
    before = torch.load(backbone_dir / "net.pth", weights_only=True)

    def run(out: str, steps: int):
        result = CliRunner().invoke(command, [
            "--data", str(tmp_path / "train"), "--init", str(backbone_dir), "--out",
            str(tmp_path / out), "--steps", str(steps), "--batch-size", "1", "--save-every",
            "1", "--device", "cpu", "--face-embedding", "zeros", "--backbone", "hallo_v1",
        ])
        assert result.exit_code == 0, result.output
        return json.loads(result.output.strip().splitlines()[-1])

    assert run("out", 2)["resumed_from"] == 0
    out = tmp_path / "out"
    after = torch.load(out / "backbone" / "net.pth", weights_only=True)
    assert all(torch.equal(before[k], after[k]) for k in before)  # the backbone is frozen
    adapter = load_file(out / "adapter" / "diffusion_pytorch_model.safetensors")
    outputs = [k for k in adapter if k.endswith("to_out.weight") or "landmarks.conv_out" in k]
    assert outputs and all(adapter[k].abs().sum() > 0 for k in outputs)  # left zero init
    # a stopped run, continued: steps 1-2 then 3 equal steps 1-3 in one go
    summary = run("out", 3)
    assert summary["resumed_from"] == 2
    log = [json.loads(line)["step"] for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert log == [1, 2, 3]
    run("straight", 3)
    resumed = load_file(out / "adapter" / "diffusion_pytorch_model.safetensors")
    straight = load_file(tmp_path / "straight" / "adapter" / "diffusion_pytorch_model.safetensors")
    assert all(torch.equal(resumed[k], straight[k]) for k in straight)


def test_train_stage2_refuses_backbone_training_on_hallo(tmp_path):
    from click.testing import CliRunner

    from auhead_bench_methods.auhead.train_stage2 import command

    (tmp_path / "d").mkdir()
    result = CliRunner().invoke(command, ["--data", str(tmp_path / "d"), "--out",
                                          str(tmp_path / "o"), "--trainable", "backbone"])
    assert result.exit_code != 0 and "only for sd15_au_concat" in str(result.exception)


@torch.no_grad()
def test_audio_features_are_wav2vec2s_layer_states_at_25_fps():
    """Where no resampling is needed, the per-layer states equal transformers' own
    ``hidden_states[1:]``; otherwise one row per video frame, each with its 5-frame window."""
    from auhead_bench_methods.auhead.hallo.conditions import (
        audio_windows,
        encoder_layer_states,
        wav2vec2_frames,
    )

    model = tiny_backbone().wav2vec2
    audio = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    from transformers import Wav2Vec2FeatureExtractor

    values = Wav2Vec2FeatureExtractor(do_normalize=True)(
        audio, sampling_rate=16000, return_tensors="pt").input_values
    native = model(values, output_hidden_states=True).hidden_states
    hidden, _ = model.feature_projection(model.feature_extractor(values).transpose(1, 2))
    for ours, theirs in zip(encoder_layer_states(model.encoder, hidden), native[1:], strict=True):
        torch.testing.assert_close(ours, theirs)
    frames = wav2vec2_frames(model, audio, 25)
    assert frames.shape == (25, model.config.num_hidden_layers, model.config.hidden_size)
    windows = audio_windows(frames)
    assert windows.shape == (25, 5, *frames.shape[1:])
    torch.testing.assert_close(windows[0, 0], frames[0])  # clamped at the start
    torch.testing.assert_close(windows[10, 4], frames[12])


def test_cache_key_follows_hallos_files(tmp_path, monkeypatch):
    """Generations are keyed by the pulled Hallo files too: a re-pulled net.pth is new work."""
    from auhead_bench.weights import local_path
    from auhead_bench_methods.auhead.declarations import hallo_specs
    from auhead_bench_methods.auhead.plugin import AUHeadGTAUs

    monkeypatch.setenv("AUHEAD_BENCH_WEIGHTS", str(tmp_path))
    (tmp_path / "m" / "adapter").mkdir(parents=True)
    (tmp_path / "m" / "adapter" / "a.safetensors").write_bytes(b"a")
    options = Stage2Options(model=str(tmp_path / "m"), backbone="hallo_v1")
    empty = AUHeadGTAUs().content_fingerprint(options)
    assert empty["hallo"]["hallo-net"] is None
    net = local_path(hallo_specs()["net"])
    net.parent.mkdir(parents=True)
    net.write_bytes(b"n" * 10)
    first = AUHeadGTAUs().content_fingerprint(options)
    net.write_bytes(b"m" * 10)
    second = AUHeadGTAUs().content_fingerprint(options)
    assert len({str(empty), str(first), str(second)}) == 3
    stand_in = AUHeadGTAUs().content_fingerprint(options.model_copy(
        update={"backbone": "sd15_au_concat"}))
    assert "hallo" not in stand_in
