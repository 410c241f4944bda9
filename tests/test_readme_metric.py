"""The README's "Writing a metric" example runs as written, through a real run."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from auhead_bench import ClipView, VideoView
from auhead_bench.config import RunConfig
from auhead_bench.plugins import PluginInfo, load_plugins
from auhead_bench.runner import Runner

README = Path(__file__).resolve().parent.parent / "README.md"


def example_namespace() -> dict:
    section = README.read_text().split("### Writing a metric", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md (Writing a metric)", "exec"), namespace)
    return namespace


def test_readme_metric_scores_a_view():
    metric = example_namespace()["MouthOpening"]()
    landmarks = np.zeros((3, 68, 2), np.float32)
    landmarks[:, [65, 66, 67], 1] = 4.0  # lower inner lip 4 px below the upper
    track = {"landmarks": landmarks, "detected": np.array([True, True, False]),
             "boxes": np.zeros((3, 4), np.float32)}
    video = VideoView.from_arrays(np.zeros((3, 8, 8, 3), np.uint8), features={"face_track": track})
    score = metric.score(ClipView(clip=None, generated=video))
    assert score.value == 4.0 and score.info == {"frames": 2}


def test_readme_metric_runs_in_a_benchmark(video_factory, tmp_path):
    video_factory("data/a.mp4", seed=1)
    registry = load_plugins()
    plugin = PluginInfo("readme", "readme", "readme", "0")
    registry.add("metric", example_namespace()["MouthOpening"], plugin)
    config = RunConfig.model_validate({
        "name": "readme",
        "datasets": [{"id": "folder", "options": {"root": str(tmp_path / "data")}}],
        "methods": ["ground_truth"],
        "metrics": ["mouth_opening_dlib68"],
        "cache_dir": str(tmp_path / "cache"),
    })
    (record,) = Runner(config, tmp_path / "out", registry=registry).run()
    result = record.metrics["mouth_opening_dlib68"]
    # the synthetic clip shows no face: skipped with face_track's reason, not crashed
    assert result.status == "failed" and "no face found" in result.reason
