"""FVD: a random Inception-I3D saved as TorchScript and loaded through the real loading code.

StyleGAN-V's ``i3d_torchscript.pt`` cannot be downloaded here, so the tests build the same
architecture (Carreira & Zisserman's Inception-I3D as on TF-Hub: TF "SAME" padding, 400
Kinetics logits averaged over time) with random weights and the file's call signature
``forward(x, rescale, resize, return_features)``, script it with ``torch.jit`` and save it
into the weights cache. Channel widths are 1/16 of the real ones to keep CPU tests fast; the
layer graph is the real one. The parity reference is StyleGAN-V's own formula, restated below.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pluggy
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from auhead_bench import BenchError, Clip, ClipSkipped, ClipView, Extractor, VideoView
from auhead_bench.cache import Cache
from auhead_bench.config import RunConfig
from auhead_bench.faces import crop_faces
from auhead_bench.features import FeatureStore
from auhead_bench.plugins import PluginInfo, Registry
from auhead_bench.runner import Runner
from auhead_bench.weights import WeightsMissing, local_path, registered_weights
from auhead_bench_metrics import fvd

TEST_WIDTH = 1 / 16
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")


# ---- a random Inception-I3D with the TorchScript file's interface --------------------------


def same_padding(size: list[int], kernel: list[int], stride: list[int]) -> list[int]:
    """TensorFlow "SAME" padding of a (T, H, W) input, in F.pad's order (W, H, T pairs)."""
    pads: list[int] = []
    for dim in [2, 1, 0]:
        out = (size[dim] + stride[dim] - 1) // stride[dim]
        total = max((out - 1) * stride[dim] + kernel[dim] - size[dim], 0)
        pads.append(total // 2)
        pads.append(total - total // 2)
    return pads


class Unit3D(nn.Module):
    """Conv3d with SAME padding, then batch norm and ReLU (the logits layer: bias only)."""

    def __init__(self, cin: int, cout: int, kernel=(1, 1, 1), stride=(1, 1, 1), norm=True):
        super().__init__()
        self.kernel, self.stride, self.activate = list(kernel), list(stride), norm
        self.conv = nn.Conv3d(cin, cout, kernel, stride, bias=not norm)
        self.norm = nn.BatchNorm3d(cout, eps=1e-3) if norm else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = F.pad(x, same_padding(list(x.shape[2:]), self.kernel, self.stride))
        x = self.norm(self.conv(x))
        return F.relu(x) if self.activate else x


class MaxPoolSame(nn.Module):
    def __init__(self, kernel, stride):
        super().__init__()
        self.kernel, self.stride = list(kernel), list(stride)

    def forward(self, x: Tensor) -> Tensor:
        pads = same_padding(list(x.shape[2:]), self.kernel, self.stride)
        return F.max_pool3d(F.pad(x, pads, value=float("-inf")), self.kernel, self.stride)


class Mixed(nn.Module):
    """An Inception block: 1x1 | 1x1->3x3 | 1x1->3x3 | maxpool->1x1, concatenated."""

    def __init__(self, cin: int, c: list[int]):
        super().__init__()
        self.branch0 = Unit3D(cin, c[0])
        self.branch1 = nn.Sequential(Unit3D(cin, c[1]), Unit3D(c[1], c[2], (3, 3, 3)))
        self.branch2 = nn.Sequential(Unit3D(cin, c[3]), Unit3D(c[3], c[4], (3, 3, 3)))
        self.branch3 = nn.Sequential(MaxPoolSame((3, 3, 3), (1, 1, 1)), Unit3D(cin, c[5]))
        self.out_channels = c[0] + c[2] + c[4] + c[5]

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], 1)


MIXED = {  # Inception-I3D's blocks: (1x1, 3x3 reduce, 3x3, 3x3 reduce, 3x3, pool proj)
    "3b": [64, 96, 128, 16, 32, 32],
    "3c": [128, 128, 192, 32, 96, 64],
    "4b": [192, 96, 208, 16, 48, 64],
    "4c": [160, 112, 224, 24, 64, 64],
    "4d": [128, 128, 256, 24, 64, 64],
    "4e": [112, 144, 288, 32, 64, 64],
    "4f": [256, 160, 320, 32, 128, 128],
    "5b": [256, 160, 320, 32, 128, 128],
    "5c": [384, 192, 384, 48, 128, 128],
}


class InceptionI3D(nn.Module):
    """Inception-I3D, 400 Kinetics logits; ``width`` scales every channel count."""

    def __init__(self, width: float = 1.0, classes: int = 400):
        super().__init__()

        def w(c: int) -> int:
            return max(1, round(c * width))

        layers: list[nn.Module] = [
            Unit3D(3, w(64), (7, 7, 7), (2, 2, 2)),
            MaxPoolSame((1, 3, 3), (1, 2, 2)),
            Unit3D(w(64), w(64)),
            Unit3D(w(64), w(192), (3, 3, 3)),
            MaxPoolSame((1, 3, 3), (1, 2, 2)),
        ]
        channels = w(192)
        for name, widths in MIXED.items():
            if name == "4b":
                layers.append(MaxPoolSame((3, 3, 3), (2, 2, 2)))
            if name == "5b":
                layers.append(MaxPoolSame((2, 2, 2), (2, 2, 2)))
            block = Mixed(channels, [w(c) for c in widths])
            layers.append(block)
            channels = block.out_channels
        self.features = nn.Sequential(*layers)
        self.logits = Unit3D(channels, classes, norm=False)
        for module in self.modules():  # He init keeps activations O(1) through the depth
            if isinstance(module, nn.Conv3d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")

    def forward(
        self, x: Tensor, rescale: bool = False, resize: bool = False, return_features: bool = False
    ) -> Tensor:
        x = x.float()
        if rescale:  # [0, 255] -> [-1, 1], as the published file does
            x = x / 255.0 * 2.0 - 1.0
        if resize:
            x = F.interpolate(x, size=(x.shape[2], 224, 224), mode="trilinear", align_corners=False)
        x = F.avg_pool3d(self.features(x), (2, 7, 7), (1, 1, 1))
        logits = self.logits(x).squeeze(4).squeeze(3).mean(2)  # TF-Hub's "Mean": over time
        return logits if return_features else F.softmax(logits, dim=1)


def save_random_i3d(path: Path, width: float = TEST_WIDTH, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    torch.jit.script(InceptionI3D(width).eval()).save(str(path))
    return path


# ---- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def i3d_file(tmp_path_factory) -> Path:
    return save_random_i3d(tmp_path_factory.mktemp("i3d") / fvd.I3D.filename)


@pytest.fixture
def weights_dir(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "weights"
    root.mkdir()
    monkeypatch.setenv("AUHEAD_BENCH_WEIGHTS", str(root))
    return root


@pytest.fixture
def cached_i3d(weights_dir, i3d_file) -> Path:
    """The random TorchScript placed where ``auhead-bench weights pull stylegan_v_i3d`` puts it."""
    target = local_path(fvd.I3D)
    target.parent.mkdir(parents=True)
    shutil.copyfile(i3d_file, target)
    return target


def synthetic_video(frames: int, seed: int, size: int = 40, chunk_frames: int = 32) -> VideoView:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8)
    return VideoView.from_arrays(images, path=Path(f"v{seed}.mp4"), chunk_frames=chunk_frames)


def with_logits(logits: np.ndarray, frames: int | None = None, key=fvd.I3DLogits.id):
    """A video carrying precomputed logits (and frames of matching length)."""
    count = frames if frames is not None else len(logits) * fvd.CLIP_FRAMES
    return VideoView.from_arrays(
        np.zeros((count, 2, 2, 3), np.uint8), features={key: {"logits": logits}},
        path=Path("x.mp4"), content_sha256="sha",
    )  # fmt: skip


def update(metric: fvd.FVDFull, generated: VideoView, ground_truth: VideoView, clip: Clip):
    metric.update(ClipView(clip, generated, ground_truth))


def clip(ident: str = "c0") -> Clip:
    return Clip(id=ident, video=Path(f"{ident}.mp4"))


# ---- StyleGAN-V, restated ----------------------------------------------------------------


def stylegan_v_features(detector, frames: np.ndarray) -> np.ndarray:
    """metric_utils.compute_feature_stats_for_dataset with temporal_detector=True: uint8 clips
    [batch, t, c, h, w] permuted to [batch, c, t, h, w], then
    detector(images, rescale=True, resize=True, return_features=True)."""
    count = len(frames) // 16
    clips = torch.from_numpy(frames[: count * 16].reshape(count, 16, *frames.shape[1:]))
    images = clips.permute(0, 1, 4, 2, 3).permute(0, 2, 1, 3, 4).contiguous()
    with torch.no_grad():
        return detector(images, rescale=True, resize=True, return_features=True).numpy()


def stylegan_v_fvd(feats_gen: np.ndarray, feats_real: np.ndarray, eps: float = 0.0) -> float:
    """FeatureStats (float64 raw sums; get_mean_cov: cov = raw_cov / n - outer(mean, mean))
    and compute_fvd (src/metrics/frechet_video_distance.py): m = |mu_gen - mu_real|^2;
    s = sqrtm(sigma_gen . sigma_real); fvd = real(m + Tr(sigma_gen + sigma_real - 2 s)).
    ``eps`` (0 in StyleGAN-V) adds eps * I to both covariances, for rank-deficient tests."""

    def mean_cov(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x64 = x.astype(np.float32).astype(np.float64)
        mean = x64.sum(axis=0) / len(x64)
        cov = (x64.T @ x64) / len(x64) - np.outer(mean, mean)
        return mean, cov + eps * np.eye(x.shape[1])

    mu_gen, sigma_gen = mean_cov(feats_gen)
    mu_real, sigma_real = mean_cov(feats_real)
    m = np.square(mu_gen - mu_real).sum()
    s = scipy.linalg.sqrtm(np.dot(sigma_gen, sigma_real))
    return float(np.real(m + np.trace(sigma_gen + sigma_real - s * 2)))


# ---- tests -------------------------------------------------------------------------------


def test_weights_are_declared_with_source_and_unpublished_hash():
    spec = registered_weights()["stylegan_v_i3d"]
    assert spec.filename == "i3d_torchscript.pt" and "ge9e5ujwgetktms" in spec.source
    assert spec.sha256 is None  # StyleGAN-V publishes none; the file's hash is recorded instead


def test_missing_weights_are_reported_with_the_pull_command(weights_dir):
    with pytest.raises(WeightsMissing, match="auhead-bench weights pull stylegan_v_i3d"):
        fvd.FVDFull().setup("cpu")
    assert fvd.I3DLogits().weights() == {}


def test_a_corrupt_file_is_a_clear_error(weights_dir):
    target = local_path(fvd.I3D)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"<html>dropbox login page</html>")
    with pytest.raises(BenchError, match=r"i3d_torchscript.pt: not a TorchScript archive .*"
                       r"--force"):
        fvd.I3DLogits().setup("cpu")


def test_windows_and_fvd_match_stylegan_v_on_the_same_clips_and_file(cached_i3d):
    """Our extractor and metric vs StyleGAN-V's model call, statistics and formula. Three
    clips per side cannot give a full-rank 400x400 covariance, so both add the same eps * I."""
    extractor, eps = fvd.I3DLogits(), 1e-3
    extractor.setup("cpu")
    # chunks of 10 and 32 frames: windows straddle chunk boundaries
    gen, gt = synthetic_video(48, seed=10, chunk_frames=10), synthetic_video(50, seed=20)
    ours_gen, ours_gt = extractor.extract(gen)["logits"], extractor.extract(gt)["logits"]
    assert ours_gen.shape == (3, 400) and ours_gen.dtype == np.float32  # frames 0-15, 16-31, ...
    detector = torch.jit.load(str(cached_i3d)).eval()
    ref_gen = stylegan_v_features(detector, gen.all_frames())
    ref_gt = stylegan_v_features(detector, gt.all_frames())
    np.testing.assert_allclose(ours_gen, ref_gen, rtol=1e-5, atol=1e-5)
    metric = fvd.FVDFull(fvd.FVDOptions(diagonal_eps=eps))
    update(metric, gen.with_features({extractor.id: {"logits": ours_gen}}),
           gt.with_features({extractor.id: {"logits": ours_gt}}), clip())
    assert metric.summary() == {"videos": 1, "generated_clips": 3, "ground_truth_clips": 3}
    assert metric.compute() == pytest.approx(stylegan_v_fvd(ref_gen, ref_gt, eps), rel=1e-4)
    assert extractor.weights() == {"i3d_torchscript.pt": fvd.file_sha256(cached_i3d)}
    assert extractor.extract(synthetic_video(12, seed=2))["logits"].shape == (0, 400)


def test_full_rank_fvd_matches_stylegan_v_and_is_zero_for_identical_sets():
    """500 clips per side (synthetic logits): the default path, no regulariser."""
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(400, 400)) / 20
    gen = (rng.normal(size=(500, 400)) @ mix + 3.0).astype(np.float32)
    real = (rng.normal(size=(500, 400)) @ mix * 1.2 + 3.1).astype(np.float32)
    metric, same = fvd.FVDFull(), fvd.FVDFull()
    for k in range(0, 500, 50):  # 10 videos of 50 windows each
        g, r = with_logits(gen[k : k + 50]), with_logits(real[k : k + 50])
        update(metric, g, r, clip(f"c{k}"))
        update(same, g, g, clip(f"c{k}"))
    assert metric.compute() == pytest.approx(stylegan_v_fvd(gen, real), rel=1e-4)
    assert abs(same.compute()) < 1e-9 * np.trace(np.cov(gen, rowvar=False))


def test_lengths_are_aligned_by_truncation_and_short_clips_skipped():
    rng = np.random.default_rng(1)
    metric = fvd.FVDFull(fvd.FVDOptions(diagonal_eps=1e-6))
    # 50 generated frames (3 windows) vs 35 ground-truth frames (2): both sides use 2.
    update(metric, with_logits(rng.normal(size=(3, 400)), 50),
           with_logits(rng.normal(size=(2, 400)), 35), clip())
    assert metric.summary() == {"videos": 1, "generated_clips": 2, "ground_truth_clips": 2}
    with pytest.raises(ClipSkipped, match="shorter than 16 frames"):
        update(metric, with_logits(rng.normal(size=(1, 400)), 20),
               with_logits(np.zeros((0, 400)), 12), clip("short"))
    first = fvd.FVDFull(fvd.FVDOptions(clips="first"))
    update(first, with_logits(rng.normal(size=(3, 400))), with_logits(rng.normal(size=(3, 400))),
           clip())
    assert first.summary()["generated_clips"] == 1 and first.protocol()["clips"] == "first"


def test_too_few_clips_is_a_clear_error_not_nan():
    rng = np.random.default_rng(2)
    metric = fvd.FVDFull()
    update(metric, with_logits(rng.normal(size=(5, 400))), with_logits(rng.normal(size=(5, 400))),
           clip())
    with pytest.raises(BenchError, match=r"5 generated and 5 ground-truth 16-frame clips are too "
                       r"few .*need at least 401 .*diagonal_eps"):
        metric.compute()
    with pytest.raises(BenchError, match="no generated 16-frame clips"):
        fvd.FVDFull().compute()


def test_nan_features_are_an_error_naming_the_clip():
    metric = fvd.FVDFull()
    bad = np.ones((2, 400))
    bad[1, 7] = np.nan
    with pytest.raises(BenchError, match=r"clip c9 \(ground truth\): 1 of 2 feature rows"):
        update(metric, with_logits(np.ones((2, 400))), with_logits(bad), clip("c9"))
    assert metric.generated.count == 0  # nothing of the bad clip was folded in


class FixedTrack(Extractor):
    """A face track with the same box in every frame (stands in for the dlib track)."""

    id = "face_track"
    description = "fixed boxes"
    version = "1"

    def params(self):
        return {"detector": "fixed"}

    def extract(self, video):
        return {"boxes": np.tile([[8, 6, 30, 34]], (video.frame_count(), 1)).astype(np.float32)}


def test_face_variant_crops_224_from_the_face_track(tmp_path):
    extractor = fvd.I3DLogitsFace()
    assert extractor.needs == ("frames", "face_track")
    boxes = np.tile([[8, 6, 30, 34]], (16, 1)).astype(np.float32)
    video = synthetic_video(16, seed=3, chunk_frames=5)  # boxes follow each chunk's start
    video = video.with_features({"face_track": {"boxes": boxes}})
    crops = np.concatenate(list(extractor.frame_chunks(video)))
    assert crops.shape == (16, 224, 224, 3)
    np.testing.assert_array_equal(crops, crop_faces(video.all_frames(), boxes, size=224, scale=1.3))
    # The face track's identity is part of the face variant's: nested in its feature spec.
    registry = Registry(pluggy.PluginManager("auhead_bench"), [])
    plugin = PluginInfo("tests", "tests", "tests", "0")
    registry.add("extractor", FixedTrack, plugin)
    registry.add("extractor", fvd.I3DLogitsFace, plugin)
    spec = FeatureStore(registry, Cache(tmp_path / "cache"), "cpu").spec(extractor.id)
    assert spec["needs"]["face_track"] == {
        "id": "face_track", "version": "1", "params": {"detector": "fixed"}, "weights": {}
    }
    assert fvd.FVDFace().protocol()["crop"] == "face" and fvd.FVDFace.needs == (extractor.id,)


def test_stylegan_v_clips_are_frame_0_and_a_seeded_start_recorded(cached_i3d):
    """The fvd2048_16f extractor embeds frames [0, 16) and [s, s + 16) with s drawn from the
    seed and the video's sha256; the metric folds generated-first vs ground-truth-seeded and
    records every start; the value is StyleGAN-V's formula on those clips (singular here:
    3 videos, used as they are)."""
    extractor = fvd.I3DLogitsStyleGANV()
    extractor.setup("cpu")
    detector = torch.jit.load(str(cached_i3d)).eval()
    metric = fvd.FVDStyleGANVFull()
    gens, reals = [], []
    for k, (length, chunk) in enumerate([(40, 7), (37, 32), (16, 5)]):
        gen = synthetic_video(length + 3, seed=30 + k, chunk_frames=chunk)
        real = VideoView.from_arrays(synthetic_video(length, seed=40 + k).all_frames(),
                                     content_sha256=f"sha{k}", chunk_frames=chunk)
        out_gen, out_real = extractor.extract(gen), extractor.extract(real)
        start = fvd.seeded_start(length, f"sha{k}")
        assert int(out_real["seeded_start"][0]) == start and 0 <= start <= length - 16
        frames = real.all_frames()
        ref = stylegan_v_features(detector, frames[start : start + 16])
        np.testing.assert_allclose(out_real["seeded"], ref, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(out_gen["first"],
                                   stylegan_v_features(detector, gen.all_frames()[:16]),
                                   rtol=1e-5, atol=1e-5)
        key = extractor.id
        update(metric, gen.with_features({key: out_gen}), real.with_features({key: out_real}),
               clip(f"c{k}"))
        gens.append(out_gen["first"])
        reals.append(ref)
    assert fvd.seeded_start(37, "sha1") == fvd.seeded_start(37, "sha1")  # no hidden state
    assert len({fvd.seeded_start(100, f"v{i}") for i in range(20)}) > 5  # starts do vary
    summary = metric.summary()
    assert summary["ground_truth_starts"] == {
        f"c{k}": fvd.seeded_start(n, f"sha{k}") for k, n in enumerate([40, 37, 16])
    }
    assert summary["generated_start"] == 0 and summary["start_seed"] == fvd.START_SEED
    assert summary["generated_clips"] == summary["ground_truth_clips"] == 3
    reference = stylegan_v_fvd(np.concatenate(gens), np.concatenate(reals))
    assert metric.compute() == pytest.approx(reference, rel=1e-3)
    short = extractor.extract(synthetic_video(12, seed=1))
    assert short["first"].shape == (0, 400) and int(short["seeded_start"][0]) == -1
    with pytest.raises(ClipSkipped, match="shorter than 16 frames .generated 12"):
        update(metric, synthetic_video(12, seed=1).with_features({extractor.id: short}),
               real.with_features({extractor.id: out_real}), clip("short"))


def test_stylegan_v_state_merges_starts_and_refuse_is_available():
    rng = np.random.default_rng(6)
    key = fvd.I3DLogitsStyleGANV.id

    def view(start: int) -> VideoView:
        return VideoView.from_arrays(np.zeros((20, 2, 2, 3), np.uint8), features={key: {
            "first": rng.normal(size=(1, 400)), "seeded": rng.normal(size=(1, 400)),
            "seeded_start": np.array([start]), "frame_count": np.array([20])}})

    metric = fvd.FVDStyleGANVFull()
    first, second = metric.accumulator(), metric.accumulator()
    update(first, view(0), view(3), clip("a"))
    update(second, view(0), view(4), clip("b"))
    received = metric.accumulator()
    received.import_state(second.export_state())
    first.merge(received)
    assert first.summary()["ground_truth_starts"] == {"a": 3, "b": 4}
    refuse = fvd.FVDStyleGANVFull(fvd.StyleGANVOptions(singular="refuse"))
    update(refuse, view(0), view(1), clip("a"))
    with pytest.raises(BenchError, match="need at least 401"):
        refuse.compute()


def test_the_all_windows_ids_are_named_for_what_they_are_and_old_ids_still_work():
    from auhead_bench.plugins import load_plugins

    registry = load_plugins()
    for old, new in (("fvd_i3d_16f_full", "fvd_i3d_16f_allwin_full"),
                     ("fvd_i3d_16f_face", "fvd_i3d_16f_allwin_face")):
        old_cls, new_cls = registry.get("metric", old).cls, registry.get("metric", new).cls
        assert issubclass(old_cls, new_cls) and "Deprecated alias" in old_cls.description
        assert "NOT its fvd2048_16f" in new_cls().protocol()["reference"]
    exact = registry.get("metric", "fvd_i3d_16f_stylegan_v_face").cls()
    assert exact.needs == ("i3d_logits_16f_stylegan_v_face",)
    assert exact.protocol()["clips_per_video"] == 1 and exact.protocol()["crop"] == "face"


def test_runner_scores_fvd_and_reports_missing_fid_weights(cached_i3d, video_factory, tmp_path):
    """The full run on a folder dataset: FVD computed (0 for the ground truth itself), FID
    reported as not computed with its pull command (its weights are not in the cache)."""
    video_factory("data/a.mp4", frames=32, seed=1)
    video_factory("data/b.mp4", frames=32, seed=2)
    config = RunConfig.model_validate({
        "name": "t",
        "datasets": [{"id": "folder", "options": {"root": str(tmp_path / "data")}}],
        "methods": ["ground_truth", "static_frame"],
        "metrics": [{"id": "fvd_i3d_16f_allwin_full", "options": {"diagonal_eps": 1e-3}},
                    "fid_inception_pool3_full"],
        "cache_dir": str(tmp_path / "cache"),
        "device": "cpu",
    })
    records = {r.method.id: r for r in Runner(config, tmp_path / "out").run()}
    truth, static = records["ground_truth"].metrics, records["static_frame"].metrics
    fvd_id = "fvd_i3d_16f_allwin_full"
    assert truth[fvd_id].status == "ok" and truth[fvd_id].n == 2
    assert abs(truth[fvd_id].value) < 1e-6
    assert static[fvd_id].value > 1e-3
    fid = static["fid_inception_pool3_full"]
    assert fid.status == "not_computed"
    assert "auhead-bench weights pull pytorch_fid_inception" in fid.reason
    assert records["static_frame"].extractors["i3d_logits_16f_full"]["weights"] == {
        "i3d_torchscript.pt": fvd.file_sha256(cached_i3d)
    }

