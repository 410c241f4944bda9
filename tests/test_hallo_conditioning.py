"""hallo_v1's conditioning pinned to Hallo's rules (hallo/utils/util.py, scripts/train_stage2.py,
hallo/datasets/*): region masks, training betas, condition dropout, audio normalisation and the
min-SNR reduction. tests/data/check_hallo_conditions.py compares the masks and the audio
features with Hallo's own functions; these tests keep the rules from drifting."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hallo_tiny import tiny_backbone

from auhead_bench_methods.auhead.adapter import au_windows
from auhead_bench_methods.auhead.au_space import N_AUS
from auhead_bench_methods.auhead.hallo import conditions
from auhead_bench_methods.auhead.hallo.conditions import (
    LIP_IDS,
    SILHOUETTE_IDS,
    expand_region,
    point_regions,
    union_regions,
)
from auhead_bench_methods.auhead.hallo.sampler import new_adapter
from auhead_bench_methods.auhead.hallo.train import (
    Dropout,
    loss_for,
    min_snr_loss,
    min_snr_weights,
    training_scheduler,
)

SIZE = 512


def face_points(x0: float, y0: float, x1: float, y1: float, lips: tuple[float, ...]) -> np.ndarray:
    """468 mediapipe-numbered points: the silhouette spans (x0, y0)-(x1, y1), the lips ``lips``,
    every other vertex at the centre."""
    points = np.tile([[(x0 + x1) / 2, (y0 + y1) / 2]], (468, 1))
    corners = [(x0, y0), (x1, y1), (x0, y1), (x1, y0)]
    for i, index in enumerate(SILHOUETTE_IDS):
        points[index] = corners[i % 4]
    lx0, ly0, lx1, ly1 = lips
    for i, index in enumerate(LIP_IDS):
        points[index] = [(lx0, ly0), (lx1, ly1)][i % 2]
    return points


def test_expand_region_keeps_hallos_arithmetic():
    assert expand_region((100.0, 200.0, 50.0, 150.0), 512, 512, 1.2) == (90, 210, 40, 160)
    # a box pushed past the edge is shifted back inside, not clipped
    assert expand_region((0.0, 100.0, 400.0, 500.0), 512, 512, 2.0) == (0, 200, 312, 512)
    # floor divisions on odd sides: 101 * 1.2 = 121.2 -> half 60.0
    assert expand_region((100.0, 201.0, 100.0, 201.0), 512, 512, 1.2) == (90, 210, 90, 210)


def test_inference_masks_are_expanded_blurred_normalised_rectangles():
    regions = point_regions(face_points(156, 100, 356, 400, (216, 320, 296, 350)), SIZE)
    # face locator: the face box x1.2, filled, at frame resolution
    ys, xs = np.nonzero(regions.locator)
    assert (xs.min(), xs.max() + 1, ys.min(), ys.max() + 1) == (136, 376, 70, 430)
    assert regions.locator.min() == 0 and regions.locator.max() == 1
    # lip box x2.0 (a 80 x 30 box -> 160 x 60), blurred at 64 x 64, peak normalised to 255
    assert regions.lip.shape == (64, 64) and regions.lip.max() == 255 and regions.lip.min() == 0
    full, face, lip = regions.levels(64, 4)
    assert [m.shape[1] for m in lip] == [64 * 64, 32 * 32, 16 * 16, 8 * 8]
    assert float(lip[0].max()) == 1.0  # Hallo's min-max: the lip branch is fully on at its peak
    lip_box = np.zeros((SIZE, SIZE), np.uint8)
    lip_box[305:365, 176:336] = 255
    expected = cv2.normalize(cv2.GaussianBlur(cv2.resize(lip_box, (64, 64)), (31, 31), 0), None,
                             0, 255, cv2.NORM_MINMAX)
    np.testing.assert_array_equal(regions.lip, expected)
    # background = inverted face (Hallo's float truncation), face = face - lip (saturating)
    face_blur = cv2.normalize(cv2.GaussianBlur(cv2.resize(
        (regions.locator * 255).astype(np.uint8), (64, 64)), (51, 51), 0), None, 0, 255,
        cv2.NORM_MINMAX)
    np.testing.assert_array_equal(regions.full, ((1.0 - face_blur / 255.0) * 255).astype(np.uint8))
    np.testing.assert_array_equal(regions.face, cv2.subtract(face_blur, regions.lip))
    assert float(full[0].max()) == 1.0 and float(face[0].min()) == 0.0


def test_training_masks_are_unexpanded_unions_over_the_clip():
    first = face_points(100, 100, 300, 400, (160, 300, 240, 340))
    second = face_points(140, 120, 340, 420, (200, 320, 280, 360))
    regions = union_regions([first, second], SIZE)
    ys, xs = np.nonzero(regions.locator)
    # ratio 1 (data_preprocess calls the union helpers at their default), then the bounding
    # box of the union is filled
    assert (xs.min(), xs.max() + 1, ys.min(), ys.max() + 1) == (100, 340, 100, 420)
    assert regions.locator[100:420, 100:340].all()
    full = regions.full.astype(np.int16)
    face_blur = cv2.normalize(cv2.GaussianBlur(cv2.resize(
        (regions.locator * 255).astype(np.uint8), (64, 64)), (51, 51), 0), None, 0, 255,
        cv2.NORM_MINMAX)
    np.testing.assert_array_equal(full, 255 - face_blur.astype(np.int16))  # exact in training
    assert regions.lip.max() == 255


def _real_face() -> np.ndarray:
    import feat

    path = Path(os.path.dirname(feat.__file__)) / "tests" / "data" / "single_face.jpg"
    image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    return cv2.resize(image, (SIZE, SIZE), interpolation=cv2.INTER_AREA)


def test_face_box_comes_from_mediapipe_and_includes_the_forehead():
    from auhead_bench_methods.auhead import au_mesh

    image = _real_face()
    points = conditions.mediapipe_landmarks(image)
    assert points is not None and points.shape == (468, 2)
    brows = points[[70, 63, 105, 66, 107, 336, 296, 334, 293, 300], 1].min()
    eye_to_chin = points[152, 1] - points[[33, 263], 1].mean()
    # vertex 10 (top of the silhouette) is well above the brows: the forehead is in the box
    assert points[10, 1] < brows - 0.2 * eye_to_chin
    regions = conditions.reference_regions(image, au_mesh.default_placement(SIZE, SIZE), SIZE)
    assert regions.source == "mediapipe"
    assert np.nonzero(regions.locator)[0].min() < points[10, 1]


def test_without_a_mediapipe_face_the_placed_mesh_stands_in():
    from auhead_bench_methods.auhead import au_mesh

    blank = np.full((64, 64, 3), 90, np.uint8)
    regions = conditions.reference_regions(blank, au_mesh.default_placement(32, 32), 32)
    assert regions.source == "mesh:default"
    assert regions.locator.any() and regions.lip.max() == 255


def test_training_betas_are_scaled_linear_and_inference_keeps_linear():
    from diffusers import DDIMScheduler

    config = tiny_backbone().cfg.scheduler
    train, sample = training_scheduler(config), DDIMScheduler.from_config(config)
    assert train.config.beta_schedule == "scaled_linear"
    assert sample.config.beta_schedule == "linear"

    def snr(s, t):
        a = float(s.alphas_cumprod[t])
        return a / (1 - a)

    # scaled_linear (linspace of sqrt(beta), squared) adds noise more slowly mid-schedule
    assert snr(train, 500) == pytest.approx(0.318, abs=2e-3)
    assert snr(sample, 500) == pytest.approx(0.165, abs=2e-3)
    assert train.config.prediction_type == "v_prediction"
    assert float(train.alphas_cumprod[-1]) == pytest.approx(0.0, abs=1e-6)  # zero terminal SNR


def test_min_snr_is_the_batch_mean_mse_times_the_mean_weight():
    prediction = torch.zeros(2, 1, 1, 1, 2)
    target = torch.tensor([1.0, 1.0, 3.0, 3.0]).reshape(2, 1, 1, 1, 2)
    weights = torch.tensor([1.0, 0.0])
    assert float(min_snr_loss(prediction, target, weights)) == pytest.approx(5.0 * 0.5)
    # (per-sample reduction would give (1 * 1 + 9 * 0) / 2 = 0.5)
    scheduler = training_scheduler(tiny_backbone().cfg.scheduler)
    w = min_snr_weights(scheduler, torch.tensor([10, 900]))
    assert float(w[0]) < 1.0 and float(w[1]) == pytest.approx(1.0)


@pytest.fixture(scope="module")
def trainable():
    torch.manual_seed(0)
    backbone = tiny_backbone()
    adapter = new_adapter(backbone, hidden_dim=16)
    return backbone, adapter


def _samples(backbone, count: int = 2) -> list[dict]:
    cfg = backbone.cfg
    rng = np.random.default_rng(0)
    size, frames = cfg.resolution, cfg.n_sample_frames
    regions = point_regions(face_points(8, 6, 24, 28, (12, 20, 20, 23)), size)
    return [{
        "target": rng.integers(0, 255, (frames, size, size, 3), np.uint8),
        "references": rng.integers(60, 255, (1 + cfg.n_motion_frames, size, size, 3), np.uint8),
        "audio": torch.randn(frames, cfg.audio_window, cfg.audio_blocks, cfg.audio_channels),
        "au_window": au_windows(rng.random((frames, N_AUS)).astype(np.float32)),
        "landmarks": rng.integers(0, 255, (frames, size, size, 3), np.uint8),
        "regions": regions, "embedding": torch.zeros(1, cfg.face_embedding_dim),
    } for _ in range(count)]


def _spy(monkeypatch, backbone):
    """Record what the ReferenceNet, the VAE and every motion module receive."""
    from auhead_bench_methods.auhead.hallo.blocks import MotionModule

    seen = {"writer": 0, "encoded": [], "motion": []}
    writer, encode, forward = backbone.net.writer, backbone.encode, MotionModule.forward

    def count_writer(*args, **kwargs):
        seen["writer"] += 1
        return writer(*args, **kwargs)

    def record_encode(pixels, *args, **kwargs):
        seen["encoded"].append(pixels.clone())
        return encode(pixels, *args, **kwargs)

    def record_motion(self, x, motion_frames=None):
        seen["motion"].append(None if motion_frames is None else motion_frames.clone())
        return forward(self, x, motion_frames)

    monkeypatch.setattr(backbone.net, "writer", count_writer)
    monkeypatch.setattr(backbone, "encode", record_encode)
    monkeypatch.setattr(MotionModule, "forward", record_motion)
    return seen


def test_reference_dropout_skips_the_referencenet_and_gives_four_zero_motion_frames(
        trainable, monkeypatch):
    backbone, adapter = trainable
    seen = _spy(monkeypatch, backbone)
    scheduler = training_scheduler(backbone.cfg.scheduler)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        loss_for(backbone, adapter, _samples(backbone), scheduler, {}, g,
                 Dropout(reference=True, audio=False, start=False, au=False))
    assert seen["writer"] == 0 and len(seen["encoded"]) == 1  # only the target frames
    cross = [m for m in seen["motion"] if m is not None]
    assert cross and all(m.shape[2] == 4 and not m.any() for m in cross)
    seen["motion"].clear()
    with torch.no_grad():
        loss_for(backbone, adapter, _samples(backbone), scheduler, {}, g,
                 Dropout(reference=False, audio=False, start=False, au=False))
    assert seen["writer"] == 1
    cross = [m for m in seen["motion"] if m is not None]
    assert cross and all(m.shape[2] == backbone.cfg.n_motion_frames and m.any() for m in cross)


def test_start_ratio_zeroes_the_motion_frames_pixels(trainable, monkeypatch):
    backbone, adapter = trainable
    seen = _spy(monkeypatch, backbone)
    scheduler = training_scheduler(backbone.cfg.scheduler)
    images = 1 + backbone.cfg.n_motion_frames
    with torch.no_grad():
        loss_for(backbone, adapter, _samples(backbone), scheduler, {},
                 torch.Generator().manual_seed(0),
                 Dropout(reference=False, audio=False, start=True, au=False))
    references = seen["encoded"][1].reshape(2, images, 3, *seen["encoded"][1].shape[-2:])
    assert not references[:, 1:].any() and references[:, 0].abs().min() > 0


def test_dropout_is_one_draw_per_batch_at_hallos_rates():
    from auhead_bench_methods.auhead.hallo.train import HALLO_DEFAULTS

    assert HALLO_DEFAULTS["image_dropout"] == HALLO_DEFAULTS["audio_dropout"] == 0.05
    assert HALLO_DEFAULTS["start_ratio"] == 0.05
    g = torch.Generator().manual_seed(0)
    draws = [Dropout.draw(HALLO_DEFAULTS, g) for _ in range(4000)]
    assert all(isinstance(d.reference, bool) for d in draws)  # a batch, not a sample, drops
    share = np.mean([d.reference for d in draws])
    assert 0.035 < share < 0.065
    assert all(d.audio for d in (Dropout.draw({"audio_dropout": 1.0}, g) for _ in range(5)))


def test_audio_is_normalised_before_zero_padding():
    backbone = tiny_backbone()
    model = backbone.wav2vec2
    seen = []
    model.feature_extractor.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    audio = (np.random.default_rng(0).standard_normal(17 * 640) * 0.3 + 0.2).astype(np.float32)
    conditions.wav2vec2_frames(model, audio, 32)
    values = seen[0][0]
    assert len(values) == 32 * 640  # padded by the 15 missing frames' samples
    head = values[: len(audio)]
    assert float(head.mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(head.std(unbiased=False)) == pytest.approx(1.0, abs=1e-3)
    assert not values[len(audio):].any()
