"""How far py-feat's unaligned 112 px box crop is from InsightFace's aligned crop, on the demo.

Run: ``python bench/bench_csim_alignment.py [--cache DIR]``. What it can say without the
ArcFace weights is geometric: per frame with a face (dlib's face track: real detector, real 68
landmarks), the 5 ArcFace keypoints (eye centres, nose tip 30, mouth corners 48/54) are

- aligned with ``norm_crop`` (what ``csim_arcface_insightface_buffalo_l`` embeds), and
- cut as py-feat cuts them for ``csim_arcface_r50_pyfeat``: the box scaled by 1.2 about its
  centre, resized to 112x112 (``feat.utils.image_operations.extract_face_from_bbox_torch``),
  here on dlib's box because py-feat's RetinaFace weights are not available.

Printed per clip: where the keypoints land in the box crop vs the ArcFace template (RMS and max,
in 112 px crop pixels; the aligned crop puts them on the template up to the least-squares
residual, also printed), and the mean absolute difference between the two crops (gray levels,
0-255). What the cosine moves by needs the real weights (see docs/metrics.md, CSIM).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from auhead_bench import VideoView, media
from auhead_bench_datasets.demo import Demo, DemoOptions
from auhead_bench_metrics.arcface_aligned import ARCFACE_DST, CROP, estimate_norm, norm_crop
from auhead_bench_metrics.face_track import FaceTrack

EXPAND = 1.2  # py-feat's expand_bbox default


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """ArcFace's 5 keypoints from iBUG's 68 (image-left eye first, as arcface_dst)."""
    return np.stack([landmarks[36:42].mean(0), landmarks[42:48].mean(0), landmarks[30],
                     landmarks[48], landmarks[54]]).astype(np.float32)


def box_crop(frame: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """py-feat's crop rule: the box scaled about its centre, resized to 112; the 2x3 map."""
    x0, y0, x1, y1 = box
    cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * EXPAND, (y1 - y0) * EXPAND
    sx, sy = CROP / w, CROP / h
    matrix = np.array([[sx, 0, -(cx - w / 2) * sx], [0, sy, -(cy - h / 2) * sy]])
    return cv2.warpAffine(frame, matrix, (CROP, CROP), borderValue=0.0), matrix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/auhead-bench-csim-align"))
    args = parser.parse_args()
    tracker = FaceTrack()
    tracker.setup("cpu")
    every = []
    for clip in Demo(DemoOptions(), args.cache).clips():
        frames = np.concatenate(list(media.iter_frames(clip.video)))
        track = tracker.extract(VideoView.from_arrays(frames))
        box_rms, box_max, fit_rms, mad = [], [], [], []
        for t in np.flatnonzero(track["detected"]):
            kps = five_points(np.asarray(track["landmarks"][t], np.float64))
            aligned = norm_crop(frames[t], kps)
            unaligned, matrix = box_crop(frames[t], np.asarray(track["boxes"][t], np.float64))
            placed = kps @ matrix[:, :2].T + matrix[:, 2]
            error = np.linalg.norm(placed - ARCFACE_DST, axis=1)
            norm = estimate_norm(kps)
            fit = np.linalg.norm(kps @ norm[:, :2].T + norm[:, 2] - ARCFACE_DST, axis=1)
            box_rms.append(np.sqrt((error ** 2).mean()))
            box_max.append(error.max())
            fit_rms.append(np.sqrt((fit ** 2).mean()))
            mad.append(np.abs(aligned.astype(float) - unaligned).mean())
        every += mad
        print(f"{clip.id}: {len(mad)} frames; keypoints in the box crop vs template: RMS "
              f"{np.mean(box_rms):.1f} px (max {np.max(box_max):.1f}); aligned crop RMS "
              f"{np.mean(fit_rms):.1f} px; mean |aligned - box crop| {np.mean(mad):.1f} "
              f"gray levels")
    print(f"all clips: mean |aligned - box crop| {np.mean(every):.1f} gray levels")


if __name__ == "__main__":
    main()
