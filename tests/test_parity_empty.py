"""Parity says what it compared: clips compared per check, "not compared" (never a pass) when
both sides left every clip out, and a distribution reference given every clip, so a skip rule
that differs from the reference's fails.

The skip-rule test runs the real ``run_parity`` on two demo clips with a test distribution
metric (total frames of the clips it folds; it leaves the first clip out) and two references:
one applying the same rule, one folding every clip.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from auhead_bench import ClipSkipped, DistributionMetric, Extractor, hookimpl
from auhead_bench.config import RunConfig
from auhead_bench.parity import (
    ParityCheck,
    ParityInputs,
    ParityReport,
    ParityRow,
    compare,
    format_rows,
    run_parity,
)
from auhead_bench.plugins import PluginInfo, load_plugins
from auhead_bench.records import ClipValue, MetricResult

TEST_PLUGIN = PluginInfo("tests", "tests", "tests", "0")


class FrameCount(Extractor):
    id = "test_frame_count"
    description = "frames of the video"

    def extract(self, video):
        return {"frames": np.array(video.frame_count(), np.int64)}


class TotalFrames(DistributionMetric):
    """Frames of every folded clip; the first clip (by id) is left out by this metric's rule."""

    id = "test_total_frames"
    description = "total frames, first clip left out"
    higher_is_better = True
    needs = (FrameCount.id,)
    skip: str = ""

    def __init__(self, options=None):
        super().__init__(options)
        self.add_state("total", 0, merge="sum")

    def update(self, view):
        if view.clip.id == TotalFrames.skip:
            raise ClipSkipped("left out by this metric's rule")
        self.total = self.total + int(view.generated[FrameCount.id]["frames"])

    def compute(self):
        return float(self.total)


def frames_of(path: Path) -> int:
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.grab():
        count += 1
    capture.release()
    return count


class SameRule(ParityCheck):
    id = "test-same-rule"
    metric = TotalFrames.id
    reference = "total frames, first clip left out (the same rule)"

    def reference_values(self, inputs: ParityInputs) -> float:
        first = min(c.clip_id for c in inputs.clips)
        return float(sum(frames_of(c.generated) for c in inputs.clips if c.clip_id != first))


class EveryClip(ParityCheck):
    id = "test-every-clip"
    metric = TotalFrames.id
    reference = "total frames of every clip (a different rule)"

    def reference_values(self, inputs: ParityInputs) -> float:
        return float(sum(frames_of(c.generated) for c in inputs.clips))


class Checks:
    @hookimpl
    def register_parity_checks(self, register):
        register(SameRule)
        register(EveryClip)


@pytest.fixture
def registry():
    registry = load_plugins()
    registry.add("extractor", FrameCount, TEST_PLUGIN)
    registry.add("metric", TotalFrames, TEST_PLUGIN)
    registry.pm.register(Checks(), name="test-skip-rule-checks")
    return registry


def test_a_distribution_reference_gets_every_clip_so_a_differing_skip_rule_fails(
    tmp_path, registry, monkeypatch
):
    from auhead_bench_datasets.demo import Demo, DemoOptions

    first = sorted(c.id for c in Demo(DemoOptions(), tmp_path / "d").clips()[:2])[0]
    monkeypatch.setattr(TotalFrames, "skip", first)
    config = RunConfig.model_validate({
        "methods": ["ground_truth"], "datasets": ["demo"], "metrics": [TotalFrames.id],
        "cache_dir": str(tmp_path / "cache"), "device": "cpu",
    })
    report = run_parity(config, tmp_path / "parity", clips=2, registry=registry,
                        wanted=[SameRule.id, EveryClip.id], say=lambda m: None)
    rows = {r.check: r for r in report.rows}
    same, every = rows[SameRule.id], rows[EveryClip.id]
    assert same.status == "pass", same
    assert same.clips == 1 and same.reference_clips == 2  # ours folded 1; the reference saw 2
    assert every.status == "fail" and every.theirs > every.ours
    assert not report.passed
    assert "[1 of 2 clips compared]" in "\n".join(format_rows([same]))


def per_clip_result(values: dict[str, float | None]) -> MetricResult:
    scored = [v for v in values.values() if v is not None]
    return MetricResult(
        metric_id="lse_d", higher_is_better=False, status="ok" if scored else "failed",
        value=float(np.mean(scored)) if scored else None, n=len(scored),
        per_clip=[ClipValue(clip_id=c, seed=0, value=v, reason=None if v is not None else "short")
                  for c, v in values.items()])


def test_zero_clips_compared_is_not_compared_never_a_pass():
    row = compare(SameRule(), "r", per_clip_result({"a": None, "b": None}), {"a": None, "b": None})
    assert row.status == "not_compared" and row.clips == 0
    assert "left out by both" in row.note
    assert "NOT COMPARED" in format_rows([row])[0] and "[0 of 2 clips compared]" in \
        format_rows([row])[0]
    report = ParityReport([row], [], "demo", 2, "out")
    assert not report.passed and report.not_compared == 1
    assert ParityReport([row], [], "demo", 2, "out", allow_empty=True).passed


def test_a_pass_counts_its_clips():
    row = compare(SameRule(), "r", per_clip_result({"a": 5.0, "b": None}), {"a": 5.0, "b": None})
    assert row.status == "pass" and row.clips == 1 and row.note == "1 clip(s) left out by both"


def test_a_distribution_check_that_folded_nothing_is_not_compared():
    result = MetricResult(metric_id="fvd", higher_is_better=False, status="ok", value=3.0, n=0,
                          per_clip=[ClipValue(clip_id="a", seed=0, value=None, reason="short")])
    assert compare(EveryClip(), "r", result, 3.0).status == "not_compared"


def test_cli_exits_non_zero_on_not_compared_unless_allowed(tmp_path, monkeypatch):
    from auhead_bench import cli, parity

    def fake_run(*args, allow_empty=False, **kwargs):
        row = ParityRow("c", "m", "rec", "ref", "not_compared", note="no clip compared")
        return ParityReport([row], [], "demo", 2, str(tmp_path), allow_empty)

    monkeypatch.setattr(parity, "run_parity", fake_run)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli.cli, ["parity", "--out", str(out)])
    assert result.exit_code == 1 and "NOT COMPARED" in result.output
    assert "PASS" not in result.output.replace("pass --allow-empty", "")
    assert json.loads((out / "parity.json").read_text())["not_compared"] == 1
    result = CliRunner().invoke(cli.cli, ["parity", "--allow-empty", "--out", str(out)])
    assert result.exit_code == 0, result.output
