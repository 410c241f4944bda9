"""`auhead-bench parity`: our recorded value next to a reference tool's on the same files.

Runs on two demo clips with ground_truth and static_frame. The PSNR check is real (scikit-image
on OpenCV-read frames, no weights needed); the others are test checks that show what a user
sees when a reference disagrees, is not installed, or its metric has no weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from auhead_bench import hookimpl
from auhead_bench.config import RunConfig
from auhead_bench.errors import BenchError
from auhead_bench.parity import ParityCheck, ParityInputs, compare, run_parity
from auhead_bench.plugins import load_plugins
from auhead_bench.records import ClipValue, MetricResult


class OffByOne(ParityCheck):
    """A 'reference' that reads the same files and returns PSNR + 1 dB: must fail."""

    id = "off-by-one"
    metric = "psnr_rgb"
    reference = "PSNR + 1"

    def reference_values(self, inputs: ParityInputs) -> dict[str, float | None]:
        from auhead_bench_metrics.pixel import PSNRSkimage

        values = PSNRSkimage().reference_values(inputs)
        return {k: None if v is None else v + 1 for k, v in values.items()}


class NotInstalled(ParityCheck):
    id = "not-installed"
    metric = "psnr_rgb"
    reference = "a tool nobody has"
    requires = {"no_such_module_xyz": "no-such-package==1.0"}

    def reference_values(self, inputs):  # pragma: no cover - never reached
        raise AssertionError("a missing reference must not run")


class NoWeights(ParityCheck):
    id = "no-weights"
    metric = "lpips_alex_v01"
    reference = "lpips"

    def reference_values(self, inputs):  # pragma: no cover - never reached
        raise AssertionError("a metric without weights has nothing to compare")


class TestChecks:
    @hookimpl
    def register_parity_checks(self, register):
        for check in (OffByOne, NotInstalled, NoWeights):
            register(check)


@pytest.fixture
def registry():
    registry = load_plugins()
    registry.pm.register(TestChecks(), name="test-checks")
    return registry


@pytest.fixture
def config(tmp_path: Path) -> RunConfig:
    return RunConfig.model_validate({
        "methods": ["ground_truth", "static_frame"],
        "datasets": ["demo"],
        "metrics": ["psnr_rgb"],
        "cache_dir": str(tmp_path / "cache"),
        "device": "cpu",
    })


def test_parity_on_two_demo_clips(tmp_path, config, registry):
    report = run_parity(config, tmp_path / "parity", clips=2, registry=registry,
                        say=lambda m: None)
    rows = {(r.check, r.record.split("__")[0]): r for r in report.rows}
    for method in ("ground_truth", "static_frame"):
        real = rows[("skimage-psnr", method)]
        assert real.status == "pass", real
        assert real.clips == 2 and len(real.per_clip) == 2
        assert abs(real.ours - real.theirs) <= 1e-4 * max(real.theirs, 1)
        wrong = rows[("off-by-one", method)]
        assert wrong.status == "fail" and wrong.delta == pytest.approx(1.0, abs=1e-3)
        assert "vs" in wrong.note  # names the clip and both values
    assert rows[("skimage-psnr", "ground_truth")].ours == 100.0  # identical frames: the cap
    missing = rows[("not-installed", "-")]
    assert missing.status == "missing" and "pip install no-such-package==1.0" in missing.note
    weightless = rows[("no-weights", "ground_truth")]
    assert weightless.status == "not_computed"
    assert "auhead-bench weights pull" in weightless.note
    assert not report.passed


def test_cli_writes_parity_json_and_exits_by_verdict(tmp_path, config, monkeypatch):
    import yaml

    from auhead_bench import cli

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(json.loads(config.model_dump_json())))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli.cli, ["parity", "--metrics", "psnr_rgb", "--clips", "2",
                                          "--out", str(out), str(path)])
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output and "skimage-psnr" in result.output
    saved = json.loads((out / "parity.json").read_text())
    assert saved["passed"] and {r["status"] for r in saved["rows"]} == {"pass"}
    assert len(saved["rows"]) == 2  # one per method

    result = CliRunner().invoke(cli.cli, ["parity", "--metrics", "psnr_rgbb", str(path)])
    assert result.exit_code != 0
    assert "did you mean 'psnr_rgb'" in result.output


def test_compare_needs_both_sides_for_a_clip():
    check = OffByOne()
    result = MetricResult(metric_id="psnr_rgb", higher_is_better=True, status="ok", value=20.0,
                          n=2, per_clip=[ClipValue(clip_id="a", seed=0, value=20.0),
                                         ClipValue(clip_id="b", seed=0, value=None,
                                                   reason="no face")])
    row = compare(check, "r", result, {"a": 20.0, "b": 18.0})
    assert row.status == "fail" and "clip b: no value from ours" in row.note
    row = compare(check, "r", result, {"a": 20.00001, "b": None})
    assert row.status == "pass" and row.clips == 1
    row = compare(check, "r", result, {"a": None, "b": None})
    assert row.status == "fail" and "clip a: no value from the reference" in row.note
    assert row.clips == 0


def test_unknown_check_names_the_closest(registry, config, tmp_path):
    with pytest.raises(BenchError, match="did you mean 'skimage-psnr'"):
        run_parity(config, tmp_path, wanted=["skimage-psnrr"], registry=registry)


def test_clips_left_out_by_both_sides_agree():
    """A clip our metric skips and the reference skips too (e.g. no face track of more than
    100 frames) is agreement, not a failure; one side alone skipping is a failure; every clip
    skipped by both compared nothing (not compared, never a pass)."""
    result = MetricResult(metric_id="lse_d", higher_is_better=False, status="failed", n=0,
                          per_clip=[ClipValue(clip_id=c, seed=0, value=None, reason="short")
                                    for c in ("a", "b")])
    row = compare(OffByOne(), "r", result, {"a": None, "b": None})
    assert row.status == "not_compared" and row.note == "no clip compared: all 2 left out by both"
    row = compare(OffByOne(), "r", result, {"a": None, "b": 7.0})
    assert row.status == "fail" and "clip b: no value from ours" in row.note
