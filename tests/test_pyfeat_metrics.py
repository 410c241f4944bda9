"""py-feat extractor (parity with a direct Detectorv1 call), AU error and emotion accuracy.

No py-feat weights can be downloaded here: every network py-feat loads is built with random
weights in the file format py-feat's loader reads (safetensors, torch checkpoints, a skops
file of sklearn scalers/PCA and xgboost classifiers), put in our weights cache and in a copy
of py-feat's own HF-hub cache, and both paths are run on the same frames.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from auhead_bench import ClipView, VideoView
from auhead_bench.clip import Clip
from auhead_bench.media import sha256_file, write_image
from auhead_bench.metric import ClipScore, ClipSkipped
from auhead_bench.weights import WeightsMissing, WeightsSpec, local_path, registered_weights
from auhead_bench_metrics import pyfeat
from auhead_bench_metrics.pyfeat import (
    AU_NAMES,
    AUF1,
    AUMAE,
    RESMASKNET_CLASSES,
    RESMASKNET_METRICS,
    PyFeatExpression,
)

EX = PyFeatExpression.id
COMMIT = "0" * 40


# ---- random networks in py-feat's file formats (shared with test_identity.py) ----------------


def _save_safetensors(module, path: Path, skip: str | None = None) -> None:
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in module.state_dict().items() if not skip or skip not in k}
    save_file(state, str(path))


def build_retinaface(path: Path) -> None:
    from feat.face_detectors.Retinaface.Retinaface_model import RETINAFACE_R34_CFG, RetinaFace

    _save_safetensors(RetinaFace(RETINAFACE_R34_CFG), path)


def build_mobilefacenet(path: Path) -> None:
    import torch
    from feat.landmark_detectors.mobilefacenet_test import MobileFaceNet

    torch.save({"state_dict": MobileFaceNet([112, 112], 136).state_dict()}, path)


def build_resmasknet_config(path: Path) -> None:
    path.write_text(json.dumps({"in_channels": 3, "num_classes": 7}))


def build_resmasknet(path: Path) -> None:
    import torch
    from feat.emo_detectors.ResMaskNet.resmasknet_test import ResMasking

    net = ResMasking("", in_channels=3)
    net.fc = torch.nn.Sequential(torch.nn.Dropout(0.4), torch.nn.Linear(512, 7))
    torch.save({"net": net.state_dict()}, path)


def build_xgb_au(path: Path) -> None:
    """py-feat's skops file: its XGBClassifier wrapper holding StandardScaler + PCA per face
    region (on 5408 HOG features) and one xgboost classifier per AU (on PCA + 136 landmarks)."""
    import skops.io
    import xgboost
    from feat.au_detectors.StatLearning.SL_test import XGBClassifier
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    hog = rng.normal(size=(30, 5408))
    parts = {}
    for region in ("upper", "lower", "full"):
        scaler = StandardScaler().fit(hog)
        parts[f"scaler_{region}"] = scaler
        parts[f"pca_model_{region}"] = PCA(n_components=4, random_state=0).fit(
            scaler.transform(hog)
        )
    wrapper = XGBClassifier()
    classifiers = {}
    for key in wrapper.au_keys:
        model = xgboost.XGBClassifier(n_estimators=3, max_depth=2, random_state=0)
        classifiers[key] = model.fit(rng.normal(size=(30, 4 + 136)), rng.integers(0, 2, 30))
    wrapper.load_weights(classifiers=classifiers, **parts)
    skops.io.dump(wrapper, path)


def build_arcface(path: Path) -> None:
    from feat.identity_detectors.arcface.arcface_model import ArcFace

    _save_safetensors(ArcFace(backbone="r50").net, path, skip="num_batches_tracked")


BUILDERS = {
    "pyfeat_retinaface_r34": build_retinaface,
    "pyfeat_mobilefacenet": build_mobilefacenet,
    "pyfeat_resmasknet_config": build_resmasknet_config,
    "pyfeat_resmasknet": build_resmasknet,
    "pyfeat_xgb_au": build_xgb_au,
    "pyfeat_arcface_r50": build_arcface,
}


def install_random_weights(root: Path, specs: tuple[WeightsSpec, ...]) -> tuple[WeightsSpec, ...]:
    """Build each file into the weights cache at ``root``; return the specs with their sha256
    set to the built files' (published hashes would rightly refuse random weights)."""
    import torch

    torch.manual_seed(0)
    built = []
    for spec in specs:
        path = root / spec.name / spec.filename
        path.parent.mkdir(parents=True, exist_ok=True)
        BUILDERS[spec.name](path)
        built.append(dataclasses.replace(spec, sha256=sha256_file(path)))
    return tuple(built)


def hub_cache(resources: Path, weights_root: Path, specs: tuple[WeightsSpec, ...]) -> None:
    """Lay the same files out as py-feat's own HF-hub cache (``feat/resources``) would hold."""
    for spec in specs:
        repo, filename = pyfeat.hub_location(spec)
        folder = resources / f"models--{repo.replace('/', '--')}"
        (folder / "refs").mkdir(parents=True, exist_ok=True)
        (folder / "refs" / "main").write_text(COMMIT)
        target = folder / "snapshots" / COMMIT / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(weights_root / spec.name / spec.filename)


def point_pyfeat_at(monkeypatch, resources: Path) -> None:
    """py-feat (and our lookup) use ``resources`` as py-feat's hub cache, offline."""
    import feat.detector
    import feat.utils.io
    import huggingface_hub.constants

    monkeypatch.setattr(feat.utils.io, "get_resource_path", lambda: str(resources))
    monkeypatch.setattr(feat.detector, "get_resource_path", lambda: str(resources))
    monkeypatch.setattr(pyfeat, "pyfeat_resource_dir", lambda: resources)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def decoded(frames: np.ndarray, features: dict | None = None, **kwargs) -> VideoView:
    return VideoView.from_arrays(frames, features=features, path=Path("video.mp4"), **kwargs)


# ---- the extractor against py-feat itself ----------------------------------------------------


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Random py-feat weights (~650 MB, ResMaskNet is full size) in our cache; removed after."""
    root = tmp_path_factory.mktemp("pyfeat_weights")
    specs = install_random_weights(root / "cache", PyFeatExpression.specs)
    hub_cache(root / "feat_resources", root / "cache", specs)
    yield root, specs
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pyfeat_env(weights, monkeypatch):
    root, specs = weights
    monkeypatch.setenv("AUHEAD_BENCH_WEIGHTS", str(root / "cache"))
    monkeypatch.setattr(PyFeatExpression, "specs", specs)
    point_pyfeat_at(monkeypatch, root / "feat_resources")
    return root, specs


def test_extractor_equals_a_direct_detectorv1_call(pyfeat_env, tmp_path):
    """Our arrays == py-feat's own Detectorv1 built from its offline hub cache, fed the same
    frames as image files through its documented image API."""
    from feat import Detectorv1

    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (3, 64, 80, 3), dtype=np.uint8)
    ours = PyFeatExpression()
    out = ours.extract(decoded(frames))

    reference = Detectorv1(**PyFeatExpression.models, device="cpu")
    reference.facepose_detector.keep_top_k = 1  # one face per frame, as the extractor keeps
    paths = []
    for t, frame in enumerate(frames):
        paths.append(str(tmp_path / f"{t}.png"))
        write_image(Path(paths[-1]), frame)
    fex = reference.detect(paths, data_type="image", batch_size=3, progress_bar=False)

    assert list(fex["frame"]) == [0, 1, 2]
    np.testing.assert_allclose(out["aus"], fex[list(AU_NAMES)].to_numpy(float), rtol=1e-4)
    np.testing.assert_allclose(
        out["emotions"], fex[list(RESMASKNET_CLASSES)].to_numpy(float), rtol=1e-4
    )
    x = fex[[f"x_{i}" for i in range(68)]].to_numpy(float)
    y = fex[[f"y_{i}" for i in range(68)]].to_numpy(float)
    np.testing.assert_allclose(out["landmarks"], np.stack([x, y], -1), rtol=1e-4, atol=1e-3)
    rect = fex[["FaceRectX", "FaceRectY", "FaceRectWidth", "FaceRectHeight"]].to_numpy(float)
    np.testing.assert_allclose(out["boxes"][:, :2], rect[:, :2], rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(out["boxes"][:, 2:], rect[:, :2] + rect[:, 2:], rtol=1e-4, atol=1e-3)
    assert out["aus"].shape == (3, 20) and out["emotions"].shape == (3, 7)
    assert out["detected"].all()
    np.testing.assert_allclose(out["emotions"].sum(axis=1), 1.0, rtol=1e-5)
    # The cache key and record carry the hash of every file the detector loaded.
    _, specs = pyfeat_env
    assert ours.weights() == {s.filename: s.sha256 for s in specs}
    assert ours.params()["faces_per_frame"].startswith("1")


def test_building_the_extractor_leaves_autograd_on(pyfeat_env):
    """py-feat's RetinaFace calls torch.set_grad_enabled(False) in its __init__: our builder
    restores the mode, so a training step later in the same process still has gradients."""
    assert torch.is_grad_enabled()
    PyFeatExpression().setup("cpu")
    assert torch.is_grad_enabled()


def test_frames_pyfeat_cannot_align_become_nan_rows(monkeypatch):
    """A singular face alignment in one frame costs that frame, not the video."""
    import torch

    extractor = PyFeatExpression()
    monkeypatch.setattr(extractor, "setup", lambda device: None)

    def detect(frames: np.ndarray) -> dict[str, np.ndarray]:
        if len(frames) > 1 or frames[0].max() == 1:  # the batch holds frame 1, which fails
            raise torch.linalg.LinAlgError("singular")
        arrays = pyfeat.no_face(1)
        arrays["aus"][:], arrays["detected"][:] = 0.5, True
        return arrays

    monkeypatch.setattr(extractor, "_detect", detect)
    frames = np.zeros((3, 8, 8, 3), np.uint8)
    frames[1] = 1
    out = extractor.extract(decoded(frames))
    assert out["detected"].tolist() == [True, False, True]
    assert np.isnan(out["aus"][1]).all() and (out["aus"][[0, 2]] == 0.5).all()
    assert out["landmarks"].shape == (3, 68, 2)


@pytest.mark.parametrize("chunk_frames", [7, 32, 64])
def test_pyfeat_runs_on_blocks_of_32_and_only_a_failing_block_frame_by_frame(
    monkeypatch, chunk_frames
):
    """Blocks of ``BLOCK`` frames whatever the chunking; a LinAlgError reruns its block only."""
    import torch

    extractor = PyFeatExpression()
    monkeypatch.setattr(extractor, "setup", lambda device: None)
    calls: list[tuple[int, int]] = []  # (first frame, frames) of each py-feat call

    def detect(frames: np.ndarray) -> dict[str, np.ndarray]:
        calls.append((int(frames[0, 0, 0, 0]), len(frames)))
        if (frames[:, 0, 0, 1] == 1).any():  # frame 35 cannot be aligned
            raise torch.linalg.LinAlgError("singular")
        arrays = pyfeat.no_face(len(frames))
        arrays["aus"][:] = frames[:, 0, 0, :1] / 100  # which frame each row came from
        arrays["detected"][:] = True
        return arrays

    monkeypatch.setattr(extractor, "_detect", detect)
    frames = np.zeros((45, 4, 4, 3), np.uint8)
    frames[:, 0, 0, 0] = np.arange(45)  # each frame carries its index
    frames[35, 0, 0, 1] = 1
    out = extractor.extract(decoded(frames, chunk_frames=chunk_frames))
    assert pyfeat.BLOCK == 32
    assert calls == [(0, 32), (32, 13)] + [(t, 1) for t in range(32, 45)]
    assert out["detected"].tolist() == [t != 35 for t in range(45)]
    assert np.isnan(out["aus"][35]).all()
    kept = np.arange(45) != 35
    np.testing.assert_allclose(out["aus"][kept, 0], np.arange(45)[kept] / 100, rtol=1e-6)
    assert {k: v.shape[0] for k, v in out.items()} == dict.fromkeys(out, 45)


def test_files_left_by_pyfeat_in_its_own_cache_are_used(pyfeat_env, monkeypatch, tmp_path):
    root, specs = pyfeat_env
    monkeypatch.setenv("AUHEAD_BENCH_WEIGHTS", str(tmp_path / "empty"))
    files = pyfeat.find_pyfeat_files(specs)
    assert set(files) == {pyfeat.hub_location(s) for s in specs}
    assert all(str(p).startswith(str(root / "feat_resources")) for p in files.values())


def test_missing_weights_make_metrics_not_computed(monkeypatch, tmp_path):
    monkeypatch.setenv("AUHEAD_BENCH_WEIGHTS", str(tmp_path / "cache"))
    monkeypatch.setattr(pyfeat, "pyfeat_resource_dir", lambda: tmp_path / "resources")
    for metric in (AUMAE(), AUF1(), RESMASKNET_METRICS[0]()):
        with pytest.raises(WeightsMissing, match="auhead-bench weights pull pyfeat_"):
            metric.setup("cpu")
    with pytest.raises(WeightsMissing, match="auhead-bench weights pull pyfeat_"):
        PyFeatExpression().setup("cpu")
    assert set(PyFeatExpression().weights().values()) == {"missing"}


def test_a_file_that_differs_from_its_published_hash_is_refused(pyfeat_env, monkeypatch):
    root, _ = pyfeat_env
    real = pyfeat.MOBILEFACENET  # the published sha256 of the real file
    assert local_path(real).is_file()  # our random file sits where the real one would
    monkeypatch.setattr(pyfeat, "pyfeat_resource_dir", lambda: root / "nowhere")
    with pytest.raises(WeightsMissing, match="do not match their sha256"):
        pyfeat.find_pyfeat_file(real)


def test_weights_are_declared_with_their_hub_locations():
    declared = registered_weights()
    for spec in pyfeat.PYFEAT_WEIGHTS:
        assert declared[spec.name] == spec
        repo, filename = pyfeat.hub_location(spec)
        assert repo.startswith("py-feat/") and filename
    assert pyfeat.hub_location(pyfeat.RESMASKNET) == (
        "py-feat/resmasknet",
        "ResMaskNet_Z_resmasking_dropout1_rot30.pth",
    )


# ---- AU error on hand-made arrays ------------------------------------------------------------


def features(aus: np.ndarray, emotions: np.ndarray | None = None) -> VideoView:
    count = len(aus)
    if emotions is None:
        emotions = np.full((count, 7), 1 / 7, np.float32)
    arrays = {"aus": np.asarray(aus, np.float32), "emotions": np.asarray(emotions, np.float32)}
    frames = np.zeros((count, 8, 8, 3), np.uint8)
    return decoded(frames, {EX: arrays})


CLIP = Clip(id="c", video=Path("gt.mp4"), emotion="happy")


def scored(metric, generated: VideoView, ground_truth: VideoView | None, clip: Clip = CLIP):
    return metric.score(ClipView(clip, generated, ground_truth))


def test_au_mae_per_au_over_frames_with_a_face_on_both_sides():
    gt = np.zeros((5, 20))
    gen = np.zeros((6, 20))  # one frame longer: truncated
    gen[:, 0] = 0.5  # AU01 off by 0.5 everywhere
    gen[1, 1] = 1.0  # AU02 off by 1 on frame 1
    gen[2] = np.nan  # no face in generated frame 2
    gt[3] = np.nan  # no face in ground-truth frame 3
    score = scored(AUMAE(), features(gen), features(gt))
    assert isinstance(score, ClipScore)
    assert score.info["frames"] == 3 and score.info["frames_compared"] == 5
    assert score.info["per_au"]["AU01"] == pytest.approx(0.5)
    assert score.info["per_au"]["AU02"] == pytest.approx(1 / 3)
    assert score.info["per_au"]["AU43"] == 0.0
    assert score.value == pytest.approx((0.5 + 1 / 3) / 20)


def test_au_metrics_skip_clips_without_a_shared_face():
    gen, gt = np.full((3, 20), np.nan), np.zeros((3, 20))
    for metric in (AUMAE(), AUF1()):
        with pytest.raises(ClipSkipped, match="both sides"):
            scored(metric, features(gen), features(gt))
        with pytest.raises(ClipSkipped, match="ground-truth"):
            scored(metric, features(gt), None)


def test_au_f1_at_threshold_half_ignores_aus_active_on_neither_side():
    gt = np.zeros((4, 20))
    gen = np.zeros((4, 20))
    gt[:, 0] = [0.9, 0.9, 0.1, 0.1]  # AU01 active in frames 0, 1
    gen[:, 0] = [0.5, 0.2, 0.7, 0.1]  # >= 0.5: tp on 0, fn on 1, fp on 2
    gt[:, 1] = gen[:, 1] = 0.8  # AU02 agrees everywhere: F1 = 1
    score = scored(AUF1(), features(gen), features(gt))
    assert score.info["aus_defined"] == 2
    assert score.info["per_au"]["AU01"] == pytest.approx(2 / 4)
    assert score.info["per_au"]["AU02"] == 1.0 and score.info["per_au"]["AU04"] is None
    assert score.value == pytest.approx(0.75)
    assert AUF1().protocol()["threshold"] == 0.5 and AUF1().protocol()["aus"] == list(AU_NAMES)
    with pytest.raises(ClipSkipped, match="F1 undefined"):
        scored(AUF1(), features(np.zeros((2, 20))), features(np.zeros((2, 20))))


# ---- emotion accuracy ------------------------------------------------------------------------


def metric(ident: str):
    return next(m for m in RESMASKNET_METRICS if m.id == ident)()


def probs(*winners: str) -> np.ndarray:
    """One row per frame, most probable class first."""
    rows = np.full((len(winners), 7), 0.05)
    for row, name in zip(rows, winners, strict=True):
        row[RESMASKNET_CLASSES.index(name)] = 0.7
    return rows


def test_emotion_ids_name_classifier_voting_and_side():
    assert [m.id for m in RESMASKNET_METRICS] == [
        "emotion_acc_resmasknet_video",
        "emotion_acc_resmasknet_video_gt_ceiling",
        "emotion_acc_resmasknet_frame",
        "emotion_acc_resmasknet_frame_gt_ceiling",
    ]
    protocol = metric("emotion_acc_resmasknet_video").protocol()
    assert protocol["label_map"]["contempt"] is None
    assert protocol["label_map"]["happy"] == "happiness"
    assert protocol["voting"].startswith("video")


def test_video_and_frame_voting_with_the_ground_truth_ceiling():
    gen = features(np.zeros((4, 20)), probs("happiness", "happiness", "sadness", "anger"))
    gt = features(np.zeros((4, 20)), probs("happiness", "neutral", "neutral", "neutral"))
    video = scored(metric("emotion_acc_resmasknet_video"), gen, gt)
    assert video.value == 1.0 and video.info["predicted"] == "happiness"
    assert video.info["ground_truth_correct"] == 0.0
    assert video.info["ground_truth_predicted"] == "neutral"
    frame = scored(metric("emotion_acc_resmasknet_frame"), gen, gt)
    assert frame.value == 0.5 and frame.info["ground_truth_correct"] == 0.25
    ceiling = scored(metric("emotion_acc_resmasknet_video_gt_ceiling"), gen, gt)
    assert ceiling.value == 0.0 and ceiling.info["predicted"] == "neutral"


def test_dataset_labels_map_to_classifier_classes():
    gen = features(np.zeros((2, 20)), probs("anger", "anger"))
    acc = metric("emotion_acc_resmasknet_video")
    for label in ("angry", "ANG", "anger"):  # MEAD, CREMA-D code, noun
        clip = dataclasses.replace(CLIP, emotion=label)
        assert scored(acc, gen, None, clip).value == 1.0
    with pytest.raises(ClipSkipped, match="contempt has no resmasknet class"):
        scored(acc, gen, None, dataclasses.replace(CLIP, emotion="contempt"))
    with pytest.raises(ClipSkipped, match="no emotion label"):
        scored(acc, gen, None, dataclasses.replace(CLIP, emotion=None))
    with pytest.raises(ClipSkipped, match="not one of"):
        scored(acc, gen, None, dataclasses.replace(CLIP, emotion="bored"))
    no_face = features(np.zeros((2, 20)), np.full((2, 7), np.nan))
    with pytest.raises(ClipSkipped, match="no frame with a face"):
        scored(acc, no_face, None)


# ---- HSEmotion, the second classifier ---------------------------------------------------------


def test_hsemotion_equals_the_hsemotion_package(tmp_path, monkeypatch):
    """Our safely read network inside hsemotion's recognizer == hsemotion unpickling the same
    whole-model file itself, on the same dlib face crops (those of the shared face track)."""
    import os

    import cv2
    import feat
    import timm
    import torch
    from hsemotion import facial_emotions

    from auhead_bench.faces import crop_faces
    from auhead_bench.media import read_image
    from auhead_bench_metrics.face_track import FaceTrack

    monkeypatch.setenv("AUHEAD_BENCH_WEIGHTS", str(tmp_path / "weights"))
    torch.manual_seed(0)
    network = timm.create_model("tf_efficientnet_b0")  # as HSEmotion trained it, random here
    network.classifier = torch.nn.Sequential(torch.nn.Linear(1280, 8))
    path = local_path(pyfeat.HSEMOTION)
    path.parent.mkdir(parents=True)
    torch.save(network, path)  # HSEmotion's format: the whole pickled timm model

    face = read_image(Path(os.path.dirname(feat.__file__)) / "tests" / "data" / "0-f1-su-ph.jpg")
    face = cv2.resize(face, (192, 192), interpolation=cv2.INTER_AREA)
    frames = np.stack([face, np.roll(face, 4, axis=1), np.full_like(face, 90), face[:, ::-1]])
    extractor = pyfeat.HSEmotionExpression()
    track = FaceTrack().extract(decoded(frames))
    out = extractor.extract(decoded(frames, {"face_track": track}))

    monkeypatch.setattr(facial_emotions, "get_model_path", lambda name: str(path))
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # the package's own torch.load
    reference = facial_emotions.HSEmotionRecognizer(model_name="enet_b0_8_best_vgaf")
    found = np.flatnonzero(track["detected"])
    crops = crop_faces(frames[found], track["boxes"][found], size=224, scale=1.2)
    _, scores = reference.predict_multi_emotions(list(crops), logits=False)

    assert list(found) == [0, 1, 3] and out["detected"].tolist() == [True, True, False, True]
    np.testing.assert_allclose(out["emotions"][found], scores, rtol=1e-4, atol=1e-6)
    assert np.isnan(out["emotions"][2]).all()
    assert extractor.weights() == {path.name: sha256_file(path)}
    hse = next(m for m in pyfeat.HSEMOTION_METRICS if m.id == "emotion_acc_hsemotion_video")
    assert hse().protocol()["label_map"]["contempt"] == "Contempt"

    # It does not track faces itself: it reads the face_track it declares, crops exactly the
    # boxes of the frames marked detected there, and is the same however the video is chunked.
    assert pyfeat.HSEmotionExpression.needs == ("frames", "face_track")
    with pytest.raises(KeyError, match="face_track"):
        extractor.extract(decoded(frames))
    boxes = np.array([[20, 30, 150, 170], [0, 0, 192, 192], [40, 10, 120, 100],
                      [-10, 5, 100, 130]], np.float32)  # fmt: skip
    given = {"boxes": boxes, "detected": np.array([True, False, True, True]),
             "landmarks": np.zeros((4, 68, 2), np.float32)}  # fmt: skip
    moved = extractor.extract(decoded(frames, {"face_track": given}, chunk_frames=1))
    chosen = [0, 2, 3]
    _, expected = reference.predict_multi_emotions(
        list(crop_faces(frames[chosen], boxes[chosen], size=224, scale=1.2)), logits=False
    )
    assert moved["detected"].tolist() == [True, False, True, True]
    np.testing.assert_allclose(moved["emotions"][chosen], expected, rtol=1e-4, atol=1e-6)
    assert np.isnan(moved["emotions"][1]).all()


def test_hsemotion_without_weights_is_not_computed(tmp_path, monkeypatch):
    monkeypatch.setenv("AUHEAD_BENCH_WEIGHTS", str(tmp_path))
    for made in pyfeat.HSEMOTION_METRICS:
        with pytest.raises(WeightsMissing, match="weights pull hsemotion_enet_b0_8_best_vgaf"):
            made().setup("cpu")
    assert pyfeat.HSEmotionExpression().weights() == {"enet_b0_8_best_vgaf.pt": "missing"}


def test_missing_weights_name_one_command_that_pulls_them_all(monkeypatch, tmp_path):
    monkeypatch.setenv("AUHEAD_BENCH_WEIGHTS", str(tmp_path / "cache"))
    monkeypatch.setattr(pyfeat, "pyfeat_resource_dir", lambda: tmp_path / "resources")
    names = " ".join(spec.name for spec in PyFeatExpression.specs)
    for metric in (AUMAE(), PyFeatExpression()):
        with pytest.raises(WeightsMissing) as missing:
            metric.setup("cpu")
        assert f"auhead-bench weights pull {names}`" in str(missing.value)
        assert str(missing.value).count("weights pull") == 1


def test_a_skops_file_naming_an_unexpected_type_is_refused(tmp_path):
    """py-feat trusts every type its AU model file names; through our hub only a fixed list."""
    import fractions

    import feat.detector
    import skops.io
    from sklearn.preprocessing import StandardScaler

    from auhead_bench.errors import BenchError

    tampered = StandardScaler()
    tampered.payload = fractions.Fraction(1, 3)  # any importable type a file could name
    bad = tmp_path / "xgb_au_classifier_v2.skops"
    skops.io.dump(tampered, bad)
    good = tmp_path / "good.skops"
    build_xgb_au(good)
    with pyfeat.pyfeat_hub({}):
        # py-feat's own call sequence: get_untrusted_types, then load(trusted=that)
        with pytest.raises(BenchError, match=r"refusing to load .*fractions\.Fraction"):
            feat.detector.get_untrusted_types(file=bad)
        trusted = feat.detector.get_untrusted_types(file=good)
        assert set(trusted) <= set(pyfeat.SKOPS_TRUSTED)
        assert feat.detector.load(good, trusted=trusted).classifiers
    # outside the context py-feat's own (trust-all) behaviour is untouched
    assert feat.detector.get_untrusted_types(file=bad) == ["fractions.Fraction"]


# ---- parity: py-feat's own video pipeline --------------------------------------------------------


def test_au_mae_equals_pyfeat_detect_on_the_same_mp4_files(pyfeat_env, tmp_path):
    """`auhead-bench parity` for au_mae_pyfeat_xgb: py-feat decodes the very mp4 files
    itself and runs with its default settings; the AU MAE of its best face per frame equals
    ours (random weights in the real formats, two small clips, two methods)."""
    from auhead_bench.config import RunConfig
    from auhead_bench.media import write_video
    from auhead_bench.parity import run_parity
    from auhead_bench.plugins import load_plugins

    root = tmp_path / "videos"
    root.mkdir()
    rng = np.random.default_rng(3)
    for name in ("a", "b"):
        frames = rng.integers(0, 256, (4, 64, 80, 3), dtype=np.uint8)
        write_video(root / f"{name}.mp4", frames, np.zeros(4 * 640, np.float32))
    config = RunConfig.model_validate({
        "methods": ["ground_truth", "static_frame"],
        "datasets": [{"id": "folder", "options": {"root": str(root)}}],
        "metrics": ["au_mae_pyfeat_xgb"],
        "cache_dir": str(tmp_path / "cache"),
        "device": "cpu",
    })
    report = run_parity(config, tmp_path / "parity", wanted=["pyfeat-detect"], clips=2,
                        registry=load_plugins(), say=lambda m: None)
    assert len(report.rows) == 2
    for row in report.rows:
        assert row.status == "pass", row
        assert row.clips == 2
    ground_truth = next(r for r in report.rows if r.record.startswith("ground_truth"))
    assert ground_truth.ours == 0.0 and ground_truth.theirs == 0.0
    static = next(r for r in report.rows if r.record.startswith("static_frame"))
    assert static.theirs > 0  # a held frame has other AUs than the moving video
