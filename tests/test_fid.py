"""FID against pytorch-fid itself, with random weights of the real architecture.

The TF-ported Inception weights cannot be downloaded here, so a random state dict of the
same network (torchvision's Inception-v3 with 1008 classes, the keys and shapes of
``pt_inception-2015-12-05-6726825d.pth``) is saved as that file, once into our weights cache
(loaded through the real loading code) and once into torch.hub's cache, from which
pytorch-fid's unmodified ``InceptionV3`` loads it. The parity test then compares the whole
chain on the same frames: our extractor + metric vs pytorch-fid's PNG loading, model forward,
``np.cov`` and ``calculate_frechet_distance``.

Inception costs ~0.1-0.5 s per frame on a CPU, so the parity test uses 4 frames per side.
Four samples give rank-3 covariances (full rank needs 2049): pytorch-fid's
``calculate_frechet_distance`` then runs with its own singular-product rule, untouched, and
ours with ``singular="pytorch_fid_offset"``; both branches of that rule are checked at a small
dimension below. The end-to-end check on demo clips is tests/test_parity_fid_fvd.py.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pluggy
import pytest
import scipy.linalg
import torch
import torchvision
from PIL import Image

from auhead_bench import BenchError, Clip, ClipView, Extractor, VideoView
from auhead_bench.cache import Cache
from auhead_bench.faces import crop_faces
from auhead_bench.features import FeatureStore
from auhead_bench.plugins import PluginInfo, Registry, load_plugins
from auhead_bench.weights import WeightsMissing, local_path, registered_weights
from auhead_bench_metrics import fid, frechet
from auhead_bench_metrics.frechet import (
    RunningGaussian,
    distance_between,
    frechet_distance,
    trace_sqrt_product,
)

EPS = 1e-6  # a ridge for tests that need a value from a few frames (diagonal_eps)


def random_inception_state() -> dict[str, torch.Tensor]:
    """A random state dict with the keys and shapes of the published .pth file.

    Convolutions get He initialisation: with batch norm at its initial running statistics
    (an identity), torchvision's own init lets activations grow to ~1e10 over 90 layers.
    """
    torch.manual_seed(0)
    net = torchvision.models.inception_v3(
        weights=None, aux_logits=False, num_classes=1008, init_weights=False
    )
    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    return net.state_dict()


@pytest.fixture(scope="module")
def inception_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("inception") / fid.INCEPTION.filename
    torch.save(random_inception_state(), path)
    return path


def video(frames: np.ndarray, name: str = "v.mp4") -> VideoView:
    return VideoView.from_arrays(frames, path=Path(name))


def random_frames(count: int, seed: int, size: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, size, size, 3), dtype=np.uint8)


def with_pool3(features: np.ndarray, key: str = fid.InceptionPool3.id) -> VideoView:
    frames = np.zeros((max(1, len(features)), 2, 2, 3), np.uint8)
    return VideoView.from_arrays(frames, features={key: {"pool3": features}}, content_sha256="sha")


def update(metric: fid.FIDFull, generated: VideoView, ground_truth: VideoView, clip: Clip):
    metric.update(ClipView(clip, generated, ground_truth))


def clip(ident: str = "c0") -> Clip:
    return Clip(id=ident, video=Path(f"{ident}.mp4"))


@pytest.fixture(scope="module")
def sides():
    return random_frames(4, seed=1), random_frames(4, seed=2)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory, inception_file, sides):
    """Our extractor's features of both sides, and the weights it records.

    The random file cannot match the published sha256, so while extracting, the spec is
    pinned to the random file's hash: locate() still verifies the file it loads."""
    root = tmp_path_factory.mktemp("weights")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AUHEAD_BENCH_WEIGHTS", str(root))
        spec = dataclasses.replace(fid.INCEPTION, sha256=fid.file_sha256(inception_file))
        patch.setattr(fid, "INCEPTION", spec)
        local_path(spec).parent.mkdir(parents=True)
        shutil.copyfile(inception_file, local_path(spec))
        extractor = fid.InceptionPool3()
        extractor.setup("cpu")
        features = [extractor.extract(video(frames))["pool3"] for frames in sides]
        return features, extractor.weights(), spec.sha256


@pytest.fixture(scope="module")
def our_features(extracted):
    return extracted[0]


# ---- parity with pytorch-fid -------------------------------------------------------------


def test_fid_matches_pytorch_fid_on_the_same_frames(
    our_features, sides, inception_file, tmp_path, monkeypatch
):
    from pytorch_fid.fid_score import calculate_activation_statistics, calculate_frechet_distance
    from pytorch_fid.inception import InceptionV3

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    shutil.copyfile(inception_file, hub / fid.INCEPTION.filename)  # no download: cached
    reference_model = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]])
    stats = []
    for k, frames in enumerate(sides):
        files = []
        for t, frame in enumerate(frames):
            files.append(tmp_path / f"side{k}_{t}.png")
            Image.fromarray(frame).save(files[-1])
        stats.append(
            calculate_activation_statistics(files, reference_model, 4, 2048, "cpu", 0)
        )
    (mu_gen, sigma_gen), (mu_gt, sigma_gt) = stats
    # pytorch-fid's own rule on its own statistics: nothing of ours added to its inputs
    reference = calculate_frechet_distance(mu_gen, sigma_gen, mu_gt, sigma_gt)

    metric = fid.FIDFullPNG()  # singular="pytorch_fid_offset"
    update(metric, with_pool3(our_features[0]), with_pool3(our_features[1]), clip())
    ours = metric.compute()
    np.testing.assert_allclose(our_features[0].mean(axis=0), mu_gen, rtol=1e-4, atol=1e-5)
    summary = metric.summary()
    assert summary == {"clips": 1, "generated_frames": 4, "ground_truth_frames": 4,
                       "offset_applied": summary["offset_applied"]}
    assert ours == pytest.approx(reference, rel=1e-4) and ours > 0


def _stream_of(x: np.ndarray) -> RunningGaussian:
    stream = RunningGaussian()
    stream.update(x, "test")
    return stream


def test_offset_rule_is_pytorch_fids_in_both_branches(monkeypatch):
    """``pytorch_fid_offset`` against ``calculate_frechet_distance`` on the same statistics
    (64-d, 12 samples: singular). scipy 1.17's sqrtm returns a finite root here (no offset);
    a stand-in sqrtm that returns NaN for singular input (the same function for both sides)
    exercises the offset branch too."""
    from pytorch_fid.fid_score import calculate_frechet_distance

    rng = np.random.default_rng(7)
    x, y = np.abs(rng.normal(size=(12, 64))), np.abs(rng.normal(size=(12, 64))) + 0.3
    mu_x, mu_y = x.mean(0), y.mean(0)
    s_x, s_y = np.cov(x, rowvar=False), np.cov(y, rowvar=False)

    def ours() -> frechet.Distance:
        return distance_between(_stream_of(x), _stream_of(y), metric_id="t", unit="frames",
                                ddof=1, singular="pytorch_fid_offset")

    finite = ours()
    assert not finite.offset_applied
    assert finite.value == pytest.approx(calculate_frechet_distance(mu_x, s_x, mu_y, s_y),
                                         rel=1e-6)
    real_sqrtm = scipy.linalg.sqrtm

    def sqrtm_nan_when_singular(matrix, *args, **kwargs):
        if np.linalg.matrix_rank(matrix) < len(matrix):
            root = np.full(matrix.shape, np.nan)
            return (root, np.inf) if kwargs.get("disp") is False else root
        return real_sqrtm(matrix, *args, **kwargs)

    monkeypatch.setattr(scipy.linalg, "sqrtm", sqrtm_nan_when_singular)
    offset = ours()
    theirs = calculate_frechet_distance(mu_x, s_x, mu_y, s_y)  # prints its offset message
    assert offset.offset_applied and offset.value == pytest.approx(theirs, rel=1e-6)
    # the offset is inside the square root only: the traces are the unregularised ones
    ridge = distance_between(_stream_of(x), _stream_of(y), metric_id="t", unit="frames",
                             ddof=1, diagonal_eps=1e-6)
    assert ridge.value - offset.value == pytest.approx(2 * 64 * 1e-6, rel=1e-3)


def test_png_frames_are_lossless_and_jpeg95_is_what_cv2_writes(tmp_path):
    """The PNG mode shares the decoded frames' features because the round trip is the
    identity; the JPEG mode's in-memory round trip gives what pytorch-fid reads from
    ``cv2.imwrite`` JPEG dumps (default quality 95), pixel for pixel."""
    import cv2

    frames = random_frames(3, seed=9)
    for t, frame in enumerate(frames):
        cv2.imwrite(str(tmp_path / f"{t}.png"), frame[..., ::-1])
        cv2.imwrite(str(tmp_path / f"{t}.jpg"), frame[..., ::-1])  # cv2's default quality
    png = np.stack([np.asarray(Image.open(tmp_path / f"{t}.png").convert("RGB"))
                    for t in range(3)])
    jpeg = np.stack([np.asarray(Image.open(tmp_path / f"{t}.jpg").convert("RGB"))
                     for t in range(3)])
    np.testing.assert_array_equal(png, frames)
    np.testing.assert_array_equal(fid.jpeg_round_trip(frames), jpeg)
    assert np.abs(jpeg.astype(int) - frames).max() > 0  # lossy: the mode is not a no-op
    extractor = fid.InceptionPool3Jpeg()
    chunks = list(extractor.frame_chunks(video(frames)))
    np.testing.assert_array_equal(np.concatenate(chunks), jpeg)
    assert fid.FIDFullPNG.needs == ("inception_pool3_full",)
    assert fid.FIDFullJPEG.needs == (extractor.id,) and "JPEG quality 95" in str(extractor.params())


def test_a_ridge_and_the_offset_rule_cannot_both_be_set():
    rng = np.random.default_rng(3)
    metric = fid.FIDFullPNG(fid.FIDExactOptions(diagonal_eps=1e-6))
    update(metric, with_pool3(rng.random((3, 2048))), with_pool3(rng.random((3, 2048))), clip())
    with pytest.raises(BenchError, match="two different rules"):
        metric.compute()


def test_fid_of_identical_frames_is_zero(our_features):
    metric = fid.FIDFull(fid.FIDOptions(diagonal_eps=EPS))
    update(metric, with_pool3(our_features[0]), with_pool3(our_features[0]), clip())
    trace = np.trace(np.cov(our_features[0], rowvar=False))
    assert abs(metric.compute()) < 1e-6 * trace


def test_features_are_finite_2048_d_and_recorded_with_the_file_hash(extracted):
    features, weights, sha256 = extracted
    assert all(f.shape == (4, 2048) and f.dtype == np.float32 for f in features)
    assert all(np.isfinite(f).all() and f.std() > 0 for f in features)
    assert weights == {fid.INCEPTION.filename: sha256}


# ---- the Fréchet distance and the running statistics --------------------------------------


def test_frechet_distance_of_known_gaussians():
    """Commuting (diagonal) covariances have a closed form; the general case is checked
    against the scipy.linalg.sqrtm formula pytorch-fid uses."""
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.1, 2, 50), rng.uniform(0.1, 2, 50)
    mu_1, mu_2 = rng.normal(size=50), rng.normal(size=50)
    closed = np.sum((mu_1 - mu_2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu_1, np.diag(a), mu_2, np.diag(b)) == pytest.approx(closed, rel=1e-12)
    x, y = rng.normal(size=(80, 64)), rng.normal(size=(80, 64)) @ rng.normal(size=(64, 64))
    s_1, s_2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root = scipy.linalg.sqrtm(s_1 @ s_2)
    assert trace_sqrt_product(s_1, s_2) == pytest.approx(np.trace(root).real, rel=1e-9)
    assert frechet_distance(mu_1[:64], s_1, mu_1[:64], s_1) == pytest.approx(0, abs=1e-9)


def test_running_statistics_equal_numpy_far_from_zero():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 20)) * 0.01 + 1e4  # large mean, small spread
    stream = RunningGaussian()
    for batch in np.array_split(x, 7):
        stream.update(batch, "test")
    unbiased, biased = stream.gaussian(ddof=1), stream.gaussian(ddof=0)
    np.testing.assert_allclose(unbiased.mean, x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(unbiased.covariance, np.cov(x, rowvar=False), rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(biased.covariance, np.cov(x, rowvar=False, bias=True), rtol=1e-7,
                               atol=1e-12)
    assert stream.count == 300


def _sums(stream: RunningGaussian) -> tuple[np.ndarray, np.ndarray]:
    """Mean and scatter (sum of outer products about the mean), shift-free."""
    g = stream.gaussian(ddof=0)
    return g.mean, g.covariance * stream.count


@pytest.mark.parametrize("offset_b", [0.0, 50.0])  # B's first batch: same or another shift
def test_merging_two_streams_equals_folding_both_into_one(offset_b):
    rng = np.random.default_rng(3)
    a = rng.normal(size=(40, 12)) * 0.1 + 1e3
    b = rng.normal(size=(30, 12)) * 0.3 + 1e3 + offset_b
    one = RunningGaussian()
    for batch in (a[:25], a[25:], b[:10], b[10:]):
        one.update(batch, "test")
    first, second = RunningGaussian(), RunningGaussian()
    for batch in (a[:25], a[25:]):
        first.update(batch, "test")
    for batch in (b[:10], b[10:]):
        second.update(batch, "test")
    assert first.merge(second) is first and first.count == one.count == 70
    for merged, folded in zip(_sums(first), _sums(one), strict=True):
        np.testing.assert_allclose(merged, folded, rtol=1e-12, atol=1e-12 * np.abs(folded).max())
    np.testing.assert_allclose(_sums(second)[0], b.mean(0), rtol=1e-12)  # other side untouched


def test_merging_an_empty_side_changes_nothing_or_copies():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(20, 5)) + 7
    full = RunningGaussian(5)
    full.update(x, "test")
    before = _sums(full)
    full.merge(RunningGaussian(5))  # empty other: unchanged
    assert full.count == 20 and _same(_sums(full), before)
    empty = RunningGaussian(5).merge(full)  # empty self: takes a copy, not a reference
    assert empty.count == 20 and _same(_sums(empty), before)
    full.update(x, "test")
    assert empty.count == 20
    with pytest.raises(BenchError, match="cannot merge 3-d"):
        full.merge(_stream(np.zeros((2, 3))))


def _same(left: tuple[np.ndarray, ...], right: tuple[np.ndarray, ...]) -> bool:
    return all(np.array_equal(u, v) for u, v in zip(left, right, strict=True))


def _stream(x: np.ndarray) -> RunningGaussian:
    stream = RunningGaussian()
    stream.update(x, "test")
    return stream


def test_fid_state_is_declared_exported_and_merged():
    """Two accumulators of one metric, one per half of the clips, merged after an export /
    import round trip (what a Ray task sends), give the value of one that saw every clip."""
    rng = np.random.default_rng(5)
    metric = fid.FIDFull(fid.FIDOptions(diagonal_eps=1e-6))
    assert metric.mergeable and set(metric.export_state()) == {
        "generated", "ground_truth", "videos"
    }
    clips = [(rng.random((6, 2048)), rng.random((5, 2048)) + i) for i in range(4)]
    whole, first, second = metric.accumulator(), metric.accumulator(), metric.accumulator()
    for index, (gen, ref) in enumerate(clips):
        whole.update(ClipView(clip(f"c{index}"), with_pool3(gen), with_pool3(ref)))
        (first if index < 2 else second).update(ClipView(clip(), with_pool3(gen), with_pool3(ref)))
    assert metric.videos == 0 and metric.generated.count == 0  # accumulators are separate
    received = metric.accumulator()
    received.import_state(second.export_state())
    first.merge(received)
    assert first.summary() == whole.summary() == {
        "clips": 4, "generated_frames": 24, "ground_truth_frames": 20
    }
    assert first.compute() == pytest.approx(whole.compute(), rel=1e-9)
    first.reset()
    assert first.summary()["clips"] == 0 and first.generated.count == 0


def test_a_metric_without_declared_state_keeps_working_but_cannot_merge():
    from auhead_bench import DistributionMetric

    class Count(DistributionMetric):
        id = "count"
        description = "clips seen"
        higher_is_better = True

        def reset(self):
            self.n = 0

        def update(self, generated, ground_truth, clip):
            self.n += 1

        def compute(self):
            return float(self.n)

    metric = Count()
    fresh = metric.accumulator()
    fresh.update(None, None, clip())
    assert (fresh.compute(), metric.compute(), metric.mergeable) == (1.0, 0.0, False)
    with pytest.raises(TypeError, match="declares no state"):
        metric.merge(fresh)
    with pytest.raises(TypeError, match="declares no state"):
        metric.export_state()


# ---- bad input ---------------------------------------------------------------------------


def test_too_few_frames_is_a_clear_error_not_nan():
    rng = np.random.default_rng(2)
    metric = fid.FIDFull()
    update(metric, with_pool3(rng.random((10, 2048))), with_pool3(rng.random((12, 2048))), clip())
    with pytest.raises(BenchError, match=r"10 generated and 12 ground-truth frames are too few "
                       r"for a full-rank 2048x2048 covariance \(need at least 2049 per side\)"):
        metric.compute()
    single = fid.FIDFull(fid.FIDOptions(diagonal_eps=EPS))
    update(single, with_pool3(rng.random((1, 2048))), with_pool3(rng.random((1, 2048))), clip())
    with pytest.raises(BenchError, match="too few for a covariance"):
        single.compute()


def test_nan_features_are_an_error_naming_the_clip():
    metric = fid.FIDFull()
    bad = np.ones((3, 2048), np.float32)
    bad[2, 0] = np.nan
    with pytest.raises(BenchError, match=r"clip c7 \(generated\): 1 of 3 feature rows"):
        update(metric, with_pool3(bad), with_pool3(np.ones((3, 2048))), clip("c7"))
    assert metric.ground_truth.count == 0  # nothing of the bad clip was folded in


def test_missing_weights_are_reported_with_the_pull_command(tmp_path, monkeypatch):
    monkeypatch.setenv("AUHEAD_BENCH_WEIGHTS", str(tmp_path))
    with pytest.raises(WeightsMissing, match="auhead-bench weights pull pytorch_fid_inception"):
        fid.FIDFull().setup("cpu")
    with pytest.raises(WeightsMissing, match="auhead-bench weights pull pytorch_fid_inception"):
        fid.InceptionPool3().setup("cpu")
    assert fid.InceptionPool3().weights() == {}


def test_a_state_dict_of_another_network_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("AUHEAD_BENCH_WEIGHTS", str(tmp_path))
    path = local_path(fid.INCEPTION)
    path.parent.mkdir(parents=True)
    torch.save({"fc.weight": torch.zeros(1000, 2048)}, path)  # e.g. an ImageNet classifier
    monkeypatch.setattr(fid, "INCEPTION", dataclasses.replace(fid.INCEPTION,
                                                              sha256=fid.file_sha256(path)))
    with pytest.raises(BenchError, match=r"not pytorch-fid's Inception weights .*--force"):
        fid.InceptionPool3().setup("cpu")


# ---- registration and the face-crop policy ------------------------------------------------


def test_plugins_declare_weights_extractors_and_metrics():
    spec = registered_weights()["pytorch_fid_inception"]
    assert spec.source.endswith("/fid_weights/pt_inception-2015-12-05-6726825d.pth")
    assert spec.sha256.startswith("6726825d")
    registry = load_plugins()
    for ident in ("inception_pool3_full", "inception_pool3_face", "inception_pool3_full_jpeg95"):
        assert registry.get("extractor", ident)
    for ident in ("fid_inception_pool3_full_png", "fid_inception_pool3_full_jpeg95"):
        protocol = registry.get("metric", ident).cls().protocol()
        assert protocol["singular"] == "pytorch_fid_offset"
        assert "calculate_fid_given_paths" in protocol["reference"]
    assert registry.get("metric", "fid_inception_pool3_full").cls().protocol()["singular"] == \
        "refuse"
    full = registry.get("metric", "fid_inception_pool3_full").cls()
    face = registry.get("metric", "fid_inception_pool3_face").cls()
    assert full.protocol()["crop"] == "full" and face.protocol()["crop"] == "face"
    assert full.higher_is_better is False and face.needs == ("inception_pool3_face",)


class FixedTrack(Extractor):
    """A face track with the same box in every frame (stands in for the dlib track)."""

    id = "face_track"
    description = "fixed boxes"
    version = "1"

    def params(self):
        return {"detector": "fixed"}

    def extract(self, video):
        return {"boxes": np.tile([[10, 8, 40, 48]], (video.frame_count(), 1))}


def test_face_variant_embeds_299_crops_from_the_face_track(tmp_path):
    extractor = fid.InceptionPool3Face()
    assert extractor.needs == ("frames", "face_track")
    frames = random_frames(3, seed=5)
    boxes = np.tile([[10, 8, 40, 48]], (3, 1))
    view = VideoView.from_arrays(frames, features={"face_track": {"boxes": boxes}}, chunk_frames=2)
    crops = np.concatenate(list(extractor.frame_chunks(view)))  # boxes follow chunk.start
    expected = crop_faces(frames, boxes, size=299, scale=1.3)
    np.testing.assert_array_equal(crops, expected)
    params = extractor.params()
    assert params["crop"] == "face" and params["crop_size"] == 299
    # The face track's identity is part of the face variant's: nested in its feature spec.
    registry = Registry(pluggy.PluginManager("auhead_bench"), [])
    plugin = PluginInfo("tests", "tests", "tests", "0")
    registry.add("extractor", FixedTrack, plugin)
    registry.add("extractor", fid.InceptionPool3Face, plugin)
    spec = FeatureStore(registry, Cache(tmp_path / "cache"), "cpu").spec(extractor.id)
    assert spec["params"] == params
    assert spec["needs"]["face_track"] == {
        "id": "face_track", "version": "1", "params": {"detector": "fixed"}, "weights": {}
    }


def test_identical_inputs_never_give_a_rounding_negative():
    rng = np.random.default_rng(0)
    for dim in (16, 64, 256, 512):
        x = rng.normal(size=(4 * dim, dim))
        mu, sigma = x.mean(0), np.cov(x, rowvar=False)
        assert 0.0 <= frechet_distance(mu, sigma, mu, sigma) < 1e-9 * np.trace(sigma)
    assert frechet_distance(mu, sigma, mu + 1, sigma) == pytest.approx(len(mu), rel=1e-6)
