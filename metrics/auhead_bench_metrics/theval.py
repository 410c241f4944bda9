"""THEval's metrics (Newbyl/THEval, CVPR 2026 Findings): four on mediapipe, their GT-normalised
forms, its final score, and the four that need models not available offline.

Raw metrics, per video (the clip's value; the record's is the mean over clips, as THEval's
summaries average over videos, skipping NaN):

- ``theval_lip_dynamics_mp``: the 40 FACEMESH_LIPS points on the 256x256 frame, in pixels;
  every pairwise distance (780) per frame; its standard deviation over the frames with a face;
  the mean over pairs (``compute_mouth_diversity``, "std_over_time"). No face anywhere: 0.
- ``theval_eyebrow_dynamics_mp``: at full size, the distance from each eyebrow's mean point to
  its eye's mean point, divided by the distance between the two eyes' mean points; the mean
  absolute change between consecutive frames with a face, both sides pooled
  (``compute_micro_expression_intensity``). Fewer than two such frames: 0.
- ``theval_silent_lip_stability_mp``: on the frames outside Silero VAD's speech segments, in
  silent runs of at least 0.3 s, tracked by a FaceMesh that sees only those frames (256 px):
  per frame the mean of the 8 inner-lip vertical gaps divided by the outer eye-corner distance
  (33-263); the median absolute deviation from the mean of those values (``process_video``).
  No silent run, or under two frames with a face: skipped.
- ``theval_lip_sync_mp``: mouth openness (inner-lip gap over the eye-centre distance, on the
  unrefined red/blue-swapped feed) and audio RMS (50 ms frames and hop, centred, at each video
  frame's time) on VAD speech frames, each min-max normalised over those frames; the mean
  absolute difference (``process_video``). Speech under 10% of the frames: skipped.

``..._gt_norm``: THEval's normalisation ``1 - |m - GT| / |GT|`` of the record's mean ``m``
against the same mean over the clips' ground-truth videos (``theval/scoring.py``); higher is
better, 1 is the ground truth's own behaviour. ``theval_score_partial4_mp``: the mean of the four
normalised mediapipe metrics, THEval's final score with 4 of its 8 metrics (the others need
pyiqa and FaceXFormer weights); ``theval_score``, all 8, is registered and reports what it lacks.

Where ours differs from running THEval's scripts (docs/metrics.md, the protocol card): frames
come from our decoder (PyAV; THEval's read with OpenCV and decord), each video gets its own
FaceMesh tracker, and the VAD and RMS read our 16 kHz mono float audio: THEval's
``--audio_folder`` route (16 kHz mono 16-bit WAV from its ``extract_audio``), not its default
route through moviepy's 44.1 kHz extraction. The parity test states the tolerance.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from itertools import combinations
from typing import Any, ClassVar

import numpy as np

from auhead_bench import ClipScore, ClipView, DistributionMetric, PerClipMetric, VideoView, hookimpl
from auhead_bench.errors import BenchError
from auhead_bench.metric import ClipSkipped, NotComputed
from auhead_bench.weights import WeightsMissing
from auhead_bench_metrics.theval_mesh import (
    EYE_CORNERS,
    LEFT_EYE,
    LEFT_EYEBROW,
    LIPS,
    LOWER_LIP,
    RIGHT_EYE,
    RIGHT_EYEBROW,
    SIZE,
    UPPER_LIP,
    positions,
)
from auhead_bench_metrics.theval_vad import RMS_SECONDS, find_model, speech_frames

MESH = "theval_facemesh"
SILENT_MESH = "theval_facemesh_silent"
BGR_MESH = "theval_facemesh_bgr"
VAD = "theval_vad_silero_v5"
MIN_SPEECH_RATIO = 0.1  # lip_sync.py: fewer speech frames and the video is NaN
GT_EPSILON = 1e-9  # theval/scoring.py: a |GT| this small cannot normalise


# ---- the raw values, from the extractors' arrays ----------------------------------------------


def lip_dynamics(mesh: dict[str, np.ndarray]) -> float:
    """Mean over lip-point pairs of the pair distance's std over frames (256 px units)."""
    found = np.asarray(mesh["rgb256_found"], bool)
    if not found.any():
        return 0.0
    lips = np.asarray(mesh["rgb256_xy"], np.float64)[found][:, positions(LIPS)] * SIZE
    first, second = np.array(list(combinations(range(len(LIPS)), 2))).T
    distances = np.linalg.norm(lips[:, first] - lips[:, second], axis=-1)
    return float(np.mean(np.std(distances, axis=0)))


def eyebrow_dynamics(mesh: dict[str, np.ndarray]) -> float:
    """Mean absolute frame-to-frame change of the eye-normalised eyebrow-eye distances."""
    found = np.asarray(mesh["rgb_found"], bool)
    height, width = (int(v) for v in mesh["frame_size"])
    xy = np.asarray(mesh["rgb_xy"], np.float64)[found] * np.array([width, height])

    def centre(points: tuple[int, ...]) -> np.ndarray:
        return xy[:, positions(points)].mean(axis=1)

    left_eye, right_eye = centre(LEFT_EYE), centre(RIGHT_EYE)
    scale = np.linalg.norm(left_eye - right_eye, axis=-1)
    keep = scale >= 1e-3  # eyebrow_dynamics.py skips such a frame (its previous value stays)
    left = np.linalg.norm(centre(LEFT_EYEBROW) - left_eye, axis=-1)[keep] / scale[keep]
    right = np.linalg.norm(centre(RIGHT_EYEBROW) - right_eye, axis=-1)[keep] / scale[keep]
    if len(left) < 2:
        return 0.0
    total = np.abs(np.diff(left)).sum() + np.abs(np.diff(right)).sum()
    return float(total / (2 * (len(left) - 1)))


def silent_lip_stability(silent_mesh: dict[str, np.ndarray]) -> tuple[float, int]:
    """Median absolute deviation (about the mean) of the silent frames' lip opening."""
    silent = np.asarray(silent_mesh["silent"], bool)
    if not silent.any():
        raise ClipSkipped("THEval silent-lip stability: no silent run of 0.3 s (VAD)")
    xy = np.asarray(silent_mesh["xy"], np.float64)[silent & silent_mesh["found"]] * SIZE
    corners = xy[:, positions((EYE_CORNERS[0], EYE_CORNERS[3]))]
    eye = np.linalg.norm(corners[:, 0] - corners[:, 1], axis=-1)
    xy, eye = xy[eye >= 1e-3], eye[eye >= 1e-3]
    gaps = np.abs(xy[:, positions(UPPER_LIP), 1] - xy[:, positions(LOWER_LIP), 1])
    opening = (gaps / eye[:, None]).mean(axis=1)
    if len(opening) < 2:
        raise ClipSkipped("THEval silent-lip stability: fewer than 2 silent frames with a face")
    return float(np.median(np.abs(opening - opening.mean()))), len(opening)


def lip_sync(mesh: dict[str, np.ndarray], vad: dict[str, np.ndarray],
             fps: float) -> tuple[float, int]:
    """Mean |openness - volume| over speech frames, each min-max normalised there."""
    found = np.asarray(mesh["bgr_found"], bool)
    count = len(found)
    xy = np.asarray(mesh["bgr_xy"], np.float64)
    upper = xy[:, positions(UPPER_LIP), 1].mean(axis=1)
    lower = xy[:, positions(LOWER_LIP), 1].mean(axis=1)
    eye_left = xy[:, positions(EYE_CORNERS[:2]), 0].mean(axis=1)
    eye_right = xy[:, positions(EYE_CORNERS[2:]), 0].mean(axis=1)
    interocular = np.abs(eye_right - eye_left)
    valid = found & (interocular > 0)
    openness = np.full(count, np.nan)
    openness[valid] = np.abs(upper - lower)[valid] / interocular[valid]
    volume = np.interp(np.arange(count) / fps, np.arange(len(vad["rms"])) * RMS_SECONDS,
                       vad["rms"])
    speech = speech_frames(vad["segments"], count, fps)
    mask = speech & ~np.isnan(openness)
    if count == 0 or speech.sum() / count < MIN_SPEECH_RATIO or mask.sum() < 2:
        raise ClipSkipped(
            f"THEval lip-sync: speech on {int(speech.sum())} of {count} frames (VAD), under "
            f"{MIN_SPEECH_RATIO:.0%}, or fewer than 2 of them with a face"
        )
    o, v = openness[mask], volume[mask]
    o = (o - o.min()) / (o.max() - o.min() + 1e-8)
    v = (v - v.min()) / (v.max() - v.min() + 1e-8)
    return float(np.mean(np.abs(o - v))), int(mask.sum())


# ---- metric classes ---------------------------------------------------------------------------


def _check_vad() -> None:
    """WeightsMissing (with the pull command) before a run that could not decide speech."""
    find_model()


class _Raw(PerClipMetric):
    """A THEval metric of one video; ``raw`` gives (value, frames used)."""

    needs_ground_truth = False
    theval_name: ClassVar[str]  # the column in THEval's metric table

    @classmethod
    @abstractmethod
    def raw(cls, video: VideoView) -> tuple[float, int]:
        """(value, frames used) of one video; ClipSkipped when THEval gives it no value."""

    def score(self, view: ClipView) -> ClipScore:
        value, frames = self.raw(view.generated)
        return ClipScore(value, info={"frames": frames})


class LipDynamics(_Raw):
    id = "theval_lip_dynamics_mp"
    description = "THEval lip dynamics: mean std over time of the 780 lip-point distances (256 px)."
    higher_is_better = True  # more lip motion; THEval ranks by the _gt_norm form
    needs = (MESH,)
    theval_name = "Lip dynamics"

    @classmethod
    def raw(cls, video: VideoView) -> tuple[float, int]:
        mesh = video[MESH]
        return lip_dynamics(mesh), int(np.sum(mesh["rgb256_found"]))


class EyebrowDynamics(_Raw):
    id = "theval_eyebrow_dynamics_mp"
    description = "THEval eyebrow dynamics: mean change per frame of brow-eye distance / eye gap."
    higher_is_better = True  # more brow motion; THEval ranks by the _gt_norm form
    needs = (MESH,)
    theval_name = "Eyebrow dynamics"

    @classmethod
    def raw(cls, video: VideoView) -> tuple[float, int]:
        mesh = video[MESH]
        return eyebrow_dynamics(mesh), int(np.sum(mesh["rgb_found"]))


class SilentLipStability(_Raw):
    id = "theval_silent_lip_stability_mp"
    description = "THEval silent-lip stability: MAD of the lip opening on VAD-silent runs >= 0.3 s."
    higher_is_better = False
    needs = (SILENT_MESH,)
    theval_name = "Silent lip stability"

    def setup(self, device: str) -> None:
        _check_vad()

    @classmethod
    def raw(cls, video: VideoView) -> tuple[float, int]:
        return silent_lip_stability(video[SILENT_MESH])


class LipSync(_Raw):
    id = "theval_lip_sync_mp"
    description = "THEval lip-sync: mean |mouth openness - audio RMS|, min-max normalised, speech."
    higher_is_better = False
    needs = (BGR_MESH, VAD)
    theval_name = "Lip sync"

    def setup(self, device: str) -> None:
        _check_vad()

    @classmethod
    def raw(cls, video: VideoView) -> tuple[float, int]:
        if not int(video[VAD]["samples"]):
            raise ClipSkipped("THEval lip-sync: the video has no audio")
        return lip_sync(video[BGR_MESH], video[VAD], video.fps)


RAW: tuple[type[_Raw], ...] = (LipDynamics, EyebrowDynamics, SilentLipStability, LipSync)


def _raw_value(base: type[_Raw], video: VideoView) -> tuple[float | None, str | None]:
    try:
        return base.raw(video)[0], None
    except ClipSkipped as exc:
        return None, str(exc)


def gt_normalised(generated: tuple[float, int], truth: tuple[float, int], ident: str) -> float:
    """THEval's ``1 - |m - GT| / |GT|`` of two (sum, count) means; BenchError if undefined."""
    if not generated[1] or not truth[1]:
        side = "generated" if not generated[1] else "ground-truth"
        raise BenchError(f"{ident}: no clip scored on the {side} side")
    m, gt = generated[0] / generated[1], truth[0] / truth[1]
    if abs(gt) <= GT_EPSILON:
        raise BenchError(f"{ident}: the ground truth's mean is {gt:g}; THEval's normalisation "
                         "divides by it")
    return 1.0 - abs(m - gt) / abs(gt)


class _GTNorm(DistributionMetric):
    """``1 - |mean(generated) - mean(ground truth)| / |mean(ground truth)|`` over the record's
    clips, each side's mean over the videos it could score (THEval's nanmean per table row).
    A clip the generated side cannot score is skipped with its reason; its ground truth still
    counts on the ground-truth side, as in THEval's GT row."""

    higher_is_better = True
    base: ClassVar[type[_Raw]]

    def __init__(self, options=None):
        super().__init__(options)
        # generated sum, generated count, ground-truth sum, ground-truth count
        self.add_state("sums", np.zeros(4), "sum")

    def setup(self, device: str) -> None:
        self.base().setup(device)

    def update(self, view: ClipView) -> None:
        if view.ground_truth is None:
            raise ValueError(f"{self.id} needs the ground-truth video")
        truth, _ = _raw_value(self.base, view.ground_truth)
        generated, reason = _raw_value(self.base, view.generated)
        self.sums = self.sums + [generated or 0.0, generated is not None,
                                 truth or 0.0, truth is not None]
        if generated is None:
            raise ClipSkipped(reason)

    def compute(self) -> float:
        s = self.sums
        return gt_normalised((s[0], int(s[1])), (s[2], int(s[3])), self.id)

    def summary(self) -> dict[str, Any]:
        return {"generated_clips": int(self.sums[1]), "ground_truth_clips": int(self.sums[3])}


def _gt_norm(base: type[_Raw]) -> type[_GTNorm]:
    return type(
        f"{base.__name__}GTNorm",
        (_GTNorm,),
        {
            "__module__": __name__,
            "id": f"{base.id}_gt_norm",
            "description": f"{base.theval_name}, THEval-normalised by the ground truth: "
            "1 - |m - GT| / |GT| of the means over clips.",
            "base": base,
            "needs": base.needs,
        },
    )


GT_NORM: tuple[type[_GTNorm], ...] = tuple(_gt_norm(base) for base in RAW)


class PartialScore(DistributionMetric):
    """THEval's final score over its four mediapipe metrics only: the mean of their _gt_norm
    (theval/scoring.py's unweighted mean, over 4 of its 8 columns)."""

    id = "theval_score_partial4_mp"
    description = ("THEval final score, PARTIAL: mean of the 4 mediapipe metrics' GT-normalised "
                   "values (lip/eyebrow dynamics, silent-lip stability, lip-sync); 4 of 8.")
    higher_is_better = True
    needs = tuple(dict.fromkeys(n for base in RAW for n in base.needs))

    def __init__(self, options=None):
        super().__init__(options)
        self.add_state("sums", np.zeros((len(RAW), 4)), "sum")  # rows: as _GTNorm's, per part

    def setup(self, device: str) -> None:
        for base in RAW:
            base().setup(device)

    def update(self, view: ClipView) -> None:
        if view.ground_truth is None:
            raise ValueError(f"{self.id} needs the ground-truth video")
        rows = []
        for base in RAW:
            truth, _ = _raw_value(base, view.ground_truth)
            generated, _ = _raw_value(base, view.generated)
            rows.append([generated or 0.0, generated is not None, truth or 0.0,
                         truth is not None])
        self.sums = self.sums + np.array(rows)

    def compute(self) -> float:
        return float(np.mean([
            gt_normalised((s[0], int(s[1])), (s[2], int(s[3])), f"{self.id} ({base.id})")
            for base, s in zip(RAW, self.sums, strict=True)
        ]))

    def summary(self) -> dict[str, Any]:
        return {base.id: {"generated_clips": int(s[1]), "ground_truth_clips": int(s[3])}
                for base, s in zip(RAW, self.sums, strict=True)}


# ---- THEval's metrics that need models this suite does not run offline ------------------------

# THEval's scripts and the model each loads (Video_Quality/*.py, Naturalness/...).
UNAVAILABLE: dict[str, tuple[str, str, bool]] = {
    "theval_global_aesthetic_topiq_iaa": (
        "Global aesthetic", "pyiqa 0.1.13 create_metric('topiq_iaa') on every frame", True),
    "theval_mouth_quality_musiq": (
        "Mouth quality", "pyiqa 0.1.13 create_metric('musiq') on FaceMesh lip crops", True),
    "theval_face_quality_topiq_nr_face": (
        "Face quality", "pyiqa 0.1.13 create_metric('topiq_nr-face') on every frame", True),
    "theval_head_motion_facexformer": (
        "Head motion dynamics", "RetinaFace boxes and FaceXFormer head pose (ckpts/model.pt)",
        True),
}


def _unavailable_reason(ident: str) -> str:
    name, model, _ = UNAVAILABLE[ident]
    return (f"not computed offline: THEval's {name} needs {model}; its weights are not shipped "
            "by any installed package and auhead-bench does not run it yet (issue 21)")


def _unavailable(ident: str) -> type[PerClipMetric]:
    name, _, higher = UNAVAILABLE[ident]

    def setup(self, device: str) -> None:
        raise NotComputed(_unavailable_reason(self.id))

    def score(self, view: ClipView) -> float:
        raise NotComputed(_unavailable_reason(self.id))

    return type(
        "".join(part.title() for part in ident.split("_")),
        (PerClipMetric,),
        {"__module__": __name__, "id": ident, "higher_is_better": higher,
         "description": f"THEval {name} (not computed offline: {UNAVAILABLE[ident][1]}).",
         "needs_ground_truth": False, "setup": setup, "score": score},
    )


UNAVAILABLE_METRICS = tuple(_unavailable(ident) for ident in UNAVAILABLE)


class FinalScore(DistributionMetric):
    """THEval's final score, all 8 metrics: reports which of them cannot be computed here."""

    id = "theval_score"
    description = "THEval final score: mean of its 8 GT-normalised metrics (needs all 8)."
    higher_is_better = True

    def setup(self, device: str) -> None:
        missing = ", ".join(UNAVAILABLE)
        try:
            _check_vad()
        except WeightsMissing as exc:
            raise WeightsMissing(f"{exc}; and {missing} are not computed offline",
                                 exc.specs) from None
        raise NotComputed(f"not computed offline: needs {missing} (see their reasons); "
                          f"{PartialScore.id} is the mean over the 4 computed here")

    def update(self, view: ClipView) -> None:  # never reached: setup refuses
        raise NotComputed(self.id)

    def compute(self) -> float:
        raise NotComputed(self.id)


@hookimpl
def register_metrics(register: Callable[[type], None]):
    for metric in (*RAW, *GT_NORM, PartialScore, *UNAVAILABLE_METRICS, FinalScore):
        register(metric)

