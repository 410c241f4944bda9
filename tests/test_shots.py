"""joonson-mode shot cuts against PySceneDetect 0.5.1's own numbers on the same frames.

tests/data/scenedetect_051.json holds what 0.5.1 (isolated Python 3.8 / OpenCV 4.5.1
environment, tests/scripts/scenedetect051_reference.py) computed on tests/scenedetect_frames.py:
steps between 27 and 30, just above and below 30, changes only on / off the subsampling grid,
a flash, a cut inside min_scene_len, at widths 400 to 960 px.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from auhead_bench_metrics import shots

sys.path.insert(0, str(Path(__file__).parent))
import scenedetect_frames  # noqa: E402

DATA = Path(__file__).parent / "data" / "scenedetect_051.json"
PINNED = json.loads(DATA.read_text())
NAMES = [v[0] for v in scenedetect_frames.VIDEOS]


def write_lossless(name: str, path: Path) -> list[np.ndarray]:
    frames = scenedetect_frames.frames(name)
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 25, (width, height))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return frames


def test_pinned_numbers_come_from_051():
    assert PINNED["environment"]["scenedetect"] == "v0.5.1"
    assert set(PINNED["videos"]) == set(NAMES)
    assert all(v["width"] >= 400 for v in PINNED["videos"].values())


@pytest.mark.parametrize("name", NAMES)
def test_cuts_and_scores_match_051(name):
    want = PINNED["videos"][name]
    factor = shots.downscale_factor(want["width"])
    assert factor == want["downscale_factor"]
    got = shots.detect_cuts(scenedetect_frames.frames(name), factor)
    assert got.frames == want["frames"]
    assert got.cuts == want["cuts"]
    assert [list(s) for s in got.scenes()] == want["scenes"]
    scores = {str(k): v for k, v in got.scores.items()}
    assert scores.keys() == want["content_val"].keys()
    for frame, value in want["content_val"].items():
        assert scores[frame] == pytest.approx(value, abs=1e-9), frame


def test_frames_reach_the_band():
    """The test frames do test the difference: 0.5.1 scores steps in [27, 30) it does not cut
    at, a grid-only change it cuts at, and an off-grid change it does not see."""
    videos = PINNED["videos"]
    band = [(n, int(f)) for n, v in videos.items() for f, s in v["content_val"].items()
            if 27 <= s < 30]
    assert len(band) >= 5
    assert not any(f in videos[n]["cuts"] for n, f in band)
    assert 64 in videos["w400"]["cuts"] and videos["w400"]["content_val"]["84"] == 0
    assert videos["w400"]["content_val"]["46"] >= 30 and 46 not in videos["w400"]["cuts"]


def test_scene_bounds_reads_the_file_as_051(tmp_path):
    for name in ("w400", "w480s"):
        path = tmp_path / f"{name}.avi"
        frames = write_lossless(name, path)
        capture = cv2.VideoCapture(str(path))
        decoded = list(shots.read_frames(capture))
        capture.release()
        assert all(np.array_equal(a, b) for a, b in zip(frames, decoded, strict=True))
        assert [list(s) for s in shots.scene_bounds(path)] == PINNED["videos"][name]["scenes"]


def test_scene_bounds_missing_file_is_a_clear_error(tmp_path):
    from auhead_bench.errors import BenchError

    with pytest.raises(BenchError, match="shot detection"):
        shots.scene_bounds(tmp_path / "none.avi")


def test_downscale_rule_edges():
    assert [shots.downscale_factor(w) for w in (224, 399, 400, 599, 600, 899, 900, 1920)] == \
        [1, 1, 2, 2, 3, 3, 4, 6]


def test_installed_06x_cuts_where_051_does_not(tmp_path):
    """Why this module exists: the PySceneDetect pip resolves today splits a 27..30 step."""
    import scenedetect  # installed with syncnet-python, which requires it
    if not scenedetect.__version__.lstrip("v").startswith("0.6"):
        pytest.skip(f"scenedetect {scenedetect.__version__} installed, not 0.6.x")
    from scenedetect.detectors import ContentDetector
    from scenedetect.scene_manager import SceneManager
    from scenedetect.video_manager import VideoManager

    path = tmp_path / "w480s.avi"
    write_lossless("w480s", path)
    manager = VideoManager([str(path)])
    scenes = SceneManager()
    scenes.add_detector(ContentDetector())
    manager.set_downscale_factor()
    manager.start()
    scenes.detect_scenes(frame_source=manager)
    cuts = [c.frame_num for c in scenes.get_cut_list()]
    manager.release()
    assert 20 in cuts and 20 not in PINNED["videos"]["w480s"]["cuts"]


@pytest.mark.skipif(not os.environ.get("AUHEAD_SCENEDETECT051_PYTHON"),
                    reason="set AUHEAD_SCENEDETECT051_PYTHON to a Python with scenedetect "
                    "0.5.1 (see tests/scripts/scenedetect051_reference.py) to rerun it live")
def test_live_051_still_gives_the_pinned_numbers(tmp_path):
    out = tmp_path / "live.json"
    script = Path(__file__).parent / "scripts" / "scenedetect051_reference.py"
    subprocess.run([os.environ["AUHEAD_SCENEDETECT051_PYTHON"], str(script), str(out)],
                   check=True)
    assert json.loads(out.read_text())["videos"] == PINNED["videos"]
