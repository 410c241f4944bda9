"""Write tests/data/scenedetect_051.json: PySceneDetect 0.5.1's own cuts and frame scores on
the synthetic shots of tests/scenedetect_frames.py, as joonson's run_pipeline.py calls it.

0.5.1 needs an OpenCV whose ``cv2.split`` returns a list (4.5.1 does; 4.5.5+ return a tuple and
0.5.1's ContentDetector raises TypeError), and no such wheel exists for Python 3.11, so this
runs in an isolated Python 3.8 environment, never in the project's:

    python3.8 -m venv /tmp/sd051 && /tmp/sd051/bin/pip install --only-binary :all: \
        numpy==1.24.4 opencv-python-headless==4.5.1.48 click tqdm
    /tmp/sd051/bin/pip install --no-deps scenedetect==0.5.1
    /tmp/sd051/bin/python tests/scripts/scenedetect051_reference.py tests/data/scenedetect_051.json

Each video is written losslessly (FFV1 avi, checked to decode to the same bytes) and read by
0.5.1's VideoManager with ``set_downscale_factor()``, exactly run_pipeline.py's ``scene_detect``.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile

import cv2
import numpy as np
import scenedetect
from scenedetect.detectors import ContentDetector
from scenedetect.scene_manager import SceneManager
from scenedetect.stats_manager import StatsManager
from scenedetect.video_manager import VideoManager

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import scenedetect_frames  # noqa: E402


def write_lossless(frames, path):
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"FFV1"), scenedetect_frames.FPS,
                             (width, height))
    for frame in frames:
        writer.write(frame)
    writer.release()
    capture = cv2.VideoCapture(path)
    for frame in frames:
        ok, decoded = capture.read()
        assert ok and np.array_equal(decoded, frame), "FFV1 round trip is not lossless"
    capture.release()


def scene_detect(path):
    """run_pipeline.py's scene_detect, plus what it leaves in the StatsManager."""
    video_manager = VideoManager([path])
    stats_manager = StatsManager()
    scene_manager = SceneManager(stats_manager)
    scene_manager.add_detector(ContentDetector())
    base_timecode = video_manager.get_base_timecode()
    video_manager.set_downscale_factor()
    factor = video_manager._downscale_factor
    video_manager.start()
    scene_manager.detect_scenes(frame_source=video_manager, show_progress=False)
    scene_list = scene_manager.get_scene_list(base_timecode)
    if scene_list == []:
        scene_list = [(video_manager.get_base_timecode(), video_manager.get_current_timecode())]
    video_manager.release()
    frames = scene_list[-1][1].get_frames()
    scores = {}
    for number in range(1, frames):
        if stats_manager.metrics_exist(number, ["content_val"]):
            scores[str(number)] = stats_manager.get_metrics(number, ["content_val"])[0]
    cuts = [c.get_frames() for c in scene_manager.get_cut_list(base_timecode)]
    return {"downscale_factor": factor, "frames": frames, "cuts": cuts,
            "scenes": [[a.get_frames(), b.get_frames()] for a, b in scene_list],
            "content_val": scores}


def main(out):
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, width, height, _, _ in scenedetect_frames.VIDEOS:
            path = os.path.join(tmp, name + ".avi")
            write_lossless(scenedetect_frames.frames(name), path)
            results[name] = {"width": width, "height": height, **scene_detect(path)}
    document = {
        "about": "PySceneDetect 0.5.1's ContentDetector() via run_pipeline.py's scene_detect "
                 "on tests/scenedetect_frames.py's videos (FFV1, lossless); written by "
                 "tests/scripts/scenedetect051_reference.py",
        "environment": {"scenedetect": scenedetect.__version__, "opencv": cv2.__version__,
                        "numpy": np.__version__, "python": platform.python_version()},
        "videos": results,
    }
    with open(out, "w") as f:
        json.dump(document, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
