"""A third party adds a method and a metric with `pip install` alone (no change to this repo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

PYPROJECT = """
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "auhead-bench-example-plugin"
version = "0.3.1"

[project.entry-points.auhead_bench]
example = "example_plugin"
broken = "example_plugin_broken"

[tool.setuptools]
py-modules = ["example_plugin", "example_plugin_broken"]
"""

MODULE = '''
"""A throwaway third-party plugin: a method that inverts colours and a metric on it."""
from pathlib import Path

import numpy as np

from auhead_bench import Generation, Method, Options, PerClipMetric, hookimpl, media


class InvertOptions(Options):
    amount: float = 1.0


class Invert(Method):
    id = "example_invert"
    description = "Ground truth with inverted colours."
    Options = InvertOptions

    def generate(self, clip, options, seed, out_path: Path) -> Generation:
        video = media.decode_video(clip.video)
        frames = video.frames.astype(np.float32)
        inverted = frames + options.amount * (255 - 2 * frames)
        media.write_video(out_path, inverted.clip(0, 255).astype(np.uint8), video.audio)
        return Generation(info={"amount": options.amount})


class MeanBrightness(PerClipMetric):
    id = "example_mean_brightness"
    description = "Mean pixel value of the generated frames."
    higher_is_better = True
    needs_ground_truth = False

    def score(self, view):
        return float(view.generated.all_frames().mean())


@hookimpl
def register_methods(register):
    register(Invert)


@hookimpl
def register_metrics(register):
    register(MeanBrightness)
'''


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, str]:
    """Build and install the distribution into its own site folder; return the environment."""
    root = tmp_path_factory.mktemp("plugin")
    src, site = root / "src", root / "site"
    src.mkdir()
    (src / "pyproject.toml").write_text(PYPROJECT)
    (src / "example_plugin.py").write_text(MODULE)
    (src / "example_plugin_broken.py").write_text("raise ImportError('needs libfoo')\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(site), str(src)],
        check=True, capture_output=True, timeout=300,
    )
    env = dict(os.environ, PYTHONPATH=str(site))
    return env


def cli(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "auhead_bench.cli", *args], env=env,
                          capture_output=True, text=True, check=check, timeout=600)


def test_installed_plugin_is_listed_with_its_distribution(installed):
    plugins = {p["name"]: p for p in json.loads(cli(installed, "plugins", "--json").stdout)}
    assert plugins["example"]["distribution"] == "auhead-bench-example-plugin"
    assert plugins["example"]["version"] == "0.3.1"
    assert plugins["example"]["hooks"] == ["register_methods", "register_metrics"]
    assert plugins["example"]["errors"] == []
    # The broken entry point is isolated and reported; the built-ins still load.
    assert "needs libfoo" in plugins["broken"]["errors"][0]
    assert plugins["methods_reference"]["errors"] == []
    methods = json.loads(cli(installed, "ls", "methods", "--json").stdout)
    invert = next(m for m in methods if m["id"] == "example_invert")
    assert invert["options"]["amount"]["default"] == 1.0


def test_runner_uses_the_plugins_method_and_metric(installed, video_factory, tmp_path):
    video_factory("clips/one.mp4")
    config = tmp_path / "config.yaml"
    config.write_text(textwrap.dedent(f"""
        datasets:
          - id: folder
            options: {{root: {tmp_path / 'clips'}}}
        methods:
          - ground_truth
          - id: example_invert
            options: {{amount: 1.0}}
        metrics: [psnr_rgb, example_mean_brightness]
        cache_dir: {tmp_path / 'cache'}
    """))
    out = tmp_path / "out"
    cli(installed, "run", str(config), "--out", str(out))
    records = {json.loads(p.read_text())["method"]["id"]: json.loads(p.read_text())
               for p in (out / "records").glob("*.json")}
    invert = records["example_invert"]
    assert invert["method"]["plugin"]["distribution"] == "auhead-bench-example-plugin"
    assert invert["provenance"]["packages"]["auhead-bench-example-plugin"] == "0.3.1"
    truth_brightness = records["ground_truth"]["metrics"]["example_mean_brightness"]["value"]
    inverted = invert["metrics"]["example_mean_brightness"]["value"]
    assert inverted == pytest.approx(255 - truth_brightness, abs=3)
    assert invert["metrics"]["psnr_rgb"]["value"] < records["ground_truth"]["metrics"][
        "psnr_rgb"]["value"]
    validated = cli(installed, "validate", *map(str, (out / "records").glob("*.json")))
    assert validated.stdout.count("ok:") == 2


def test_a_run_needing_the_broken_plugin_says_so(installed):
    result = cli(installed, "run", "--out", "/tmp/never", "--methods", "broken_method",
                 check=False)
    assert result.returncode == 2
    assert "unknown method 'broken_method'" in result.stderr
    assert "plugins that failed to load: broken" in result.stderr
