"""Stage-1 evaluation metrics, called directly with hand-built inputs (the arrays and info a
method returned ride on the ClipView, read-only, as the scorer passes them)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pytest

from auhead_bench import Clip, ClipSkipped, ClipView, Generation, Method, Options, VideoView
from auhead_bench.config import RunConfig
from auhead_bench.plugins import PluginInfo, load_plugins
from auhead_bench.runner import Runner
from auhead_bench.views import read_only
from auhead_bench_methods.auhead.au_space import AU_NAMES, N_AUS
from auhead_bench_methods.auhead.tokens import save_au_labels
from auhead_bench_metrics.au_tracks import (
    AUTrackF1,
    AUTrackMAE,
    AUTrackOptions,
    AUTrackPrecision,
    AUTrackRecall,
    StatedEmotionAccuracy,
)


def generated(track: np.ndarray | None = None, **info) -> dict[str, Any]:
    """What a method returned besides its video (``Generation.arrays`` and ``.info``)."""
    arrays = {} if track is None else {"au_track": track}
    return {"arrays": read_only(arrays), "info": MappingProxyType(info)}


def scored(metric, outputs: dict[str, Any], clip: Clip):
    """``metric`` on one clip, as the scorer calls it: the outputs ride on the ClipView."""
    video = VideoView.from_arrays(
        np.zeros((1, 8, 8, 3), np.uint8), path=Path("gen.mp4"), content_sha256="0" * 64
    )
    return metric.score(ClipView(clip, video, **outputs))


def clip_with(tmp_path: Path, labels: np.ndarray | None, emotion: str | None = "happy") -> Clip:
    path = None
    if labels is not None:
        path = save_au_labels(tmp_path / "labels.npy", labels)
    return Clip(id="c", video=tmp_path / "v.mp4", emotion=emotion, au_labels=path)


def test_a_hand_worked_clip(tmp_path):
    truth = np.zeros((4, N_AUS))
    truth[:, 8] = [0.5, 0.5, 0.0, 0.0]  # jaw open in frames 0-1
    truth[2, 11] = 0.2  # a smile in frame 2
    pred = np.zeros((4, N_AUS))
    pred[:, 8] = [0.3, 0.5, 0.1, 0.0]  # frame 2 is a false positive
    pred[3, 23] = 0.04  # below the 0.05 threshold: not active, still an error
    clip = clip_with(tmp_path, truth)
    gen = generated(pred)
    mae = scored(AUTrackMAE(), gen, clip)
    errors = 0.2 + 0.1 + 0.2 + 0.04  # |0.3-0.5| + FP 0.1 + missed smile 0.2 + 0.04
    assert mae.value == pytest.approx(errors / (4 * N_AUS))
    assert mae.info["per_au_mae"]["jaw_drop_mouth_open"] == pytest.approx(0.3 / 4)
    assert mae.info["per_au_mae"]["left_lip_corner_raise"] == pytest.approx(0.2 / 4)
    assert mae.info["mae_label_active"] == pytest.approx((0.2 + 0.0 + 0.2) / 3)
    assert mae.info["mae_5fps"] == pytest.approx(0.2 / N_AUS)  # only frame 0 is a token frame
    # cells: TP (0,8), (1,8); FP (2,8); FN (2,11)
    assert scored(AUTrackPrecision(), gen, clip).value == pytest.approx(2 / 3)
    assert scored(AUTrackRecall(), gen, clip).value == pytest.approx(2 / 3)
    f1 = scored(AUTrackF1(), gen, clip)
    assert f1.value == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert f1.info["per_au_counts"]["jaw_drop_mouth_open"] == [2, 1, 0]
    assert set(f1.info["per_au_counts"]) == set(AU_NAMES)
    strict = AUTrackRecall(AUTrackOptions(active_threshold=0.3))
    assert scored(strict, gen, clip).value == pytest.approx(1.0)  # the smile is below 0.3
    assert strict.protocol()["active_threshold"] == 0.3


def test_a_perfect_track_and_false_positives_on_a_neutral_face(tmp_path):
    rng = np.random.default_rng(0)
    truth = rng.uniform(0, 1, (30, N_AUS)).astype(np.float32)
    clip = clip_with(tmp_path, truth)
    assert scored(AUTrackMAE(), generated(truth), clip).value == pytest.approx(0.0)
    for metric in (AUTrackPrecision(), AUTrackRecall(), AUTrackF1()):
        assert scored(metric, generated(truth), clip).value == pytest.approx(1.0)
    neutral = clip_with(tmp_path, np.zeros((10, N_AUS)))
    busy = np.zeros((10, N_AUS))
    busy[:, 0] = 0.5
    assert scored(AUTrackMAE(), generated(busy), neutral).value == pytest.approx(0.5 / N_AUS)
    assert scored(AUTrackPrecision(), generated(busy), neutral).value == 0.0
    with pytest.raises(ClipSkipped, match="recall undefined"):
        scored(AUTrackRecall(), generated(busy), neutral)
    with pytest.raises(ClipSkipped, match="precision undefined"):
        scored(AUTrackPrecision(), generated(np.zeros((10, N_AUS))), neutral)
    with pytest.raises(ClipSkipped, match="F1 undefined"):
        scored(AUTrackF1(), generated(np.zeros((10, N_AUS))), neutral)


def test_unmeasured_frames_and_lengths(tmp_path):
    truth = np.full((12, N_AUS), 0.2)
    truth[3] = np.nan  # no face in that frame
    pred = np.full((10, N_AUS), 0.2)
    pred[3] = 0.9  # ignored: no label there
    pred[5, 0] = np.nan  # read as 0
    score = scored(AUTrackMAE(), generated(pred), clip_with(tmp_path, truth))
    assert score.info["frames"] == 9 and score.info["length_difference"] == -2
    assert score.value == pytest.approx(0.2 / (9 * N_AUS), rel=1e-5)  # labels are float32
    long_track = generated(np.full((30, N_AUS), 0.2))
    with pytest.raises(ClipSkipped, match="their frame rate is unknown"):  # 12 rows at what rate?
        scored(AUTrackMAE(), long_track, clip_with(tmp_path, truth))
    at_25 = dataclasses.replace(clip_with(tmp_path, truth), meta={"au_labels_fps": 25})
    with pytest.raises(ClipSkipped, match="at 25.000 fps \\(given\\) that is 12 frames"):
        scored(AUTrackMAE(), long_track, at_25)
    longer = dataclasses.replace(clip_with(tmp_path, np.full((34, N_AUS), 0.2)), meta=at_25.meta)
    near = scored(AUTrackMAE(), generated(np.full((40, N_AUS), 0.2)), longer)  # within 10% + 2
    assert "differ in length" in near.info["note"]
    assert near.info["label_rate"] == "25.000 fps (given)"


def test_labels_at_the_video_rate_of_30_fps_are_resampled(tmp_path):
    """MEAD's labels are per 30 fps source frame: a 1 s ramp becomes 25 frames of the ramp."""
    truth = np.zeros((30, N_AUS))
    truth[:, 8] = np.arange(30) / 30  # 1.0 per second
    pred = np.zeros((25, N_AUS))
    pred[:, 8] = np.arange(25) / 25  # the same ramp at 25 fps: no error once resampled
    clip = dataclasses.replace(clip_with(tmp_path, truth), meta={"source_fps": 30.0})
    score = scored(AUTrackMAE(), generated(pred), clip)
    assert score.value == pytest.approx(0.0, abs=1e-6)
    assert score.info["label_rate"] == "30.000 fps (source video)"
    assert score.info["length_difference"] == 0


@pytest.mark.parametrize(
    "features,labels,reason",
    [
        ("no track", np.zeros((3, N_AUS)), "no 'au_track'"),
        ("narrow", np.zeros((3, N_AUS)), "expected (frames, 24)"),
        ("ok", None, "no AU labels"),
        ("ok", np.full((3, N_AUS), np.nan), "no labelled frame"),
    ],
)
def test_clips_that_cannot_be_scored_are_skipped_with_the_reason(tmp_path, features, labels,
                                                                  reason):
    gen = {
        "no track": generated(None),
        "narrow": generated(np.zeros((3, 17))),
        "ok": generated(np.zeros((3, N_AUS))),
    }[features]
    with pytest.raises(ClipSkipped) as info:
        scored(AUTrackMAE(), gen, clip_with(tmp_path, labels))
    assert reason in str(info.value)


def test_unusable_label_files_skip_the_clip_naming_the_file(tmp_path):
    bad = tmp_path / "facs.csv"
    bad.write_text("frame,AU01,AU12\n0,0.1,0.9\n")
    clip = Clip(id="c", video=tmp_path / "v.mp4", au_labels=bad)
    with pytest.raises(ClipSkipped, match="FACS") as info:
        scored(AUTrackMAE(), generated(np.zeros((1, N_AUS))), clip)
    assert str(bad) in str(info.value)


def test_stated_emotion_accuracy(tmp_path):
    metric = StatedEmotionAccuracy()
    surprised = clip_with(tmp_path, None, emotion="surprised")
    assert scored(metric, generated(emotion="surprise"), surprised).value == 1.0
    wrong = scored(metric, generated(emotion="happy"), surprised)
    assert wrong.value == 0.0 and wrong.info == {"stated": "happy", "label": "surprised"}
    assert scored(metric, generated(emotion=None), surprised).value == 0.0
    with pytest.raises(ClipSkipped, match="states no emotion"):
        scored(metric, generated(), surprised)
    with pytest.raises(ClipSkipped, match="not a known emotion"):
        scored(metric, generated(emotion="happy"), clip_with(tmp_path, None, emotion=None))


def test_the_metrics_are_registered_through_the_plugin_entry_point():
    from importlib.metadata import entry_points

    from auhead_bench_metrics import au_tracks

    points = {ep.value for ep in entry_points(group="auhead_bench")}
    assert "auhead_bench_metrics.au_tracks" in points
    registered = []
    au_tracks.register_metrics(register=registered.append)
    classes = (AUTrackMAE, AUTrackPrecision, AUTrackRecall, AUTrackF1, StatedEmotionAccuracy)
    assert registered == list(classes)
    assert len({cls.id for cls in classes}) == len(classes)
    for cls in classes:
        assert cls.needs == () and not cls.needs_ground_truth
    assert AUTrackMAE().protocol()["active_threshold"] == 0.05


class LabelCopy(Method):
    """Returns the clip's own AU labels as its track, shifted by 0.1 on clip 'b'."""

    id = "label_copy"
    description = "test method returning an AU track"

    def generate(self, clip: Clip, options: Options, seed: int, out_path: Path) -> Generation:
        out_path.write_bytes(clip.video.read_bytes())
        track = np.load(clip.au_labels) + (0.1 if clip.id == "b" else 0.0)
        return Generation(arrays={"au_track": track}, info={"emotion": "happy"})


def test_the_runner_scores_a_methods_track_against_the_clip_labels(video_factory, tmp_path):
    for seed, name in enumerate("ab"):
        video_factory(f"{name}.mp4", frames=20, seed=seed)
        save_au_labels(tmp_path / f"{name}.npy", np.full((20, N_AUS), 0.3))
    (tmp_path / "labels.csv").write_text(
        "clip_id,emotion,au_labels\na,happy,a.npy\nb,sad,b.npy\n"
    )
    registry = load_plugins()
    registry.add("method", LabelCopy, PluginInfo("tests", "tests", "tests", "0"))
    config = RunConfig.model_validate(
        {
            "name": "stage1",
            "datasets": [{"id": "folder", "options": {
                "root": str(tmp_path), "pattern": "*.mp4", "labels": str(tmp_path / "labels.csv"),
            }}],
            "methods": ["label_copy"],
            "metrics": ["au_track_mae_feafa24", "au_track_f1_feafa24", "stated_emotion_acc"],
            "cache_dir": str(tmp_path / "cache"),
        }
    )
    (record,) = Runner(config, tmp_path / "out", registry=registry).run()
    values = {m: {v.clip_id: v.value for v in r.per_clip} for m, r in record.metrics.items()}
    assert values["au_track_mae_feafa24"] == pytest.approx({"a": 0.0, "b": 0.1})
    assert values["au_track_f1_feafa24"] == pytest.approx({"a": 1.0, "b": 1.0})
    assert values["stated_emotion_acc"] == {"a": 1.0, "b": 0.0}
    assert record.metrics["stated_emotion_acc"].value == pytest.approx(0.5)
