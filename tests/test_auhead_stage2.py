"""AUHead stage 2 on tiny random models of the real classes: AU->mesh, adapter, guidance,
backbone loading, the sampler inside the runner, and one training step."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from diffusers import AutoencoderKL, UNet2DConditionModel

from auhead_bench import media
from auhead_bench.cache import Cache
from auhead_bench.config import RunConfig
from auhead_bench.errors import BenchError
from auhead_bench.runner import Runner
from auhead_bench.weights import WeightsMissing, local_path, registered_weights
from auhead_bench_methods.auhead import au_mesh
from auhead_bench_methods.auhead.adapter import AUAdapter, attach, au_windows
from auhead_bench_methods.auhead.au_labels import conditioning_track, fill_missing
from auhead_bench_methods.auhead.au_space import AU_NAMES, N_AUS
from auhead_bench_methods.auhead.backbone import PortraitBackbone, load_sd15, sd15_specs
from auhead_bench_methods.auhead.guidance import combine, guided_noise
from auhead_bench_methods.auhead.plugin import AUHead
from auhead_bench_methods.auhead.stage2 import Stage2Model, Stage2Options, save_stage2
from auhead_bench_methods.auhead.train_stage2 import command as train_command

RESOLUTION = 32


def tiny_sd15() -> tuple[UNet2DConditionModel, AutoencoderKL]:
    """SD1.5-shaped (4-channel, cross-attention) UNet and VAE, a few thousand weights."""
    unet = UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(8, 16), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=16,
        attention_head_dim=4, norm_num_groups=4,
    )
    vae = AutoencoderKL(
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"), block_out_channels=(8, 16),
        latent_channels=4, norm_num_groups=4, sample_size=RESOLUTION,
    )
    return unet, vae


def tiny_parts(seed: int = 0) -> tuple[PortraitBackbone, AUAdapter]:
    torch.manual_seed(seed)
    backbone = PortraitBackbone.from_sd15(*tiny_sd15(), None, RESOLUTION, "logmel", n_mels=16)
    adapter = AUAdapter.for_unet(
        backbone.unet, token_dim=16, hidden_dim=16, landmark_channels=(8, 16), landmark_grid=2
    )
    return backbone, adapter


def randomise_outputs(adapter: AUAdapter) -> None:
    """A trained adapter's branches are no longer zero: give them random outputs."""
    with torch.no_grad():
        for branch in adapter.branches.values():
            branch.to_out.weight.normal_(0, 0.5)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models gain nothing from intra-op threads, and on a busy 2-core machine two
    threads made each UNet call ~10x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A stage-2 model folder (backbone/ + adapter/) saved with save_pretrained."""
    folder = tmp_path_factory.mktemp("stage2") / "model"
    backbone, adapter = tiny_parts()
    randomise_outputs(adapter)
    save_stage2(folder, backbone, adapter)
    return folder


def unet_inputs(batch: int = 2) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return {
        "z": torch.randn(batch, 4, 16, 16, generator=generator),
        "reference": torch.randn(batch, 4, 16, 16, generator=generator),
        "audio_tokens": torch.randn(batch, 20, 16, generator=generator),
        "h_on": torch.ones(batch),
        "timestep": 10,
    }


def au_tokens(adapter: AUAdapter, batch: int = 2) -> torch.Tensor:
    generator = torch.Generator().manual_seed(2)
    return adapter.tokens(
        torch.rand(batch, 5, N_AUS, generator=generator),
        torch.rand(batch, 3, RESOLUTION, RESOLUTION, generator=generator) * 2 - 1,
    )


# ---- AU -> mesh -> landmark image ------------------------------------------------------------


def test_every_feafa_au_is_mapped_or_documented_as_unmapped():
    mapped = {i for pairs in au_mesh.FEAFA_TO_FEAT.values() for i, _ in pairs}
    assert mapped.isdisjoint(au_mesh.UNMAPPED)
    assert mapped | set(au_mesh.UNMAPPED) == set(range(N_AUS))
    assert set(au_mesh.FEAFA_TO_FEAT) <= set(au_mesh.FEAT_AUS)
    aus = np.zeros((1, N_AUS), np.float32)
    aus[0, list(au_mesh.UNMAPPED)] = 1.0
    assert np.allclose(au_mesh.mesh_points(aus), au_mesh.mesh_points(aus * 0))


def test_mesh_moves_as_the_aus_say():
    aus = np.zeros((3, N_AUS), np.float32)
    aus[1, AU_NAMES.index("jaw_drop_mouth_open")] = 1.0
    aus[2, [AU_NAMES.index("left_lip_corner_raise"), AU_NAMES.index("right_lip_corner_raise")]] = 1
    points = au_mesh.mesh_points(aus)
    lip_gap = points[:, 14, 1] - points[:, 13, 1]  # inner lower lip below inner upper lip
    mouth_width = points[:, 291, 0] - points[:, 61, 0]
    assert lip_gap[1] > 2 * lip_gap[0] > 0
    assert mouth_width[2] > mouth_width[0]


def test_landmark_image_is_placed_on_the_reference_face():
    import feat

    image = media.read_image(Path(feat.__file__).parent / "tests" / "data" / "single_face.jpg")
    placement, landmarks = au_mesh.place_on(image)
    assert placement.source == "dlib68"
    placed = placement.apply(au_mesh.neutral_points()[au_mesh.dlib68_vertices()])
    face_height = np.ptp(landmarks[:, 1])
    assert np.linalg.norm(placed - landmarks, axis=1).mean() < 0.1 * face_height
    drawn = au_mesh.render_track(np.zeros((1, N_AUS)), placement, *image.shape[:2])[0]
    ys, xs = np.nonzero(drawn.any(axis=-1))
    low, high = landmarks.min(axis=0), landmarks.max(axis=0)
    assert low[0] - 0.3 * face_height < xs.mean() < high[0] + 0.3 * face_height
    assert low[1] - 0.6 * face_height < ys.mean() < high[1]


def test_without_a_face_the_mesh_is_centred():
    placement, landmarks = au_mesh.place_on(np.full((64, 64, 3), 90, np.uint8))
    assert landmarks is None and placement.source == "default"
    drawn = au_mesh.render_track(np.zeros((1, N_AUS)), placement, 64, 64)[0]
    ys, xs = np.nonzero(drawn.any(axis=-1))
    assert abs(xs.mean() - 32) < 6 and abs(ys.mean() - 32) < 6


# ---- AU labels ------------------------------------------------------------------------------


def test_au_labels_become_a_complete_track_per_frame(tmp_path):
    track = np.random.default_rng(0).random((6, N_AUS)).astype(np.float32)
    np.save(tmp_path / "a.npy", track)
    assert np.allclose(conditioning_track(tmp_path / "a.npy", 6), track)
    assert np.allclose(conditioning_track(tmp_path / "a.npy", 7)[6], track[5])  # edge-padded
    gappy = track.copy()
    gappy[2, 0] = np.nan  # one value not measured: interpolated
    gappy[:, 1] = np.nan  # an AU never measured: at rest
    filled = fill_missing(gappy)
    assert np.isclose(filled[2, 0], (track[1, 0] + track[3, 0]) / 2)
    assert not filled[:, 1].any() and np.isfinite(filled).all()


def test_bad_au_labels_name_the_file(tmp_path):
    np.save(tmp_path / "short.npy", np.zeros((5, 17)))
    with pytest.raises(BenchError, match="short.npy.*expected \\(frames, 24\\)"):
        conditioning_track(tmp_path / "short.npy", 5)
    np.save(tmp_path / "long.npy", np.zeros((60, N_AUS)))
    with pytest.raises(BenchError, match="long.npy.*25 fps"):
        conditioning_track(tmp_path / "long.npy", 50)


# ---- adapter and guidance -------------------------------------------------------------------


def test_au_window_is_centred_and_edge_padded():
    track = np.arange(4, dtype=np.float32)[:, None].repeat(N_AUS, 1)
    windows = au_windows(track)
    assert windows.shape == (4, 5, N_AUS)
    assert windows[0, :, 0].tolist() == [0, 0, 0, 1, 2]
    assert windows[3, :, 0].tolist() == [1, 2, 3, 3, 3]


def test_adapter_attaches_without_touching_the_backbone_and_starts_at_zero():
    backbone, adapter = tiny_parts()
    inputs = unet_inputs()
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    with torch.no_grad():
        plain = backbone.denoise(**inputs)
        attachment = attach(backbone.unet, adapter)
        after = backbone.state_dict()
        assert after.keys() == before.keys()
        assert all(torch.equal(before[k], after[k]) for k in before)
        # one branch per cross-attention layer, at both resolutions and the mid block
        assert len(adapter.branches) == 4
        tokens = au_tokens(adapter)
        assert torch.equal(backbone.denoise(**inputs, au_tokens=tokens, au_on=torch.ones(2)), plain)
        randomise_outputs(adapter)
        mixed = backbone.denoise(**inputs, au_tokens=tokens, au_on=torch.tensor([1.0, 0.0]))
        assert not torch.allclose(mixed[0], plain[0])  # AU-conditioned sample moves
        assert torch.equal(mixed[1], plain[1])  # c_AU = 0: exactly the backbone
        attachment.detach()
        assert torch.equal(backbone.denoise(**inputs, au_tokens=tokens), plain)


def test_guidance_combines_predictions_from_one_batched_call():
    calls = []
    factors = {(0.0, 1.0): 2.0, (1.0, 0.0): 3.0, (0.0, 0.0): 5.0, (1.0, 1.0): 7.0}

    def denoise(z, h_on, au_on):
        calls.append(len(z))
        pairs = zip(h_on.tolist(), au_on.tolist(), strict=True)
        scale = torch.tensor([factors[pair] for pair in pairs])
        return z * scale.view(-1, 1, 1, 1)

    z = torch.randn(3, 4, 2, 2)
    s_h, s_au = 1.7, 3.5
    e_au, e_h, e_none, e_both = 2 * z, 3 * z, 5 * z, 7 * z
    eps = guided_noise(denoise, z, s_h, s_au)  # the telescoping form: three rows
    assert calls == [9]
    assert torch.allclose(eps, e_none + s_h * (e_h - e_none) + s_au * (e_both - e_h))
    calls.clear()
    eps = guided_noise(denoise, z, s_h, s_au, "as_written")
    assert calls == [12]
    by_hand = e_au + s_h * (e_h - e_none) + s_au * (e_both - e_h)
    assert torch.allclose(eps, by_hand)
    assert torch.allclose(combine(e_au, e_h, e_none, e_both, s_h, s_au), by_hand)


def test_sampler_calls_the_unet_once_per_step_with_three_conditions(tiny_model):
    model = Stage2Model.load(str(tiny_model), "cpu")
    batches = []
    unet = model.backbone.unet
    hook = unet.register_forward_pre_hook(lambda module, args: batches.append(len(args[0])))
    reference = np.random.default_rng(0).integers(0, 255, (40, 40, 3), np.uint8)
    aus = np.random.default_rng(1).random((3, N_AUS)).astype(np.float32)
    audio = np.zeros(3 * 640, np.float32)
    guided, _ = model.generate(reference, audio, aus, Stage2Options(steps=2), seed=0)
    assert batches == [9, 9]
    batches.clear()
    plain, _ = model.generate(reference, audio, aus, Stage2Options(steps=2, guidance=False), 0)
    assert batches == [3, 3]
    hook.remove()
    assert guided.shape == plain.shape == (3, 40, 40, 3)
    again, _ = model.generate(reference, audio, aus, Stage2Options(steps=2), seed=0)
    other, _ = model.generate(reference, audio, aus, Stage2Options(steps=2), seed=1)
    assert np.array_equal(guided, again) and not np.array_equal(guided, other)


# ---- loading --------------------------------------------------------------------------------


def test_backbone_loads_from_sd15_folder_and_from_pulled_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("AUHEAD_BENCH_WEIGHTS", str(tmp_path / "weights"))
    torch.manual_seed(3)
    unet, vae = tiny_sd15()
    unet.save_pretrained(tmp_path / "sd" / "unet")
    vae.save_pretrained(tmp_path / "sd" / "vae")
    loaded_unet, loaded_vae, schedule = load_sd15(str(tmp_path / "sd"))
    assert schedule["beta_schedule"] == "scaled_linear"
    specs = sd15_specs()
    assert {s.name for s in specs.values()} <= set(registered_weights())
    with pytest.raises(WeightsMissing, match="auhead-bench weights pull sd15-"):
        load_sd15(None)
    for key, spec in specs.items():
        part = "unet" if key.startswith("unet") else "vae"
        target = local_path(spec)
        target.parent.mkdir(parents=True)
        shutil.copyfile(tmp_path / "sd" / part / spec.filename, target)
    cached_unet, cached_vae, _ = load_sd15(None)
    for a, b in ((unet, cached_unet), (vae, cached_vae), (unet, loaded_unet)):
        assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                     b.state_dict().values(), strict=True))
    backbone = PortraitBackbone.from_sd15(cached_unet, cached_vae, None, RESOLUTION, "logmel")
    weight = backbone.unet.conv_in.weight
    assert weight.shape[1] == 8 and torch.equal(weight[:, :4], unet.conv_in.weight)
    assert not weight[:, 4:].any()  # reference channels start at zero


def test_wav2vec2_backbone_saves_loads_and_windows_audio(tmp_path):
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(4)
    config = Wav2Vec2Config(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
        conv_dim=(8,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
    )
    Wav2Vec2Model(config).save_pretrained(tmp_path / "wav2vec2")
    wav2vec2 = Wav2Vec2Model.from_pretrained(tmp_path / "wav2vec2")
    backbone = PortraitBackbone.from_sd15(*tiny_sd15(), None, RESOLUTION, "wav2vec2", wav2vec2)
    backbone.save_pretrained(tmp_path / "backbone")
    loaded = PortraitBackbone.load(tmp_path / "backbone")
    audio = np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32)
    features = loaded.audio_features(audio, 25)
    assert features.shape == (25, 10, 16)  # 2 wav2vec2 frames per video frame, t-2 .. t+2
    assert torch.equal(features[3, 4:6], features[5, :2])  # windows overlap as they should
    with torch.no_grad():
        assert torch.allclose(
            loaded.audio_tokens(features), backbone.audio_tokens(backbone.audio_features(audio, 25))
        )


def test_missing_stage2_model_names_the_commands(tmp_path, monkeypatch):
    monkeypatch.setenv("AUHEAD_BENCH_WEIGHTS", str(tmp_path / "weights"))
    built = []
    monkeypatch.setattr(AUHead, "make_predictor", lambda self, options: built.append(1))
    clip_video = tmp_path / "clip.mp4"
    media.write_video(clip_video, np.zeros((2, 16, 16, 3), np.uint8))
    from auhead_bench import Clip

    clip = Clip(id="c", video=clip_video, audio=clip_video, reference=clip_video)
    with pytest.raises(WeightsMissing) as info:  # the default backbone: memo
        AUHead().generate(clip, AUHead.Options(), 0, tmp_path / "out.mp4")
    assert "auhead-bench weights pull memo-reference-net" in str(info.value)
    assert "auhead-bench train stage2 --backbone memo --data CLIPS --out" in str(info.value)
    with pytest.raises(WeightsMissing) as info:
        AUHead().generate(clip, AUHead.Options(backbone="hallo_v1"), 0, tmp_path / "out.mp4")
    assert "auhead-bench weights pull hallo-net" in str(info.value)
    assert "auhead-bench train stage2 --data CLIPS --out" in str(info.value)
    with pytest.raises(WeightsMissing) as info:
        options = AUHead.Options(backbone="sd15_au_concat")
        AUHead().generate(clip, options, 0, tmp_path / "out.mp4")
    assert "auhead-bench weights pull sd15-unet" in str(info.value)
    assert "auhead-bench train stage2" in str(info.value)
    assert not built  # stage 1 is never loaded for nothing


# ---- the whole pipeline inside the runner ---------------------------------------------------


@dataclass
class FakeStage1Result:
    aus: np.ndarray
    emotion: str
    raw_text: str
    report: dict


class FakePredictor:
    """Stage 1's interface: predict(audio, emotion) -> (T25, 24) AUs and notes."""

    def setup(self, device: str) -> None:
        self.device = device

    def predict(
        self, audio: np.ndarray, emotion: str | None, seed: int | None = None
    ) -> FakeStage1Result:
        assert emotion is None  # the default prompt mode (A->E->AU) states the emotion itself
        frames = int(np.ceil(len(audio) / 640))
        aus = np.zeros((frames, N_AUS), np.float32)
        aus[:, AU_NAMES.index("jaw_drop_mouth_open")] = np.linspace(0, 1, frames)
        return FakeStage1Result(aus, "happy", "<text>", {"frames_parsed": frames})

    def weights(self) -> dict[str, str]:
        return {"fake.safetensors": "0" * 64}

    def fingerprint(self) -> dict[str, str]:
        return {"fake": "1"}


def test_auhead_pipeline_end_to_end_in_the_runner(tiny_model, tmp_path, video_factory,
                                                  monkeypatch):
    monkeypatch.setattr(AUHead, "make_predictor", lambda self, options: FakePredictor())
    root = tmp_path / "data"
    video_factory("data/talk.mp4", frames=4, size=40)
    labels = np.random.default_rng(0).random((4, N_AUS)).astype(np.float32)
    np.save(tmp_path / "talk_aus.npy", labels)
    (tmp_path / "labels.csv").write_text("clip_id,emotion,au_labels\ntalk,happy,talk_aus.npy\n")
    stand_in = {"model": str(tiny_model), "backbone": "sd15_au_concat"}
    config = RunConfig.model_validate({
        "name": "stage2",
        "datasets": [{"id": "folder", "options": {"root": str(root),
                                                  "labels": str(tmp_path / "labels.csv")}}],
        "methods": [
            {"id": "auhead", "options": {**stand_in, "steps": 2}},
            {"id": "auhead", "options": {**stand_in, "steps": 2, "guidance": False}},
            {"id": "auhead_gt_aus", "options": {**stand_in, "steps": 2, "s_au": 5.0}},
        ],
        "metrics": ["psnr_rgb"],
        "device": "cpu",
        "cache_dir": str(tmp_path / "cache"),
    })
    records = Runner(config, tmp_path / "out").run()
    assert [r.experiment for r in records] == [
        'auhead[backbone="sd15_au_concat",steps=2]',
        'auhead[backbone="sd15_au_concat",guidance=false,steps=2]',
        'auhead_gt_aus[backbone="sd15_au_concat",s_au=5.0,steps=2]',
    ]
    cache = Cache(tmp_path / "cache")
    for record in records:
        (generation,) = record.generations
        assert generation.status == "ok", generation.error
        assert record.metrics["psnr_rgb"].n == 1
        entry = cache.path("generations", generation.key)
        video = media.decode_video(entry / "video.mp4")
        assert video.frames.shape == (4, 40, 40, 3) and video.has_audio
        track = np.load(entry / "arrays.npz")["au_track"]
        assert track.shape == (4, N_AUS)
    predicted, _, ground_truth = records
    assert predicted.generations[0].info["emotion"] == "happy"
    assert predicted.generations[0].info["parse_report"]["frames_parsed"] >= 4
    assert ground_truth.generations[0].info["au_source"] == "labels"
    gt_track = np.load(cache.path("generations", ground_truth.generations[0].key) / "arrays.npz")
    assert np.allclose(gt_track["au_track"], labels)
    assert any(k.startswith("stage2/adapter/") for k in predicted.provenance.weights)
    assert predicted.generations[0].content_sha256 != records[1].generations[0].content_sha256


# ---- training -------------------------------------------------------------------------------


def test_train_stage2_runs_one_adapter_step_with_the_backbone_frozen(tiny_model, tmp_path,
                                                                    video_factory):
    video_factory("train/a.mp4", frames=6, size=40)
    np.save(tmp_path / "train" / "a.npy", np.full((6, N_AUS), 0.3, np.float32))
    out = tmp_path / "trained"
    result = CliRunner().invoke(train_command, [
        "--backbone", "sd15_au_concat",
        "--data", str(tmp_path / "train"), "--init", str(tiny_model / "backbone"),
        "--out", str(out), "--steps", "1", "--batch-size", "2", "--device", "cpu",
    ])
    assert result.exit_code == 0, result.output
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == 1 and np.isfinite(log[0]["loss"])
    trained = Stage2Model.load(str(out), "cpu")
    initial = PortraitBackbone.load(tiny_model / "backbone")
    for a, b in zip(initial.state_dict().values(), trained.backbone.state_dict().values(),
                    strict=True):
        assert torch.equal(a, b)
    assert any(branch.to_out.weight.abs().sum() > 0 for branch in trained.adapter.branches.values())


def test_train_stage2_backbone_from_an_sd15_folder(tmp_path, video_factory):
    unet, vae = tiny_sd15()
    unet.save_pretrained(tmp_path / "sd" / "unet")
    vae.save_pretrained(tmp_path / "sd" / "vae")
    video_factory("train/a.mp4", frames=6, size=40)
    out = tmp_path / "backbone"
    result = CliRunner().invoke(train_command, [
        "--backbone", "sd15_au_concat",
        "--data", str(tmp_path / "train"), "--init", str(tmp_path / "sd"), "--out", str(out),
        "--trainable", "backbone", "--resolution", str(RESOLUTION), "--audio-feature", "logmel",
        "--steps", "1", "--batch-size", "2", "--device", "cpu",
    ])
    assert result.exit_code == 0, result.output
    backbone = PortraitBackbone.load(out)
    assert backbone.unet.config.in_channels == 8 and backbone.resolution == RESOLUTION
    assert backbone.unet.conv_in.weight[:, 4:].abs().sum() > 0  # reference channels learnt


def test_stage2_content_changes_when_a_model_file_is_rewritten_in_place(tmp_path):
    from auhead_bench_methods.auhead.declarations import Stage2Options
    from auhead_bench_methods.auhead.plugin import AUHeadGTAUs, stage2_content

    (tmp_path / "m/adapter").mkdir(parents=True)
    (tmp_path / "m/backbone").mkdir()
    (tmp_path / "m/adapter/adapter.safetensors").write_bytes(b"a" * 100)
    (tmp_path / "m/backbone/unet.safetensors").write_bytes(b"u" * 100)
    options = Stage2Options(model=str(tmp_path / "m"))
    before = AUHeadGTAUs().content_fingerprint(options)
    files = {"adapter/adapter.safetensors", "backbone/unet.safetensors"}
    assert set(before["stage2_model"]) == files
    (tmp_path / "m/backbone/unet.safetensors").write_bytes(b"v" * 100)  # same name and size
    assert AUHeadGTAUs().content_fingerprint(options) != before
    hub = "org/some-hub-model"
    assert stage2_content(Path(hub), hub) == hub
    absent = str(tmp_path / "absent")
    assert stage2_content(Path(absent), absent) == absent
