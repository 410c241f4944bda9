"""AUHead's stage 2 on the memo backbone, with tiny networks of the real classes: the adapter
leaves the backbone alone until trained, guidance by its properties and MEMO's unconditional
branch, long clips at MEMO's 30 fps, its audio emotion path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from memo_tiny import conditions, tiny_backbone

from auhead_bench.weights import WeightsMissing
from auhead_bench_methods.auhead.adapter import attach
from auhead_bench_methods.auhead.au_space import N_AUS
from auhead_bench_methods.auhead.declarations import Stage2Options
from auhead_bench_methods.auhead.memo.audio import clip_emotion, emotion_labels
from auhead_bench_methods.auhead.memo.sampler import (
    MemoStage2Model,
    frames_at,
    new_adapter,
    resample_track,
)

OPTIONS = {"backbone": "memo", "steps": 2, "face_embedding": "zeros", "emotion": "none"}


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
def model() -> MemoStage2Model:
    backbone = tiny_backbone()
    adapter = new_adapter(backbone, hidden_dim=16)
    wake(adapter)
    return MemoStage2Model(backbone, adapter, {})


def clip_inputs(frames: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    reference = rng.integers(0, 255, (40, 40, 3), np.uint8)
    aus = rng.random((frames, N_AUS)).astype(np.float32)
    audio = rng.standard_normal(frames * 640).astype(np.float32) * 0.1
    return reference, audio, aus


@torch.no_grad()
def test_adapter_at_every_level_starts_at_zero_and_masked_rows_stay_the_backbones():
    backbone = tiny_backbone()
    unet = backbone.net.diffusion_net
    frames = backbone.cfg.n_sample_frames
    z = torch.randn(2, 4, frames, 16, 16)

    def cond():
        return conditions(backbone.net, 2, frames)

    plain = unet(z, 300.0, cond())
    adapter = new_adapter(backbone, hidden_dim=16)
    names = [layer["name"] for layer in adapter.config.layers]
    # the spatial cross-attentions of every level (down 0 at 16 px, mid at 8 px, up 1 x 2),
    # none of the joint audio attentions
    assert len(names) == 4 and all(n.endswith("transformer_blocks.0.attn2.processor")
                                   for n in names)
    assert {n.split(".")[0] for n in names} == {"down_blocks", "mid_block", "up_blocks"}
    attachment = attach(unet, adapter)
    tokens = adapter.tokens(torch.rand(2 * frames, 5, N_AUS))
    features = adapter.landmark_features(torch.rand(2 * frames, 3, 32, 32) * 2 - 1)
    with_au = cond()
    with_au.cross_attention_kwargs = {"au_tokens": tokens, "au_mask": torch.ones(2 * frames)}
    with_au.mask_features = features.reshape(2, frames, *features.shape[1:]).transpose(1, 2)
    torch.testing.assert_close(unet(z, 300.0, with_au), plain)  # zero-initialised: no change
    wake(adapter)
    features = adapter.landmark_features(torch.rand(2 * frames, 3, 32, 32) * 2 - 1)
    mixed = cond()
    mask = torch.tensor([1.0, 0.0])
    mixed.mask_features = (features.reshape(2, frames, -1, 16, 16).transpose(1, 2)
                           * mask.view(-1, 1, 1, 1, 1))
    mixed.cross_attention_kwargs = {"au_tokens": tokens,
                                    "au_mask": mask.repeat_interleave(frames)}
    out = unet(z, 300.0, mixed)
    torch.testing.assert_close(out[1], plain[1])
    assert not torch.allclose(out[0], plain[0], atol=1e-4)
    attachment.detach()


def test_guidance_runs_one_batched_call_per_step_three_rows(model):
    calls = []
    hook = model.backbone.net.diffusion_net.register_forward_pre_hook(
        lambda module, args: calls.append(len(args[0])))
    try:
        reference, audio, aus = clip_inputs(6)
        video, info = model.generate(reference, audio, aus, Stage2Options(**OPTIONS), seed=0)
        # 6 rows at 25 fps = 8 frames at MEMO's 30 fps: 2 windows of 4, 2 steps each
        assert calls == [3, 3, 3, 3]
        calls.clear()
        model.generate(reference, audio, aus,
                       Stage2Options(**OPTIONS, guidance_form="as_written"), seed=0)
        assert calls == [4, 4, 4, 4]
    finally:
        hook.remove()
    assert video.shape == (6, 40, 40, 3)  # back at 25 fps, one frame per AU row
    assert info["windows"] == 2 and info["fps"] == 30 and info["backbone"] == "memo"


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
    d, _ = model.generate(reference, audio, aus, options, seed=2)
    assert not np.array_equal(a, d)  # a and b agree by seed, not by chance


def test_the_unconditional_branch_is_memos(model):
    """With s_H = s_AU = 0 only e(z, 0, 0) is left: MEMO's unconditional rows ignore the
    audio (zero tokens, "no emotion") but keep the past frames (the reference repeated)."""
    reference, audio, aus = clip_inputs(4)
    quiet = Stage2Options(**OPTIONS, s_h=0.0, s_au=0.0)
    louder = audio * 3 + 0.05
    a, _ = model.generate(reference, audio, aus, quiet, seed=2)
    b, _ = model.generate(reference, louder, aus, quiet, seed=2)
    assert np.array_equal(a, b)
    c, _ = model.generate(255 - reference, audio, aus, quiet, seed=2)
    assert not np.array_equal(a, c)  # the past frames (reference repeated) stay
    d, _ = model.generate(reference, louder, aus, Stage2Options(**OPTIONS, s_au=0.0), seed=2)
    assert not np.array_equal(a, d)  # with s_H the audio matters


def test_memo_samples_only_with_its_flow_matching_euler(model):
    reference, audio, aus = clip_inputs(4)
    with pytest.raises(Exception, match="flow-matching Euler"):
        model.generate(reference, audio, aus, Stage2Options(**OPTIONS, scheduler="ddim"), 0)


def test_audio_emotion_needs_its_models(model):
    reference, audio, aus = clip_inputs(4)
    options = Stage2Options(**{**OPTIONS, "emotion": "audio"})
    with pytest.raises(WeightsMissing, match="memo-emotion2vec.*emotion: none"):
        model.generate(reference, audio, aus, options, seed=0)


def test_emotion_labels_follow_memos_segments():
    """1 s steps: the first from 2 s, the middle ones from the 3 s around them, the last from
    the final 2 s; nearest per frame; a clip takes its most frequent label."""
    seen = []

    def classify(segment: np.ndarray) -> int:
        seen.append(len(segment))
        return len(seen)  # 1, 2, 3, ...

    audio = np.zeros(16000 * 4, np.float32)  # 4 s
    labels = emotion_labels(audio, 120, classify)  # 30 fps
    assert seen == [32000, 48000, 48000, 32000]
    assert list(labels[[0, 29, 30, 59, 60, 89, 90, 119]]) == [1, 1, 2, 2, 3, 3, 4, 4]
    assert clip_emotion(np.array([3, 1, 1, 3, 2])) == 1  # ties: the smallest


def test_tracks_move_between_25_and_30_fps():
    track = np.arange(5, dtype=np.float32)[:, None].repeat(2, 1)  # 5 rows at 25 fps
    memo = resample_track(track, 6, 25, 30)
    np.testing.assert_allclose(memo[:, 0], np.minimum(np.arange(6) * 25 / 30, 4), rtol=1e-6)
    assert list(frames_at(25, 30, 5, 6)) == [0, 1, 2, 4, 5]


def test_cache_key_follows_memos_files(tmp_path, monkeypatch):
    """Generations are keyed by the pulled MEMO files: a re-pulled network is new work."""
    from auhead_bench.weights import local_path
    from auhead_bench_methods.auhead.declarations import memo_specs
    from auhead_bench_methods.auhead.plugin import AUHeadGTAUs

    monkeypatch.setenv("AUHEAD_BENCH_WEIGHTS", str(tmp_path))
    (tmp_path / "m" / "adapter").mkdir(parents=True)
    options = Stage2Options(model=str(tmp_path / "m"))  # the default backbone: memo
    empty = AUHeadGTAUs().content_fingerprint(options)
    assert empty["memo"]["memo-diffusion-net"] is None and "hallo" not in empty
    net = local_path(memo_specs()["diffusion_net"])
    net.parent.mkdir(parents=True)
    net.write_bytes(b"n" * 10)
    assert AUHeadGTAUs().content_fingerprint(options) != empty


# ---- training ---------------------------------------------------------------------------------


def test_train_stage2_memo_trains_only_the_adapter_and_resumes_after_a_stop(
        tmp_path, video_factory, monkeypatch):
    import json

    from auhead_bench_methods.auhead.memo import train

    # MEMO's robust_training leaves out samples whose loss exceeds 0.1, which a tiny random
    # backbone's all are: let them count here
    monkeypatch.setattr(train, "ROBUST_LIMIT", float("inf"))

    from click.testing import CliRunner
    from safetensors.torch import load_file

    from auhead_bench_methods.auhead.train_stage2 import command

    video_factory("train/a.mp4", frames=12, fps=30, size=40)  # MEMO's 30 fps
    np.save(tmp_path / "train" / "a.npy",
            np.random.default_rng(0).random((12, N_AUS)).astype(np.float32))
    tiny_backbone().save_folder(tmp_path / "backbone")
    before = load_file(tmp_path / "backbone" / "diffusion_net.safetensors")

    def run(out: str, steps: int):
        result = CliRunner().invoke(command, [
            "--backbone", "memo", "--data", str(tmp_path / "train"), "--init",
            str(tmp_path / "backbone"), "--out", str(tmp_path / out), "--steps", str(steps),
            "--batch-size", "1", "--save-every", "1", "--device", "cpu",
            "--face-embedding", "zeros", "--emotion", "none",
        ])
        assert result.exit_code == 0, result.output
        return json.loads(result.output.strip().splitlines()[-1])

    assert run("out", 1)["resumed_from"] == 0
    out = tmp_path / "out"
    after = load_file(out / "backbone" / "diffusion_net.safetensors")
    assert all(torch.equal(before[k], after[k]) for k in before)  # the backbone is frozen
    adapter = load_file(out / "adapter" / "diffusion_pytorch_model.safetensors")
    outputs = [k for k in adapter if k.endswith("to_out.weight") or "landmarks.conv_out" in k]
    assert outputs and all(adapter[k].abs().sum() > 0 for k in outputs)  # left zero init
    assert json.loads((out / "auhead_stage2.json").read_text())["backbone"] == "memo"
    # a stopped run, continued: step 1 then 2 equal steps 1-2 in one go
    assert run("out", 2)["resumed_from"] == 1
    run("straight", 2)
    resumed = load_file(out / "adapter" / "diffusion_pytorch_model.safetensors")
    straight = load_file(tmp_path / "straight" / "adapter" / "diffusion_pytorch_model.safetensors")
    assert all(torch.equal(resumed[k], straight[k]) for k in straight)
    # the trained model samples through the method's loader
    model = MemoStage2Model.load(out, "cpu")
    reference, audio, aus = clip_inputs(3)
    video, info = model.generate(reference, audio, aus, Stage2Options(**OPTIONS), seed=0)
    assert video.shape == (3, 40, 40, 3) and info["windows"] == 1


def test_train_stage2_memo_help_and_refusals(tmp_path):
    from click.testing import CliRunner

    from auhead_bench_methods.auhead.train_stage2 import command

    help_text = CliRunner().invoke(command, ["--help"]).output
    assert "[memo|hallo_v1|sd15_au_concat]" in help_text and "[default: memo]" in help_text
    (tmp_path / "d").mkdir()
    result = CliRunner().invoke(command, ["--backbone", "memo", "--data", str(tmp_path / "d"),
                                          "--out", str(tmp_path / "o"), "--trainable",
                                          "backbone"])
    assert result.exit_code != 0 and "only for sd15_au_concat" in str(result.exception)


def test_robust_training_leaves_out_high_loss_samples(monkeypatch):
    """MEMO's robust_training: the mean over samples whose loss is at most 0.1."""
    from auhead_bench_methods.auhead.memo import train

    backbone = tiny_backbone()
    adapter = new_adapter(backbone, hidden_dim=16)
    cfg = backbone.cfg
    rng = np.random.default_rng(0)
    sample = {
        "target": rng.integers(0, 255, (cfg.n_sample_frames, 32, 32, 3), np.uint8),
        "references": rng.integers(0, 255, (1 + cfg.n_past_frames, 32, 32, 3), np.uint8),
        "audio": torch.randn(cfg.n_sample_frames, 5, cfg.audio_blocks, cfg.audio_channels),
        "au_window": rng.random((cfg.n_sample_frames, 5, N_AUS)).astype(np.float32),
        "landmarks": rng.integers(0, 255, (cfg.n_sample_frames, 32, 32, 3), np.uint8),
        "embedding": torch.zeros(1, cfg.face_embedding_dim), "emotion": 1,
    }
    from diffusers import FlowMatchEulerDiscreteScheduler

    scheduler = FlowMatchEulerDiscreteScheduler.from_config(cfg.scheduler)
    rates = dict(train.MEMO_DEFAULTS)

    def loss(limit: float) -> float:
        import random

        monkeypatch.setattr(train, "ROBUST_LIMIT", limit)
        value = train.loss_for(backbone, adapter, [sample, sample], scheduler, rates,
                               torch.Generator().manual_seed(0), random.Random(0))
        return float(value.detach())

    full = loss(float("inf"))
    assert full > 0 and loss(0.0) == 0.0  # every sample above the limit: nothing counts


def test_auhead_gt_aus_on_the_default_backbone_runs_in_the_runner(tmp_path, video_factory):
    """The default backbone is memo: ground-truth AUs through a saved memo stage-2 model
    inside a run, its files in the record's provenance."""
    from auhead_bench.config import RunConfig
    from auhead_bench.runner import Runner
    from auhead_bench_methods.auhead.memo.sampler import save_model

    backbone = tiny_backbone()
    save_model(tmp_path / "memo-stage2", new_adapter(backbone, hidden_dim=16), backbone)
    video_factory("data/talk.mp4", frames=5, size=40)
    np.save(tmp_path / "talk_aus.npy",
            np.random.default_rng(0).random((5, N_AUS)).astype(np.float32))
    (tmp_path / "labels.csv").write_text("clip_id,emotion,au_labels\ntalk,happy,talk_aus.npy\n")
    config = RunConfig.model_validate({
        "datasets": [{"id": "folder", "options": {"root": str(tmp_path / "data"),
                                                  "labels": str(tmp_path / "labels.csv")}}],
        "methods": [{"id": "auhead_gt_aus", "options": {
            "model": str(tmp_path / "memo-stage2"), "steps": 1, "face_embedding": "zeros",
            "emotion": "none"}}],
        "metrics": ["psnr_rgb"], "device": "cpu", "cache_dir": str(tmp_path / "cache"),
    })
    (record,) = Runner(config, tmp_path / "out").run()
    (generation,) = record.generations
    assert generation.status == "ok", generation.error
    assert generation.info["backbone"] == "memo" and generation.info["windows"] == 2
    assert any(k.startswith("stage2/backbone/diffusion_net") for k in record.provenance.weights)


def test_ls_methods_shows_the_backbone_choices_memo_first():
    import json

    from click.testing import CliRunner

    from auhead_bench.cli import cli

    result = CliRunner().invoke(cli, ["ls", "methods", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    methods = listed if isinstance(listed, list) else listed["methods"]
    for method in ("auhead", "auhead_gt_aus"):
        (entry,) = [m for m in methods if m["id"] == method]
        backbone = entry["options"]["backbone"]
        assert backbone["choices"] == ["memo", "hallo_v1", "sd15_au_concat"]
        assert backbone["default"] == "memo" and backbone["description"]
