"""`auhead-bench label-aus`: FEAFA+ label files from py-feat's FACS AUs, on the demo clips.

py-feat's networks are not shipped (and random ones find hundreds of faces), so its detector
call is replaced by one that reads AU values off the frames; everything else is the real
path: the registry's extractor, the feature store and its cache, the label writer, and the
readers of `train stage1` and the stage-1 metrics."""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pytest
from click.testing import CliRunner

from auhead_bench import Clip, ClipView, VideoView
from auhead_bench.aus import (
    AU_NAMES,
    FEAT_AUS,
    N_AUS,
    UNMAPPED,
    feafa_to_feat,
    feat_to_feafa,
    load_au_labels,
)
from auhead_bench.cli import cli
from auhead_bench.views import read_only


def test_the_facs_map_inverts_feafa_to_feat_where_it_can():
    rng = np.random.default_rng(0)
    feafa = rng.random((6, N_AUS)).astype(np.float32) * 0.5
    # what FACS can express: symmetric pairs, one brow raise
    for left, right in ((0, 1), (2, 3), (4, 5), (6, 7), (11, 12), (13, 14), (15, 16)):
        feafa[:, right] = feafa[:, left]
    feafa[:, list(UNMAPPED)] = 0.0
    np.testing.assert_allclose(feat_to_feafa(feafa_to_feat(feafa)), feafa, atol=1e-6)
    facs = feafa_to_feat(feafa)
    np.testing.assert_allclose(feafa_to_feat(feat_to_feafa(facs)), facs, atol=1e-6)


def test_left_right_splits_and_unexpressible_aus_are_stated():
    facs = np.zeros((1, len(FEAT_AUS)), np.float32)
    facs[0, FEAT_AUS.index("AU12")] = 0.8  # a smile: both corners, no side known
    facs[0, FEAT_AUS.index("AU01")], facs[0, FEAT_AUS.index("AU02")] = 0.2, 0.6
    facs[0, FEAT_AUS.index("AU28")] = 0.6
    facs[0, FEAT_AUS.index("AU25")] = 0.9  # lips part: no FEAFA+ counterpart, dropped
    out = feat_to_feafa(facs, unmapped=np.nan)[0]
    named = dict(zip(AU_NAMES, out.tolist(), strict=True))
    assert named["left_lip_corner_raise"] == named["right_lip_corner_raise"] == pytest.approx(0.8)
    assert named["left_brow_raise"] == named["right_brow_raise"] == pytest.approx(0.4)
    assert named["upper_lip_suck"] == named["lower_lip_suck"] == pytest.approx(0.3)
    assert all(np.isnan(out[i]) for i in UNMAPPED)
    assert np.nansum(out) == pytest.approx(0.8 * 2 + 0.4 * 2 + 0.3 * 2)
    assert np.isnan(feat_to_feafa(np.full((1, len(FEAT_AUS)), np.nan))).all()  # no face


@pytest.fixture
def fake_pyfeat(monkeypatch):
    """py-feat's detector replaced: AU value k/40 in column k, scaled by the frame's mean, so
    the labels follow the video; the calls are counted."""
    from auhead_bench_metrics import pyfeat

    calls = []

    def detect(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        calls.append(len(frames))
        arrays = pyfeat.no_face(len(frames))
        level = frames.reshape(len(frames), -1).mean(axis=1, keepdims=True) / 255.0
        arrays["aus"][:] = np.clip(level * np.arange(1, 21) / 20.0, 0, 1)
        arrays["detected"][:] = True
        return arrays

    monkeypatch.setattr(pyfeat.PyFeatExpression, "setup", lambda self, device: None)
    monkeypatch.setattr(pyfeat.PyFeatExpression, "_detect", detect)
    monkeypatch.setattr(pyfeat.PyFeatExpression, "weights", lambda self: {})
    return calls


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "label.yaml"
    path.write_text(
        "datasets:\n  - id: demo\n    options: {max_clips: 2}\n"
        f"cache_dir: {tmp_path / 'cache'}\ndevice: cpu\n"
    )
    return path


def test_label_aus_writes_files_that_stage1_training_and_metrics_read(tmp_path, fake_pyfeat):
    config, out = _config(tmp_path), tmp_path / "labels"
    result = CliRunner().invoke(cli, ["label-aus", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote 2 label files" in result.output
    files = sorted(out.glob("*.csv"))
    assert [f.stem for f in files] == ["wolfgang_00", "wolfgang_04"]
    header = files[0].read_text().splitlines()[0].split(",")
    assert header == ["frame", "timestamp", *AU_NAMES]
    labels = load_au_labels(files[0])
    assert labels.shape == (50, N_AUS)  # 2 s at 25 fps
    assert (labels[:, list(UNMAPPED)] == 0).all()
    assert labels[:, 8].std() > 0  # jaw drop (AU26) follows the frames
    manifest = json.loads((out / "labels.json").read_text())
    assert manifest["extractor"]["id"] == "pyfeat_v1_retinaface_mobilefacenet_xgb_resmasknet"
    assert "jaw_thrust" in manifest["map"]["not_expressible"]
    assert manifest["clips"]["wolfgang_00"]["frames_with_face"] == 50
    calls = len(fake_pyfeat)

    # resumable: a finished file is kept, a missing one made again from the cached features
    kept = files[0].stat().st_mtime_ns
    files[1].unlink()
    result = CliRunner().invoke(cli, ["label-aus", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert files[0].stat().st_mtime_ns == kept and files[1].is_file()
    assert len(fake_pyfeat) == calls  # features came from the cache: py-feat did not run

    # read by `train stage1` (its example builder: 5 fps targets from the labels' own rate)
    from auhead_bench_methods.auhead.train_stage1 import plan_items

    demo_video = next((tmp_path / "cache" / "datasets" / "demo").rglob("wolfgang_00.mp4"))
    clip = Clip(id="wolfgang_00", video=demo_video, emotion="happy", au_labels=files[0])
    items, skipped = plan_items([clip], "A->AU", chunk_seconds=1.0)
    assert not skipped and items and "25.000 fps" in items[0].label_rate
    np.testing.assert_allclose(items[0].aus_5fps, labels[: len(items[0].aus_5fps) * 5 : 5],
                               atol=1e-5)

    # read by the stage-1 metrics: a track equal to the labels scores 0
    from auhead_bench_metrics.au_tracks import AUTrackMAE

    video = VideoView.from_arrays(np.zeros((1, 8, 8, 3), np.uint8), path=Path("gen.mp4"),
                                  content_sha256="0" * 64)
    outputs = {"arrays": read_only({"au_track": labels}), "info": MappingProxyType({})}
    score = AUTrackMAE().score(ClipView(clip, video, **outputs))
    assert score.value == pytest.approx(0.0, abs=1e-6)


def test_label_aus_needs_a_config_with_datasets(tmp_path):
    config = tmp_path / "none.yaml"
    config.write_text("datasets: []\n")
    result = CliRunner().invoke(cli, ["label-aus", str(config), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "no datasets" in result.output
