"""``auhead-bench parity`` for CSIM: our csim_arcface_insightface_buffalo_l on the demo clips
against InsightFace's FaceAnalysis on the same mp4/png files, random-weight ONNX files of
buffalo_l's contract in a temporary weights cache (test_identity.py builds them)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from optional import INSIGHTFACE, needs_module
from test_identity import install_buffalo_l

from auhead_bench import media
from auhead_bench.config import RunConfig, demo_config_path, read_yaml
from auhead_bench.parity import ParityClip, ParityInputs, collect_checks, run_parity
from auhead_bench.plugins import load_plugins
from auhead_bench_metrics.identity import InsightFaceCSIM, InsightFaceParity

pytestmark = needs_module("insightface", INSIGHTFACE)


@pytest.fixture(scope="module")
def buffalo_l(tmp_path_factory):
    root = install_buffalo_l(tmp_path_factory.mktemp("buffalo_l"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def demo(cache: Path, stride: int) -> RunConfig:
    """The demo benchmark with one method (the ground-truth copy), the exact CSIM mode at
    ``stride`` (each embedded frame costs a random-weight IResNet pass on a shared CPU)."""
    data = read_yaml(demo_config_path())
    data.update(methods=["ground_truth"], device="cpu", cache_dir=str(cache),
                metrics=[{"id": InsightFaceCSIM.id, "options": {"frame_stride": stride}}])
    return RunConfig.model_validate(data)


def test_the_check_is_registered_for_the_exact_mode():
    (check,) = [c for c in collect_checks(load_plugins()) if c.id == "insightface-csim"]
    assert check.metric == "csim_arcface_insightface_buffalo_l"
    assert "FaceAnalysis" in check.reference and check.tolerance == 1e-4
    assert check.missing() == []  # insightface is importable here


def test_parity_on_two_demo_clips(buffalo_l, monkeypatch, tmp_path):
    monkeypatch.setenv("AUHEAD_BENCH_WEIGHTS", str(buffalo_l))
    report = run_parity(demo(tmp_path / "cache", stride=10), tmp_path / "parity",
                        wanted=["insightface-csim"], clips=2, say=lambda line: None)
    (row,) = report.rows
    assert row.status == "pass", row.note
    assert row.clips == 2 and row.delta is not None and row.delta <= 1e-4
    for clip in row.per_clip.values():
        assert clip["ours"] is not None and -1 <= clip["ours"] <= 1
        assert abs(clip["ours"] - clip["theirs"]) <= 1e-4
    assert report.passed


def test_a_clip_without_a_face_has_no_reference_value(buffalo_l, monkeypatch, tmp_path):
    """A gray video and reference: FaceAnalysis finds no face, the reference gives None (our
    metric skips the clip with its reason, test_identity.py), so the clip is left out."""
    monkeypatch.setenv("AUHEAD_BENCH_WEIGHTS", str(buffalo_l))
    gray = np.full((3, 64, 64, 3), 128, np.uint8)
    video, image = tmp_path / "gray.mp4", tmp_path / "gray.png"
    media.write_video(video, gray, None)
    media.write_image(image, gray[0])
    clip = ParityClip("gray", video, video, None, image)
    inputs = ParityInputs([clip], "cpu", tmp_path / "work", {"frame_stride": 1})
    assert InsightFaceParity().reference_values(inputs) == {"gray": None}
