"""Landmark distance (LMD) between generated and ground-truth faces, on dlib's 68 points.

Protocol (as in EAT): per frame, each side's point set is centred on its own mean, so a face
that sits a few pixels elsewhere in the frame is not penalised, only its shape and motion;
the frame's value is the mean L2 distance between corresponding points, in pixels at the
ground truth's resolution; the clip's value is the mean over frames. ``M-LMD`` uses the 20
mouth points (48-67, lip sync and articulation), ``F-LMD`` all 68 (expression and pose).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np

from auhead_bench import ClipScore, ClipView, Options, PerClipMetric, VideoView, hookimpl
from auhead_bench.metric import ClipSkipped

MOUTH = np.arange(48, 68)
FACE = np.arange(68)


class LMDOptions(Options):
    """``truncate``: frame t is compared with frame t; frames past the shorter video are dropped."""

    align: Literal["truncate"] = "truncate"


def landmark_distance(
    generated: VideoView, ground_truth: VideoView, points: np.ndarray
) -> tuple[float, int]:
    """Mean-centred mean point distance over frames detected on both sides: (value, frames).

    If the two videos differ in resolution, generated coordinates are scaled (x and y
    separately) to the ground truth's frame size, so the value is always in ground-truth
    pixels and a method rendering at another size is compared on the same scale.
    """
    gen, gt = generated["face_track"], ground_truth["face_track"]
    count = min(len(gen["landmarks"]), len(gt["landmarks"]))
    gen_lm = np.asarray(gen["landmarks"][:count], np.float64)[:, points]
    gt_lm = np.asarray(gt["landmarks"][:count], np.float64)[:, points]
    gen_h, gen_w = generated.frame_shape()
    gt_h, gt_w = ground_truth.frame_shape()
    if (gen_h, gen_w) != (gt_h, gt_w):
        gen_lm = gen_lm * np.array([gt_w / gen_w, gt_h / gen_h])
    both = np.asarray(gen["detected"][:count], bool) & np.asarray(gt["detected"][:count], bool)
    if not both.any():
        raise ClipSkipped("no frame with a detected face on both sides")
    gen_lm, gt_lm = gen_lm[both], gt_lm[both]
    gen_lm -= gen_lm.mean(axis=1, keepdims=True)
    gt_lm -= gt_lm.mean(axis=1, keepdims=True)
    per_frame = np.linalg.norm(gen_lm - gt_lm, axis=-1).mean(axis=1)
    return float(per_frame.mean()), int(both.sum())


class _LMD(PerClipMetric):
    """Shared scoring; subclasses pick the point set."""

    higher_is_better = False
    needs = ("face_track",)
    Options = LMDOptions
    points: ClassVar[np.ndarray]

    def score(self, view: ClipView) -> ClipScore:
        if view.ground_truth is None:
            raise ValueError(f"{self.id} needs the ground-truth video")
        value, frames = landmark_distance(view.generated, view.ground_truth, self.points)
        return ClipScore(value, info={"frames": frames})


class MouthLMD(_LMD):
    id = "lmd_mouth_dlib68"
    description = "M-LMD: mean-centred mouth landmark distance (dlib points 48-67), pixels."
    points = MOUTH


class FaceLMD(_LMD):
    id = "lmd_face_dlib68"
    description = "F-LMD: mean-centred landmark distance over all 68 dlib points, pixels."
    points = FACE


@hookimpl
def register_metrics(register):
    register(MouthLMD)
    register(FaceLMD)
