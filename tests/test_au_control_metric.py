"""AU-control fidelity on known tracks: the method's FEAFA+ control track, mapped to FACS,
against py-feat AU rows (stood in as the extractor's arrays, as the py-feat metric tests do)."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pytest

from auhead_bench import Clip, ClipSkipped, ClipView, VideoView
from auhead_bench.aus import FEAFA_TO_FEAT, N_AUS, feafa_to_feat, save_au_labels
from auhead_bench.views import read_only
from auhead_bench.weights import WeightsMissing
from auhead_bench_methods.auhead import au_mesh
from auhead_bench_metrics import au_control, pyfeat
from auhead_bench_metrics.au_control import (
    AU_CONTROL_METRICS,
    CONTROLLED_AUS,
    AUControlCorrelation,
    AUControlCorrelationCeiling,
    AUControlMAE,
    AUControlMAECeiling,
    per_au_pearson,
)
from auhead_bench_metrics.pyfeat import AU_NAMES as PYFEAT_AUS
from auhead_bench_metrics.pyfeat import PyFeatExpression

EX = PyFeatExpression.id
ROOT = Path(__file__).resolve().parents[1]


def video(aus: np.ndarray) -> VideoView:
    """A video whose py-feat AU rows are ``aus`` (T, 20); NaN rows: no face."""
    frames = np.zeros((len(aus), 8, 8, 3), np.uint8)
    return VideoView.from_arrays(
        frames, features={EX: {"aus": np.asarray(aus, np.float32)}}, path=Path("v.mp4")
    )


def view(control, measured, clip=None, ground_truth=None, **info) -> ClipView:
    arrays = {} if control is None else {"au_track": np.asarray(control, np.float32)}
    return ClipView(
        clip or Clip(id="c", video=Path("gt.mp4")), video(measured), ground_truth,
        arrays=read_only(arrays), info=MappingProxyType(info),
    )


def column(name: str) -> int:
    return PYFEAT_AUS.index(name)


def known_pair(frames: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Jaw opening ramps 0 -> 0.9, brows rise, smile falls; py-feat sees each differently."""
    ramp = np.linspace(0.0, 0.9, frames)
    control = np.zeros((frames, N_AUS))
    control[:, 8] = ramp  # jaw drop -> AU26
    control[:, 6] = control[:, 7] = ramp / 3  # brow raise -> AU01 and AU02
    control[:, 11] = control[:, 12] = 0.9 - ramp  # lip corner raise -> AU12
    measured = np.zeros((frames, 20))
    measured[:, column("AU26")] = 0.5 * ramp + 0.1  # follows, at half the gain
    measured[:, column("AU01")] = ramp / 3  # exactly
    measured[:, column("AU02")] = ramp / 3
    measured[:, column("AU12")] = ramp  # the opposite way
    measured[:, column("AU06")] = 0.7  # a cheek raise no control drives: not compared
    return control, measured


def test_correlation_and_error_per_au_on_known_tracks():
    control, measured = known_pair()
    corr = AUControlCorrelation().score(view(control, measured))
    r = corr.info["per_au_r"]
    assert r["AU26"] == pytest.approx(1.0) and r["AU01"] == pytest.approx(1.0)
    assert r["AU12"] == pytest.approx(-1.0)
    assert r["AU04"] is None and corr.info["aus_defined"] == 4  # constant: left out
    assert corr.value == pytest.approx((1 + 1 + 1 - 1) / 4)
    assert "AU06" not in r and corr.info["frames"] == 10

    mae = AUControlMAE().score(view(control, measured))
    ramp = np.linspace(0.0, 0.9, 10)
    per_au = mae.info["per_au_mae"]
    assert per_au["AU26"] == pytest.approx(np.abs(ramp - (0.5 * ramp + 0.1)).mean(), abs=1e-6)
    assert per_au["AU01"] == pytest.approx(0.0, abs=1e-6)
    assert per_au["AU12"] == pytest.approx(np.abs((0.9 - ramp) - ramp).mean(), abs=1e-6)
    assert per_au["AU04"] == 0.0  # at rest on both sides
    expected = (per_au["AU26"] + per_au["AU12"]) / len(CONTROLLED_AUS)
    assert mae.value == pytest.approx(expected, abs=1e-6)


def test_frames_without_a_face_are_left_out_and_lengths_cut_to_the_shorter():
    control, measured = known_pair(12)
    shifted = measured.copy()
    shifted[4] = np.nan  # no face on frame 4
    score = AUControlCorrelation().score(view(control[:11], shifted))
    assert score.info["frames"] == 10 and score.info["frames_compared"] == 11
    assert score.info["frames_control"] == 11 and score.info["frames_measured"] == 12
    assert score.info["per_au_r"]["AU26"] == pytest.approx(1.0)
    with pytest.raises(ClipSkipped, match="no frame with a py-feat face"):
        AUControlMAE().score(view(control, np.full((12, 20), np.nan)))


def test_a_method_without_an_au_track_is_skipped_with_the_reason():
    for metric in (AUControlCorrelation(), AUControlMAE()):
        with pytest.raises(ClipSkipped, match="returned no 'au_track' array"):
            metric.score(view(None, np.zeros((5, 20))))
    with pytest.raises(ClipSkipped, match="expected \\(frames, 24\\)"):
        AUControlMAE().score(view(np.zeros((5, 17)), np.zeros((5, 20))))
    flat = np.zeros((5, N_AUS))
    with pytest.raises(ClipSkipped, match="correlation undefined"):
        AUControlCorrelation().score(view(flat, np.zeros((5, 20))))


def test_a_track_at_another_rate_is_compared_at_25_fps():
    """A 30 fps control ramp and the same ramp measured at 25 fps agree once resampled."""
    control = np.zeros((60, N_AUS))
    control[:, 8] = 0.4 * np.arange(60) / 30  # 2 s at 30 fps
    measured = np.zeros((50, 20))
    measured[:, column("AU26")] = 0.4 * np.arange(50) / 25
    score = AUControlMAE().score(view(control, measured, au_track_fps=30))
    assert score.info["control_fps"] == 30.0 and score.info["frames"] == 50
    assert score.info["per_au_mae"]["AU26"] == pytest.approx(0.0, abs=1e-6)
    read_at_25 = AUControlMAE().score(view(control, measured))  # the rate ignored: wrong
    assert read_at_25.info["per_au_mae"]["AU26"] > 0.05


def test_the_measurement_ceiling_scores_the_real_video_against_its_labels(tmp_path):
    control, measured = known_pair(12)  # the real face follows its labels, read by py-feat
    labels = save_au_labels(tmp_path / "labels.npy", control)
    clip = Clip(id="c", video=Path("gt.mp4"), au_labels=labels, meta={"source_fps": 25.0})
    gt = video(measured)
    score = AUControlCorrelationCeiling().score(view(None, measured, clip, gt))
    assert score.value == pytest.approx(0.5) and score.info["label_rate"].endswith("(source video)")
    assert AUControlMAECeiling.needs_ground_truth and not AUControlMAE.needs_ground_truth
    at_30 = dataclasses.replace(clip, meta={"source_fps": 30.0})  # 12 rows = 10 frames
    with pytest.raises(ClipSkipped, match="that is 10 frames at 25 fps, but the clip has 20"):
        AUControlMAECeiling().score(view(None, measured, at_30, video(np.zeros((20, 20)))))
    with pytest.raises(ClipSkipped, match="no AU labels"):
        AUControlMAECeiling().score(view(None, measured, Clip(id="c", video=Path("g")), gt))
    with pytest.raises(ClipSkipped, match="no ground-truth video"):
        AUControlMAECeiling().score(view(None, measured, clip, None))


def test_the_mapping_is_the_one_au_mesh_drives_the_face_with():
    assert au_mesh.feafa_to_feat is feafa_to_feat and au_mesh.FEAFA_TO_FEAT is FEAFA_TO_FEAT
    assert CONTROLLED_AUS == (
        "AU01", "AU02", "AU04", "AU05", "AU09", "AU10", "AU12", "AU17", "AU20", "AU26",
        "AU28", "AU43",
    )  # fmt: skip
    assert au_mesh.FEAT_AUS == PYFEAT_AUS  # py-feat's column order on both sides
    two = np.arange(2.0)[:, None]
    assert np.isnan(per_au_pearson(two, two)).all()  # fewer than 3 frames: undefined
    assert per_au_pearson(np.arange(3.0)[:, None], np.arange(3.0)[:, None]) == pytest.approx(1)


def test_missing_pyfeat_weights_make_it_not_computed(monkeypatch, tmp_path):
    monkeypatch.setenv("AUHEAD_BENCH_WEIGHTS", str(tmp_path / "cache"))
    monkeypatch.setattr(pyfeat, "pyfeat_resource_dir", lambda: tmp_path / "resources")
    for metric in AU_CONTROL_METRICS:
        with pytest.raises(WeightsMissing, match="auhead-bench weights pull pyfeat_"):
            metric().setup("cpu")


def test_ids_protocol_and_registration():
    registered = []
    au_control.register_metrics(register=registered.append)
    assert registered == list(AU_CONTROL_METRICS)
    assert [m.id for m in AU_CONTROL_METRICS] == [
        "au_control_corr_pyfeat_xgb", "au_control_mae_pyfeat_xgb",
        "au_control_corr_pyfeat_xgb_gt_ceiling", "au_control_mae_pyfeat_xgb_gt_ceiling",
    ]
    assert AUControlCorrelation.higher_is_better and not AUControlMAE.higher_is_better
    protocol = AUControlCorrelation().protocol()
    assert "auhead_gt_aus" in protocol["method_ceiling"]
    assert protocol["aus"] == list(CONTROLLED_AUS) and protocol["extractor"] == EX
    entry_points = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert entry_points["entry-points"]["auhead_bench"]["metrics_au_control"] == (
        "auhead_bench_metrics.au_control"
    )
